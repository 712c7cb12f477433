"""The layout of the per-sample diagnostics the compiled engines return: an int64 row of
counts and a float64 row of extremes (read into :class:`eventgrad.Diagnostics` by
:meth:`eventgrad.Diagnostics.from_arrays`)."""

import math

from numba import njit

#: Columns of the integer row: events, LIF spikes, crossing predictions, root solves,
#: immediate spikes, input spikes after ``t_max``.
D_EVENTS, D_SPIKES, D_PRED, D_SOLVES, D_IMMEDIATE, D_LATE = 0, 1, 2, 3, 4, 5
N_INT = 6
#: Columns of the float row: closest approach, smallest crossing slope, time of failure.
F_CLOSEST, F_SLOPE, F_FAIL = 0, 1, 2
N_FLOAT = 3


@njit(cache=True)
def closest_start(track: bool) -> float:
    """The closest approach a sample starts from: ``inf`` when it is tracked, ``-inf`` when it
    is not (every ``min`` then keeps ``-inf`` and no peak is located; read as nan)."""
    return math.inf if track else -math.inf

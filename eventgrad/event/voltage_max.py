"""The exact maximum of V over the window for a neuron that does not spike.

Between two arrivals V is a sum of two exponentials with at most one extremum, so the maximum
of V over ``[0, t_max]`` is the largest of: ``V(0) = 0`` (``AT_START``), the interior peaks where
``dV/dt = 0`` (``AT_PEAK``, from :func:`~eventgrad.event.physics.peak_time`), the left limits at
the arrival times (``AT_ARRIVAL``: V is continuous there but ``dV/dt`` jumps) and ``V(t_max)``
(``AT_END``). Every distinct arrival time into the population is an interval edge. The earliest
position is kept when the maximum is reached more than once. ``vdot_left`` (dV/dt just before
the maximum, 1/ms) is what the adjoint needs at a kink (``docs/adjoint.md``); it is 0 at an
interior peak.
"""

from __future__ import annotations


from numba import njit

from .arrivals import reaches
from .physics import decay, flow, peak_time, voltage

__all__ = ["AT_START", "AT_PEAK", "AT_ARRIVAL", "AT_END", "max_voltage_neuron"]

#: Where the maximum of V lies.
AT_START, AT_PEAK, AT_ARRIVAL, AT_END = 0, 1, 2, 3

_JIT = {"cache": True, "nogil": True}


@njit(**_JIT)
def max_voltage_neuron(P, W, q, n, at, aj, am, ag, t_max):
    """Maximum of V of neuron ``n`` of population ``q`` given the population's arrivals
    ``(at, aj, am, ag)`` (:func:`eventgrad.event.arrivals.arrivals_into`), assuming the neuron
    does not spike. Returns ``(value, time, kind, vdot_left)``."""
    N = P.pop_size[q]
    tm, ts, g = P.p_tm[q], P.p_ts[q], P.p_g[q]
    v = 0.0
    cur = 0.0
    t_prev = 0.0
    best, best_t, kind, vdot = 0.0, 0.0, AT_START, 0.0
    k = 0
    n_arr = at.shape[0]
    while True:
        end = k >= n_arr
        t = t_max if end else at[k]
        D = t - t_prev
        if D > 0.0:
            Dpk = peak_time(v, cur, tm, ts)
            if 0.0 < Dpk < D:
                vpk = voltage(v, cur, Dpk, tm, ts, g)
                if vpk > best:
                    best, best_t, kind, vdot = vpk, t_prev + Dpk, AT_PEAK, 0.0
            em, es, kk = decay(D, tm, ts, g)
            v, cur = flow(v, cur, em, es, kk)
            t_prev = t
        if v > best:
            best, best_t, kind = v, t, (AT_END if end else AT_ARRIVAL)
            vdot = (cur - v) / tm
        if end:
            return best, best_t, kind, vdot
        dw = 0.0
        while k < n_arr and at[k] == t:
            if reaches(P, ag[k], n):
                dw += W[P.proj_w_off[aj[k]] + am[k] * N + n]
            k += 1
        cur = cur + dw



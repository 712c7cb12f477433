"""The exact maximum of V over the window for a neuron that does not spike.

Between two arrivals V is a sum of two exponentials with at most one extremum, so the maximum
of V over ``[0, t_max]`` is the largest of: ``V(0) = 0`` (``AT_START``), the interior peaks where
``dV/dt = 0`` (``AT_PEAK``, from :func:`~eventgrad.model.physics.peak_time`), the left limits at
the arrival times (``AT_ARRIVAL``: V is continuous there but ``dV/dt`` jumps) and ``V(t_max)``
(``AT_END``). Every distinct arrival time into the population is an interval edge. The earliest
position is kept when the maximum is reached more than once. ``vdot_left`` (dV/dt just before
the maximum, 1/ms) is what the adjoint needs at a kink (``docs/adjoint.md``); it is 0 at an
interior peak.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..model.physics import decay, flow, peak_bound, peak_time, voltage

__all__ = ["AT_START", "AT_PEAK", "AT_ARRIVAL", "AT_END", "max_voltage_neurons"]

#: Where the maximum of V lies.
AT_START, AT_PEAK, AT_ARRIVAL, AT_END = 0, 1, 2, 3

_JIT = {"cache": True, "nogil": True}


@njit(**_JIT)
def max_voltage_neurons(P, W, q, sel, at, aj, am, ag, t_max, out_v, out_t, out_k, out_d):
    """Maximum of V of the neurons ``sel`` of population ``q`` given the population's arrivals
    ``(at, aj, am, ag)`` (:func:`eventgrad.event.arrivals.arrivals_into`), assuming they do
    not spike: writes ``(value, time, kind, vdot_left)`` of neuron ``sel[u]`` into
    ``out_*[u]``. The flow coefficients of an interval are shared by the neurons; an interior
    peak is located only where :func:`~eventgrad.model.physics.peak_bound` could beat the
    maximum so far."""
    N = P.pop_size[q]
    tm, ts, g = P.p_tm[q], P.p_ts[q], P.p_g[q]
    m = sel.shape[0]
    v = np.zeros(m)
    cur = np.zeros(m)
    out_v[:m] = 0.0
    out_t[:m] = 0.0
    out_k[:m] = AT_START
    out_d[:m] = 0.0
    t_prev = 0.0
    k = 0
    n_arr = at.shape[0]
    while True:
        end = k >= n_arr
        t = t_max if end else at[k]
        D = t - t_prev
        if D > 0.0:
            em, es, kk = decay(D, tm, ts, g)
            for u in range(m):
                V0, I0 = v[u], cur[u]
                V1, I1 = flow(V0, I0, em, es, kk)
                if I0 > V0 and I0 > 0.0 and I1 < V1 and peak_bound(V0, I0, tm, ts) > out_v[u]:
                    Dpk = peak_time(V0, I0, tm, ts)
                    if 0.0 < Dpk < D:
                        vpk = voltage(V0, I0, Dpk, tm, ts, g)
                        if vpk > out_v[u]:
                            out_v[u], out_t[u], out_k[u], out_d[u] = vpk, t_prev + Dpk, AT_PEAK, 0.0
                v[u], cur[u] = V1, I1
            t_prev = t
        for u in range(m):
            if v[u] > out_v[u]:
                out_v[u], out_t[u] = v[u], t
                out_k[u] = AT_END if end else AT_ARRIVAL
                out_d[u] = (cur[u] - v[u]) / tm
        if end:
            return
        while k < n_arr and at[k] == t:
            row = P.proj_w_off[aj[k]] + am[k] * N
            gk = ag[k]
            if P.grp_all[gk]:
                for u in range(m):
                    cur[u] += W[row + sel[u]]
            else:        # a group of some neurons: sel and post_idx are both sorted
                j, j_end = P.post_ptr[gk], P.post_ptr[gk + 1]
                for u in range(m):
                    while j < j_end and P.post_idx[j] < sel[u]:
                        j += 1
                    if j < j_end and P.post_idx[j] == sel[u]:
                        cur[u] += W[row + sel[u]]
            k += 1

"""The layered fast path: populations one after another, neurons side by side.

When the populations have a topological order (no recurrent loop) and every presynaptic neuron
reaches all its postsynaptic neurons with one delay (``Plan.layered``), the spikes of a
population are known once the populations before it are done, and every neuron of a population
sees the same arrival times. So the engine takes the populations in topological order; for each
it lists the arrivals (:func:`eventgrad.event.arrivals.arrivals_into`) and walks the intervals
between them with every neuron at once. The flow coefficients ``exp(-D/tau)`` and ``k(D)`` of an
interval are shared by the population; only a neuron that may reach threshold
(:func:`~eventgrad.event.physics.may_cross`) or is refractory goes through the scalar rule
(:func:`_neuron_interval`), which finds its crossings with
:func:`~eventgrad.event.physics.crossing` exactly as the general engine does. No queue, no heap.

The adjoint runs the populations in reverse topological order, each backward over the same
intervals with the transposed flow, a neuron's own events (spikes, releases, loss probes) taken
one by one. Results equal the general engine's up to rounding: the same spikes, spike times to
a few ulp (a population-wide interval there may be split at another neuron's spike here, or the
other way round), gradients to ~1e-13 relative (cross-tested).

Per-sample outputs and conventions are those of :mod:`eventgrad.event.general`; the event
counts (``n_events``) agree exactly, the prediction and solve counts are this engine's own.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .arrivals import arrivals_into, by_population
from .physics import (arrival_adjoint, crossing, decay, flow, flow_adjoint, max_on_interval,
                      may_cross, peak_bound, release_adjoint, solve_rising, spike_adjoint)

__all__ = ["forward_sample", "backward_sample"]

INF = math.inf
_JIT = {"cache": True, "nogil": True}

# diagnostics: integer counters and float extremes (the layout of the general engine's)
D_EVENTS, D_SPIKES, D_PRED, D_SOLVES, D_IMMEDIATE, D_LATE = 0, 1, 2, 3, 4, 5
F_CLOSEST, F_SLOPE, F_FAIL = 0, 1, 2


@njit(**_JIT)
def _record(R, nrec, t, q, n, I):
    """Append a spike to the record buffer ``R = (t, pop, id, current, release current)``
    (grown by doubling); returns the buffer."""
    if nrec == R[0].shape[0]:
        cap = 2 * nrec
        R = (_resized(R[0], cap), _resized(R[1], cap), _resized(R[2], cap),
             _resized(R[3], cap), _resized(R[4], cap))
    R[0][nrec] = t
    R[1][nrec] = q
    R[2][nrec] = n
    R[3][nrec] = I
    R[4][nrec] = np.nan
    return R


@njit(**_JIT)
def _resized(a, cap):
    b = np.empty(cap, dtype=a.dtype)
    b[:a.shape[0]] = a
    return b


@njit(**_JIT)
def _may_spike(V0, I0, V1, I1, tm, ts, th):
    """Whether V may reach ``th`` in an interval from ``(V0, I0)`` to ``(V1, I1)``: V is at or
    above threshold at an end, or it has an interior maximum (rising at the start, falling at
    the end) and :func:`~eventgrad.event.physics.may_cross`. Otherwise its maximum is at an
    end and below threshold, and no root is sought (the full test of :func:`_step` decides
    the same, up to a maximum within rounding of the interval's end)."""
    if V0 >= th or V1 >= th:
        return True
    return I0 > V0 and I0 > 0.0 and I1 < V1 and may_cross(V0, I0, tm, ts, th)


@njit(**_JIT)
def _note_peak_cheap(V0, I0, V1, I1, t0, t1, t_max, tm, ts, g, th, df):
    """The general engine's closest-approach rule for an interval without crossing: a maximum
    of V reached before the next arrival (and before ``t_max``) counts ``th - V_max``. The
    peak is computed only where a maximum inside the interval could lower the record."""
    if not (I0 > V0 and I0 > 0.0):          # not rising: the maximum is V0
        if th - V0 < df[F_CLOSEST] and t0 < t_max:
            df[F_CLOSEST] = th - V0
    elif I1 < V1 and th - peak_bound(V0, I0, tm, ts) < df[F_CLOSEST]:
        D_end, Vp = max_on_interval(V0, I0, t1 - t0, tm, ts, g)
        if D_end < t1 - t0 and th - Vp < df[F_CLOSEST]:
            df[F_CLOSEST] = th - Vp


@njit(**_JIT)
def _step(t, t1, V, I, refr, V1, I1, tm, ts, g, th, vr, t_max, df):
    """The next event of one neuron in ``(t, t1]`` (no arrival in between), from its state
    ``(V, I)`` at ``t`` (refractory until ``refr``; ``(V1, I1)``: its state at ``t1`` if no
    event, or nan). Returns ``(event, t_event, V, I)``: event 0: none, the state is moved to
    ``t1``; 1: a spike at ``t_event``, ``I`` its pre-spike current (the caller records and
    resets); 2: the refractory period ends at ``t_event`` with current ``I``; 3: an immediate
    spike at ``t`` (V at threshold by rounding)."""
    if refr > t:                           # held at v_reset until refr
        if refr > t1:
            return 0, t1, vr, I * math.exp(-(t1 - t) / ts)
        return 2, refr, vr, I * math.exp(-(refr - t) / ts)
    if V < th <= V1 and I > V and I1 >= V1:
        # rising through the whole interval: the root is bracketed by [t, t1] already
        D = solve_rising(V, I, t1 - t, V1, tm, ts, g, th)
        return 1, t + D, V, I * math.exp(-D / ts)
    D, D_end, Vp = crossing(V, I, t1 - t, tm, ts, g, th)
    if D == INF:
        # the general engine's closest-approach rule: a maximum without crossing, reached
        # before the next arrival (and before t_max), counts th - V_max
        if D_end < t1 - t and th - Vp < df[F_CLOSEST]:
            df[F_CLOSEST] = th - Vp
        if V1 == V1:
            return 0, t1, V1, I1
        em, es, kk = decay(t1 - t, tm, ts, g)
        V, I = flow(V, I, em, es, kk)
        return 0, t1, V, I
    if D == 0.0:
        return 3, t, V, I
    return 1, t + D, V, I * math.exp(-D / ts)


@njit(inline='always', **_JIT)
def _classify(V, I, refr, t0, t1, em, es, kk, th, vr, tm, ts, g, t_max, V1a, I1a, clist, df):
    """First pass over an interval: every neuron that cannot spike (and is not released) in it
    is moved to ``t1`` at once; the others are listed in ``clist`` with their end states
    ``V1a, I1a``. Returns their number. (Two passes keep the common path free of the costly
    branch, so the candidates' root solves run back to back.)"""
    nc = 0
    for n in range(V.shape[0]):
        V0 = V[n]
        I0 = I[n]
        if refr[n] > t1:
            V[n], I[n] = vr, I0 * es
            continue
        V1, I1 = flow(V0, I0, em, es, kk)
        if refr[n] > t0 or _may_spike(V0, I0, V1, I1, tm, ts, th):
            clist[nc] = n
            V1a[n] = V1
            I1a[n] = I1
            nc += 1
        else:
            _note_peak_cheap(V0, I0, V1, I1, t0, t1, t_max, tm, ts, g, th, df)
            V[n], I[n] = V1, I1
    return nc


@njit(inline='always', **_JIT)
def _candidates(q, t0, t1, nc, clist, V, I, refr, last, V1a, I1a, P, t_max, max_events, R,
                nrec, di, df):
    """Second pass: each listed neuron's spikes and releases in ``(t0, t1]``."""
    tm, ts, g, th, vr, tref = P.p_tm[q], P.p_ts[q], P.p_g[q], P.p_th[q], P.p_vr[q], P.p_tref[q]
    for u in range(nc):
        n = clist[u]
        V0, I0, V1, I1 = V[n], I[n], V1a[n], I1a[n]
        t = t0
        while True:
            di[D_PRED] += refr[n] <= t
            ev, t, V0, I0 = _step(t, t1, V0, I0, refr[n], V1, I1, tm, ts, g, th, vr, t_max, df)
            V1 = I1 = np.nan               # the end state is no longer known
            if ev == 0:
                break
            di[D_EVENTS] += 1
            if ev == 2:
                R[4][last[n]] = I0
                continue
            di[D_SOLVES] += ev == 1
            di[D_IMMEDIATE] += ev == 3
            R = _record(R, nrec, t, q, n, I0)
            last[n] = nrec
            nrec += 1
            di[D_SPIKES] += 1
            if I0 - th < df[F_SLOPE]:
                df[F_SLOPE] = I0 - th
            if di[D_EVENTS] > max_events:
                df[F_FAIL] = t
                return R, nrec
            V0 = vr
            if tref > 0.0:
                refr[n] = t + tref if t + tref <= t_max else INF
        V[n], I[n] = V0, I0
    return R, nrec


@njit(**_JIT)
def _walk_forward(P, W, q, at, aj, am, t_max, max_events, R, nrec, di, df):
    """All neurons of population ``q`` through its arrival intervals (see the module docs)."""
    N = P.pop_size[q]
    tm, ts, g, th, vr = P.p_tm[q], P.p_ts[q], P.p_g[q], P.p_th[q], P.p_vr[q]
    V, I = np.zeros(N), np.zeros(N)
    V1a, I1a = np.empty(N), np.empty(N)
    clist = np.empty(N, dtype=np.int64)
    refr = np.full(N, -INF)
    last = np.full(N, -1, dtype=np.int64)
    n_arr = at.shape[0]
    t0 = 0.0
    k = 0
    while True:
        t1 = at[k] if k < n_arr else t_max
        if t1 > t0 and k > 0:              # (before the first arrival: at rest, untouched)
            em, es, kk = decay(t1 - t0, tm, ts, g)
            if th == INF:
                for n in range(N):
                    V[n], I[n] = flow(V[n], I[n], em, es, kk)
            else:
                nc = _classify(V, I, refr, t0, t1, em, es, kk, th, vr, tm, ts, g, t_max, V1a,
                               I1a, clist, df)
                R, nrec = _candidates(q, t0, t1, nc, clist, V, I, refr, last, V1a, I1a, P,
                                      t_max, max_events, R, nrec, di, df)
                if di[D_EVENTS] > max_events:
                    return R, nrec
        if k >= n_arr:
            return R, nrec
        while k < n_arr and at[k] == t1:
            row = P.proj_w_off[aj[k]] + am[k] * N
            for n in range(N):
                I[n] += W[row + n]
            k += 1
        t0 = t1


@njit(**_JIT)
def _sort_block(R, a, b):
    """Records ``a..b`` (one population, appended interval by interval) into time order."""
    if b - a < 2:
        return
    o = np.argsort(R[0][a:b], kind="mergesort")
    for f in (R[0], R[3], R[4]):
        f[a:b] = f[a:b][o]
    for f in (R[1], R[2]):
        f[a:b] = f[a:b][o]


@njit(**_JIT)
def forward_sample(P, W, in_t, in_id, t_max, max_events):
    """One sample. Returns ``(status, rec_t, rec_p, rec_i, rec_c, rec_r, diag_i, diag_f)``
    with the records in event order (time, population, neuron); status 1: event limit."""
    npop = P.pop_size.shape[0]
    di = np.zeros(6, dtype=np.int64)
    df = np.array([INF, INF, 0.0])
    for u in range(in_t.shape[0]):
        if in_t[u] > t_max:
            di[D_LATE] += 1
        else:
            di[D_EVENTS] += 1
    cap = 64
    R = (np.empty(cap), np.empty(cap, dtype=np.int64), np.empty(cap, dtype=np.int64),
         np.empty(cap), np.empty(cap))
    nrec = 0
    first = np.zeros(npop, dtype=np.int64)     # records of population p: first[p]..last[p]
    last = np.zeros(npop, dtype=np.int64)
    status = 0
    for qi in range(npop):
        q = P.topo[qi]
        idx = np.arange(nrec)
        at, aj, am, _, _ = arrivals_into(P, q, t_max, in_t, in_id, R[0], R[2], first, last,
                                         idx)
        di[D_EVENTS] += at.shape[0]
        if di[D_EVENTS] > max_events:
            df[F_FAIL] = at[-1] if at.shape[0] else 0.0
            status = 1
            break
        a = nrec
        R, nrec = _walk_forward(P, W, q, at, aj, am, t_max, max_events, R, nrec, di, df)
        if di[D_EVENTS] > max_events:
            status = 1
            break
        _sort_block(R, a, nrec)
        first[q] = a
        last[q] = nrec
    o = _event_order(R, nrec)
    return status, R[0][o], R[1][o], R[2][o], R[3][o], R[4][o], di, df


@njit(**_JIT)
def _event_order(R, nrec):
    """Indices of the records in event order: by time, then population, then neuron."""
    o = np.argsort(R[2][:nrec], kind="mergesort")
    o = o[np.argsort(R[1][o], kind="mergesort")]
    return o[np.argsort(R[0][o], kind="mergesort")]


# --------------------------------------------------------------------------- adjoint
@njit(**_JIT)
def _own_events(P, q, t_max, rec_t, rec_i, first, last, idx, pr_pop, pr_n, pr_t, pr_end):
    """A population's own events for the adjoint, per neuron in (time, rank) order.

    Returns ``(ptr, ev_t, ev_rank, ev_idx)``: neuron ``n``'s events are
    ``ptr[n]..ptr[n + 1]``; ranks 0 spike, 1 release (``ev_idx``: the record), 2 probe
    (``ev_idx``: the probe). Probes at ``t_max`` after every event (``pr_end``) are not
    listed (the caller applies them first).
    """
    N = P.pop_size[q]
    tref = P.p_tref[q]
    ns = last[q] - first[q]
    cap = 2 * ns + pr_pop.shape[0]
    ev_t = np.empty(cap)
    ev_r = np.empty(cap, dtype=np.int64)
    ev_n = np.empty(cap, dtype=np.int64)
    ev_i = np.empty(cap, dtype=np.int64)
    c = 0
    for u in range(ns):
        k = idx[first[q] + u]
        for rank in range(2):
            t = rec_t[k] + (tref if rank == 1 else 0.0)
            if rank == 1 and not (tref > 0.0 and t <= t_max):
                continue
            ev_t[c], ev_r[c], ev_n[c], ev_i[c] = t, rank, rec_i[k], k
            c += 1
    for u in range(pr_pop.shape[0]):
        if pr_pop[u] == q and not pr_end[u]:
            ev_t[c], ev_r[c], ev_n[c], ev_i[c] = pr_t[u], 2, pr_n[u], u
            c += 1
    o = np.argsort(ev_r[:c], kind="mergesort")
    o = o[np.argsort(ev_t[o], kind="mergesort")]
    o = o[np.argsort(ev_n[o], kind="mergesort")]
    ptr = np.zeros(N + 1, dtype=np.int64)
    for u in range(c):
        ptr[ev_n[u] + 1] += 1
    for n in range(N):
        ptr[n + 1] += ptr[n]
    return ptr, ev_t[o], ev_r[o], ev_i[o]


@njit(**_JIT)
def _retreat(mu_V, mu_I, D, tm, ts, g):
    if D > 0.0:
        em, es, kk = decay(D, tm, ts, g)
        return flow_adjoint(mu_V, mu_I, em, es, kk)
    return mu_V, mu_I


@njit(**_JIT)
def _neuron_back(P, q, mV, mI, t_hi, t_lo, p, p0, ev_t, ev_r, ev_i, rec_c, rec_r, g_t, pr_dl,
                 n_graz):
    """Costate of one neuron from ``t_hi`` back to ``t_lo`` through its own events
    ``p0..p`` (descending) in ``(t_lo, t_hi]``. Returns ``(mu_V, mu_I, p, n_grazing)``."""
    tm, ts, g = P.p_tm[q], P.p_ts[q], P.p_g[q]
    th, vr = P.p_th[q], P.p_vr[q]
    cur = t_hi
    while p >= p0 and ev_t[p] > t_lo:
        te = ev_t[p]
        mV, mI = _retreat(mV, mI, cur - te, tm, ts, g)
        cur = te
        k = ev_i[p]
        if ev_r[p] == 0:
            mV, graz = spike_adjoint(mV, rec_c[k], th, vr, tm, g_t[k])
            n_graz += graz
        elif ev_r[p] == 1:
            g_t[k] += release_adjoint(mV, rec_r[k], vr, tm)
            mV = 0.0
        else:
            mV += pr_dl[k]
        p -= 1
    mV, mI = _retreat(mV, mI, cur - t_lo, tm, ts, g)
    return mV, mI, p, n_graz


@njit(**_JIT)
def _arrival_grads(P, W, q, row, tag, t, mu_V, mu_I, kinks_n, kinks_x, kinks_t, gw, gd, g_t,
                   g_in):
    """Adjoint of one arrival (presynaptic row ``row`` of W) into every neuron of ``q``."""
    N = P.pop_size[q]
    tm, ts = P.p_tm[q], P.p_ts[q]
    total = 0.0
    for n in range(N):
        dLda = arrival_adjoint(W[row + n], mu_V[n], mu_I[n], tm, ts)
        gw[row + n] += mu_I[n]
        gd[row + n] += dLda
        total += dLda
    for u in range(kinks_n.shape[0]):
        if kinks_t[u] == t:
            gd[row + kinks_n[u]] += kinks_x[u]
            total += kinks_x[u]
    if tag >= 0:
        g_t[tag] += total
    else:
        g_in[-tag - 1] += total


@njit(**_JIT)
def _kinks(q, pr_pop, pr_n, pr_t, pr_dl, pr_arr, pr_vdot):
    """The population's probes on a kink of V at an arrival: neuron, time, dL/dV * dV/dt."""
    c = 0
    for u in range(pr_pop.shape[0]):
        if pr_pop[u] == q and pr_arr[u]:
            c += 1
    kn = np.empty(c, dtype=np.int64)
    kt = np.empty(c)
    kx = np.empty(c)
    c = 0
    for u in range(pr_pop.shape[0]):
        if pr_pop[u] == q and pr_arr[u]:
            kn[c], kt[c], kx[c] = pr_n[u], pr_t[u], pr_dl[u] * pr_vdot[u]
            c += 1
    return kn, kt, kx


@njit(**_JIT)
def _walk_backward(P, W, q, t_max, in_t, in_id, rec_t, rec_i, rec_c, rec_r, first, last, idx,
                   g_t, g_in, pr, gw, gd):
    """The costate of population ``q`` from ``t_max`` back to its first arrival."""
    pr_pop, pr_n, pr_t, pr_dl, pr_arr, pr_vdot, pr_end = pr
    N = P.pop_size[q]
    tm, ts, g = P.p_tm[q], P.p_ts[q], P.p_g[q]
    at, aj, am, atag, _ = arrivals_into(P, q, t_max, in_t, in_id, rec_t, rec_i, first, last,
                                        idx)
    ptr, ev_t, ev_r, ev_i = _own_events(P, q, t_max, rec_t, rec_i, first, last, idx, pr_pop,
                                        pr_n, pr_t, pr_end)
    kn, kt, kx = _kinks(q, pr_pop, pr_n, pr_t, pr_dl, pr_arr, pr_vdot)
    mu_V = np.zeros(N)
    mu_I = np.zeros(N)
    for u in range(pr_pop.shape[0]):
        if pr_pop[u] == q and pr_end[u]:
            mu_V[pr_n[u]] += pr_dl[u]
    p = ptr[1:] - 1
    n_graz = 0
    t_hi = t_max
    k = at.shape[0] - 1
    while k >= 0:
        t_lo = at[k]
        em, es, kk = decay(t_hi - t_lo, tm, ts, g)
        for n in range(N):
            if p[n] >= ptr[n] and ev_t[p[n]] > t_lo:
                mu_V[n], mu_I[n], p[n], n_graz = _neuron_back(
                    P, q, mu_V[n], mu_I[n], t_hi, t_lo, p[n], ptr[n], ev_t, ev_r, ev_i, rec_c,
                    rec_r, g_t, pr_dl, n_graz)
            elif t_hi > t_lo:
                mu_V[n], mu_I[n] = flow_adjoint(mu_V[n], mu_I[n], em, es, kk)
        while k >= 0 and at[k] == t_lo:
            row = P.proj_w_off[aj[k]] + am[k] * N
            _arrival_grads(P, W, q, row, atag[k], t_lo, mu_V, mu_I, kn, kx, kt, gw, gd, g_t,
                           g_in)
            k -= 1
        t_hi = t_lo
    return n_graz


@njit(**_JIT)
def backward_sample(P, W, rec_t, rec_p, rec_i, rec_c, rec_r, g_t0, in_t, in_id, t_max, pr,
                    gw, gd):
    """Adjoint of one sample: adds dL/dw and dL/dd into ``gw``, ``gd`` (flat like W).

    ``g_t0``: dL/dt of each record through the loss; ``pr``: the sample's voltage probes
    ``(pop, neuron, time, dL_dV, at_arrival, vdot_left, at_end)``. Returns ``(g_in, g_t,
    n_grazing)``: dL/d(input spike time), the complete dL/dt_k of every record.
    """
    npop = P.pop_size.shape[0]
    g_t = g_t0.copy()
    g_in = np.zeros(in_t.shape[0])
    first, last, idx = by_population(rec_p, rec_t, npop)
    n_graz = 0
    for qi in range(npop - 1, -1, -1):
        q = P.topo[qi]
        n_graz += _walk_backward(P, W, q, t_max, in_t, in_id, rec_t, rec_i, rec_c, rec_r,
                                 first, last, idx, g_t, g_in, pr, gw, gd)
    return g_in, g_t, n_graz

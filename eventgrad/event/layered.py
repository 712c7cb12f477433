"""The layered fast path: populations one after another, neurons side by side.

When the populations have a topological order (no recurrent loop) and every presynaptic neuron
reaches all its postsynaptic neurons with one delay (``Plan.layered``), the spikes of a
population are known once the populations before it are done, and every neuron of a population
sees the same arrival times. So the engine takes the populations in topological order; for each
it lists the arrivals (:func:`eventgrad.event.arrivals.arrivals_into`) and walks the intervals
between them with every neuron at once. The flow coefficients ``exp(-D/tau)`` and ``k(D)`` of an
interval are shared by the population; only a neuron that may reach threshold
(:func:`_classify`) or is refractory goes through the scalar rule
(:func:`_step`), which finds its crossings with
:func:`~eventgrad.model.physics.crossing` exactly as the general engine does. No queue, no heap.

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

from ..model.physics import (
    arrival_adjoint,
    crossing,
    decay,
    flow,
    flow_adjoint,
    interior_bound,
    is_candidate,
    max_on_interval,
    may_cross,
    peak_bound,
    release_adjoint,
    solve_rising,
    spike_adjoint,
)
from .arrivals import arrivals_into, by_population, is_sorted, stable_order
from .diagnostics import (
    D_EVENTS,
    D_IMMEDIATE,
    D_LATE,
    D_PRED,
    D_SOLVES,
    D_SPIKES,
    F_CLOSEST,
    F_FAIL,
    F_SLOPE,
    N_INT,
    closest_start,
)

__all__ = ["forward_sample", "backward_sample"]

INF = math.inf
_JIT = {"cache": True, "nogil": True}



@njit(**_JIT)
def _grown(rt, ri, rc, rr):
    """The record buffers with four times the room (only when full)."""
    cap = 4 * rt.shape[0]
    out = (np.empty(cap), np.empty(cap, dtype=np.int64), np.empty(cap), np.empty(cap))
    n = rt.shape[0]
    out[0][:n], out[1][:n], out[2][:n], out[3][:n] = rt, ri, rc, rr
    return out


@njit(**_JIT)
def _sort(V0, I0, V1, I1, t0, t1, t_max, tm, ts, g, th, closest):
    """The rule of an interval from ``(V0, I0)`` at ``t0`` to ``(V1, I1)`` at ``t1`` (no event
    in between). Returns ``(candidate, closest)``: whether it may reach ``th``
    (:func:`~eventgrad.model.physics.is_candidate`; the full test of :func:`_step` decides),
    and otherwise the closest approach updated (:func:`_closest`)."""
    bound = peak_bound(V0, I0, tm, ts)
    if is_candidate(V0, I0, V1, I1, bound, th):
        return True, closest
    return False, _closest(V0, I0, V1, I1, bound, t0, t1, t_max, tm, ts, g, th, closest)


@njit(inline="always", **_JIT)
def _classify(V0, I0, V1, I1, released, inv_em, t0, t1, t_max, tm, ts, g, th, closest):
    """:func:`_sort` for a neuron that is not held, with the division-free
    :func:`~eventgrad.model.physics.interior_bound` tried first and
    :func:`~eventgrad.model.physics.peak_bound` only where it does not settle the test (the
    same decision: an interior maximum is a candidate only if both bounds reach threshold).
    ``released``: its refractory period ends in the interval (then it is a candidate)."""
    rising = I0 > V0 and I0 > 0.0
    bound = interior_bound(I0, V1, inv_em) if rising and I1 < V1 else V0
    if rising and may_cross(bound, th):
        bound = min(bound, peak_bound(V0, I0, tm, ts))
    if released or is_candidate(V0, I0, V1, I1, bound, th):
        return True, closest
    return False, _closest(V0, I0, V1, I1, bound, t0, t1, t_max, tm, ts, g, th, closest)


@njit(**_JIT)
def _closest(V0, I0, V1, I1, bound, t0, t1, t_max, tm, ts, g, th, closest):
    """The general engine's closest-approach rule on an interval whose maximum is below
    threshold (the two engines agree up to a maximum within rounding of the interval's end): a
    maximum reached before the next arrival and before ``t_max`` counts ``th - V_max``. The peak
    is located only where its bound ``bound`` could beat ``closest``, so the result does not
    depend on the order in which the neurons are taken."""
    if not (I0 > V0 and I0 > 0.0):         # not rising: the maximum is V0
        return min(closest, th - V0) if t0 < t_max else closest
    if I1 < V1 and th - bound < closest:   # an interior maximum that may beat closest
        D_end, Vp = max_on_interval(V0, I0, t1 - t0, tm, ts, g)
        if D_end < t1 - t0:
            closest = min(closest, th - Vp)
    return closest


@njit(**_JIT)
def _step(t, t1, V, I, refr, V1, I1, tm, ts, g, th, vr, t_max, closest):
    """The next event of one neuron in ``(t, t1]`` (no arrival in between), from its state
    ``(V, I)`` at ``t`` (refractory until ``refr``; ``(V1, I1)``: its state at ``t1`` if no
    event, known only where :func:`_classify` found it a candidate, else nan). Returns
    ``(event, t_event, V, I, closest)``: event 0: none, the state is moved to ``t1`` and
    ``closest`` updated (:func:`_sort`); 1: a spike at ``t_event``, ``I``
    its pre-spike current (the caller records and resets); 2: the refractory period ends at
    ``t_event`` with current ``I``; 3: an immediate spike at ``t`` (V at threshold by
    rounding)."""
    if refr > t:                           # held at v_reset until refr
        if refr > t1:
            return 0, t1, vr, I * math.exp(-(t1 - t) / ts), closest
        return 2, refr, vr, I * math.exp(-(refr - t) / ts), closest
    sorted_ = not math.isnan(V1)           # (a candidate of _classify)
    if not sorted_:                        # the end state is not known yet
        em, es, kk = decay(t1 - t, tm, ts, g)
        V1, I1 = flow(V, I, em, es, kk)
    if V >= th:
        return 3, t, V, I, closest
    if V1 >= th and I > V and I1 >= V1:
        # rising through the whole interval: the root is bracketed by [t, t1] already
        D = solve_rising(V, I, t1 - t, V1, I1, False, tm, ts, g, th)
        return 1, t + D, V, I * math.exp(-D / ts), closest
    if not sorted_:
        candidate, closest = _sort(V, I, V1, I1, t, t1, t_max, tm, ts, g, th, closest)
        if not candidate:
            return 0, t1, V1, I1, closest
    D, D_end, Vp = crossing(V, I, t1 - t, tm, ts, g, th)
    if D == INF:
        return 0, t1, V1, I1, (min(closest, th - Vp) if D_end < t1 - t else closest)
    return 1, t + D, V, I * math.exp(-D / ts), closest


@njit(inline="always", **_JIT)
def _walk_forward(P, W, q, at, aj, am, t_max, max_events, rt, ri, rc, rr, nrec, di, df,
                  only_first):
    """All neurons of population ``q`` through its arrival intervals (see the module docs);
    appends their spikes to the record buffers from ``nrec`` on. Returns the new record
    count, or -1 if the buffers are full (then nothing else is to be trusted: the caller
    grows the buffers and runs the population again from its saved counters).

    Each interval takes two passes: every neuron is moved to its end and sorted
    (:func:`_classify`), then the candidates' events are found one by one (:func:`_step`).
    The per-neuron rules take and return scalars only, and no array variable is reassigned in
    the loops: either costs numba a reference-count update (an atomic operation) per
    iteration.
    """
    N = P.pop_size[q]
    tm, ts, g, th, vr, tref = P.p_tm[q], P.p_ts[q], P.p_g[q], P.p_th[q], P.p_vr[q], P.p_tref[q]
    w_off = P.proj_w_off
    cap = rt.shape[0]
    V, I = np.zeros(N), np.zeros(N)
    V1a, I1a = np.empty(N), np.empty(N)
    clist = np.empty(N, dtype=np.int64)
    refr = np.full(N, -INF)
    last = np.full(N, -1, dtype=np.int64)
    closest, slope = df[F_CLOSEST], df[F_SLOPE]
    n_ev, n_sp, n_pred, n_solve, n_imm, n_done = di[D_EVENTS], 0, 0, 0, 0, 0
    n_arr = at.shape[0]
    full = False
    t0 = 0.0
    k = 0
    while True:
        t1 = at[k] if k < n_arr else t_max
        if t1 > t0 and k > 0 and th < INF:  # (before the first arrival: at rest, untouched)
            em, es, kk = decay(t1 - t0, tm, ts, g)
            inv_em = 1.0 / em
            nc = 0
            for n in range(N):             # the flow for all, and who may spike (_classify)
                v1, i1 = flow(V[n], I[n], em, es, kk)
                V1a[n], I1a[n] = v1, i1
                if refr[n] > t1:           # held at v_reset throughout
                    V1a[n] = vr
                    continue
                cand, closest = _classify(V[n], I[n], v1, i1, refr[n] > t0, inv_em, t0, t1,
                                          t_max, tm, ts, g, th, closest)
                if cand:
                    clist[nc] = n
                    nc += 1
            for u in range(nc):
                n = clist[u]
                V0, I0, V1, I1, t = V[n], I[n], V1a[n], I1a[n], t0
                while True:                # this neuron's events in (t0, t1]
                    n_pred += refr[n] <= t
                    ev, t, V0, I0, closest = _step(t, t1, V0, I0, refr[n], V1, I1, tm, ts, g,
                                                   th, vr, t_max, closest)
                    V1 = I1 = np.nan       # the end state is no longer known
                    if ev == 0:
                        break
                    n_ev += 1
                    if ev == 2:
                        rr[last[n]] = I0
                        continue
                    n_solve += ev == 1
                    n_imm += ev == 3
                    if nrec == cap:
                        full = True
                        break
                    rt[nrec], ri[nrec], rc[nrec], rr[nrec] = t, n, I0, np.nan
                    last[n] = nrec
                    nrec += 1
                    n_sp += 1
                    slope = min(slope, I0 - th)
                    if n_ev > max_events:
                        break
                    V0 = vr
                    refr[n] = _hold_until(t, tref, t_max, only_first)
                    n_done += only_first
                    if refr[n] == INF:     # held for good: its current is never read again
                        V0, I0 = vr, I1a[n]  # (the flow's, to spare the exp)
                        break
                V1a[n], I1a[n] = V0, I0
                if full:
                    return -1
                if n_ev > max_events:
                    df[F_FAIL] = t
                    break
            for n in range(N):             # the end states become the states (copied:
                V[n], I[n] = V1a[n], I1a[n]  # swapping the arrays would cost refcounts)
        elif t1 > t0 and k > 0:            # a non-spiking population: the flow only
            em, es, kk = decay(t1 - t0, tm, ts, g)
            for n in range(N):
                V[n], I[n] = flow(V[n], I[n], em, es, kk)
        if k >= n_arr or n_ev > max_events or n_done == N:   # (all held for good: done)
            break
        while k < n_arr and at[k] == t1:
            row = w_off[aj[k]] + am[k] * N
            for n in range(N):
                I[n] += W[row + n]
            k += 1
        t0 = t1
    di[D_EVENTS], di[D_SPIKES], di[D_PRED] = n_ev, di[D_SPIKES] + n_sp, di[D_PRED] + n_pred
    di[D_SOLVES] += n_solve
    di[D_IMMEDIATE] += n_imm
    df[F_CLOSEST], df[F_SLOPE] = closest, slope
    return nrec


@njit(**_JIT)
def _hold_until(t, tref, t_max, only_first):
    """End of the refractory period after a spike at ``t`` (inf: none in the window, or held
    for good when only first spikes are followed)."""
    if only_first:
        return INF
    if tref > 0.0:
        return t + tref if t + tref <= t_max else INF
    return -INF


@njit(**_JIT)
def forward_sample(P, W, in_t, in_id, t_max, max_events, first_only, track_closest):
    """One sample. Returns ``(status, rec_t, rec_p, rec_i, rec_c, rec_r, diag_i, diag_f)``
    with the records in event order (time, population, neuron); status 1: event limit. The
    neurons of a population with ``first_only[p]`` stop after their first spike. Without
    ``track_closest`` the closest approach is not computed (``diag_f[F_CLOSEST]`` is -inf)."""
    npop = P.pop_size.shape[0]
    di = np.zeros(N_INT, dtype=np.int64)
    df = np.array([closest_start(track_closest), INF, 0.0])
    for u in range(in_t.shape[0]):
        if in_t[u] > t_max:
            di[D_LATE] += 1
        else:
            di[D_EVENTS] += 1
    rt, ri, rc, rr = np.empty(256), np.empty(256, dtype=np.int64), np.empty(256), np.empty(256)
    di0, df0 = np.empty_like(di), np.empty_like(df)   # the counters before a population
    first = np.zeros(npop, dtype=np.int64)    # records of population p: first[p]..last[p]
    last = np.zeros(npop, dtype=np.int64)
    nrec = 0
    status = 0
    for qi in range(npop):
        q = P.topo[qi]
        at, aj, am, _, _ = arrivals_into(P, q, t_max, in_t, in_id, rt, ri, first, last,
                                         np.arange(nrec))
        di[D_EVENTS] += at.shape[0]
        if di[D_EVENTS] > max_events:
            df[F_FAIL] = at[-1] if at.shape[0] else 0.0
            status = 1
            break
        a = nrec
        di0[:], df0[:] = di, df
        while True:
            nrec = _walk_forward(P, W, q, at, aj, am, t_max, max_events, rt, ri, rc, rr, a, di,
                                 df, first_only[q])
            if nrec >= 0:
                break
            rt, ri, rc, rr = _grown(rt, ri, rc, rr)   # full: again with room (rare)
            di[:], df[:] = di0, df0
        first[q], last[q] = a, nrec
        if di[D_EVENTS] > max_events:
            status = 1
            break
        _sort_block(rt, ri, rc, rr, a, nrec)
    pop = np.empty(nrec, dtype=np.int64)
    for q in range(npop):
        pop[first[q]:last[q]] = q
    o = _event_order(rt, first, last)
    return status, rt[o], pop[o], ri[o], rc[o], rr[o], di, df


@njit(**_JIT)
def _sort_block(rt, ri, rc, rr, a, b):
    """Records ``a..b`` (one population, appended interval by interval: sorted across
    intervals, not within one) into time order, stably."""
    if b - a < 2 or is_sorted(rt[a:b], b - a):
        return
    o = stable_order(rt[a:b], b - a)
    rt[a:b], ri[a:b], rc[a:b], rr[a:b] = rt[a:b][o], ri[a:b][o], rc[a:b][o], rr[a:b][o]


@njit(**_JIT)
def _event_order(rt, first, last):
    """Indices of the records in event order: by time, then population, then neuron. Each
    population's block ``first[p]..last[p]`` is in (time, neuron) order; merging the blocks one
    after another in population order, ties to the earlier, gives ties the population order."""
    n = 0
    order = np.empty(last.sum() - first.sum(), dtype=np.int64)
    tmp = np.empty_like(order)
    for p in range(first.shape[0]):
        a, b = first[p], last[p]
        i, j, c = 0, a, 0
        while i < n or j < b:
            if j >= b or (i < n and rt[order[i]] <= rt[j]):
                tmp[c] = order[i]
                i += 1
            else:
                tmp[c] = j
                j += 1
            c += 1
        order, tmp = tmp, order
        n = c
    return order


# --------------------------------------------------------------------------- adjoint
@njit(**_JIT)
def _own_events(P, q, t_max, rec_t, rec_i, rec_r, first, last, idx, pr_pop, pr_n, pr_t,
                pr_end):
    """A population's own events for the adjoint, per neuron in (time, rank) order.

    Returns ``(ptr, ev_t, ev_rank, ev_idx)``: neuron ``n``'s events are
    ``ptr[n]..ptr[n + 1]``; ranks 0 spike, 1 release (``ev_idx``: the record), 2 probe
    (``ev_idx``: the probe). Probes at ``t_max`` after every event (``pr_end``) are not
    listed (the caller applies them first). A neuron's spikes come in time order, each
    followed by its release; probes are put in place one by one.
    """
    N = P.pop_size[q]
    tref = P.p_tref[q]
    ptr = np.zeros(N + 1, dtype=np.int64)
    for u in range(first[q], last[q]):
        k = idx[u]
        ptr[rec_i[k] + 1] += 1 + (tref > 0.0 and rec_r[k] == rec_r[k])
    for u in range(pr_pop.shape[0]):
        if pr_pop[u] == q and not pr_end[u]:
            ptr[pr_n[u] + 1] += 1
    for n in range(N):
        ptr[n + 1] += ptr[n]
    fill = ptr[:N].copy()
    ev_t = np.empty(ptr[N])
    ev_r = np.empty(ptr[N], dtype=np.int64)
    ev_i = np.empty(ptr[N], dtype=np.int64)
    for u in range(first[q], last[q]):
        k = idx[u]
        n = rec_i[k]
        ev_t[fill[n]], ev_r[fill[n]], ev_i[fill[n]] = rec_t[k], 0, k
        fill[n] += 1
        if tref > 0.0 and rec_r[k] == rec_r[k]:     # a release the forward pass recorded
            ev_t[fill[n]], ev_r[fill[n]], ev_i[fill[n]] = rec_t[k] + tref, 1, k
            fill[n] += 1
    for u in range(pr_pop.shape[0]):
        if pr_pop[u] == q and not pr_end[u]:
            n = pr_n[u]
            j = fill[n]
            while j > ptr[n] and (ev_t[j - 1] > pr_t[u] or
                                  (ev_t[j - 1] == pr_t[u] and ev_r[j - 1] > 2)):
                ev_t[j], ev_r[j], ev_i[j] = ev_t[j - 1], ev_r[j - 1], ev_i[j - 1]
                j -= 1
            ev_t[j], ev_r[j], ev_i[j] = pr_t[u], 2, u
            fill[n] += 1
    return ptr, ev_t, ev_r, ev_i


@njit(**_JIT)
def _retreat(mu_V, mu_I, D, tm, ts, g):
    if D > 0.0:
        em, es, kk = decay(D, tm, ts, g)
        return flow_adjoint(mu_V, mu_I, em, es, kk)
    return mu_V, mu_I


@njit(**_JIT)
def _own_jump(rank, mu_V, g_tk, I_k, I_rk, dl, th, vr, tm):
    """The costate jump of one of a neuron's own events (rank 0 spike with pre-spike current
    ``I_k`` and dL/dt_k ``g_tk``; 1 release with current ``I_rk``; 2 a probe adding ``dl``).
    Returns ``(mu_V, dL/dt_k added, grazing)``."""
    if rank == 0:
        mu_V, graz = spike_adjoint(mu_V, I_k, th, vr, tm, g_tk)
        return mu_V, 0.0, graz
    if rank == 1:
        return 0.0, release_adjoint(mu_V, I_rk, vr, tm), False
    return mu_V + dl, 0.0, False


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


@njit(inline="always", **_JIT)
def _walk_backward(P, W, q, t_max, in_t, in_id, rec_t, rec_i, rec_c, rec_r, first, last, idx,
                   g_t, g_in, pr, gw, gd):
    """The costate of population ``q`` from ``t_max`` back to its first arrival: the arrival
    intervals in reverse with the transposed flow, shared by the neurons without own events in
    an interval; a neuron's own events (spikes, releases, probes) one by one
    (:func:`_own_jump`); at each arrival dL/dw, dL/dd and dL/d(its cause's time). Returns the
    number of grazing spikes. (The loops are written out here: see :func:`_walk_forward`.)"""
    pr_pop, pr_n, pr_t, pr_dl, pr_arr, pr_vdot, pr_end = pr
    N = P.pop_size[q]
    tm, ts, g, th, vr = P.p_tm[q], P.p_ts[q], P.p_g[q], P.p_th[q], P.p_vr[q]
    w_off = P.proj_w_off
    at, aj, am, atag, _ = arrivals_into(P, q, t_max, in_t, in_id, rec_t, rec_i, first, last,
                                        idx)
    ptr, ev_t, ev_r, ev_i = _own_events(P, q, t_max, rec_t, rec_i, rec_r, first, last, idx,
                                        pr_pop, pr_n, pr_t, pr_end)
    kn, kt, kx = _kinks(q, pr_pop, pr_n, pr_t, pr_dl, pr_arr, pr_vdot)
    mu_V, mu_I = np.zeros(N), np.zeros(N)
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
                mV, mI, cur = mu_V[n], mu_I[n], t_hi
                while p[n] >= ptr[n] and ev_t[p[n]] > t_lo:
                    e = p[n]
                    mV, mI = _retreat(mV, mI, cur - ev_t[e], tm, ts, g)
                    cur = ev_t[e]
                    r, x = ev_r[e], ev_i[e]
                    if r == 2:
                        mV, dg, graz = _own_jump(2, mV, 0.0, 0.0, 0.0, pr_dl[x], th, vr, tm)
                    else:
                        mV, dg, graz = _own_jump(r, mV, g_t[x], rec_c[x], rec_r[x], 0.0, th, vr,
                                                 tm)
                        g_t[x] += dg
                    n_graz += graz
                    p[n] -= 1
                mu_V[n], mu_I[n] = _retreat(mV, mI, cur - t_lo, tm, ts, g)
            elif t_hi > t_lo:
                mu_V[n], mu_I[n] = flow_adjoint(mu_V[n], mu_I[n], em, es, kk)
        while k >= 0 and at[k] == t_lo:
            row = w_off[aj[k]] + am[k] * N
            total = 0.0
            for n in range(N):
                dLda = arrival_adjoint(W[row + n], mu_V[n], mu_I[n], tm, ts)
                gw[row + n] += mu_I[n]
                gd[row + n] += dLda
                total += dLda
            for u in range(kn.shape[0]):
                if kt[u] == t_lo:
                    gd[row + kn[u]] += kx[u]
                    total += kx[u]
            if atag[k] >= 0:
                g_t[atag[k]] += total
            else:
                g_in[-atag[k] - 1] += total
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

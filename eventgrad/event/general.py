"""The general compiled engine: one event queue for any topology (recurrence, per-synapse
delays, refractoriness), and its adjoint.

The algorithm is the reference engine's (:mod:`eventgrad.event.reference`), over flat arrays:

* the queue is a binary heap keyed by ``(time, rank, source, index, sequence)`` with the ranks
  of :mod:`eventgrad.event.order`; a revised crossing prediction invalidates the old heap entry
  through a per-neuron version number instead of removing it (stale entries are skipped and not
  counted);
* a prediction whose maximum reaches threshold is queued at a lower bound of its crossing time,
  ``tau_mem (threshold - V0)/(I0 - V0)`` (on the rising part ``dV/dt <= (I0 - V0)/tau_mem``),
  and solved only if that entry reaches the front of the queue still valid, from the state
  stored at prediction time, so the spike time is the one an immediate solve gives; most
  predictions are superseded by a later arrival and never solved;
* every closed form comes from :mod:`eventgrad.model.physics`, as in the reference engine, so
  the two agree bit for bit wherever numpy's vectorised exponentials agree with the C
  library's (cross-tested).

The adjoint rebuilds the event list from the records, sorts it once by the same key and walks it
backward with the costate (``docs/adjoint.md``). Per-sample outputs: see :func:`forward_sample`
and :func:`backward_sample` (the same as :mod:`eventgrad.event.layered`'s).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..model.physics import (
    arrival_adjoint,
    crossing_lower_bound,
    decay,
    flow,
    flow_adjoint,
    max_on_interval,
    release_adjoint,
    solve_crossing,
    spike_adjoint,
)
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
from .order import ARRIVAL, PROBE, PROBE_END, RELEASE, SPIKE

__all__ = ["forward_sample", "backward_sample"]

INF = math.inf
_JIT = {"cache": True, "nogil": True}

# pending prediction of a neuron: int columns, float columns
PV, PON, PEXACT = 0, 1, 2
PV0, PI0, PDEND, PT0 = 0, 1, 2, 3


# --------------------------------------------------------------------------- binary heap
# ``ht`` (times) and ``hk`` (int64 columns: rank, source, index, sequence, extra), ordered by
# (time, rank, source, index, sequence); ``hc = [size, next sequence number]``.
@njit(**_JIT)
def _less(ht, hk, i, j):
    if ht[i] != ht[j]:
        return ht[i] < ht[j]
    for c in range(4):
        if hk[i, c] != hk[j, c]:
            return hk[i, c] < hk[j, c]
    return False


@njit(**_JIT)
def _swap(ht, hk, i, j):
    ht[i], ht[j] = ht[j], ht[i]
    for c in range(5):
        hk[i, c], hk[j, c] = hk[j, c], hk[i, c]


@njit(**_JIT)
def _push(ht, hk, hc, t, rank, a, b, x):
    """Insert an entry (there is room: :func:`_run` stops before an event when fewer than the
    most entries one event can add are free)."""
    hn = hc[0]
    ht[hn] = t
    hk[hn, 0] = rank
    hk[hn, 1] = a
    hk[hn, 2] = b
    hk[hn, 3] = hc[1]
    hk[hn, 4] = x
    hc[1] += 1
    hc[0] += 1
    i = hn
    while i > 0:
        par = (i - 1) >> 1
        if not _less(ht, hk, i, par):
            break
        _swap(ht, hk, i, par)
        i = par


@njit(**_JIT)
def _pop(ht, hk, hc):
    """Remove the smallest entry (read it first)."""
    hn = hc[0] - 1
    hc[0] = hn
    if hn > 0:
        _swap(ht, hk, 0, hn)
        i = 0
        while True:
            c = 2 * i + 1
            if c >= hn:
                break
            if c + 1 < hn and _less(ht, hk, c + 1, c):
                c += 1
            if not _less(ht, hk, c, i):
                break
            _swap(ht, hk, i, c)
            i = c


# --------------------------------------------------------------------------- forward
@njit(**_JIT)
def _pop_of(pop_off, gi):
    p = 0
    while pop_off[p + 1] <= gi:
        p += 1
    return p


@njit(**_JIT)
def _advance(pp, p, t, V, I, refr, pop_t):
    """Move population ``p``'s state forward to ``t`` in closed form (refractory V held).
    ``pp``: the population parameters (:func:`_pop_params`)."""
    pop_off, p_tm, p_ts, p_g, p_vr, _, _ = pp
    D = t - pop_t[p]
    if D > 0.0:
        em, es, kk = decay(D, p_tm[p], p_ts[p], p_g[p])
        vr = p_vr[p]
        for q in range(pop_off[p], pop_off[p + 1]):
            if refr[q]:
                V[q], I[q] = vr, I[q] * es
            else:
                V[q], I[q] = flow(V[q], I[q], em, es, kk)
        pop_t[p] = t


@njit(**_JIT)
def _pop_params(P):
    """The plan's per-population arrays the event loop's rules need, as one small tuple:
    each array a compiled helper receives costs numba a reference-count update per call, so
    the rules take these few arrays rather than the whole plan."""
    return P.pop_off, P.p_tm, P.p_ts, P.p_g, P.p_vr, P.p_th, P.p_tref


@njit(**_JIT)
def _sources(P):
    """The plan's arrays that lead from a spike to its arrivals (``src_ptr, src_proj, row_ptr,
    grp_ptr, grp_delay``), for :func:`_emit_arrivals` and the adjoint's event list."""
    return P.src_ptr, P.src_proj, P.row_ptr, P.grp_ptr, P.grp_delay


@njit(**_JIT)
def _targets(P):
    """The plan's arrays that lead from an arrival to the neurons it reaches (``proj_post,
    proj_npost, proj_w_off, grp_all, post_ptr, post_idx``), for :func:`_gather_arrivals` and
    :func:`_arrival_back`."""
    return P.proj_post, P.proj_npost, P.proj_w_off, P.grp_all, P.post_ptr, P.post_idx


@njit(**_JIT)
def _resized(a, cap):
    b = np.empty(cap, dtype=a.dtype)
    b[:a.shape[0]] = a
    return b


@njit(**_JIT)
def _grown_heap(ht, hk):
    """The heap arrays with twice the room."""
    n = ht.shape[0]
    ht2 = np.empty(2 * n)
    ht2[:n] = ht
    hk2 = np.empty((2 * n, 5), dtype=np.int64)
    hk2[:n] = hk
    return ht2, hk2


@njit(**_JIT)
def _max_pushes(P, N):
    """The most heap entries one event can add: a prediction for every neuron (an arrival
    reaching all), or a spike's arrivals (the most groups of any presynaptic neuron), its
    release and one prediction."""
    most = 0
    for src in range(-1, P.pop_size.shape[0]):
        n_src = 0
        for jj in range(P.src_ptr[src + 1], P.src_ptr[src + 2]):
            n_src = max(n_src, P.proj_npre[P.src_proj[jj]])
        for n in range(n_src):
            c = 0
            for jj in range(P.src_ptr[src + 1], P.src_ptr[src + 2]):
                j = P.src_proj[jj]
                if n < P.proj_npre[j]:
                    r = P.row_ptr[j] + n
                    c += P.grp_ptr[r + 1] - P.grp_ptr[r]
            most = max(most, c)
    return max(N, most + 2)


@njit(**_JIT)
def _emit_arrivals(conn, ht, hk, hc, src, n, t, t_max):
    """Queue the arrivals of a spike of neuron ``n`` of source ``src`` (-1: input) at ``t``
    (``conn``: :func:`_sources`)."""
    src_ptr, src_proj, row_ptr, grp_ptr, grp_delay = conn
    for jj in range(src_ptr[src + 1], src_ptr[src + 2]):
        j = src_proj[jj]
        r = row_ptr[j] + n
        for k in range(grp_ptr[r], grp_ptr[r + 1]):
            ta = t + grp_delay[k]
            if ta <= t_max:
                _push(ht, hk, hc, ta, ARRIVAL, j, n, k)


@njit(**_JIT)
def _gather_arrivals(pp, post, W, t, a, b, x, ht, hk, hc, V, I, refr, pop_t, touched, tlist,
                     di):
    """Apply the arrival just popped and every other arrival at the same time (currents jump,
    populations advanced first); returns the number of neurons reached (listed in ``tlist``).
    ``post``: :func:`_targets`."""
    proj_post, proj_npost, proj_w_off, grp_all, post_ptr, post_idx = post
    pop_off = pp[0]
    ntouch = 0
    while True:
        p = proj_post[a]
        _advance(pp, p, t, V, I, refr, pop_t)
        npost = proj_npost[a]
        wrow = proj_w_off[a] + b * npost
        cnt = npost if grp_all[x] else post_ptr[x + 1] - post_ptr[x]
        for u in range(cnt):
            c = u if grp_all[x] else post_idx[post_ptr[x] + u]
            gi = pop_off[p] + c
            I[gi] += W[wrow + c]
            if not touched[gi]:
                touched[gi] = True
                tlist[ntouch] = gi
                ntouch += 1
        if not (hc[0] > 0 and ht[0] == t and hk[0, 0] == ARRIVAL):
            break
        a, b, x = hk[0, 1], hk[0, 2], hk[0, 4]
        _pop(ht, hk, hc)
        di[D_EVENTS] += 1
    return ntouch


@njit(**_JIT)
def _realised_peaks(pp, tlist, ntouch, t, touched, refr, peak_t, peak_v, df):
    """Count the realised maxima of the touched neurons (closest approach) and keep the
    non-refractory ones in ``tlist`` for prediction; returns their number."""
    pop_off, p_th = pp[0], pp[5]
    npred = 0
    for u in range(ntouch):
        gi = tlist[u]
        touched[gi] = False
        if peak_t[gi] <= t:
            p = _pop_of(pop_off, gi)
            if p_th[p] - peak_v[gi] < df[F_CLOSEST]:
                df[F_CLOSEST] = p_th[p] - peak_v[gi]
            peak_t[gi] = INF
        if not refr[gi]:
            tlist[npred] = gi
            npred += 1
    return npred


@njit(**_JIT)
def _predict(pp, tlist, npred, t, t_max, V, I, pend_i, pend_f, peak_t, peak_v, ht, hk, hc,
             di):
    """Predict the next crossing of neurons ``tlist[:npred]`` from their states at ``t``
    (lazily: a lower bound is queued and the root solved when it reaches the front of the
    queue). One call per event, not per neuron (see :func:`_pop_params`)."""
    pop_off, p_tm, p_ts, p_g, _, p_th, _ = pp
    H = t_max - t
    for u in range(npred):
        gi = tlist[u]
        p = _pop_of(pop_off, gi)
        th = p_th[p]
        if th == INF:
            continue
        di[D_PRED] += 1
        tm = p_tm[p]
        V0, I0 = V[gi], I[gi]
        D_end, Vp = max_on_interval(V0, I0, H, tm, p_ts[p], p_g[p])
        Dc = INF
        if V0 >= th:
            Dc = 0.0
        elif Vp >= th:
            Dc = crossing_lower_bound(V0, I0, D_end, tm, th)
        pend_i[gi, PV] += 1
        pend_i[gi, PON] = 0
        if Dc < INF:
            exact = V0 >= th
            if exact:
                di[D_IMMEDIATE] += 1
            else:
                pend_f[gi, PV0], pend_f[gi, PI0], pend_f[gi, PDEND] = V0, I0, D_end
                pend_f[gi, PT0] = t
            _push(ht, hk, hc, t + Dc, SPIKE, p, gi - pop_off[p], pend_i[gi, PV])
            pend_i[gi, PON] = 1
            pend_i[gi, PEXACT] = exact
            peak_t[gi] = INF
        else:
            peak_t[gi] = t + D_end if D_end < H else INF
        peak_v[gi] = Vp


@njit(**_JIT)
def _lazy_solve(pp, p, b, pend_i, pend_f, ht, hk, hc, di):
    """A queued lower bound reached the front still valid: solve from the stored state and
    queue the exact crossing time."""
    pop_off, p_tm, p_ts, p_g, _, p_th, _ = pp
    gi = pop_off[p] + b
    Dc = solve_crossing(pend_f[gi, PV0], pend_f[gi, PI0], pend_f[gi, PDEND], p_tm[p], p_ts[p],
                        p_g[p], p_th[p])
    di[D_SOLVES] += 1
    pend_i[gi, PEXACT] = 1
    _push(ht, hk, hc, pend_f[gi, PT0] + Dc, SPIKE, p, b, pend_i[gi, PV])


@njit(**_JIT)
def _spike(pp, p, n, t, t_max, V, I, refr, pop_t, pend_i, peak_t, rec, di, df, ht, hk, hc,
           first_only):
    """A LIF spike at ``t``: record it, reset, start the refractory period (for good if its
    population needs only first spikes). Returns whether to predict its next crossing."""
    pop_off, _, _, _, p_vr, p_th, p_tref = pp
    rt, rp, ri, rc, rr = rec
    gi = pop_off[p] + n
    _advance(pp, p, t, V, I, refr, pop_t)
    nrec = di[D_SPIKES]
    rt[nrec], rp[nrec], ri[nrec], rc[nrec], rr[nrec] = t, p, n, I[gi], np.nan
    di[D_SPIKES] += 1
    if I[gi] - p_th[p] < df[F_SLOPE]:
        df[F_SLOPE] = I[gi] - p_th[p]
    pend_i[gi, PON] = 0
    V[gi] = p_vr[p]
    peak_t[gi] = INF
    again = not first_only[p] and p_tref[p] <= 0.0
    if first_only[p] or p_tref[p] > 0.0:
        refr[gi] = True
    if not first_only[p] and p_tref[p] > 0.0 and t + p_tref[p] <= t_max:
        _push(ht, hk, hc, t + p_tref[p], RELEASE, p, n, nrec)
    return again


OK, EVENT_LIMIT, HEAP_FULL, RECORDS_FULL = 0, 1, 2, 3


@njit(**_JIT)
def forward_sample(P, W, in_t, in_id, t_max, max_events, first_only, track_closest):
    """One sample. Returns ``(status, rec_t, rec_p, rec_i, rec_c, rec_r, diag_i, diag_f)``:
    the records in event order; ``diag_i`` = (events, spikes, predictions, root solves,
    immediate spikes, inputs after t_max), ``diag_f`` = (closest approach, smallest crossing
    slope, time of failure); status 1: more than ``max_events`` events. The neurons of a
    population with ``first_only[p]`` stop after their first spike (see
    :func:`eventgrad.event.engines.forward`); without ``track_closest`` the closest approach
    is -inf (not tracked; the peaks are known here anyway, so this saves nothing)."""
    npop = P.pop_size.shape[0]
    N = P.pop_off[npop]
    st = (np.zeros(N), np.zeros(N), np.zeros(N, dtype=np.bool_), np.zeros((N, 3), np.int64),
          np.zeros((N, 4)), np.full(N, INF), np.zeros(N), np.zeros(N, dtype=np.bool_),
          np.empty(max(N, 1), dtype=np.int64), np.zeros(npop))
    room = _max_pushes(P, N)
    cap = max(1024, 2 * (room + in_t.shape[0]))
    ht, hk, hc = np.empty(cap), np.empty((cap, 5), dtype=np.int64), np.zeros(2, np.int64)
    rec = (np.empty(256), np.empty(256, dtype=np.int64), np.empty(256, dtype=np.int64),
           np.empty(256), np.empty(256))
    di = np.zeros(N_INT, dtype=np.int64)
    df = np.array([closest_start(track_closest), INF, 0.0])
    for k in range(in_t.shape[0]):
        if in_t[k] > t_max:
            di[D_LATE] += 1
        else:
            _push(ht, hk, hc, in_t[k], SPIKE, -1, in_id[k], -1)
    while True:     # the event loop, left only to make room (arrays grown outside it)
        status = _run(P, W, t_max, max_events, first_only, room, st, ht, hk, hc, rec, di, df)
        if status == HEAP_FULL:
            ht, hk = _grown_heap(ht, hk)
        elif status == RECORDS_FULL:
            c2 = 4 * rec[0].shape[0]
            rec = (_resized(rec[0], c2), _resized(rec[1], c2), _resized(rec[2], c2),
                   _resized(rec[3], c2), _resized(rec[4], c2))
        else:
            break
    peak_t, peak_v = st[5], st[6]
    for gi in range(N):     # maxima realised by the end of the window
        if peak_t[gi] <= t_max:
            p = _pop_of(P.pop_off, gi)
            if P.p_th[p] - peak_v[gi] < df[F_CLOSEST]:
                df[F_CLOSEST] = P.p_th[p] - peak_v[gi]
    n = di[D_SPIKES]
    return (status, rec[0][:n].copy(), rec[1][:n].copy(), rec[2][:n].copy(),
            rec[3][:n].copy(), rec[4][:n].copy(), di, df)


@njit(**_JIT)
def _run(P, W, t_max, max_events, first_only, room, st, ht, hk, hc, rec, di, df):
    """The event loop of :func:`forward_sample` on its state ``st``, until the queue is empty
    (returns OK), the event limit is passed (EVENT_LIMIT), or before an event when the heap
    has fewer than ``room`` free entries (HEAP_FULL) or the records none (RECORDS_FULL): the
    caller grows them and calls again, the loop going on where it stopped. No array variable
    is reassigned in the loop, and the rules take a few arrays each, not the plan
    (:func:`_pop_params`): numba pays an atomic reference-count update per array and call."""
    V, I, refr, pend_i, pend_f, peak_t, peak_v, touched, tlist, pop_t = st
    pp = _pop_params(P)
    conn = _sources(P)
    post = _targets(P)
    pop_off, p_vr, rr = pp[0], pp[4], rec[4]
    while hc[0] > 0:
        if hc[0] + room > ht.shape[0]:
            return HEAP_FULL
        if di[D_SPIKES] == rr.shape[0]:
            return RECORDS_FULL
        t, rank, a, b, x = ht[0], hk[0, 0], hk[0, 1], hk[0, 2], hk[0, 4]
        _pop(ht, hk, hc)
        if rank == SPIKE and a >= 0:
            gi = pop_off[a] + b
            if pend_i[gi, PON] == 0 or pend_i[gi, PV] != x:
                continue  # stale prediction
            if pend_i[gi, PEXACT] == 0:
                _lazy_solve(pp, a, b, pend_i, pend_f, ht, hk, hc, di)
                continue
        di[D_EVENTS] += 1
        if di[D_EVENTS] > max_events:
            df[F_FAIL] = t
            return EVENT_LIMIT
        npred = 0
        if rank == SPIKE:
            if a >= 0 and _spike(pp, a, b, t, t_max, V, I, refr, pop_t, pend_i, peak_t, rec,
                                 di, df, ht, hk, hc, first_only):
                tlist[0] = pop_off[a] + b
                npred = 1
            _emit_arrivals(conn, ht, hk, hc, a, b, t, t_max)
        elif rank == RELEASE:
            gi = pop_off[a] + b
            _advance(pp, a, t, V, I, refr, pop_t)
            rr[x] = I[gi]
            refr[gi] = False
            V[gi] = p_vr[a]
            tlist[0] = gi
            npred = 1
        else:
            ntouch = _gather_arrivals(pp, post, W, t, a, b, x, ht, hk, hc, V, I, refr, pop_t,
                                      touched, tlist, di)
            if di[D_EVENTS] > max_events:
                df[F_FAIL] = t
                return EVENT_LIMIT
            npred = _realised_peaks(pp, tlist, ntouch, t, touched, refr, peak_t, peak_v, df)
        if npred:
            _predict(pp, tlist, npred, t, t_max, V, I, pend_i, pend_f, peak_t, peak_v, ht, hk,
                     hc, di)
    return OK


# --------------------------------------------------------------------------- adjoint
@njit(**_JIT)
def _event(et, ek, c, t, rank, a, b, tag, grp):
    et[c] = t
    ek[c, 0] = rank
    ek[c, 1] = a
    ek[c, 2] = b
    ek[c, 3] = tag
    ek[c, 4] = grp
    return c + 1


@njit(**_JIT)
def _n_arrival_events(conn, src, m):
    """How many arrival groups a spike of neuron ``m`` of source ``src`` has (``conn``:
    :func:`_sources`)."""
    src_ptr, src_proj, row_ptr, grp_ptr = conn[0], conn[1], conn[2], conn[3]
    n = 0
    for jj in range(src_ptr[src + 1], src_ptr[src + 2]):
        r = row_ptr[src_proj[jj]] + m
        n += grp_ptr[r + 1] - grp_ptr[r]
    return n


@njit(**_JIT)
def _arrival_events(conn, et, ek, c, src, m, t, tag, t_max):
    """The arrival events of a spike of neuron ``m`` of source ``src`` (-1: input) at ``t``."""
    src_ptr, src_proj, row_ptr, grp_ptr, grp_delay = conn
    for jj in range(src_ptr[src + 1], src_ptr[src + 2]):
        j = src_proj[jj]
        r = row_ptr[j] + m
        for k in range(grp_ptr[r], grp_ptr[r + 1]):
            if t + grp_delay[k] <= t_max:
                c = _event(et, ek, c, t + grp_delay[k], ARRIVAL, j, m, tag, k)
    return c


@njit(**_JIT)
def _event_list(P, rec_t, rec_p, rec_i, rec_r, in_t, in_id, t_max, pr_pop, pr_n, pr_t, pr_end):
    """Every event of the forward pass (and the loss's probes), in forward order. A refractory
    release is an event iff the forward pass recorded its current (``rec_r`` not nan)."""
    conn = _sources(P)
    p_tref = P.p_tref
    n_ev = pr_pop.shape[0]
    for i in range(in_t.shape[0]):
        if in_t[i] <= t_max:
            n_ev += 1 + _n_arrival_events(conn, -1, in_id[i])
    for s in range(rec_t.shape[0]):
        n_ev += 2 + _n_arrival_events(conn, rec_p[s], rec_i[s])
    et = np.empty(n_ev)
    ek = np.empty((n_ev, 5), dtype=np.int64)   # rank, source, index, tag, group
    c = 0
    for i in range(in_t.shape[0]):
        if in_t[i] <= t_max:
            c = _event(et, ek, c, in_t[i], SPIKE, -1, in_id[i], -(i + 1), -1)
            c = _arrival_events(conn, et, ek, c, -1, in_id[i], in_t[i], -(i + 1), t_max)
    for s in range(rec_t.shape[0]):
        p = rec_p[s]
        c = _event(et, ek, c, rec_t[s], SPIKE, p, rec_i[s], s, -1)
        c = _arrival_events(conn, et, ek, c, p, rec_i[s], rec_t[s], s, t_max)
        if p_tref[p] > 0.0 and rec_r[s] == rec_r[s]:
            c = _event(et, ek, c, rec_t[s] + p_tref[p], RELEASE, p, rec_i[s], s, -1)
    for q in range(pr_pop.shape[0]):
        c = _event(et, ek, c, pr_t[q], PROBE_END if pr_end[q] else PROBE, pr_pop[q], pr_n[q],
                   q, -1)
    et, ek = et[:c], ek[:c]
    # lexicographic (t, rank, source, index) by successive stable sorts
    order = np.argsort(ek[:, 2], kind="mergesort")
    for col in (1, 0):
        order = order[np.argsort(ek[order, col], kind="mergesort")]
    order = order[np.argsort(et[order], kind="mergesort")]
    return et, ek, order


@njit(**_JIT)
def _retreat(pp, p, t, tau, mu_V, mu_I):
    """Move population ``p``'s costate back from ``tau[p]`` to ``t`` (``pp``:
    :func:`_pop_params`)."""
    pop_off, p_tm, p_ts, p_g = pp[0], pp[1], pp[2], pp[3]
    D = tau[p] - t
    if D > 0.0:
        em, es, kk = decay(D, p_tm[p], p_ts[p], p_g[p])
        for q in range(pop_off[p], pop_off[p + 1]):
            mu_V[q], mu_I[q] = flow_adjoint(mu_V[q], mu_I[q], em, es, kk)
        tau[p] = t


@njit(**_JIT)
def _arrival_back(pp, post, W, j, m, k, t, mu_V, mu_I, pr, gw, gd):
    """Adjoint of one arrival event; returns its dL/d(arrival time) summed over the neurons
    (``post``: :func:`_targets`)."""
    pr_pop, pr_n, pr_t, pr_dl, pr_arr, pr_vdot, _ = pr
    proj_post, proj_npost, proj_w_off, grp_all, post_ptr, post_idx = post
    pop_off, p_tm, p_ts = pp[0], pp[1], pp[2]
    p = proj_post[j]
    npost = proj_npost[j]
    wrow = proj_w_off[j] + m * npost
    cnt = npost if grp_all[k] else post_ptr[k + 1] - post_ptr[k]
    total = 0.0
    for u in range(cnt):
        cc = u if grp_all[k] else post_idx[post_ptr[k] + u]
        gi = pop_off[p] + cc
        dLda = arrival_adjoint(W[wrow + cc], mu_V[gi], mu_I[gi], p_tm[p], p_ts[p])
        for q in range(pr_pop.shape[0]):
            if pr_arr[q] and pr_pop[q] == p and pr_n[q] == cc and pr_t[q] == t:
                dLda += pr_dl[q] * pr_vdot[q]
        gw[wrow + cc] += mu_I[gi]
        gd[wrow + cc] += dLda
        total += dLda
    return total


@njit(**_JIT)
def backward_sample(P, W, rec_t, rec_p, rec_i, rec_c, rec_r, g_t0, in_t, in_id, t_max, pr,
                    gw, gd):
    """Adjoint of one sample, any topology: the event list walked backward (the interface of
    :func:`eventgrad.event.layered.backward_sample`)."""
    pr_pop, pr_n, pr_t, _, _, _, pr_end = pr
    npop = P.pop_size.shape[0]
    g_t = g_t0.copy()
    g_in = np.zeros(in_t.shape[0])
    et, ek, order = _event_list(P, rec_t, rec_p, rec_i, rec_r, in_t, in_id, t_max, pr_pop, pr_n,
                                pr_t, pr_end)
    mu_V, mu_I = np.zeros(P.pop_off[npop]), np.zeros(P.pop_off[npop])
    tau = np.full(npop, t_max)
    n_graz = _walk_back(P, W, et, ek, order, rec_c, rec_r, g_t, g_in, pr, mu_V, mu_I, tau, gw,
                        gd)
    return g_in, g_t, n_graz


@njit(**_JIT)
def _walk_back(P, W, et, ek, order, rec_c, rec_r, g_t, g_in, pr, mu_V, mu_I, tau, gw, gd):
    """The event list (in ``order``) walked backward with the costate; returns the number of
    grazing spikes. The rules take a few arrays each, not the plan (see :func:`_run`)."""
    pr_dl = pr[3]
    pp = _pop_params(P)
    post = _targets(P)
    pop_off, p_tm, p_vr, p_th, proj_post = P.pop_off, P.p_tm, P.p_vr, P.p_th, P.proj_post
    n_graz = 0
    for oi in range(et.shape[0] - 1, -1, -1):
        e = order[oi]
        t, rank, a, b, tag = et[e], ek[e, 0], ek[e, 1], ek[e, 2], ek[e, 3]
        if rank == SPIKE and a < 0:
            continue
        p = proj_post[a] if rank == ARRIVAL else a
        _retreat(pp, p, t, tau, mu_V, mu_I)
        if rank == ARRIVAL:
            total = _arrival_back(pp, post, W, a, b, ek[e, 4], t, mu_V, mu_I, pr, gw, gd)
            if tag >= 0:
                g_t[tag] += total
            else:
                g_in[-tag - 1] += total
            continue
        gi = pop_off[p] + b
        if rank == SPIKE:
            mu_V[gi], graz = spike_adjoint(mu_V[gi], rec_c[tag], p_th[p], p_vr[p], p_tm[p],
                                           g_t[tag])
            n_graz += graz
        elif rank == RELEASE:
            g_t[tag] += release_adjoint(mu_V[gi], rec_r[tag], p_vr[p], p_tm[p])
            mu_V[gi] = 0.0
        else:
            mu_V[gi] += pr_dl[tag]
    return n_graz

"""Compiled (numba) fast path of the event engine and of the adjoint pass.

Same algorithm, event order, closed forms and rules as the reference engine in
``eventgrad.simulate`` / ``eventgrad.adjoint`` (see their docs), over flat arrays:

* the queue is a binary heap keyed by ``(time, rank, source, index, sequence)``, exactly the
  reference's sort key; a revised crossing prediction invalidates the old heap entry through a
  per-neuron version number instead of removing it (stale entries are skipped and not counted);
* the scalar closed form and the spike-time solver (:func:`solve_crossing`) are the ones the
  reference engine calls too, so the two engines agree bit for bit wherever numpy's vectorised
  exponentials agree with the C library's (cross-tested).

Everything is float64. The kernels are compiled once and cached on disk (``cache=True``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

INF = math.inf
EPS = 2.220446049250313e-16
KERNEL_SWITCH = 1.0

R_SPIKE, R_RELEASE, R_ARRIVAL = 0, 1, 2


# --------------------------------------------------------------------------- closed form
@njit(cache=True, nogil=True)
def kernel(D, tm, ts, g):
    x = D * g
    if abs(x) <= KERNEL_SWITCH:
        phi = 1.0 if x == 0.0 else -math.expm1(-x) / x
        return (D / tm) * math.exp(-D / tm) * phi
    return ts / (tm - ts) * (math.exp(-D / tm) - math.exp(-D / ts))


@njit(cache=True, nogil=True)
def voltage(V0, I0, D, tm, ts, g):
    return V0 * math.exp(-D / tm) + I0 * kernel(D, tm, ts, g)


@njit(cache=True, nogil=True)
def peak_time(V0, I0, tm, ts):
    if not (I0 > V0 and I0 > 0.0):
        return 0.0
    u = (I0 - V0) / I0
    y = (1.0 - ts / tm) * u
    if not (y < 1.0):
        return INF
    L = 1.0 if y == 0.0 else -math.log1p(-y) / y
    t = ts * u * L
    return t if t > 0.0 else INF


@njit(cache=True, nogil=True)
def solve_crossing(V0, I0, D_end, tm, ts, g, theta):
    """First crossing of V(D) = theta on [0, D_end] (V0 < theta <= V(D_end), V increasing).

    Safeguarded Newton with the analytic derivative (bisection whenever a step leaves the
    bracket), then a float-level bisection: the result ``D`` satisfies
    ``V(D) - theta >= 0 > V(prev(D)) - theta`` in float64 (a sign change of the closed form).
    """
    if voltage(V0, I0, D_end, tm, ts, g) - theta <= 0.0:
        return D_end  # the maximum touches threshold to the last bit
    lo = 0.0          # invariant: f(lo) < 0 <= f(hi)
    hi = D_end
    x = 0.0
    fx = V0 - theta
    for _ in range(100):
        d = (I0 * math.exp(-x / ts) - (fx + theta)) / tm
        xn = x - fx / d if d > 0.0 else -1.0
        if not (lo < xn < hi):
            xn = 0.5 * (lo + hi)
        step = abs(xn - x)
        x = xn
        fx = voltage(V0, I0, x, tm, ts, g) - theta
        if fx < 0.0:
            lo = x
        else:
            hi = x
        if step <= 4.0 * EPS * x or hi - lo <= 4.0 * EPS * hi:
            break
    # widen from x until the sign changes, then bisect down to adjacent floats
    h = 4.0 * EPS * x + 5e-324
    if fx >= 0.0:
        while True:
            y = x - h
            if y <= lo:
                break
            if voltage(V0, I0, y, tm, ts, g) - theta < 0.0:
                lo = y
                break
            hi = y
            h *= 2.0
    else:
        while True:
            y = x + h
            if y >= hi:
                break
            if voltage(V0, I0, y, tm, ts, g) - theta >= 0.0:
                hi = y
                break
            lo = y
            h *= 2.0
    while True:
        mid = lo + 0.5 * (hi - lo)
        if mid <= lo or mid >= hi:
            break
        if voltage(V0, I0, mid, tm, ts, g) - theta >= 0.0:
            hi = mid
        else:
            lo = mid
    return hi


# --------------------------------------------------------------------------- binary heap
@njit(cache=True, nogil=True)
def _less(ht, hr, ha, hb, hs, i, j):
    if ht[i] != ht[j]:
        return ht[i] < ht[j]
    if hr[i] != hr[j]:
        return hr[i] < hr[j]
    if ha[i] != ha[j]:
        return ha[i] < ha[j]
    if hb[i] != hb[j]:
        return hb[i] < hb[j]
    return hs[i] < hs[j]


@njit(cache=True, nogil=True)
def _swap(ht, hr, ha, hb, hs, hx, i, j):
    ht[i], ht[j] = ht[j], ht[i]
    hr[i], hr[j] = hr[j], hr[i]
    ha[i], ha[j] = ha[j], ha[i]
    hb[i], hb[j] = hb[j], hb[i]
    hs[i], hs[j] = hs[j], hs[i]
    hx[i], hx[j] = hx[j], hx[i]


@njit(cache=True, nogil=True)
def _sift_up(ht, hr, ha, hb, hs, hx, i):
    while i > 0:
        p = (i - 1) >> 1
        if _less(ht, hr, ha, hb, hs, i, p):
            _swap(ht, hr, ha, hb, hs, hx, i, p)
            i = p
        else:
            break


@njit(cache=True, nogil=True)
def _sift_down(ht, hr, ha, hb, hs, hx, i, n):
    while True:
        left = 2 * i + 1
        if left >= n:
            break
        c = left
        if left + 1 < n and _less(ht, hr, ha, hb, hs, left + 1, left):
            c = left + 1
        if _less(ht, hr, ha, hb, hs, c, i):
            _swap(ht, hr, ha, hb, hs, hx, i, c)
            i = c
        else:
            break


@njit(cache=True, nogil=True)
def _grow_f(a, n):
    b = np.empty(max(2 * a.shape[0], n), dtype=a.dtype)
    b[:a.shape[0]] = a
    return b


# --------------------------------------------------------------------------- forward
@njit(cache=True, nogil=True)
def forward(in_t, in_id, t_max, max_events,
            pop_size, pop_off, p_tm, p_ts, p_th, p_vr, p_tref,
            src_ptr, src_proj, proj_post, proj_npost, proj_w_off,
            row_ptr, grp_ptr, grp_delay, grp_all, post_ptr, post_idx, W):
    """One sample. Returns (status, rec_t, rec_p, rec_i, rec_c, rec_r, diag_int, diag_float).

    status 0 = ok, 1 = max_events exceeded (diag_float[2] holds the time).
    Groups: for projection j and presynaptic neuron m, the arrival groups are
    grp_ptr[row_ptr[j] + m] .. grp_ptr[row_ptr[j] + m + 1]; group k has delay grp_delay[k],
    and either all posts (grp_all[k]) or post_idx[post_ptr[k]:post_ptr[k+1]].
    """
    npop = pop_size.shape[0]
    N = pop_off[npop]
    V = np.zeros(N)
    I = np.zeros(N)
    refr = np.zeros(N, dtype=np.bool_)
    pend_ver = np.zeros(N, dtype=np.int64)
    pend_on = np.zeros(N, dtype=np.bool_)
    peak_t = np.full(N, INF)
    peak_v = np.zeros(N)
    touched = np.zeros(N, dtype=np.bool_)
    tlist = np.empty(N, dtype=np.int64)
    pop_t = np.zeros(npop)
    p_g = np.empty(npop)
    for p in range(npop):
        p_g[p] = (p_tm[p] - p_ts[p]) / (p_tm[p] * p_ts[p])

    cap = 1024
    ht = np.empty(cap)
    hr = np.empty(cap, dtype=np.int64)
    ha = np.empty(cap, dtype=np.int64)
    hb = np.empty(cap, dtype=np.int64)
    hs = np.empty(cap, dtype=np.int64)
    hx = np.empty(cap, dtype=np.int64)
    hn = 0
    seq = 0

    rcap = 256
    rec_t = np.empty(rcap)
    rec_p = np.empty(rcap, dtype=np.int64)
    rec_i = np.empty(rcap, dtype=np.int64)
    rec_c = np.empty(rcap)
    rec_r = np.empty(rcap)
    nrec = 0

    n_pred = 0
    n_solve = 0
    n_imm = 0
    n_late = 0
    closest = INF
    min_slope = INF

    # ---- helpers are inlined below as small loops (numba closures are limited)
    for k in range(in_t.shape[0]):
        if in_t[k] > t_max:
            n_late += 1
            continue
        if hn == cap:
            cap *= 2
            ht = _grow_f(ht, cap)
            hr = _grow_f(hr, cap)
            ha = _grow_f(ha, cap)
            hb = _grow_f(hb, cap)
            hs = _grow_f(hs, cap)
            hx = _grow_f(hx, cap)
        ht[hn] = in_t[k]
        hr[hn] = R_SPIKE
        ha[hn] = -1
        hb[hn] = in_id[k]
        hs[hn] = seq
        hx[hn] = -1
        seq += 1
        hn += 1
        _sift_up(ht, hr, ha, hb, hs, hx, hn - 1)

    n_events = 0
    status = 0
    t_fail = 0.0
    while hn > 0:
        t = ht[0]
        rank = hr[0]
        a = ha[0]
        b = hb[0]
        x = hx[0]
        hn -= 1
        if hn > 0:
            _swap(ht, hr, ha, hb, hs, hx, 0, hn)
            _sift_down(ht, hr, ha, hb, hs, hx, 0, hn)
        if rank == R_SPIKE and a >= 0:
            gi = pop_off[a] + b
            if not pend_on[gi] or pend_ver[gi] != x:
                continue  # stale prediction
        n_events += 1
        if n_events > max_events:
            status = 1
            t_fail = t
            break
        # list of (pop, neuron) to predict after this event: reuse tlist
        npred_list = 0
        if rank == R_SPIKE or rank == R_RELEASE:
            src = a
            n = b
            if src >= 0:
                p = src
                gi = pop_off[p] + n
                # advance population p to t
                D = t - pop_t[p]
                if D > 0.0:
                    em = math.exp(-D / p_tm[p])
                    es = math.exp(-D / p_ts[p])
                    kk = kernel(D, p_tm[p], p_ts[p], p_g[p])
                    for q in range(pop_off[p], pop_off[p + 1]):
                        if refr[q]:
                            V[q] = p_vr[p]
                        else:
                            V[q] = V[q] * em + I[q] * kk
                        I[q] = I[q] * es
                    pop_t[p] = t
                if rank == R_RELEASE:
                    rec_r[x] = I[gi]
                    refr[gi] = False
                    V[gi] = p_vr[p]
                    tlist[0] = gi
                    npred_list = 1
                else:
                    if nrec == rcap:
                        rcap *= 2
                        rec_t = _grow_f(rec_t, rcap)
                        rec_p = _grow_f(rec_p, rcap)
                        rec_i = _grow_f(rec_i, rcap)
                        rec_c = _grow_f(rec_c, rcap)
                        rec_r = _grow_f(rec_r, rcap)
                    cur = I[gi]
                    rec_t[nrec] = t
                    rec_p[nrec] = p
                    rec_i[nrec] = n
                    rec_c[nrec] = cur
                    rec_r[nrec] = np.nan
                    nrec += 1
                    if cur - p_th[p] < min_slope:
                        min_slope = cur - p_th[p]
                    pend_on[gi] = False
                    V[gi] = p_vr[p]
                    peak_t[gi] = INF
                    if p_tref[p] > 0.0:
                        refr[gi] = True
                        tr = t + p_tref[p]
                        if tr <= t_max:
                            if hn == cap:
                                cap *= 2
                                ht = _grow_f(ht, cap)
                                hr = _grow_f(hr, cap)
                                ha = _grow_f(ha, cap)
                                hb = _grow_f(hb, cap)
                                hs = _grow_f(hs, cap)
                                hx = _grow_f(hx, cap)
                            ht[hn] = tr
                            hr[hn] = R_RELEASE
                            ha[hn] = p
                            hb[hn] = n
                            hs[hn] = seq
                            hx[hn] = nrec - 1
                            seq += 1
                            hn += 1
                            _sift_up(ht, hr, ha, hb, hs, hx, hn - 1)
                    else:
                        tlist[0] = gi
                        npred_list = 1
            if rank == R_SPIKE:
                # arrivals of this spike (input or LIF) on every outgoing projection
                for jj in range(src_ptr[src + 1], src_ptr[src + 2]):
                    j = src_proj[jj]
                    r = row_ptr[j] + n
                    for k in range(grp_ptr[r], grp_ptr[r + 1]):
                        ta = t + grp_delay[k]
                        if ta <= t_max:
                            if hn == cap:
                                cap *= 2
                                ht = _grow_f(ht, cap)
                                hr = _grow_f(hr, cap)
                                ha = _grow_f(ha, cap)
                                hb = _grow_f(hb, cap)
                                hs = _grow_f(hs, cap)
                                hx = _grow_f(hx, cap)
                            ht[hn] = ta
                            hr[hn] = R_ARRIVAL
                            ha[hn] = j
                            hb[hn] = n
                            hs[hn] = seq
                            hx[hn] = k
                            seq += 1
                            hn += 1
                            _sift_up(ht, hr, ha, hb, hs, hx, hn - 1)
        else:
            # arrival: apply it and every other arrival at the same time
            ntouch = 0
            first = True
            while True:
                if not first:
                    if hn == 0 or ht[0] != t or hr[0] != R_ARRIVAL:
                        break
                    a = ha[0]
                    b = hb[0]
                    x = hx[0]
                    hn -= 1
                    if hn > 0:
                        _swap(ht, hr, ha, hb, hs, hx, 0, hn)
                        _sift_down(ht, hr, ha, hb, hs, hx, 0, hn)
                    n_events += 1
                first = False
                j = a
                m = b
                k = x
                p = proj_post[j]
                D = t - pop_t[p]
                if D > 0.0:
                    em = math.exp(-D / p_tm[p])
                    es = math.exp(-D / p_ts[p])
                    kk = kernel(D, p_tm[p], p_ts[p], p_g[p])
                    for q in range(pop_off[p], pop_off[p + 1]):
                        if refr[q]:
                            V[q] = p_vr[p]
                        else:
                            V[q] = V[q] * em + I[q] * kk
                        I[q] = I[q] * es
                    pop_t[p] = t
                npost = proj_npost[j]
                wrow = proj_w_off[j] + m * npost
                if grp_all[k]:
                    for c in range(npost):
                        gi = pop_off[p] + c
                        I[gi] += W[wrow + c]
                        if not touched[gi]:
                            touched[gi] = True
                            tlist[ntouch] = gi
                            ntouch += 1
                else:
                    for kp in range(post_ptr[k], post_ptr[k + 1]):
                        c = post_idx[kp]
                        gi = pop_off[p] + c
                        I[gi] += W[wrow + c]
                        if not touched[gi]:
                            touched[gi] = True
                            tlist[ntouch] = gi
                            ntouch += 1
            if n_events > max_events:
                status = 1
                t_fail = t
                break
            # realised maxima of the touched neurons, then predict the non-refractory ones
            npred_list = 0
            for u in range(ntouch):
                gi = tlist[u]
                touched[gi] = False
                if peak_t[gi] <= t:
                    p = _pop_of(pop_off, gi)
                    mg = p_th[p] - peak_v[gi]
                    if mg < closest:
                        closest = mg
                    peak_t[gi] = INF
                if not refr[gi]:
                    tlist[npred_list] = gi
                    npred_list += 1
        # ---- predictions
        H = t_max - t
        for u in range(npred_list):
            gi = tlist[u]
            p = _pop_of(pop_off, gi)
            th = p_th[p]
            if th == INF:
                continue
            n_pred += 1
            tm = p_tm[p]
            ts = p_ts[p]
            g = p_g[p]
            V0 = V[gi]
            I0 = I[gi]
            Dp = peak_time(V0, I0, tm, ts)
            D_end = Dp if Dp < H else H
            Vp = V0 * math.exp(-D_end / tm) + I0 * kernel(D_end, tm, ts, g)
            Dc = INF
            if V0 >= th:
                Dc = 0.0
            elif Vp >= th:
                Dc = solve_crossing(V0, I0, D_end, tm, ts, g, th)
                n_solve += 1
            pend_ver[gi] += 1
            pend_on[gi] = False
            if Dc < INF:
                if Dc == 0.0:
                    n_imm += 1
                if hn == cap:
                    cap *= 2
                    ht = _grow_f(ht, cap)
                    hr = _grow_f(hr, cap)
                    ha = _grow_f(ha, cap)
                    hb = _grow_f(hb, cap)
                    hs = _grow_f(hs, cap)
                    hx = _grow_f(hx, cap)
                ht[hn] = t + Dc
                hr[hn] = R_SPIKE
                ha[hn] = p
                hb[hn] = gi - pop_off[p]
                hs[hn] = seq
                hx[hn] = pend_ver[gi]
                seq += 1
                hn += 1
                _sift_up(ht, hr, ha, hb, hs, hx, hn - 1)
                pend_on[gi] = True
                peak_t[gi] = INF
            else:
                peak_t[gi] = t + D_end if D_end < H else INF
            peak_v[gi] = Vp
    # maxima realised by the end of the window
    for gi in range(N):
        if peak_t[gi] <= t_max:
            p = _pop_of(pop_off, gi)
            mg = p_th[p] - peak_v[gi]
            if mg < closest:
                closest = mg
    diag_i = np.array([n_events, nrec, n_pred, n_solve, n_imm, n_late], dtype=np.int64)
    diag_f = np.array([closest, min_slope, t_fail])
    return (status, rec_t[:nrec].copy(), rec_p[:nrec].copy(), rec_i[:nrec].copy(),
            rec_c[:nrec].copy(), rec_r[:nrec].copy(), diag_i, diag_f)


@njit(cache=True, nogil=True)
def _pop_of(pop_off, gi):
    p = 0
    while pop_off[p + 1] <= gi:
        p += 1
    return p


# --------------------------------------------------------------------------- python side
class FastPlan:
    """Flat arrays describing a network for the compiled kernels."""

    def __init__(self, network, weights, delays) -> None:
        pops = network.populations
        npop = len(pops)
        self.pop_size = np.array([p.size for p in pops], dtype=np.int64)
        self.pop_off = np.concatenate([[0], np.cumsum(self.pop_size)]).astype(np.int64)
        self.p_tm = np.array([p.neuron.tau_mem for p in pops], dtype=np.float64)
        self.p_ts = np.array([p.neuron.tau_syn for p in pops], dtype=np.float64)
        self.p_th = np.array([p.neuron.threshold for p in pops], dtype=np.float64)
        self.p_vr = np.array([p.neuron.v_reset for p in pops], dtype=np.float64)
        self.p_tref = np.array([p.neuron.t_ref for p in pops], dtype=np.float64)
        projs = network.projections
        srcs = [(-1 if p.pre is network.input else p.pre.index) for p in projs]
        self.proj_pre = np.array(srcs, dtype=np.int64)
        self.proj_post = np.array([p.post.index for p in projs], dtype=np.int64)
        self.proj_npre = np.array([p.pre.size for p in projs], dtype=np.int64)
        self.proj_npost = np.array([p.post.size for p in projs], dtype=np.int64)
        sizes = [p.pre.size * p.post.size for p in projs]
        self.proj_w_off = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.W = (np.concatenate([w.ravel() for w in weights]) if projs
                  else np.zeros(0)).astype(np.float64)
        # outgoing projections per source, CSR with sources -1..npop-1
        src_ptr = [0]
        src_proj = []
        for s in range(-1, npop):
            src_proj += [j for j, x in enumerate(srcs) if x == s]
            src_ptr.append(len(src_proj))
        self.src_ptr = np.array(src_ptr, dtype=np.int64)
        self.src_proj = np.array(src_proj, dtype=np.int64)
        # arrival groups: one per distinct delay in each (projection, pre) row
        row_ptr, grp_ptr, grp_delay, grp_all, post_ptr, post_idx = [], [0], [], [], [0], []
        nrow = 0
        for j, pr in enumerate(projs):
            row_ptr.append(nrow)
            d = delays[j]
            for m in range(pr.pre.size):
                row = d[m]
                if np.all(row == row[0]):
                    grp_delay.append(float(row[0]))
                    grp_all.append(True)
                    post_ptr.append(len(post_idx))
                else:
                    for u in np.unique(row):
                        grp_delay.append(float(u))
                        grp_all.append(False)
                        post_idx.extend(np.flatnonzero(row == u).tolist())
                        post_ptr.append(len(post_idx))
                grp_ptr.append(len(grp_delay))
                nrow += 1
        self.row_ptr = np.array(row_ptr, dtype=np.int64)
        self.grp_ptr = np.array(grp_ptr, dtype=np.int64)
        self.grp_delay = np.array(grp_delay, dtype=np.float64)
        self.grp_all = np.array(grp_all, dtype=np.bool_)
        self.post_ptr = np.array(post_ptr, dtype=np.int64)
        self.post_idx = np.array(post_idx, dtype=np.int64)

    def backward(self, rec, g_t, in_t, in_id, t_max, probes):
        if probes:
            pr = [np.concatenate([getattr(q, name) if name != "pop" else
                                  np.full(len(q.neurons), q.pop) for q in probes])
                  for name in ("pop", "neurons", "times", "dL_dV", "at_arrival", "vdot_left",
                               "at_end")]
        else:
            pr = [np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0),
                  np.zeros(0, np.bool_), np.zeros(0), np.zeros(0, np.bool_)]
        pr = [pr[0].astype(np.int64), pr[1].astype(np.int64), pr[2].astype(np.float64),
              pr[3].astype(np.float64), pr[4].astype(np.bool_), pr[5].astype(np.float64),
              pr[6].astype(np.bool_)]
        return backward(rec.times, rec.pops, rec.ids, rec.currents, rec.release_currents,
                        np.asarray(g_t, dtype=np.float64), in_t, in_id, t_max,
                        self.pop_size, self.pop_off, self.p_tm, self.p_ts, self.p_th,
                        self.p_vr, self.p_tref, self.src_ptr, self.src_proj, self.proj_post,
                        self.proj_npost, self.proj_w_off, self.row_ptr, self.grp_ptr,
                        self.grp_delay, self.grp_all, self.post_ptr, self.post_idx, self.W, *pr)

    def forward(self, in_t, in_id, t_max, max_events):
        return forward(in_t, in_id, t_max, max_events, self.pop_size, self.pop_off, self.p_tm,
                       self.p_ts, self.p_th, self.p_vr, self.p_tref, self.src_ptr,
                       self.src_proj, self.proj_post, self.proj_npost, self.proj_w_off,
                       self.row_ptr, self.grp_ptr, self.grp_delay, self.grp_all,
                       self.post_ptr, self.post_idx, self.W)


# --------------------------------------------------------------------------- backward
RB_SPIKE, RB_RELEASE, RB_PROBE, RB_ARRIVAL, RB_PROBE_END = 0, 1, 2, 3, 4


@njit(cache=True, nogil=True)
def backward(rec_t, rec_p, rec_i, rec_c, rec_r, g_t, in_t, in_id, t_max,
             pop_size, pop_off, p_tm, p_ts, p_th, p_vr, p_tref,
             src_ptr, src_proj, proj_post, proj_npost, proj_w_off,
             row_ptr, grp_ptr, grp_delay, grp_all, post_ptr, post_idx, W,
             pr_pop, pr_n, pr_t, pr_dl, pr_arr, pr_vdot, pr_end):
    """Adjoint pass of one sample; mirrors eventgrad.adjoint.backward.

    Returns (gw, gd, g_in, g_t, n_grazing) with gw, gd flat like W.
    """
    npop = pop_size.shape[0]
    N = pop_off[npop]
    n_sp = rec_t.shape[0]
    n_in = in_t.shape[0]
    g_t = g_t.copy()
    # ---- count events, then fill
    n_ev = 0
    for i in range(n_in):
        if in_t[i] <= t_max:
            n_ev += 1
            src = -1
            for jj in range(src_ptr[src + 1], src_ptr[src + 2]):
                j = src_proj[jj]
                r = row_ptr[j] + in_id[i]
                n_ev += grp_ptr[r + 1] - grp_ptr[r]
    for k in range(n_sp):
        n_ev += 2
        src = rec_p[k]
        for jj in range(src_ptr[src + 1], src_ptr[src + 2]):
            j = src_proj[jj]
            r = row_ptr[j] + rec_i[k]
            n_ev += grp_ptr[r + 1] - grp_ptr[r]
    n_ev += pr_pop.shape[0]
    et = np.empty(n_ev)
    er = np.empty(n_ev, dtype=np.int64)
    ea = np.empty(n_ev, dtype=np.int64)
    eb = np.empty(n_ev, dtype=np.int64)
    etag = np.empty(n_ev, dtype=np.int64)
    eg = np.empty(n_ev, dtype=np.int64)
    c = 0
    for i in range(n_in):
        if in_t[i] <= t_max:
            et[c] = in_t[i]
            er[c] = RB_SPIKE
            ea[c] = -1
            eb[c] = in_id[i]
            etag[c] = -(i + 1)
            eg[c] = -1
            c += 1
            src = -1
            for jj in range(src_ptr[src + 1], src_ptr[src + 2]):
                j = src_proj[jj]
                r = row_ptr[j] + in_id[i]
                for k in range(grp_ptr[r], grp_ptr[r + 1]):
                    a = in_t[i] + grp_delay[k]
                    if a <= t_max:
                        et[c] = a
                        er[c] = RB_ARRIVAL
                        ea[c] = j
                        eb[c] = in_id[i]
                        etag[c] = -(i + 1)
                        eg[c] = k
                        c += 1
    for s in range(n_sp):
        p = rec_p[s]
        et[c] = rec_t[s]
        er[c] = RB_SPIKE
        ea[c] = p
        eb[c] = rec_i[s]
        etag[c] = s
        eg[c] = -1
        c += 1
        for jj in range(src_ptr[p + 1], src_ptr[p + 2]):
            j = src_proj[jj]
            r = row_ptr[j] + rec_i[s]
            for k in range(grp_ptr[r], grp_ptr[r + 1]):
                a = rec_t[s] + grp_delay[k]
                if a <= t_max:
                    et[c] = a
                    er[c] = RB_ARRIVAL
                    ea[c] = j
                    eb[c] = rec_i[s]
                    etag[c] = s
                    eg[c] = k
                    c += 1
        if p_tref[p] > 0.0 and rec_t[s] + p_tref[p] <= t_max:
            et[c] = rec_t[s] + p_tref[p]
            er[c] = RB_RELEASE
            ea[c] = p
            eb[c] = rec_i[s]
            etag[c] = s
            eg[c] = -1
            c += 1
    for q in range(pr_pop.shape[0]):
        et[c] = pr_t[q]
        er[c] = RB_PROBE_END if pr_end[q] else RB_PROBE
        ea[c] = pr_pop[q]
        eb[c] = pr_n[q]
        etag[c] = q
        eg[c] = -1
        c += 1
    n_ev = c
    et = et[:n_ev]
    er = er[:n_ev]
    ea = ea[:n_ev]
    eb = eb[:n_ev]
    # lexicographic order (t, rank, a, b) by successive stable sorts, then walk it backward
    order = np.argsort(eb, kind="mergesort")
    order = order[np.argsort(ea[order], kind="mergesort")]
    order = order[np.argsort(er[order], kind="mergesort")]
    order = order[np.argsort(et[order], kind="mergesort")]

    mu_V = np.zeros(N)
    mu_I = np.zeros(N)
    tau = np.full(npop, t_max)
    p_g = np.empty(npop)
    for p in range(npop):
        p_g[p] = (p_tm[p] - p_ts[p]) / (p_tm[p] * p_ts[p])
    gw = np.zeros(W.shape[0])
    gd = np.zeros(W.shape[0])
    g_in = np.zeros(n_in)
    n_grazing = 0
    for oi in range(n_ev - 1, -1, -1):
        e = order[oi]
        t = et[e]
        rank = er[e]
        if rank == RB_SPIKE and ea[e] < 0:
            continue
        if rank == RB_ARRIVAL:
            p = proj_post[ea[e]]
        else:
            p = ea[e]
        # retreat population p to t
        D = tau[p] - t
        if D > 0.0:
            em = math.exp(-D / p_tm[p])
            es = math.exp(-D / p_ts[p])
            kk = kernel(D, p_tm[p], p_ts[p], p_g[p])
            for q in range(pop_off[p], pop_off[p + 1]):
                mu_I[q] = es * mu_I[q] + kk * mu_V[q]
                mu_V[q] = em * mu_V[q]
            tau[p] = t
        if rank == RB_ARRIVAL:
            j = ea[e]
            m = eb[e]
            k = eg[e]
            tag = etag[e]
            npost = proj_npost[j]
            wrow = proj_w_off[j] + m * npost
            tm = p_tm[p]
            ts = p_ts[p]
            total = 0.0
            if grp_all[k]:
                cnt = npost
            else:
                cnt = post_ptr[k + 1] - post_ptr[k]
            for u in range(cnt):
                cc = u if grp_all[k] else post_idx[post_ptr[k] + u]
                gi = pop_off[p] + cc
                mI = mu_I[gi]
                dLda = W[wrow + cc] * (mI / ts - mu_V[gi] / tm)
                for q in range(pr_pop.shape[0]):
                    if pr_arr[q] and pr_pop[q] == p and pr_n[q] == cc and pr_t[q] == t:
                        dLda += pr_dl[q] * pr_vdot[q]
                gw[wrow + cc] += mI
                gd[wrow + cc] += dLda
                total += dLda
            if tag >= 0:
                g_t[tag] += total
            else:
                g_in[-tag - 1] += total
        elif rank == RB_SPIKE:
            s = etag[e]
            gi = pop_off[p] + eb[e]
            I = rec_c[s]
            slope = I - p_th[p]
            if not slope > 0.0:
                n_grazing += 1
                slope = np.nextafter(p_th[p], INF) - p_th[p]
            mu_V[gi] = ((I - p_vr[p]) * mu_V[gi] - p_tm[p] * g_t[s]) / slope
        elif rank == RB_RELEASE:
            s = etag[e]
            gi = pop_off[p] + eb[e]
            g_t[s] += -mu_V[gi] * (rec_r[s] - p_vr[p]) / p_tm[p]
            mu_V[gi] = 0.0
        else:
            q = etag[e]
            gi = pop_off[p] + eb[e]
            mu_V[gi] += pr_dl[q]
    return gw, gd, g_in, g_t, n_grazing

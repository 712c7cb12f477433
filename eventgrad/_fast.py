"""Compiled (numba) fast path of the event engine and of the adjoint pass.

Same algorithm, event order, closed forms and rules as the reference engine in
``eventgrad.simulate`` / ``eventgrad.adjoint`` (see their docs), over flat arrays:

* the queue is a binary heap keyed by ``(time, rank, source, index, sequence)``, exactly the
  reference's sort key; a revised crossing prediction invalidates the old heap entry through a
  per-neuron version number instead of removing it (stale entries are skipped and not counted);
* a prediction whose maximum reaches threshold is queued at a lower bound of its crossing
  time, ``tau_mem (threshold - V0)/(I0 - V0)`` (on the rising part ``dV/dt <= (I0 - V0)/tau_mem``),
  and solved only if that entry reaches the front of the queue still valid, from the state
  stored at prediction time, so the spike time is the one an immediate solve gives; most
  predictions are superseded by a later arrival before that and are never solved;
* the scalar closed form and the spike-time solver (:func:`solve_crossing`) are the ones the
  reference engine calls too, so the two engines agree bit for bit wherever numpy's vectorised
  exponentials agree with the C library's (cross-tested).

Everything is float64. The kernels are compiled once and cached on disk (``cache=True``).
"""

from __future__ import annotations

import copy
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
def _event(et, ek, c, t, rank, a, b, tag, grp):
    """Write row ``c`` of an event table (times ``et``, int64 columns ``ek``)."""
    et[c] = t
    ek[c, 0] = rank
    ek[c, 1] = a
    ek[c, 2] = b
    ek[c, 3] = tag
    ek[c, 4] = grp
    return c + 1


# The heap is ``ht`` (times) and ``hk`` (int64 columns: rank, source, index, sequence, extra);
# entries are ordered by (time, rank, source, index, sequence), the reference engine's key.
@njit(cache=True, nogil=True)
def _less(ht, hk, i, j):
    if ht[i] != ht[j]:
        return ht[i] < ht[j]
    for c in range(4):
        if hk[i, c] != hk[j, c]:
            return hk[i, c] < hk[j, c]
    return False


@njit(cache=True, nogil=True)
def _swap(ht, hk, i, j):
    ht[i], ht[j] = ht[j], ht[i]
    for c in range(5):
        hk[i, c], hk[j, c] = hk[j, c], hk[i, c]


@njit(cache=True, nogil=True)
def _push(ht, hk, hn, t, rank, a, b, seq, x):
    """Insert an entry at position ``hn`` (the size); returns the (possibly grown) arrays."""
    if hn == ht.shape[0]:
        ht2 = np.empty(2 * hn)
        ht2[:hn] = ht
        hk2 = np.empty((2 * hn, 5), dtype=np.int64)
        hk2[:hn] = hk
        ht, hk = ht2, hk2
    _event(ht, hk, hn, t, rank, a, b, seq, x)
    i = hn
    while i > 0:
        par = (i - 1) >> 1
        if _less(ht, hk, i, par):
            _swap(ht, hk, i, par)
            i = par
        else:
            break
    return ht, hk


@njit(cache=True, nogil=True)
def _pop(ht, hk, hn):
    """Remove the smallest entry (read it first); returns the new size."""
    hn -= 1
    if hn > 0:
        _swap(ht, hk, 0, hn)
        i = 0
        while True:
            left = 2 * i + 1
            if left >= hn:
                break
            c = left
            if left + 1 < hn and _less(ht, hk, left + 1, left):
                c = left + 1
            if _less(ht, hk, c, i):
                _swap(ht, hk, i, c)
                i = c
            else:
                break
    return hn


# --------------------------------------------------------------------------- forward
@njit(cache=True, nogil=True)
def _advance(p, t, V, I, refr, pop_t, pop_off, p_tm, p_ts, p_g, p_vr):
    """Move population ``p``'s state forward to ``t`` in closed form (refractory V held)."""
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
    pend_exact = np.zeros(N, dtype=np.bool_)   # pending entry holds the exact crossing time
    pend_V0 = np.zeros(N)                      # state the pending crossing is solved from
    pend_I0 = np.zeros(N)
    pend_Dend = np.zeros(N)
    pend_t0 = np.zeros(N)
    peak_t = np.full(N, INF)
    peak_v = np.zeros(N)
    touched = np.zeros(N, dtype=np.bool_)
    tlist = np.empty(N, dtype=np.int64)
    pop_t = np.zeros(npop)
    p_g = np.empty(npop)
    for p in range(npop):
        p_g[p] = (p_tm[p] - p_ts[p]) / (p_tm[p] * p_ts[p])

    ht = np.empty(1024)
    hk = np.empty((1024, 5), dtype=np.int64)
    hn = 0
    seq = 0

    rec_f = np.empty((256, 3))                 # time, current, release current
    rec_n = np.empty((256, 2), dtype=np.int64)  # population, neuron
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
        ht, hk = _push(ht, hk, hn, in_t[k], R_SPIKE, -1, in_id[k], seq, -1)
        seq += 1
        hn += 1

    n_events = 0
    status = 0
    t_fail = 0.0
    while hn > 0:
        t = ht[0]
        rank = hk[0, 0]
        a = hk[0, 1]
        b = hk[0, 2]
        x = hk[0, 4]
        hn = _pop(ht, hk, hn)
        if rank == R_SPIKE and a >= 0:
            gi = pop_off[a] + b
            if not pend_on[gi] or pend_ver[gi] != x:
                continue  # stale prediction
            if not pend_exact[gi]:
                # a lower bound reached the front: solve now and queue the exact time
                p = a
                Dc = solve_crossing(pend_V0[gi], pend_I0[gi], pend_Dend[gi], p_tm[p], p_ts[p],
                                    p_g[p], p_th[p])
                n_solve += 1
                pend_exact[gi] = True
                ht, hk = _push(ht, hk, hn, pend_t0[gi] + Dc, R_SPIKE, p, b, seq, pend_ver[gi])
                seq += 1
                hn += 1
                continue
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
                _advance(p, t, V, I, refr, pop_t, pop_off, p_tm, p_ts, p_g, p_vr)
                if rank == R_RELEASE:
                    rec_f[x, 2] = I[gi]
                    refr[gi] = False
                    V[gi] = p_vr[p]
                    tlist[0] = gi
                    npred_list = 1
                else:
                    if nrec == rec_f.shape[0]:
                        rec_f2 = np.empty((2 * nrec, 3))
                        rec_f2[:nrec] = rec_f
                        rec_n2 = np.empty((2 * nrec, 2), dtype=np.int64)
                        rec_n2[:nrec] = rec_n
                        rec_f, rec_n = rec_f2, rec_n2
                    cur = I[gi]
                    rec_f[nrec, 0] = t
                    rec_f[nrec, 1] = cur
                    rec_f[nrec, 2] = np.nan
                    rec_n[nrec, 0] = p
                    rec_n[nrec, 1] = n
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
                            ht, hk = _push(ht, hk, hn, tr, R_RELEASE, p, n, seq, nrec - 1)
                            seq += 1
                            hn += 1
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
                            ht, hk = _push(ht, hk, hn, ta, R_ARRIVAL, j, n, seq, k)
                            seq += 1
                            hn += 1
        else:
            # arrival: apply it and every other arrival at the same time
            ntouch = 0
            first = True
            while True:
                if not first:
                    if hn == 0 or ht[0] != t or hk[0, 0] != R_ARRIVAL:
                        break
                    a = hk[0, 1]
                    b = hk[0, 2]
                    x = hk[0, 4]
                    hn = _pop(ht, hk, hn)
                    n_events += 1
                first = False
                j = a
                m = b
                k = x
                p = proj_post[j]
                _advance(p, t, V, I, refr, pop_t, pop_off, p_tm, p_ts, p_g, p_vr)
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
            exact = True
            if V0 >= th:
                Dc = 0.0
            elif Vp >= th:
                # Lazy solve: queue a lower bound of the crossing time and solve only if the
                # entry reaches the front of the queue still valid (a later arrival often
                # supersedes it). On the rising part I <= I0 and V >= V0, so
                # dV/dt <= (I0 - V0)/tm and the crossing is at D >= tm (th - V0)/(I0 - V0).
                # The solve uses the state stored here, so the spike time is the same.
                Dc = tm * (th - V0) / (I0 - V0)
                if not Dc <= D_end:
                    Dc = D_end
                exact = False
                pend_V0[gi] = V0
                pend_I0[gi] = I0
                pend_Dend[gi] = D_end
                pend_t0[gi] = t
            pend_ver[gi] += 1
            pend_on[gi] = False
            if Dc < INF:
                if Dc == 0.0 and exact:
                    n_imm += 1
                ht, hk = _push(ht, hk, hn, t + Dc, R_SPIKE, p, gi - pop_off[p], seq, pend_ver[gi])
                seq += 1
                hn += 1
                pend_on[gi] = True
                pend_exact[gi] = exact
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
    return (status, rec_f[:nrec, 0].copy(), rec_n[:nrec, 0].copy(), rec_n[:nrec, 1].copy(),
            rec_f[:nrec, 1].copy(), rec_f[:nrec, 2].copy(), diag_i, diag_f)


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

        self.args = (self.pop_size, self.pop_off, self.p_tm, self.p_ts, self.p_th, self.p_vr,
                     self.p_tref, self.src_ptr, self.src_proj, self.proj_post, self.proj_npost,
                     self.proj_w_off, self.row_ptr, self.grp_ptr, self.grp_delay, self.grp_all,
                     self.post_ptr, self.post_idx, self.W)

    def with_weights(self, weights) -> "FastPlan":
        """A plan for the same structure and delays with other weights (this one unchanged)."""
        other = copy.copy(self)
        other.W = (np.concatenate([np.asarray(w, dtype=np.float64).ravel() for w in weights])
                   if weights else np.zeros(0))
        other.args = self.args[:-1] + (other.W,)
        return other

    def backward(self, rec, g_t, in_t, in_id, t_max, probes):
        pr = _probe_arrays(probes)
        return backward(rec.times, rec.pops, rec.ids, rec.currents, rec.release_currents,
                        np.asarray(g_t, dtype=np.float64), in_t, in_id, t_max, *self.args, *pr)

    def forward(self, in_t, in_id, t_max, max_events):
        return forward(in_t, in_id, t_max, max_events, *self.args)

    def forward_many(self, in_t, in_id, in_off, t_max, max_events):
        return forward_many(in_t, in_id, in_off, t_max, max_events, *self.args)

    def backward_many(self, rec, rec_off, g_t, in_t, in_id, in_off, t_max, probes, pr_off):
        """``rec``: (times, pops, ids, currents, release_currents) concatenated over the
        samples; ``probes``: one list of VoltageProbe per sample."""
        pr = _probe_arrays([q for qs in probes for q in qs])
        return backward_many(*rec, rec_off, g_t, in_t, in_id, in_off, t_max, *self.args, *pr,
                             pr_off)


_PROBE_FIELDS = (("neurons", np.int64), ("times", np.float64), ("dL_dV", np.float64),
                 ("at_arrival", np.bool_), ("vdot_left", np.float64), ("at_end", np.bool_))


def _probe_arrays(probes) -> list[np.ndarray]:
    """VoltageProbes as the seven flat arrays the compiled backward takes."""
    if not probes:
        return [np.zeros(0, np.int64)] + [np.zeros(0, d) for _, d in _PROBE_FIELDS]
    out = [np.concatenate([np.full(len(q.neurons), q.pop, dtype=np.int64) for q in probes])]
    for name, dtype in _PROBE_FIELDS:
        out.append(np.concatenate([np.asarray(getattr(q, name)) for q in probes]).astype(dtype))
    return out


def plan_for(network, weights, delays) -> FastPlan:
    """The network's :class:`FastPlan` with these weights, rebuilt only when the structure or
    the delays changed (cached on the network; training changes only the weights)."""
    key = (network.input.size,
           tuple((p.size, p.neuron.tau_mem, p.neuron.tau_syn, p.neuron.threshold,
                  p.neuron.v_reset, p.neuron.t_ref) for p in network.populations),
           tuple((pr.pre.name, pr.post.name) for pr in network.projections),
           tuple(np.asarray(d, dtype=np.float64).tobytes() for d in delays))
    cached = getattr(network, "_fast_plan_cache", None)
    if cached is not None and cached[0] == key:
        return cached[1].with_weights(weights)
    plan = FastPlan(network, weights, delays)
    network._fast_plan_cache = (key, plan)
    return plan


# --------------------------------------------------------------------------- backward
RB_SPIKE, RB_RELEASE, RB_PROBE, RB_ARRIVAL, RB_PROBE_END = 0, 1, 2, 3, 4


@njit(cache=True, nogil=True)
def _arrival_events(et, ek, c, src, m, t, tag, t_max, src_ptr, src_proj, row_ptr, grp_ptr,
                    grp_delay):
    """The arrival events of a spike of neuron ``m`` of source ``src`` (-1: input) at ``t``."""
    for jj in range(src_ptr[src + 1], src_ptr[src + 2]):
        j = src_proj[jj]
        r = row_ptr[j] + m
        for k in range(grp_ptr[r], grp_ptr[r + 1]):
            a = t + grp_delay[k]
            if a <= t_max:
                c = _event(et, ek, c, a, RB_ARRIVAL, j, m, tag, k)
    return c


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
    ek = np.empty((n_ev, 5), dtype=np.int64)  # rank, source, index, tag, group
    c = 0
    for i in range(n_in):
        if in_t[i] <= t_max:
            c = _event(et, ek, c, in_t[i], RB_SPIKE, -1, in_id[i], -(i + 1), -1)
            c = _arrival_events(et, ek, c, -1, in_id[i], in_t[i], -(i + 1), t_max, src_ptr,
                                src_proj, row_ptr, grp_ptr, grp_delay)
    for s in range(n_sp):
        p = rec_p[s]
        c = _event(et, ek, c, rec_t[s], RB_SPIKE, p, rec_i[s], s, -1)
        c = _arrival_events(et, ek, c, p, rec_i[s], rec_t[s], s, t_max, src_ptr, src_proj,
                            row_ptr, grp_ptr, grp_delay)
        if p_tref[p] > 0.0 and rec_t[s] + p_tref[p] <= t_max:
            c = _event(et, ek, c, rec_t[s] + p_tref[p], RB_RELEASE, p, rec_i[s], s, -1)
    for q in range(pr_pop.shape[0]):
        c = _event(et, ek, c, pr_t[q], RB_PROBE_END if pr_end[q] else RB_PROBE, pr_pop[q],
                   pr_n[q], q, -1)
    er = ek[:, 0]
    ea = ek[:, 1]
    eb = ek[:, 2]
    etag = ek[:, 3]
    eg = ek[:, 4]
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


# --------------------------------------------------------------------------- many samples
# One compiled call per chunk of samples: the per-call cost of crossing into numba (unboxing
# ~30 arrays, under the GIL) is paid once per chunk, so threads running chunks scale.
@njit(cache=True, nogil=True)
def _grow(a, n):
    if n <= a.shape[0]:
        return a
    b = np.empty(max(n, 2 * a.shape[0]), dtype=a.dtype)
    b[:a.shape[0]] = a
    return b


@njit(cache=True, nogil=True)
def forward_many(in_t, in_id, in_off, t_max, max_events,
                 pop_size, pop_off, p_tm, p_ts, p_th, p_vr, p_tref,
                 src_ptr, src_proj, proj_post, proj_npost, proj_w_off,
                 row_ptr, grp_ptr, grp_delay, grp_all, post_ptr, post_idx, W):
    """:func:`forward` for samples ``s`` with inputs ``in_t[in_off[s]:in_off[s+1]]``.

    Returns (status (n,), rec_off (n+1,), rec_t, rec_p, rec_i, rec_c, rec_r (concatenated),
    diag_int (n, 6), diag_float (n, 3)). Stops after the first sample with status != 0.
    """
    n = in_off.shape[0] - 1
    status = np.zeros(n, dtype=np.int64)
    di = np.zeros((n, 6), dtype=np.int64)
    df = np.zeros((n, 3))
    rec_off = np.zeros(n + 1, dtype=np.int64)
    cap = 256
    rt = np.empty(cap)
    rp = np.empty(cap, dtype=np.int64)
    ri = np.empty(cap, dtype=np.int64)
    rc = np.empty(cap)
    rr = np.empty(cap)
    tot = 0
    for s in range(n):
        a, b = in_off[s], in_off[s + 1]
        st, t, p, i, c, r, dgi, dgf = forward(
            in_t[a:b], in_id[a:b], t_max, max_events, pop_size, pop_off, p_tm, p_ts, p_th,
            p_vr, p_tref, src_ptr, src_proj, proj_post, proj_npost, proj_w_off, row_ptr,
            grp_ptr, grp_delay, grp_all, post_ptr, post_idx, W)
        k = t.shape[0]
        rt = _grow(rt, tot + k)
        rp = _grow(rp, tot + k)
        ri = _grow(ri, tot + k)
        rc = _grow(rc, tot + k)
        rr = _grow(rr, tot + k)
        rt[tot:tot + k] = t
        rp[tot:tot + k] = p
        ri[tot:tot + k] = i
        rc[tot:tot + k] = c
        rr[tot:tot + k] = r
        tot += k
        rec_off[s + 1] = tot
        status[s] = st
        di[s] = dgi
        df[s] = dgf
        if st != 0:
            for u in range(s + 2, n + 1):
                rec_off[u] = tot
            break
    return (status, rec_off, rt[:tot].copy(), rp[:tot].copy(), ri[:tot].copy(),
            rc[:tot].copy(), rr[:tot].copy(), di, df)


@njit(cache=True, nogil=True)
def backward_many(rec_t, rec_p, rec_i, rec_c, rec_r, rec_off, g_t, in_t, in_id, in_off, t_max,
                  pop_size, pop_off, p_tm, p_ts, p_th, p_vr, p_tref,
                  src_ptr, src_proj, proj_post, proj_npost, proj_w_off,
                  row_ptr, grp_ptr, grp_delay, grp_all, post_ptr, post_idx, W,
                  pr_pop, pr_n, pr_t, pr_dl, pr_arr, pr_vdot, pr_end, pr_off):
    """:func:`backward` for several samples (records, ``g_t``, inputs and probes concatenated,
    sample ``s`` at ``[off[s]:off[s+1]]``). Returns (gw, gd) summed over the samples, g_in
    and g_t concatenated, and the number of grazing spikes per sample."""
    n = rec_off.shape[0] - 1
    gw = np.zeros(W.shape[0])
    gd = np.zeros(W.shape[0])
    g_in = np.zeros(in_t.shape[0])
    g_out = np.zeros(rec_t.shape[0])
    n_graz = np.zeros(n, dtype=np.int64)
    for s in range(n):
        a, b = rec_off[s], rec_off[s + 1]
        ia, ib = in_off[s], in_off[s + 1]
        qa, qb = pr_off[s], pr_off[s + 1]
        w1, d1, gi1, gt1, ng = backward(
            rec_t[a:b], rec_p[a:b], rec_i[a:b], rec_c[a:b], rec_r[a:b], g_t[a:b],
            in_t[ia:ib], in_id[ia:ib], t_max, pop_size, pop_off, p_tm, p_ts, p_th, p_vr,
            p_tref, src_ptr, src_proj, proj_post, proj_npost, proj_w_off, row_ptr, grp_ptr,
            grp_delay, grp_all, post_ptr, post_idx, W, pr_pop[qa:qb], pr_n[qa:qb],
            pr_t[qa:qb], pr_dl[qa:qb], pr_arr[qa:qb], pr_vdot[qa:qb], pr_end[qa:qb])
        gw += w1
        gd += d1
        g_in[ia:ib] = gi1
        g_out[a:b] = gt1
        n_graz[s] = ng
    return gw, gd, g_in, g_out, n_graz


# --------------------------------------------------------------------------- readout
AT_START, AT_PEAK, AT_ARRIVAL, AT_END = 0, 1, 2, 3  # as eventgrad.readout


@njit(cache=True, nogil=True)
def max_voltage(a, cols, w, t_max, tm, ts, g, active):
    """Maximum of V over [0, t_max] of each active neuron of a non-spiking population.

    The arrivals into the population are ``(a, cols, w)``: time (ms, <= t_max), neuron, weight,
    in any order (equal times are applied together, in the given order). Every distinct
    arrival time is an interval edge for every neuron. Mirrors the rule of
    ``eventgrad.readout.max_voltage``. Returns (values, times, kind, vdot_left); inactive
    neurons get nan / -1. Cost O(n log n + N G) for n arrivals at G distinct times: each
    neuron's own arrivals are listed once (in time order, the given order within a time).
    """
    order = np.argsort(a, kind="mergesort")
    n = a.shape[0]
    N = active.shape[0]
    best = np.full(N, np.nan)
    best_t = np.full(N, np.nan)
    kind = np.full(N, -1, dtype=np.int64)
    vdot = np.full(N, np.nan)
    # distinct times (groups) and, per neuron, its arrivals as (group, weight) in order
    gid = np.empty(n, dtype=np.int64)
    gtime = np.empty(n + 1)
    G = 0
    for k in range(n):
        if k == 0 or a[order[k]] != a[order[k - 1]]:
            gtime[G] = a[order[k]]
            G += 1
        gid[k] = G - 1
    start = np.zeros(N + 1, dtype=np.int64)
    for k in range(n):
        start[cols[order[k]] + 1] += 1
    for q in range(N):
        start[q + 1] += start[q]
    pos = start[:N].copy()
    own_g = np.empty(n, dtype=np.int64)
    own_w = np.empty(n)
    for k in range(n):
        c = cols[order[k]]
        own_g[pos[c]] = gid[k]
        own_w[pos[c]] = w[order[k]]
        pos[c] += 1
    for q in range(N):
        if not active[q]:
            continue
        v = 0.0
        cur = 0.0
        t_prev = 0.0
        b = 0.0
        bt = 0.0
        kd = AT_START
        vb = 0.0
        p = start[q]
        p_end = start[q + 1]
        for gi in range(G + 1):
            end = gi == G
            t = t_max if end else gtime[gi]
            D = t - t_prev
            if D > 0.0:
                Dpk = peak_time(v, cur, tm, ts)
                if Dpk > 0.0 and Dpk < D:
                    vpk = voltage(v, cur, Dpk, tm, ts, g)
                    if vpk > b:
                        b = vpk
                        bt = t_prev + Dpk
                        kd = AT_PEAK
                        vb = 0.0
                v = voltage(v, cur, D, tm, ts, g)
                cur = cur * math.exp(-D / ts)
                t_prev = t
            if v > b:
                b = v
                bt = t
                kd = AT_END if end else AT_ARRIVAL
                vb = (cur - v) / tm
            if end:
                break
            # this neuron's weights arriving at t (the group of equal times)
            dw = 0.0
            while p < p_end and own_g[p] == gi:
                dw += own_w[p]
                p += 1
            cur = cur + dw
        best[q] = b
        best_t[q] = bt
        kind[q] = kd
        vdot[q] = vb
    return best, best_t, kind, vdot

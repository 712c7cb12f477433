"""The reference engine: the algorithm in plain Python, forward and adjoint.

This is the readable statement of what the compiled engines do, and what they are tested
against. It calls the same physics (:mod:`eventgrad.model.physics`); only the bookkeeping is
its own.

Forward: a sorted queue (:class:`sortedcontainers.SortedList`) holds input spikes, synaptic
arrivals (one event per presynaptic spike, projection and distinct delay), predicted threshold
crossings (at most one per neuron, revised whenever an arrival changes its current) and
refractory releases, keyed by ``(time, rank, source, index, sequence)`` with the ranks of
:mod:`eventgrad.event.order`. Each population keeps ``(V, I)`` at the time of its last event and
is moved forward in closed form when it is touched; nothing is stored on a time grid.

Adjoint: the events are rebuilt from the spike records and walked backward in time with the
costate ``(mu_V, mu_I) = dL/d(V, I)`` (``docs/adjoint.md``).
"""

from __future__ import annotations

import math

import numpy as np
from sortedcontainers import SortedList

from ..model import physics
from .order import ARRIVAL, PROBE, PROBE_END, RELEASE, SPIKE

__all__ = ["EventLimitError", "forward", "backward"]


class EventLimitError(RuntimeError):
    """Raised when a simulation processes more than ``max_events`` events (runaway activity)."""


def limit_message(max_events: int, t: float, t_max: float) -> str:
    return (f"max_events={max_events} exceeded at t={t:.6g} ms of t_max={t_max} ms "
            "(runaway activity?); raise max_events or check the weights")


class _PopState:
    """``(V, I)`` of one population at the time ``t`` of its last event."""

    __slots__ = ("pop", "nrn", "V", "I", "t", "refr", "pending", "peak_t", "peak_v")

    def __init__(self, pop) -> None:
        n = pop.size
        self.pop, self.nrn = pop, pop.neuron
        self.V, self.I = np.zeros(n), np.zeros(n)
        self.t = 0.0
        self.refr = np.zeros(n, dtype=bool)
        self.pending: list = [None] * n
        self.peak_t = np.full(n, np.inf)  # absolute time of the predicted maximum (no crossing)
        self.peak_v = np.zeros(n)

    def advance(self, t: float) -> None:
        if t > self.t:
            nrn = self.nrn
            em, es, kk = physics.decay(t - self.t, nrn.tau_mem, nrn.tau_syn, nrn.g)
            self.V = np.where(self.refr, nrn.v_reset, self.V * em + self.I * kk)
            self.I = self.I * es
            self.t = t


class _Run:
    """The state of one forward simulation."""

    def __init__(self, network, plan, t_max, max_events, diag) -> None:
        self.network, self.weights, self.t_max, self.max_events = network, plan.weights, t_max, \
            max_events
        self.states = [_PopState(p) for p in network.populations]
        self.queue = SortedList()
        self.seq = 0
        self.diag = diag
        self.out: dict[int, list] = {}
        for proj in network.projections:
            src = -1 if proj.pre is network.input else proj.pre.index
            self.out.setdefault(src, []).append(
                (proj.index, [plan.groups(proj.index, m) for m in range(proj.pre.size)]))
        self.rec: list[list] = []  # time, pop, id, current, release current

    def push(self, *key) -> tuple:
        key = key[:4] + (self.seq,) + key[4:]
        self.seq += 1
        self.queue.add(key)
        return key

    def emit_arrivals(self, src: int, m: int, t: float) -> None:
        for j, groups in self.out.get(src, ()):
            for d, posts in groups[m]:
                if t + d <= self.t_max:
                    self.push(t + d, ARRIVAL, j, m, posts)

    def note_realised_peaks(self, st: _PopState, idx: np.ndarray, t: float) -> None:
        done = idx[st.peak_t[idx] <= t]
        if done.size:
            self.diag.closest_approach = min(self.diag.closest_approach,
                                             float(np.min(st.nrn.threshold - st.peak_v[done])))
            st.peak_t[done] = np.inf

    def predict(self, st: _PopState, idx, t: float) -> None:
        nrn = st.nrn
        if nrn.threshold == math.inf:
            return
        H = self.t_max - t
        for n in idx:
            D, D_peak, V_peak = physics.crossing(float(st.V[n]), float(st.I[n]), H, nrn.tau_mem,
                                                 nrn.tau_syn, nrn.g, nrn.threshold)
            self.diag.n_predictions += 1
            self.diag.n_root_solves += 0.0 < D < math.inf
            if st.pending[n] is not None:
                self.queue.remove(st.pending[n])
                st.pending[n] = None
            if D < math.inf:
                st.pending[n] = self.push(t + D, SPIKE, st.pop.index, int(n))
                self.diag.n_immediate_spikes += D == 0.0
            st.peak_t[n] = t + D_peak if D == math.inf and D_peak < H else math.inf
            st.peak_v[n] = V_peak

    def spike(self, p: int, n: int, t: float) -> None:
        st = self.states[p]
        st.advance(t)
        cur = float(st.I[n])
        self.rec.append([t, p, n, cur, math.nan])
        self.diag.min_crossing_slope = min(self.diag.min_crossing_slope, cur - st.nrn.threshold)
        st.pending[n] = None
        st.V[n] = st.nrn.v_reset
        st.peak_t[n] = math.inf
        if st.nrn.t_ref > 0.0:
            st.refr[n] = True
            if t + st.nrn.t_ref <= self.t_max:
                self.push(t + st.nrn.t_ref, RELEASE, p, n, len(self.rec) - 1)
        else:
            self.predict(st, [n], t)

    def release(self, p: int, n: int, t: float, k: int) -> None:
        st = self.states[p]
        st.advance(t)
        self.rec[k][4] = float(st.I[n])
        st.refr[n] = False
        st.V[n] = st.nrn.v_reset
        self.predict(st, [n], t)

    def arrivals(self, first: tuple) -> None:
        """Apply ``first`` and every other arrival at its time, then predict again."""
        t = first[0]
        batch = [first]
        while self.queue and self.queue[0][0] == t and self.queue[0][1] == ARRIVAL:
            batch.append(self.queue.pop(0))
        self.count(len(batch) - 1, t)
        touched: dict[int, set] = {}
        for _, _, j, m, _, posts in batch:
            proj = self.network.projections[j]
            st = self.states[proj.post.index]
            st.advance(t)
            sel = slice(None) if posts is None else posts
            st.I[sel] += self.weights[j][m, sel]
            touched.setdefault(proj.post.index, set()).update(
                range(proj.post.size) if posts is None else posts.tolist())
        for p, ns in touched.items():
            st = self.states[p]
            idx = np.array(sorted(ns), dtype=np.int64)
            self.note_realised_peaks(st, idx, t)
            self.predict(st, idx[~st.refr[idx]], t)

    def count(self, n: int, t: float) -> None:
        self.diag.n_events += n
        if self.diag.n_events > self.max_events:
            raise EventLimitError(limit_message(self.max_events, t, self.t_max))


def forward(network, plan, inputs, t_max: float, max_events: int, diag):
    """Simulate one sample with the weights and delays of ``plan``; fills ``diag`` (a
    Diagnostics) and returns the records as five arrays (times, pops, ids, currents, release
    currents) in event order."""
    run = _Run(network, plan, t_max, max_events, diag)
    for t, i in zip(inputs.times, inputs.ids):
        if t > t_max:
            diag.n_inputs_after_t_max += 1
        else:
            run.push(float(t), SPIKE, -1, int(i))
    while run.queue:
        ev = run.queue.pop(0)
        t, rank = ev[0], ev[1]
        run.count(1, t)
        if rank == SPIKE:
            if ev[2] >= 0:
                run.spike(ev[2], ev[3], t)
            run.emit_arrivals(ev[2], ev[3], t)
        elif rank == RELEASE:
            run.release(ev[2], ev[3], t, ev[5])
        else:
            run.arrivals(ev)
    for st in run.states:
        run.note_realised_peaks(st, np.arange(st.pop.size), t_max)
    diag.n_spikes = len(run.rec)
    rec = np.array(run.rec, dtype=np.float64).reshape(-1, 5)
    return (rec[:, 0].copy(), rec[:, 1].astype(np.int64), rec[:, 2].astype(np.int64),
            rec[:, 3].copy(), rec[:, 4].copy())


# ------------------------------------------------------------------------------ adjoint
def _events(result, probes) -> tuple[list, dict]:
    """Every event of the forward pass and the probes, in forward order, and the kinks (probes
    on V at an arrival time) by (population, time)."""
    net, rec, t_max = result.network, result.records, result.t_max
    out_by_src: dict[int, list] = {}
    for proj in net.projections:
        out_by_src.setdefault(-1 if proj.pre is net.input else proj.pre.index, []).append(proj)
    events: list[tuple] = []

    def add_arrivals(src: int, m: int, t: float, tag: int) -> None:
        for proj in out_by_src.get(src, ()):
            for d, posts in result.plan.groups(proj.index, m):
                if t + d <= t_max:
                    events.append((t + d, ARRIVAL, proj.index, m, tag, posts))

    for i, (t, m) in enumerate(zip(result.inputs.times, result.inputs.ids)):
        if t <= t_max:
            add_arrivals(-1, int(m), float(t), -(i + 1))
    for k in range(len(rec)):
        t, p, n = float(rec.times[k]), int(rec.pops[k]), int(rec.ids[k])
        events.append((t, SPIKE, p, n, k, None))
        add_arrivals(p, n, t, k)
        t_ref = net.populations[p].neuron.t_ref
        if t_ref > 0.0 and not math.isnan(rec.release_currents[k]):   # recorded: it happened
            events.append((t + t_ref, RELEASE, p, n, k, None))
    kinks: dict[tuple[int, float], dict[int, float]] = {}
    for pr in probes:
        for j in range(len(pr.neurons)):
            n, tau = int(pr.neurons[j]), float(pr.times[j])
            events.append((tau, PROBE_END if pr.at_end[j] else PROBE, pr.pop, n, j,
                           float(pr.dL_dV[j])))
            if pr.at_arrival[j]:
                kinks.setdefault((pr.pop, tau), {})[n] = float(pr.dL_dV[j] * pr.vdot_left[j])
    # forward order (time, rank, source, index); ties among equal keys commute
    events.sort(key=lambda e: (e[0], e[1], e[2], e[3]))
    return events, kinks


class _Costate:
    __slots__ = ("nrn", "mu_V", "mu_I", "tau")

    def __init__(self, nrn, n: int, t_max: float) -> None:
        self.nrn, self.tau = nrn, t_max
        self.mu_V, self.mu_I = np.zeros(n), np.zeros(n)

    def retreat(self, t: float) -> None:
        if self.tau > t:
            nrn = self.nrn
            em, es, kk = physics.decay(self.tau - t, nrn.tau_mem, nrn.tau_syn, nrn.g)
            self.mu_V, self.mu_I = em * self.mu_V, es * self.mu_I + kk * self.mu_V
            self.tau = t


def backward(result, g_t: np.ndarray, probes) -> tuple:
    """The adjoint of one sample. Returns ``(dL/dw list, dL/dd list, dL/d(input times),
    dL/dt of every record, number of grazing spikes)``."""
    net, rec = result.network, result.records
    events, kinks = _events(result, probes)
    g_t = g_t.copy()
    g_in = np.zeros(len(result.inputs))
    gw = [np.zeros(w.shape) for w in result.weights]
    gd = [np.zeros(w.shape) for w in result.weights]
    cos = [_Costate(p.neuron, p.size, result.t_max) for p in net.populations]
    n_grazing = 0
    for t, kind, a, b, tag, extra in reversed(events):
        p = net.projections[a].post.index if kind == ARRIVAL else a
        c = cos[p]
        c.retreat(t)
        nrn = c.nrn
        if kind == ARRIVAL:
            sl = slice(None) if extra is None else extra
            w = result.weights[a][b, sl]
            dLda = np.array([physics.arrival_adjoint(float(wi), float(v), float(i), nrn.tau_mem,
                                                     nrn.tau_syn)
                             for wi, v, i in zip(w, c.mu_V[sl], c.mu_I[sl])])
            posts = np.arange(net.projections[a].post.size)[sl]
            for n, x in kinks.get((p, t), {}).items():
                dLda[posts == n] += x
            gw[a][b, sl] += c.mu_I[sl]
            gd[a][b, sl] += dLda
            if tag >= 0:
                g_t[tag] += dLda.sum()
            else:
                g_in[-tag - 1] += dLda.sum()
        elif kind == SPIKE:
            c.mu_V[b], graz = physics.spike_adjoint(float(c.mu_V[b]), float(rec.currents[tag]),
                                                    nrn.threshold, nrn.v_reset, nrn.tau_mem,
                                                    float(g_t[tag]))
            n_grazing += graz
        elif kind == RELEASE:
            g_t[tag] += physics.release_adjoint(float(c.mu_V[b]), float(rec.release_currents[tag]),
                                                nrn.v_reset, nrn.tau_mem)
            c.mu_V[b] = 0.0
        else:
            c.mu_V[b] += extra
    return gw, gd, g_in, g_t, n_grazing

"""The event queue and the exact forward simulation.

One event loop serves every topology (feed-forward, recurrent, with delays). A sorted queue
(:class:`sortedcontainers.SortedList`) holds four kinds of events:

* input spikes (given),
* synaptic arrivals: a spike of a presynaptic neuron reaching the neurons of one projection after
  their delay (one event per distinct delay),
* predicted threshold crossings: each non-refractory neuron has at most one, computed from its
  current state by :meth:`LIF.next_crossing` and revised whenever an arrival changes its current,
* refractory releases.

Order of simultaneous events (deterministic)
---------------------------------------------
Events are sorted by ``(time, rank, source, index, sequence)``:

1. rank 0 — spikes: input spikes first (source -1), then LIF spikes by population index, then by
   neuron index. A crossing at ``t`` is decided by the state before any arrival at ``t`` (V is
   continuous, so an arrival cannot create or remove a crossing at the same instant);
2. rank 1 — refractory releases, by population and neuron;
3. rank 2 — synaptic arrivals, by projection and presynaptic neuron; all arrivals at one time
   are applied together before the affected neurons' crossings are predicted again.

A spike's zero-delay arrivals therefore come after every spike at that time. Ties at equal times
keep insertion order through the sequence number.

State between events is never stored on a grid: each population keeps ``(V, I)`` at the time of
its last event and is moved forward in closed form when it is touched.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from sortedcontainers import SortedList

from .network import InputPopulation, Network, Population
from .result import BatchResult, Diagnostics, SimulationResult, SpikeRecord
from .spikes import Spikes

__all__ = ["simulate", "EventLimitError", "DEFAULT_MAX_EVENTS"]

#: Default bound on the number of events processed for one sample.
DEFAULT_MAX_EVENTS = 1_000_000

_SPIKE, _RELEASE, _ARRIVAL = 0, 1, 2


class EventLimitError(RuntimeError):
    """Raised when a simulation processes more than ``max_events`` events (runaway activity)."""


class _PopState:
    __slots__ = ("pop", "nrn", "V", "I", "t", "refr", "pending", "peak_t", "peak_v")

    def __init__(self, pop: Population) -> None:
        n = pop.size
        self.pop = pop
        self.nrn = pop.neuron
        self.V = np.zeros(n)
        self.I = np.zeros(n)
        self.t = 0.0
        self.refr = np.zeros(n, dtype=bool)
        self.pending: list = [None] * n
        self.peak_t = np.full(n, np.inf)  # absolute time of the predicted maximum (no crossing)
        self.peak_v = np.zeros(n)

    def advance(self, t: float) -> None:
        D = t - self.t
        if D > 0.0:
            nrn = self.nrn
            Vn = self.V * math.exp(-D / nrn.tau_mem) + self.I * nrn.kernel_scalar(D)
            self.V = np.where(self.refr, nrn.v_reset, Vn)
            self.I = self.I * math.exp(-D / nrn.tau_syn)
            self.t = t


def _validate_inputs(network: Network, spikes, t_max: float) -> tuple[list[Spikes], bool]:
    single = isinstance(spikes, Spikes)
    batch = [spikes] if single else list(spikes) if isinstance(spikes, Sequence) else None
    if batch is None:
        raise TypeError(f"spikes must be an eventgrad.Spikes or a sequence of them, got {type(spikes)}")
    n_in = network.input.size
    for b, s in enumerate(batch):
        if not isinstance(s, Spikes):
            raise TypeError(f"spikes[{b}] must be an eventgrad.Spikes, got {type(s)}")
        if len(s) and s.ids.max() >= n_in:
            raise ValueError(f"spikes[{b}]: input id {int(s.ids.max())} out of range for "
                             f"n_inputs={n_in}")
    return batch, single


def _check_t_max(t_max) -> float:
    try:
        t = float(t_max)
    except (TypeError, ValueError):
        raise TypeError(f"t_max must be a real number, got {t_max!r}") from None
    if not math.isfinite(t) or t <= 0:
        raise ValueError(f"t_max must be finite and > 0 ms, got {t_max!r}")
    return t


ENGINES = ("fast", "reference")


def simulate(network: Network, spikes, t_max: float, max_events: int = DEFAULT_MAX_EVENTS,
             engine: str = "fast", workers: int | None = None):
    """Simulate ``network`` exactly, event by event, from ``t = 0`` to ``t_max``.

    Parameters
    ----------
    network : Network
    spikes : Spikes or sequence of Spikes
        Input spikes (ids index ``network.input``); a sequence is a batch of samples.
    t_max : float
        End of the window in ms (> 0). Crossings at ``t <= t_max`` are spikes.
    max_events : int
        Bound on the events processed per sample; exceeding it raises
        :class:`EventLimitError` (nothing is truncated silently).
    engine : "fast" or "reference"
        ``"fast"`` (default) runs the compiled event loop of :mod:`eventgrad._fast`;
        ``"reference"`` the pure-Python loop of this module. Same algorithm, order of events
        and numerics: they give the same spikes bit for bit (cross-tested).
    workers : int, optional
        Threads for the samples of a batch with the fast engine (default: the CPUs this
        process may use). The batch is cut into chunks of 8 samples, one compiled call each,
        which release the GIL and run in parallel; results do not depend on ``workers``.

    Returns
    -------
    SimulationResult for one Spikes, BatchResult for a sequence.
    """
    if not isinstance(network, Network):
        raise TypeError(f"network must be an eventgrad.Network, got {type(network)}")
    t_max = _check_t_max(t_max)
    if isinstance(max_events, bool) or not isinstance(max_events, (int, np.integer)) or max_events < 1:
        raise ValueError(f"max_events must be a positive integer, got {max_events!r}")
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    batch, single = _validate_inputs(network, spikes, t_max)
    weights = network.get_weights()
    delays = network.get_delays()
    if engine == "reference":
        plan = _Plan(network, weights, delays)
        results = []
        for b, s in enumerate(batch):
            try:
                results.append(_run_one(plan, s, t_max, int(max_events)))
            except EventLimitError as e:
                if len(batch) == 1:
                    raise
                raise EventLimitError(f"sample {b}: {e}") from None
    else:
        results = _run_fast(network, weights, delays, batch, t_max, int(max_events), workers)
    return results[0] if single else BatchResult(results)


def _run_fast(network, weights, delays, batch, t_max, max_events, workers):
    from . import _fast
    from ._parallel import parallel_chunks

    fplan = _fast.plan_for(network, weights, delays)

    def chunk(items: list[tuple[int, Spikes]]) -> list[SimulationResult]:
        samples = [s for _, s in items]
        in_off = np.zeros(len(samples) + 1, dtype=np.int64)
        np.cumsum([len(s) for s in samples], out=in_off[1:])
        in_t = np.concatenate([s.times for s in samples])
        in_id = np.concatenate([s.ids for s in samples])
        status, off, t, p, i, c, r, di, df = fplan.forward_many(in_t, in_id, in_off, t_max,
                                                                max_events)
        out = []
        for k, s in enumerate(samples):
            if status[k] == 1:
                where = f"sample {items[k][0]}: " if len(batch) > 1 else ""
                raise EventLimitError(
                    f"{where}max_events={max_events} exceeded at t={df[k, 2]:.6g} ms of "
                    f"t_max={t_max} ms (runaway activity?); raise max_events or check the "
                    "weights")
            a, b = off[k], off[k + 1]
            diag = Diagnostics(n_events=int(di[k, 0]), n_spikes=int(di[k, 1]),
                               n_predictions=int(di[k, 2]), n_root_solves=int(di[k, 3]),
                               closest_approach=float(df[k, 0]),
                               min_crossing_slope=float(df[k, 1]),
                               n_immediate_spikes=int(di[k, 4]),
                               n_inputs_after_t_max=int(di[k, 5]))
            res = SimulationResult(network, weights, delays, t_max, s,
                                   SpikeRecord(t[a:b], p[a:b], i[a:b], c[a:b], r[a:b]), diag)
            res._fast_plan = fplan  # reused by the compiled adjoint pass
            out.append(res)
        return out

    return [r for part in parallel_chunks(chunk, list(enumerate(batch)), workers) for r in part]


class _Plan:
    """Per-network constants shared by the samples of a batch."""

    def __init__(self, network: Network, weights: list[np.ndarray], delays: list[np.ndarray]):
        self.network = network
        self.weights = weights
        self.delays = delays
        # outgoing projections per source (-1 = input), with per-pre-neuron arrival groups
        self.out: dict[int, list[tuple[int, list]]] = {}
        for proj in network.projections:
            src = -1 if isinstance(proj.pre, InputPopulation) else proj.pre.index
            d = delays[proj.index]
            groups = []
            for m in range(proj.pre.size):
                row = d[m]
                if np.all(row == row[0]):
                    groups.append([(float(row[0]), None)])
                else:
                    uniq = np.unique(row)
                    groups.append([(float(u), np.flatnonzero(row == u)) for u in uniq])
            self.out.setdefault(src, []).append((proj.index, groups))
        self.post_of = [proj.post.index for proj in network.projections]


def _run_one(plan: _Plan, inputs: Spikes, t_max: float, max_events: int) -> SimulationResult:
    network = plan.network
    states = [_PopState(p) for p in network.populations]
    queue = SortedList()
    seq = 0
    diag = Diagnostics()

    for t, i in zip(inputs.times, inputs.ids):
        if t > t_max:
            diag.n_inputs_after_t_max += 1
            continue
        queue.add((float(t), _SPIKE, -1, int(i), seq))
        seq += 1

    rec_t: list[float] = []
    rec_p: list[int] = []
    rec_i: list[int] = []
    rec_c: list[float] = []
    rec_r: list[float] = []  # current at the end of the refractory period (nan: none in window)

    def emit_arrivals(src: int, m: int, t: float) -> None:
        nonlocal seq
        for proj_index, groups in plan.out.get(src, ()):
            for d, posts in groups[m]:
                ta = t + d
                if ta <= t_max:
                    queue.add((ta, _ARRIVAL, proj_index, m, seq, posts))
                    seq += 1

    def note_realised_peaks(st: _PopState, idx: np.ndarray, t: float) -> None:
        done = idx[st.peak_t[idx] <= t]
        if done.size:
            margin = float(np.min(st.nrn.threshold - st.peak_v[done]))
            if margin < diag.closest_approach:
                diag.closest_approach = margin
            st.peak_t[done] = np.inf

    def predict(st: _PopState, idx: np.ndarray, t: float) -> None:
        nonlocal seq
        if idx.size == 0 or st.nrn.threshold == math.inf:
            return
        nrn = st.nrn
        H = t_max - t
        D, D_peak, V_peak, n_solves = nrn.next_crossing(st.V[idx], st.I[idx], H)
        diag.n_predictions += idx.size
        diag.n_root_solves += n_solves
        pidx = st.pop.index
        for k, n in enumerate(idx.tolist()):
            old = st.pending[n]
            if old is not None:
                queue.remove(old)
                st.pending[n] = None
            if D[k] < math.inf:
                key = (t + float(D[k]), _SPIKE, pidx, n, seq)
                seq += 1
                queue.add(key)
                st.pending[n] = key
                if D[k] == 0.0:
                    diag.n_immediate_spikes += 1
        interior = np.isinf(D) & (D_peak < H)
        st.peak_t[idx] = np.where(interior, t + D_peak, np.inf)
        st.peak_v[idx] = V_peak

    n_events = 0
    while queue:
        ev = queue.pop(0)
        t = ev[0]
        n_events += 1
        if n_events > max_events:
            raise EventLimitError(
                f"max_events={max_events} exceeded at t={t:.6g} ms of t_max={t_max} ms "
                "(runaway activity?); raise max_events or check the weights")
        kind = ev[1]
        if kind == _SPIKE:
            src, n = ev[2], ev[3]
            if src >= 0:
                st = states[src]
                st.advance(t)
                cur = float(st.I[n])
                rec_t.append(t)
                rec_p.append(src)
                rec_i.append(n)
                rec_c.append(cur)
                rec_r.append(math.nan)
                slope = cur - st.nrn.threshold
                if slope < diag.min_crossing_slope:
                    diag.min_crossing_slope = slope
                st.pending[n] = None
                st.V[n] = st.nrn.v_reset
                st.peak_t[n] = np.inf
                if st.nrn.t_ref > 0.0:
                    st.refr[n] = True
                    tr = t + st.nrn.t_ref
                    if tr <= t_max:
                        queue.add((tr, _RELEASE, src, n, seq, len(rec_t) - 1))
                        seq += 1
                else:
                    predict(st, np.array([n]), t)
            emit_arrivals(src, n, t)
        elif kind == _RELEASE:
            st = states[ev[2]]
            n = ev[3]
            st.advance(t)
            rec_r[ev[5]] = float(st.I[n])
            st.refr[n] = False
            st.V[n] = st.nrn.v_reset
            predict(st, np.array([n]), t)
        else:
            # gather every arrival at this same time
            batch = [ev]
            while queue and queue[0][0] == t and queue[0][1] == _ARRIVAL:
                batch.append(queue.pop(0))
                n_events += 1
            if n_events > max_events:
                raise EventLimitError(
                    f"max_events={max_events} exceeded at t={t:.6g} ms of t_max={t_max} ms "
                    "(runaway activity?); raise max_events or check the weights")
            touched: dict[int, np.ndarray | None] = {}
            for a in batch:
                proj_index, m, posts = a[2], a[3], a[5]
                pidx = plan.post_of[proj_index]
                st = states[pidx]
                st.advance(t)
                w = plan.weights[proj_index][m]
                if posts is None:
                    st.I += w
                    touched[pidx] = None
                else:
                    st.I[posts] += w[posts]
                    if pidx not in touched:
                        touched[pidx] = posts
                    elif touched[pidx] is not None:
                        touched[pidx] = np.union1d(touched[pidx], posts)
            for pidx, posts in touched.items():
                st = states[pidx]
                idx = np.arange(st.pop.size) if posts is None else np.asarray(posts)
                note_realised_peaks(st, idx, t)
                idx = idx[~st.refr[idx]]
                predict(st, idx, t)
    for st in states:
        note_realised_peaks(st, np.arange(st.pop.size), t_max)

    diag.n_events = n_events
    diag.n_spikes = len(rec_t)
    records = SpikeRecord(np.array(rec_t, dtype=np.float64), np.array(rec_p, dtype=np.int64),
                          np.array(rec_i, dtype=np.int64), np.array(rec_c, dtype=np.float64),
                          np.array(rec_r, dtype=np.float64))
    return SimulationResult(network, plan.weights, plan.delays, t_max, inputs, records, diag)

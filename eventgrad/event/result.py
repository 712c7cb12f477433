"""Result objects of a forward simulation: spikes, first-spike times, states, diagnostics."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from ..model.network import InputPopulation, Network, PopKey
from ..model.spikes import Spikes

__all__ = ["Diagnostics", "SpikeRecord", "SimulationResult", "BatchResult"]


@dataclass
class Diagnostics:
    """What the event loop did, for one sample (or summed / extremal over a batch).

    Attributes
    ----------
    n_events : int
        Events popped from the queue (input spikes, spikes, synaptic arrivals, refractory
        releases).
    n_spikes : int
        Spikes of LIF neurons.
    n_predictions : int
        Threshold-crossing predictions made (one per neuron reached by an arrival, plus one
        after each spike without refractory period and one at each refractory release).
    n_root_solves : int
        Bracketed root solves. The reference engine solves every prediction whose maximum
        reaches threshold; the compiled engine only those that reach the front of the queue
        before a later arrival supersedes them (same spikes, fewer solves).
    closest_approach : float
        Smallest ``threshold - V_max`` over the realised maxima of V that did *not* cross
        (dimensionless voltage; ``inf`` if none). Near 0 means a near-grazing miss: a tiny
        change of parameters could add a spike. ``nan`` where the run did not track it: the
        training paths (:mod:`eventgrad.torch`, :func:`eventgrad.training.train`) skip it,
        which saves the layered engine a good part of its forward time
        (``docs/performance.md``); :func:`eventgrad.simulate` always tracks it.
    min_crossing_slope : float
        Smallest ``I - threshold`` (= ``tau_mem dV/dt`` just before the spike) over all
        spikes (``inf`` if none). Near 0 means a grazing crossing, where the exact gradient
        (which has ``1/(I - threshold)``) is very large.
    n_immediate_spikes : int
        Spikes emitted at an event time because rounding left V at or above threshold there
        (V was within a few ulp of a crossing); normally 0.
    n_inputs_after_t_max : int
        Input spikes later than ``t_max`` (they have no effect inside the window).
    """

    n_events: int = 0
    n_spikes: int = 0
    n_predictions: int = 0
    n_root_solves: int = 0
    closest_approach: float = float("inf")
    min_crossing_slope: float = float("inf")
    n_immediate_spikes: int = 0
    n_inputs_after_t_max: int = 0

    @staticmethod
    def from_arrays(di: np.ndarray, df: np.ndarray) -> Diagnostics:
        """Counts summed and extremes taken over the rows of a compiled engine's diagnostics
        (``(k, N_INT)`` and ``(k, N_FLOAT)``, columns of :mod:`eventgrad.event.diagnostics`)."""
        from . import diagnostics as c

        return Diagnostics(n_events=int(di[:, c.D_EVENTS].sum()),
                           n_spikes=int(di[:, c.D_SPIKES].sum()),
                           n_predictions=int(di[:, c.D_PRED].sum()),
                           n_root_solves=int(di[:, c.D_SOLVES].sum()),
                           closest_approach=_closest(df[:, c.F_CLOSEST]),
                           min_crossing_slope=float(df[:, c.F_SLOPE].min()),
                           n_immediate_spikes=int(di[:, c.D_IMMEDIATE].sum()),
                           n_inputs_after_t_max=int(di[:, c.D_LATE].sum()))

    @staticmethod
    def combine(items: Sequence[Diagnostics]) -> Diagnostics:
        """Counts summed, extremes taken over ``items``."""
        out = Diagnostics()
        for d in items:
            out.n_events += d.n_events
            out.n_spikes += d.n_spikes
            out.n_predictions += d.n_predictions
            out.n_root_solves += d.n_root_solves
            out.n_immediate_spikes += d.n_immediate_spikes
            out.n_inputs_after_t_max += d.n_inputs_after_t_max
            out.closest_approach = _closest(np.array([out.closest_approach,
                                                       d.closest_approach]))
            out.min_crossing_slope = min(out.min_crossing_slope, d.min_crossing_slope)
        return out


def _closest(values: np.ndarray) -> float:
    """The smallest closest approach; nan if any of ``values`` was not tracked (-inf in the
    engines' rows, nan in a :class:`Diagnostics`)."""
    if values.size and not np.all(values > -np.inf):
        return float("nan")
    return float(values.min()) if values.size else float("inf")


@dataclass
class SpikeRecord:
    """Every LIF spike of one simulation, in the order the event loop emitted them.

    All arrays have shape ``(n_spikes,)``. This is what the adjoint pass walks backward.

    Attributes
    ----------
    times : float64, ms
    pops : int64, index into ``network.populations``
    ids : int64, neuron index within its population
    currents : float64, the synaptic current ``I(t^-)`` just before the spike (before any
        arrival at the same time; for the rare "immediate" spikes of
        :attr:`Diagnostics.n_immediate_spikes`, after the arrivals that revealed them);
        ``tau_mem dV/dt^- = currents - threshold``.
    release_currents : float64, the current at the end of the spike's refractory period
        (``nan`` when ``t_ref == 0`` or the period ends after ``t_max``).
    """

    times: np.ndarray
    pops: np.ndarray
    ids: np.ndarray
    currents: np.ndarray = field(repr=False)
    release_currents: np.ndarray = field(repr=False, default=None)

    def __post_init__(self) -> None:
        if self.release_currents is None:
            self.release_currents = np.full(self.times.shape, np.nan)

    def __len__(self) -> int:
        return int(self.times.shape[0])


class SimulationResult:
    """The outcome of :func:`eventgrad.simulate` for one sample.

    Populations are named by object, index into ``network.populations`` or name
    (``"input"`` / ``network.input`` for the input spikes).

    Attributes
    ----------
    network : Network
        The network simulated (structure); ``weights`` and ``delays`` hold copies of its
        parameters at simulation time, aligned with ``network.projections``.
    t_max : float
        End of the simulated window in ms.
    inputs : Spikes
        The input spikes given.
    records : SpikeRecord
        All LIF spikes in event order with the pre-spike currents.
    diagnostics : Diagnostics
    engine : str
        The engine that computed it (``"layered"``, ``"general"`` or ``"reference"``; see
        :mod:`eventgrad.event.engines`). Any engine's adjoint can differentiate it.
    plan : eventgrad.event.plan.Plan
        The network's structure and the weights as the compiled engines read them.
    """

    def __init__(self, network: Network, weights: list[np.ndarray], delays: list[np.ndarray],
                 t_max: float, inputs: Spikes, records: SpikeRecord,
                 diagnostics: Diagnostics, engine: str = "reference", plan=None) -> None:
        self.network = network
        self.weights = weights
        self.delays = delays
        self.t_max = t_max
        self.inputs = inputs
        self.records = records
        self.diagnostics = diagnostics
        self.engine = engine
        if plan is None:
            from .plan import plan_for
            plan = plan_for(network, weights, delays)
        self.plan = plan

    # ------------------------------------------------------------------ spikes
    def _pop(self, pop: PopKey):
        return self.network.population(pop)

    def spikes(self, pop: PopKey) -> Spikes:
        """Spikes of population ``pop`` (ids local to it), sorted by time."""
        p = self._pop(pop)
        if isinstance(p, InputPopulation):
            return self.inputs
        sel = self.records.pops == p.index
        return Spikes(self.records.times[sel], self.records.ids[sel], n_neurons=p.size)

    def spike_counts(self, pop: PopKey) -> np.ndarray:
        """Number of spikes of each neuron of ``pop``; shape ``(pop.size,)``, int64."""
        p = self._pop(pop)
        s = self.spikes(p)
        return np.bincount(s.ids, minlength=p.size).astype(np.int64)

    def first_spike_times(self, pop: PopKey) -> np.ndarray:
        """First spike time (ms) of each neuron of ``pop``; ``inf`` for silent neurons.

        Shape ``(pop.size,)``, float64.
        """
        p = self._pop(pop)
        s = self.spikes(p)
        out = np.full(p.size, np.inf)
        # reversed so the earliest spike of each neuron is written last
        out[s.ids[::-1]] = s.times[::-1]
        return out

    # ------------------------------------------------------------------ states (replayed)
    def state(self, pop: PopKey, times: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """``(V, I)`` of every neuron of ``pop`` at the given times.

        Evaluated from the closed form and the recorded spikes (no time grid): V and I are
        sums of the synaptic kernels of all arrivals since the last release from reset.
        Values are right-continuous: at an event time they include that event (a neuron that
        spikes at ``t`` has ``V(t) = v_reset``).

        Parameters
        ----------
        pop : population, index or name (not the input)
        times : array_like, shape (n_times,), ms in ``[0, t_max]``

        Returns
        -------
        V, I : ndarray, shape (n_times, pop.size)
        """
        p = self._pop(pop)
        if isinstance(p, InputPopulation):
            raise ValueError("pop: the input population has no membrane state")
        T = np.atleast_1d(np.asarray(times, dtype=np.float64))
        if T.ndim != 1:
            raise ValueError(f"times must be 1-D, got shape {T.shape}")
        if T.size and (not np.all(np.isfinite(T)) or T.min() < 0 or T.max() > self.t_max):
            raise ValueError(f"times must lie in [0, t_max={self.t_max}] ms")
        nrn = p.neuron
        # all arrivals into p: times A and weights Wt, shape (n_arr, p.size)
        A_list, W_list = [], []
        for proj in self.network.incoming(p):
            pre_sp = self.spikes(proj.pre)
            w = self.weights[proj.index]
            d = self.delays[proj.index]
            A_list.append(pre_sp.times[:, None] + d[pre_sp.ids])
            W_list.append(w[pre_sp.ids])
        if A_list:
            A = np.concatenate(A_list, axis=0)
            Wt = np.concatenate(W_list, axis=0)
        else:
            A = np.zeros((0, p.size))
            Wt = np.zeros((0, p.size))
        own = self.spikes(p)
        V = np.empty((T.size, p.size))
        I = np.empty((T.size, p.size))
        for n in range(p.size):
            a, w = A[:, n], Wt[:, n]
            s_n = own.times[own.ids == n]
            # I(t): every arrival at or before t contributes
            lag = T[:, None] - a[None, :]
            past = lag >= 0
            I[:, n] = np.where(past, w[None, :] * np.exp(-np.where(past, lag, 0.0) / nrn.tau_syn),
                               0.0).sum(axis=1)
            j = np.searchsorted(s_n, T, side="right") - 1
            has = j >= 0
            last = s_n[np.maximum(j, 0)] if s_n.size else np.zeros(T.size)
            r = np.where(has, last + nrn.t_ref, 0.0)
            # current at release r
            lag_r = r[:, None] - a[None, :]
            past_r = lag_r >= 0
            I_r = np.where(past_r, w[None, :] * np.exp(-np.where(past_r, lag_r, 0.0) / nrn.tau_syn),
                           0.0).sum(axis=1)
            since = past & ~past_r  # arrivals in (r, t]
            Vn = np.where(since, w[None, :] * nrn.kernel(np.where(since, lag, 0.0)),
                          0.0).sum(axis=1)
            rest = T - r
            Vn = Vn + np.where(has, nrn.v_reset * np.exp(-np.maximum(rest, 0.0) / nrn.tau_mem)
                               + I_r * nrn.kernel(np.maximum(rest, 0.0)), 0.0)
            # before the first spike: start from V = I = 0 at t = 0, every past arrival counts
            Vn = np.where(has, Vn, np.where(past, w[None, :] * nrn.kernel(np.where(past, lag, 0.0)),
                                            0.0).sum(axis=1))
            refractory = has & (T < r)
            V[:, n] = np.where(refractory, nrn.v_reset, Vn)
        return V, I

    def voltage(self, pop: PopKey, times: ArrayLike) -> np.ndarray:
        """Membrane potential, shape ``(n_times, pop.size)``; see :meth:`state`."""
        return self.state(pop, times)[0]

    def current(self, pop: PopKey, times: ArrayLike) -> np.ndarray:
        """Synaptic current, shape ``(n_times, pop.size)``; see :meth:`state`."""
        return self.state(pop, times)[1]

    def __repr__(self) -> str:
        return (f"SimulationResult(t_max={self.t_max}, spikes={len(self.records)}, "
                f"events={self.diagnostics.n_events})")


def _same_plan(a, b) -> bool:
    """The same structure and delays (a shared plan layout) and the same weights."""
    return a is b or (a.arrays is b.arrays and np.array_equal(a.W, b.W))


class BatchResult(Sequence):
    """Results of a batch of samples: a sequence of :class:`SimulationResult`.

    The compiled engines return the whole batch as flat arrays (:attr:`records`, with per-sample
    offsets); the per-sample results are built from them when they are first asked for, and
    :meth:`first_spike_times`, :meth:`spike_counts` and :attr:`diagnostics` read the flat arrays
    directly.
    """

    def __init__(self, results: list[SimulationResult]) -> None:
        results = list(results)
        if not results:
            raise ValueError("results must not be empty (a batch has at least one sample)")
        self._results: list = results
        first = results[0]
        if any(not _same_plan(r.plan, first.plan) or r.t_max != first.t_max
               for r in results[1:]):
            raise ValueError("results: a batch holds results of one network, with the same "
                             "weights, delays and t_max")
        self.network, self.t_max, self.engine, self.plan = (first.network, first.t_max,
                                                            first.engine, first.plan)
        self.inputs = [r.inputs for r in results]
        self._records = None
        self._diag = None
        self._flat_inputs = None

    @classmethod
    def from_flat(cls, network: Network, plan, t_max: float, inputs: list[Spikes], records,
                  diag_int: np.ndarray, diag_float: np.ndarray, engine: str,
                  flat_inputs=None) -> BatchResult:
        """A batch from the flat output of a compiled engine (see
        :class:`eventgrad.event.engines.BatchRecords`); ``flat_inputs``: the inputs as the
        engine took them (:class:`~eventgrad.event.engines.FlatInputs`), if at hand."""
        self = object.__new__(cls)
        self.network, self.plan, self.t_max, self.engine = network, plan, t_max, engine
        self.inputs = list(inputs)
        self._records = records
        self._diag = (diag_int, diag_float)
        self._results = [None] * len(self.inputs)
        self._flat_inputs = flat_inputs
        return self

    @property
    def flat_inputs(self):
        """The input spikes of the batch, flat (:class:`eventgrad.event.engines.FlatInputs`)."""
        if self._flat_inputs is None:
            from .engines import FlatInputs
            self._flat_inputs = FlatInputs.of(self.inputs)
        return self._flat_inputs

    @property
    def records(self):
        """All spikes of the batch, flat (:class:`eventgrad.event.engines.BatchRecords`)."""
        if self._records is None:
            from .engines import BatchRecords
            self._records = BatchRecords.concat([r.records for r in self._results])
        return self._records

    def _build(self, b: int) -> SimulationResult:
        rec = self.records
        a, e = rec.offsets[b], rec.offsets[b + 1]
        diag = Diagnostics.from_arrays(self._diag[0][b:b + 1], self._diag[1][b:b + 1])
        plan = self.plan
        return SimulationResult(self.network, plan.weights, plan.delays, self.t_max,
                                self.inputs[b],
                                SpikeRecord(rec.times[a:e], rec.pops[a:e], rec.ids[a:e],
                                            rec.currents[a:e], rec.release_currents[a:e]),
                                diag, self.engine, plan)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        b = range(len(self))[i]
        if self._results[b] is None:
            self._results[b] = self._build(b)
        return self._results[b]

    def __len__(self) -> int:
        return len(self._results)

    def first_spike_indices(self, pop: PopKey) -> np.ndarray:
        """Index into :attr:`records` (flat) of each neuron's first spike, ``(batch, n)``;
        -1 where silent."""
        from .batch import first_spikes

        p = self.network.population(pop)
        if isinstance(p, InputPopulation):
            raise ValueError("pop: first spikes of the input are the input spikes")
        rec = self.records
        return first_spikes(rec.pops, rec.ids, rec.offsets, p.index, p.size)

    def first_spike_times(self, pop: PopKey) -> np.ndarray:
        """First spike times, shape ``(batch, pop.size)``, ``inf`` where silent."""
        p = self.network.population(pop)
        if isinstance(p, InputPopulation):
            return np.stack([r.first_spike_times(p) for r in self])
        idx = self.first_spike_indices(p)
        out = np.full(idx.shape, np.inf)
        has = idx >= 0
        out[has] = self.records.times[idx[has]]
        return out

    def spike_counts(self, pop: PopKey) -> np.ndarray:
        """Spike counts, shape ``(batch, pop.size)``."""
        p = self.network.population(pop)
        if isinstance(p, InputPopulation):
            return np.stack([r.spike_counts(p) for r in self])
        rec = self.records
        sample = np.repeat(np.arange(len(self)), np.diff(rec.offsets))
        sel = rec.pops == p.index
        flat = sample[sel] * p.size + rec.ids[sel]
        counts = np.bincount(flat, minlength=len(self) * p.size).astype(np.int64, copy=False)
        return counts.reshape(len(self), p.size)

    def state(self, pop: PopKey, times: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """``(V, I)`` of every sample, each of shape ``(batch, n_times, pop.size)``: the
        per-sample :meth:`SimulationResult.state` (replayed from the closed form; ``times`` in
        ms, one grid for all samples)."""
        per = [r.state(pop, times) for r in self]
        return np.stack([v for v, _ in per]), np.stack([i for _, i in per])

    def voltage(self, pop: PopKey, times: ArrayLike) -> np.ndarray:
        """Membrane potential, shape ``(batch, n_times, pop.size)``; see :meth:`state`."""
        return self.state(pop, times)[0]

    def current(self, pop: PopKey, times: ArrayLike) -> np.ndarray:
        """Synaptic current, shape ``(batch, n_times, pop.size)``; see :meth:`state`."""
        return self.state(pop, times)[1]

    @property
    def min_crossing_slope(self) -> float:
        """The smallest ``I - threshold`` over the spikes of the batch (``inf`` without
        spikes): :attr:`diagnostics`' value, read without building them."""
        if self._diag is None:
            return self.diagnostics.min_crossing_slope
        from .diagnostics import F_SLOPE

        df = self._diag[1]
        return float(df[:, F_SLOPE].min()) if len(df) else float("inf")

    @property
    def diagnostics(self) -> Diagnostics:
        """Counts summed and extremes taken over the batch."""
        if self._diag is None:
            return Diagnostics.combine([r.diagnostics for r in self])
        return Diagnostics.from_arrays(*self._diag)

    def __repr__(self) -> str:
        return f"BatchResult(batch={len(self)}, engine={self.engine!r})"

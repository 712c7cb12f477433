"""The engine family, chosen in one place, and the flat batch records the engines exchange.

``engine`` is one of :data:`ENGINES`:

* ``"fast"`` (default): ``"layered"`` when the network allows it (:attr:`Plan.layered`: no
  recurrent loop, one delay per presynaptic row), else ``"general"``;
* ``"layered"``: the layered fast path (:mod:`eventgrad.event.layered`); an error for a network
  it does not cover;
* ``"general"``: the compiled event queue (:mod:`eventgrad.event.general`), any topology;
* ``"reference"``: the readable Python engine (:mod:`eventgrad.event.reference`).

All four compute the same spikes from the same physics (:mod:`eventgrad.model.physics`); the
compiled ones run a whole batch in one call on :func:`get_num_threads` threads
(:mod:`eventgrad.event.batch`). The forward pass of any engine can be differentiated by the
adjoint of any other: the adjoint rebuilds what it needs from the spike records.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .diagnostics import N_FLOAT, N_INT

__all__ = ["ENGINES", "resolve", "BatchRecords", "FlatInputs", "ForwardOutput", "forward",
           "Probes", "ProbeColumns", "BackwardOutput", "backward", "set_num_threads",
           "get_num_threads", "threads_for", "available_cpus"]

ENGINES = ("fast", "layered", "general", "reference")


def resolve(engine: str, plan) -> str:
    """The engine that runs: ``"layered"``, ``"general"`` or ``"reference"``."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if engine == "fast":
        return "layered" if plan.layered else "general"
    if engine == "layered" and not plan.layered:
        why = ("its populations form a recurrent loop" if not plan.acyclic else
               "a presynaptic neuron reaches its targets with different delays")
        raise ValueError(f"engine='layered' does not apply to this network: {why}; use "
                         "engine='fast' or 'general'")
    return engine


# ------------------------------------------------------------------------------ threads
_threads: int | None = None


def _default_threads() -> int:
    env = os.environ.get("EVENTGRAD_NUM_THREADS")
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"EVENTGRAD_NUM_THREADS must be a positive integer, got "
                             f"{env!r}") from None
        if n < 1:
            raise ValueError(f"EVENTGRAD_NUM_THREADS must be a positive integer, got {env!r}")
        return n
    return available_cpus()


def available_cpus() -> int:
    """The CPUs this process may use (its affinity on Linux, else the CPU count), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def set_num_threads(n: int | None) -> None:
    """Threads the compiled engines use for the samples of a batch (None: the default, the
    environment variable ``EVENTGRAD_NUM_THREADS`` or else all CPUs this process may use).
    Results do not depend on it (see :mod:`eventgrad.event.batch`)."""
    global _threads
    if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1):
        raise ValueError(f"n must be a positive integer or None, got {n!r}")
    _threads = None if n is None else int(n)


def get_num_threads() -> int:
    """The number of threads the compiled engines use (see :func:`set_num_threads`)."""
    return _default_threads() if _threads is None else _threads


def threads_for(workers: int | None) -> int:
    """``workers`` if given (>= 1), else :func:`get_num_threads`."""
    if workers is None:
        return get_num_threads()
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(f"workers must be a positive integer or None, got {workers!r}")
    return int(workers)


# ------------------------------------------------------------------------------ records
@dataclass(frozen=True)
class BatchRecords:
    """The spikes of a batch, flat: sample ``b`` owns ``[offsets[b]:offsets[b + 1]]``.

    ``times`` (ms), ``pops`` (population index), ``ids`` (neuron within it), ``currents``
    (``I`` just before the spike), ``release_currents`` (``I`` at the end of its refractory
    period, nan if none in the window); each in event order within a sample.
    """

    offsets: np.ndarray
    times: np.ndarray
    pops: np.ndarray
    ids: np.ndarray
    currents: np.ndarray
    release_currents: np.ndarray

    def fields(self) -> tuple:
        return (self.times, self.pops, self.ids, self.currents, self.release_currents)

    @staticmethod
    def concat(items: list) -> BatchRecords:
        """Records of several samples (objects with ``times, pops, ids, currents,
        release_currents``) as one flat batch."""
        off = np.zeros(len(items) + 1, dtype=np.int64)
        np.cumsum([len(r.times) for r in items], out=off[1:])
        cat = [np.concatenate([getattr(r, f) for r in items]) if items else np.zeros(0)
               for f in ("times", "pops", "ids", "currents", "release_currents")]
        return BatchRecords(off, cat[0].astype(np.float64), cat[1].astype(np.int64),
                            cat[2].astype(np.int64), cat[3].astype(np.float64),
                            cat[4].astype(np.float64))


@dataclass(frozen=True)
class FlatInputs:
    """Input spikes of a batch, flat: sample ``b``'s are ``times[offsets[b]:offsets[b+1]]``."""

    offsets: np.ndarray
    times: np.ndarray
    ids: np.ndarray

    @staticmethod
    def of(batch: list) -> FlatInputs:
        off = np.zeros(len(batch) + 1, dtype=np.int64)
        np.cumsum([len(s) for s in batch], out=off[1:])
        if not batch:
            return FlatInputs(off, np.zeros(0), np.zeros(0, dtype=np.int64))
        return FlatInputs(off, np.concatenate([s.times for s in batch]),
                          np.concatenate([s.ids for s in batch]))


@dataclass(frozen=True)
class ForwardOutput:
    """What a batch forward pass returns: records, per-sample status and diagnostics."""

    records: BatchRecords
    status: np.ndarray        # (B,) 0 ok, 1 event limit
    diag_int: np.ndarray      # (B, N_INT), columns of eventgrad.event.diagnostics
    diag_float: np.ndarray    # (B, N_FLOAT)


def forward(plan, inputs: FlatInputs, t_max: float, max_events: int, engine: str,
            workers: int | None = None, first_only=None,
            track_closest: bool = True) -> ForwardOutput:
    """A compiled batch forward pass (``engine`` resolved: "layered" or "general").

    ``first_only``: indices of populations whose neurons are followed only up to their first
    spike (then held for good): for a population that projects nowhere and is read only by
    first-spike readouts (and the silent-neuron rules), the later spikes change neither the
    loss nor its exact gradient, and are not computed. The records then hold each such
    neuron's first spike only. ``track_closest=False``: the closest approach
    (:attr:`eventgrad.Diagnostics.closest_approach`) is not computed (nan): the layered engine
    locates the peak of V on many intervals for it (its share of the time:
    ``docs/performance.md``).
    """
    from . import batch
    from .compile import announce

    announce(f"{engine} event engine")
    fn = batch.forward_chunks_layered if engine == "layered" else batch.forward_chunks_general
    B = len(inputs.offsets) - 1
    nch = -(-B // batch.CHUNK)
    only = np.zeros(len(plan.arrays.pop_size), dtype=np.bool_)
    if first_only is not None:
        only[list(first_only)] = True
    cap = batch.CHUNK * max(64, 2 * plan.max_records)
    while True:
        buf_f = np.empty((nch * cap, 3))
        buf_i = np.empty((nch * cap, 2), dtype=np.int64)
        cnt = np.zeros(B, dtype=np.int64)
        st = np.full(B, batch.NOT_RUN, dtype=np.int64)
        di = np.zeros((B, N_INT), dtype=np.int64)
        df = np.zeros((B, N_FLOAT))
        batch.run_chunks(fn, nch, threads_for(workers), plan.arrays, plan.W, inputs.times,
                         inputs.ids, inputs.offsets, float(t_max), int(max_events), only,
                         bool(track_closest), batch.CHUNK, cap, buf_f, buf_i, cnt, st, di, df)
        if not np.any(st == batch.OVERFLOW):
            break
        cap *= 4
    off, t, p, i, c, r = batch.compact(buf_f, buf_i, cnt, batch.CHUNK, cap)
    if B and off[-1]:
        plan.note_records(int(np.max(cnt)))
    return ForwardOutput(BatchRecords(off, t, p, i, c, r), st, di, df)


@dataclass(frozen=True)
class ProbeColumns:
    """Some voltage probes of a batch, column by column, samples in any order (what a readout
    contributes; :meth:`Probes.from_columns` gathers them): the sample of each, its
    population, neuron, time (ms), dL/dV, whether V is the left limit at an arrival, dV/dt
    there (1/ms), whether the time is ``t_max``."""

    sample: np.ndarray
    pop: np.ndarray
    neuron: np.ndarray
    time: np.ndarray
    dL_dV: np.ndarray
    at_arrival: np.ndarray
    vdot_left: np.ndarray
    at_end: np.ndarray

    def columns(self) -> tuple:
        return (self.sample, self.pop, self.neuron, self.time, self.dL_dV, self.at_arrival,
                self.vdot_left, self.at_end)


@dataclass(frozen=True)
class Probes:
    """Loss terms on the membrane potential, flat over a batch (sample ``b``'s are
    ``[offsets[b]:offsets[b+1]]``): population, neuron, time (ms), dL/dV, whether V is the left
    limit at an arrival (a kink), dV/dt there (1/ms), whether the time is ``t_max``."""

    offsets: np.ndarray
    pops: np.ndarray
    neurons: np.ndarray
    times: np.ndarray
    dL_dV: np.ndarray
    at_arrival: np.ndarray
    vdot_left: np.ndarray
    at_end: np.ndarray

    def fields(self) -> tuple:
        return (self.pops, self.neurons, self.times, self.dL_dV, self.at_arrival,
                self.vdot_left, self.at_end)

    @staticmethod
    def from_columns(parts: Sequence[ProbeColumns], B: int) -> Probes:
        """Probes of a batch of ``B`` samples from the :class:`ProbeColumns` of its readouts
        (sorted by sample, stably)."""
        if not parts:
            return Probes.empty(B)
        cols = [np.concatenate(c) for c in zip(*(p.columns() for p in parts))]
        order = np.argsort(cols[0], kind="stable")
        cols = [c[order] for c in cols]
        off = np.zeros(B + 1, dtype=np.int64)
        np.cumsum(np.bincount(cols[0], minlength=B), out=off[1:])
        return Probes(off, cols[1].astype(np.int64), cols[2].astype(np.int64),
                      cols[3].astype(np.float64), cols[4].astype(np.float64),
                      cols[5].astype(np.bool_), cols[6].astype(np.float64),
                      cols[7].astype(np.bool_))

    @staticmethod
    def empty(B: int) -> Probes:
        z = np.zeros(0)
        zi = np.zeros(0, dtype=np.int64)
        zb = np.zeros(0, dtype=np.bool_)
        return Probes(np.zeros(B + 1, dtype=np.int64), zi, zi, z, z, zb, z, zb)


@dataclass(frozen=True)
class BackwardOutput:
    """Gradients of a batch: dL/dw and dL/dd summed (flat like ``plan.W``), dL/d(input
    time) and the complete dL/dt of every record (flat like the inputs / records), grazing
    spikes per sample."""

    weights: np.ndarray
    delays: np.ndarray
    input_times: np.ndarray
    spike_times: np.ndarray
    n_grazing: np.ndarray


def backward(plan, records: BatchRecords, g_t: np.ndarray, inputs: FlatInputs, probes: Probes,
             t_max: float, engine: str, workers: int | None = None) -> BackwardOutput:
    """A compiled batch adjoint pass (``engine`` resolved: "layered" or "general")."""
    from . import batch
    from .compile import announce

    announce(f"{engine} adjoint")
    fn = batch.backward_chunks_layered if engine == "layered" else batch.backward_chunks_general
    B = len(records.offsets) - 1
    nch = -(-B // batch.CHUNK)
    gw = np.zeros((nch, plan.W.shape[0]))
    gd = np.zeros((nch, plan.W.shape[0]))
    g_in = np.zeros(inputs.times.shape[0])
    g_out = np.zeros(records.times.shape[0])
    n_graz = np.zeros(B, dtype=np.int64)
    batch.run_chunks(fn, nch, threads_for(workers), plan.arrays, plan.W, records.fields(),
                     records.offsets, np.ascontiguousarray(g_t, dtype=np.float64), inputs.times,
                     inputs.ids, inputs.offsets, float(t_max), probes.fields(), probes.offsets,
                     batch.CHUNK, gw, gd, g_in, g_out, n_graz)
    return BackwardOutput(_sum_rows(gw), _sum_rows(gd), g_in, g_out, n_graz)


def _sum_rows(a: np.ndarray) -> np.ndarray:
    """Sum over the chunks (rows) in chunk order: numpy adds the rows of an axis-0 reduction
    one after another, so the result depends only on the number of chunks, never on the
    threads (tested)."""
    return np.add.reduce(a, axis=0) if a.shape[0] else np.zeros(a.shape[1])

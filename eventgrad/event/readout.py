"""Readouts of a forward result that losses use: first-spike times and the maximum of V.

Both are exact: first-spike times come from the recorded spikes, the maximum of V over
``[0, t_max]`` from the closed form on every interval between the arrivals into the population
(interior maxima where ``dV/dt = 0``, the left limit at arrivals, and the ends; see
:mod:`eventgrad.event.voltage_max`). The batched forms read a whole :class:`BatchResult` in one
compiled call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..model.network import InputPopulation, PopKey, Population
from .result import BatchResult, SimulationResult
from .voltage_max import AT_ARRIVAL, AT_END, AT_PEAK, AT_START

__all__ = ["first_spike_indices", "MaxVoltage", "max_voltage", "max_voltage_batch",
           "max_voltage_where",
           "arrivals_into", "AT_START", "AT_PEAK", "AT_ARRIVAL", "AT_END", "as_batch"]


#: A forward result of a batch: a BatchResult, one SimulationResult, or a list of them.
Results = BatchResult | SimulationResult | Sequence[SimulationResult]


def as_batch(results: Results) -> BatchResult:
    """A :class:`BatchResult` of ``results`` (a BatchResult, one result or a list of them)."""
    if isinstance(results, BatchResult):
        return results
    if isinstance(results, SimulationResult):
        return BatchResult([results])
    return BatchResult(list(results))


def first_spike_indices(result: SimulationResult, pop: PopKey) -> np.ndarray:
    """Index into ``result.records`` of each neuron's first spike (-1 where silent).

    Shape ``(pop.size,)``, int64.
    """
    p = result.network.population(pop)
    if isinstance(p, InputPopulation):
        raise ValueError("pop: first_spike_indices needs a LIF population, not the input")
    rec = result.records
    out = np.full(p.size, -1, dtype=np.int64)
    sel = np.flatnonzero(rec.pops == p.index)[::-1]
    out[rec.ids[sel]] = sel
    return out


def arrivals_into(result: SimulationResult, pop: PopKey) -> tuple[np.ndarray, np.ndarray]:
    """All synaptic arrivals into ``pop`` up to ``t_max`` on a common time axis.

    Returns ``(times, weights)``: the sorted distinct arrival times, shape ``(n,)``, and the
    summed weight arriving at each neuron at each of them, shape ``(n, pop.size)`` (0 where
    nothing arrives).
    """
    p = result.network.population(pop)
    rec = result.records
    a_parts, c_parts, w_parts = [], [], []
    for proj in result.network.incoming(p):
        if isinstance(proj.pre, InputPopulation):
            t_pre, id_pre = result.inputs.times, result.inputs.ids
        else:
            sel = rec.pops == proj.pre.index
            t_pre, id_pre = rec.times[sel], rec.ids[sel]
        a_parts.append((t_pre[:, None] + result.delays[proj.index][id_pre]).ravel())
        w_parts.append(result.weights[proj.index][id_pre].ravel())
        c_parts.append(np.tile(np.arange(p.size), t_pre.size))
    if not a_parts:
        return np.zeros(0), np.zeros((0, p.size))
    a, cols, w = np.concatenate(a_parts), np.concatenate(c_parts), np.concatenate(w_parts)
    keep = a <= result.t_max
    times, inv = np.unique(a[keep], return_inverse=True)
    W = np.zeros((times.size, p.size))
    np.add.at(W, (inv, cols[keep]), w[keep])
    return times, W


@dataclass
class MaxVoltage:
    """Maximum of V over ``[0, t_max]`` for each neuron of a population.

    Attributes (shape ``(pop.size,)`` for one sample, ``(batch, pop.size)`` for a batch)
    ----------
    values : float64, the maximum (dimensionless voltage); nan where not computed
    times : float64, where it is reached (ms; the earliest if it is reached more than once)
    kind : int64, AT_START (t = 0), AT_PEAK (interior, dV/dt = 0), AT_ARRIVAL (the left limit
        at an arrival, where dV/dt jumps from positive to non-positive) or AT_END (t_max);
        -1 where not computed
    vdot_left : float64, dV/dt just before ``times`` (1/ms); 0 at an interior peak
    """

    values: np.ndarray
    times: np.ndarray
    kind: np.ndarray
    vdot_left: np.ndarray

    def __getitem__(self, b) -> MaxVoltage:
        return MaxVoltage(self.values[b], self.times[b], self.kind[b], self.vdot_left[b])


def max_voltage_batch(results: Results, pop: PopKey, only_silent: bool = False,
                      neurons: np.ndarray | None = None, workers: int | None = None
                      ) -> MaxVoltage:
    """:func:`max_voltage` of every sample of a batch: arrays of shape ``(batch, pop.size)``.

    ``neurons`` (bool, shape ``(pop.size,)`` or ``(batch, pop.size)``) restricts the work to
    those entries (the others are nan / -1).
    """
    res = as_batch(results)
    p = res.network.population(pop)
    if isinstance(p, InputPopulation):
        raise ValueError("pop: max_voltage needs a LIF population, not the input")
    fired = res.spike_counts(p) > 0
    if fired.any() and not only_silent:
        raise ValueError(f"pop: population {p.name!r} spiked; max_voltage is defined for "
                         "non-spiking readouts (LIF(threshold=inf))")
    mask = ~fired
    if neurons is not None:
        neurons = np.asarray(neurons)
        if neurons.dtype != bool or neurons.shape not in ((p.size,), mask.shape):
            raise ValueError(f"neurons must be a bool array of shape ({p.size},) or "
                             f"{mask.shape}, got {neurons.dtype} {neurons.shape}")
        mask &= neurons
    return max_voltage_where(res, p, mask, workers)


def max_voltage_where(res: BatchResult, p: Population, mask: np.ndarray, workers: int | None = None
                      ) -> MaxVoltage:
    """The maxima of V of population ``p`` (a LIF population of ``res.network``) where
    ``mask`` (bool, ``(batch, p.size)``) is True, for a caller that knows those neurons did not
    spike on those samples (:func:`max_voltage_batch` checks it); nan / -1 elsewhere."""
    from . import batch as kernels
    from .engines import threads_for

    B = len(res)
    out_f = np.full((B, p.size, 3), np.nan)
    out_k = np.full((B, p.size), -1, dtype=np.int64)
    if mask.any():
        rec, inp = res.records, res.flat_inputs
        nch = -(-B // kernels.CHUNK)
        kernels.run_chunks(kernels.max_voltage_chunks, nch, threads_for(workers),
                           kernels.CHUNK, res.plan.arrays, res.plan.W, p.index,
                           np.ascontiguousarray(mask), rec.fields(), rec.offsets, inp.times,
                           inp.ids, inp.offsets, float(res.t_max), out_f, out_k)
    return MaxVoltage(out_f[..., 0], out_f[..., 1], out_k, out_f[..., 2])


def max_voltage(result: SimulationResult, pop: PopKey, only_silent: bool = False,
                neurons: np.ndarray | None = None) -> MaxVoltage:
    """Exact maximum of V over ``[0, t_max]`` for a non-spiking population.

    Raises ValueError if a neuron of ``pop`` spiked (the maximum of a spiking neuron is its
    threshold; use a population with ``threshold=inf`` as a readout), unless ``only_silent``:
    then the maxima of the neurons that never spiked are returned and the entries of the
    others are ``nan`` (``kind`` -1). ``neurons`` (bool, shape ``(pop.size,)``; with
    ``only_silent``) restricts the work to those neurons: the others are ``nan`` too.
    """
    return max_voltage_batch(result, pop, only_silent, neurons)[0]

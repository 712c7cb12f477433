"""Readouts of a forward result that losses use: first-spike times and the maximum of V.

Both are exact: first-spike times come from the recorded spikes, the maximum of V over
``[0, t_max]`` from the closed form on every interval between the arrivals into the
population (interior maxima where ``dV/dt = 0``, the left limit at arrivals, and the ends).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _fast
from .network import InputPopulation
from .result import SimulationResult

__all__ = ["first_spike_indices", "MaxVoltage", "max_voltage", "arrivals_into"]

#: Where the maximum of V lies (values of :attr:`MaxVoltage.kind`).
AT_START, AT_PEAK, AT_ARRIVAL, AT_END = 0, 1, 2, 3


def first_spike_indices(result: SimulationResult, pop) -> np.ndarray:
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


def _arrival_list(result: SimulationResult, p) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Arrivals into population ``p`` up to ``t_max``: times, neuron indices, weights (one
    entry per presynaptic spike and postsynaptic neuron, unsorted)."""
    a_parts, c_parts, w_parts = [], [], []
    rec = result.records
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
        return np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0)
    a, cols, w = np.concatenate(a_parts), np.concatenate(c_parts), np.concatenate(w_parts)
    keep = a <= result.t_max
    return a[keep], cols[keep].astype(np.int64), w[keep].astype(np.float64)


def arrivals_into(result: SimulationResult, pop) -> tuple[np.ndarray, np.ndarray]:
    """All synaptic arrivals into ``pop`` up to ``t_max`` on a common time axis.

    Returns ``(times, weights)``: the sorted distinct arrival times, shape ``(n,)``, and the
    summed weight arriving at each neuron at each of them, shape ``(n, pop.size)`` (0 where
    nothing arrives).
    """
    p = result.network.population(pop)
    a, cols, w = _arrival_list(result, p)
    times, inv = np.unique(a, return_inverse=True)
    W = np.zeros((times.size, p.size))
    np.add.at(W, (inv, cols), w)
    return times, W


@dataclass
class MaxVoltage:
    """Maximum of V over ``[0, t_max]`` for each neuron of a population.

    Attributes (all shape ``(pop.size,)``)
    ----------
    values : float64, the maximum (dimensionless voltage)
    times : float64, where it is reached (ms; the earliest if it is reached more than once)
    kind : int64, AT_START (t = 0), AT_PEAK (interior, dV/dt = 0), AT_ARRIVAL (the left limit
        at an arrival, where dV/dt jumps from positive to non-positive) or AT_END (t_max)
    vdot_left : float64, dV/dt just before ``times`` (1/ms); 0 at an interior peak
    """

    values: np.ndarray
    times: np.ndarray
    kind: np.ndarray
    vdot_left: np.ndarray


def max_voltage(result: SimulationResult, pop, only_silent: bool = False,
                neurons: np.ndarray | None = None) -> MaxVoltage:
    """Exact maximum of V over ``[0, t_max]`` for a non-spiking population.

    Raises ValueError if a neuron of ``pop`` spiked (the maximum of a spiking neuron is its
    threshold; use a population with ``threshold=inf`` as a readout), unless ``only_silent``:
    then the maxima of the neurons that never spiked are returned and the entries of the
    others are ``nan`` (``kind`` -1). ``neurons`` (bool, shape ``(pop.size,)``; with
    ``only_silent``) restricts the work to those neurons: the others are ``nan`` too.
    """
    p = result.network.population(pop)
    if isinstance(p, InputPopulation):
        raise ValueError("pop: max_voltage needs a LIF population, not the input")
    fired = np.zeros(p.size, dtype=bool)
    fired[result.records.ids[result.records.pops == p.index]] = True
    if fired.any() and not only_silent:
        raise ValueError(f"pop: population {p.name!r} spiked; max_voltage is defined for "
                         "non-spiking readouts (LIF(threshold=inf))")
    active = ~fired
    if neurons is not None:
        neurons = np.asarray(neurons)
        if neurons.shape != (p.size,) or neurons.dtype != bool:
            raise ValueError(f"neurons must be a bool array of shape ({p.size},), got "
                             f"{neurons.dtype} {neurons.shape}")
        active &= neurons
    nrn = p.neuron
    a, cols, w = _arrival_list(result, p)
    best, best_t, kind, vdot = _fast.max_voltage(a, cols, w, float(result.t_max), nrn.tau_mem,
                                                 nrn.tau_syn, nrn.g, active)
    return MaxVoltage(best, best_t, kind, vdot)

"""``value_and_grad``: forward, loss, EventProp backward, for one sample or a batch."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from .adjoint import SampleGradients, VoltageProbe, backward
from .losses import Loss
from .network import Network
from .readout import AT_ARRIVAL, AT_END, first_spike_indices, max_voltage
from .result import BatchResult, Diagnostics, SimulationResult
from .simulate import DEFAULT_MAX_EVENTS, simulate
from .spikes import Spikes

__all__ = ["Gradients", "value_and_grad", "readout_values", "readout_backward", "sample_backward"]


@dataclass
class Gradients:
    """Gradients of the (batch-mean) loss.

    Attributes
    ----------
    weights : list of ndarray
        dL/dw, aligned with ``network.projections``, each of shape ``(n_pre, n_post)``.
    delays : list of ndarray
        dL/dd in 1/ms, aligned with ``network.projections``.
    input_times : ndarray or list of ndarray
        dL/dt (1/ms) of each input spike, aligned with that sample's ``Spikes.times``; a list
        with one array per sample for a batch.
    n_grazing : int
        Spikes at which the crossing slope was zero to rounding (see
        :func:`eventgrad.adjoint.backward`); 0 in normal operation.
    min_crossing_slope : float
        Smallest ``I - threshold`` over all spikes of the batch: small values mean large
        (exact) gradients from near-grazing crossings.
    result : SimulationResult or BatchResult
        The forward pass the gradients belong to.
    """

    weights: list[np.ndarray]
    delays: list[np.ndarray]
    input_times: np.ndarray | list[np.ndarray]
    n_grazing: int
    min_crossing_slope: float
    result: SimulationResult | BatchResult


_POOL: ThreadPoolExecutor | None = None


def parallel_map(fn, items, workers: int | None = None) -> list:
    """``[fn(x) for x in items]`` on a shared thread pool (the compiled passes release the GIL).

    ``workers`` defaults to the number of CPUs; 1 runs serially.
    """
    global _POOL
    items = list(items)
    n = workers if workers is not None else (os.cpu_count() or 1)
    if n <= 1 or len(items) < 2:
        return [fn(x) for x in items]
    if workers is not None:
        with ThreadPoolExecutor(max_workers=min(n, len(items))) as ex:
            return list(ex.map(fn, items))
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=n, thread_name_prefix="eventgrad")
    return list(_POOL.map(fn, items))


def readout_values(results: list[SimulationResult], loss: Loss) -> tuple[np.ndarray, list]:
    """The loss's readout for each sample, shape ``(batch, n)``, and what maps it back.

    For first-spike readouts silent neurons get ``loss.t_silent`` (default ``t_max``).
    """
    return read(results, loss.readout, loss.pop, loss.t_silent,
                getattr(loss, "silent_slope", 0.0))


def read(results: list[SimulationResult], readout: str, pop, t_silent: float | None = None,
         silent_slope: float = 0.0) -> tuple[np.ndarray, list]:
    """Readout ``readout`` ("first_spike" or "max_voltage") of ``pop`` for each sample.

    Silent neurons of a first-spike readout read ``t_silent + silent_slope (threshold -
    V_max)`` (see :mod:`eventgrad.losses`). Returns the values, shape ``(batch, pop.size)``,
    and per sample what :func:`sample_backward` needs to map a derivative back onto the events.
    """
    vals, aux = [], []
    for r in results:
        if readout == "first_spike":
            idx = first_spike_indices(r, pop)
            t = np.full(idx.shape, r.t_max if t_silent is None else t_silent)
            t[idx >= 0] = r.records.times[idx[idx >= 0]]
            mv = None
            if silent_slope > 0.0 and np.any(idx < 0):
                p = r.network.population(pop)
                mv = max_voltage(r, p, only_silent=True)
                silent = idx < 0
                t[silent] += silent_slope * (p.neuron.threshold - mv.values[silent])
            vals.append(t)
            aux.append((idx, mv, silent_slope))
        elif readout == "max_voltage":
            mv = max_voltage(r, pop)
            vals.append(mv.values)
            aux.append(mv)
        else:
            raise ValueError(f"readout must be 'first_spike' or 'max_voltage', got {readout!r}")
    return np.stack(vals), aux


def readout_backward(result: SimulationResult, loss: Loss, aux, dvalues: np.ndarray
                     ) -> SampleGradients:
    """EventProp backward of one sample given ``dL/d(readout)`` of shape ``(n,)``."""
    return sample_backward(result, [(loss.readout, loss.pop, aux, dvalues)])


def sample_backward(result: SimulationResult, terms: list[tuple]) -> SampleGradients:
    """EventProp backward of one sample for a sum of readout terms.

    ``terms`` is a list of ``(readout, pop, aux, dvalues)`` with ``readout`` in
    ``{"first_spike", "max_voltage"}``, ``aux`` what :func:`readout_values` returned for this
    sample and ``dvalues`` the loss's derivative with respect to that readout, shape ``(n,)``.
    """
    g = np.zeros(len(result.records))
    probes = []
    for readout, pop_key, aux, dvalues in terms:
        dvalues = np.asarray(dvalues, dtype=np.float64)
        if readout == "first_spike":
            idx, mv, slope = aux
            has = idx >= 0
            g[idx[has]] += dvalues[has]
            if mv is not None:
                pop = result.network.population(pop_key)
                sil = np.flatnonzero(~has)
                probes.append(VoltageProbe(pop.index, sil, mv.times[sil], -slope * dvalues[sil],
                                           mv.kind[sil] == AT_ARRIVAL, mv.vdot_left[sil],
                                           mv.kind[sil] == AT_END))
        else:
            pop = result.network.population(pop_key)
            probes.append(VoltageProbe(pop.index, np.arange(pop.size), aux.times, dvalues,
                                       aux.kind == AT_ARRIVAL, aux.vdot_left, aux.kind == AT_END))
    return backward(result, g, probes)


def value_and_grad(network: Network, spikes, loss: Loss, t_max: float, target=None,
                   max_events: int = DEFAULT_MAX_EVENTS) -> tuple[float, Gradients]:
    """Loss and its exact gradient (EventProp) with respect to weights, delays, input times.

    Parameters
    ----------
    network : Network
    spikes : Spikes or sequence of Spikes (a batch)
    loss : eventgrad.losses.Loss
    t_max : float, ms
    target : labels ``(batch,)`` or target times, as the loss needs
    max_events : see :func:`eventgrad.simulate`

    Returns
    -------
    value : float — the loss (mean over the batch)
    grads : Gradients — of that mean
    """
    if not isinstance(loss, Loss):
        raise TypeError(f"loss must be an eventgrad.losses.Loss, got {type(loss)}")
    res = simulate(network, spikes, t_max, max_events=max_events)
    single = isinstance(spikes, Spikes)
    results = [res] if single else list(res)
    vals, aux = readout_values(results, loss)
    v = torch.tensor(vals, dtype=torch.float64, requires_grad=True)
    if single and target is not None and np.ndim(target) == 0:
        target = [target]
    L = loss(v, target)
    (dv,) = torch.autograd.grad(L, v)
    dv = dv.numpy()
    gw = [np.zeros_like(w) for w in network.get_weights()]
    gd = [np.zeros_like(w) for w in gw]
    g_in = []
    n_grazing = 0
    sgs = parallel_map(lambda b: readout_backward(results[b], loss, aux[b], dv[b]),
                       range(len(results)))
    for sg in sgs:
        for i in range(len(gw)):
            gw[i] += sg.weights[i]
            gd[i] += sg.delays[i]
        g_in.append(sg.input_times)
        n_grazing += sg.n_grazing
    diag = Diagnostics.combine([r.diagnostics for r in results])
    grads = Gradients(gw, gd, g_in[0] if single else g_in, n_grazing,
                      diag.min_crossing_slope, res)
    return float(L.detach()), grads

"""``value_and_grad``: forward, loss, EventProp backward, for one sample or a batch."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from ._parallel import parallel_chunks, parallel_map
from .adjoint import GrazingWarning, SampleGradients, VoltageProbe, _warn_grazing, backward
from .losses import Loss
from .network import Network
from .readout import AT_ARRIVAL, AT_END, first_spike_indices, max_voltage
from .result import BatchResult, Diagnostics, SimulationResult
from .simulate import DEFAULT_MAX_EVENTS, simulate
from .spikes import Spikes

__all__ = ["Gradients", "value_and_grad", "readout_values", "readout_backward", "sample_backward",
           "batch_backward", "READOUTS"]

#: Readouts a loss or the torch bridge can take of a population (see :func:`read`).
READOUTS = ("first_spike", "max_voltage", "silent_max_voltage", "dead_max_voltage")


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


def readout_values(results: list[SimulationResult], loss: Loss) -> tuple[np.ndarray, list]:
    """The loss's readout for each sample, shape ``(batch, n)``, and what maps it back.

    For first-spike readouts silent neurons get ``loss.t_silent`` (default ``t_max``).
    """
    return read(results, loss.readout, loss.pop, loss.t_silent,
                getattr(loss, "silent_slope", 0.0))


def read(results: list[SimulationResult], readout: str, pop, t_silent: float | None = None,
         silent_slope: float = 0.0) -> tuple[np.ndarray, list]:
    """Readout ``readout`` of ``pop`` for each sample: ``"first_spike"`` (ms),
    ``"max_voltage"`` (a population that never spikes), ``"silent_max_voltage"`` (the maximum
    of V of each neuron that did not spike in the window, ``nan`` for the others) or
    ``"dead_max_voltage"`` (the same for the neurons that spiked on no sample of ``results``,
    ``nan`` for the others: the dead-neuron rule's readout, computed only where it is needed).

    Silent neurons of a first-spike readout read ``t_silent + silent_slope (threshold -
    V_max)`` (see :mod:`eventgrad.losses`). Returns the values, shape ``(batch, pop.size)``,
    and per sample what :func:`sample_backward` needs to map a derivative back onto the events.
    """
    if readout not in READOUTS:
        raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}")

    dead = None
    if readout == "dead_max_voltage" and results:
        p = results[0].network.population(pop)
        dead = np.ones(p.size, dtype=bool)
        for r in results:
            dead[r.records.ids[r.records.pops == p.index]] = False

    def one(r: SimulationResult):
        if readout != "first_spike":
            mv = max_voltage(r, pop, only_silent=readout != "max_voltage", neurons=dead)
            return mv.values, mv
        idx = first_spike_indices(r, pop)
        t = np.full(idx.shape, r.t_max if t_silent is None else t_silent)
        t[idx >= 0] = r.records.times[idx[idx >= 0]]
        mv = None
        if silent_slope > 0.0 and np.any(idx < 0):
            p = r.network.population(pop)
            mv = max_voltage(r, p, only_silent=True)
            silent = idx < 0
            t[silent] += silent_slope * (p.neuron.threshold - mv.values[silent])
        return t, (idx, mv, silent_slope)

    out = parallel_map(one, results)
    return np.stack([v for v, _ in out]), [a for _, a in out]


def readout_backward(result: SimulationResult, loss: Loss, aux, dvalues: np.ndarray
                     ) -> SampleGradients:
    """EventProp backward of one sample given ``dL/d(readout)`` of shape ``(n,)``."""
    return sample_backward(result, [(loss.readout, loss.pop, aux, dvalues)])


def _adjoint_inputs(result: SimulationResult, terms: list[tuple]
                    ) -> tuple[np.ndarray, list[VoltageProbe]]:
    """``dL/dt`` per recorded spike and the voltage probes of a sum of readout terms."""
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
        else:   # the max-voltage readouts; silent_/dead_max_voltage have no value (nan,
            # kind -1) for neurons that spiked. Entries with a zero derivative add nothing:
            # no probe (the backward stays short)
            pop = result.network.population(pop_key)
            on = np.flatnonzero((aux.kind >= 0) & (dvalues != 0.0))
            probes.append(VoltageProbe(pop.index, on, aux.times[on], dvalues[on],
                                       aux.kind[on] == AT_ARRIVAL, aux.vdot_left[on],
                                       aux.kind[on] == AT_END))
    return g, probes


def sample_backward(result: SimulationResult, terms: list[tuple]) -> SampleGradients:
    """EventProp backward of one sample for a sum of readout terms.

    ``terms`` is a list of ``(readout, pop, aux, dvalues)`` with ``readout`` in
    :data:`READOUTS`, ``aux`` what :func:`readout_values` returned for this
    sample and ``dvalues`` the loss's derivative with respect to that readout, shape ``(n,)``.
    """
    g, probes = _adjoint_inputs(result, terms)
    return backward(result, g, probes)


def batch_backward(results: list[SimulationResult], terms: list[list[tuple]],
                   workers: int | None = None
                   ) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], int]:
    """EventProp backward of a batch: :func:`sample_backward` of every sample, summed.

    ``terms[b]`` is sample ``b``'s list of readout terms (see :func:`sample_backward`).
    Returns ``(weights, delays, input_times, n_grazing)``: dL/dw and dL/dd summed over the
    samples (aligned with ``network.projections``), dL/dt of each sample's input spikes (one
    array per sample) and the number of grazing spikes in the batch. Samples are processed in
    chunks on ``workers`` threads (default: all CPUs); the result does not depend on
    ``workers`` (see :mod:`eventgrad._parallel`).
    """
    if len(results) != len(terms):
        raise ValueError(f"terms must have one entry per result ({len(results)}), "
                         f"got {len(terms)}")
    if not results:
        raise ValueError("results must not be empty")
    net = results[0].network
    shapes = [p.shape for p in net.projections]

    def chunk(idx: list[int]):
        items = [(results[b], *_adjoint_inputs(results[b], terms[b])) for b in idx]
        for r, g, _ in items:
            if not np.all(np.isfinite(g)):
                raise ValueError(f"dL/d(spike time) must be finite, got {g[~np.isfinite(g)][:3]}")
        plan = getattr(items[0][0], "_fast_plan", None)
        if plan is not None and all(getattr(r, "_fast_plan", None) is plan for r, _, _ in items):
            recs = [r.records for r, _, _ in items]
            fields = ("times", "pops", "ids", "currents", "release_currents")
            rec = tuple(np.concatenate([getattr(x, f) for x in recs]) for f in fields)
            rec_off = np.concatenate([[0], np.cumsum([len(x) for x in recs])]).astype(np.int64)
            ins = [r.inputs for r, _, _ in items]
            in_off = np.concatenate([[0], np.cumsum([len(x) for x in ins])]).astype(np.int64)
            pr_off = np.concatenate([[0], np.cumsum([sum(len(q.neurons) for q in pr)
                                                     for _, _, pr in items])]).astype(np.int64)
            gw, gd, g_in, _, n_graz = plan.backward_many(
                rec, rec_off, np.concatenate([g for _, g, _ in items]),
                np.concatenate([x.times for x in ins]), np.concatenate([x.ids for x in ins]),
                in_off, results[0].t_max, [pr for _, _, pr in items], pr_off)
            offs = plan.proj_w_off
            gw = [gw[offs[j]:offs[j + 1]].reshape(sh) for j, sh in enumerate(shapes)]
            gd = [gd[offs[j]:offs[j + 1]].reshape(sh) for j, sh in enumerate(shapes)]
            return gw, gd, [g_in[in_off[k]:in_off[k + 1]] for k in range(len(idx))], \
                int(n_graz.sum())
        gw = [np.zeros(sh) for sh in shapes]
        gd = [np.zeros(sh) for sh in shapes]
        g_in, n_graz = [], 0
        for r, g, pr in items:
            sg = backward(r, g, pr)
            for i in range(len(shapes)):
                gw[i] += sg.weights[i]
                gd[i] += sg.delays[i]
            g_in.append(sg.input_times)
            n_graz += sg.n_grazing
        return gw, gd, g_in, n_graz

    with warnings.catch_warnings():  # one warning for the batch, below
        warnings.simplefilter("ignore", GrazingWarning)
        parts = parallel_chunks(chunk, range(len(results)), workers)
    gw = [np.zeros(sh) for sh in shapes]
    gd = [np.zeros(sh) for sh in shapes]
    g_in, n_graz = [], 0
    for pw, pd, pi, ng in parts:
        for i in range(len(shapes)):
            gw[i] += pw[i]
            gd[i] += pd[i]
        g_in += pi
        n_graz += ng
    if n_graz:
        _warn_grazing(n_graz)
    return gw, gd, g_in, n_graz


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
    gw, gd, g_in, n_grazing = batch_backward(
        results, [[(loss.readout, loss.pop, aux[b], dv[b])] for b in range(len(results))])
    diag = Diagnostics.combine([r.diagnostics for r in results])
    grads = Gradients(gw, gd, g_in[0] if single else g_in, n_grazing,
                      diag.min_crossing_slope, res)
    return float(L.detach()), grads

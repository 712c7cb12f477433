"""``value_and_grad``: forward, readout, loss, EventProp backward, for one sample or a batch.

Data flows one way, through typed records: :func:`eventgrad.simulate` gives a
:class:`~eventgrad.BatchResult`; :func:`read` gives a :class:`Readout` (the values a loss sees
and what the adjoint needs to map their derivative back: first-spike records, voltage maxima);
the loss's derivative with respect to the values goes back through
:meth:`Readout.adjoint_inputs` (dL/dt per recorded spike, dL/dV probes) into the compiled
adjoint (:func:`backward_batch`), which returns :class:`Gradients`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from ..model.network import Network
from ..model.spikes import Spikes
from . import engines
from .adjoint import warn_grazing
from .readout import AT_ARRIVAL, AT_END, MaxVoltage, as_batch, max_voltage_batch, max_voltage_where
from .result import BatchResult, Diagnostics, SimulationResult
from .simulate import DEFAULT_MAX_EVENTS, simulate

if TYPE_CHECKING:
    from ..losses import Loss

__all__ = ["Gradients", "Readout", "AdjointInputs", "value_and_grad", "read", "readout_values",
           "backward_batch", "batch_backward", "READOUTS"]

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
        :func:`eventgrad.event.adjoint.backward`); 0 in normal operation.
    min_crossing_slope : float
        Smallest ``I - threshold`` over all spikes of the batch: small values mean large
        (exact) gradients from near-grazing crossings; below
        :data:`eventgrad.event.adjoint.NEAR_GRAZING_SLOPE` the call issued a GrazingWarning.
    result : SimulationResult or BatchResult
        The forward pass the gradients belong to.
    """

    weights: list[np.ndarray]
    delays: list[np.ndarray]
    input_times: np.ndarray | list[np.ndarray]
    n_grazing: int
    min_crossing_slope: float
    result: SimulationResult | BatchResult


@dataclass(frozen=True)
class Readout:
    """One readout of one population over a batch.

    Attributes
    ----------
    kind : str — one of :data:`READOUTS`
    pop : int — index into ``network.populations``
    values : ndarray (batch, n) — what a loss sees: first-spike times in ms (silent neurons:
        ``t_silent + silent_slope (threshold - V_max)``), or maxima of V (nan where a
        ``silent_``/``dead_max_voltage`` readout has no value)
    first : ndarray (batch, n) int or None — index into the batch's flat records of each
        neuron's first spike (-1: silent); first-spike readouts only
    vmax : MaxVoltage or None — the maxima of V the values (or the silent-neuron rule) use
    silent_slope : float — ms per unit voltage (first-spike readouts)
    """

    kind: str
    pop: int
    values: np.ndarray
    first: np.ndarray | None
    vmax: MaxVoltage | None
    silent_slope: float = 0.0

    @staticmethod
    def of(results, readout: str, pop, t_silent: float | None = None,
           silent_slope: float = 0.0, workers: int | None = None) -> Readout:
        """Readout ``readout`` of ``pop`` for each sample of ``results`` (a BatchResult or a
        list of results of one network and weights).

        ``"first_spike"`` (ms; silent neurons read ``t_silent + silent_slope (threshold -
        V_max)``, ``t_silent`` defaulting to ``t_max``; see :mod:`eventgrad.losses`),
        ``"max_voltage"`` (a population that never spikes), ``"silent_max_voltage"`` (the
        maximum of V of each neuron that did not spike in the window, ``nan`` for the others)
        or ``"dead_max_voltage"`` (the same for the neurons that spiked on no sample of the
        batch, ``nan`` for the others: the dead-neuron rule's readout, computed only where it
        is needed).
        """
        if readout not in READOUTS:
            raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}")
        res = as_batch(results)
        p = res.network.population(pop)
        if readout == "first_spike":
            first = res.first_spike_indices(p)
            silent = first < 0
            values = np.full(first.shape, res.t_max if t_silent is None else float(t_silent))
            values[~silent] = res.records.times[first[~silent]]
            mv = None
            if silent_slope > 0.0 and silent.any():
                mv = max_voltage_where(res, p, silent, workers)   # (silent: no spike)
                values[silent] += silent_slope * (p.neuron.threshold - mv.values[silent])
            return Readout(readout, p.index, values, first, mv, float(silent_slope))
        if readout == "dead_max_voltage":   # silent on every sample of the batch
            dead = ~np.any(res.spike_counts(p) > 0, axis=0)
            mv = max_voltage_where(res, p, np.broadcast_to(dead, (len(res), p.size)), workers)
        else:
            mv = max_voltage_batch(res, p, only_silent=readout != "max_voltage",
                                   workers=workers)
        return Readout(readout, p.index, mv.values, None, mv)

    def adjoint_inputs(self, dvalues: np.ndarray, n_records: int) -> AdjointInputs:
        """``dL/d(values)`` (batch, n) as the adjoint's inputs (:class:`AdjointInputs`): dL/dt
        per flat record and the voltage probes."""
        dv = np.asarray(dvalues, dtype=np.float64)
        g = np.zeros(n_records)
        probes = []
        if self.kind == "first_spike":
            has = self.first >= 0
            np.add.at(g, self.first[has], dv[has])
            if self.vmax is not None and self.silent_slope > 0.0:
                probes.append(self._probes(~has & (self.vmax.kind >= 0),
                                           -self.silent_slope * dv))
        else:   # entries with no value (nan, kind -1) or a zero derivative add nothing
            probes.append(self._probes((self.vmax.kind >= 0) & (dv != 0.0), dv))
        return AdjointInputs(g, tuple(probes))

    def _probes(self, sel: np.ndarray, dl: np.ndarray) -> engines.ProbeColumns:
        b, n = np.nonzero(sel)
        mv = self.vmax
        kind = mv.kind[b, n]
        return engines.ProbeColumns(b, np.full(b.shape, self.pop, dtype=np.int64),
                                    n.astype(np.int64), mv.times[b, n], dl[b, n],
                                    kind == AT_ARRIVAL, mv.vdot_left[b, n], kind == AT_END)


@dataclass(frozen=True)
class AdjointInputs:
    """What a readout's ``dL/d(values)`` gives the adjoint: ``spike_time_grads``, dL/dt of each
    flat record (the batch's ``records``), and ``probes``, its dL/dV terms."""

    spike_time_grads: np.ndarray
    probes: tuple[engines.ProbeColumns, ...]


def read(results, readout: str, pop, t_silent: float | None = None,
         silent_slope: float = 0.0, workers: int | None = None) -> tuple[np.ndarray, Readout]:
    """``(values, readout)``: :meth:`Readout.of` and its values, shape ``(batch, n)``."""
    ro = Readout.of(results, readout, pop, t_silent, silent_slope, workers)
    return ro.values, ro


def readout_values(results, loss) -> tuple[np.ndarray, Readout]:
    """The loss's readout (see :func:`read`): its values, shape ``(batch, n)``, and the
    :class:`Readout`."""
    return read(results, loss.readout, loss.pop, loss.t_silent,
                getattr(loss, "silent_slope", 0.0))


def backward_batch(results, terms: list[tuple[Readout, np.ndarray]], engine: str = "fast",
                   workers: int | None = None, warn: bool = True) -> engines.BackwardOutput:
    """EventProp backward of a batch for a sum of readout terms ``(readout, dL/d(values))``.

    Returns the flat gradients (:class:`eventgrad.event.engines.BackwardOutput`): dL/dw and
    dL/dd summed over the batch (flat like ``plan.W``; see ``plan.split``), dL/d(input time)
    and dL/dt of every record (flat), grazing spikes per sample. Issues one
    :class:`~eventgrad.event.adjoint.GrazingWarning` for the batch (if ``warn``) if a crossing was
    grazing or had a slope below :data:`eventgrad.event.adjoint.NEAR_GRAZING_SLOPE`.
    """
    res = as_batch(results)
    rec = res.records
    g = np.zeros(len(rec.times))
    parts: list[tuple] = []
    for ro, dv in terms:
        inp = ro.adjoint_inputs(dv, len(rec.times))
        g += inp.spike_time_grads
        parts += inp.probes
    if not np.all(np.isfinite(g)):
        raise ValueError(f"dL/d(spike time) must be finite, got {g[~np.isfinite(g)][:3]}")
    probes = engines.Probes.from_columns(parts, len(res))
    if engine == "reference":
        out = _reference_batch(res, g, probes)
    else:
        out = engines.backward(res.plan, rec, g, res.flat_inputs, probes, res.t_max,
                               engines.resolve(engine, res.plan), workers)
    if warn:
        warn_grazing(int(out.n_grazing.sum()), rec, res.network, stacklevel=3,
                     min_slope=res.min_crossing_slope)
    return out


def _reference_batch(res: BatchResult, g: np.ndarray, probes: engines.Probes
                     ) -> engines.BackwardOutput:
    from . import reference
    from .adjoint import probes_of_sample

    gw = np.zeros(res.plan.W.shape[0])
    gd = np.zeros_like(gw)
    g_in, g_out, n_graz = [], [], []
    off = res.records.offsets
    for b in range(len(res)):
        r = res[b]
        w, d, gi, gt, ng = reference.backward(r, g[off[b]:off[b + 1]],
                                              probes_of_sample(probes, b))
        gw += np.concatenate([x.ravel() for x in w])
        gd += np.concatenate([x.ravel() for x in d])
        g_in.append(gi)
        g_out.append(gt)
        n_graz.append(ng)
    return engines.BackwardOutput(gw, gd, np.concatenate(g_in), np.concatenate(g_out),
                                  np.asarray(n_graz, dtype=np.int64))


def batch_backward(results, terms: list[list[tuple]], workers: int | None = None,
                   engine: str = "fast"
                   ) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], int]:
    """EventProp backward of a batch given per-sample terms (the earlier interface of
    :func:`backward_batch`): ``terms[b]`` is a list of ``(readout_kind, pop, readout,
    dvalues_b)`` with ``readout`` the :class:`Readout` of :func:`read` and ``dvalues_b`` the
    derivative for sample ``b``. Returns ``(weights, delays, input_times, n_grazing)``:
    dL/dw and dL/dd summed over the samples (aligned with ``network.projections``), dL/dt of
    each sample's input spikes (one array per sample), grazing spikes in the batch."""
    res = as_batch(results)
    if len(terms) != len(res):
        raise ValueError(f"terms must have one entry per result ({len(res)}), got {len(terms)}")
    by_readout: dict[int, tuple[Readout, np.ndarray]] = {}
    for b, sample_terms in enumerate(terms):
        for _, _, ro, dv in sample_terms:
            entry = by_readout.setdefault(id(ro), (ro, np.zeros(ro.values.shape)))
            entry[1][b] = dv
    out = backward_batch(res, list(by_readout.values()), engine, workers)
    off = res.flat_inputs.offsets
    return (res.plan.split(out.weights), res.plan.split(out.delays),
            [out.input_times[off[b]:off[b + 1]] for b in range(len(res))],
            int(out.n_grazing.sum()))


def value_and_grad(network: Network, spikes: Spikes | Sequence[Spikes], loss: Loss,
                   t_max: float, target: ArrayLike | None = None,
                   max_events: int = DEFAULT_MAX_EVENTS, engine: str = "fast",
                   workers: int | None = None) -> tuple[float, Gradients]:
    """Loss and its exact gradient (EventProp) with respect to weights, delays, input times.

    Parameters
    ----------
    network : Network
    spikes : Spikes or sequence of Spikes (a batch)
    loss : eventgrad.losses.Loss
    t_max : float, ms
    target : labels ``(batch,)`` or target times, as the loss needs
    max_events : see :func:`eventgrad.simulate`
    engine : see :mod:`eventgrad.event.engines`; the forward pass and the adjoint both use it
    workers : threads (default :func:`eventgrad.get_num_threads`)

    Returns
    -------
    value : float — the loss (mean over the batch)
    grads : Gradients — of that mean
    """
    from ..losses import Loss

    if not isinstance(loss, Loss):
        raise TypeError(f"loss must be an eventgrad.losses.Loss, got {type(loss)}")
    res = simulate(network, spikes, t_max, max_events=max_events, engine=engine,
                   workers=workers)
    single = isinstance(spikes, Spikes)
    batch = as_batch(res)
    ro = Readout.of(batch, loss.readout, loss.pop, loss.t_silent,
                    getattr(loss, "silent_slope", 0.0), workers)
    if single and target is not None and np.ndim(target) == 0:
        target = [target]
    value, dv = loss.value_and_grad(ro.values, target)
    out = backward_batch(batch, [(ro, dv)], engine, workers)
    plan = batch.plan
    off = batch.flat_inputs.offsets
    g_in = [out.input_times[off[b]:off[b + 1]] for b in range(len(batch))]
    diag: Diagnostics = batch.diagnostics
    grads = Gradients(plan.split(out.weights), plan.split(out.delays),
                      g_in[0] if single else g_in, int(out.n_grazing.sum()),
                      diag.min_crossing_slope, res)
    return value, grads

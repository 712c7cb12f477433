"""The adjoint (EventProp) backward pass: exact gradients from the recorded events.

The pass walks the events of one forward simulation backward in time, in exactly the reverse of
the order the event loop processed them, carrying for every neuron the costate
``mu = (mu_V, mu_I) = dL/d(V, I)`` (the derivative of the loss with respect to the state at that
time, everything before held fixed). Between events the costate follows the transpose of the
closed-form flow; at events it jumps. The derivation, and the relation to the adjoint variables
of Wunderlich & Pehle (2021), ``lambda_V = -mu_V/tau_mem`` and ``lambda_I = -mu_I/tau_syn``, is in
``docs/adjoint.md``. Summary, for a neuron with ``tau_mem = tm``, ``tau_syn = ts``:

* between events, going back by ``D``: ``mu_I <- e^{-D/ts} mu_I + k(D) mu_V``,
  ``mu_V <- e^{-D/tm} mu_V`` (``mu_V = 0`` while the neuron is refractory);
* arrival of weight ``w`` at time ``a``: ``dL/dw += mu_I(a)``,
  ``dL/da = w (mu_I(a)/ts - mu_V(a)/tm)``, which is the gradient of the delay and is added to
  ``dL/dt`` of the presynaptic spike (or input spike);
* end of a refractory period at ``r`` (current ``I_r``): ``dL/dt_k += -mu_V(r) (I_r - v_reset)/tm``
  for the spike ``k`` that started it, then ``mu_V = 0``;
* spike ``k`` at ``t_k`` with current ``I`` (before any arrival at ``t_k``):
  ``mu_V <- ((I - v_reset) mu_V - tm dL/dt_k) / (I - threshold)``, ``mu_I`` unchanged;
* a loss term on ``V(tau)`` adds ``dL/dV`` to ``mu_V(tau)``; if ``tau`` is an arrival time where
  the maximum of V sits on a kink, ``dL/dV * dV/dt(tau^-)`` is added to ``dL/da`` of the
  arrival(s) there.

Memory is O(number of spikes): the events are rebuilt from the spike records, the network's
delays and ``t_max``; nothing is stored per time step.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from .result import SimulationResult

__all__ = ["VoltageProbe", "SampleGradients", "GrazingWarning", "NEAR_GRAZING_SLOPE",
           "backward"]

#: Crossing slope ``I - threshold`` (``= tau_mem dV/dt`` at the crossing, in the units of the
#: membrane potential, whose threshold is 1 by default) below which a gradient warns
#: (:class:`GrazingWarning`). The exact gradient carries ``1/(I - threshold)``: at this slope
#: it is ~``tau_mem / NEAR_GRAZING_SLOPE`` (2e6 for 20 ms) times its usual size, and a small
#: change of the parameters can make the spike vanish. A peak 1e-12 above threshold crosses
#: with slope ~3e-6 (gradient ~1e6-1e7) and warns; ordinary training stays far above (the
#: smallest slope seen: 3e-3 training temporal XOR, 5 seeds x 100 epochs; 1.3e-3 training
#: Yin-Yang, 5000 samples x 3 epochs in batches of 32).
NEAR_GRAZING_SLOPE = 1e-5


class GrazingWarning(RuntimeWarning):
    """A spike crossed threshold with zero slope to rounding (its exact gradient is unbounded),
    or with a slope ``I - threshold`` below :data:`NEAR_GRAZING_SLOPE` (its exact gradient is
    very large). Issued at most once per gradient call."""


def grazing_message(n_grazing: int) -> str:
    return (f"{n_grazing} spike(s) crossed threshold with zero slope (I == threshold to "
            "rounding); their exact gradient is unbounded and was evaluated with the slope set "
            "to the float64 spacing at threshold")


def shallow_crossings(records, network) -> tuple[int, float]:
    """``(count, smallest)``: the spikes of ``records`` (a SpikeRecord or BatchRecords of
    ``network``) whose crossing slope ``I - threshold`` is below :data:`NEAR_GRAZING_SLOPE`, and
    the smallest slope of all (``inf`` without spikes)."""
    if not len(records.times):
        return 0, float("inf")
    theta = np.array([p.neuron.threshold for p in network.populations])
    slope = records.currents - theta[records.pops]
    return int(np.count_nonzero(slope < NEAR_GRAZING_SLOPE)), float(slope.min())


def warn_grazing(n_grazing: int, records, network, stacklevel: int,
                 min_slope: float | None = None) -> None:
    """One :class:`GrazingWarning` for a gradient call, if a crossing grazed (``n_grazing``
    spikes with zero slope to rounding) or was shallower than :data:`NEAR_GRAZING_SLOPE`.
    ``min_slope``: the smallest slope of ``records`` if the caller knows it (the forward pass's
    :attr:`~eventgrad.Diagnostics.min_crossing_slope`); then the records are read only when it
    is below :data:`NEAR_GRAZING_SLOPE`. Touches no warning filter: the warning goes through
    :func:`warnings.warn` as it is."""
    if n_grazing:
        msg = grazing_message(n_grazing)
    elif min_slope is not None and not min_slope < NEAR_GRAZING_SLOPE:
        return
    else:
        n, smallest = shallow_crossings(records, network)
        if not n:
            return
        msg = (f"{n} spike(s) crossed threshold with slope I - threshold below "
               f"NEAR_GRAZING_SLOPE = {NEAR_GRAZING_SLOPE:g} (eventgrad.event.adjoint; smallest "
               f"{smallest:.3g}): their exact gradient, proportional to 1/(I - threshold), is "
               "very large, and a small change of the parameters can make the spike vanish")
    warnings.warn(msg, GrazingWarning, stacklevel=stacklevel + 1)


@dataclass
class VoltageProbe:
    """A loss term on the membrane potential of some neurons of one population.

    Attributes
    ----------
    pop : int
        Index into ``network.populations``.
    neurons : int array, shape (n,)
    times : float array, shape (n,), ms — where V is observed
    dL_dV : float array, shape (n,)
    at_arrival : bool array, shape (n,) — V is observed as the left limit at an arrival time
        (a kink of V); then ``dL_dV * vdot_left`` enters the arrival time's gradient
    vdot_left : float array, shape (n,) — dV/dt just before ``times`` (1/ms)
    at_end : bool array, shape (n,) — the observation is at ``t_max`` (after every event)
    """

    pop: int
    neurons: np.ndarray
    times: np.ndarray
    dL_dV: np.ndarray
    at_arrival: np.ndarray
    vdot_left: np.ndarray
    at_end: np.ndarray


@dataclass
class SampleGradients:
    """Gradients of a loss for one sample (see :func:`backward`).

    Attributes
    ----------
    weights, delays : list of ndarray
        Aligned with ``network.projections``; shapes ``(n_pre, n_post)``; dL/dw and dL/dd
        (delays in 1/ms).
    input_times : ndarray, shape (n_input_spikes,)
        dL/dt for each input spike, aligned with ``result.inputs.times`` (1/ms).
    spike_times : ndarray, shape (n_spikes,)
        dL/dt_k of each recorded spike through the loss, its arrivals and its refractory
        release (``G_k`` of docs/adjoint.md), aligned with ``result.records``.
    n_grazing : int
        Spikes whose crossing slope ``I - threshold`` was <= 0 to rounding (see
        :func:`backward`).
    """

    weights: list[np.ndarray]
    delays: list[np.ndarray]
    input_times: np.ndarray
    spike_times: np.ndarray
    n_grazing: int = 0
    extra: dict = field(default_factory=dict)


def _flat_probes(probes):
    """VoltageProbes of one sample as the engines' flat :class:`Probes`."""
    from .engines import ProbeColumns, Probes

    parts = [ProbeColumns(np.zeros(len(q.neurons), dtype=np.int64),
                          np.full(len(q.neurons), q.pop, dtype=np.int64), np.asarray(q.neurons),
                          np.asarray(q.times), np.asarray(q.dL_dV), np.asarray(q.at_arrival),
                          np.asarray(q.vdot_left), np.asarray(q.at_end)) for q in probes]
    return Probes.from_columns(parts, 1)


def probes_of_sample(probes, b: int) -> list[VoltageProbe]:
    """Sample ``b``'s probes of a flat :class:`Probes`, one VoltageProbe per population."""
    a, e = probes.offsets[b], probes.offsets[b + 1]
    out = []
    for p in np.unique(probes.pops[a:e]):
        sel = slice(a, e)
        m = probes.pops[sel] == p
        out.append(VoltageProbe(int(p), probes.neurons[sel][m], probes.times[sel][m],
                                probes.dL_dV[sel][m], probes.at_arrival[sel][m],
                                probes.vdot_left[sel][m], probes.at_end[sel][m]))
    return out


def backward(result: SimulationResult, spike_time_grads: np.ndarray | None = None,
             probes: list[VoltageProbe] = (), engine: str = "fast") -> SampleGradients:
    """Exact gradients of a loss of spike times and voltages, by the adjoint method.

    Parameters
    ----------
    result : SimulationResult
        One forward simulation (not a batch), by any engine.
    spike_time_grads : ndarray, shape (n_spikes,), optional
        dL/dt_k of the loss for each recorded spike (aligned with ``result.records``); the
        direct dependence of the loss on that spike time, 1/ms. Zero when omitted.
    probes : list of VoltageProbe
        Loss terms on V.
    engine : "fast", "layered", "general" or "reference" (see
        :mod:`eventgrad.event.engines`); the same computation, cross-tested.

    Returns
    -------
    SampleGradients

    Notes
    -----
    A spike whose crossing slope ``I - threshold`` is positive is used exactly, however small
    (the gradient then is large: that is the exact gradient of a near-grazing crossing). A
    slope <= 0 can only come from rounding (an exactly grazing crossing, where the gradient is
    unbounded); it is replaced by the spacing of float64 numbers at the threshold, counted in
    ``n_grazing``, and a :class:`GrazingWarning` is issued; so it is (once per call) when a
    slope is below :data:`NEAR_GRAZING_SLOPE`.
    """
    from . import engines, reference

    rec = result.records
    n_sp = len(rec)
    g_t = np.zeros(n_sp) if spike_time_grads is None else np.array(spike_time_grads, dtype=float)
    if g_t.shape != (n_sp,):
        raise ValueError(f"spike_time_grads must have shape ({n_sp},), got {g_t.shape}")
    if not np.all(np.isfinite(g_t)):
        raise ValueError("spike_time_grads must be finite")
    if engine not in engines.ENGINES:
        raise ValueError(f"engine must be one of {engines.ENGINES}, got {engine!r}")
    plan = result.plan
    if engine == "reference":
        gw, gd, g_in, g_out, n = reference.backward(result, g_t, list(probes))
    else:
        from .engines import BatchRecords, FlatInputs
        out = engines.backward(plan, BatchRecords.concat([rec]), g_t,
                               FlatInputs.of([result.inputs]), _flat_probes(probes),
                               result.t_max, engines.resolve(engine, plan))
        gw, gd, g_in, g_out = plan.split(out.weights), plan.split(out.delays), \
            out.input_times, out.spike_times
        n = int(out.n_grazing[0])
    warn_grazing(int(n), rec, result.network, stacklevel=2,
                 min_slope=result.diagnostics.min_crossing_slope)
    return SampleGradients(gw, gd, g_in, g_out, int(n))

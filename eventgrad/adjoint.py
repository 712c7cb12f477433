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

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from .network import InputPopulation
from .result import SimulationResult

__all__ = ["VoltageProbe", "SampleGradients", "GrazingWarning", "backward"]

_SPIKE, _RELEASE, _PROBE, _ARRIVAL, _PROBE_END = 0, 1, 2, 3, 4


class GrazingWarning(RuntimeWarning):
    """A spike crossed threshold with zero slope to rounding: its exact gradient is unbounded."""


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


class _Costate:
    __slots__ = ("nrn", "mu_V", "mu_I", "tau")

    def __init__(self, nrn, n: int, t_max: float) -> None:
        self.nrn = nrn
        self.mu_V = np.zeros(n)
        self.mu_I = np.zeros(n)
        self.tau = t_max

    def retreat(self, t: float) -> None:
        D = self.tau - t
        if D > 0.0:
            nrn = self.nrn
            self.mu_I = math.exp(-D / nrn.tau_syn) * self.mu_I + nrn.kernel_scalar(D) * self.mu_V
            self.mu_V = math.exp(-D / nrn.tau_mem) * self.mu_V
            self.tau = t


def backward(result: SimulationResult, spike_time_grads: np.ndarray | None = None,
             probes: list[VoltageProbe] = (), engine: str = "fast") -> SampleGradients:
    """Exact gradients of a loss of spike times and voltages, by the adjoint method.

    Parameters
    ----------
    result : SimulationResult
        One forward simulation (not a batch).
    spike_time_grads : ndarray, shape (n_spikes,), optional
        dL/dt_k of the loss for each recorded spike (aligned with ``result.records``); the
        direct dependence of the loss on that spike time, 1/ms. Zero when omitted.
    probes : list of VoltageProbe
        Loss terms on V.
    engine : "fast" (compiled, default) or "reference" (this module's Python loop); the
        same computation, cross-tested to agree to rounding.

    Returns
    -------
    SampleGradients

    Notes
    -----
    A spike whose crossing slope ``I - threshold`` is positive is used exactly, however small
    (the gradient then is large: that is the exact gradient of a near-grazing crossing). A
    slope <= 0 can only come from rounding (an exactly grazing crossing, where the gradient is
    unbounded); it is replaced by the spacing of float64 numbers at the threshold, counted in
    ``n_grazing``, and a :class:`GrazingWarning` is issued.
    """
    net = result.network
    rec = result.records
    n_sp = len(rec)
    t_max = result.t_max
    g_t = np.zeros(n_sp) if spike_time_grads is None else np.array(spike_time_grads, dtype=float)
    if g_t.shape != (n_sp,):
        raise ValueError(f"spike_time_grads must have shape ({n_sp},), got {g_t.shape}")
    if not np.all(np.isfinite(g_t)):
        raise ValueError("spike_time_grads must be finite")
    if engine not in ("fast", "reference"):
        raise ValueError(f"engine must be 'fast' or 'reference', got {engine!r}")
    inputs = result.inputs
    if engine == "fast":
        from . import _fast

        plan = getattr(result, "_fast_plan", None)
        if plan is None:
            plan = _fast.FastPlan(net, result.weights, result.delays)
            result._fast_plan = plan
        gwf, gdf, g_in, g_t, n_grazing = plan.backward(rec, g_t, inputs.times, inputs.ids, t_max,
                                                       list(probes))
        offs = plan.proj_w_off
        gw = [gwf[offs[j]:offs[j + 1]].reshape(p.shape) for j, p in enumerate(net.projections)]
        gd = [gdf[offs[j]:offs[j + 1]].reshape(p.shape) for j, p in enumerate(net.projections)]
        if n_grazing:
            _warn_grazing(int(n_grazing))
        return SampleGradients(gw, gd, g_in, g_t, int(n_grazing))
    g_in = np.zeros(len(inputs))
    gw = [np.zeros_like(w) for w in result.weights]
    gd = [np.zeros_like(w) for w in result.weights]
    pops = net.populations
    cos = [_Costate(p.neuron, p.size, t_max) for p in pops]

    # ---------------------------------------------------------------- rebuild the event list
    events: list[tuple] = []
    out_by_src: dict[int, list] = {}
    for proj in net.projections:
        src = -1 if isinstance(proj.pre, InputPopulation) else proj.pre.index
        out_by_src.setdefault(src, []).append(proj)
    group_cache: dict[tuple[int, int], list] = {}

    def groups(proj, m: int):
        key = (proj.index, m)
        g = group_cache.get(key)
        if g is None:
            row = result.delays[proj.index][m]
            if np.all(row == row[0]):
                g = [(float(row[0]), None)]
            else:
                g = [(float(u), np.flatnonzero(row == u)) for u in np.unique(row)]
            group_cache[key] = g
        return g

    def add_arrivals(src: int, m: int, t: float, tag: int) -> None:
        for proj in out_by_src.get(src, ()):
            for d, posts in groups(proj, m):
                a = t + d
                if a <= t_max:
                    events.append((a, _ARRIVAL, proj.index, m, tag, posts))

    for i, (t, m) in enumerate(zip(inputs.times, inputs.ids)):
        if t <= t_max:
            events.append((float(t), _SPIKE, -1, int(m), -(i + 1), None))
            add_arrivals(-1, int(m), float(t), -(i + 1))
    for k in range(n_sp):
        t, p, n = float(rec.times[k]), int(rec.pops[k]), int(rec.ids[k])
        events.append((t, _SPIKE, p, n, k, None))
        add_arrivals(p, n, t, k)
        t_ref = pops[p].neuron.t_ref
        if t_ref > 0.0 and t + t_ref <= t_max:
            events.append((t + t_ref, _RELEASE, p, n, k, None))
    kinks: dict[tuple[int, float], dict[int, float]] = {}
    for pr in probes:
        for j in range(len(pr.neurons)):
            n, tau = int(pr.neurons[j]), float(pr.times[j])
            rank = _PROBE_END if pr.at_end[j] else _PROBE
            events.append((tau, rank, pr.pop, n, j, float(pr.dL_dV[j])))
            if pr.at_arrival[j]:
                kinks.setdefault((pr.pop, tau), {})[n] = float(pr.dL_dV[j] * pr.vdot_left[j])
    # reverse of the forward order (time, rank, source, index); ties among equal keys commute
    events.sort(key=lambda e: (e[0], e[1], e[2], e[3]), reverse=True)

    # ---------------------------------------------------------------- walk backward
    n_grazing = 0
    for ev in events:
        t, kind = ev[0], ev[1]
        if kind == _ARRIVAL:
            proj = net.projections[ev[2]]
            m, tag, posts = ev[3], ev[4], ev[5]
            c = cos[proj.post.index]
            c.retreat(t)
            nrn = c.nrn
            sl = slice(None) if posts is None else posts
            mu_I = c.mu_I[sl]
            w = result.weights[proj.index][m, sl]
            dLda = w * (mu_I / nrn.tau_syn - c.mu_V[sl] / nrn.tau_mem)
            kk = kinks.get((proj.post.index, t))
            if kk:
                post_ids = np.arange(proj.post.size)[sl]
                for n, extra in kk.items():
                    hit = np.flatnonzero(post_ids == n)
                    if hit.size:
                        dLda[hit[0]] += extra
            gw[proj.index][m, sl] += mu_I
            gd[proj.index][m, sl] += dLda
            total = float(dLda.sum())
            if tag >= 0:
                g_t[tag] += total
            else:
                g_in[-tag - 1] += total
        elif kind == _SPIKE:
            p, n, k = ev[2], ev[3], ev[4]
            if p < 0:
                continue
            c = cos[p]
            c.retreat(t)
            nrn = c.nrn
            I = float(rec.currents[k])
            slope = I - nrn.threshold
            if not slope > 0.0:
                n_grazing += 1
                slope = float(np.spacing(nrn.threshold))
            c.mu_V[n] = ((I - nrn.v_reset) * c.mu_V[n] - nrn.tau_mem * g_t[k]) / slope
        elif kind == _RELEASE:
            p, n, k = ev[2], ev[3], ev[4]
            c = cos[p]
            c.retreat(t)
            nrn = c.nrn
            I_r = float(rec.release_currents[k])
            g_t[k] += -c.mu_V[n] * (I_r - nrn.v_reset) / nrn.tau_mem
            c.mu_V[n] = 0.0
        else:  # probe
            c = cos[ev[2]]
            c.retreat(t)
            c.mu_V[ev[3]] += ev[5]
    if n_grazing:
        _warn_grazing(n_grazing)
    return SampleGradients(gw, gd, g_in, g_t, n_grazing)


def _warn_grazing(n_grazing: int) -> None:
    warnings.warn(f"{n_grazing} spike(s) crossed threshold with zero slope (I == threshold "
                  "to rounding); their exact gradient is unbounded and was evaluated with "
                  "the slope set to the float64 spacing at threshold", GrazingWarning,
                  stacklevel=3)

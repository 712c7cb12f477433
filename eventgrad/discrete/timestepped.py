"""The time-stepped path: the same networks on a grid of step ``dt``, with surrogate gradients.

This is the computation most of the field uses (Neftci, Mostafa & Zenke 2019; Zenke & Vogels
2021), run on the *same* :class:`~eventgrad.Network` objects, losses and result shapes as the
event path, so that the two gradients can be put side by side. Torch underneath, batched over
samples, float64 by default.

The step (state ``U[m], I[m]`` at ``t_m = m dt``; population by population in index order)
------------------------------------------------------------------------------------------------
1. propagate over ``dt``: ``I <- alpha I`` and, by ``update``,

   * ``"exact"`` (default): ``U <- beta U + k(dt) I``, the closed form of the linear dynamics
     over one step (exponential-Euler coefficients; the only error left is where spikes sit);
   * ``"euler"``: ``U <- beta U + (1 - beta) I``, the seeds' ``U[n+1] = beta U[n] + I[n]`` with
     the input gain ``1 - beta`` made explicit so that it integrates the same equation (the
     seeds absorb it into the weights); I reaches U one step late;

   with ``alpha = exp(-dt/tau_syn)``, ``beta = exp(-dt/tau_mem)``;
2. add what arrives in ``(t_{m-1}, t_m]``: input spikes by ``inputs`` —

   * ``"offset"`` (default): with their sub-step offset ``s = t_m - a``: ``I += w e^{-s/tau_syn}``,
     ``U += w k(s)`` (exact for inputs),
   * ``"round"``: at the nearest grid time, ``I += w`` —

   and spikes of LIF populations emitted at grid times, delayed by their delay rounded to whole
   steps (a zero delay from a population to itself or to an earlier one becomes one step,
   since that population's spikes of this step are not known yet; both are reported);
3. spike: ``S = H(U - threshold)`` forward, ``surrogate(U - threshold)`` backward;
4. reset, by ``reset``: ``"to_reset"`` (default) ``U <- S v_reset + (1 - S) U``; ``"subtract"``
   ``U <- U - (threshold - v_reset) S``; ``"multiplicative"`` ``U <- (1 - S) U``. With
   ``detach_reset=True`` (default) the ``S`` of the reset is cut from the graph;
5. refractoriness: ``round(t_ref/dt)`` steps at ``v_reset`` after a spike.

Spike times are interpolated inside the step where U crosses, ``t = t_{m-1} + dt
(threshold - U[m-1]) / (U[m] - U[m-1])`` (differentiable; ``interpolate=False`` gives the grid
time ``t_m`` with zero derivative). The maximum of V of a readout is the maximum over the grid.

Engines
-------
``engine="layered"`` (:mod:`eventgrad.discrete.layered`) runs a feed-forward network a
population at a time over the whole window, its time loop compiled with a hand-written
backward; ``engine="general"`` (here) runs any network step by step in torch with autograd.
``engine="fast"`` (default) takes the first where it applies. They are cross-tested: the same
spikes, float64 gradients equal to 1e-12 relative, for every option.

Defaults and why
----------------
``surrogate=Surrogate("superspike", 10)``: SuperSpike is the seeds' surrogate and scale 10 per
unit threshold is a common choice; ``reset="to_reset"``: the event model's reset;
``detach_reset=True``: what common code does (an undetached reset with an unnormalised
surrogate can make the threshold repelling); ``update="exact"`` and ``inputs="offset"``: so that
the forward pass differs from the exact one only by the grid on which spikes are detected,
which isolates what the surrogate does; ``interpolate=True``: spike-time losses need it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from numpy.typing import ArrayLike

from .._checks import positive
from ..event.gradients import Gradients
from ..event.simulate import _validate_inputs
from ..losses import Loss
from ..model.network import InputPopulation, Network, PopKey
from ..model.spikes import Spikes
from . import layered
from .grid import EngineOutput, StepOptions, arrival_steps, lif_delays, step_constants
from .surrogates import Surrogate, spike

__all__ = ["simulate", "value_and_grad", "DiscreteResult", "DiscreteBatchResult",
           "DiscreteDiagnostics", "DiscreteRun", "run", "readout_tensor", "ENGINES"]

_RESETS = ("to_reset", "subtract", "multiplicative")
_UPDATES = ("exact", "euler")
_INPUTS = ("offset", "round")
#: Engines of the time-stepped path (see :func:`run`).
ENGINES = ("fast", "layered", "general")


@dataclass
class DiscreteDiagnostics:
    """What the grid did to the model.

    Attributes
    ----------
    dt : float, ms
    n_steps : int — steps simulated; the grid ends at ``n_steps * dt``
    max_delay_rounding : float, ms — largest |delay used - delay| over all synapses between
        LIF populations (the one-step lag of zero delays included)
    lagged_projections : list of int — projections whose zero (rounded) delay became one step
    max_t_ref_rounding : float, ms
    settings : dict — the options used
    """

    dt: float
    n_steps: int
    max_delay_rounding: float
    lagged_projections: list
    max_t_ref_rounding: float
    settings: dict = field(default_factory=dict)


class DiscreteResult:
    """One sample of a time-stepped simulation (same reading API as the event path's result).

    ``spikes(pop)`` gives interpolated spike times (grid times with ``interpolate=False``);
    ``first_spike_times(pop)`` the first of them (``inf`` where silent); ``voltage(pop)`` the
    grid trace ``(n_steps + 1, pop.size)`` when recorded (``record_voltage=True``), with
    ``times`` the grid.
    """

    def __init__(self, network: Network, batch_run: DiscreteRun, b: int) -> None:
        self.network = network
        self._run = batch_run
        self._b = b
        self.t_max = batch_run.t_max
        self.diagnostics = batch_run.diagnostics

    @property
    def times(self) -> np.ndarray:
        return np.arange(self._run.n_steps + 1) * self._run.dt

    def spikes(self, pop: PopKey) -> Spikes:
        p = self.network.population(pop)
        if isinstance(p, InputPopulation):
            return self._run.inputs[self._b]
        t, ids = self._run.spike_lists[p.index][self._b]
        return Spikes(t, ids, n_neurons=p.size)

    def spike_counts(self, pop: PopKey) -> np.ndarray:
        p = self.network.population(pop)
        return np.bincount(self.spikes(p).ids, minlength=p.size).astype(np.int64)

    def first_spike_times(self, pop: PopKey) -> np.ndarray:
        p = self.network.population(pop)
        return self._run.first[p.index][self._b].detach().cpu().numpy().astype(np.float64)

    def voltage(self, pop: PopKey) -> np.ndarray:
        p = self.network.population(pop)
        if self._run.voltages is None:
            raise ValueError("voltage: run with record_voltage=True to keep the traces")
        return self._run.voltages[p.index][:, self._b].cpu().numpy()


class DiscreteBatchResult(Sequence):
    """A batch of :class:`DiscreteResult`; ``first_spike_times(pop)`` has shape (batch, n)."""

    def __init__(self, network: Network, batch_run: DiscreteRun) -> None:
        self._items = [DiscreteResult(network, batch_run, b) for b in range(batch_run.batch)]
        self.diagnostics = batch_run.diagnostics

    def __getitem__(self, i):
        return self._items[i]

    def __len__(self) -> int:
        return len(self._items)

    def first_spike_times(self, pop: PopKey) -> np.ndarray:
        return np.stack([r.first_spike_times(pop) for r in self._items])

    def spike_counts(self, pop: PopKey) -> np.ndarray:
        return np.stack([r.spike_counts(pop) for r in self._items])


@dataclass
class DiscreteRun:
    """A time-stepped forward pass as :func:`run` returns it, with its autograd graph.

    ``first[p]``: (batch, n) tensor of interpolated first-spike times of population ``p``
    (ms; inf where silent); ``vmax[p]``: (batch, n) tensor, the maximum of U over the grid;
    ``spike_lists[p][b]``: ``(times, ids)`` numpy arrays of sample ``b``'s spikes;
    ``voltages[p]``: ``(n_steps + 1, batch, n)`` tensor when recorded, else None; ``inputs``:
    the validated input spikes.
    """

    t_max: float
    dt: float
    n_steps: int
    batch: int
    inputs: list
    first: list
    vmax: list
    spike_lists: list
    voltages: list | None
    diagnostics: DiscreteDiagnostics


def _check_options(dt, t_max, reset, update, inputs, surrogate, dtype, **flags):
    dt = positive(dt, "dt", "ms")
    t_max = positive(t_max, "t_max", "ms")
    if dt > t_max:   # one step: the grid would see nothing the window holds
        raise ValueError(f"dt must be <= t_max, got dt={dt!r} ms > t_max={t_max!r} ms")
    if reset not in _RESETS:
        raise ValueError(f"reset must be one of {_RESETS}, got {reset!r}")
    if update not in _UPDATES:
        raise ValueError(f"update must be one of {_UPDATES}, got {update!r}")
    if inputs not in _INPUTS:
        raise ValueError(f"inputs must be one of {_INPUTS}, got {inputs!r}")
    if not isinstance(surrogate, Surrogate):
        raise TypeError("surrogate must be an eventgrad.discrete.surrogates.Surrogate, got "
                        f"{surrogate!r}")
    if dtype not in (torch.float64, torch.float32):
        raise ValueError(f"dtype must be torch.float64 or torch.float32, got {dtype!r}")
    for name, flag in flags.items():
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(f"{name} must be True or False, got {flag!r}")
    n = t_max / dt
    n_steps = round(n) if abs(n - round(n)) < 1e-9 * max(1.0, n) else math.ceil(n)
    return dt, t_max, n_steps


def _input_arrivals(pr, batch, n_steps: int, dt: float, inputs: str, dtype) -> list:
    """An input projection's arrivals on the grid, one entry per distinct delay ``u``:
    ``(X_I, X_U, mask)`` with the current and voltage an input spike adds at each step
    (``(n_steps + 1, batch, n_pre)``: exact sub-step offsets for ``inputs="offset"``, the
    nearest step for ``"round"``) and the synapses with that delay (``mask``, n_pre x n_post)."""
    nrn = pr.post.neuron
    out = []
    for u in np.unique(pr.delays):
        X_I = np.zeros((n_steps + 1, len(batch), pr.pre.size))
        X_U = np.zeros((n_steps + 1, len(batch), pr.pre.size))
        for b, s in enumerate(batch):
            a = s.times + u
            keep = a <= n_steps * dt
            m, off = arrival_steps(a[keep], dt, n_steps, inputs)
            ids = s.ids[keep]
            np.add.at(X_I, (m, b, ids), np.exp(-off / nrn.tau_syn))
            np.add.at(X_U, (m, b, ids), nrn.kernel(off))
        out.append((torch.tensor(X_I, dtype=dtype), torch.tensor(X_U, dtype=dtype),
                    torch.tensor(pr.delays == u, dtype=dtype)))
    return out


def _arrival_terms(network, batch, W, n_steps: int, dt: float, inputs: str, dtype):
    """What arrives at each population, per post-synaptic population index: ``in_terms``
    ``[(X_I, X_U, W masked, nonzero steps)]`` of the input projections (exact arrival
    times) and ``int_terms`` ``[(pre, k, W masked)]`` of the LIF projections (delays rounded
    to whole steps). The masked weights are formed once per run (they stay in the autograd
    graph), and the steps that carry input at all are noted, so that empty steps cost
    nothing."""
    in_terms = {q.index: [] for q in network.populations}
    int_terms = {q.index: [] for q in network.populations}
    for pr in network.projections:
        if isinstance(pr.pre, InputPopulation):
            for X_I, X_U, mask in _input_arrivals(pr, batch, n_steps, dt, inputs, dtype):
                in_terms[pr.post.index].append(
                    (X_I, X_U, W[pr.index] * mask,
                     X_I.reshape(n_steps + 1, -1).any(dim=1).tolist()))
        else:
            int_terms[pr.post.index] += [(p, k, W[pr.index] * mask)
                                         for p, k, mask in lif_delays(pr, dt, dtype)[0]]
    return in_terms, int_terms


def _fire(Uq, U_prev, refr, first, m: int, consts: tuple, o: StepOptions):
    """Spikes of one population at step ``m`` from its propagated potential ``Uq``: returns
    ``(U after the reset, S, any fired, first-spike times, refractory counters, the step's
    spikes as (samples, neurons, times) or None)``."""
    _, _, _, theta, v_r, ref_steps = consts
    is_ref = refr > 0
    S = spike(Uq - theta, o.surrogate)
    if ref_steps > 0:
        S = S * (~is_ref).to(o.dtype)
    fired = S.detach() > 0
    any_fired = bool(fired.any())
    spikes = None
    if any_fired:
        t_prev = (m - 1) * o.dt
        if o.interpolate:
            # guard the denominator where nothing fired (where() would turn an inf there into
            # a nan gradient)
            den = torch.where(fired, Uq - U_prev, torch.ones_like(Uq))
            t_cross = t_prev + o.dt * (theta - U_prev) / den
        else:
            t_cross = torch.full_like(Uq, m * o.dt)
        # the last step may end after t_max (when t_max is not a multiple of dt): a crossing
        # later than t_max is outside the window, as in the event path
        counted = fired & (t_cross.detach() <= o.t_max) if m * o.dt > o.t_max else fired
        first = torch.where(counted & torch.isinf(first), t_cross, first)
        bb, nn_ = torch.nonzero(counted, as_tuple=True)
        spikes = (bb.numpy(), nn_.numpy(),
                  t_cross.detach()[bb, nn_].cpu().numpy().astype(np.float64))
    # the reset changes nothing forward where nothing fired, but an undetached reset still
    # carries the surrogate's gradient there
    if any_fired or (not o.detach_reset and S.requires_grad):
        Sr = S.detach() if o.detach_reset else S
        if o.reset == "to_reset":
            Uq = Sr * v_r + (1.0 - Sr) * Uq
        elif o.reset == "subtract":
            Uq = Uq - (theta - v_r) * Sr
        else:
            Uq = (1.0 - Sr) * Uq
    if ref_steps > 0:
        refr = torch.where(fired, torch.full_like(refr, ref_steps), torch.clamp(refr - 1, min=0))
    return Uq, S, any_fired, first, refr, spikes


def _spike_lists(parts: list, B: int) -> list:
    """A population's spikes per step ``(samples, neurons, times)`` as per-sample ``(times,
    ids)`` numpy arrays."""
    bs = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
    ns = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64)
    ts = np.concatenate([p[2] for p in parts]) if parts else np.zeros(0)
    return [(ts[bs == b], ns[bs == b]) for b in range(B)]


def run(network: Network, spikes: Spikes | Sequence[Spikes], t_max: float, dt: float,
        weights: Sequence[torch.Tensor] | None = None,
        surrogate: Surrogate | None = None, reset: str = "to_reset", detach_reset: bool = True,
        update: str = "exact", inputs: str = "offset", interpolate: bool = True,
        dtype: torch.dtype = torch.float64, record_voltage: bool = False,
        engine: str = "fast") -> DiscreteRun:
    """The time-stepped forward pass with autograd graph; see the module docs for options.

    ``spikes``: a Spikes or a non-empty sequence of them; ``t_max`` and the step ``dt`` in ms,
    ``0 < dt <= t_max``.

    ``weights``: one tensor per projection (default: the network's weights, as constants).
    ``engine``: one of :data:`ENGINES`: ``"layered"`` runs a population at a time over the
    whole window, its time loop compiled (:mod:`eventgrad.discrete.layered`; feed-forward
    networks only: every projection between LIF populations from a lower population index to
    a higher one); ``"general"`` runs step by step in torch, any topology; ``"fast"``
    (default) is ``"layered"`` where it applies, else ``"general"``. Both give the same
    spikes and gradients (cross-tested: float64 gradients to 1e-12 relative).
    Returns the :class:`DiscreteRun` that :func:`simulate` and :func:`value_and_grad` read.
    """
    surrogate = Surrogate() if surrogate is None else surrogate
    dt, t_max, n_steps = _check_options(dt, t_max, reset, update, inputs, surrogate, dtype,
                                        detach_reset=detach_reset, interpolate=interpolate,
                                        record_voltage=record_voltage)
    which = _resolve(engine, network)
    batch, _ = _validate_inputs(network, spikes)
    W = _weights(network, weights, dtype)
    o = StepOptions(surrogate, reset, detach_reset, interpolate, dtype, t_max, dt, update,
                    inputs, record_voltage)
    out = (layered.run if which == "layered" else _run_general)(network, batch, W, o, n_steps)
    return DiscreteRun(t_max, dt, n_steps, len(batch), batch, out.first, out.vmax,
                       out.spike_lists, out.voltages, _diagnostics(network, o, n_steps))


def _resolve(engine: str, network: Network) -> str:
    """The engine that runs: ``"layered"`` or ``"general"``."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if engine == "fast":
        return "layered" if layered.applies(network) else "general"
    if engine == "layered" and not layered.applies(network):
        raise ValueError("engine='layered' does not apply to this network: a projection "
                         "between LIF populations runs back to the same or an earlier "
                         "population (a recurrent loop); use engine='general' or 'fast'")
    return engine


def _weights(network: Network, weights, dtype) -> list[torch.Tensor]:
    projs = network.projections
    if weights is None:
        return [torch.tensor(p.weights, dtype=dtype) for p in projs]
    if len(weights) != len(projs):
        raise ValueError(f"weights must have {len(projs)} tensors, got {len(weights)}")
    return [w.to(dtype) for w in weights]


def _diagnostics(network: Network, o: StepOptions, n_steps: int) -> DiscreteDiagnostics:
    """What the grid did: delays and refractory periods rounded, zero delays lagged."""
    max_round, lagged = 0.0, []
    for pr in network.projections:
        if not isinstance(pr.pre, InputPopulation):
            _, rounding, lag = lif_delays(pr, o.dt, o.dtype)
            max_round = max(max_round, rounding)
            lagged += [pr.index] if lag else []
    max_ref_round = max((abs(round(q.neuron.t_ref / o.dt) * o.dt - q.neuron.t_ref)
                         for q in network.populations), default=0.0)
    return DiscreteDiagnostics(o.dt, n_steps, max_round, lagged, max_ref_round, {
        "surrogate": repr(o.surrogate), "reset": o.reset, "detach_reset": o.detach_reset,
        "update": o.update, "inputs": o.inputs, "interpolate": o.interpolate,
        "dtype": str(o.dtype).replace("torch.", "")})


def _run_general(network: Network, batch: list, W: list, o: StepOptions,
                 n_steps: int) -> EngineOutput:
    """The general engine: every population, step by step, in torch (autograd per step)."""
    B, dt, dtype = len(batch), o.dt, o.dtype
    pops = network.populations
    in_terms, int_terms = _arrival_terms(network, batch, W, n_steps, dt, o.inputs, dtype)
    U = [torch.zeros(B, q.size, dtype=dtype) for q in pops]
    I = [torch.zeros(B, q.size, dtype=dtype) for q in pops]
    refr = [torch.zeros(B, q.size, dtype=torch.long) for q in pops]
    first = [torch.full((B, q.size), math.inf, dtype=dtype) for q in pops]
    vmax = [torch.zeros(B, q.size, dtype=dtype) for q in pops]
    S_hist: list[list[torch.Tensor]] = [[torch.zeros(B, q.size, dtype=dtype)] for q in pops]
    spk: list[list] = [[] for _ in pops]
    volt = [[torch.zeros(B, q.size, dtype=dtype)] for q in pops] if o.record_voltage else None
    consts = [step_constants(q.neuron, dt, o.update) for q in pops]
    any_hist: list[list[bool]] = [[False] for _ in pops]

    def arrivals(qi: int, m: int, Iq: torch.Tensor, Uq: torch.Tensor):
        for X_I, X_U, Wm, nonzero in in_terms[qi]:
            if nonzero[m]:
                Iq = Iq + X_I[m] @ Wm
                Uq = Uq + X_U[m] @ Wm
        for p, k_eff, Wm in int_terms[qi]:
            src = m - k_eff
            # a step in which nothing fired adds nothing forward, but its surrogate still
            # carries gradient: it may be skipped only when it is not in the graph
            if src >= 1 and (any_hist[p][src] or S_hist[p][src].requires_grad):
                Iq = Iq + S_hist[p][src] @ Wm
        return Iq, Uq

    for q in pops:                           # step 0: arrivals at t = 0
        I[q.index], _ = arrivals(q.index, 0, I[q.index], U[q.index])
    for m in range(1, n_steps + 1):
        for q in pops:
            qi = q.index
            alpha, beta, gain, theta, v_r, ref_steps = consts[qi]
            U_prev = U[qi]
            Iq, Uq = arrivals(qi, m, alpha * I[qi], beta * U_prev + gain * I[qi])
            if ref_steps > 0:
                Uq = torch.where(refr[qi] > 0, torch.full_like(Uq, v_r), Uq)
            vmax[qi] = torch.maximum(vmax[qi], Uq)
            if theta == math.inf:
                S, any_fired = torch.zeros_like(Uq), False
            else:
                Uq, S, any_fired, first[qi], refr[qi], fired_now = _fire(
                    Uq, U_prev, refr[qi], first[qi], m, consts[qi], o)
                if fired_now is not None:
                    spk[qi].append(fired_now)
            U[qi], I[qi] = Uq, Iq
            S_hist[qi].append(S)
            any_hist[qi].append(any_fired)
            if volt is not None:
                volt[qi].append(Uq.detach())
    voltages = [torch.stack(v) for v in volt] if volt is not None else None
    return EngineOutput(first, vmax, [_spike_lists(spk[q.index], B) for q in pops], voltages)


def simulate(network: Network, spikes: Spikes | Sequence[Spikes], t_max: float, dt: float,
             **options) -> DiscreteResult | DiscreteBatchResult:
    """Time-stepped simulation; returns :class:`DiscreteResult` for one Spikes, else a
    :class:`DiscreteBatchResult`. Options as in :func:`run` (``surrogate``, ``reset``,
    ``detach_reset``, ``update``, ``inputs``, ``interpolate``, ``dtype``, ``record_voltage``).
    """
    with torch.no_grad():
        r = run(network, spikes, t_max, dt, **options)
    if isinstance(spikes, Spikes):
        return DiscreteResult(network, r, 0)
    return DiscreteBatchResult(network, r)


def readout_tensor(r: DiscreteRun, network: Network, loss: Loss) -> torch.Tensor:
    """The loss's readout from a run, ``(batch, n)``; silent neurons get ``loss.t_silent``
    (default ``t_max``) with zero gradient, as in the event path."""
    p = network.population(loss.pop)
    if loss.readout == "first_spike":
        t = r.first[p.index]
        t_sil = r.t_max if loss.t_silent is None else loss.t_silent
        slope = getattr(loss, "silent_slope", 0.0)
        fill = torch.full_like(t, t_sil)
        if slope > 0.0:  # the silent-neuron rule of eventgrad.losses, with the grid maximum
            fill = fill + slope * (p.neuron.threshold - r.vmax[p.index])
        return torch.where(torch.isinf(t), fill, t)
    if loss.readout == "max_voltage":
        return r.vmax[p.index]
    raise ValueError(f"loss.readout must be 'first_spike' or 'max_voltage', got {loss.readout!r}")


def value_and_grad(network: Network, spikes: Spikes | Sequence[Spikes], loss: Loss, t_max: float,
                   dt: float, target: ArrayLike | None = None,
                   **options) -> tuple[float, Gradients]:
    """Loss and its surrogate gradient with respect to the weights (backprop through time).

    Returns ``(value, Gradients)`` like :func:`eventgrad.value_and_grad`; ``delays`` and
    ``input_times`` are ``None`` (delays are rounded to the grid and have no gradient here).
    """
    if not isinstance(loss, Loss):
        raise TypeError(f"loss must be an eventgrad.losses.Loss, got {type(loss)}")
    dtype = options.get("dtype", torch.float64)
    if dtype not in (torch.float64, torch.float32):
        raise ValueError(f"dtype must be torch.float64 or torch.float32, got {dtype!r}")
    weights = [torch.tensor(p.weights, dtype=dtype, requires_grad=True)
               for p in network.projections]
    r = run(network, spikes, t_max, dt, weights=weights, **options)
    vals = readout_tensor(r, network, loss)
    if isinstance(spikes, Spikes) and target is not None and np.ndim(target) == 0:
        target = [target]
    L = loss(vals, target)
    if L.requires_grad:
        grads = torch.autograd.grad(L, weights, allow_unused=True)
    else:  # nothing in the readout depends on the weights (e.g. every neuron silent)
        grads = [None] * len(weights)
    gw = [np.zeros(p.shape) if g is None else g.detach().cpu().numpy().astype(np.float64)
          for g, p in zip(grads, network.projections)]
    res = DiscreteResult(network, r, 0) if isinstance(spikes, Spikes) else \
        DiscreteBatchResult(network, r)
    return float(L.detach()), Gradients(gw, None, None, 0, math.nan, res)

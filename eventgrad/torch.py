"""The torch bridge: EventProp as a torch autograd function and an ``nn.Module``.

The forward pass runs the exact event engine; the backward pass runs the adjoint
(:func:`eventgrad.event.gradients.backward_batch`), so any torch loss, optimizer and scheduler
can be used on the outputs unchanged. Tensors are float64 on the CPU.

>>> import torch, eventgrad as eg
>>> from eventgrad.torch import SpikingNetwork
>>> net = eg.Network.feedforward([5, 20, 3], eg.LIF(20.0, 5.0), seed=0)
>>> model = SpikingNetwork(net, t_max=100.0)              # first-spike times of "output"
>>> opt = torch.optim.Adam(model.parameters(), lr=5e-3)
>>> t = model([eg.Spikes([0.0, 10.0], [0, 1])])            # shape (1, 3), ms
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ._checks import non_negative
from .event.gradients import Readout, backward_batch
from .event.plan import plan_for
from .event.simulate import (
    DEFAULT_MAX_EVENTS,
    _check_max_events,
    _check_t_max,
    _validate_inputs,
    simulate_plan,
)
from .model.network import Network, _as_delays, _as_weights
from .model.spikes import Spikes

__all__ = ["BridgeOptions", "Forward", "EventPropFunction", "SpikingNetwork", "eventprop",
           "run_forward", "first_only_populations", "torch_threads"]


@dataclass(frozen=True)
class BridgeOptions:
    """What :class:`EventPropFunction` needs besides the parameter tensors.

    ``readouts``: ``(readout, pop)`` pairs (see :func:`eventgrad.event.gradients.read`);
    ``t_silent`` (ms or None for ``t_max``) and ``silent_slope`` (ms per unit voltage): the
    silent-neuron rule of :mod:`eventgrad.losses`; ``learn_delays``: the parameters include one
    delay tensor per projection after the weights; ``engine``: see
    :mod:`eventgrad.event.engines`; ``first_only``: populations followed only up to each
    neuron's first spike (:func:`first_only_populations`).
    """

    network: Network
    t_max: float
    readouts: tuple
    t_silent: float | None = None
    silent_slope: float = 0.0
    learn_delays: bool = False
    max_events: int = DEFAULT_MAX_EVENTS
    engine: str = "fast"
    first_only: tuple = ()


#: Readouts that read nothing of a neuron after its first spike.
_FIRST_SPIKE_READOUTS = ("first_spike", "silent_max_voltage", "dead_max_voltage")


def first_only_populations(network: Network, readouts) -> tuple[int, ...]:
    """The populations whose neurons' spikes after the first change no readout: those that
    project nowhere and are read only by first-spike readouts (and the silent-neuron rules,
    which read neurons that never spiked). The engines stop following such a neuron after
    its first spike (:func:`eventgrad.event.engines.forward`): the readouts and their exact
    gradients are the same, the forward pass is cheaper, and the records hold each such
    neuron's first spike only."""
    out = []
    for p in network.populations:
        kinds = [k for k, pop in readouts if network.population(pop) is p]
        if kinds and all(k in _FIRST_SPIKE_READOUTS for k in kinds) and not network.outgoing(p):
            out.append(p.index)
    return tuple(out)


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float64, copy=True)


@dataclass(frozen=True)
class Forward:
    """A forward pass of the bridge: the batch result and its readouts (what the backward
    needs)."""

    result: object
    reads: tuple
    opts: BridgeOptions


def run_forward(opts: BridgeOptions, batch: list, params: Sequence[torch.Tensor]) -> Forward:
    """The event engine on ``batch`` with the parameter tensors' values (the network in
    ``opts`` is not modified). The result's closest approach is not tracked (nan; see
    :func:`eventgrad.event.engines.forward`): training reads neither it nor anything that
    depends on it."""
    net = opts.network
    projs = net.projections
    n_proj = len(projs)
    weights = [_as_weights(_numpy(p), pr.shape, f"weights of projection {pr.index}")
               for p, pr in zip(params[:n_proj], projs)]
    delays = ([_as_delays(_numpy(p), pr.shape, f"delays of projection {pr.index}")
               for p, pr in zip(params[n_proj:2 * n_proj], projs)] if opts.learn_delays
              else None)
    res = simulate_plan(net, plan_for(net, weights, delays), batch, opts.t_max,
                        opts.max_events, opts.engine, None, opts.first_only, False)
    reads = tuple(Readout.of(res, kind, pop, opts.t_silent, opts.silent_slope)
                  for kind, pop in opts.readouts)
    return Forward(res, reads, opts)


class EventPropFunction(torch.autograd.Function):
    """The readouts of a :class:`Forward` as tensors of the parameters; backward by
    EventProp. Use :func:`eventprop` or :class:`SpikingNetwork` rather than ``apply``."""

    @staticmethod
    def forward(ctx, fwd: Forward, *params: torch.Tensor):
        ctx.fwd = fwd
        return tuple(torch.from_numpy(r.values) for r in fwd.reads)

    @staticmethod
    def backward(ctx, *grad_outputs):
        fwd = ctx.fwd
        terms = [(r, go.detach().cpu().numpy()) for r, go in zip(fwd.reads, grad_outputs)
                 if go is not None]
        out = backward_batch(fwd.result, terms, fwd.opts.engine)
        plan = fwd.result.plan
        grads = [torch.from_numpy(g) for g in plan.split(out.weights)]
        if fwd.opts.learn_delays:
            grads += [torch.from_numpy(g) for g in plan.split(out.delays)]
        return (None, *grads)


def _options(network, t_max, readouts, t_silent, silent_slope, learn_delays, max_events,
             engine, all_spikes=False) -> BridgeOptions:
    non_negative(silent_slope, "silent_slope")
    readouts = tuple(tuple(r) for r in readouts)
    first = () if all_spikes else first_only_populations(network, readouts)
    return BridgeOptions(network, _check_t_max(t_max), readouts, t_silent, float(silent_slope),
                         bool(learn_delays), _check_max_events(max_events), engine, first)


def eventprop(network: Network, spikes: Sequence[Spikes], t_max: float,
              weights: Sequence[torch.Tensor], delays: Sequence[torch.Tensor] | None = None,
              readouts: Sequence[tuple[str, object]] = (("first_spike", "output"),),
              t_silent: float | None = None, max_events: int = DEFAULT_MAX_EVENTS,
              silent_slope: float = 0.0, engine: str = "fast", all_spikes: bool = False):
    """Functional form: readouts of ``network`` with the given parameter tensors.

    Parameters
    ----------
    network : Network — structure and neuron parameters (not modified: the weights and delays
        used are the tensors')
    spikes : sequence of Spikes — the batch
    t_max : float, ms
    weights : one float64 tensor per projection, shape (n_pre, n_post)
    delays : one float64 tensor per projection (ms), or None to keep the network's delays
    readouts : sequence of ``(readout, pop)``: ``"first_spike"`` (ms; silent neurons give
        ``t_silent``, default ``t_max``, with zero gradient), ``"max_voltage"`` (a population
        that never spikes), ``"silent_max_voltage"`` (max of V of the neurons that did not
        spike, ``nan`` for those that did) or ``"dead_max_voltage"`` (the same for neurons
        that spiked on no sample of the batch); see :func:`eventgrad.event.gradients.read`
    engine : see :mod:`eventgrad.event.engines`
    all_spikes : bool — follow every neuron to ``t_max`` even where only first spikes are read
        (default False: see :func:`first_only_populations`; the outputs and gradients are
        the same either way)
    Returns a tuple of tensors, one per readout, each of shape ``(batch, pop.size)``.
    """
    opts = _options(network, t_max, readouts, t_silent, silent_slope, delays is not None,
                    max_events, engine, all_spikes)
    batch, _ = _validate_inputs(network, list(spikes))
    params = list(weights) + (list(delays) if delays is not None else [])
    return EventPropFunction.apply(run_forward(opts, batch, params), *params)


class SpikingNetwork(nn.Module):
    """An eventgrad network as a torch module with exact (EventProp) gradients.

    Parameters
    ----------
    network : Network
        Structure, neuron parameters and initial weights/delays (copied).
    t_max : float
        Simulation window in ms.
    readout : "first_spike" or "max_voltage", or a sequence of ``(readout, pop)`` pairs
    pop : population read out when ``readout`` is a string (default "output")
    learn_delays : bool
        Make the delays parameters too. They must stay >= 0: the forward pass raises a clear
        error otherwise; call :meth:`clamp_delays_` after an optimizer step to project them.
    t_silent : float, optional
        First-spike time reported for a silent neuron (default ``t_max``).
    silent_slope : float
        ms per unit voltage: a silent neuron reports ``t_silent + silent_slope (threshold -
        V_max)`` (exact gradient through V_max; see :mod:`eventgrad.losses`); 0 (default)
        gives the constant ``t_silent`` with zero gradient.
    engine : see :mod:`eventgrad.event.engines`
    all_spikes : bool — see :func:`eventprop` (default False: a population read only by
        first-spike readouts that projects nowhere is followed to each neuron's first spike,
        so :attr:`last_result` holds those neurons' first spikes only)

    Attributes
    ----------
    weights : nn.ParameterList — one (n_pre, n_post) float64 tensor per projection
    delays : nn.ParameterList or None — ms
    network : a copy of the network with the current parameters
    last_result : the BatchResult of the latest forward pass (spikes, diagnostics)
    """

    def __init__(self, network: Network, t_max: float, readout="first_spike", pop="output",
                 learn_delays: bool = False, t_silent: float | None = None,
                 silent_slope: float = 0.0, max_events: int = DEFAULT_MAX_EVENTS,
                 engine: str = "fast", all_spikes: bool = False) -> None:
        super().__init__()
        self._network = network.copy()
        readouts = [(readout, pop)] if isinstance(readout, str) else [tuple(r) for r in readout]
        for r, p in readouts:
            if r not in ("first_spike", "max_voltage"):
                raise ValueError(f"readout must be 'first_spike' or 'max_voltage', got {r!r}")
            self._network.population(p)
        self.opts = _options(self._network, t_max, readouts, t_silent, silent_slope,
                             learn_delays, max_events, engine, all_spikes)
        self.t_max = self.opts.t_max
        self.weights = nn.ParameterList(
            [nn.Parameter(torch.from_numpy(w.copy())) for w in self._network.get_weights()])
        self.delays = (nn.ParameterList(
            [nn.Parameter(torch.from_numpy(d.copy())) for d in self._network.get_delays()])
            if learn_delays else None)
        self.last_result = None

    @property
    def network(self) -> Network:
        """The module's network with its current weights (and delays)."""
        self._network.set_weights([_numpy(w) for w in self.weights])
        if self.delays is not None:
            self._network.set_delays([_numpy(d) for d in self.delays])
        return self._network

    def forward(self, spikes):
        """Readouts for a batch (a Spikes or a sequence of them): a tensor of shape
        ``(batch, pop.size)``, or a tuple of them for several readouts."""
        batch, _ = _validate_inputs(self._network, [spikes] if isinstance(spikes, Spikes)
                                    else list(spikes))
        params = list(self.weights) + (list(self.delays) if self.delays is not None else [])
        fwd = run_forward(self.opts, batch, params)
        self.last_result = fwd.result
        outs = EventPropFunction.apply(fwd, *params)
        return outs[0] if len(outs) == 1 else outs

    @torch.no_grad()
    def clamp_delays_(self, min_delay: float = 0.0) -> None:
        """Project the delay parameters onto ``>= min_delay`` (ms) in place."""
        if self.delays is not None:
            for d in self.delays:
                d.clamp_(min=min_delay)


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """torch's intra-op threads set to ``n`` inside the block and restored after (None or 0:
    left as they are). The tensors of training and of the command line are small: idle
    intra-op threads only add latency to each small op, so one thread is fastest there. (The
    event engines' threads are :func:`eventgrad.set_num_threads`.)"""
    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)

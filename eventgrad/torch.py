"""The torch bridge: EventProp as a torch autograd function and an ``nn.Module``.

The forward pass runs the exact event engine; the backward pass runs the adjoint
(:func:`eventgrad.adjoint.backward`), so any torch loss, optimizer and scheduler can be used on
the outputs unchanged. Tensors are float64 on the CPU.

>>> import torch, eventgrad as eg
>>> from eventgrad.torch import SpikingNetwork
>>> net = eg.Network.feedforward([5, 20, 3], eg.LIF(20.0, 5.0), seed=0)
>>> model = SpikingNetwork(net, t_max=100.0)              # first-spike times of "output"
>>> opt = torch.optim.Adam(model.parameters(), lr=5e-3)
>>> t = model([eg.Spikes([0.0, 10.0], [0, 1])])            # shape (1, 3), ms
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from .gradients import batch_backward, read
from .network import Network
from .simulate import DEFAULT_MAX_EVENTS, simulate
from .spikes import Spikes

__all__ = ["EventPropFunction", "SpikingNetwork", "eventprop"]


class EventPropFunction(torch.autograd.Function):
    """``outputs = f(weights..., delays...)`` by the event engine; backward by EventProp.

    Use :func:`eventprop` rather than calling ``apply`` directly.
    """

    @staticmethod
    def forward(ctx, spec: dict, *params: torch.Tensor):
        net: Network = spec["network"]
        n_proj = len(net.projections)
        weights = [p.detach().cpu().numpy().astype(np.float64) for p in params[:n_proj]]
        net.set_weights(weights)
        if spec["learn_delays"]:
            net.set_delays([p.detach().cpu().numpy().astype(np.float64)
                            for p in params[n_proj:2 * n_proj]])
        res = simulate(net, list(spec["spikes"]), spec["t_max"], max_events=spec["max_events"])
        results = list(res)
        spec["last_result"] = res
        outs, auxes = [], []
        for readout, pop in spec["readouts"]:
            vals, aux = read(results, readout, pop, spec["t_silent"],
                             spec.get("silent_slope", 0.0))
            outs.append(torch.from_numpy(vals))
            auxes.append(aux)
        ctx.spec = spec
        ctx.results = results
        ctx.auxes = auxes
        return tuple(outs)

    @staticmethod
    def backward(ctx, *grad_outputs):
        spec = ctx.spec
        net: Network = spec["network"]
        n_proj = len(net.projections)
        gos = [None if go is None else go.detach().cpu().numpy() for go in grad_outputs]
        terms = [[(readout, pop, aux[b], go[b])
                  for (readout, pop), aux, go in zip(spec["readouts"], ctx.auxes, gos)
                  if go is not None] for b in range(len(ctx.results))]
        gw, gd, _, _ = batch_backward(ctx.results, terms)
        grads = [torch.from_numpy(g) for g in gw]
        if spec["learn_delays"]:
            grads += [torch.from_numpy(g) for g in gd]
        return (None, *grads)


def eventprop(network: Network, spikes: Sequence[Spikes], t_max: float,
              weights: Sequence[torch.Tensor], delays: Sequence[torch.Tensor] | None = None,
              readouts: Sequence[tuple[str, object]] = (("first_spike", "output"),),
              t_silent: float | None = None, max_events: int = DEFAULT_MAX_EVENTS,
              silent_slope: float = 0.0):
    """Functional form: readouts of ``network`` with the given parameter tensors.

    Parameters
    ----------
    network : Network — structure and neuron parameters (its weights/delays are overwritten)
    spikes : sequence of Spikes — the batch
    t_max : float, ms
    weights : one float64 tensor per projection, shape (n_pre, n_post)
    delays : one float64 tensor per projection (ms), or None to keep the network's delays
    readouts : sequence of ``(readout, pop)``: ``"first_spike"`` (ms; silent neurons give
        ``t_silent``, default ``t_max``, with zero gradient), ``"max_voltage"`` (a population
        that never spikes), ``"silent_max_voltage"`` (max of V of the neurons that did not
        spike, ``nan`` for those that did) or ``"dead_max_voltage"`` (the same for neurons
        that spiked on no sample of the batch); see :func:`eventgrad.gradients.read`
    Returns a tuple of tensors, one per readout, each of shape ``(batch, pop.size)``.
    """
    spec = {"network": network, "spikes": list(spikes), "t_max": float(t_max),
            "readouts": [tuple(r) for r in readouts], "t_silent": t_silent,
            "silent_slope": float(silent_slope),
            "learn_delays": delays is not None, "max_events": max_events}
    params = list(weights) + (list(delays) if delays is not None else [])
    return EventPropFunction.apply(spec, *params)


class SpikingNetwork(nn.Module):
    """An eventgrad network as a torch module with exact (EventProp) gradients.

    Parameters
    ----------
    network : Network
        Structure, neuron parameters and initial weights/delays (copied; the module's
        ``network`` attribute holds the copy and is kept in sync with the parameters).
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

    Attributes
    ----------
    weights : nn.ParameterList — one (n_pre, n_post) float64 tensor per projection
    delays : nn.ParameterList or None — ms
    last_result : the BatchResult of the latest forward pass (spikes, diagnostics)
    """

    def __init__(self, network: Network, t_max: float, readout="first_spike", pop="output",
                 learn_delays: bool = False, t_silent: float | None = None,
                 silent_slope: float = 0.0,
                 max_events: int = DEFAULT_MAX_EVENTS) -> None:
        super().__init__()
        self.network = network.copy()
        self.t_max = float(t_max)
        if isinstance(readout, str):
            self.readouts = [(readout, pop)]
        else:
            self.readouts = [tuple(r) for r in readout]
        for r, p in self.readouts:
            if r not in ("first_spike", "max_voltage"):
                raise ValueError(f"readout must be 'first_spike' or 'max_voltage', got {r!r}")
            self.network.population(p)
        self.t_silent = t_silent
        if not (silent_slope >= 0.0 and np.isfinite(silent_slope)):
            raise ValueError(f"silent_slope must be finite and >= 0, got {silent_slope!r}")
        self.silent_slope = float(silent_slope)
        self.max_events = max_events
        self.weights = nn.ParameterList(
            [nn.Parameter(torch.from_numpy(w.copy())) for w in self.network.get_weights()])
        self.delays = (nn.ParameterList(
            [nn.Parameter(torch.from_numpy(d.copy())) for d in self.network.get_delays()])
            if learn_delays else None)
        self.last_result = None

    def forward(self, spikes):
        """Readouts for a batch (a Spikes or a sequence of them): a tensor of shape
        ``(batch, pop.size)``, or a tuple of them for several readouts."""
        batch = [spikes] if isinstance(spikes, Spikes) else list(spikes)
        spec = {"network": self.network, "spikes": batch, "t_max": self.t_max,
                "readouts": self.readouts, "t_silent": self.t_silent,
                "silent_slope": self.silent_slope,
                "learn_delays": self.delays is not None, "max_events": self.max_events}
        params = list(self.weights) + (list(self.delays) if self.delays is not None else [])
        outs = EventPropFunction.apply(spec, *params)
        self.last_result = spec.get("last_result")
        return outs[0] if len(outs) == 1 else outs

    @torch.no_grad()
    def clamp_delays_(self, min_delay: float = 0.0) -> None:
        """Project the delay parameters onto ``>= min_delay`` (ms) in place."""
        if self.delays is not None:
            for d in self.delays:
                d.clamp_(min=min_delay)

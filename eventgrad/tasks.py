"""Small, fully specified tasks: inputs, labels, a network with seeded initial weights, a loss.

Units: time in ms, weights dimensionless (a weight ``w`` is the jump ``I += w`` of the
synaptic current; the threshold is 1).

Temporal XOR (Neftci, Mostafa & Zenke 2019, Fig. 3)
----------------------------------------------------
Two input neurons each emit exactly one spike, either *early* (at ``early`` ms) or *late* (at
``late`` ms). The label is ``XOR(input 0 is late, input 1 is late)``:

=========  =========  =====
input 0    input 1    label
=========  =========  =====
early      early      0
early      late       1
late       early      1
late       late       0
=========  =========  =====

The class is the output neuron that spikes first
(:class:`~eventgrad.losses.FirstSpikeCrossEntropy`).

**The bias input.** With only the two data inputs, the pattern (late, late) is the pattern
(early, early) shifted in time by ``late - early``; a network of LIF neurons started at rest is
time-invariant, so it answers both with the same class, shifted. That happens to be consistent
with XOR, but the network has no reference time, and in trials it trained poorly. So the tasks
add a third input neuron, a *bias* that spikes once at 0 ms in every pattern (as EventProp's
Yin-Yang set-up does): input 2 is the bias. ``bias=False`` removes it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .losses import FirstSpikeCrossEntropy, Loss
from .network import Network
from .neuron import LIF
from .simulate import simulate
from .spikes import Spikes

__all__ = ["Task", "temporal_xor", "xor_2_2_2"]


@dataclass
class Task:
    """A classification (or regression) task on a fixed set of input patterns.

    Attributes
    ----------
    name : str
    inputs : list of Spikes — one input pattern per sample (times in ms)
    labels : ndarray, shape (n_samples,) — class labels (int), or targets for regression losses
    network : Network — structure, neuron parameters and the initial weights
    loss : Loss — the loss the task is trained and evaluated with
    t_max : float, ms — simulation window
    n_classes : int or None — number of classes (None for a regression task)
    """

    name: str
    inputs: list[Spikes]
    labels: np.ndarray
    network: Network
    loss: Loss
    t_max: float
    n_classes: int | None

    def predict(self, network: Network | None = None) -> np.ndarray:
        """Predicted class per sample with the event engine (the earliest output neuron for a
        first-spike loss; a sample whose outputs are all silent is predicted as -1)."""
        net = self.network if network is None else network
        res = simulate(net, self.inputs, self.t_max)
        pop = self.loss.pop
        if self.loss.readout == "first_spike":
            t = res.first_spike_times(pop)
            return np.where(np.all(np.isinf(t), axis=1), -1, np.argmin(t, axis=1))
        from .readout import max_voltage
        return np.stack([max_voltage(r, pop).values for r in res]).argmax(axis=1)

    def accuracy(self, network: Network | None = None) -> float:
        """Fraction of samples classified correctly (event engine)."""
        return float(np.mean(self.predict(network) == self.labels))


def _xor_patterns(early: float, late: float, bias: bool) -> tuple[list[Spikes], np.ndarray]:
    inputs, labels = [], []
    for a in (0, 1):
        for b in (0, 1):
            times = [late if a else early, late if b else early] + ([0.0] if bias else [])
            inputs.append(Spikes(times, np.arange(len(times)), n_neurons=len(times)))
            labels.append(a ^ b)
    return inputs, np.array(labels, dtype=np.int64)


def _active(net: Network, inputs: list[Spikes], t_max: float) -> bool:
    res = simulate(net, inputs, t_max)
    outputs_spike = np.all(np.isfinite(res.first_spike_times("output")))
    hidden_used = np.all(res.spike_counts("hidden").sum(axis=0) > 0)
    return bool(outputs_spike and hidden_used)


def temporal_xor(seed: int = 0, early: float = 0.0, late: float = 6.0, tau_mem: float = 20.0,
                 tau_syn: float = 5.0, n_hidden: int = 4, bias: bool = True,
                 t_max: float = 40.0, max_draws: int = 1000) -> Task:
    """The temporal XOR task on a (2 + bias)-``n_hidden``-2 LIF network.

    Parameters
    ----------
    seed : int — seeds the initial weights (deterministic)
    early, late : float, ms — the two spike times an input can take (``0 <= early < late``)
    tau_mem, tau_syn : float, ms — time constants of all LIF neurons (threshold 1, reset to 0,
        no refractory period, no delays)
    n_hidden : int — hidden neurons
    bias : bool — add input 2, spiking at 0 ms in every pattern (see the module docs)
    t_max : float, ms — simulation window (default 40 ms: two membrane time constants)
    max_draws : int — how many weight draws to try (see below)

    Samples: the four patterns in the order (early, early), (early, late), (late, early),
    (late, late) of (input 0, input 1); labels ``[0, 1, 1, 0]``.

    Initial weights: with ``k_pk`` the peak of the PSP of a unit weight (0.157 for 20/5 ms),
    input->hidden weights are drawn from ``N(1.5, 0.75) / (n_in k_pk)`` and hidden->output
    weights from ``N(1.5, 0.75) / (n_hidden k_pk)``: all inputs of a neuron arriving together
    with mean weights peak at 1.5 thresholds. Draws are repeated from the same generator
    (``numpy.random.default_rng(seed)``) until both output neurons spike for all four patterns
    and every hidden neuron spikes for at least one, so that the loss and every weight's exact
    gradient depend on the weights (a silent neuron's inputs have zero exact gradient).
    Deterministic; raises ``RuntimeError`` if no draw in ``max_draws`` qualifies.

    Loss: :class:`~eventgrad.losses.FirstSpikeCrossEntropy` with its defaults (tau0 0.5 ms,
    tau1 6.4 ms, alpha 3e-3); a silent output neuron counts as spiking at ``t_max``.
    """
    early, late = float(early), float(late)
    if not (0.0 <= early < late):
        raise ValueError(f"need 0 <= early < late (ms), got early={early}, late={late}")
    if late >= t_max:
        raise ValueError(f"late={late} ms must be < t_max={t_max} ms")
    nrn = LIF(tau_mem=tau_mem, tau_syn=tau_syn)
    inputs, labels = _xor_patterns(early, late, bias)
    n_in = 3 if bias else 2
    k_pk = float(nrn.kernel(nrn.peak_time(0.0, 1.0)))
    rng = np.random.default_rng(seed)
    for _ in range(max_draws):
        w1 = rng.normal(1.5, 0.75, (n_in, n_hidden)) / (n_in * k_pk)
        w2 = rng.normal(1.5, 0.75, (n_hidden, 2)) / (n_hidden * k_pk)
        net = Network.feedforward([n_in, n_hidden, 2], nrn, weights=[w1, w2])
        if _active(net, inputs, t_max):
            break
    else:
        raise RuntimeError(f"temporal_xor: no active initial network in {max_draws} draws "
                           f"(seed={seed})")
    name = f"temporal_xor 2{'+bias' if bias else ''}-{n_hidden}-2"
    return Task(name, inputs, labels, net, FirstSpikeCrossEntropy(), float(t_max), 2)


def xor_2_2_2(seed: int = 0, **kwargs) -> Task:
    """The temporal XOR task on a 2-2-2 network (plus the bias input, as in
    :func:`temporal_xor`, whose keyword arguments are accepted): the small network of the
    cross-check figure (``eventgrad figure1``)."""
    kwargs.setdefault("n_hidden", 2)
    return temporal_xor(seed, **kwargs)

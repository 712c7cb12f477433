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

Single-spike timing
-------------------
:func:`spike_timing`: each input pattern is one spike per input neuron at a random time; the
output neuron must emit its *first* spike at a target time given per pattern
(:class:`~eventgrad.losses.SpikeTimeMSE` with per-sample targets, ``Task.targets`` of shape
``(n_patterns, 1)``). The default targets are the first-spike times of a seeded *teacher*
network of the same structure, so an exact solution exists: exact (EventProp) gradients can
drive the timing error towards float precision, a time-stepped path only to about its step.

Yin-Yang (Kriener, Göltz & Petrovici 2021)
-------------------------------------------
:func:`yinyang`: points ``(x, y)`` of the Yin-Yang symbol (:mod:`eventgrad.datasets`), three
classes, encoded as one spike per input neuron: ``x, y, 1 - x, 1 - y`` at ``t_late * value`` ms
(``t_late`` = 30 ms by default) plus a bias spike at 0 ms, the encoding of the data set's
reference and of EventProp's Yin-Yang experiment (Wunderlich & Pehle 2021). The task has a
training, a validation and a test split (5000 / 1000 / 1000 samples by default).
"""


from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .._checks import non_negative, positive
from ..event.simulate import simulate
from ..losses import FirstSpikeCrossEntropy, Loss, SpikeTimeMSE
from ..model.network import Network, _check_size
from ..model.neuron import LIF
from ..model.spikes import Spikes

__all__ = ["Task", "temporal_xor", "xor_2_2_2", "spike_timing", "yinyang", "yinyang_inputs"]


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
    targets : ndarray or None — per-sample targets of a regression loss (e.g. first-spike
        times in ms, shape ``(n_samples, n_out)`` for :class:`~eventgrad.losses.SpikeTimeMSE`);
        None for a classification task, whose loss takes ``labels``
    features : ndarray or None — the data before spike encoding, one row per sample (e.g. the
        Yin-Yang points, shape ``(n_samples, 2)``), for plots and analysis
    encode : callable or None — the input encoding: maps ``features``-like rows (an array of
        shape ``(n, d)``) to a list of ``n`` Spikes (e.g. a decision map on a grid of points)
    validation, test : Task or None — held-out splits of the same task (same ``network`` and
        ``loss`` objects, other samples); None where the task has no such split (the temporal
        XOR's four patterns are its own test set)
    """

    name: str
    inputs: list[Spikes]
    labels: np.ndarray
    network: Network
    loss: Loss
    t_max: float
    n_classes: int | None
    targets: np.ndarray | None = None
    features: np.ndarray | None = None
    encode: Callable[[np.ndarray], list[Spikes]] | None = None
    validation: Task | None = None
    test: Task | None = None

    def loss_target(self, index=None) -> np.ndarray:
        """What the loss takes as ``target`` for the samples ``index`` (default: all):
        ``targets[index]`` for a regression task, else ``labels[index]``."""
        t = self.labels if self.targets is None else self.targets
        return t if index is None else t[np.asarray(index)]

    def first_spike_times(self, network: Network | None = None) -> np.ndarray:
        """First-spike times (ms) of the loss's population, shape ``(n_samples, n)``, by the
        event engine (``inf`` where silent)."""
        net = self.network if network is None else network
        return simulate(net, self.inputs, self.t_max).first_spike_times(self.loss.pop)

    def timing_error(self, network: Network | None = None) -> float:
        """Largest ``|t_first - target|`` (ms) over samples and outputs, by the event engine
        (``inf`` if a neuron with a target is silent). Regression tasks only."""
        if self.targets is None:
            raise ValueError(f"{self.name}: timing_error needs a task with targets")
        t = self.first_spike_times(network)
        return float(np.max(np.abs(t - np.broadcast_to(self.targets, t.shape))))

    def predict(self, network: Network | None = None) -> np.ndarray:
        """Predicted class per sample with the event engine (the earliest output neuron for a
        first-spike loss; a sample whose outputs are all silent is predicted as -1)."""
        if self.n_classes is None:
            raise ValueError(f"{self.name} is a regression task: no classes to predict "
                             f"(see timing_error)")
        net = self.network if network is None else network
        res = simulate(net, self.inputs, self.t_max)
        pop = self.loss.pop
        if self.loss.readout == "first_spike":
            t = res.first_spike_times(pop)
            return np.where(np.all(np.isinf(t), axis=1), -1, np.argmin(t, axis=1))
        from ..event.readout import max_voltage
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
    n_hidden = _check_size("n_hidden", n_hidden)
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


_TEACHER_DRAWS = 500  # teacher draws per input set before the input patterns are redrawn


def _timing_weights(rng: np.random.Generator, sizes: list[int], k_pk: float) -> list[np.ndarray]:
    # each neuron's inputs with mean weight, arriving together, peak at 1.5 thresholds
    return [rng.normal(1.5, 0.75, (n_pre, n_post)) / (n_pre * k_pk)
            for n_pre, n_post in itertools.pairwise(sizes)]


def _min_slope_until(res, t_end: float, threshold: float) -> float:
    """Smallest crossing slope ``I - threshold`` of the spikes at or before ``t_end``."""
    rec = res.records
    keep = rec.times <= t_end
    return float(np.min(rec.currents[keep] - threshold)) if keep.any() else np.inf


def spike_timing(seed: int = 0, n_inputs: int = 5, n_patterns: int = 4, targets=None,
                 hidden: int | None = None, tau_mem: float = 20.0, tau_syn: float = 5.0,
                 t_max: float = 50.0, input_window: tuple[float, float] = (0.0, 20.0),
                 target_window: tuple[float, float] = (15.0, 30.0),
                 min_slope: float = 0.25, silent_slope: float = 0.0,
                 max_draws: int = 10000) -> Task:
    """Single-spike timing: the output neuron's first spike must come at a target time.

    Parameters
    ----------
    seed : int — seeds the input patterns, the default targets and the initial weights
        (deterministic; three independent streams of ``numpy.random.SeedSequence(seed)``)
    n_inputs : int — input neurons; each spikes exactly once per pattern
    n_patterns : int — number of input patterns (samples)
    targets : array_like of shape ``(n_patterns,)`` or ``(n_patterns, 1)``, ms, optional —
        target first-spike times; by default those of a teacher network (below)
    hidden : int (>= 1), optional — a hidden layer of this many neurons (``n_inputs-hidden-1``);
        None for a single output neuron (``n_inputs-1``)
    tau_mem, tau_syn : float, ms — time constants of all LIF neurons (threshold 1, reset to 0,
        no refractory period, no delays)
    t_max : float, ms — simulation window (default 50 ms)
    input_window : (lo, hi), ms — input spike times are uniform in ``[lo, hi]`` (default 0-20)
    target_window : (lo, hi), ms — where the default targets lie (default 15-30)
    min_slope : float — every spike of the teacher and of the initial network up to the
        output's first spike must cross the threshold with ``I - threshold >= min_slope``
        (``tau_mem dV/dt``; default 0.25): no near-grazing spike, whose time would jump (e.g.
        to "silent") under a small weight change
    silent_slope : float, ms per unit voltage — the loss's silent-neuron rule (see
        :mod:`eventgrad.losses`): a silent output reads ``t_max + silent_slope (threshold -
        V_max)``; the default 0 gives it a zero gradient, > 0 pushes it back to firing
    max_draws : int — weight draws tried for the teacher (in all) and for the initial network

    Inputs: pattern ``p`` is one spike of each input neuron ``i`` at ``U(input_window)`` ms.
    If no teacher (below) is found for a set of patterns in 500 draws (when all of a pattern's
    inputs come early, a first spike inside the target window needs a grazing crossing), the
    patterns are redrawn from the same stream; with ``targets`` given, the first set is used.

    Default targets (reachable by construction): teacher weights of the same structure are
    drawn (each neuron's weights ``N(1.5, 0.75) / (n_pre k_pk)``, ``k_pk`` the peak of a unit
    PSP, as in :func:`temporal_xor`) until the teacher's output fires for every pattern with
    its first spike inside ``target_window`` (and, with a hidden layer, every hidden neuron
    spikes for at least one pattern; and no spike grazes, see ``min_slope``); its first-spike
    times are the targets. The student can
    therefore match them exactly (e.g. by becoming the teacher).

    Initial weights: drawn from the same distribution until the output fires for every pattern
    (and every hidden neuron spikes for some pattern; no spike grazes), so that every target sees a
    spike time with a nonzero exact gradient. Raises ``RuntimeError`` if ``max_draws`` draws do not
    qualify.

    Loss: :class:`~eventgrad.losses.SpikeTimeMSE` on the population "output" with the targets
    passed per sample at call time (``Task.targets``, shape ``(n_patterns, 1)``, also in
    ``Task.labels``); a silent output counts as spiking at ``t_max`` (plus the
    ``silent_slope`` term).
    """
    if hidden is not None:
        hidden = _check_size("hidden", hidden)
    n_inputs, n_patterns = int(n_inputs), int(n_patterns)
    if n_inputs < 1 or n_patterns < 1:
        raise ValueError(f"need n_inputs >= 1 and n_patterns >= 1, got {n_inputs}, {n_patterns}")
    lo, hi = map(float, input_window)
    tlo, thi = map(float, target_window)
    if not (0.0 <= lo <= hi < t_max):
        raise ValueError(f"input_window must satisfy 0 <= lo <= hi < t_max, got {input_window}")
    if not (0.0 <= tlo <= thi <= t_max):
        raise ValueError(f"target_window must satisfy 0 <= lo <= hi <= t_max, got "
                         f"{target_window}")
    nrn = LIF(tau_mem=tau_mem, tau_syn=tau_syn)
    k_pk = float(nrn.kernel(nrn.peak_time(0.0, 1.0)))
    sizes = [n_inputs] + ([int(hidden)] if hidden else []) + [1]
    s_in, s_teacher, s_init = (np.random.default_rng(s)
                               for s in np.random.SeedSequence(seed).spawn(3))

    def draw(rng, inputs, accept, n_draws):
        for _ in range(n_draws):
            net = Network.feedforward(sizes, nrn, weights=_timing_weights(rng, sizes, k_pk))
            res = simulate(net, inputs, t_max)
            t = res.first_spike_times("output")[:, 0]
            hidden_ok = (not hidden) or bool(np.all(res.spike_counts("hidden").sum(axis=0) > 0))
            slope_ok = all(_min_slope_until(r, tb, nrn.threshold) >= min_slope
                           for r, tb in zip(res, t))
            if hidden_ok and slope_ok and np.all(np.isfinite(t)) and accept(t):
                return net, t
        return None, None

    def patterns():
        X = s_in.uniform(lo, hi, (n_patterns, n_inputs))
        return [Spikes(x, np.arange(n_inputs), n_neurons=n_inputs) for x in X]

    if targets is None:
        def in_window(t):
            return bool(np.all((t >= tlo) & (t <= thi)))

        for _ in range(max(1, max_draws // _TEACHER_DRAWS)):
            inputs = patterns()
            teacher, t_teacher = draw(s_teacher, inputs, in_window, _TEACHER_DRAWS)
            if teacher is not None:
                break
        else:
            raise RuntimeError(f"spike_timing: no teacher network with targets in "
                               f"{target_window} ms in {max_draws} draws (seed={seed})")
        tg = t_teacher[:, None].copy()
    else:
        inputs = patterns()
        tg = np.asarray(targets, dtype=np.float64).reshape(-1)
        if tg.shape[0] != n_patterns:
            raise ValueError(f"targets must have {n_patterns} entries, got {tg.shape[0]}")
        if not np.all(np.isfinite(tg)) or np.any(tg < 0) or np.any(tg > t_max):
            raise ValueError(f"targets must be finite and in [0, t_max={t_max}] ms, got {tg}")
        tg = tg[:, None].copy()
    net, _ = draw(s_init, inputs, lambda t: True, max_draws)
    if net is None:
        raise RuntimeError(f"spike_timing: no initial network whose output fires for every "
                           f"pattern in {max_draws} draws (seed={seed})")
    name = f"spike_timing {'-'.join(map(str, sizes))}"
    return Task(name, inputs, tg.copy(), net, SpikeTimeMSE(silent_slope=silent_slope),
                float(t_max), None, targets=tg)


# Peak of the unit-weight PSP for tau_mem 20 ms, tau_syn 5 ms: the neuron of EventProp's
# published Yin-Yang initialisation; other time constants rescale the initial weights by
# K_REF / (their peak), so a weight keeps the peak voltage it causes.
_YY_K_REF = float(LIF(20.0, 5.0).kernel(LIF(20.0, 5.0).peak_time(0.0, 1.0)))


def yinyang_inputs(points, t_late: float = 30.0, bias_time: float = 0.0,
                   repeat: int = 1) -> list[Spikes]:
    """Spike encoding of Yin-Yang points: one :class:`Spikes` per point.

    Point ``(x, y)`` in the unit square becomes spikes of input neurons ``0..3`` at
    ``t_late * (x, y, 1 - x, 1 - y)`` ms and of the bias neuron 4 at ``bias_time`` ms; with
    ``repeat > 1`` each of the five spikes is emitted by ``repeat`` neurons (neuron
    ``f * repeat + r`` for feature ``f``), e.g. the 25 inputs of a 25-100-3 network.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"points must have shape (n, 2), got {pts.shape}")
    if not np.all(np.isfinite(pts)) or np.any(pts < 0) or np.any(pts > 1):
        raise ValueError("points must be finite and in [0, 1]")
    positive(t_late, "t_late", "ms")
    non_negative(bias_time, "bias_time", "ms")
    if int(repeat) != repeat or repeat < 1:
        raise ValueError(f"repeat must be an integer >= 1, got {repeat!r}")
    repeat = int(repeat)
    x, y = pts[:, 0], pts[:, 1]
    T = np.stack([t_late * x, t_late * y, t_late * (1 - x), t_late * (1 - y),
                  np.full(len(pts), float(bias_time))], axis=1)
    ids = np.arange(5 * repeat)
    return [Spikes(np.repeat(row, repeat), ids, n_neurons=5 * repeat) for row in T]


def yinyang(seed: int = 0, hidden: int = 200, tau_mem: float = 20.0, tau_syn: float = 5.0,
            n_train: int = 5000, n_validation: int = 1000, n_test: int = 1000,
            data_seed: int | None = None, t_late: float = 30.0, t_max: float = 60.0,
            silent_slope: float = 5.0, generator: str = "eventgrad") -> Task:
    """Yin-Yang classification on a 5-``hidden``-3 LIF network; EventProp's configuration.

    Parameters
    ----------
    seed : int — seeds the initial weights
    hidden : int — hidden neurons (published: 200)
    tau_mem, tau_syn : float, ms — time constants of all LIF neurons (published: 20, 5;
        threshold 1, reset to 0, no refractory period, no delays)
    n_train, n_validation, n_test : int — sizes of the three splits (5000 / 1000 / 1000)
    data_seed : int or None — seeds the data, separately from ``seed``, so that runs with
        different ``seed`` see the same points (as a benchmark should). With
        ``generator="eventgrad"`` the three splits are independent draws (streams of
        ``numpy.random.SeedSequence(data_seed)``; None means 0). With ``generator="kriener"``
        it must be None: the splits are the reference generator's with the seeds of its README
        (:data:`eventgrad.datasets.KRIENER_SEEDS`: train 42, validation 41, test 40)
    generator : ``"eventgrad"`` (default: :func:`eventgrad.datasets.yinyang`) or ``"kriener"``
        (:func:`eventgrad.datasets.yinyang_reference`: the reference generator's random
        sequence and seeds; the first ``n_train`` / ``n_validation`` / ``n_test`` samples of
        each split)
    t_late : float, ms — encoding window (:func:`yinyang_inputs`)
    t_max : float, ms — simulation window (default 60 ms: the latest input comes at 30 ms)
    silent_slope : float, ms per unit voltage — the loss's silent-neuron rule (see
        :mod:`eventgrad.losses`). The default 5 ms keeps output neurons from falling silent
        for good: with 0 a silent output has zero exact gradient, and in trials the accuracy
        decayed as label neurons fell silent (the runs: ``docs/performance.md``)

    Initial weights (EventProp's published initialisation): input->hidden ``N(1.5, 0.78)``,
    hidden->output ``N(0.93, 0.1)``, both multiplied by ``k_ref / k_pk``, the peak of a unit
    PSP at 20/5 ms over the peak at (``tau_mem``, ``tau_syn``) (1 for the defaults).

    Loss: :class:`~eventgrad.losses.FirstSpikeCrossEntropy` with tau0 0.5 ms, tau1 6.4 ms,
    alpha 3e-3 (EventProp's); the class is the output neuron that spikes first.

    Returns the training split as a :class:`Task` with ``validation`` and ``test`` attached
    (each a Task over the same network and loss); ``features`` hold the points. Train with
    :func:`eventgrad.training.train` (Adam 5e-3, batch 32, lr x 0.95 per epoch: the
    ``eventgrad yinyang`` defaults, which add the dead-neuron rule ``revive=0.1``: with the
    published initialisation 82 of 200 hidden neurons never spike at the start and ~160 after
    100 epochs without it, since a dead neuron's exact gradient is zero).
    """
    from . import datasets

    if generator == "eventgrad":
        data_seed = 0 if data_seed is None else data_seed
        if int(data_seed) != data_seed or data_seed < 0:
            raise ValueError(f"data_seed must be a non-negative integer, got {data_seed!r}")
        s_tr, s_va, s_te = (int(x.generate_state(1)[0])
                            for x in np.random.SeedSequence(int(data_seed)).spawn(3))
        draw = datasets.yinyang
    elif generator == "kriener":
        if data_seed is not None:
            raise ValueError(f"data_seed must be None with generator='kriener' (its splits "
                             f"have the fixed seeds {datasets.KRIENER_SEEDS}), got "
                             f"{data_seed!r}")
        s_tr, s_va, s_te = (datasets.KRIENER_SEEDS[k] for k in ("train", "validation", "test"))
        draw = datasets.yinyang_reference
    else:
        raise ValueError(f"generator must be 'eventgrad' or 'kriener', got {generator!r}")
    for name, n in (("n_train", n_train), ("n_validation", n_validation), ("n_test", n_test)):
        if int(n) != n or n < (1 if name == "n_train" else 0):
            raise ValueError(f"{name} must be an integer >= {1 if name == 'n_train' else 0}, "
                             f"got {n!r}")
    if int(hidden) != hidden or hidden < 1:
        raise ValueError(f"hidden must be an integer >= 1, got {hidden!r}")
    if not t_late < t_max:
        raise ValueError(f"t_late={t_late} ms must be < t_max={t_max} ms")
    nrn = LIF(tau_mem=tau_mem, tau_syn=tau_syn)
    k_pk = float(nrn.kernel(nrn.peak_time(0.0, 1.0)))
    rng = np.random.default_rng(seed)
    gain = _YY_K_REF / k_pk
    w1 = rng.normal(1.5, 0.78, (5, int(hidden))) * gain
    w2 = rng.normal(0.93, 0.1, (int(hidden), 3)) * gain
    net = Network.feedforward([5, int(hidden), 3], nrn, weights=[w1, w2])
    loss = FirstSpikeCrossEntropy(silent_slope=silent_slope)
    name = f"yinyang 5-{int(hidden)}-3"
    encode = functools.partial(yinyang_inputs, t_late=float(t_late))

    def split(n, s, suffix):
        pts, lab = draw(int(n), seed=s)
        return Task(name + suffix, encode(pts), lab, net, loss, float(t_max), 3,
                    features=pts, encode=encode)

    task = split(n_train, s_tr, "")
    task.validation = split(n_validation, s_va, " (validation)") if n_validation else None
    task.test = split(n_test, s_te, " (test)") if n_test else None
    return task

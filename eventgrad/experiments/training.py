"""Training a task's network with Adam, by exact (EventProp) or surrogate gradients.

>>> from eventgrad import tasks, training
>>> task = tasks.temporal_xor(seed=0)
>>> result = training.train(task, method="eventprop", epochs=100, lr=0.2, lr_decay=0.95,
...                         clip_grad_norm=0.05, progress=False)   # `eventgrad xor` defaults
>>> result.summary["accuracy"]                      # exact event engine
1.0
>>> training.save("xor_run", result)                # xor_run.npz + xor_run.json
>>> net, config = training.load("xor_run")

Two gradient paths, one optimizer
---------------------------------
The parameters are the network's weights as float64 torch tensors (one per projection),
optimized by :class:`torch.optim.Adam` (fused where torch has it: :func:`adam`) with learning
rate ``lr`` multiplied by ``lr_decay`` after every epoch
(:class:`torch.optim.lr_scheduler.ExponentialLR`).

* ``method="eventprop"``: the forward pass is the exact event engine and the gradient is
  EventProp (:func:`eventgrad.torch.eventprop`), i.e. the exact gradient of the exact loss.
* ``method="surrogate"``: the forward pass is the time-stepped path
  (:func:`eventgrad.discrete.run`, step ``dt``, any of its options via ``**discrete_options``:
  ``surrogate``, ``reset``, ``detach_reset``, ``update``, ``inputs``, ``interpolate``) and the
  gradient is backpropagation through time with a surrogate spike derivative; the readout is
  :func:`eventgrad.discrete.readout_tensor`.

Both use the task's loss with the task's targets (labels, or target times).

Evaluation is always exact
--------------------------
Whatever trained the weights, every reported number — the per-epoch ``exact_loss``,
``train_accuracy`` / ``timing_error_ms``, and the summary — comes from the exact event engine
(:func:`eventgrad.simulate`) run on the trained weights. ``loss`` in the history is the loss the
method itself saw while training (the discrete path's loss for ``"surrogate"``).

Newton refinement (spike-time tasks)
------------------------------------
For a task with per-sample target times (:func:`eventgrad.tasks.spike_timing`), the residuals
``r = t_first - target`` are smooth functions of the weights as long as no spike appears or
disappears. Adam, whose steps have a fixed size ``lr``, crawls along the ill-conditioned valley
of such a problem (after 100-300 epochs the timing error is still ~0.02-1 ms). ``newton_steps >
0`` finishes training with up to that many Levenberg-Marquardt / Gauss-Newton steps
(:func:`newton_refine`), each method with its *own* Jacobian: EventProp's exact one (one
backward pass per residual), which converges quadratically to a zero of the exact residuals
(timing error at float64 precision, ~1e-15 ms), or the time-stepped path's, which converges to
a zero of the *discrete* model's residuals; the exact engine then shows that path's floor.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
import zipfile
import zlib
from dataclasses import dataclass, field

import numpy as np
import torch

from .._checks import non_negative, positive
from .._json import to_json
from ..discrete.surrogates import Surrogate
from ..event.gradients import readout_values
from ..event.simulate import DEFAULT_MAX_EVENTS, simulate
from ..losses import dead_neuron_penalty
from ..model.network import InputPopulation, Network
from ..model.neuron import LIF
from ..torch import torch_threads as torch_threads_set
from .provenance import environment

__all__ = ["TrainResult", "train", "EventPropStep", "adam", "evaluate", "newton_refine", "save",
           "load", "network_to_dict", "network_from_dict"]

METHODS = ("eventprop", "surrogate")
EVALUATION = "exact event engine (eventgrad.simulate), for both training methods"
_FORMAT = "eventgrad.training/1"


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes
    ----------
    history : list of dict
        One entry per epoch; entry 0 is the initial network (before any step). Keys:
        ``epoch``; ``loss`` (mean over the epoch's batches of the loss the method trained on;
        for entry 0 and Newton steps, the exact loss); ``exact_loss`` (event engine, all
        samples, after the epoch); ``train_accuracy`` (classification tasks) or
        ``timing_error_ms`` (tasks with target times: max over samples of
        ``|t_first - target|``), both by the event engine; with a validation split (e.g.
        Yin-Yang) ``validation_loss`` and ``validation_accuracy`` (event engine); ``lr``;
        ``train_seconds`` (wall time of the epoch's gradient steps, without the evaluations);
        ``seconds`` (wall time since training started); ``phase`` (``"init"``, ``"adam"`` or
        ``"newton"``). Newton entries also carry ``residual_ms`` (the method's own largest
        residual), ``step_norm``, ``mu``.
    weights : list of ndarray — the trained weights, aligned with ``network.projections``
    network : Network — a copy of the task's network with the trained weights
    config : dict — the settings of the run (JSON-ready)
    summary : dict — final evaluation by the event engine on the training samples (see
        :func:`evaluate`), plus ``method``, ``epochs``, ``seconds``, ``seconds_per_epoch``
        (mean ``train_seconds``), ``initial`` and ``after_adam`` (the metrics of history
        entries 0 and ``epochs``) and ``newton_steps_taken``. Classification tasks:
        ``train_accuracy``; with held-out splits ``validation`` / ``test`` (dicts of ``loss``,
        ``accuracy``) and ``validation_accuracy`` / ``test_accuracy``. ``accuracy`` is the
        test accuracy when the task has a test split, else the training accuracy
        (``accuracy_split`` says which). With a validation split, ``best_validation``: the
        Adam epoch with the highest validation accuracy (the first such), that accuracy and
        the test accuracy of that epoch's weights (the test split is evaluated once more, for
        that network only; the selection never looks at it)
    best_network : Network or None — with a validation split, a copy of the network after
        the epoch with the highest validation accuracy (see ``summary["best_validation"]``)
    """

    history: list[dict]
    weights: list[np.ndarray]
    network: Network
    config: dict
    summary: dict = field(default_factory=dict)
    best_network: Network | None = None


# ------------------------------------------------------------------------------ evaluation
def evaluate(task, network: Network | None = None) -> dict:
    """Exact evaluation of ``network`` (default: the task's) on all of the task's samples.

    Returns a dict with ``loss`` (the task's loss on the event engine's readout),
    ``evaluation`` (the engine used) and, for a classification task, ``accuracy``,
    ``predictions`` (-1 where all outputs are silent) and ``labels``; for a task with target
    times, ``timing_error_ms`` (max over samples and outputs of ``|t_first - target|``, ``inf``
    if an output is silent), ``first_spike_times`` and ``targets`` (ms). First-spike readouts
    also give ``first_spike_times``.
    """
    net = task.network if network is None else network
    res = simulate(net, list(task.inputs), task.t_max)
    vals, ro = readout_values(res, task.loss)
    with torch.no_grad():
        L = float(task.loss(torch.from_numpy(vals), task.loss_target()))
    out = {"evaluation": EVALUATION, "loss": L}
    if task.loss.readout == "first_spike":   # from the readout's first-spike indices
        first = np.full(vals.shape, np.inf)
        has = ro.first >= 0
        first[has] = res.records.times[ro.first[has]]
        out["first_spike_times"] = first
    if task.targets is not None:
        err = np.abs(first - np.broadcast_to(task.targets, first.shape))
        out["timing_error_ms"] = float(np.max(err))
        out["targets"] = np.asarray(task.targets)
    if task.n_classes is not None:       # as Task.predict, without simulating again
        if task.loss.readout == "first_spike":
            pred = np.where(np.all(np.isinf(first), axis=1), -1, np.argmin(first, axis=1))
        else:
            pred = np.argmax(vals, axis=1)
        out["predictions"] = pred
        out["labels"] = np.asarray(task.labels)
        out["accuracy"] = float(np.mean(pred == task.labels))
    return out


def _metric(ev: dict) -> dict:
    if "accuracy" in ev:
        return {"train_accuracy": ev["accuracy"]}
    if "timing_error_ms" in ev:
        return {"timing_error_ms": ev["timing_error_ms"]}
    return {}


def _validation(task, network: Network) -> dict:
    """Exact loss and metric of ``network`` on the task's validation split (if any)."""
    if getattr(task, "validation", None) is None:
        return {}
    ev = evaluate(task.validation, network)
    out = {"validation_loss": ev["loss"]}
    if "accuracy" in ev:
        out["validation_accuracy"] = ev["accuracy"]
    return out


def _postfix(entry: dict) -> dict:
    out = {"loss": f"{entry['loss']:.4g}"}
    if "train_accuracy" in entry:
        out["acc"] = f"{entry['train_accuracy']:.3f}"
    if "validation_accuracy" in entry:
        out["val_acc"] = f"{entry['validation_accuracy']:.3f}"
    if "timing_error_ms" in entry:
        out["err_ms"] = f"{entry['timing_error_ms']:.3g}"
    return out


# ------------------------------------------------------------------------------ training
class EventPropStep:
    """One exact gradient evaluation of :func:`train`'s EventProp path.

    ``step(batch, target)`` runs the event engine on the batch with the current values of
    ``params`` (one float64 tensor per projection), reads the loss's readout (and, with
    ``revive > 0``, the dead-neuron readout of every other population), evaluates the loss and
    its derivative, runs the adjoint and stores dL/dw into each tensor's ``.grad``. Returns
    ``(loss, loss + revive * dead-neuron penalty)`` as floats. The same computation as the
    torch bridge (:func:`eventgrad.torch.eventprop`) with the loss on top, without building a
    torch graph for it.
    """

    def __init__(self, network: Network, loss, t_max: float, params, revive: float = 0.0,
                 engine: str = "fast") -> None:
        from ..torch import _options

        self.network, self.loss, self.params, self.revive = network, loss, list(params), revive
        out_pop = network.population(loss.pop)
        self.revive_pops = [p for p in network.populations if p is not out_pop] \
            if revive > 0 else []
        readouts = ((loss.readout, loss.pop),) + tuple(
            ("dead_max_voltage", p.index) for p in self.revive_pops)
        self.opts = _options(network, t_max, readouts, loss.t_silent,
                             getattr(loss, "silent_slope", 0.0), False, DEFAULT_MAX_EVENTS,
                             engine)

    def __call__(self, batch, target) -> tuple[float, float]:
        from ..event.gradients import backward_batch
        from ..event.simulate import _validate_inputs
        from ..losses import dead_neuron_penalty_grad
        from ..torch import run_forward

        batch, _ = _validate_inputs(self.network, list(batch))
        fwd = run_forward(self.opts, batch, self.params)
        L, dv = self.loss.value_and_grad(fwd.reads[0].values, target)
        terms = [(fwd.reads[0], dv)]
        L_step = L
        for p, r in zip(self.revive_pops, fwd.reads[1:]):
            value, dpen = dead_neuron_penalty_grad(r.values, p.neuron.threshold)
            L_step += self.revive * value
            terms.append((r, self.revive * dpen))
        out = backward_batch(fwd.result, terms, self.opts.engine)
        for t, g in zip(self.params, fwd.result.plan.split(out.weights)):
            t.grad = torch.from_numpy(g.copy())
        return float(L), float(L_step)


def adam(params, lr: float) -> torch.optim.Adam:
    """:class:`torch.optim.Adam` (betas 0.9 / 0.999, eps 1e-8) on ``params``, in torch's fused
    form where the installed torch has it for the CPU (one kernel per tensor instead of about
    ten, so less overhead per step: ``docs/performance.md``; the same algorithm, results equal
    to rounding)."""
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):   # a torch without the fused CPU form
        return torch.optim.Adam(params, lr=lr)


def _surrogate_config(options: dict) -> dict:
    out = {}
    for k, v in options.items():
        if isinstance(v, Surrogate):
            out[k] = {"name": v.name, "scale": v.scale}
        elif isinstance(v, torch.dtype):
            out[k] = str(v).replace("torch.", "")
        else:
            out[k] = v
    return out


def _loss_config(loss) -> dict:
    cfg = {"class": type(loss).__name__}
    for k, v in vars(loss).items():
        if k == "targets":
            continue
        cfg[k] = v if isinstance(v, (int, float, str, type(None))) else repr(v)
    return cfg


def _clip_norm(value) -> float | None:
    """``clip_grad_norm`` as :func:`train` uses it: None for no clipping (None or 0), else a
    finite float > 0."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer,
                                                                      np.floating)):
        raise TypeError(f"clip_grad_norm must be None or a number >= 0, got {value!r}")
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"clip_grad_norm must be None or a finite number >= 0 (None or 0: no "
                         f"clipping), got {value!r}")
    return float(value) or None


class _Checkpoint:
    """Saving and resuming :func:`train`'s state (see its ``checkpoint`` and ``resume``)."""

    #: config entries that must match for a resume (the rest, e.g. ``epochs``, may change)
    SAME = ("task", "method", "lr", "batch_size", "seed", "lr_decay", "dt", "discrete_options",
            "clip_grad_norm", "revive", "t_max", "n_samples", "loss")

    def __init__(self, directory: str | None, resume: bool, config: dict) -> None:
        if resume and directory is None:
            raise ValueError("resume=True needs checkpoint=DIR (the directory to resume from)")
        self.path = None if directory is None else os.path.join(directory, "checkpoint.pt")
        self.resume, self.config, self.saved = resume, config, None
        if self.path is not None:
            os.makedirs(directory, exist_ok=True)
            if not os.access(directory, os.W_OK):
                raise ValueError(f"checkpoint: directory {directory!r} is not writable")

    def load(self, params, opt, sched, rng, network_with):
        """Restore the saved state into ``params``, ``opt``, ``sched``, ``rng`` and return
        ``(history, best)`` (``network_with(weights)``: the task's network with those weights,
        for the best epoch); None when not resuming."""
        if not self.resume:
            return None
        try:
            st = torch.load(self.path, weights_only=False)
        except FileNotFoundError:
            raise FileNotFoundError(f"resume: no checkpoint at {self.path}") from None
        except Exception as e:
            raise ValueError(f"resume: {self.path} is not a readable eventgrad checkpoint "
                             f"({type(e).__name__}: {e})") from None
        saved = st["config"]
        diff = [k for k in self.SAME if to_json(saved.get(k)) != to_json(self.config[k])]
        if diff:
            what = ", ".join(f"{k}: saved {saved.get(k)!r}, now {self.config[k]!r}"
                             for k in diff)
            raise ValueError(f"resume: {self.path} was written by a run with other settings "
                             f"({what})")
        with torch.no_grad():
            for p, w in zip(params, st["params"]):
                p.copy_(w)
        opt.load_state_dict(st["opt"])
        sched.load_state_dict(st["sched"])
        rng.bit_generator.state = st["rng"]
        torch.set_rng_state(st["torch_rng"])
        self.saved = st["epoch"]
        b = st["best"]
        return st["history"], None if b is None else (b[0], b[1], network_with(b[2]))

    @contextlib.contextmanager
    def reporting_interrupts(self):
        """On Ctrl-C inside the block (the whole training): say which epoch was saved last,
        then re-raise."""
        try:
            yield
        except KeyboardInterrupt:
            where = (f"epoch {self.saved} is saved in {self.path} (resume with resume=True / "
                     f"--resume)" if self.saved is not None else "nothing was saved "
                     "(no epoch finished, or no checkpoint directory given)")
            print(f"\ninterrupted: {where}", file=sys.stderr)
            raise

    def save(self, epoch, params, opt, sched, rng, history, best) -> None:
        if self.path is None:
            return
        st = {"epoch": epoch, "params": [p.detach().clone() for p in params],
              "opt": opt.state_dict(), "sched": sched.state_dict(),
              "rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
              "history": history, "config": {k: self.config[k] for k in self.SAME},
              "best": None if best is None else (best[0], best[1], best[2].get_weights())}
        tmp = self.path + ".tmp"
        torch.save(st, tmp)
        os.replace(tmp, self.path)
        self.saved = epoch


def train(task, method: str = "eventprop", epochs: int = 100, lr: float = 0.01,
          batch_size: int | None = None, seed: int = 0, dt: float = 0.1, lr_decay: float = 1.0,
          progress: bool = True, clip_grad_norm: float | None = None,
          newton_steps: int = 0, newton_tol: float = 0.0, torch_threads: int | None = 1,
          revive: float = 0.0, checkpoint: str | None = None, resume: bool = False,
          **discrete_options) -> TrainResult:
    """Train ``task.network`` (a copy; the task is not modified) on ``task``'s loss with Adam.

    Parameters
    ----------
    task : eventgrad.tasks.Task
    method : "eventprop" (exact gradients, event engine) or "surrogate" (time-stepped path
        with surrogate gradients); see the module docs
    epochs : int — passes over the samples (each pass: one Adam step per batch)
    lr : float — Adam's learning rate (betas 0.9, 0.999, eps 1e-8)
    batch_size : int or None — samples per step; None (default) for full batch. With mini
        batches the sample order is shuffled every epoch by ``numpy.random.default_rng(seed)``
    seed : int — seeds the batch order (and ``torch.manual_seed``); the initial weights are
        the task's (seeded by the task's constructor)
    dt : float, ms — step of the surrogate path (ignored by EventProp)
    lr_decay : float — the learning rate is multiplied by this after every epoch
    progress : bool — show a tqdm progress bar with loss and accuracy / timing error
    clip_grad_norm : float or None — clip the gradient's total norm to this before each Adam
        step (:func:`torch.nn.utils.clip_grad_norm_`); None or 0 (as ``--clip 0`` of the
        command line; the config records None): no clipping; negative or non-finite:
        ValueError. Exact gradients have a factor ``1/(I - threshold)`` that is huge when a
        spike (dis)appears near grazing; one such gradient fills Adam's first moment and
        carries the weights far for ~10 steps. Clipping keeps such an event from dominating
        (it changes the step, not the gradient's meaning)
    newton_steps : int — at most this many Gauss-Newton steps on the first-spike times after
        the epochs, with the method's own Jacobian (tasks with target times; see
        :func:`newton_refine`); they are appended to the history with ``phase="newton"``
    newton_tol : float, ms — stop the Newton steps once the timing error is at most this
    revive : float — strength of the dead-neuron rule (loss units per unit voltage, >= 0;
        default 0: off): each step adds ``revive * dead_neuron_penalty`` of every population
        other than the loss's (:func:`eventgrad.losses.dead_neuron_penalty`: the neurons silent
        on every sample of the batch are pushed toward threshold where they came closest).
        The term only reaches the input weights of dead neurons (all other neurons' gradients
        are unchanged), so with Adam its size matters little. Exact for EventProp; the
        surrogate path uses its grid maximum. Reported losses do not include it
    torch_threads : int or None — torch intra-op threads while training (restored after);
        the default 1 is fastest for these small tensors; None leaves torch's setting
    checkpoint : str or None — a directory: after every epoch the run's state (weights, Adam
        and learning-rate state, history, best epoch, the batch-order and torch RNG states) is
        written to ``checkpoint/checkpoint.pt`` (atomically: a crash leaves the previous
        one). Ctrl-C during training stops after saying which epoch was saved last
    resume : bool — continue from ``checkpoint/checkpoint.pt`` (the same task, method and
        settings; ValueError otherwise): the run ends bit-identical to one that was not
        interrupted (same machine and software; tested for both methods)
    **discrete_options : passed to :func:`eventgrad.discrete.run` (surrogate path only), e.g.
        ``surrogate=Surrogate("superspike", 10)``, ``reset``, ``detach_reset``, ``update``,
        ``inputs``, ``interpolate``

    Returns
    -------
    TrainResult — history, trained weights and network, config, exact final summary.
    """
    from tqdm.auto import tqdm

    epochs, bs, clip_grad_norm = _checked_options(task, method, epochs, lr, lr_decay, revive,
                                                  clip_grad_norm, batch_size, newton_steps,
                                                  discrete_options)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = task.network.copy()          # working copy; the EventProp path overwrites its weights
    params = [torch.tensor(w, dtype=torch.float64, requires_grad=True)
              for w in net.get_weights()]
    opt = adam(params, lr)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=lr_decay)
    batch_loss = _batch_loss(method, task, net, params, revive, dt, discrete_options)
    config = {
        "task": task.name, "method": method, "epochs": epochs, "lr": lr,
        "batch_size": batch_size, "seed": seed, "lr_decay": lr_decay,
        "dt": dt if method == "surrogate" else None,
        "discrete_options": _surrogate_config(discrete_options) if method == "surrogate"
        else None,
        "newton_steps": newton_steps, "newton_tol": newton_tol,
        "clip_grad_norm": clip_grad_norm, "revive": revive,
        "optimizer": f"torch.optim.Adam(betas=(0.9, 0.999), eps=1e-8, fused="
                     f"{opt.defaults.get('fused')}), ExponentialLR(lr_decay)",
        "t_max": task.t_max, "n_samples": len(task.inputs), "loss": _loss_config(task.loss),
        "evaluation": EVALUATION, "environment": environment(),
    }

    def snapshot() -> Network:
        return _network_with(task, [p.detach().numpy().copy() for p in params])

    ckpt = _Checkpoint(checkpoint, resume, config)
    state = ckpt.load(params, opt, sched, rng, lambda w: _network_with(task, w))
    if state is not None and len(state[0]) - 1 > epochs:
        raise ValueError(f"epochs must be >= the {len(state[0]) - 1} epochs the checkpoint "
                         f"{ckpt.path} holds, got {epochs}")

    with torch_threads_set(torch_threads), ckpt.reporting_interrupts():
        t0 = time.perf_counter()
        if state is None:
            history = [_entry(task, snapshot(), 0, None, lr, 0.0, t0, "init")]
            best = None   # (epoch, validation accuracy, network) of the best epoch so far
        else:
            history, best = state
        bar = tqdm(range(len(history), epochs + 1), desc=f"{method} {task.name}",
                   disable=not progress, leave=True, dynamic_ncols=True)
        for epoch in bar:
            lr_now = opt.param_groups[0]["lr"]
            t_epoch = time.perf_counter()
            losses = _one_epoch(rng, len(task.inputs), bs, batch_loss, params, opt,
                                clip_grad_norm, method)
            sched.step()
            train_seconds = time.perf_counter() - t_epoch
            trained_now = snapshot()
            entry = _entry(task, trained_now, epoch, float(np.mean(losses)), lr_now,
                           train_seconds, t0, "adam")
            history.append(entry)
            if "validation_accuracy" in entry and (
                    best is None or entry["validation_accuracy"] > best[1]):
                best = (epoch, entry["validation_accuracy"], trained_now)
            bar.set_postfix(_postfix(entry), refresh=False)
            ckpt.save(epoch, params, opt, sched, rng, history, best)
        bar.close()
        trained = snapshot()
        if newton_steps:
            trained, steps = newton_refine(task, trained, newton_steps, tol=newton_tol,
                                           method=method, dt=dt, **discrete_options)
            for k, st in enumerate(steps, start=1):
                history.append({"epoch": epochs + k, "loss": st["exact_loss"], **st,
                                "lr": None, "seconds": time.perf_counter() - t0,
                                "phase": "newton"})
        summary = _summary(task, trained, history, method, epochs, time.perf_counter() - t0,
                           best)
        return TrainResult(history, trained.get_weights(), trained, config, summary,
                           None if best is None else best[2])


def _checked_options(task, method, epochs, lr, lr_decay, revive, clip_grad_norm, batch_size,
                     newton_steps, discrete_options) -> tuple[int, int, float | None]:
    """:func:`train`'s options checked before any work: ``(epochs, batch size, clip norm)``
    (the batch size resolved: the whole set for None, at most the set)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    epochs = int(epochs)
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    positive(lr, "lr")
    positive(lr_decay, "lr_decay")
    non_negative(revive, "revive")
    clip = _clip_norm(clip_grad_norm)
    if method == "eventprop" and discrete_options:
        raise ValueError(f"options {sorted(discrete_options)} apply to method='surrogate' only")
    if newton_steps and task.targets is None:
        raise ValueError("newton_steps needs a task with target times (e.g. spike_timing)")
    n = len(task.inputs)
    if batch_size is not None and not (isinstance(batch_size, (int, np.integer))
                                       and batch_size >= 1):
        raise ValueError(f"batch_size must be an integer >= 1 or None, got {batch_size!r}")
    return epochs, n if batch_size is None else min(int(batch_size), n), clip


def _batch_loss(method, task, net, params, revive, dt, discrete_options):
    """``batch_loss(idx) -> (loss, loss + revive * dead-neuron penalty)`` (tensors) of the
    samples ``idx`` with the current ``params``: EventProp stores the exact gradient in the
    tensors' ``.grad`` itself; the surrogate path returns a loss to call ``backward`` on."""
    loss_fn = task.loss
    if method == "eventprop":
        step = EventPropStep(net, loss_fn, task.t_max, params, revive=revive)

        def batch_loss(idx):
            L, L_step = step([task.inputs[i] for i in idx], task.loss_target(idx))
            return torch.tensor(L), torch.tensor(L_step)
        return batch_loss
    from .. import discrete

    out_pop = net.population(loss_fn.pop)
    revive_pops = [p for p in net.populations if p is not out_pop] if revive > 0 else []

    def batch_loss(idx):
        r = discrete.run(net, [task.inputs[i] for i in idx], task.t_max, dt,
                         weights=params, **discrete_options)
        vals = discrete.readout_tensor(r, net, loss_fn)
        L = loss_fn(vals, task.loss_target(idx))
        extra = sum(dead_neuron_penalty(r.vmax[p.index], torch.isinf(r.first[p.index]),
                                        p.neuron.threshold) for p in revive_pops)
        return L, L + revive * extra
    return batch_loss


def _one_epoch(rng, n, bs, batch_loss, params, opt, clip, method) -> list[float]:
    """One pass over the ``n`` samples in batches of ``bs`` (shuffled by ``rng`` unless one
    batch), one Adam step each; returns the batch losses."""
    order = np.arange(n) if bs == n else rng.permutation(n)
    losses = []
    for s in range(0, n, bs):
        opt.zero_grad()
        L, L_step = batch_loss(order[s:s + bs])
        if L_step.requires_grad:
            L_step.backward()
        if L_step.requires_grad or method == "eventprop":   # (EventProp sets .grad)
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(params, clip)
            opt.step()
        losses.append(float(L.detach()))
    return losses


def _network_with(task, weights) -> Network:
    out = task.network.copy()
    out.set_weights(weights)
    return out


def _entry(task, network, epoch, loss, lr, train_seconds, t0, phase) -> dict:
    """A history entry: the exact evaluation of ``network`` (and its validation accuracy);
    ``loss`` the mean batch loss of the epoch (None: the exact loss, at initialisation)."""
    ev = evaluate(task, network)
    return {"epoch": epoch, "loss": ev["loss"] if loss is None else loss,
            "exact_loss": ev["loss"], **_metric(ev), **_validation(task, network), "lr": lr,
            "train_seconds": train_seconds, "seconds": time.perf_counter() - t0,
            "phase": phase}


def _summary(task, trained, history, method, epochs, seconds, best) -> dict:
    """The exact final summary of :class:`TrainResult`: the trained network on the training,
    validation and test sets, the run's timing, the history's start and end, the best epoch."""
    summary = evaluate(task, trained)
    if "accuracy" in summary:
        summary["train_accuracy"] = summary["accuracy"]
        summary["accuracy_split"] = "train"
    for split in ("validation", "test"):
        sub = getattr(task, split, None)
        if sub is not None:
            ev = evaluate(sub, trained)
            summary[split] = {k: v for k, v in ev.items()
                              if k in ("loss", "accuracy", "timing_error_ms")}
            if "accuracy" in ev:
                summary[f"{split}_accuracy"] = ev["accuracy"]
    if "test_accuracy" in summary:
        summary["accuracy"] = summary["test_accuracy"]
        summary["accuracy_split"] = "test"
    train_s = [h["train_seconds"] for h in history if h["phase"] == "adam"]
    summary["seconds_per_epoch"] = float(np.mean(train_s)) if train_s else None
    keys = ("exact_loss", "train_accuracy", "timing_error_ms", "validation_accuracy")
    summary.update({"method": method, "epochs": epochs, "seconds": seconds,
                    "initial": {k: history[0][k] for k in keys if k in history[0]},
                    "after_adam": {k: history[epochs][k] for k in keys if k in history[epochs]},
                    "newton_steps_taken": len(history) - 1 - epochs})
    if best is not None:
        sel = {"epoch": best[0], "validation_accuracy": best[1]}
        if task.test is not None:
            sel["test_accuracy"] = evaluate(task.test, best[2])["accuracy"]
        summary["best_validation"] = sel
    return summary


# ------------------------------------------------------------------------------ Newton
def _flat(ws) -> np.ndarray:
    return np.concatenate([np.asarray(w).reshape(-1) for w in ws])


def _unflat(x: np.ndarray, shapes) -> list[np.ndarray]:
    sizes = [int(np.prod(s)) for s in shapes]
    return [a.reshape(s) for a, s in zip(np.split(x, np.cumsum(sizes)[:-1]), shapes)]


def _spike_times(task, network: Network, method: str, dt: float, options: dict,
                 params=None) -> torch.Tensor:
    """First-spike times of the loss's population (silent: ``t_silent``), (batch, n)."""
    if method == "eventprop":
        from ..torch import eventprop
        (t,) = eventprop(network.copy(), task.inputs, task.t_max,
                         params if params is not None else
                         [torch.from_numpy(w) for w in network.get_weights()],
                         readouts=(("first_spike", task.loss.pop),), t_silent=task.loss.t_silent,
                         silent_slope=getattr(task.loss, "silent_slope", 0.0))
        return t
    from .. import discrete
    r = discrete.run(network, task.inputs, task.t_max, dt, weights=params, **options)
    return discrete.readout_tensor(r, network, task.loss)


def _residuals(task, network, method, dt, options, jacobian: bool):
    params = [torch.tensor(w, dtype=torch.float64, requires_grad=jacobian)
              for w in network.get_weights()]
    ctx = torch.enable_grad() if jacobian else torch.no_grad()
    with ctx:
        t = _spike_times(task, network, method, dt, options, params)
        tg = torch.as_tensor(np.broadcast_to(task.targets, t.shape).copy())
        r = (t - tg).reshape(-1)
        if not jacobian:
            return r.numpy(), None
        rows = []
        for k in range(r.shape[0]):
            if not r.requires_grad:
                rows.append(torch.zeros(sum(p.numel() for p in params), dtype=torch.float64))
                continue
            g = torch.autograd.grad(r[k], params, retain_graph=k < r.shape[0] - 1,
                                    allow_unused=True)
            rows.append(torch.cat([(torch.zeros_like(p) if gi is None else gi).reshape(-1)
                                   for gi, p in zip(g, params)]))
    return r.detach().numpy(), torch.stack(rows).numpy()


def newton_refine(task, network: Network, steps: int = 20, tol: float = 0.0,
                  method: str = "eventprop", dt: float = 0.1, max_tries: int = 30,
                  **discrete_options) -> tuple[Network, list[dict]]:
    """Gauss-Newton (Levenberg-Marquardt) on the first-spike-time residuals
    ``r = t_first - target``.

    With ``method="eventprop"`` the residuals are the event engine's and the Jacobian
    ``J = dr/dw`` is exact (EventProp, one backward pass per residual). With
    ``method="surrogate"`` both come from the time-stepped path (step ``dt``,
    ``**discrete_options`` as in :func:`eventgrad.discrete.run`): its residuals are those of
    the *discrete* model (interpolated spike times), so this converges to a zero of the
    discrete model, and the exact engine's timing error there is the discrete path's floor.

    Each step is ``dw = -J^T (J J^T + mu I)^-1 r`` over all weights at once (the
    minimum-norm Gauss-Newton step as ``mu -> 0``; fewer residuals than weights is the normal
    case). A step is accepted if it decreases ``|r|^2`` of the method's own residuals — a step
    that silences an output (residual ``t_max - target``) is thus rejected; then ``mu`` is
    divided by 10 (down to 0: pure Gauss-Newton, quadratic convergence), otherwise multiplied
    by 10 and the step retried (``max_tries`` times). Starts at ``mu = 1e-3 mean(diag JJ^T)``.
    Stops after ``steps`` accepted steps, once the method's own largest ``|r|`` is at most
    ``tol`` (ms), or when no ``mu`` decreases ``|r|^2`` (rounding floor). A silent output's
    residual has a zero Jacobian row: this cannot make it fire.

    Returns the refined network (a copy) and one dict per accepted step: ``exact_loss`` and
    ``timing_error_ms`` (event engine), ``residual_ms`` (the method's own largest ``|r|``),
    ``step_norm`` (of the accepted ``dw``), ``mu``.
    """
    if task.targets is None:
        raise ValueError("newton_refine needs a task with target times")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method == "eventprop" and discrete_options:
        raise ValueError(f"options {sorted(discrete_options)} apply to method='surrogate' only")
    net = network.copy()
    shapes = [w.shape for w in net.get_weights()]
    out = []
    r, J = _residuals(task, net, method, dt, discrete_options, True)
    mu = None
    for _ in range(int(steps)):
        if np.max(np.abs(r)) <= tol:
            break
        JJ = J @ J.T
        if mu is None:
            mu = 1e-3 * float(np.mean(np.diag(JJ)))
        w0 = _flat(net.get_weights())
        merit = float(r @ r)
        accepted = None
        for _try in range(max_tries):
            try:
                y = np.linalg.solve(JJ + mu * np.eye(len(r)), -r) if mu > 0 else \
                    np.linalg.lstsq(JJ, -r, rcond=None)[0]
            except np.linalg.LinAlgError:
                y = np.linalg.lstsq(JJ + mu * np.eye(len(r)), -r, rcond=None)[0]
            dw = J.T @ y
            trial = net.copy()
            trial.set_weights(_unflat(w0 + dw, shapes))
            r_t, _ = _residuals(task, trial, method, dt, discrete_options, False)
            if float(r_t @ r_t) < merit:
                accepted = trial
                mu = mu / 10 if mu > 1e-12 * float(np.mean(np.diag(JJ))) else 0.0
                break
            mu = max(mu * 10, 1e-12 * float(np.mean(np.diag(JJ))))
        if accepted is None:
            break
        net = accepted
        r, J = _residuals(task, net, method, dt, discrete_options, True)
        ev = evaluate(task, net)
        out.append({"exact_loss": ev["loss"], "timing_error_ms": ev["timing_error_ms"],
                    "residual_ms": float(np.max(np.abs(r))),
                    "step_norm": float(np.linalg.norm(dw)), "mu": mu})
    return net, out


# ------------------------------------------------------------------------------ save / load
def _float(v) -> float:
    return float(v)  # float("inf") / float("nan") read the string encoding back


def network_to_dict(network: Network) -> dict:
    """Structure and neuron parameters of ``network`` (no weights), JSON-ready."""
    return to_json({
        "n_inputs": network.input.size,
        "populations": [{"name": p.name, "size": p.size,
                         "neuron": {"tau_mem": p.neuron.tau_mem, "tau_syn": p.neuron.tau_syn,
                                    "threshold": p.neuron.threshold,
                                    "v_reset": p.neuron.v_reset, "t_ref": p.neuron.t_ref}}
                        for p in network.populations],
        "projections": [{"pre": "input" if isinstance(pr.pre, InputPopulation) else pr.pre.name,
                         "post": pr.post.name, "shape": list(pr.shape)}
                        for pr in network.projections],
    })


def network_from_dict(d: dict, weights, delays=None) -> Network:
    """Rebuild a :class:`Network` from :func:`network_to_dict` output plus weights/delays."""
    net = Network(int(d["n_inputs"]))
    for p in d["populations"]:
        nrn = LIF(**{k: _float(v) for k, v in p["neuron"].items()})
        net.add_population(int(p["size"]), nrn, p["name"])
    if len(weights) != len(d["projections"]):
        raise ValueError(f"{len(d['projections'])} projections but {len(weights)} weight arrays")
    for i, pr in enumerate(d["projections"]):
        net.connect(pr["pre"], pr["post"], weights[i], 0.0 if delays is None else delays[i])
    return net


def save(path_prefix: str, result: TrainResult) -> tuple[str, str]:
    """Write ``path_prefix.npz`` (``weights_i``, ``delays_i`` per projection) and
    ``path_prefix.json`` (format tag, network structure and neuron parameters, config,
    history, summary). Non-finite floats are written as the strings ``"inf"``, ``"-inf"``,
    ``"nan"``, so the JSON is strict. Returns the two paths."""
    prefix = str(path_prefix).removesuffix(".json").removesuffix(".npz")
    net = result.network
    arrays = {}
    for i, (w, d) in enumerate(zip(net.get_weights(), net.get_delays())):
        arrays[f"weights_{i}"] = w
        arrays[f"delays_{i}"] = d
    npz, js = prefix + ".npz", prefix + ".json"
    np.savez(npz, **arrays)
    doc = {"format": _FORMAT, "network": network_to_dict(net), "config": result.config,
           "history": result.history, "summary": result.summary}
    with open(js, "w") as f:
        json.dump(to_json(doc), f, indent=1, allow_nan=False)
    return npz, js


def load(path_prefix: str) -> tuple[Network, dict]:
    """Read what :func:`save` wrote: the trained :class:`Network` and the run's config.

    A missing file raises FileNotFoundError; a truncated or corrupt ``.json`` or ``.npz``
    (or one that is not an eventgrad training file) raises ValueError naming the file."""
    prefix = str(path_prefix).removesuffix(".json").removesuffix(".npz")
    js, npz = prefix + ".json", prefix + ".npz"
    try:
        with open(js) as f:
            doc = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{js}: not a readable eventgrad training file (truncated or "
                         f"corrupt JSON: {e})") from e
    if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
        got = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise ValueError(f"{js}: not an eventgrad training file (format {got!r})")
    n_proj = len(doc["network"]["projections"])
    return network_from_dict(doc["network"], *_load_arrays(npz, n_proj)), doc["config"]


def _load_arrays(npz: str, n_proj: int) -> tuple[list, list]:
    """``weights_i`` and ``delays_i`` of ``npz``; a truncated, corrupt or incomplete file is a
    ValueError naming it (a missing one stays FileNotFoundError)."""
    try:
        with np.load(npz) as z:
            return ([z[f"weights_{i}"] for i in range(n_proj)],
                    [z[f"delays_{i}"] for i in range(n_proj)])
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError) as e:
        raise ValueError(f"{npz}: not a readable eventgrad training file (truncated, corrupt "
                         f"or without the {n_proj} projections' arrays: "
                         f"{type(e).__name__}: {e})") from e

"""Command line: ``eventgrad <command> [options]``."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from typing import NamedTuple, NoReturn

import numpy as np

from ..event.simulate import EventLimitError

__all__ = ["main"]


def _args_forward(p: argparse.ArgumentParser) -> None:
    """The options of ``eventgrad forward``."""
    p.add_argument("--hidden", type=_at_least(1), default=200, help="hidden neurons")
    p.add_argument("--batch", type=_at_least(1), default=16, help="samples")
    p.add_argument("--t-max", type=_positive_ms, default=100.0, help="window (ms)")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights and the inputs")
    p.add_argument("--json", type=str, default=None, help="write a JSON summary here")


def _forward(args: argparse.Namespace) -> int:
    import eventgrad as eg

    rng = np.random.default_rng(args.seed)
    neuron = eg.LIF(tau_mem=20.0, tau_syn=5.0)
    net = eg.Network.feedforward([5, args.hidden, 3], neuron, seed=args.seed)
    # Yin-Yang-shaped input: x, y, 1-x, 1-y at 30 ms * value, a bias spike at 0
    batch = []
    for _ in range(args.batch):
        x, y = rng.uniform(0, 1, 2)
        times = np.array([x, y, 1 - x, 1 - y, 0.0]) * np.array([30, 30, 30, 30, 1.0])
        batch.append(eg.Spikes(times, np.arange(5)))
    t0 = time.perf_counter()
    res = eg.simulate(net, batch, t_max=args.t_max)
    elapsed = time.perf_counter() - t0
    d = res.diagnostics
    print(f"eventgrad {eg.__version__}: exact event-driven forward pass")
    print(f"network 5-{args.hidden}-3, tau_mem 20 ms, tau_syn 5 ms, {args.batch} samples, "
          f"t_max {args.t_max} ms")
    print(f"{d.n_events} events, {d.n_spikes} spikes, {d.n_root_solves} root solves in "
          f"{elapsed:.3f} s ({d.n_events / elapsed:,.0f} events/s)")
    print(f"closest approach to threshold without a spike: {d.closest_approach:.3e}; "
          f"smallest crossing slope I - theta: {d.min_crossing_slope:.3e}")
    first = res.first_spike_times("output")
    hidden_counts = res.spike_counts("hidden")
    shown = min(args.batch, 8)
    more = f" (the first {shown} of {args.batch})" if shown < args.batch else ""
    print(f"sample  hidden spikes  output first-spike times (ms){more}")
    for b in range(shown):
        ts = "  ".join("   silent" if np.isinf(t) else f"{t:9.4f}" for t in first[b])
        print(f"{b:6d}  {int(hidden_counts[b].sum()):13d}  {ts}")
    if args.json:
        _write_json(args.json, {"events": d.n_events, "spikes": d.n_spikes,
                                "seconds": elapsed, "first_spike_times": first})
    return 0


_TASKS = {"xor": "temporal_xor", "xor222": "xor_2_2_2"}


def _args_demo(p: argparse.ArgumentParser) -> None:
    """The options of ``eventgrad demo``."""
    p.add_argument("--seed", type=int, default=0, help="seed of the initial weights")
    p.add_argument("--epochs", type=_at_least(0), default=100,
                   help="Adam epochs per method")
    p.add_argument("--dt", type=float, nargs="+", default=[0.5, 0.1, 0.02],
                   help="time steps of the cross-check's discrete rows (ms)")
    p.add_argument("--json", type=str, default=None, help="write the table and results here")


def _demo(args: argparse.Namespace) -> int:
    """The main job: temporal XOR trained by both gradient paths, and the cross-check table."""
    from .. import __version__
    from ..discrete.surrogates import Surrogate
    from . import crosscheck as cc
    from . import tasks, training

    t_start = time.perf_counter()
    task = tasks.temporal_xor(args.seed)
    print(f"eventgrad {__version__}: {task.name}, seed {args.seed} (Neftci, Mostafa & Zenke "
          f"2019, Fig. 3): two inputs spike early (0 ms) or late (6 ms); the class is the "
          f"output neuron that spikes first")
    print("\n1. Gradient cross-check on the initial network: every method's dL/dw against "
          "EventProp's (exact)")
    rows = cc.crosscheck(task.network, task.inputs, task.loss, task.t_max, task.labels,
                         dts=args.dt, surrogates=("superspike", "sigmoid"), scales=(10.0,),
                         detach_resets=(True,))
    print(cc.format_table(rows))
    print("fd: 4-point central differences of the exact engine's loss; discrete: backprop "
          "through time on a grid of step dt\nwith a surrogate spike derivative (reset "
          "detached). Weights into the output converge to EventProp as dt -> 0; weights\n"
          "into the hidden layer pass through the surrogate and do not.")
    print(f"\n2. Training, {args.epochs} Adam epochs (lr 0.2, x0.95/epoch, gradient norm "
          f"clipped at 0.05); accuracy by the exact event engine")
    summary = {"task": task.name, "seed": args.seed, "crosscheck": rows, "training": {}}
    names = ["early", "late"]
    for method in ("eventprop", "surrogate"):
        extra = {"dt": 0.1, "surrogate": Surrogate("superspike", 10.0)} \
            if method == "surrogate" else {}
        res = training.train(task, method=method, epochs=args.epochs, lr=0.2, lr_decay=0.95,
                             clip_grad_norm=0.05, seed=args.seed, progress=False, **extra)
        s = res.summary
        label = "EventProp (exact)" if method == "eventprop" else \
            "surrogate (dt 0.1 ms, SuperSpike 10)"
        print(f"   {label:38s} accuracy {s['initial']['train_accuracy']:.2f} -> "
              f"{s['accuracy']:.2f}, loss {s['initial']['exact_loss']:.4f} -> {s['loss']:.4f}"
              f" ({s['seconds']:.1f} s)")
        for b in range(len(task.inputs)):
            pat = f"({names[b // 2]}, {names[b % 2]})"
            print(f"      {pat:15s} label {int(task.labels[b])} predicted "
                  f"{int(s['predictions'][b]):2d}   first spikes (ms) "
                  f"{_fmt_times(s['first_spike_times'][b])}")
        summary["training"][method] = {"accuracy": s["accuracy"], "loss": s["loss"],
                                       "predictions": s["predictions"],
                                       "first_spike_times": s["first_spike_times"],
                                       "seconds": s["seconds"]}
    elapsed = time.perf_counter() - t_start
    summary["seconds"] = elapsed
    print(f"\ndone in {elapsed:.1f} s. More: eventgrad xor | timing | yinyang | crosscheck | "
          f"figure1 --help")
    if args.json:
        _write_json(args.json, summary)
    return 0


def _one_thread(func):
    """Run a command with one torch thread: the tensors of these commands are tiny, and idle
    intra-op threads only add latency to every small op (much more on a busy machine)."""
    import functools

    @functools.wraps(func)
    def wrapper(args):
        from ..torch import torch_threads

        with torch_threads(1):
            return func(args)
    return wrapper


def _args_crosscheck(p: argparse.ArgumentParser) -> None:
    """The options of ``eventgrad crosscheck``."""
    from .._constants import DEFAULT_DTS, DEFAULT_SCALES, DEFAULT_SURROGATES, SURROGATES

    p.add_argument("--task", choices=sorted(_TASKS), default="xor",
                   help="xor: temporal XOR on 2(+bias)-4-2; xor222: on 2(+bias)-2-2")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial weights")
    p.add_argument("--dt", type=float, nargs="+", default=list(DEFAULT_DTS),
                   help="time steps of the discrete path (ms)")
    p.add_argument("--surrogate", nargs="+", choices=SURROGATES,
                   default=list(DEFAULT_SURROGATES), help="surrogate derivatives")
    p.add_argument("--scale", type=float, nargs="+", default=list(DEFAULT_SCALES),
                   help="surrogate scales (1/voltage)")
    p.add_argument("--detach-reset", choices=("both", "yes", "no"), default="both",
                   help="rows with the reset cut from the graph (yes), kept in it (no), or both")
    p.add_argument("--no-fd", action="store_true", help="skip the central differences")
    p.add_argument("--fd-h", type=float, default=1e-4, help="finite-difference step (weights)")
    p.add_argument("--json", type=str, default=None, help='write {"rows": [...]} here')
    p.add_argument("--plot", type=str, default=None, help="write the agreement plot here (PNG)")


@_one_thread
def _crosscheck(args: argparse.Namespace) -> int:
    from .. import __version__
    from . import crosscheck as cc
    from . import tasks

    task = getattr(tasks, _TASKS[args.task])(args.seed)
    detach = {"both": (True, False), "yes": (True,), "no": (False,)}[args.detach_reset]
    t0 = time.perf_counter()
    rows = cc.crosscheck(task.network, task.inputs, task.loss, task.t_max, task.labels,
                         dts=args.dt, surrogates=args.surrogate, scales=args.scale,
                         detach_resets=detach, fd=not args.no_fd, fd_h=args.fd_h)
    elapsed = time.perf_counter() - t0
    print(f"eventgrad {__version__}: gradient cross-check on "
          f"{task.name} (seed {args.seed}, {len(task.inputs)} samples, t_max {task.t_max:g} ms)")
    print("reference: EventProp; metrics of each method's dL/dw against it, per projection")
    print(cc.format_table(rows))
    print(f"{len(rows)} rows in {elapsed:.1f} s")
    if args.json:
        settings = {"task": task.name, "seed": args.seed, "dts": list(args.dt),
                    "surrogates": list(args.surrogate), "scales": list(args.scale),
                    "detach_resets": list(detach), "fd": not args.no_fd, "fd_h": args.fd_h,
                    "seconds": elapsed, "environment": _environment()}
        _write_json(args.json, {"rows": rows, "settings": settings}, environment=False)
    if args.plot:
        cc.plot(rows, args.plot, title=f"Surrogate vs exact (EventProp) gradient: {task.name}, "
                                       f"seed {args.seed}")
    return 0


def _args_figure1(p: argparse.ArgumentParser) -> None:
    """The options of ``eventgrad figure1``."""
    from .._constants import SURROGATES

    p.add_argument("--plot", type=str, default=None, help="write the figure here (PNG)")
    p.add_argument("--json", type=str, default=None, help="write the data here")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial weights")
    p.add_argument("--points", type=int, default=41, help="points along the path")
    p.add_argument("--steps", type=int, default=150, help="Adam steps of training")
    p.add_argument("--lr", type=float, default=0.01, help="Adam learning rate")
    p.add_argument("--dt", type=float, default=0.1, help="time step of the surrogate path (ms)")
    p.add_argument("--surrogate", choices=SURROGATES, default="superspike",
                   help="surrogate derivative")
    p.add_argument("--scale", type=float, default=10.0, help="surrogate scale (1/voltage)")
    p.add_argument("--fd-h", type=float, default=1e-4, help="finite-difference step (weights)")


@_one_thread
def _figure1(args: argparse.Namespace) -> int:
    from ..discrete.surrogates import Surrogate
    from . import crosscheck as cc

    if not args.plot and not args.json:
        print("figure1: nothing to write; give --plot PATH and/or --json PATH", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    data = cc.figure1(seed=args.seed, n_points=args.points, train_steps=args.steps, lr=args.lr,
                      dt=args.dt, surrogate=Surrogate(args.surrogate, args.scale),
                      fd_h=args.fd_h)
    elapsed = time.perf_counter() - t0
    tr, st = data["train"], data["settings"]
    print(f"figure1: {st['task']} (seed {st['seed']}), {tr['steps']} Adam steps (lr {tr['lr']:g}):"
          f" accuracy {tr['accuracy_initial']:.2f} -> {tr['accuracy_trained']:.2f}")
    print(f"hidden weights moved from initial (a=0) to trained (a=1) in {st['n_points']} points;"
          f" surrogate path: {st['surrogate']} {st['scale']:g}, dt {st['dt']:g} ms")
    print("     a      loss   |g| EventProp  |g| central diff  rel.err   |g| surrogate  cosine")
    n = len(data["alpha"])
    for i in sorted(set(np.linspace(0, n - 1, min(n, 11)).round().astype(int).tolist())):
        fd = data["grad_norm_fd"][i]
        disc = f"disc. ({data['n_discontinuous'][i]})"
        fd_s = f"{fd:15.6g}" if np.isfinite(fd) else f"{disc:>15}"
        re_ = data["fd_rel_error"][i]
        re_s = f"{re_:8.1e}" if np.isfinite(re_) else f"{'-':>8}"
        print(f"{data['alpha'][i]:6.3f} {data['loss'][i]:9.5f} "
              f"{data['grad_norm_eventprop'][i]:14.6g} {fd_s} {re_s} "
              f"{data['grad_norm_surrogate'][i]:14.6g} "
              f"{data['cosine_surrogate'][i]:7.3f}")
    print(f"done in {elapsed:.1f} s")
    data["settings"]["seconds"] = elapsed
    data["settings"]["environment"] = _environment()
    if args.json:
        _write_json(args.json, data, environment=False)
    if args.plot:
        cc.plot_figure1(data, args.plot)
    return 0


# ------------------------------------------------------------------ training commands
def _discrete_options(args: argparse.Namespace) -> dict:
    from ..discrete.surrogates import Surrogate

    if args.method != "surrogate":
        return {}
    return {"surrogate": Surrogate(args.surrogate, args.scale)}


def _train(task, args: argparse.Namespace, method: str | None = None, **kwargs):
    """``training.train`` with the settings of a training command (``method`` overrides
    ``--method``)."""
    import os

    from . import training

    method = method or args.method
    opts = _discrete_options(argparse.Namespace(**{**vars(args), "method": method}))
    ckpt = os.path.join(args.checkpoint, method) if args.checkpoint else None
    return training.train(task, method=method, epochs=args.epochs, lr=args.lr,
                          lr_decay=args.lr_decay, clip_grad_norm=args.clip,
                          batch_size=args.batch_size, seed=args.seed, dt=args.dt,
                          revive=args.revive, progress=not args.no_progress,
                          checkpoint=ckpt, resume=args.resume, **kwargs, **opts)


def _lr_text(args: argparse.Namespace) -> str:
    """The learning rate and its schedule in words."""
    if args.lr_decay == 1.0:
        return f"lr {args.lr:g}, constant"
    return f"lr {args.lr:g}, x{args.lr_decay:g} per epoch"


def _environment() -> dict:
    from .provenance import environment

    return environment()


def _write_json(path: str, obj: dict, environment: bool = True) -> None:
    """``obj`` as strict JSON (:mod:`eventgrad._json`), with the run's environment (unless
    ``obj`` carries it already, ``environment=False``)."""
    from .._json import to_json

    obj = {**obj, "environment": _environment()} if environment else obj
    with open(path, "w") as f:
        json.dump(to_json(obj), f, indent=1, allow_nan=False)


def _fmt_times(t) -> str:
    return "  ".join("   silent" if not np.isfinite(x) else f"{x:9.4f}" for x in np.ravel(t))


def _args_xor(p: argparse.ArgumentParser) -> None:
    """The options of ``eventgrad xor``."""
    _training_args(p, epochs=100, lr=0.2, decay=0.95, clip=0.05)
    p.add_argument("--hidden", type=_at_least(1), default=4, help="hidden neurons")


@_one_thread
def _xor(args: argparse.Namespace) -> int:
    from .. import __version__
    from . import tasks, training

    task = tasks.temporal_xor(args.seed, n_hidden=args.hidden)
    res = _train(task, args)
    s = res.summary
    hist = res.history
    first_solved = next((h["epoch"] for h in hist if h["train_accuracy"] == 1.0), None)
    dt_note = f", dt {args.dt:g} ms, {args.surrogate} {args.scale:g}" \
        if args.method == "surrogate" else ""
    print(f"eventgrad {__version__}: {task.name} (seed {args.seed}), {args.method}{dt_note}; "
          f"{args.epochs} Adam epochs, {_lr_text(args)}")
    print(f"evaluation: {s['evaluation']}")
    print(f"accuracy {s['initial']['train_accuracy']:.2f} -> {s['accuracy']:.2f} "
          f"(first 100% at epoch {first_solved}); loss {s['initial']['exact_loss']:.4f} -> "
          f"{s['loss']:.4f}; {s['seconds']:.1f} s")
    print("pattern (in0, in1)  label  predicted  output first-spike times (ms)")
    names = ["early", "late"]
    for b in range(len(task.inputs)):
        pat = f"({names[b // 2]}, {names[b % 2]})"
        print(f"{pat:18s}  {int(task.labels[b]):5d}  {int(s['predictions'][b]):9d}  "
              f"{_fmt_times(s['first_spike_times'][b])}")
    if args.json:
        _write_json(args.json, {"command": "xor", "task": task.name, "method": args.method,
                                "seed": args.seed, "accuracy": s["accuracy"],
                                "initial_accuracy": s["initial"]["train_accuracy"],
                                "loss": s["loss"], "predictions": s["predictions"],
                                "labels": s["labels"],
                                "first_spike_times": s["first_spike_times"],
                                "first_solved_epoch": first_solved,
                                "evaluation": s["evaluation"], "seconds": s["seconds"],
                                "config": res.config, "history": hist})
    if args.plot:
        from .training_plots import plot_xor
        plot_xor(task, res.network, args.plot,
                 title=f"Temporal XOR after training ({args.method}, seed {args.seed}): "
                       f"accuracy {s['accuracy']:.2f} (exact engine)")
    if args.save:
        training.save(args.save, res)
    return 0


def _args_timing(p: argparse.ArgumentParser) -> None:
    """The options of ``eventgrad timing``."""
    _training_args(p, epochs=100, lr=0.03, decay=1.0, clip=0.0)
    p.add_argument("--newton", type=int, default=20,
                   help="at most this many Gauss-Newton steps after Adam (0: none)")
    p.add_argument("--inputs", type=int, default=5, help="input neurons")
    p.add_argument("--patterns", type=int, default=4, help="input patterns")
    p.add_argument("--hidden", type=_at_least(1), default=None,
                   help="add a hidden layer of this size")
    p.add_argument("--silent-slope", type=float, default=0.0,
                   help="silent-neuron rule of the loss (ms per unit voltage): a silent output "
                        "reads t_max + slope (threshold - V_max); 0 (default): zero gradient")


@_one_thread
def _timing(args: argparse.Namespace) -> int:
    from .. import __version__
    from . import tasks, training

    task = tasks.spike_timing(args.seed, n_inputs=args.inputs, n_patterns=args.patterns,
                              hidden=args.hidden, silent_slope=args.silent_slope)
    res = _train(task, args, newton_steps=args.newton)
    s = res.summary
    dt_note = f", dt {args.dt:g} ms, {args.surrogate} {args.scale:g}" \
        if args.method == "surrogate" else ""
    print(f"eventgrad {__version__}: {task.name} (seed {args.seed}), {args.method}{dt_note}; "
          f"{args.epochs} Adam epochs ({_lr_text(args)}) + "
          f"{s['newton_steps_taken']} Gauss-Newton steps (of at most {args.newton})")
    print(f"evaluation: {s['evaluation']}")
    print(f"max timing error |t_first - target|: initial {s['initial']['timing_error_ms']:.3e} "
          f"ms, after Adam {s['after_adam']['timing_error_ms']:.3e} ms, final "
          f"{s['timing_error_ms']:.3e} ms; {s['seconds']:.1f} s")
    print("pattern  target (ms)        first spike (ms)       error (ms)")
    for b in range(len(task.inputs)):
        t, tg = s["first_spike_times"][b, 0], task.targets[b, 0]
        print(f"{b:7d}  {tg:18.15f} {t:18.15f}  {abs(t - tg):.3e}")
    if args.json:
        _write_json(args.json, {"command": "timing", "task": task.name, "method": args.method,
                                "seed": args.seed, "dt": args.dt if args.method == "surrogate"
                                else None,
                                "final_timing_error_ms": s["timing_error_ms"],
                                "initial_timing_error_ms": s["initial"]["timing_error_ms"],
                                "adam_timing_error_ms": s["after_adam"]["timing_error_ms"],
                                "newton_steps_taken": s["newton_steps_taken"],
                                "first_spike_times": s["first_spike_times"][:, 0],
                                "targets": task.targets[:, 0], "loss": s["loss"],
                                "evaluation": s["evaluation"], "seconds": s["seconds"],
                                "config": res.config, "history": res.history})
    if args.plot:
        # the figure shows both gradient paths: train the other one with the same settings
        from .training_plots import plot_timing
        other = "surrogate" if args.method == "eventprop" else "eventprop"
        res2 = _train(task, args, method=other, newton_steps=args.newton)
        print(f"for the figure, {other}: final timing error "
              f"{res2.summary['timing_error_ms']:.3e} ms")

        def name(m):
            return f"surrogate, dt {args.dt:g} ms" if m == "surrogate" else "EventProp"
        plot_timing(res.history, args.plot, others={name(other): res2.history},
                    label=name(args.method),
                    title=f"{task.name} (seed {args.seed}): timing error by the exact engine")
    if args.save:
        training.save(args.save, res)
    return 0


def _args_yinyang(p: argparse.ArgumentParser) -> None:
    """The options of ``eventgrad yinyang``."""
    _training_args(p, epochs=100, lr=5e-3, decay=0.95, clip=0.0)
    p.set_defaults(batch_size=32, revive=0.1)
    p.add_argument("--hidden", type=_at_least(1), default=200, help="hidden neurons")
    p.add_argument("--tau-mem", type=float, default=20.0, help="membrane time constant (ms)")
    p.add_argument("--tau-syn", type=float, default=5.0, help="synaptic time constant (ms)")
    p.add_argument("--train-size", type=int, default=5000, help="training samples")
    p.add_argument("--validation-size", type=int, default=1000,
                   help="validation samples (the best epoch is chosen on them)")
    p.add_argument("--test-size", type=int, default=1000, help="test samples")
    p.add_argument("--data-seed", type=int, default=None,
                   help="seeds the data set (--seed seeds the weights and the batch order); "
                        "default 0; not with --generator kriener")
    p.add_argument("--generator", choices=("eventgrad", "kriener"), default="eventgrad",
                   help="eventgrad: independent seeded draws (default); kriener: the reference "
                        "generator's splits (train / validation / test seeds 42 / 41 / 40 of "
                        "its README)")
    p.add_argument("--silent-slope", type=float, default=5.0,
                   help="silent-neuron rule of the loss (ms per unit voltage): a silent output "
                        "reads t_max + slope (threshold - V_max); 0: zero gradient")


@_one_thread
def _yinyang(args: argparse.Namespace) -> int:
    from .. import __version__
    from . import tasks, training

    if args.generator == "kriener" and args.data_seed is not None:
        _refuse(args, f"--data-seed {args.data_seed} does not apply to "
                      f"--generator kriener (its splits have the fixed seeds 42 / 41 / 40)")
    # the data seed in effect (None: the reference splits' fixed seeds)
    data_seed = None if args.generator == "kriener" else \
        (0 if args.data_seed is None else args.data_seed)
    task = tasks.yinyang(args.seed, hidden=args.hidden, tau_mem=args.tau_mem,
                         tau_syn=args.tau_syn, n_train=args.train_size,
                         n_validation=args.validation_size, n_test=args.test_size,
                         data_seed=data_seed, silent_slope=args.silent_slope,
                         generator=args.generator)
    data = "Kriener et al.'s splits (seeds 42 / 41 / 40)" if data_seed is None \
        else f"data seed {data_seed}"
    dt_note = f", dt {args.dt:g} ms, {args.surrogate} {args.scale:g}" \
        if args.method == "surrogate" else ""
    print(f"eventgrad {__version__}: {task.name} (seed {args.seed}, {data}), "
          f"{args.method}{dt_note}; tau_mem {args.tau_mem:g} ms, tau_syn "
          f"{args.tau_syn:g} ms; {len(task.inputs)} / "
          f"{0 if task.validation is None else len(task.validation.inputs)} / "
          f"{0 if task.test is None else len(task.test.inputs)} train / validation / test; "
          f"{args.epochs} Adam epochs, {_lr_text(args)}, batch "
          f"{args.batch_size}, dead-neuron rule {args.revive:g}")
    res = _train(task, args)
    s = res.summary
    hist = res.history
    print(f"evaluation: {s['evaluation']}")
    acc = {k: s.get(f"{k}_accuracy") for k in ("train", "validation", "test")}
    fmt = {k: "-" if v is None else f"{100 * v:.2f} %" for k, v in acc.items()}
    print(f"accuracy: train {fmt['train']}, validation {fmt['validation']}, test "
          f"{fmt['test']} (initial train {100 * s['initial']['train_accuracy']:.2f} %)")
    best = s.get("best_validation")
    if best is not None:
        at = f", test accuracy of those weights {100 * best['test_accuracy']:.2f} %" \
            if "test_accuracy" in best else ""
        print(f"best validation accuracy {100 * best['validation_accuracy']:.2f} % at epoch "
              f"{best['epoch']}{at}")
    print(f"time per epoch {s['seconds_per_epoch']:.2f} s (gradient steps; "
          f"{s['seconds']:.1f} s in all, with the per-epoch exact evaluations)")
    if args.json:
        _write_json(args.json, {
            "command": "yinyang", "task": task.name, "method": args.method, "seed": args.seed,
            "data_seed": data_seed, "generator": args.generator, "accuracy": s["accuracy"],
            "accuracy_split": s["accuracy_split"], "test_accuracy": acc["test"],
            "validation_accuracy": acc["validation"], "train_accuracy": acc["train"],
            "initial_train_accuracy": s["initial"]["train_accuracy"], "loss": s["loss"],
            "seconds_per_epoch": s["seconds_per_epoch"], "seconds": s["seconds"],
            "best_validation": best, "evaluation": s["evaluation"], "config": res.config,
            "history": hist})
    if args.plot:
        from .training_plots import plot_yinyang
        plot_yinyang(task, hist, res.network, args.plot,
                     title=f"{task.name}, {args.method}{dt_note} (seed {args.seed}): test "
                           f"accuracy {fmt['test']} (exact engine)")
    if args.save:
        training.save(args.save, res)
    return 0


def _output_files(args: argparse.Namespace) -> list[tuple[str, str]]:
    """``(option and value, file)`` of every file the command will write (``--save PREFIX``
    writes ``PREFIX.npz`` and ``PREFIX.json``)."""
    out = []
    for opt in ("json", "plot", "save"):
        path = getattr(args, opt, None)
        if not path:
            continue
        if opt == "save":
            prefix = path.removesuffix(".json").removesuffix(".npz")
            out += [(f"--save {path}", prefix + ".npz"), (f"--save {path}", prefix + ".json")]
        else:
            out.append((f"--{opt} {path}", path))
    return out


def _unwritable(path: str) -> str | None:
    """Why ``path`` (absolute) cannot be written, or None."""
    import os

    folder = os.path.dirname(path)
    if os.path.isdir(path):
        return "is a directory"
    if not os.path.isdir(folder):
        return f"{folder} is not a directory" if os.path.exists(folder) else \
            f"its directory {folder} does not exist"
    if not os.access(path if os.path.exists(path) else folder, os.W_OK):
        return "permission denied" if os.path.exists(path) else \
            f"its directory {folder} is not writable"
    return None


def _plot_format_problem(path: str) -> str | None:
    """Why matplotlib would refuse to save a figure at ``path``, or None."""
    import os

    ext = os.path.splitext(path)[1].lstrip(".").lower()
    if not ext:
        return None
    from matplotlib.figure import Figure

    formats = Figure().canvas.get_supported_filetypes()
    return None if ext in formats else \
        f"format {ext!r} is not one matplotlib writes ({', '.join(sorted(formats))})"


def _check_outputs(args: argparse.Namespace) -> None:
    """Every file the command will write (``--json``, ``--plot``, ``--save``) can be written,
    and no two are the same, before any work starts: a long run must not fail at the end."""
    import os

    seen: dict[str, str] = {}
    for opt, path in _output_files(args):
        full = os.path.abspath(path)
        if full in seen:
            _refuse(args, f"{seen[full]} would be overwritten by "
                          f"{opt} (both write {path}); choose another name")
        seen[full] = opt
        plot = opt.startswith("--plot")
        why = _unwritable(full) or (_plot_format_problem(path) if plot else None)
        if why:
            where = "" if opt.endswith(f" {path}") else f" ({path})"
            _refuse(args, f"{opt}{where}: {why}")
    _check_checkpoint(args)


def _check_checkpoint(args: argparse.Namespace) -> None:
    """``--checkpoint DIR`` is a directory that can be made and written (``--resume`` needs
    it), before any work starts."""
    import os

    d = getattr(args, "checkpoint", None)
    if getattr(args, "resume", False) and not d:
        _refuse(args, "--resume needs --checkpoint DIR")
    if not d:
        return
    full = os.path.abspath(d)
    if os.path.exists(full) and not os.path.isdir(full):
        _refuse(args, f"--checkpoint {d}: not a directory")
    parent = full
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.access(parent, os.W_OK):
        _refuse(args, f"--checkpoint {d}: {parent} is not writable")


def _at_least(minimum: int):
    """An argparse type: an integer >= ``minimum``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value
    return parse


def _real(rule: str, ok):
    """An argparse type: a finite number for which ``ok(value)`` holds."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and ok(value)):
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text}")
        return value
    return parse


#: ``--clip``: 0 is no clipping, as ``clip_grad_norm=0`` (or None) of ``training.train``.
_clip = _real("a finite number >= 0 (0: no clipping)", lambda v: v >= 0)
_positive_ms = _real("finite and > 0 ms", lambda v: v > 0)


#: The surrogate path's options of the training commands and their defaults; given with
#: ``--method eventprop`` they are an error (nothing would use them), except where the command
#: trains the surrogate path too (``timing --plot`` draws both paths).
SURROGATE_DEFAULTS = {"dt": 0.1, "surrogate": "superspike", "scale": 10.0}
_SURROGATE_ONLY = "with --method surrogate"


def _method_options(args: argparse.Namespace) -> None:
    """The surrogate options of a training command resolved (see
    :data:`SURROGATE_DEFAULTS`)."""
    if not hasattr(args, "method"):
        return
    both = args.command == "timing" and bool(args.plot)
    for name, default in SURROGATE_DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, default)
        elif args.method == "eventprop" and not both:
            _refuse(args, f"--{name} applies to --method "
                          "surrogate only (EventProp has no time step or surrogate)")


def _training_args(p: argparse.ArgumentParser, epochs: int, lr: float, decay: float,
                   clip: float) -> None:
    from .._constants import SURROGATES

    p.add_argument("--method", choices=("eventprop", "surrogate"), default="eventprop",
                   help="exact gradients on the event engine, or surrogate gradients on the "
                        "time-stepped path (evaluation is always by the exact engine)")
    p.add_argument("--seed", type=int, default=0, help="seeds the task and the training")
    p.add_argument("--epochs", type=_at_least(0), default=epochs, help="Adam epochs")
    p.add_argument("--lr", type=float, default=lr, help="Adam learning rate")
    p.add_argument("--lr-decay", type=float, default=decay,
                   help="learning-rate factor per epoch")
    p.add_argument("--clip", type=_clip, default=clip,
                   help="clip the gradient norm to this before each step (0: off, as "
                        "clip_grad_norm=0 or None of eventgrad.training.train)")
    p.add_argument("--batch-size", type=_at_least(1), default=None,
                   help="samples per Adam step (default: the whole training set; yinyang: 32)")
    p.add_argument("--revive", type=float, default=0.0,
                   help="dead-neuron rule: push hidden neurons silent on a whole batch toward "
                        "threshold with this strength (0: off; yinyang default 0.1; see "
                        "eventgrad.losses)")
    p.add_argument("--dt", type=float, default=None,
                   help=f"time step of the surrogate path (ms; {_SURROGATE_ONLY}, default "
                        f"{SURROGATE_DEFAULTS['dt']:g})")
    p.add_argument("--surrogate", choices=SURROGATES, default=None,
                   help=f"surrogate derivative ({_SURROGATE_ONLY}, default "
                        f"{SURROGATE_DEFAULTS['surrogate']})")
    p.add_argument("--scale", type=float, default=None,
                   help=f"surrogate scale (1/voltage; {_SURROGATE_ONLY}, default "
                        f"{SURROGATE_DEFAULTS['scale']:g})")
    p.add_argument("--json", type=str, default=None, help="write a JSON summary here")
    p.add_argument("--plot", type=str, default=None, help="write the figure here (PNG)")
    p.add_argument("--save", type=str, default=None, metavar="PREFIX",
                   help="write PREFIX.npz (weights, delays) and PREFIX.json")
    p.add_argument("--checkpoint", type=str, default=None, metavar="DIR",
                   help="save the training state after every epoch in DIR/<method>/ "
                        "(Ctrl-C says which epoch was saved)")
    p.add_argument("--resume", action="store_true",
                   help="continue from --checkpoint DIR (the same settings; --epochs may be "
                        "larger); ends bit-identical to an uninterrupted run")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


class Command(NamedTuple):
    """One command of the table: its name, its ``--help`` line, the function that adds its
    options to its parser, and the function that runs it (``run(args) -> exit status``)."""

    name: str
    help: str
    add_args: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


#: Every command, in the order of ``eventgrad --help``.
COMMANDS = (
    Command("demo", "the main job: temporal XOR trained with exact (EventProp) "
            "and with surrogate gradients, and the gradient cross-check table",
            _args_demo, _one_thread(_demo)),
    Command("forward", "exact forward pass of a Yin-Yang-shaped network: "
            "spike times and diagnostics",
            _args_forward, _forward),
    Command("crosscheck", "EventProp vs central differences vs surrogate "
            "gradients on a task, over a grid of dt x surrogate x scale x reset",
            _args_crosscheck, _crosscheck),
    Command("figure1", "loss and exact vs surrogate gradient norms along the "
            "line from initial to trained hidden weights (2-2-2 temporal XOR)",
            _args_figure1, _figure1),
    Command("xor", "train the temporal XOR task (2+bias-4-2) with EventProp or "
            "surrogate gradients; accuracy by the exact engine",
            _args_xor, _xor),
    Command("timing", "train a neuron to fire its first spike at target "
            "times (Adam, then Gauss-Newton steps); timing error by the exact engine",
            _args_timing, _timing),
    Command("yinyang", "train the Yin-Yang task (EventProp's configuration: "
            "5-200-3, tau 20/5 ms, Adam 5e-3, batch 32, lr x0.95/epoch); accuracy "
            "on the test set by the exact engine",
            _args_yinyang, _yinyang),
)


class _DefaultsHelp(argparse.HelpFormatter):
    """Each option's help with its default, unless the help states it or there is none."""

    def _get_help_string(self, action):
        text = action.help or ""
        if ("default" in text or not action.option_strings
                or action.default is None or action.default is False
                or action.default == argparse.SUPPRESS):
            return text
        return f"{text} (default: %(default)s)"


#: The errors a command reports in one line (``eventgrad: error: ...``, exit status 2): what
#: the library raises for a bad value or a run past its event limit, and a missing file.
REPORTED = (ValueError, TypeError, FileNotFoundError)


def _refuse(args: argparse.Namespace, message: str) -> NoReturn:
    """A check of the command line that failed before any work: said as argparse says its
    errors (``eventgrad <command>: error: ...`` on standard error), exit status 2."""
    print(f"eventgrad {args.command}: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def main(argv: list[str] | None = None) -> int:
    """Run ``eventgrad <command> [options]``; returns the exit status (0 done, 2 an error, told
    in one line on standard error; ``--traceback`` shows the whole traceback instead)."""
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="eventgrad", description="Exact (EventProp) and surrogate gradients of spiking "
        "networks: eventgrad <command> [options]; eventgrad <command> --help for a command.")
    parser.add_argument("--version", action="version", version=f"eventgrad {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--traceback", action="store_true",
                        help="on an error, show the whole traceback (default: one line)")
    sub = parser.add_subparsers(dest="command", required=True)
    for c in COMMANDS:
        p = sub.add_parser(c.name, help=c.help, description=c.help, parents=[common],
                           formatter_class=_DefaultsHelp)
        c.add_args(p)
        p.set_defaults(func=c.run)
    args = parser.parse_args(argv)
    _method_options(args)
    _check_outputs(args)
    try:
        return args.func(args)
    except REPORTED + (EventLimitError,) as e:
        if args.traceback:
            raise
        print(f"eventgrad: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2

if __name__ == "__main__":
    sys.exit(main())

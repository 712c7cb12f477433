"""Command line: ``eventgrad <command> [options]``."""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
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
    print("sample  hidden spikes  output first-spike times (ms)")
    for b in range(min(args.batch, 8)):
        ts = "  ".join("   silent" if np.isinf(t) else f"{t:9.4f}" for t in first[b])
        print(f"{b:6d}  {int(hidden_counts[b].sum()):13d}  {ts}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"events": d.n_events, "spikes": d.n_spikes, "seconds": elapsed,
                       "first_spike_times": np.where(np.isinf(first), None, first).tolist()},
                      f, indent=1)
    return 0


_TASKS = {"xor": "temporal_xor", "xor222": "xor_2_2_2"}


def _one_thread(func):
    """Run a command with one torch thread: the tensors of these commands are tiny, and idle
    intra-op threads only add latency to every small op (much more on a busy machine)."""
    import functools

    import torch

    @functools.wraps(func)
    def wrapper(args):
        n = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return func(args)
        finally:
            torch.set_num_threads(n)
    return wrapper


@_one_thread
def _crosscheck(args: argparse.Namespace) -> int:
    from . import __version__, tasks
    from . import crosscheck as cc

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
                    "seconds": elapsed}
        with open(args.json, "w") as f:
            json.dump(cc.to_json({"rows": rows, "settings": settings}), f, indent=1)
    if args.plot:
        cc.plot(rows, args.plot, title=f"Surrogate vs exact (EventProp) gradient: {task.name}, "
                                       f"seed {args.seed}")
    return 0


@_one_thread
def _figure1(args: argparse.Namespace) -> int:
    from . import crosscheck as cc
    from .surrogates import Surrogate

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
    if args.json:
        with open(args.json, "w") as f:
            json.dump(cc.to_json(data), f, indent=1)
    if args.plot:
        cc.plot_figure1(data, args.plot)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="eventgrad", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="exact forward pass of a Yin-Yang-shaped network")
    p.add_argument("--hidden", type=int, default=200)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--t-max", type=float, default=100.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=str, default=None, help="write a JSON summary here")
    p.set_defaults(func=_demo)

    from .crosscheck import DEFAULT_DTS, DEFAULT_SCALES, DEFAULT_SURROGATES
    from .surrogates import SURROGATES

    p = sub.add_parser("crosscheck", help="EventProp vs central differences vs surrogate "
                       "gradients on a task, over a grid of dt x surrogate x scale x reset")
    p.add_argument("--task", choices=sorted(_TASKS), default="xor",
                   help="xor: temporal XOR on 2(+bias)-4-2; xor222: on 2(+bias)-2-2")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial weights")
    p.add_argument("--dt", type=float, nargs="+", default=list(DEFAULT_DTS),
                   help="time steps of the discrete path (ms)")
    p.add_argument("--surrogate", nargs="+", choices=SURROGATES,
                   default=list(DEFAULT_SURROGATES))
    p.add_argument("--scale", type=float, nargs="+", default=list(DEFAULT_SCALES),
                   help="surrogate scales (1/voltage)")
    p.add_argument("--detach-reset", choices=("both", "yes", "no"), default="both")
    p.add_argument("--no-fd", action="store_true", help="skip the central differences")
    p.add_argument("--fd-h", type=float, default=1e-4, help="finite-difference step (weights)")
    p.add_argument("--json", type=str, default=None, help='write {"rows": [...]} here')
    p.add_argument("--plot", type=str, default=None, help="write the agreement plot here (PNG)")
    p.set_defaults(func=_crosscheck)

    p = sub.add_parser("figure1", help="loss and exact vs surrogate gradient norms along the "
                       "line from initial to trained hidden weights (2-2-2 temporal XOR)")
    p.add_argument("--plot", type=str, default=None, help="write the figure here (PNG)")
    p.add_argument("--json", type=str, default=None, help="write the data here")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--points", type=int, default=41, help="points along the path")
    p.add_argument("--steps", type=int, default=150, help="Adam steps of training")
    p.add_argument("--lr", type=float, default=0.01, help="Adam learning rate")
    p.add_argument("--dt", type=float, default=0.1, help="time step of the surrogate path (ms)")
    p.add_argument("--surrogate", choices=SURROGATES, default="superspike")
    p.add_argument("--scale", type=float, default=10.0, help="surrogate scale (1/voltage)")
    p.add_argument("--fd-h", type=float, default=1e-4, help="finite-difference step (weights)")
    p.set_defaults(func=_figure1)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

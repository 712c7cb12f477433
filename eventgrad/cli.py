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
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

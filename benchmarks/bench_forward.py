"""Forward-pass benchmarks of eventgrad's exact event-driven simulator.

Usage::

    python benchmarks/bench_forward.py            # full run, about 1-2 minutes
    python benchmarks/bench_forward.py --quick    # smaller cases, well under 20 s
    python benchmarks/bench_forward.py --json out.json

Three plain-text tables are printed (see benchmarks/README.md):

(a) a Yin-Yang-shaped 5-200-3 feed-forward network on a batch of samples,
(b) a recurrent population with delays driven by Poisson input,
(c) how the cost per event changes as the number of events grows.

Only :func:`eventgrad.simulate` is timed (networks and inputs are built beforehand), with
``time.perf_counter``, best of ``--repeats`` (default 3). Every input is seeded, so event counts
are identical from run to run; wall times are not, which is why table (c) reports ratios to a
baseline measured in the same run. Nothing here asserts on speed.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import scipy

import eventgrad as eg

TAU_MEM, TAU_SYN = 20.0, 5.0


# ---------------------------------------------------------------------------- timing
def best_of(fn, repeats: int, min_time: float = 0.1):
    """Best wall time (s) of one call of ``fn`` over ``repeats`` measurements.

    A measurement that would take less than ``min_time`` calls ``fn`` several times and
    divides (so tiny cases are not dominated by timer resolution); otherwise the first call is
    itself the first measurement. Returns
    ``(seconds_per_call, last_result)``.
    """
    t0 = time.perf_counter()
    result = fn()  # first call: tells how many calls make one measurement
    once = time.perf_counter() - t0
    number = max(1, int(np.ceil(min_time / max(once, 1e-9))))
    # a first call that is long enough counts as the first measurement (saves time on the
    # big cases); otherwise it is only a warm-up
    best = once if number == 1 else np.inf
    for _ in range(repeats - 1 if number == 1 else repeats):
        t0 = time.perf_counter()
        for _ in range(number):
            result = fn()
        best = min(best, (time.perf_counter() - t0) / number)
    return best, result


# ---------------------------------------------------------------------------- workloads
def yinyang_inputs(batch: int, seed: int) -> list[eg.Spikes]:
    """Yin-Yang-shaped encoding: x, y, 1-x, 1-y at 30 ms * value, a bias spike at 0."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(batch):
        x, y = rng.uniform(0.0, 1.0, 2)
        times = np.array([30.0 * x, 30.0 * y, 30.0 * (1 - x), 30.0 * (1 - y), 0.0])
        out.append(eg.Spikes(times, np.arange(5), n_neurons=5))
    return out


def poisson_inputs(n_in: int, rate_per_ms: float, t_max: float, seed: int) -> eg.Spikes:
    """Homogeneous Poisson spikes: ``rate_per_ms`` per input neuron, on ``[0, t_max)``."""
    rng = np.random.default_rng(seed)
    k = rng.poisson(rate_per_ms * t_max * n_in)
    return eg.Spikes(rng.uniform(0.0, t_max, k), rng.integers(0, n_in, k), n_neurons=n_in)


def recurrent_network(n_in: int, n: int, seed: int, p_conn: float = 0.1, w_rec: float = 1.0,
                      delay_values=(0.5, 1.0, 1.5, 2.0)) -> eg.Network:
    """``n_in`` inputs -> one population of ``n`` neurons with a projection onto itself.

    Recurrent synapses exist with probability ``p_conn`` (no self-synapses; the others have
    weight 0), half excitatory and half inhibitory with magnitude ``w_rec * U(0.5, 1.5)``;
    each synapse has a delay drawn from ``delay_values`` (ms).
    """
    rng = np.random.default_rng(seed)
    net = eg.Network(n_in)
    pop = net.add_population(n, eg.LIF(tau_mem=TAU_MEM, tau_syn=TAU_SYN), name="rec")
    net.connect(net.input, pop, rng.normal(0.5, 0.5, size=(n_in, n)))
    mask = rng.random((n, n)) < p_conn
    np.fill_diagonal(mask, False)
    sign = np.where(rng.random((n, n)) < 0.5, -1.0, 1.0)
    w = np.where(mask, sign * w_rec * rng.uniform(0.5, 1.5, size=(n, n)), 0.0)
    d = rng.choice(np.asarray(delay_values, dtype=np.float64), size=(n, n))
    net.connect(pop, pop, w, delay=d)
    return net


# ---------------------------------------------------------------------------- rows
def _row(name: str, seconds: float, res, n_samples: int) -> dict:
    d = res.diagnostics
    return {
        "case": name,
        "samples": n_samples,
        "seconds": seconds,
        "events": d.n_events,
        "spikes": d.n_spikes,
        "predictions": d.n_predictions,
        "root_solves": d.n_root_solves,
        "events_per_s": d.n_events / seconds,
        "samples_per_s": n_samples / seconds,
        "immediate_spikes": d.n_immediate_spikes,
        "closest_approach": d.closest_approach,
        "min_crossing_slope": d.min_crossing_slope,
    }


def _fmt_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    line = "  ".join(h.rjust(w) for h, w in zip(header, widths))
    out = [line, "-" * len(line)]
    out += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(out)


def _print_throughput(title: str, rows: list[dict]) -> None:
    header = ["case", "samples", "wall s", "events", "spikes", "root solves", "events/s",
              "samples/s"]
    body = [[r["case"], str(r["samples"]), f"{r['seconds']:.3f}", str(r["events"]),
             str(r["spikes"]), str(r["root_solves"]), f"{r['events_per_s']:,.0f}",
             f"{r['samples_per_s']:.2f}"] for r in rows]
    print(title)
    print(_fmt_table(header, body))
    for r in rows:
        print(f"  {r['case']}: {r['predictions']} crossing predictions, "
              f"{r['immediate_spikes']} immediate spikes, closest approach without a spike "
              f"{r['closest_approach']:.2e}, smallest crossing slope I - theta "
              f"{r['min_crossing_slope']:.2e}")
    print()


# ---------------------------------------------------------------------------- benchmarks
def bench_yinyang(quick: bool, repeats: int, seed: int) -> list[dict]:
    batch = 8 if quick else 32
    net = eg.Network.feedforward([5, 200, 3], eg.LIF(tau_mem=TAU_MEM, tau_syn=TAU_SYN),
                                 seed=seed)
    inputs = yinyang_inputs(batch, seed + 1)
    sec, res = best_of(lambda: eg.simulate(net, inputs, t_max=100.0), repeats)
    return [_row("yinyang 5-200-3", sec, res, batch)]


def bench_recurrent(quick: bool, repeats: int, seed: int) -> list[dict]:
    n_in, n, rate, t_max = 20, 100, 0.02, 200.0
    batch = 1 if quick else 4
    net = recurrent_network(n_in, n, seed)
    inputs = [poisson_inputs(n_in, rate, t_max, seed + 10 + b) for b in range(batch)]
    # a generous bound: runaway activity would raise EventLimitError instead of hanging
    sec, res = best_of(lambda: eg.simulate(net, inputs, t_max=t_max, max_events=200_000),
                       repeats)
    return [_row("recurrent 20-100 (+rec, delays)", sec, res, batch)]


#: (series, n_inputs, hidden, input rate per input neuron in 1/ms); t_max = 100 ms, 10 outputs.
SCALING_FULL = [
    ("grow", 10, 25, 0.02),
    ("grow", 20, 50, 0.02),
    ("grow", 40, 100, 0.02),
    ("grow", 60, 200, 0.02),
    ("grow", 100, 400, 0.02),
    ("rate", 50, 100, 0.005),
    ("rate", 50, 100, 0.02),
    ("rate", 50, 100, 0.08),
]
SCALING_QUICK = [
    ("grow", 10, 25, 0.02),
    ("grow", 20, 50, 0.02),
    ("grow", 40, 100, 0.02),
    ("rate", 50, 100, 0.005),
    ("rate", 50, 100, 0.02),
]


def bench_scaling(quick: bool, repeats: int, seed: int) -> list[dict]:
    rows = []
    t_max = 100.0
    for series, n_in, hidden, rate in (SCALING_QUICK if quick else SCALING_FULL):
        net = eg.Network.feedforward([n_in, hidden, 10], eg.LIF(tau_mem=TAU_MEM, tau_syn=TAU_SYN),
                                     seed=seed)
        inputs = poisson_inputs(n_in, rate, t_max, seed + 1)
        sec, res = best_of(lambda: eg.simulate(net, inputs, t_max=t_max), repeats)
        row = _row(f"{series} {n_in}-{hidden}-10 @{rate * 1000:g}Hz", sec, res, 1)
        row.update(series=series, n_inputs=n_in, hidden=hidden, rate_hz=rate * 1000.0,
                   input_spikes=len(inputs), us_per_event=1e6 * sec / res.diagnostics.n_events)
        rows.append(row)
    base = min(rows, key=lambda r: r["events"])
    for r in rows:
        r["ratio_to_smallest"] = r["us_per_event"] / base["us_per_event"]
    return rows


def _print_scaling(rows: list[dict]) -> None:
    header = ["case", "inputs", "events", "seconds", "us/event", "ratio", "pred/event",
              "solves/event"]
    body = [[r["case"], str(r["input_spikes"]), str(r["events"]), f"{r['seconds']:.4f}",
             f"{r['us_per_event']:.1f}", f"{r['ratio_to_smallest']:.2f}",
             f"{r['predictions'] / r['events']:.1f}", f"{r['root_solves'] / r['events']:.2f}"]
            for r in rows]
    base = min(rows, key=lambda r: r["events"])
    big = max(rows, key=lambda r: r["events"])
    print("(c) scaling: cost per event as the number of events grows "
          f"({big['events'] / base['events']:.0f}x from smallest to largest case)")
    print("    feed-forward n_in-hidden-10, Poisson input, t_max 100 ms, one sample per case;")
    print("    'grow' enlarges input and hidden layer together, 'rate' only densifies the input;")
    print(f"    ratio = (us/event) / (us/event of the smallest case, {base['case']})")
    print(_fmt_table(header, body))
    print()


# ---------------------------------------------------------------------------- main
def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, cwd=Path(__file__).resolve().parent, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _jsonable(obj):
    """Plain JSON: numpy scalars to Python, non-finite floats (e.g. ``inf``) to ``null``."""
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller cases (under ~20 s)")
    parser.add_argument("--repeats", type=int, default=3, help="measurements per case (best of)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=str, default=None, metavar="PATH",
                        help="also write all rows as JSON to PATH")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")

    meta = {
        "eventgrad": eg.__version__,
        "commit": _git_commit(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "machine": platform.platform(),
        "quick": args.quick,
        "repeats": args.repeats,
        "seed": args.seed,
    }
    print(f"eventgrad {meta['eventgrad']} (commit {meta['commit']}), Python {meta['python']}, "
          f"numpy {meta['numpy']}, scipy {meta['scipy']}, {meta['machine']}")
    print(f"{'quick' if args.quick else 'full'} run, best of {args.repeats}, "
          "times are wall seconds for eventgrad.simulate only\n")
    t_start = time.perf_counter()

    yy = bench_yinyang(args.quick, args.repeats, args.seed)
    _print_throughput("(a) Yin-Yang-shaped 5-200-3 feed-forward, tau_mem 20 ms, tau_syn 5 ms, "
                      "t_max 100 ms, whole batch per call", yy)
    rec = bench_recurrent(args.quick, args.repeats, args.seed)
    _print_throughput("(b) recurrent: 20 Poisson inputs (20 Hz) -> 100 LIF, 10% recurrent "
                      "synapses +-, delays 0.5-2 ms, t_max 200 ms", rec)
    sc = bench_scaling(args.quick, args.repeats, args.seed)
    _print_scaling(sc)

    total = time.perf_counter() - t_start
    print(f"total benchmark time {total:.1f} s")
    if args.json:
        payload = {"meta": meta, "total_seconds": total, "yinyang": yy, "recurrent": rec,
                   "scaling": sc}
        with open(args.json, "w") as f:
            json.dump(_jsonable(payload), f, indent=1)
        print(f"rows written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

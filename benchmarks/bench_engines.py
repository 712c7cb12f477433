"""The compiled engines against each other: forward and adjoint cost per sample.

    python benchmarks/bench_engines.py [--repeats 5] [--json PATH]

Two networks, one thread, a batch of 32 seeded samples each:

* **Yin-Yang 5-200-3** (tau 20/5 ms, the EventProp configuration's initial weights, inputs of
  the reference generator's first 32 points, first-spike cross-entropy gradient): the layered
  fast path against the general event queue on the same network, so the table shows what the
  general engine costs where both apply;
* **recurrent 4-60-5** with per-synapse delays and a refractory period (only the general
  engine applies).

Times are best of ``--repeats`` of the whole batch (``time.perf_counter``), in µs per sample;
the ratio column is general / layered, measured in the same run. Nothing here asserts on
speed; the records of the two engines are compared (same spike counts) as a check.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from eventgrad.tasks import yinyang_inputs

import eventgrad as eg
from eventgrad import datasets
from eventgrad.losses import FirstSpikeCrossEntropy


def _yinyang():
    pts, labels = datasets.yinyang_reference(32, datasets.KRIENER_SEEDS["train"])
    w1 = np.random.default_rng(0).normal(1.5, 0.78, (5, 200))
    w2 = np.random.default_rng(0).normal(0.93, 0.1, (200, 3))
    net = eg.Network.feedforward([5, 200, 3], eg.LIF(20.0, 5.0), weights=[w1, w2])
    loss = FirstSpikeCrossEntropy(tau0=0.5, tau1=6.4, alpha=3e-3)
    return net, yinyang_inputs(pts[:, :2]), labels.astype(np.int64), loss


def _recurrent():
    rng = np.random.default_rng(1)
    nrn = eg.LIF(20.0, 5.0, t_ref=1.0)
    net = eg.Network(4)
    h = net.add_population(60, nrn, name="hidden")
    o = net.add_population(5, nrn, name="output")
    net.connect(net.input, h, rng.normal(0.6, 0.3, (4, 60)), rng.uniform(0.0, 2.0, (4, 60)))
    net.connect(h, h, rng.normal(0.0, 0.15, (60, 60)), rng.uniform(0.5, 3.0, (60, 60)))
    net.connect(h, o, rng.normal(0.3, 0.2, (60, 5)), 1.0)
    batch = [eg.Spikes(rng.uniform(0, 20, 12), rng.integers(0, 4, 12)) for _ in range(32)]
    return net, batch, rng.integers(0, 5, 32), FirstSpikeCrossEntropy()


def _best(f, repeats: int) -> float:
    f()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return min(times)


def measure(name, net, batch, labels, loss, engines, repeats) -> list[dict]:
    rows = []
    for engine in engines:
        res = eg.simulate(net, batch, 60.0, engine=engine)
        t_fwd = _best(lambda: eg.simulate(net, batch, 60.0, engine=engine), repeats)
        t_all = _best(lambda: eg.value_and_grad(net, batch, loss, 60.0, labels,
                                                engine=engine), repeats)
        rows.append({"network": name, "engine": engine, "samples": len(batch),
                     "spikes": int(sum(r.diagnostics.n_spikes for r in res)),
                     "forward_us": t_fwd / len(batch) * 1e6,
                     "adjoint_us": (t_all - t_fwd) / len(batch) * 1e6})
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", help="also write the rows to this file")
    args = ap.parse_args(argv)
    if args.json:
        with open(args.json, "a"):
            pass  # the output path is writable before any work starts
    eg.set_num_threads(1)
    net, batch, labels, loss = _yinyang()
    rows = measure("yinyang 5-200-3", net, batch, labels, loss, ("layered", "general"),
                   args.repeats)
    assert rows[0]["spikes"] == rows[1]["spikes"], "the engines disagree"
    net, batch, labels, loss = _recurrent()
    rows += measure("recurrent 4-60-5, delays", net, batch, labels, loss, ("general",),
                    args.repeats)
    base = {r["network"]: r for r in rows if r["engine"] == "layered"}
    print("| network | engine | spikes/sample | forward µs/sample | value_and_grad - forward "
          "µs/sample | forward vs layered |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        b = base.get(r["network"])
        ratio = f"{r['forward_us'] / b['forward_us']:.2f}x" if b else ""
        print(f"| {r['network']} | {r['engine']} | {r['spikes'] / r['samples']:.1f} | "
              f"{r['forward_us']:.1f} | {r['adjoint_us']:.1f} | {ratio} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()

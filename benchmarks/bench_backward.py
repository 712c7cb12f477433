"""Cost of the EventProp backward pass relative to its forward pass, measured in one run.

    python benchmarks/bench_backward.py [--quick] [--json PATH]

For each network: best-of-3 wall time of the forward pass alone (``simulate`` plus readout) and of
``value_and_grad`` (forward + loss + backward) on the same batch; the ratio backward/forward is
(value_and_grad - forward) / forward. Ratios, not seconds, are the comparable numbers: the machine
is noisy.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import eventgrad as eg
from eventgrad.event.gradients import readout_values
from eventgrad.losses import FirstSpikeCrossEntropy


def yinyang_like(rng, n):
    out = []
    for _ in range(n):
        x, y = rng.uniform(0, 1, 2)
        out.append(eg.Spikes([30 * x, 30 * y, 30 * (1 - x), 30 * (1 - y), 0.0], np.arange(5)))
    return out


def recurrent_net(rng):
    nrn = eg.LIF(20.0, 5.0, t_ref=1.0)
    k = float(nrn.kernel(nrn.peak_time(0.0, 1.0)))
    net = eg.Network(5)
    hid = net.add_population(100, nrn, name="hidden")
    out = net.add_population(3, nrn, name="output")
    net.connect(net.input, hid, rng.normal(0.6, 0.4, (5, 100)) / k)
    mask = rng.uniform(size=(100, 100)) < 0.1
    net.connect(hid, hid, np.where(mask, rng.normal(0.0, 0.3, (100, 100)), 0.0) / k,
                rng.choice([0.5, 1.0, 1.5, 2.0], size=(100, 100)))
    net.connect(hid, out, rng.normal(0.1, 0.1, (100, 3)) / k)
    return net


def best_of(f, n=3):
    best = np.inf
    for _ in range(n):
        t0 = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    batch = 8 if args.quick else 32
    cases = [
        ("5-200-3 (tau 20/5)", eg.Network.feedforward([5, 200, 3], eg.LIF(20.0, 5.0), seed=0),
         yinyang_like(rng, batch), 100.0),
        ("5-100r-3 recurrent", recurrent_net(rng), yinyang_like(rng, batch), 100.0),
    ]
    loss = FirstSpikeCrossEntropy()
    rows = []
    print(f"{'network':22s} {'batch':>5s} {'spikes':>8s} {'fwd s':>8s} {'fwd+bwd s':>10s} "
          f"{'bwd/fwd':>8s}")
    for name, net, sp, t_max in cases:
        labels = rng.integers(0, 3, len(sp))

        def fwd():
            res = eg.simulate(net, sp, t_max)
            readout_values(list(res), loss)
            return res

        res = fwd()
        t_f = best_of(fwd)
        t_fb = best_of(lambda: eg.value_and_grad(net, sp, loss, t_max, labels))
        row = {"network": name, "batch": len(sp), "spikes": res.diagnostics.n_spikes,
               "forward_s": t_f, "forward_backward_s": t_fb,
               "backward_over_forward": (t_fb - t_f) / t_f}
        rows.append(row)
        print(f"{name:22s} {len(sp):5d} {row['spikes']:8d} {t_f:8.3f} {t_fb:10.3f} "
              f"{row['backward_over_forward']:8.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()

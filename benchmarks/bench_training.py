"""Training throughput, start-up time, scaling and use of both cores (issue: speed).

    python benchmarks/bench_training.py [--quick] [--json PATH] [--plot PATH]

1. Throughput: Yin-Yang-shaped training steps (forward + gradient + Adam step), samples per
   second, for EventProp (exact, float64) and for eventgrad's own time-stepped surrogate path
   (float32, dt = tau_syn / 60) on the same network and the same data, measured in this run;
   the ratio is what counts (the machine is noisy).
   * 25-100-3: the 5 Yin-Yang features (x, y, 1-x, 1-y at 30 ms * value, bias at 0) each repeated
     5 times, 100 hidden, 3 outputs, tau_mem 12 ms, tau_syn 6 ms, batch 64, one spike per input.
   * 5-200-3: EventProp's configuration (tau_mem 20, tau_syn 5, batch 32), EventProp only plus
     the discrete path at dt = tau_syn / 60.
2. Start-up: a fresh Python process, from `import eventgrad` to the first gradient (compiled
   kernels come from numba's on-disk cache after the first run on a machine).
3. Scaling: microseconds per event of the compiled forward + backward as the number of events
   grows about 100x (more input spikes, larger layers, a recurrent net), relative to the
   smallest case.
4. Cores: the same batch with one worker thread and with all CPUs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch

import eventgrad as eg
from eventgrad import discrete
from eventgrad.losses import FirstSpikeCrossEntropy
from eventgrad.torch import SpikingNetwork


def yinyang_batch(rng, n, repeat):
    xs = rng.uniform(0, 1, (n, 2))
    out = []
    for x, y in xs:
        v = np.array([30 * x, 30 * y, 30 * (1 - x), 30 * (1 - y), 0.0])
        out.append(eg.Spikes(np.repeat(v, repeat), np.arange(5 * repeat)))
    labels = rng.integers(0, 3, n)
    return out, labels


def init_net(sizes, nrn, seed, gains=(1.0, 1.0)):
    rng = np.random.default_rng(seed)
    k = float(nrn.kernel(nrn.peak_time(0.0, 1.0)))
    # EventProp's Yin-Yang initialisation scaled to this neuron's PSP peak (tau 20/5: k = 0.157)
    # and to the number of inputs; ``gains`` set the activity (see the table's spikes/sample)
    w1 = rng.normal(1.5, 0.78, (sizes[0], sizes[1])) * 0.157 / k * 5 / sizes[0] * gains[0]
    w2 = rng.normal(0.93, 0.1, (sizes[1], sizes[2])) * 0.157 / k * gains[1]
    return eg.Network.feedforward(sizes, nrn, weights=[w1, w2])


def time_steps(step, n_steps):
    step()  # warm-up (compilation, caches)
    best = np.inf
    for _ in range(n_steps):
        t0 = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - t0)
    return best


def throughput(name, sizes, nrn, batch, t_max, repeat, reps, dt, gains=(1.0, 1.0)):
    rng = np.random.default_rng(1)
    net = init_net(sizes, nrn, 0, gains)
    data, labels = yinyang_batch(rng, batch, repeat)
    lab = torch.tensor(labels)
    loss = FirstSpikeCrossEntropy()

    model = SpikingNetwork(net, t_max=t_max)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def ev_step():
        L = loss(model(data), lab)
        opt.zero_grad()
        L.backward()
        opt.step()

    w = [torch.tensor(p.weights, dtype=torch.float32, requires_grad=True)
         for p in net.projections]
    opt2 = torch.optim.Adam(w, lr=1e-3)

    def ts_step():
        r = discrete.run(net, data, t_max, dt, weights=w, dtype=torch.float32)
        L = loss(discrete.readout_tensor(r, net, loss), lab)
        opt2.zero_grad()
        L.backward()
        opt2.step()

    # EventProp: torch only evaluates the loss and takes the Adam step, on tiny tensors; one
    # torch thread (eventgrad.training's default) leaves both cores to the event engine's
    # worker threads. The discrete path: the faster of one torch thread and all of them.
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    t_ev = time_steps(ev_step, reps)
    spikes = model.last_result.diagnostics.n_spikes
    t_ts1 = time_steps(ts_step, max(1, reps // 3))
    torch.set_num_threads(n_threads)
    t_tsn = time_steps(ts_step, max(1, reps // 3))
    t_ts = min(t_ts1, t_tsn)
    return {"case": name, "batch": batch, "spikes_per_sample": spikes / batch,
            "eventprop_samples_per_s": batch / t_ev,
            "discrete_f32_samples_per_s": batch / t_ts, "dt": dt,
            "discrete_torch_threads": 1 if t_ts1 <= t_tsn else n_threads,
            "ratio": t_ts / t_ev}


def startup():
    code = ("import time; t0 = time.perf_counter(); import eventgrad as eg; "
            "t1 = time.perf_counter();"
            "import numpy as np; from eventgrad.losses import FirstSpikeCrossEntropy;"
            "net = eg.Network.feedforward([5, 50, 3], eg.LIF(20.0, 5.0), seed=0);"
            "sp = [eg.Spikes([3.0, 7.0, 20.0, 27.0, 0.0], np.arange(5))];"
            "eg.value_and_grad(net, sp, FirstSpikeCrossEntropy(), 100.0, [0]);"
            "t2 = time.perf_counter(); print(t1 - t0, t2 - t1)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    imp, first = map(float, out.stdout.split())
    return {"import_s": imp, "import_to_first_gradient_s": first}


def scaling(quick):
    rng = np.random.default_rng(2)
    rows = []
    cases = [("ff 10-20-5, 1 spike/input", 10, 20, 1, False),
             ("ff 20-50-5, 3 spikes/input", 20, 50, 3, False),
             ("ff 50-100-10, 5 spikes/input", 50, 100, 5, False),
             ("ff 100-200-10, 10 spikes/input", 100, 200, 10, False),
             ("rec 50-100r-10, 5 spikes/input", 50, 100, 5, True)]
    if quick:
        cases = cases[:3]
    nrn = eg.LIF(20.0, 5.0, t_ref=1.0)
    k = float(nrn.kernel(nrn.peak_time(0.0, 1.0)))
    for name, n_in, n_h, per, rec in cases:
        net = eg.Network(n_in)
        h = net.add_population(n_h, nrn, name="hidden")
        o = net.add_population(10 if n_h > 20 else 5, nrn, name="output")
        net.connect(net.input, h, rng.normal(1.0, 1.0, (n_in, n_h)) * 3.0 / (n_in * k))
        net.connect(h, o, rng.normal(0.5, 0.5, (n_h, o.size)) * 3.0 / (n_h * k))
        if rec:
            net.connect(h, h, rng.normal(0.0, 0.5, (n_h, n_h)) / (n_h * k),
                        rng.choice([0.5, 1.0, 2.0], size=(n_h, n_h)))
        batch = [eg.Spikes(rng.uniform(0, 80, n_in * per), np.tile(np.arange(n_in), per))
                 for _ in range(8)]
        labels = rng.integers(0, o.size, 8)
        rows.append(_gradient_cost(name, net, batch, FirstSpikeCrossEntropy(), 100.0, labels))
    rows.append(_mnist_like(rng))
    base = rows[0]["us_per_event"]
    for r in rows:
        r["ratio"] = r["us_per_event"] / base
    return rows


def _mnist_like(rng):
    """784-350-10 (EventProp's latency-MNIST shape) with a non-spiking readout and the
    max-voltage loss, batch 32: one input spike per active input, 20 % of the inputs active
    (at (1 - x) * 20 ms for a random intensity x)."""
    from eventgrad.losses import MaxVoltageCrossEntropy

    nrn = eg.LIF(20.0, 5.0)
    k = float(nrn.kernel(nrn.peak_time(0.0, 1.0)))
    net = eg.Network(784)
    h = net.add_population(350, nrn, name="hidden")
    o = net.add_population(10, eg.LIF(20.0, 5.0, threshold=np.inf), name="output")
    net.connect(net.input, h, rng.normal(0.2, 1.0, (784, 350)) * 2.0 / (157 ** 0.5 * k))
    net.connect(h, o, rng.normal(0.0, 1.0, (350, 10)) / (350 ** 0.5 * k))
    batch = []
    for _ in range(32):
        ids = np.flatnonzero(rng.uniform(size=784) < 0.2)
        batch.append(eg.Spikes((1.0 - rng.uniform(size=ids.size)) * 20.0, ids, n_neurons=784))
    labels = rng.integers(0, 10, 32)
    return _gradient_cost("mnist-like 784-350-10, max-V readout, batch 32", net, batch,
                          MaxVoltageCrossEntropy(), 50.0, labels)


def _gradient_cost(name, net, batch, loss, t_max, labels) -> dict:
    """Best of 3 ``value_and_grad`` calls (after a warm-up), per event."""
    eg.value_and_grad(net, batch, loss, t_max, labels)
    best = np.inf
    for _ in range(3):
        t0 = time.perf_counter()
        _, g = eg.value_and_grad(net, batch, loss, t_max, labels)
        best = min(best, time.perf_counter() - t0)
    d = g.result.diagnostics
    return {"case": name, "events": d.n_events, "spikes": d.n_spikes, "seconds": best,
            "us_per_event": 1e6 * best / d.n_events}


def cores():
    rng = np.random.default_rng(3)
    nrn = eg.LIF(12.0, 6.0)
    net = init_net([25, 100, 3], nrn, 0, (1.5, 0.5))
    data, _ = yinyang_batch(rng, 64, 5)
    loss = FirstSpikeCrossEntropy()
    from eventgrad.event import gradients

    def run(workers):
        def f():
            res = eg.simulate(net, data, 60.0, workers=workers)
            ro = gradients.Readout.of(res, loss.readout, loss.pop)
            gradients.backward_batch(res, [(ro, np.ones(ro.values.shape))], workers=workers)
        return time_steps(f, 5)

    t1 = run(1)
    tn = run(os.cpu_count() or 1)
    return {"cpus": os.cpu_count(), "one_worker_s": t1, "all_workers_s": tn, "speedup": t1 / tn}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", default=None)
    ap.add_argument("--plot", default=None)
    args = ap.parse_args(argv)
    reps = 3 if args.quick else 10
    out = {}
    print("1. training throughput (forward + gradient + Adam step), same network and data")
    # gains (1.5, 0.5): about one hidden spike per neuron and a few output spikes per sample
    rows = [throughput("Yin-Yang 25-100-3, tau 12/6, batch 64", [25, 100, 3], eg.LIF(12.0, 6.0),
                       64, 60.0, 5, reps, 6.0 / 60, gains=(1.5, 0.5))]
    if not args.quick:
        rows.append(throughput("EventProp config 5-200-3, tau 20/5, batch 32", [5, 200, 3],
                               eg.LIF(20.0, 5.0), 32, 60.0, 1, reps, 5.0 / 60))
    print(f"{'case':44s} {'spk/smp':>7s} {'EventProp f64':>14s} {'discrete f32':>13s} "
          f"{'dt ms':>6s} {'ratio':>6s}")
    for r in rows:
        print(f"{r['case']:44s} {r['spikes_per_sample']:7.1f} "
              f"{r['eventprop_samples_per_s']:10.0f} /s {r['discrete_f32_samples_per_s']:9.1f} /s "
              f"{r['dt']:6.3f} {r['ratio']:6.1f}x")
    out["throughput"] = rows
    s = startup()
    out["startup"] = s
    print(f"\n2. start-up: import {s['import_s']:.2f} s, then first gradient after "
          f"{s['import_to_first_gradient_s']:.2f} s (fresh process, warm numba cache)")
    sc = scaling(args.quick)
    out["scaling"] = sc
    print("\n3. scaling of the compiled forward + backward (batch 8, best of 3)")
    print(f"{'case':34s} {'events':>8s} {'spikes':>8s} {'seconds':>8s} {'us/event':>9s} "
          f"{'ratio':>6s}")
    for r in sc:
        print(f"{r['case']:34s} {r['events']:8d} {r['spikes']:8d} {r['seconds']:8.3f} "
              f"{r['us_per_event']:9.2f} {r['ratio']:6.2f}")
    c = cores()
    out["cores"] = c
    print(f"\n4. cores: batch 64 forward + backward with 1 worker {c['one_worker_s']:.3f} s, "
          f"with {c['cpus']} workers {c['all_workers_s']:.3f} s: speed-up {c['speedup']:.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.5))
        ev = [r["events"] for r in sc]
        ax.loglog(ev, [r["us_per_event"] for r in sc], "o-")
        ax.set_xlabel("events per batch of 8")
        ax.set_ylabel("µs per event (forward + backward)")
        ax.set_ylim(min(r["us_per_event"] for r in sc) / 3, max(r["us_per_event"] for r in sc) * 3)
        ax.set_title("cost per event vs number of events")
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)


if __name__ == "__main__":
    main()

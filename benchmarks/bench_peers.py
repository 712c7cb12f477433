"""eventgrad against its peers, in one run, process-interleaved (A B A B ...).

    python benchmarks/bench_peers.py [--reps 3] [--batches 65] [--epochs 3] [--json PATH]

1. **EventProp reference code** (Wunderlich & Pehle 2021, C++/OpenMP; build it with
   ``../shared/peers/eventprop_ref/README.md``): the paper's Yin-Yang training step (5-200-3,
   tau 20/5 ms, batch 32, first-spike cross-entropy with tau0 0.5 ms, tau1 6.4 ms, alpha 3e-3,
   Adam 5e-3) on the same 5000 training points (the reference generator's split,
   ``eventgrad.datasets.yinyang_reference`` with seed 42) from the same initial weights
   (``numpy.random.default_rng(0).normal(1.5, 0.78, (5, 200))`` and ``(0.93, 0.1, (200, 3))``),
   against eventgrad's step (:class:`eventgrad.training.EventPropStep`, what
   ``eventgrad yinyang`` runs) with the plain loss and with the ``yinyang`` defaults
   (silent_slope 5 ms, revive 0.1). Training samples per second (forward + backward + Adam,
   batches encoded beforehand) at 1 and 2 threads (the reference with
   ``OMP_WAIT_POLICY=PASSIVE``), start-up (process launch to the first gradient), and the sum
   of all weights after the timed steps (equal to ~11 digits when the two compute the same
   trajectory: a check, not a timing).
2. **jaxsnn** (event-based EventProp in JAX; ``benchmarks/peers/jaxsnn_worker.py`` says how to
   set it up): its own Yin-Yang example (25-100-3 with tau 12/6, batch 64, 4992 training and
   2944 test samples per epoch) against eventgrad's Yin-Yang task at the same sizes
   (``eventgrad yinyang --hidden 100 --tau-mem 12 --tau-syn 6 --batch-size 64``): wall time
   per epoch of training plus one exact pass over the test set, after the first epoch (which
   includes jaxsnn's JIT compilation; eventgrad's kernels come from numba's cache).

A peer that is not installed is skipped with a message. Each measurement is its own process;
the implementations alternate, so slow phases of the noisy machine hit both. Medians, and the
spread (min-max) in brackets; ratios of medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REF_PREFIX = os.path.expanduser("~/.cache/eventgrad-peers/eventprop_ref")
REF_PYTHON = os.path.join(REF_PREFIX, "venv/bin/python")
REF_WORKER = os.path.normpath(os.path.join(HERE, "../../shared/peers/eventprop_ref/"
                                                  "worker_ref.py"))
JAXSNN_PYTHON = os.path.expanduser("~/.cache/eventgrad-peers/jaxsnn/venv/bin/python")
JAXSNN_WORKER = os.path.join(HERE, "peers", "jaxsnn_worker.py")


# ------------------------------------------------------------------------------ workers
def worker_step(data_path: str, n_batches: int, variant: str) -> None:
    """eventgrad's side of the timed training step (one process; prints one JSON line)."""
    import torch
    from eventgrad.tasks import yinyang_inputs
    from eventgrad.training import EventPropStep

    import eventgrad as eg
    from eventgrad import training
    from eventgrad.losses import FirstSpikeCrossEntropy

    torch.set_num_threads(1)
    data = np.load(data_path)
    bs = int(data["batch"])
    inputs = yinyang_inputs(data["points"][:, :2])
    labels = data["labels"].astype(np.int64)
    net = eg.Network.feedforward([5, 200, 3], eg.LIF(20.0, 5.0),
                                 weights=[data["w1"], data["w2"]])
    params = [torch.tensor(w, requires_grad=True) for w in net.get_weights()]
    opt = training.adam(params, 5e-3)
    slope, revive = (5.0, 0.1) if variant == "defaults" else (0.0, 0.0)
    step = EventPropStep(net, FirstSpikeCrossEntropy(silent_slope=slope), 60.0, params,
                         revive=revive)
    batches = [(inputs[k * bs:(k + 1) * bs], labels[k * bs:(k + 1) * bs])
               for k in range(n_batches + 1)]

    def train(b):
        opt.zero_grad()
        step(*b)
        opt.step()

    train(batches[0])
    t_first = time.time()
    t0, c0 = time.perf_counter(), time.process_time()
    for b in batches[1:]:
        train(b)
    el = time.perf_counter() - t0
    print(json.dumps({"impl": f"eventgrad ({variant})", "t_first_grad": t_first,
                      "seconds": el, "cpu_seconds": time.process_time() - c0,
                      "samples_per_s": n_batches * bs / el, "threads": eg.get_num_threads(),
                      "w_checksum": float(sum(float(p.detach().sum()) for p in params))}))


def worker_epochs(epochs: int) -> None:
    """eventgrad's side of the jaxsnn comparison: per epoch, Adam steps over 4992 samples
    (batch 64) and one exact evaluation of the 2944 test samples."""
    import torch

    import eventgrad as eg
    from eventgrad import tasks, training

    torch.set_num_threads(1)
    t_start = time.time()
    task = tasks.yinyang(seed=0, hidden=100, tau_mem=12.0, tau_syn=6.0, n_train=4992,
                         n_validation=0, n_test=2944)
    net = task.network.copy()
    params = [torch.tensor(w, requires_grad=True) for w in net.get_weights()]
    opt = training.adam(params, 5e-3)
    step = training.EventPropStep(net, task.loss, task.t_max, params, revive=0.1)
    rng = np.random.default_rng(0)
    times, acc = [], []
    for _ in range(epochs):
        t0 = time.perf_counter()
        order = rng.permutation(len(task.inputs))
        for s in range(0, len(order), 64):
            idx = order[s:s + 64]
            opt.zero_grad()
            step([task.inputs[i] for i in idx], task.loss_target(idx))
            opt.step()
        trained = task.network.copy()
        trained.set_weights([p.detach().numpy().copy() for p in params])
        acc.append(training.evaluate(task.test, trained)["accuracy"])
        times.append(time.perf_counter() - t0)
    print(json.dumps({"impl": "eventgrad", "t_start": t_start, "epoch_seconds": times,
                      "test_accuracy": acc, "threads": eg.get_num_threads()}))


# ------------------------------------------------------------------------------ driver
def _run(cmd: list[str], env: dict) -> dict | None:
    t_launch = time.time()
    p = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True)
    if p.returncode != 0:
        print(f"  failed: {' '.join(cmd)}\n{p.stderr[-2000:]}", file=sys.stderr)
        return None
    line = [s for s in p.stdout.splitlines() if s.startswith("{")][-1]
    out = json.loads(line)
    out["t_launch"] = t_launch
    return out


def _make_data(path: str, batch: int) -> None:
    from eventgrad import datasets

    pts, labels = datasets.yinyang_reference(5000, datasets.KRIENER_SEEDS["train"])
    P = np.stack([pts[:, 0], pts[:, 1], 1 - pts[:, 0], 1 - pts[:, 1]], axis=1)
    w1 = np.random.default_rng(0).normal(1.5, 0.78, (5, 200))
    w2 = np.random.default_rng(0).normal(0.93, 0.1, (200, 3))
    np.savez(path, points=P, labels=labels, w1=w1, w2=w2, batch=batch)


def _thread_env(impl: str, k: int) -> dict:
    if impl == "reference":
        env = {"OMP_NUM_THREADS": str(k)}
        if k > 1:
            env["OMP_WAIT_POLICY"] = "PASSIVE"
        return env
    return {"EVENTGRAD_NUM_THREADS": str(k), "OMP_NUM_THREADS": "1"}


def bench_reference(args) -> list[dict]:
    rows = []
    have_ref = os.path.exists(args.ref_python) and os.path.exists(args.ref_worker)
    if not have_ref:
        print(f"EventProp reference: skipped (no {args.ref_python} or {args.ref_worker}; "
              "build it with ../shared/peers/eventprop_ref/build.sh)")
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data.npz")
        _make_data(data, 32)
        impls = (["reference"] if have_ref else []) + ["eventgrad (plain)",
                                                      "eventgrad (defaults)"]
        for rep in range(args.reps):
            for k in (1, 2):
                for impl in impls:
                    if impl == "reference":
                        cmd = [args.ref_python, args.ref_worker, data, str(args.batches)]
                    else:
                        cmd = [sys.executable, __file__, "--worker-step", data,
                               str(args.batches), impl.split("(")[1].rstrip(")")]
                    out = _run(cmd, _thread_env(impl, k))
                    if out is not None:
                        out.update(impl=impl, threads=k, rep=rep)
                        rows.append(out)
                        print(f"  rep {rep} {impl:22s} {k} thread(s): "
                              f"{out['samples_per_s']:8.0f} samples/s", flush=True)
    return rows


def bench_jaxsnn(args) -> list[dict]:
    rows = []
    have = os.path.exists(args.jaxsnn_python) and os.path.exists(JAXSNN_WORKER)
    if not have:
        print(f"jaxsnn: skipped (no {args.jaxsnn_python}; see {JAXSNN_WORKER})")
    impls = (["jaxsnn"] if have else []) + ["eventgrad"]
    for rep in range(args.reps):
        for k in (1, 2):
            for impl in impls:
                if impl == "jaxsnn":
                    cmd = [args.jaxsnn_python, JAXSNN_WORKER, "--epochs", str(args.epochs),
                           "--threads", str(k)]
                    env = {}
                else:
                    cmd = [sys.executable, __file__, "--worker-epochs", str(args.epochs)]
                    env = _thread_env(impl, k)
                out = _run(cmd, env)
                if out is not None:
                    out.update(impl=impl, threads=k, rep=rep)
                    rows.append(out)
                    ep = out["epoch_seconds"][1:] or out["epoch_seconds"]
                    print(f"  rep {rep} {impl:10s} {k} thread(s): {np.median(ep):.3f} s/epoch",
                          flush=True)
    return rows


def _med(xs: list[float]) -> str:
    return f"{statistics.median(xs):.0f} ({min(xs):.0f}-{max(xs):.0f})"


def report(ref_rows: list[dict], jax_rows: list[dict]) -> None:
    print("\n## Yin-Yang training step (5-200-3, batch 32), samples/s")
    print("| threads | implementation | samples/s | vs reference | start-up s | weight sum |")
    print("|---|---|---|---|---|---|")
    for k in (1, 2):
        base = [r["samples_per_s"] for r in ref_rows if r["impl"] == "reference"
                and r["threads"] == k]
        for impl in ("reference", "eventgrad (plain)", "eventgrad (defaults)"):
            rs = [r for r in ref_rows if r["impl"] == impl and r["threads"] == k]
            if not rs:
                continue
            sps = [r["samples_per_s"] for r in rs]
            ratio = (f"{statistics.median(sps) / statistics.median(base):.2f}x" if base
                     else "-")
            start = statistics.median(r["t_first_grad"] - r["t_launch"] for r in rs)
            print(f"| {k} | {impl} | {_med(sps)} | {ratio} | {start:.2f} | "
                  f"{rs[0]['w_checksum']:.11f} |")
    for impl in ("reference", "eventgrad (plain)", "eventgrad (defaults)"):
        one = [r["samples_per_s"] for r in ref_rows if r["impl"] == impl and r["threads"] == 1]
        two = [r["samples_per_s"] for r in ref_rows if r["impl"] == impl and r["threads"] == 2]
        if one and two:
            print(f"2 threads / 1 thread, {impl}: "
                  f"{statistics.median(two) / statistics.median(one):.2f}x")
    if not jax_rows:
        return
    print("\n## Yin-Yang epoch (25-100-3 / 5-100-3, tau 12/6, batch 64, 4992 + 2944 samples)")
    print("| threads | implementation | s/epoch (after the first) | first epoch s | "
          "test accuracy after the epochs | eventgrad speed-up |")
    print("|---|---|---|---|---|---|")
    for k in (1, 2):
        med = {}
        for impl in ("jaxsnn", "eventgrad"):
            rs = [r for r in jax_rows if r["impl"] == impl and r["threads"] == k]
            if not rs:
                continue
            ep = [e for r in rs for e in (r["epoch_seconds"][1:] or r["epoch_seconds"])]
            med[impl] = statistics.median(ep)
            first = statistics.median(r["epoch_seconds"][0] for r in rs)
            acc = rs[-1].get("test_accuracy") or rs[-1].get("final_test_accuracy")
            acc = acc[-1] if isinstance(acc, list) else acc
            sp = (f"{med['jaxsnn'] / med['eventgrad']:.1f}x" if impl == "eventgrad"
                  and "jaxsnn" in med else "")
            print(f"| {k} | {impl} | {med[impl]:.3f} ({min(ep):.3f}-{max(ep):.3f}) | "
                  f"{first:.2f} | {acc:.3f} | {sp} |")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3, help="runs per implementation and thread "
                    "count (default 3)")
    ap.add_argument("--batches", type=int, default=65, help="timed steps (default 65)")
    ap.add_argument("--epochs", type=int, default=3, help="epochs per jaxsnn comparison run "
                    "(the first is not timed; default 3)")
    ap.add_argument("--ref-python", default=REF_PYTHON)
    ap.add_argument("--ref-worker", default=REF_WORKER)
    ap.add_argument("--jaxsnn-python", default=JAXSNN_PYTHON)
    ap.add_argument("--skip-jaxsnn", action="store_true")
    ap.add_argument("--json", help="write every measurement to this file")
    ap.add_argument("--worker-step", nargs=3, metavar=("DATA", "N", "VARIANT"),
                    help=argparse.SUPPRESS)
    ap.add_argument("--worker-epochs", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker_step:
        worker_step(args.worker_step[0], int(args.worker_step[1]), args.worker_step[2])
        return
    if args.worker_epochs:
        worker_epochs(args.worker_epochs)
        return
    if args.json:
        with open(args.json, "a"):
            pass  # the output path is writable before any work starts
    import platform

    print(f"bench_peers: {platform.platform()}, {os.cpu_count()} CPUs, python "
          f"{platform.python_version()}, numpy {np.__version__}")
    ref_rows = bench_reference(args)
    jax_rows = [] if args.skip_jaxsnn else bench_jaxsnn(args)
    report(ref_rows, jax_rows)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"reference": ref_rows, "jaxsnn": jax_rows}, f, indent=1)


if __name__ == "__main__":
    main()

"""The time-stepped path against snntorch, side by side in one process.

Usage::

    python benchmarks/bench_discrete.py             # every case, a few minutes
    python benchmarks/bench_discrete.py --quick     # dt 0.1 ms cases only, smaller reps
    python benchmarks/bench_discrete.py --json out.json

For each case (network, grid, dtype) both libraries run the same network on the same weights,
the same input spikes and the same grid, batch 64, one torch thread (``--threads``):

* eventgrad: :func:`eventgrad.discrete.run` with the options closest to snntorch's
  ``Synaptic`` neuron: ``update="euler"`` (snntorch's ``syn = alpha syn + W x``,
  ``mem = beta mem + syn``, with the input gain ``1 - beta`` explicit: snntorch gets the
  weights times ``1 - beta`` so that both integrate the same equation; eventgrad's current
  reaches the voltage one step later), ``inputs="round"`` (an input spike is a 1 at the
  nearest step), ``reset="subtract"``, ``detach_reset=True`` (snntorch's reset is detached),
  ``interpolate=False``, surrogate SuperSpike (snntorch's ``fast_sigmoid``, the same
  ``1 / (k |x| + 1)^2``) with the same scale;
* snntorch: ``nn.Linear`` (no bias) + ``snn.Synaptic`` per layer, ``reset_mechanism=
  "subtract"`` for the hidden layer, ``"none"`` and an infinite threshold for the output
  layer, stepped over the grid in a Python loop, as its tutorials do. Its ``fast_sigmoid``
  returns float32 spikes whatever the input dtype, so float64 runs use a copy of it that keeps
  the dtype (the same formula).

Both read out the maximum over the grid of the output layer's voltage and take the
cross-entropy of it (``eventgrad.losses.MaxVoltageCrossEntropy``; ``F.cross_entropy`` on
snntorch's side). "fwd" is that loss without autograd (``torch.no_grad``), "fwd+bwd" the loss
and the gradient of every weight. eventgrad's time includes turning the input spikes into its
arrival terms; snntorch's dense input tensor is built once beforehand (data loading).

Timing: the two are interleaved A B A B (``--reps`` rounds after one warm-up each); the table
gives the median samples/s of each and the ratio eventgrad / snntorch, and the hidden spikes
per sample of each as a check that both ran comparable activity. Nothing asserts on speed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch

import eventgrad as eg
from eventgrad import discrete
from eventgrad.discrete.surrogates import Surrogate
from eventgrad.experiments.datasets import yinyang
from eventgrad.experiments.tasks import yinyang_inputs
from eventgrad.losses import MaxVoltageCrossEntropy

BATCH = 64
SCALE = 10.0        # surrogate scale, 1/voltage (snntorch's slope)


@dataclass(frozen=True)
class Case:
    name: str
    sizes: tuple
    tau_mem: float
    tau_syn: float
    t_max: float
    dt: float
    repeat: int       # input neurons per Yin-Yang feature
    t_late: float     # the latest input spike, ms


CASES = [
    Case("25-100-3, dt 0.1 ms", (25, 100, 3), 12.0, 6.0, 24.0, 0.1, 5, 15.0),
    Case("25-100-3, dt 0.01 ms", (25, 100, 3), 12.0, 6.0, 24.0, 0.01, 5, 15.0),
    Case("5-200-3 EventProp, dt tau_syn/60", (5, 200, 3), 20.0, 5.0, 60.0, 5.0 / 60, 1, 30.0),
]


def network(case: Case, seed: int = 0) -> eg.Network:
    """The case's network: default initialisation, a non-spiking output layer."""
    lif = eg.LIF(case.tau_mem, case.tau_syn)
    init = eg.Network.feedforward(list(case.sizes), lif, seed=seed)
    out = eg.LIF(case.tau_mem, case.tau_syn, threshold=np.inf)
    return eg.Network.feedforward(list(case.sizes), [lif, out], weights=init.get_weights())


def data(case: Case, seed: int = 0):
    pts, labels = yinyang(BATCH, seed=seed)
    return yinyang_inputs(pts, t_late=case.t_late, repeat=case.repeat), labels


# ------------------------------------------------------------------------------- eventgrad
def eventgrad_step(case: Case, net: eg.Network, inputs, labels, dtype, backward: bool):
    loss = MaxVoltageCrossEntropy()
    opts = {"update": "euler", "inputs": "round", "reset": "subtract", "detach_reset": True,
            "interpolate": False, "surrogate": Surrogate("superspike", SCALE), "dtype": dtype}
    W = [torch.tensor(w, dtype=dtype, requires_grad=backward) for w in net.get_weights()]

    def step():
        with torch.set_grad_enabled(backward):
            r = discrete.run(net, inputs, case.t_max, case.dt, weights=W, **opts)
            L = loss(discrete.readout_tensor(r, net, loss), labels)
            if backward:
                L.backward()
        return sum(len(t) for t, _ in r.spike_lists[0]) / BATCH
    return step


# -------------------------------------------------------------------------------- snntorch
class _FastSigmoid(torch.autograd.Function):
    """snntorch's fast sigmoid surrogate, with spikes in the input's dtype."""

    @staticmethod
    def forward(ctx, x, slope):
        ctx.save_for_backward(x)
        ctx.slope = slope
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g / (ctx.slope * x.abs() + 1.0) ** 2, None


def snntorch_step(case: Case, net: eg.Network, inputs, labels, dtype, backward: bool):
    import snntorch as snn
    from snntorch import surrogate

    n_steps = round(case.t_max / case.dt)
    x = torch.zeros(n_steps + 1, BATCH, case.sizes[0], dtype=dtype)
    for b, s in enumerate(inputs):
        m = np.minimum(np.rint(s.times / case.dt).astype(int), n_steps)
        x[m, b, np.array(s.ids)] = 1.0
    alpha = float(np.exp(-case.dt / case.tau_syn))
    beta = float(np.exp(-case.dt / case.tau_mem))
    grad = surrogate.fast_sigmoid(slope=SCALE) if dtype == torch.float32 else \
        (lambda v: _FastSigmoid.apply(v, SCALE))
    layers = []
    for i, w in enumerate(net.get_weights()):
        fc = torch.nn.Linear(w.shape[0], w.shape[1], bias=False).to(dtype)
        with torch.no_grad():
            fc.weight.copy_(torch.tensor(w.T * (1.0 - beta), dtype=dtype))
        last = i == len(case.sizes) - 2
        lif = snn.Synaptic(alpha=alpha, beta=beta, spike_grad=grad,
                           threshold=float("inf") if last else 1.0,
                           reset_mechanism="none" if last else "subtract")
        layers.append((fc, lif))
    target = torch.as_tensor(labels)

    def step():
        with torch.set_grad_enabled(backward):
            state = [lif.init_synaptic() for _, lif in layers]
            vmax, n_hidden = None, 0.0
            for m in range(n_steps + 1):
                h = x[m]
                for k, (fc, lif) in enumerate(layers):
                    h, syn, mem = lif(fc(h), *state[k])
                    state[k] = (syn, mem)
                    if k == 0:
                        n_hidden += float(h.detach().sum())
                vmax = mem if vmax is None else torch.maximum(vmax, mem)
            L = torch.nn.functional.cross_entropy(vmax, target)
            if backward:
                L.backward()
        return n_hidden / BATCH
    return step


# ---------------------------------------------------------------------------------- timing
def interleaved(a, b, reps: int):
    """Median seconds of ``a`` and ``b`` over ``reps`` alternating calls (after a warm-up
    each), and their last results."""
    ra, rb = a(), b()
    ta, tb = [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        ra = a()
        ta.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        rb = b()
        tb.append(time.perf_counter() - t0)
    return statistics.median(ta), statistics.median(tb), ra, rb


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="dt 0.1 ms cases only, 3 reps")
    ap.add_argument("--reps", type=int, default=5, help="interleaved rounds per row")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--json", help="also write the rows to this JSON file")
    args = ap.parse_args(argv)
    try:
        import snntorch
    except ImportError:
        print("snntorch is not installed (pip install snntorch): nothing to compare with")
        return
    torch.set_num_threads(args.threads)
    cases = CASES[:1] if args.quick else CASES
    reps = 3 if args.quick else args.reps
    print(f"eventgrad {eg.__version__}, snntorch {snntorch.__version__}, torch "
          f"{torch.__version__}, {args.threads} torch thread(s), batch {BATCH}, median of "
          f"{reps} interleaved rounds")
    head = (f"{'case':34} {'dtype':8} {'pass':8} {'eventgrad/s':>12} {'snntorch/s':>11} "
            f"{'ratio':>6} {'hidden spikes/sample (eg, snn)':>31}")
    print(head)
    print("-" * len(head))
    rows = []
    for case in cases:
        net = network(case)
        inputs, labels = data(case)
        for dtype in (torch.float32, torch.float64):
            for backward in (False, True):
                a = eventgrad_step(case, net, inputs, labels, dtype, backward)
                b = snntorch_step(case, net, inputs, labels, dtype, backward)
                ta, tb, sa, sb = interleaved(a, b, reps)
                row = {"case": case.name, "dtype": str(dtype).replace("torch.", ""),
                       "pass": "fwd+bwd" if backward else "fwd", "eventgrad_per_s": BATCH / ta,
                       "snntorch_per_s": BATCH / tb, "ratio": tb / ta,
                       "hidden_spikes_eventgrad": sa, "hidden_spikes_snntorch": sb}
                rows.append(row)
                print(f"{case.name:34} {row['dtype']:8} {row['pass']:8} "
                      f"{row['eventgrad_per_s']:12.0f} {row['snntorch_per_s']:11.0f} "
                      f"{row['ratio']:6.2f} {sa:15.1f} {sb:15.1f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1:])

"""Train the temporal XOR task (Neftci, Mostafa & Zenke 2019, Fig. 3) with exact EventProp
gradients and with surrogate gradients on a time grid; evaluate both on the exact engine.

    python examples/xor.py --plot          # both methods, seed 0, writes xor_*.png
    python examples/xor.py --quick         # a few epochs, EventProp only, no figure
    python examples/xor.py --seeds 10      # success rate over seeds 0..9 (slow for surrogate)
"""

from __future__ import annotations

import argparse
import time

from eventgrad import tasks, training
from eventgrad.discrete.surrogates import Surrogate


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small run (tests, smoke)")
    ap.add_argument("--seeds", type=int, default=1, help="train seeds 0..N-1")
    ap.add_argument("--methods", nargs="+", default=None, choices=("eventprop", "surrogate"))
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--plot", action="store_true", help="write xor_<method>_seed<k>.png")
    args = ap.parse_args(argv)
    methods = args.methods or (["eventprop"] if args.quick else ["eventprop", "surrogate"])
    epochs = args.epochs or (15 if args.quick else 100)
    # the settings of `eventgrad xor`: Adam lr 0.2, x0.95 per epoch, gradient norm clipped
    settings = {"epochs": epochs, "lr": 0.2, "lr_decay": 0.95, "clip_grad_norm": 0.05,
                "progress": False}
    out = {}
    for method in methods:
        extra = {"dt": 0.1, "surrogate": Surrogate("superspike", 10.0)} \
            if method == "surrogate" else {}
        solved = 0
        for seed in range(args.seeds):
            task = tasks.temporal_xor(seed)
            t0 = time.perf_counter()
            res = training.train(task, method=method, seed=seed, **settings, **extra)
            s = res.summary            # evaluated by the exact event engine
            solved += s["accuracy"] == 1.0
            print(f"{method:9s} seed {seed}: accuracy {s['initial']['train_accuracy']:.2f} -> "
                  f"{s['accuracy']:.2f}, loss {s['initial']['exact_loss']:.3f} -> "
                  f"{s['loss']:.3f} ({time.perf_counter() - t0:.1f} s)")
            if args.plot:
                from eventgrad.experiments.training_plots import plot_xor
                plot_xor(task, res.network, f"xor_{method}_seed{seed}.png")
            out[(method, seed)] = s["accuracy"]
        print(f"{method}: 100 % on {solved} of {args.seeds} seeds")
    return out


if __name__ == "__main__":
    main()

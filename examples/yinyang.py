"""Train a 5-200-3 LIF network on Yin-Yang (Kriener, Göltz & Petrovici 2021) with exact
EventProp gradients, EventProp's published configuration (Wunderlich & Pehle 2021), and
evaluate it on the exact event engine.

    python examples/yinyang.py                   # seed 0, 100 epochs, writes yinyang.png
    python examples/yinyang.py --seeds 3         # mean +- std of the test accuracy over seeds
    python examples/yinyang.py --quick           # small data set and network (tests, smoke)
    python examples/yinyang.py --generator kriener   # the reference generator's splits
"""

from __future__ import annotations

import argparse

import numpy as np

from eventgrad import tasks, training


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small run (tests, smoke)")
    ap.add_argument("--seeds", type=int, default=1, help="train seeds 0..N-1")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--plot", default="yinyang.png", help="figure of the first seed ('' = none)")
    ap.add_argument("--generator", choices=("eventgrad", "kriener"), default="eventgrad",
                    help="eventgrad: seeded draws (data seed 0); kriener: the reference "
                         "generator's splits (seeds 42 / 41 / 40)")
    args = ap.parse_args(argv)
    sizes = dict(hidden=30, n_train=300, n_validation=100, n_test=200) if args.quick else {}
    epochs = args.epochs or (3 if args.quick else 100)
    acc = []
    for seed in range(args.seeds):
        # the same data for every seed: data seed 0, or the reference splits
        task = tasks.yinyang(seed, generator=args.generator, **sizes)
        res = training.train(task, method="eventprop", epochs=epochs, lr=5e-3, batch_size=32,
                             lr_decay=0.95, seed=seed, revive=0.1,  # dead-neuron rule
                             progress=not args.quick)
        s = res.summary                              # exact event engine
        acc.append(s["test_accuracy"])
        print(f"seed {seed}: test accuracy {100 * s['test_accuracy']:.2f} % (validation "
              f"{100 * s['validation_accuracy']:.2f} %, train {100 * s['train_accuracy']:.2f} "
              f"%), {s['seconds_per_epoch']:.2f} s per epoch")
        if seed == 0 and args.plot:
            from eventgrad.experiments.training_plots import plot_yinyang
            plot_yinyang(task, res.history, res.network, args.plot)
    print(f"test accuracy over {args.seeds} seed(s): {100 * np.mean(acc):.2f} +- "
          f"{100 * np.std(acc):.2f} %")
    return {"test_accuracy": acc}


if __name__ == "__main__":
    main()

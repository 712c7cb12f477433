"""Figures of trained networks: temporal XOR responses, spike-timing error per epoch,
Yin-Yang learning curves and decision map.

Every trace comes from the exact event engine: spike times from :func:`eventgrad.simulate`,
membrane potentials from :meth:`eventgrad.SimulationResult.voltage` (the closed form replayed
between events, not a time-stepped integration).
"""

from __future__ import annotations

import numpy as np

from ..event.readout import max_voltage
from ..event.simulate import simulate

__all__ = ["plot_xor", "plot_timing", "plot_yinyang", "yinyang_decision_grid"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_xor(task, network, path: str, title: str | None = None, n_times: int = 1201) -> None:
    """Temporal XOR after training, in the manner of Neftci, Mostafa & Zenke (2019), Fig. 3b.

    One column per input pattern; rows: the input spikes (data inputs and the bias), the
    hidden neurons' membrane potentials, the output neurons' membrane potentials. Spikes are
    marked at the threshold (V is reset to ``v_reset`` at the spike); the dashed line is the
    threshold. A neuron that never fires but whose exact maximum of V comes within
    :data:`NEAR_MISS` of its threshold is marked with a hollow circle at that maximum (on the
    plot it would look like a spike). The column title gives the pattern, its label and the
    predicted class (the output neuron that spikes first, exact engine).
    """
    plt = _pyplot()
    res = simulate(network, task.inputs, task.t_max)
    times = np.linspace(0.0, task.t_max, n_times)
    pops = [p for p in network.populations]
    n_rows = 1 + len(pops)
    n_cols = len(task.inputs)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(3.1 * n_cols, 1.2 + 1.9 * n_rows),
                             sharex=True, sharey="row", squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    names = ["early", "late"]
    pred = task.predict(network)
    n_in = network.input.size
    for b, r in enumerate(res):
        ax = axes[0, b]
        inp = r.spikes("input")
        for i in range(n_in):
            t_i = inp.times[inp.ids == i]
            ax.vlines(t_i, i - 0.35, i + 0.35, color="k", lw=2)
        ax.set_yticks(range(n_in))
        ax.set_yticklabels([f"in {i}" if i < 2 else "bias" for i in range(n_in)]
                           if n_in == 3 else [f"in {i}" for i in range(n_in)])
        ax.set_ylim(-0.7, n_in - 0.3)
        pat = f"({names[b // 2]}, {names[b % 2]})" if n_cols == 4 else f"sample {b}"
        ok = "correct" if pred[b] == task.labels[b] else "WRONG"
        ax.set_title(f"{pat}\nlabel {int(task.labels[b])}, predicted {int(pred[b])} ({ok})",
                     fontsize=9)
        for row, pop in enumerate(pops, start=1):
            ax = axes[row, b]
            V = r.voltage(pop, times)
            sp = r.spikes(pop)
            th = pop.neuron.threshold
            for n in range(pop.size):
                c = colors[n % len(colors)]
                ax.plot(times, V[:, n], color=c, lw=1.1, label=f"{pop.name} {n}")
                t_n = sp.times[sp.ids == n]
                ax.plot(t_n, np.full(t_n.shape, th), "v", color=c, ms=6, mec="k", mew=0.5)
            if np.isfinite(th):
                ax.axhline(th, color="0.4", ls="--", lw=0.8)
                _mark_near_misses(ax, r, pop, colors)
            if b == 0:
                ax.set_ylabel(f"{pop.name} V")
            if pop.name == "output":
                first = r.first_spike_times(pop)
                if np.any(np.isfinite(first)):
                    k = int(np.argmin(first))
                    ax.axvline(first[k], color=colors[k % len(colors)], lw=0.8, ls=":")
    axes[0, 0].set_ylabel("input")
    for b in range(n_cols):
        axes[-1, b].set_xlabel("time (ms)")
    for row in range(1, n_rows):
        axes[row, -1].legend(fontsize=7, loc="upper right", ncol=1 if pops[row - 1].size < 5
                             else 2)
    fig.suptitle(title or f"{task.name}: responses of the trained network (exact engine)",
                 fontsize=11)
    fig.text(0.5, 0.005, "V from the closed form between events (SimulationResult.voltage); "
             "triangles: spikes (V resets to 0); dashed: threshold; dotted: first output spike; "
             f"circles: maxima within {NEAR_MISS:g} of threshold without a spike",
             ha="center", fontsize=8, color="0.3")
    fig.tight_layout(rect=(0, 0.02, 1, 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)


#: How close (dimensionless voltage) the maximum of a silent neuron's V must come to its
#: threshold to be marked as a near miss in :func:`plot_xor`.
NEAR_MISS = 0.01


def _mark_near_misses(ax, r, pop, colors) -> int:
    """Hollow circles at the exact maxima of V of ``pop``'s silent neurons that come within
    :data:`NEAR_MISS` of threshold; returns how many."""
    vm = max_voltage(r, pop, only_silent=True)
    near = np.isfinite(vm.values) & (vm.values >= pop.neuron.threshold - NEAR_MISS)
    for n in np.flatnonzero(near):
        ax.plot(vm.times[n], vm.values[n], "o", ms=9, mfc="none", mec=colors[n % len(colors)],
                mew=1.4)
        ax.annotate(f"{pop.neuron.threshold - vm.values[n]:.1e} below", (vm.times[n],
                    vm.values[n]), textcoords="offset points", xytext=(6, -10), fontsize=7,
                    color=colors[n % len(colors)])
    return int(near.sum())


def _coincides(first, ep, y, rel: float = 0.01) -> str:
    """A legend note when the series ``(ep, y)`` lies on the ``first`` one (same epochs,
    within ``rel`` relative everywhere), which would hide it."""
    if first is None or len(ep) == 0 or not np.array_equal(first[0], ep):
        return ""
    d = float(np.max(np.abs(y - first[1]) / np.maximum(np.abs(first[1]), 1e-300)))
    if d > rel:
        return ""
    return f" (on the {first[2] or 'first'} curve: within {d:.1%})"


def plot_timing(history, path: str, title: str | None = None, floor: float = 1e-16,
                others: dict | None = None, label: str = "this run") -> None:
    """Largest timing error ``max |t_first - target|`` (ms, exact engine) per epoch, log scale.

    ``history`` is :attr:`TrainResult.history` (Adam epochs, then Gauss-Newton steps, drawn
    with different markers). An error of exactly 0 is drawn at ``floor``; a silent output
    (infinite error) is marked at the top. ``others`` optionally maps a label to another
    history to draw in the same axes (e.g. the surrogate path at several dt); ``label`` names
    ``history`` then.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    series = {"": history} if not others else {label: history, **others}
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    top = 0.0
    first_adam = None
    for k, (name, hist) in enumerate(series.items()):
        c = colors[k % len(colors)]
        ep = np.array([h["epoch"] for h in hist], dtype=float)
        err = np.array([h["timing_error_ms"] for h in hist], dtype=float)
        fin = np.isfinite(err)
        top = max(top, float(np.max(err[fin])) if fin.any() else 1.0)
        y = np.where(err > 0, err, floor)
        newton = np.array([h.get("phase") == "newton" for h in hist])
        pre = name + ": " if name else ""
        adam = ~newton & fin
        note = _coincides(first_adam, ep[adam], y[adam])
        if first_adam is None:
            first_adam = (ep[adam], y[adam], name)
        # the first series wide and pale underneath, so that another drawn on it stays visible
        ax.semilogy(ep[adam], y[adam], "-", color=c, lw=3.5 if k == 0 and others else 1.5,
                    alpha=0.55 if k == 0 and others else 1.0, label=f"{pre}Adam epochs{note}")
        if newton.any():
            idx = np.flatnonzero(newton)
            xs = np.concatenate([[ep[idx[0] - 1]], ep[idx]])
            ys = np.concatenate([[y[idx[0] - 1]], y[idx]])
            ax.semilogy(xs, ys, "o--", color=c, ms=4, lw=1,
                        label=f"{pre}Gauss-Newton steps")
        if (~fin).any():
            ax.plot(ep[~fin], np.full((~fin).sum(), top * 3), "x", color=c,
                    label=f"{pre}an output silent")
        last = err[-1]
        # to the right of the last point, where no line runs
        ax.annotate(f"{last:.2g} ms" if last > 0 else "0 (exact to float64)",
                    (ep[-1], y[-1]), textcoords="offset points", xytext=(7, 4), ha="left",
                    va="center", fontsize=8, color=c)
    lo, hi = ax.get_xlim()
    ax.set_xlim(lo, hi + 0.12 * (hi - lo))          # room for the end labels
    ax.axhline(np.spacing(30.0), color="0.5", ls=":", lw=0.8)
    ax.text(ax.get_xlim()[0], np.spacing(30.0) * 1.6, " one float64 ulp at 30 ms",
            fontsize=7, color="0.4")
    ax.set_xlabel("epoch (Adam), then Gauss-Newton step")
    ax.set_ylabel("max |t_first - target| (ms)")
    ax.set_title(title or "Spike-timing error (exact event engine)", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def yinyang_decision_grid(task, network, n: int = 120) -> tuple[np.ndarray, np.ndarray]:
    """Predicted class (exact engine) on an ``n`` x ``n`` grid of the unit square.

    Returns ``(grid, classes)``: the grid coordinates ``(n,)`` (cell centres) and the class
    per cell, shape ``(n, n)`` indexed ``[y, x]``; -1 outside the Yin-Yang disc (not
    simulated) and -2 where all outputs are silent. Points are encoded by ``task.encode``.
    """
    from .datasets import yinyang_class

    if task.encode is None:
        raise ValueError(f"{task.name}: the task has no input encoding (Task.encode)")
    g = (np.arange(n) + 0.5) / n
    X, Y = np.meshgrid(g, g)
    inside = yinyang_class(X, Y) >= 0
    pts = np.stack([X[inside], Y[inside]], axis=1)
    first = simulate(network, task.encode(pts), task.t_max).first_spike_times(task.loss.pop)
    pred = np.where(np.all(np.isinf(first), axis=1), -2, np.argmin(first, axis=1))
    out = np.full(X.shape, -1, dtype=np.int64)
    out[inside] = pred
    return g, out


def plot_yinyang(task, history, network, path: str, title: str | None = None,
                 grid: int = 120) -> None:
    """Yin-Yang training: learning curves and the trained network's decision map.

    Left: the loss the method trained on (mean over each epoch's batches) and the exact
    loss on the training set; middle: training and validation accuracy per epoch (exact
    engine) and the final test accuracy; right: the class the trained network predicts on a
    ``grid`` x ``grid`` raster (exact engine), with the test points on top in their true class's
    colour (a black ring marks a misclassified one); the legend beside the map names every
    region and marker. Epoch axes have integer ticks; the loss axis a tick at 1, 2 and 5 of
    each decade (at 1 to 9 when it spans about one decade).
    """
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    ep = np.array([h["epoch"] for h in history], dtype=float)
    ax = axes[0]
    ax.plot(ep[1:], [h["loss"] for h in history[1:]], "-", label="training loss (method's)")
    ax.plot(ep, [h["exact_loss"] for h in history], "-", label="exact loss, training set")
    if "validation_loss" in history[0]:
        ax.plot(ep, [h["validation_loss"] for h in history], "-",
                label="exact loss, validation set")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    lo, hi = ax.get_ylim()         # within about a decade, a tick at every 1..9 of it
    few = np.log10(hi / lo) < 1.5 if lo > 0 else False
    ax.yaxis.set_major_locator(LogLocator(base=10.0, subs=np.arange(1.0, 10.0) if few
                                          else (1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax = axes[1]
    ax.plot(ep, [100 * h["train_accuracy"] for h in history], "-", label="training")
    if "validation_accuracy" in history[0]:
        ax.plot(ep, [100 * h["validation_accuracy"] for h in history], "-", label="validation")
    test = None
    if task.test is not None:
        test = task.test.predict(network)
        acc = 100 * float(np.mean(test == task.test.labels))
        ax.plot([ep[-1]], [acc], "k*", ms=10, label=f"test (final): {acc:.1f} %")
    ax.set_ylim(max(0.0, min(100 * h["train_accuracy"] for h in history) - 5), 100.5)
    ax.set_xlabel("epoch")
    for a in axes[:2]:
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("accuracy (%), exact engine")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax = axes[2]
    g, cls = yinyang_decision_grid(task, network, grid)
    colors = ["#4c72b0", "#dd8452", "#55a868"]
    img = np.ma.masked_less(cls.astype(float), 0)
    ax.imshow(img, origin="lower", extent=(0, 1, 0, 1), cmap=ListedColormap(colors),
              vmin=-0.5, vmax=2.5, alpha=0.35, interpolation="nearest")
    names = ["yang", "yin", "dot"]
    handles = [Patch(color=colors[c], alpha=0.35, label=f"predicted {names[c]}")
               for c in range(3)]
    if (cls == -2).any():
        yy, xx = np.nonzero(cls == -2)
        ax.plot(g[xx], g[yy], ",", color="k")
        handles.append(Patch(facecolor="white", edgecolor="k", hatch="...",
                             label=f"every output silent ({int((cls == -2).sum())} cells)"))
    handles.append(Patch(facecolor="white", edgecolor="0.7", label="outside the disc"))
    sub = task.test if task.test is not None else task
    pred = test if test is not None else sub.predict(network)
    for c in range(3):
        m = sub.labels == c
        handles.append(ax.scatter(sub.features[m, 0], sub.features[m, 1], s=7, color=colors[c],
                                  edgecolors="none", label=f"point of class {names[c]} ({c})"))
    wrong = pred != sub.labels
    handles.append(ax.scatter(sub.features[wrong, 0], sub.features[wrong, 1], s=36,
                              facecolors="none", edgecolors="k", lw=0.9,
                              label=f"misclassified ({int(wrong.sum())})"))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title("decision map (background) and "
                 f"{'test' if task.test is not None else 'training'} points", fontsize=9)
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0),
              markerscale=1.5, frameon=False)
    fig.suptitle(title or f"{task.name} (exact event engine)", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(path, dpi=110)
    plt.close(fig)

"""Gradient cross-check: exact (EventProp), central differences, and surrogate gradients.

One network, one batch of inputs, one loss. Three ways to get ``dL/dw`` for every weight:

``"eventprop"``
    :func:`eventgrad.value_and_grad`: the exact gradient of the event engine's loss. It is the
    reference every other row is compared against (its own row compares it with itself).
``"fd"``
    4-point central differences of the event engine's loss (:func:`central_differences`,
    truncation error O(h^4), step ``fd_h`` in weight units). This row validates the reference:
    where the loss is smooth it agrees with EventProp to about 1e-9 relative or better. A weight
    whose stencil (``w +- h``, ``w +- 2h``) changes any neuron's spike count in any sample sits at
    (or next to) a discontinuity of the loss: its difference quotient is meaningless, so it gets
    ``nan``, is left out of the comparison, and is *reported*: ``n_discontinuous`` counts such
    weights and ``discontinuous`` lists their ``[pre, post]`` indices.
``"discrete"``
    :func:`eventgrad.discrete.value_and_grad`: backprop through time on a grid of step ``dt`` with
    a surrogate derivative, over the grid ``dt x surrogate x scale x detach_reset`` (other
    options of the time-stepped path, e.g. ``reset`` or ``update``, can be passed through and
    apply to all rows).

Rows
----
One plain record (``dict``; JSON-serialisable except that undefined metrics are ``nan``) per
method, setting and *projection* (``"input->hidden"``, ... in the order of
``network.projections``, then ``"all"``: all weights as one vector). With ``g`` the method's
gradient and ``r`` EventProp's, over the entries where both are finite:

================  =============================================================================
key               meaning
================  =============================================================================
method            ``"eventprop"``, ``"fd"`` or ``"discrete"``
dt                ms (discrete rows; ``None`` otherwise)
surrogate         surrogate name (discrete rows; ``None`` otherwise)
scale             surrogate scale in 1/voltage (discrete rows; ``None`` otherwise)
detach_reset      bool (discrete rows; ``None`` otherwise)
projection        ``"pre->post"`` or ``"all"``
cosine            ``<g, r> / (|g| |r|)``; ``nan`` if either norm is 0
norm_ratio        ``|g| / |r|``; ``nan`` if ``|r| = 0``
rel_error         ``|g - r| / |r|``; ``nan`` if ``|r| = 0``
sign_agreement    fraction of the entries with ``|r| > SIGN_TOL * max|r|`` where
                  ``sign(g) == sign(r)``; ``nan`` if there are none
n_discontinuous   fd rows: weights left out because their stencil changed spike counts;
                  ``None`` for the other methods (nothing is left out there)
================  =============================================================================

and, for diagnosis: ``loss`` (the loss the method computed: the discrete path's own loss for
discrete rows), ``norm`` (``|g|``), ``ref_norm`` (``|r|``), ``n_params``; eventprop rows
``n_grazing`` and ``min_crossing_slope`` (see :class:`eventgrad.Gradients`); fd rows ``h`` and
``discontinuous``; discrete rows ``spike_count_mismatch`` (number of (sample, neuron) pairs, over
all populations, whose spike count on the grid differs from the event engine's) and
``first_spike_error`` (ms: largest ``|t_grid - t_exact|`` of the first spikes of the loss's
population where both spike; ``nan`` if none).

Where to expect agreement
-------------------------
With ``detach_reset=True``, a first-spike loss and the default ``update="exact"``,
``inputs="offset"``, the discrete gradient of weights *into the read-out population* flows only
through the interpolated crossing time, which converges to the exact spike time: those rows
approach EventProp as ``dt -> 0`` whatever the surrogate. Gradients of weights into earlier
populations pass through the surrogate of the hidden spikes and have no reason to converge.
An undetached reset adds a term ``(v_reset - U) sigma(U - threshold)`` to the voltage's
derivative, which does not vanish as ``dt -> 0`` either (and with a tall surrogate can make the
backward pass blow up).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from .._checks import positive
from .._json import to_json
from ..discrete.surrogates import Surrogate
from ..event.gradients import readout_values, value_and_grad
from ..event.simulate import simulate
from ..losses import Loss
from ..model.network import InputPopulation, Network
from ..model.spikes import Spikes

__all__ = ["crosscheck", "central_differences", "loss_value", "compare", "format_table", "plot",
           "FDResult", "ROW_KEYS", "DEFAULT_DTS", "DEFAULT_SURROGATES", "DEFAULT_SCALES",
           "SIGN_TOL", "figure1", "plot_figure1", "to_json"]

#: Keys every row has (more keys are diagnostics; see the module docs).
ROW_KEYS = ("method", "dt", "surrogate", "scale", "detach_reset", "projection", "cosine",
            "norm_ratio", "rel_error", "sign_agreement", "n_discontinuous")
#: Default grid of the discrete path: steps in ms, surrogate names, scales in 1/voltage.
from .._constants import DEFAULT_DTS, DEFAULT_SCALES, DEFAULT_SURROGATES  # noqa: E402

#: Entries of the reference smaller than this times its largest |entry| are left out of
#: ``sign_agreement`` (their sign is noise, or they are exactly 0).
SIGN_TOL = 1e-6


# --------------------------------------------------------------------- central differences
@dataclass
class FDResult:
    """Central differences of a scalar function.

    Attributes
    ----------
    grad : ndarray, the shape of ``x0`` — ``nan`` where the stencil changed the signature
    discontinuous : list of index tuples into ``x0`` — the entries set to ``nan``
    n_evals : int — function evaluations used
    """

    grad: np.ndarray
    discontinuous: list = field(default_factory=list)
    n_evals: int = 0


def central_differences(evaluate: Callable, x0, h: float) -> FDResult:
    """4-point central differences of ``evaluate(x) -> (value, signature)`` at ``x0``.

    ``g_i = (8 (f(x + h e_i) - f(x - h e_i)) - (f(x + 2h e_i) - f(x - 2h e_i))) / (12 h)``,
    truncation error O(h^4). ``signature`` is any hashable summary of the forward pass (here:
    the spike counts of every neuron in every sample). An entry whose four stencil points do not
    all have the signature of ``x0`` straddles a jump of the function: it is listed in
    ``discontinuous`` and its ``grad`` is ``nan`` (never silently dropped or zeroed).
    """
    x0 = np.array(x0, dtype=np.float64)
    h = positive(h, "h")
    g = np.zeros_like(x0)
    bad = []
    _, base = evaluate(x0)
    n = 1
    for idx in np.ndindex(x0.shape):
        vals = {}
        for s in (-2, -1, 1, 2):
            x = x0.copy()
            x[idx] += s * h
            vals[s], sig = evaluate(x)
            n += 1
            if sig != base:
                break
        else:
            g[idx] = (8.0 * (vals[1] - vals[-1]) - (vals[2] - vals[-2])) / (12.0 * h)
            continue
        g[idx] = np.nan
        bad.append(tuple(int(i) for i in idx))
    return FDResult(g, bad, n)


def _batch(spikes) -> tuple[list[Spikes], bool]:
    single = isinstance(spikes, Spikes)
    return ([spikes] if single else list(spikes)), single


def _target(target, single: bool):
    if single and target is not None and np.ndim(target) == 0:
        return [target]
    return target


def _readout_values(results, loss: Loss) -> np.ndarray:
    return readout_values(results, loss)[0]


def loss_value(network: Network, spikes, loss: Loss, t_max: float, target=None
               ) -> tuple[float, tuple]:
    """The event engine's loss (as :func:`eventgrad.value_and_grad` defines it: batch mean,
    silent neurons at ``t_silent``) and the spike-count signature of the forward pass: a tuple
    over samples and populations of the spike counts of every neuron."""
    batch, single = _batch(spikes)
    res = simulate(network, batch, t_max)
    results = list(res)
    vals = _readout_values(results, loss)
    sig = tuple(tuple(r.spike_counts(p).tolist()) for r in results for p in network.populations)
    L = loss(torch.tensor(vals, dtype=torch.float64), _target(target, single))
    return float(L), sig


def _fd_weights(network: Network, spikes, loss: Loss, t_max: float, target, h: float,
                projections: Sequence[int] | None = None) -> tuple[list[np.ndarray], list[list]]:
    """Central differences of the loss with respect to the weights of ``projections`` (all by
    default). Returns per projection the gradient (nan where discontinuous; None for
    projections not differentiated) and the list of discontinuous ``[pre, post]`` indices."""
    net = network.copy()
    w0 = net.get_weights()
    which = list(range(len(w0))) if projections is None else list(projections)
    sizes = [w0[i].size for i in which]
    x0 = np.concatenate([w0[i].ravel() for i in which])

    def evaluate(x):
        ws = [w.copy() for w in w0]
        k = 0
        for i, n in zip(which, sizes):
            ws[i] = x[k:k + n].reshape(w0[i].shape)
            k += n
        net.set_weights(ws)
        return loss_value(net, spikes, loss, t_max, target)

    fd = central_differences(evaluate, x0, h)
    grads: list = [None] * len(w0)
    disc: list = [[] for _ in w0]
    k = 0
    bad = {i for (i,) in fd.discontinuous}
    for i, n in zip(which, sizes):
        grads[i] = fd.grad[k:k + n].reshape(w0[i].shape)
        disc[i] = [list(np.unravel_index(j - k, w0[i].shape)) for j in sorted(bad)
                   if k <= j < k + n]
        disc[i] = [[int(a) for a in d] for d in disc[i]]
        k += n
    return grads, disc


# --------------------------------------------------------------------- comparison
def compare(g, ref) -> dict:
    """Agreement of gradient ``g`` with the reference ``ref`` (arrays of one shape), over the
    entries where both are finite: ``cosine``, ``norm_ratio``, ``rel_error``,
    ``sign_agreement`` (see the module docs), plus ``norm``, ``ref_norm`` and ``n_params``
    (entries compared)."""
    g = np.asarray(g, dtype=np.float64).ravel()
    r = np.asarray(ref, dtype=np.float64).ravel()
    keep = np.isfinite(g) & np.isfinite(r)
    g, r = g[keep], r[keep]
    ng, nr = float(np.linalg.norm(g)), float(np.linalg.norm(r))
    cos = float(g @ r / (ng * nr)) if ng > 0 and nr > 0 else math.nan
    ratio = ng / nr if nr > 0 else math.nan
    rel = float(np.linalg.norm(g - r)) / nr if nr > 0 else math.nan
    big = np.abs(r) > SIGN_TOL * np.max(np.abs(r)) if r.size else np.zeros(0, bool)
    sign = float(np.mean(np.sign(g[big]) == np.sign(r[big]))) if big.any() else math.nan
    return {"cosine": cos, "norm_ratio": ratio, "rel_error": rel, "sign_agreement": sign,
            "norm": ng, "ref_norm": nr, "n_params": int(g.size)}


def _projection_names(network: Network) -> list[str]:
    names = []
    for pr in network.projections:
        pre = "input" if isinstance(pr.pre, InputPopulation) else pr.pre.name
        names.append(f"{pre}->{pr.post.name}")
    dup = {n for n in names if names.count(n) > 1}
    return [f"{n}#{i}" if n in dup else n for i, n in enumerate(names)]


def _rows(base: dict, grads: list, ref: list, names: list[str], extra_per_proj=None) -> list:
    rows = []
    flat_g = np.concatenate([np.asarray(g, dtype=np.float64).ravel() for g in grads])
    flat_r = np.concatenate([np.asarray(r, dtype=np.float64).ravel() for r in ref])
    items = [(n, g, r, i) for i, (n, g, r) in enumerate(zip(names, grads, ref))]
    items.append(("all", flat_g, flat_r, None))
    for name, g, r, i in items:
        row = dict(base)
        row["projection"] = name
        row.update(compare(g, r))
        if extra_per_proj is not None:
            row.update(extra_per_proj(i))
        # the documented keys first, in their documented order, then the diagnostics
        rows.append({**{k: row[k] for k in ROW_KEYS}, **row})
    return rows


def _forward_mismatch(network: Network, exact_results, grid_result, loss: Loss) -> dict:
    grid = [grid_result] if not hasattr(grid_result, "__len__") else list(grid_result)
    mism = 0
    for re_, rg in zip(exact_results, grid):
        for p in network.populations:
            mism += int(np.sum(re_.spike_counts(p) != rg.spike_counts(p)))
    te = np.stack([r.first_spike_times(loss.pop) for r in exact_results]) \
        if loss.readout == "first_spike" else None
    err = math.nan
    if te is not None:
        tg = np.stack([r.first_spike_times(loss.pop) for r in grid])
        both = np.isfinite(te) & np.isfinite(tg)
        if both.any():
            err = float(np.max(np.abs(te[both] - tg[both])))
    return {"spike_count_mismatch": mism, "first_spike_error": err}


# --------------------------------------------------------------------- the cross-check
def crosscheck(network: Network, spikes, loss: Loss, t_max: float, target=None,
               dts: Sequence[float] = DEFAULT_DTS,
               surrogates: Sequence[str] = DEFAULT_SURROGATES,
               scales: Sequence[float] = DEFAULT_SCALES,
               detach_resets: Sequence[bool] = (True, False),
               fd: bool = True, fd_h: float = 1e-4, **discrete_options) -> list[dict]:
    """Compare EventProp, central differences and surrogate gradients of one loss.

    Parameters
    ----------
    network : Network
    spikes : Spikes or sequence of Spikes (a batch; the loss is the batch mean)
    loss : eventgrad.losses.Loss
    t_max : float, ms
    target : labels or target times, as the loss needs
    dts : steps of the discrete path, ms
    surrogates : names from :data:`eventgrad.discrete.surrogates.SURROGATES`
    scales : surrogate scales, 1/voltage
    detach_resets : values of the discrete path's ``detach_reset``
    fd : also compute central differences of the event engine (one row per projection)
    fd_h : finite-difference step, weight units
    **discrete_options : passed to :func:`eventgrad.discrete.value_and_grad` for every
        discrete row (``reset``, ``update``, ``inputs``, ``interpolate``, ``dtype``)

    Returns
    -------
    list of dict — the rows described in the module docs: the eventprop rows, then the fd rows,
    then the discrete rows ordered by dt, surrogate, scale, detach_reset; within each, one row
    per projection and a last one for ``"all"``.
    """
    from .. import discrete

    for name in surrogates:
        Surrogate(name, 1.0)  # validates the name before any work
    names = _projection_names(network)
    L_ep, g_ep = value_and_grad(network, spikes, loss, t_max, target)
    ref = [np.asarray(g, dtype=np.float64) for g in g_ep.weights]
    exact_results = [g_ep.result] if isinstance(spikes, Spikes) else list(g_ep.result)
    none = {"dt": None, "surrogate": None, "scale": None, "detach_reset": None}
    rows = _rows({"method": "eventprop", **none, "n_discontinuous": None, "loss": L_ep,
                  "n_grazing": int(g_ep.n_grazing),
                  "min_crossing_slope": float(g_ep.min_crossing_slope)}, ref, ref, names)
    if fd:
        g_fd, disc = _fd_weights(network, spikes, loss, t_max, target, fd_h)
        all_disc = [[names[i], *d] for i, ds in enumerate(disc) for d in ds]

        def fd_extra(i):
            ds = all_disc if i is None else [list(d) for d in disc[i]]
            return {"n_discontinuous": len(ds), "discontinuous": ds}

        rows += _rows({"method": "fd", **none, "loss": L_ep, "h": float(fd_h)}, g_fd, ref,
                      names, fd_extra)
    for dt in dts:
        for sname in surrogates:
            for scale in scales:
                for det in detach_resets:
                    sur = Surrogate(sname, scale)
                    L_d, g_d = discrete.value_and_grad(network, spikes, loss, t_max, float(dt),
                                                       target, surrogate=sur,
                                                       detach_reset=bool(det),
                                                       **discrete_options)
                    base = {"method": "discrete", "dt": float(dt), "surrogate": sname,
                            "scale": float(scale), "detach_reset": bool(det),
                            "n_discontinuous": None, "loss": L_d}
                    base.update(_forward_mismatch(network, exact_results, g_d.result, loss))
                    rows += _rows(base, g_d.weights, ref, names)
    return rows


# --------------------------------------------------------------------- output
def _fmt(v, spec: str) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float) and math.isnan(v):
        return "nan"
    return format(v, spec)


def format_table(rows: Sequence[dict]) -> str:
    """The rows as a fixed-width text table (one line per row)."""
    cols = [("method", "method", "<9", "s"), ("dt", "dt/ms", ">6", "g"),
            ("surrogate", "surrogate", "<10", "s"), ("scale", "scale", ">5", "g"),
            ("detach_reset", "detach", "<6", "s"), ("projection", "projection", "<15", "s"),
            ("cosine", "cosine", ">9", ".6f"), ("norm_ratio", "norm_ratio", ">10", ".4g"),
            ("rel_error", "rel_error", ">9", ".2e"), ("sign_agreement", "sign_agr", ">8", ".3f"),
            ("n_discontinuous", "n_disc", ">6", "d"), ("loss", "loss", ">9", ".5f"),
            ("spike_count_mismatch", "fwd_mism", ">8", "d")]
    lines = [" ".join(format(h, a) for _, h, a, _ in cols)]
    lines.append("-" * len(lines[0]))
    for r in rows:
        cells = []
        for key, _, align, spec in cols:
            s = _fmt(r.get(key), spec)
            cells.append(format(s, align))
        lines.append(" ".join(cells))
    return "\n".join(lines)


def plot(rows: Sequence[dict], path: str, projections: Sequence[str] | None = None,
         title: str | None = None) -> None:
    """Save the agreement of the discrete rows with EventProp as an image (matplotlib, Agg).

    Two panels (columns), each with a cosine and a norm-ratio axis (log scale) per projection:

    * left, against ``dt`` (log scale): one line per surrogate and scale, solid for
      ``detach_reset=True``, dashed for ``False``;
    * right, against the surrogate scale at the smallest ``dt``: one line per surrogate and
      ``detach_reset``.

    Grey lines mark perfect agreement (1) and, on the cosine axes, the fd row's cosine (central
    differences vs EventProp). The norm-ratio axes span :data:`RATIO_RANGE`; ratios outside it
    are drawn at its edge as triangles, and each panel says how many. ``projections``: which
    to draw (default: each projection of the network, without ``"all"``).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    disc = [r for r in rows if r["method"] == "discrete"]
    if not disc:
        raise ValueError("plot: no discrete rows")
    if projections is None:
        projections = [p for p in dict.fromkeys(r["projection"] for r in disc) if p != "all"]
        projections = projections or ["all"]
    projections = list(projections)
    surrogates = list(dict.fromkeys(r["surrogate"] for r in disc))
    scales = sorted({r["scale"] for r in disc})
    dts = sorted({r["dt"] for r in disc})
    detaches = list(dict.fromkeys(r["detach_reset"] for r in disc))
    n = len(projections)
    fig, axes = plt.subplots(2 * n, 2, figsize=(11, 3.1 * 2 * n + 1.2), sharex="col",
                             squeeze=False)
    color = _palette(plt, len(scales))
    for pi, proj in enumerate(projections):
        _agreement_rows(axes[2 * pi], axes[2 * pi + 1], rows, disc, proj, surrogates, scales,
                        dts, detaches, color)
    _format_axes(axes, dts, scales)
    handles = [Line2D([], [], color=color(si, ki), marker="o", label=f"{s}, scale {sc:g}")
               for si, s in enumerate(surrogates) for ki, sc in enumerate(scales)]
    handles += [Line2D([], [], color="k", ls=_STYLE[d], label=f"detach_reset={d}")
                for d in detaches]
    handles.append(Line2D([], [], color="0.3", lw=3, alpha=0.3,
                          label="central differences (cosine)"))
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.suptitle(title or "Surrogate gradients (time-stepped) vs the exact gradient (EventProp)")
    fig.tight_layout(rect=(0, 0.09 if n == 1 else 0.06, 1, 0.98))
    fig.savefig(path, dpi=110)
    plt.close(fig)


_STYLE = {True: "-", False: "--"}   # line style by detach_reset


def _palette(plt, n_scales: int):
    """``color(surrogate index, scale index)``: one colour map per surrogate, darker for
    larger scales."""
    cmaps = [plt.cm.Blues, plt.cm.Oranges, plt.cm.Greens, plt.cm.Purples, plt.cm.Reds,
             plt.cm.Greys]

    def color(si, ki):
        return cmaps[si % len(cmaps)](0.45 + 0.5 * ki / max(1, n_scales - 1))
    return color


def _series(sel, key, xkey):
    pts = sorted((r[xkey], r[key]) for r in sel)
    return [p[0] for p in pts], [p[1] for p in pts]


def _agreement_rows(ax_c, ax_r, rows, disc, proj, surrogates, scales, dts, detaches, color):
    """One projection's two rows of :func:`plot`: cosine (``ax_c``) and norm ratio (``ax_r``)
    against dt (left) and against the scale at the smallest dt (right)."""
    sub = [r for r in disc if r["projection"] == proj]
    outside = [0, 0]                 # norm ratios outside RATIO_RANGE, per column
    fd_cos = [r["cosine"] for r in rows if r["method"] == "fd" and r["projection"] == proj]
    for si, s in enumerate(surrogates):
        for ki, sc in enumerate(scales):
            for det in detaches:
                sel = [r for r in sub if r["surrogate"] == s and r["scale"] == sc
                       and r["detach_reset"] == det]
                x, y = _series(sel, "cosine", "dt")
                ax_c[0].plot(x, y, _STYLE[det], marker="o", ms=3.5, color=color(si, ki))
                x, y = _series(sel, "norm_ratio", "dt")
                outside[0] += _ratio_line(ax_r[0], x, y, _STYLE[det], "o", 3.5, color(si, ki))
        for det in detaches:
            sel = [r for r in sub if r["surrogate"] == s and r["dt"] == dts[0]
                   and r["detach_reset"] == det]
            c = color(si, len(scales) - 1)
            x, y = _series(sel, "cosine", "scale")
            ax_c[1].plot(x, y, _STYLE[det], marker="s", ms=4.5, color=c)
            x, y = _series(sel, "norm_ratio", "scale")
            outside[1] += _ratio_line(ax_r[1], x, y, _STYLE[det], "s", 4.5, c)
    finite = [r["cosine"] for r in sub if math.isfinite(r["cosine"])]
    for col in (0, 1):
        ax_c[col].axhline(1.0, color="0.6", lw=0.8, zorder=0)
        ax_r[col].axhline(1.0, color="0.6", lw=0.8, zorder=0)
        if fd_cos:
            ax_c[col].axhline(fd_cos[0], color="0.3", lw=3, alpha=0.3, zorder=0)
        ax_r[col].set_yscale("log")
        ax_r[col].set_ylim(RATIO_RANGE[0] / 1.6, RATIO_RANGE[1] * 1.6)
        if outside[col]:
            ax_r[col].set_title(f"{outside[col]} point(s) outside [{RATIO_RANGE[0]:g}, "
                                f"{RATIO_RANGE[1]:g}], drawn at its edge (triangles)",
                                loc="right", fontsize=7, color="0.25", pad=2)
        ax_c[col].set_ylabel(f"{proj}\ncosine")
        ax_r[col].set_ylabel(f"{proj}\nnorm ratio")
        ax_c[col].set_ylim(min(-0.05, min(finite) - 0.05) if finite else -1.05, 1.05)


#: The norm-ratio axes of :func:`plot` span this range; a ratio outside it is drawn at the
#: edge as a triangle pointing out of the axis, and the panel says how many there are.
RATIO_RANGE = (1e-3, 1e3)


def _ratio_line(ax, x, y, style, marker, ms, color) -> int:
    """A norm-ratio series with the values outside :data:`RATIO_RANGE` drawn at its edge
    (triangles up / down); returns how many were outside (non-finite ones not drawn)."""
    lo, hi = RATIO_RANGE
    y = np.asarray(y, dtype=float)
    yc = np.clip(y, lo, hi)
    ax.plot(x, yc, style, color=color)
    inside = (y >= lo) & (y <= hi)
    ax.plot(np.asarray(x)[inside], yc[inside], ls="none", marker=marker, ms=ms, color=color)
    for mask, m in ((y > hi, "^"), (y < lo, "v")):
        if mask.any():
            ax.plot(np.asarray(x)[mask], yc[mask], ls="none", marker=m, ms=ms + 3, color=color,
                    markeredgecolor="k", markeredgewidth=0.6, clip_on=False)
    return int(np.sum(np.isfinite(y) & ~inside))


def _format_axes(axes, dts, scales) -> None:
    """Grids, log axes with plain tick labels, the x axes' ticks and labels, column titles."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    plain = FuncFormatter(lambda v, _: f"{v:g}")
    for ax in axes.ravel():
        ax.grid(True, which="both", alpha=0.25)
        if ax.get_yscale() == "log":      # a tick a decade (the range is six of them)
            ax.yaxis.set_major_locator(LogLocator(base=10.0, subs=(1.0,)))
            ax.yaxis.set_major_formatter(plain)
            ax.yaxis.set_minor_formatter(NullFormatter())
    axes[-1, 0].set_xscale("log")
    axes[-1, 1].set_xscale("log")
    axes[-1, 0].set_xticks(dts)
    axes[-1, 1].set_xticks(scales)
    for ax in axes[-1]:
        ax.xaxis.set_major_formatter(plain)
        ax.xaxis.set_minor_formatter(NullFormatter())
    axes[-1, 0].set_xlabel("time step dt (ms)")
    axes[-1, 1].set_xlabel(f"surrogate scale (1/voltage) at dt = {dts[0]:g} ms")
    axes[0, 0].set_title("agreement with EventProp vs time step")
    axes[0, 1].set_title("agreement with EventProp vs surrogate scale")


# --------------------------------------------------------------------- figure 1
def _train(task, steps: int, lr: float, betas=(0.9, 0.999), eps: float = 1e-8
           ) -> tuple[Network, list[float]]:
    """Full-batch Adam (Kingma & Ba, written out in numpy) on the task's loss with EventProp
    gradients; deterministic. Returns the trained copy and the loss before each step."""
    net = task.network.copy()
    w = net.get_weights()
    m = [np.zeros_like(x) for x in w]
    v = [np.zeros_like(x) for x in w]
    history = []
    b1, b2 = betas
    for k in range(1, steps + 1):
        L, g = value_and_grad(net, task.inputs, task.loss, task.t_max, task.labels)
        history.append(L)
        for i, gi in enumerate(g.weights):
            m[i] = b1 * m[i] + (1 - b1) * gi
            v[i] = b2 * v[i] + (1 - b2) * gi * gi
            w[i] = w[i] - lr * (m[i] / (1 - b1 ** k)) / (np.sqrt(v[i] / (1 - b2 ** k)) + eps)
        net.set_weights(w)
    return net, history


def figure1(seed: int = 0, n_points: int = 41, train_steps: int = 150, lr: float = 0.01,
            dt: float = 0.1, surrogate: Surrogate | None = None, fd_h: float = 1e-4) -> dict:
    """Loss and gradients along a line in weight space (after Neftci, Mostafa & Zenke 2019).

    The 2-2-2 temporal-XOR network (:func:`eventgrad.tasks.xor_2_2_2`, ``seed``) is trained for
    ``train_steps`` full-batch Adam steps (learning rate ``lr``, betas 0.9 / 0.999) with
    EventProp gradients. Its
    hidden weights (input->hidden) are then moved linearly from their initial to their trained
    values, ``W1(a) = (1 - a) W1_init + a W1_trained`` for ``n_points`` values of ``a`` in
    [0, 1], with the output weights held at their *trained* values. At each point:

    * ``loss``: the event engine's loss; ``loss_discrete`` that of the time-stepped path;
    * ``grad_norm_eventprop``: ``|dL/dW1|`` by EventProp (exact);
    * ``grad_norm_fd``: the same by 4-point central differences of the event engine (step
      ``fd_h``); ``nan`` where any hidden weight's stencil changes a spike count
      (``n_discontinuous`` of them), i.e. where the loss is not smooth at that point;
    * ``grad_norm_surrogate``: ``|dL/dW1|`` of the time-stepped path (``dt`` ms, the discrete
      path's default options, ``surrogate`` default SuperSpike 10) and ``cosine_surrogate`` its
      cosine with EventProp's;
    * ``spike_counts``: total spikes over the batch (jumps mark discontinuities of the loss).

    Returns a plain dict (lists of floats) with these series, ``alpha``, the training history and
    the settings.
    """
    from .. import discrete
    from .tasks import xor_2_2_2

    task = xor_2_2_2(seed)
    acc0 = task.accuracy()
    trained, history = _train(task, train_steps, lr)
    acc1 = task.accuracy(trained)
    w_init, w_end = task.network.get_weights(), trained.get_weights()
    surrogate = Surrogate() if surrogate is None else surrogate
    alphas = np.linspace(0.0, 1.0, n_points)
    out = {k: [] for k in ("loss", "loss_discrete", "grad_norm_eventprop", "grad_norm_fd",
                           "n_discontinuous", "grad_norm_surrogate", "cosine_surrogate",
                           "fd_rel_error", "spike_counts")}
    net = trained.copy()
    for a in alphas:
        ws = [w.copy() for w in w_end]
        ws[0] = (1.0 - a) * w_init[0] + a * w_end[0]
        net.set_weights(ws)
        L, g = value_and_grad(net, task.inputs, task.loss, task.t_max, task.labels)
        g_fd, disc = _fd_weights(net, task.inputs, task.loss, task.t_max, task.labels, fd_h,
                                 projections=[0])
        L_d, g_d = discrete.value_and_grad(net, task.inputs, task.loss, task.t_max, dt,
                                           task.labels, surrogate=surrogate)
        ge, gs = g.weights[0], g_d.weights[0]
        nd = len(disc[0])
        out["loss"].append(L)
        out["loss_discrete"].append(L_d)
        out["grad_norm_eventprop"].append(float(np.linalg.norm(ge)))
        out["grad_norm_fd"].append(float(np.linalg.norm(g_fd[0])) if nd == 0 else math.nan)
        out["fd_rel_error"].append(compare(g_fd[0], ge)["rel_error"] if nd == 0 else math.nan)
        out["n_discontinuous"].append(nd)
        out["grad_norm_surrogate"].append(float(np.linalg.norm(gs)))
        out["cosine_surrogate"].append(compare(gs, ge)["cosine"])
        out["spike_counts"].append(int(sum(r.spike_counts(p).sum() for r in g.result
                                           for p in net.populations)))
    out.update({
        "alpha": alphas.tolist(),
        "train": {"steps": len(history), "lr": lr, "loss_history": history,
                  "accuracy_initial": acc0, "accuracy_trained": acc1},
        "settings": {"task": task.name, "seed": seed, "n_points": n_points, "dt": dt,
                     "surrogate": surrogate.name, "scale": surrogate.scale, "fd_h": fd_h,
                     "t_max": task.t_max},
        "weights_initial": [w.tolist() for w in w_init],
        "weights_trained": [w.tolist() for w in w_end],
    })
    return out


def plot_figure1(data: dict, path: str) -> None:
    """Save the three panels of :func:`figure1`'s data: loss along the path; gradient norms
    (exact by EventProp and by central differences, surrogate); cosine of the surrogate
    gradient with the exact one. Grey lines mark where the spike counts change."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a = np.asarray(data["alpha"])
    f = {k: np.asarray(data[k], dtype=float) for k in
         ("loss", "loss_discrete", "grad_norm_eventprop", "grad_norm_fd", "grad_norm_surrogate",
          "cosine_surrogate")}
    counts = np.asarray(data["spike_counts"])
    nd = np.asarray(data["n_discontinuous"])
    jumps = [0.5 * (a[i] + a[i + 1]) for i in range(len(a) - 1) if counts[i] != counts[i + 1]]
    fig, axes = plt.subplots(3, 1, figsize=(7, 8.5), sharex=True,
                             gridspec_kw={"height_ratios": [1.1, 1.4, 0.8]})
    ax = axes[0]
    ax.plot(a, f["loss"], "-", color="k", lw=1.8, label="event engine (exact)")
    ax.plot(a, f["loss_discrete"], "--", color="C1", lw=1.4,
            label=f"time-stepped, dt = {data['settings']['dt']:g} ms")
    ax.set_ylabel("loss")
    ax.legend(fontsize=8)
    ax = axes[1]
    ax.semilogy(a, f["grad_norm_eventprop"], "-", color="C0", lw=2.0, label="exact: EventProp")
    ok = np.isfinite(f["grad_norm_fd"])
    ax.semilogy(a[ok], f["grad_norm_fd"][ok], "o", mfc="none", mec="k", ms=6,
                label="exact: central differences")
    if (~ok).any():
        ax.semilogy(a[~ok], f["grad_norm_eventprop"][~ok], "x", color="C3", ms=7,
                    label="stencil changes spike counts (no FD)")
    ax.semilogy(a, f["grad_norm_surrogate"], "-", color="C1", lw=1.6,
                label=f"surrogate: {data['settings']['surrogate']} "
                      f"{data['settings']['scale']:g}, dt = {data['settings']['dt']:g} ms")
    ax.set_ylabel("|dL/dW_hidden|")
    ax.legend(fontsize=8)
    ax = axes[2]
    ax.plot(a, f["cosine_surrogate"], "-", color="C2", lw=1.6)
    ax.axhline(0.0, color="0.6", lw=0.8)
    ax.set_ylim(-1.05, 1.05)
    ax.set_ylabel("cosine(surrogate, exact)")
    ax.set_xlabel("a: hidden weights = (1 - a) initial + a trained")
    for ax in axes:
        for j in jumps:
            ax.axvline(j, color="0.75", lw=0.8, zorder=0)
        ax.grid(True, alpha=0.25)
    tr = data["train"]
    fig.suptitle(f"{data['settings']['task']}: accuracy {tr['accuracy_initial']:.2f} -> "
                 f"{tr['accuracy_trained']:.2f} after {tr['steps']} Adam steps\n"
                 f"grey lines: spike counts change ({int((nd > 0).sum())} points with "
                 f"a discontinuous FD stencil)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)

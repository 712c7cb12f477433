"""Central finite differences of the event engine's loss, with detection of spike-count jumps.

The stencil is the 4-point central difference (error O(h^4)). A parameter whose +-h or +-2h step
changes any neuron's spike count makes the loss discontinuous there: such parameters are returned
in ``FDResult.discontinuous`` (and reported by the tests), never silently compared or skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

import eventgrad as eg


@dataclass
class FDResult:
    grad: np.ndarray
    discontinuous: list = field(default_factory=list)


def fd_grad(evaluate, x0, h):
    """4-point central differences of ``evaluate(x) -> (loss, signature)`` at ``x0``.

    ``signature`` is a hashable spike-count signature of the forward pass; entries whose
    stencil changes it are listed in ``discontinuous`` and get ``nan`` in ``grad``.
    """
    x0 = np.asarray(x0, dtype=float)
    g = np.zeros_like(x0)
    bad = []
    _, base_sig = evaluate(x0)
    for idx in np.ndindex(x0.shape):
        vals = {}
        for s in (-2, -1, 1, 2):
            x = x0.copy()
            x[idx] += s * h
            vals[s], sig = evaluate(x)
            if sig != base_sig:
                break
        else:
            g[idx] = (8 * (vals[1] - vals[-1]) - (vals[2] - vals[-2])) / (12 * h)
            continue
        bad.append(idx)
        g[idx] = np.nan
    return FDResult(g, bad)


def rel_err(a, b):
    """Norm-wise relative error of ``a`` against ``b`` (entries that are nan in b are ignored)."""
    a = np.asarray(a, dtype=float).ravel()
    b = np.asarray(b, dtype=float).ravel()
    keep = ~np.isnan(b)
    a, b = a[keep], b[keep]
    denom = max(np.linalg.norm(b), np.linalg.norm(a), 1e-300)
    return float(np.linalg.norm(a - b) / denom)


def loss_value(net, spikes, loss, t_max, target=None, engine="fast"):
    """``(loss, spike-count signature)`` of the forward pass alone (with ``engine``), as
    value_and_grad computes the loss."""
    import torch

    from eventgrad.event.gradients import readout_values

    res = eg.simulate(net, spikes, t_max, engine=engine)
    results = [res] if isinstance(spikes, eg.Spikes) else list(res)
    vals, _ = readout_values(results, loss)
    if isinstance(spikes, eg.Spikes) and target is not None and np.ndim(target) == 0:
        target = [target]
    sig = tuple(tuple(r.spike_counts(p).tolist()) for r in results for p in net.populations)
    return float(loss(torch.tensor(vals, dtype=torch.float64), target)), sig

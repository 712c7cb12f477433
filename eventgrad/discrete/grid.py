"""How a network is put on the time grid, for both engines of the time-stepped path.

The step's constants of a population, where an input spike lands on the grid (and with what
sub-step offset), how delays between LIF populations are rounded to whole steps, the options
that act inside a step, and the record both engines return. The step itself is stated in the
module docs of :mod:`eventgrad.discrete.timestepped`; the general engine (torch, step by step)
is there, the feed-forward one in :mod:`eventgrad.discrete.layered`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .surrogates import Surrogate

__all__ = ["StepOptions", "EngineOutput", "step_constants", "arrival_steps", "lif_delays"]


@dataclass(frozen=True)
class StepOptions:
    """The options of :func:`~eventgrad.discrete.timestepped.run` (see its module docs);
    ``t_max`` and ``dt`` in ms."""

    surrogate: Surrogate
    reset: str
    detach_reset: bool
    interpolate: bool
    dtype: torch.dtype
    t_max: float
    dt: float
    update: str = "exact"
    inputs: str = "offset"
    record_voltage: bool = False


@dataclass
class EngineOutput:
    """What an engine of the time-stepped path returns, per population index: ``first`` and
    ``vmax`` ``(batch, n)`` tensors (in the autograd graph), ``spike_lists[p][b]`` ``(times,
    ids)`` numpy arrays, ``voltages[p]`` ``(n_steps + 1, batch, n)`` or None."""

    first: list
    vmax: list
    spike_lists: list
    voltages: list | None


def step_constants(nrn, dt: float, update: str) -> tuple:
    """``(alpha, beta, gain, threshold, v_reset, refractory steps)`` of a population."""
    beta = math.exp(-dt / nrn.tau_mem)
    gain = float(nrn.kernel(dt)) if update == "exact" else 1.0 - beta
    return (math.exp(-dt / nrn.tau_syn), beta, gain, nrn.threshold, nrn.v_reset,
            round(nrn.t_ref / dt))


def arrival_steps(a: np.ndarray, dt: float, n_steps: int, inputs: str):
    """``(m, off)``: the step at which spikes arriving at times ``a`` (ms, <= ``n_steps dt``)
    are added, and how long before that step's grid time they arrived (ms): the first grid
    time at or after the arrival for ``inputs="offset"``, the nearest one (offset 0) for
    ``"round"``."""
    if inputs == "offset":
        m = np.minimum(np.maximum(np.ceil(a / dt - 1e-12), 0).astype(np.int64), n_steps)
        return m, np.maximum(m * dt - a, 0.0)
    m = np.minimum(np.rint(a / dt).astype(np.int64), n_steps)
    return m, np.zeros_like(a)


def lif_delays(pr, dt: float, dtype) -> tuple[list, float, bool]:
    """A projection from a LIF population: its delays rounded to whole steps, one entry per
    distinct step count ``(pre, k, mask)``; also the largest rounding (ms) and whether a zero
    delay to the same or an earlier population became one step (its spikes of this step are
    not known yet)."""
    k = np.rint(pr.delays / dt).astype(np.int64)
    p, q = pr.pre.index, pr.post.index
    k_used = np.maximum(k, 1) if p >= q else k
    max_round = float(np.max(np.abs(k_used * dt - pr.delays)))
    out, lagged = [], False
    for kk in np.unique(k):
        k_eff = int(kk)
        if k_eff == 0 and p >= q:
            k_eff, lagged = 1, True
        out.append((p, k_eff, torch.tensor(k == kk, dtype=dtype)))
    return out, max_round, lagged

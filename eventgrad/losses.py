"""Losses on readouts of a spiking network, shared by both gradient paths.

A loss is a function of one *readout* of one population, batched: the first-spike times
``(batch, n)`` in ms (``readout = "first_spike"``) or the maxima of V over the window
``(batch, n)`` (``readout = "max_voltage"``). It is written in torch, so its derivative with
respect to the readout comes from autograd (exact, and each loss is tested against finite
differences of its own value). The exact gradient with respect to the network's parameters
then comes from EventProp (:func:`eventgrad.value_and_grad`), or from the time-stepped path.

Silent neurons (explicit rule)
------------------------------
A neuron that does not spike in ``[0, t_max]`` has first-spike time ``inf``. Losses see it as

    t_silent + silent_slope * (threshold - V_max)

with ``t_silent`` (ms; by default ``t_max``, the end of the window), ``silent_slope``
(ms per unit voltage; default 0) and ``V_max`` the exact maximum of the neuron's potential over
the window. With the default ``silent_slope = 0`` the value is the constant ``t_silent``: while the
neuron stays silent no small change of any parameter moves it, so its gradient is exactly zero,
the same answer central differences give — and a silent neuron never learns to fire. With
``silent_slope > 0`` the readout of a silent neuron falls as its potential approaches threshold,
and its exact gradient (through ``V_max``) pushes it to fire; this is a choice the user makes
explicitly, not a weight bump behind their back. Both gradient paths implement the same rule
(the time-stepped path with the maximum over its grid).

Dead neurons (hidden populations)
---------------------------------
A hidden neuron that spikes for no sample has exactly zero gradient (its adjoint never jumps),
so once dead it stays dead; in EventProp's Yin-Yang configuration 82 of the 200 hidden neurons
are dead at initialisation and ~160 after 100 epochs. :func:`dead_neuron_penalty` is the same
explicit rule as above for a population over a batch: for each neuron silent on *every*
sample, ``threshold - max over the batch of V_max`` (exact gradient through the sample where
it came closest to firing; neurons that spike on some sample contribute nothing). It is used by
:func:`eventgrad.training.train` with ``revive > 0``.

Writing your own loss
---------------------
Subclass :class:`Loss`: set ``readout`` and ``pop`` and implement ``__call__(values, target)``
in torch, returning the batch-mean loss. Lower down, :func:`eventgrad.event.adjoint.backward` takes
any ``dL/dt`` per recorded spike and any ``dL/dV`` at chosen times (:class:`VoltageProbe`):
the value and these derivatives are all a loss needs to give.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from numba import njit

from ._checks import non_negative, positive

if TYPE_CHECKING:  # torch is imported where a loss is evaluated, not with eventgrad
    import torch

__all__ = ["Loss", "FirstSpikeCrossEntropy", "SpikeTimeMSE", "MaxVoltageCrossEntropy",
           "dead_neuron_penalty", "dead_neuron_penalty_grad"]


class Loss:
    """Base class. Attributes: ``readout`` ("first_spike" or "max_voltage"), ``pop`` (the
    population read out: object, index or name), ``t_silent`` (ms or None for ``t_max``) and
    ``silent_slope`` (ms per unit voltage, >= 0): the silent-neuron rule of the module docs."""

    readout: str = "first_spike"

    def __init__(self, pop="output", t_silent: float | None = None,
                 silent_slope: float = 0.0) -> None:
        self.pop = pop
        if t_silent is not None and not math.isfinite(float(t_silent)):
            raise ValueError(f"t_silent must be finite, got {t_silent!r}")
        self.t_silent = None if t_silent is None else float(t_silent)
        non_negative(silent_slope, "silent_slope")
        self.silent_slope = float(silent_slope)

    def __call__(self, values: torch.Tensor, target=None) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def value_and_grad(self, values: np.ndarray, target=None) -> tuple[float, np.ndarray]:
        """The loss and its derivative with respect to ``values`` (batch, n), float64 numpy.

        The built-in losses write both in numpy (their torch ``__call__`` wraps this, so the
        two gradient paths share one formula); for a loss written in torch this default takes
        torch autograd of :meth:`__call__`."""
        import torch

        v = torch.tensor(np.asarray(values, dtype=np.float64), requires_grad=True)
        L = self(v, target)
        if not L.requires_grad:
            return float(L.detach()), np.zeros(v.shape)
        (dv,) = torch.autograd.grad(L, v)
        return float(L.detach()), dv.numpy()

    def predict(self, values) -> np.ndarray:
        """Predicted class per sample (for classification losses), shape (batch,)."""
        v = np.asarray(values)
        return np.argmin(v, axis=1) if self.readout == "first_spike" else np.argmax(v, axis=1)


def _labels(target, batch: int, n_classes: int) -> np.ndarray:
    """Class labels ``(batch,)`` as int64, checked: finite, integer-valued, in range."""
    if target is None:
        raise ValueError("target: a classification loss needs the labels, shape (batch,)")
    if hasattr(target, "detach"):
        target = target.detach().cpu().numpy()
    raw = np.asarray(target).reshape(-1)
    if raw.shape[0] != batch:
        raise ValueError(f"target must have shape ({batch},), got {tuple(np.shape(target))}")
    if raw.dtype.kind not in "iub":
        f = raw.astype(np.float64)
        bad = ~np.isfinite(f) | (f != np.round(f))
        if bad.any():
            raise ValueError(f"target labels must be integers, got {raw[bad][:3].tolist()}")
    lab = raw.astype(np.int64)
    if (lab < 0).any() or (lab >= n_classes).any():
        raise ValueError(f"target labels must be in [0, {n_classes}), got {lab.tolist()}")
    return lab


@njit(cache=True)
def _log_softmax_into(z, logp):
    """``log softmax`` of the row ``z`` into ``logp``, stably (the maximum taken out first)."""
    zmax = z.max()
    s = 0.0
    for j in range(z.shape[0]):
        logp[j] = z[j] - zmax
        s += math.exp(logp[j])
    lse = math.log(s)
    for j in range(z.shape[0]):
        logp[j] -= lse


@njit(cache=True)
def _first_spike_ce(t, lab, tau0, tau1, alpha):
    """:class:`FirstSpikeCrossEntropy` of first-spike times ``t`` (B, n) with labels ``lab``:
    the batch mean and its derivative (B, n) with respect to ``t``."""
    B, n = t.shape
    grad = np.empty((B, n))
    logp = np.empty(n)
    total = 0.0
    for b in range(B):
        _log_softmax_into(-t[b] / tau0, logp)
        t_lab = t[b, lab[b]]
        total += -logp[lab[b]] + alpha * math.expm1(t_lab / tau1)
        for j in range(n):
            grad[b, j] = -math.exp(logp[j]) / tau0
        grad[b, lab[b]] += 1.0 / tau0 + alpha * math.exp(t_lab / tau1) / tau1
        for j in range(n):
            grad[b, j] /= B
    return total / B, grad


@njit(cache=True)
def _max_voltage_ce(v, lab, scale):
    """:class:`MaxVoltageCrossEntropy` of maxima ``v`` (B, n) with labels ``lab``: the batch
    mean and its derivative (B, n) with respect to ``v``."""
    B, n = v.shape
    grad = np.empty((B, n))
    logp = np.empty(n)
    total = 0.0
    for b in range(B):
        _log_softmax_into(scale * v[b], logp)
        total -= logp[lab[b]]
        for j in range(n):
            grad[b, j] = math.exp(logp[j])
        grad[b, lab[b]] -= 1.0
        for j in range(n):
            grad[b, j] = scale * grad[b, j] / B
    return total / B, grad


class _Numpy:
    """A torch autograd function around a built-in loss's numpy value and derivative, so the
    formula is written once for both gradient paths (float64 inside; the derivative comes back
    in the values' dtype)."""

    _fn = None

    @classmethod
    def apply(cls, loss, values, target):
        if cls._fn is None:
            import torch

            class Fn(torch.autograd.Function):
                @staticmethod
                def forward(ctx, v, loss, target):
                    value, grad = loss.value_and_grad(v.detach().double().cpu().numpy(),
                                                      target)
                    ctx.grad = torch.from_numpy(grad).to(v.dtype)
                    return v.new_tensor(value)

                @staticmethod
                def backward(ctx, g):
                    return g * ctx.grad, None, None

            cls._fn = Fn
        return cls._fn.apply(values, loss, target)


class FirstSpikeCrossEntropy(Loss):
    """EventProp's first-spike-time loss (Wunderlich & Pehle 2021, Yin-Yang):

    ``L = mean_b [ -log softmax(-t_b / tau0)[label_b] + alpha (exp(t_b,label / tau1) - 1) ]``

    with first-spike times ``t`` in ms; the predicted class is the earliest neuron.

    Parameters
    ----------
    tau0 : float, ms (default 0.5)
    tau1 : float, ms (default 6.4)
    alpha : float (default 3e-3)
    pop : the output population (default "output")
    t_silent : ms, stand-in for a silent neuron's time (default: t_max); see module docs
    silent_slope : ms per unit voltage (default 0); see module docs
    """

    readout = "first_spike"

    def __init__(self, tau0: float = 0.5, tau1: float = 6.4, alpha: float = 3e-3, pop="output",
                 t_silent: float | None = None, silent_slope: float = 0.0) -> None:
        super().__init__(pop, t_silent, silent_slope)
        positive(tau0, "tau0")
        positive(tau1, "tau1")
        non_negative(alpha, "alpha")
        self.tau0, self.tau1, self.alpha = float(tau0), float(tau1), float(alpha)

    def __call__(self, values: torch.Tensor, target=None) -> torch.Tensor:
        return _Numpy.apply(self, values, target)

    def value_and_grad(self, values: np.ndarray, target=None) -> tuple[float, np.ndarray]:
        """The loss (batch mean) and its derivative with respect to the first-spike times."""
        t = np.ascontiguousarray(values, dtype=np.float64)
        B, n = t.shape
        value, grad = _first_spike_ce(t, _labels(target, B, n), self.tau0, self.tau1,
                                      self.alpha)
        return float(value), grad


class SpikeTimeMSE(Loss):
    """Mean squared error of first-spike times to targets:

    ``L = mean_{b, n} (t_bn - target_bn)^2`` (ms^2), targets in ms of shape ``(n,)`` (the same
    for every sample) or ``(batch, n)``, given here or as ``target`` at call time; any other
    shape (a scalar, ``(1,)`` for two outputs, ``(1, n)`` for a batch of two) is an error,
    never broadcast.
    """

    readout = "first_spike"

    def __init__(self, targets=None, pop="output", t_silent: float | None = None,
                 silent_slope: float = 0.0) -> None:
        super().__init__(pop, t_silent, silent_slope)
        self.targets = None if targets is None else self._check(targets, "targets")

    @staticmethod
    def _check(targets, name: str = "target") -> np.ndarray:
        if hasattr(targets, "detach"):
            targets = targets.detach().cpu().numpy()
        t = np.asarray(targets, dtype=np.float64)
        if t.ndim not in (1, 2):
            raise ValueError(f"{name} must have shape (n,) or (batch, n), got shape {t.shape}")
        if not np.all(np.isfinite(t)):
            raise ValueError(f"{name} must be finite, got {t}")
        return t

    def __call__(self, values: torch.Tensor, target=None) -> torch.Tensor:
        return _Numpy.apply(self, values, target)

    def value_and_grad(self, values: np.ndarray, target=None) -> tuple[float, np.ndarray]:
        """The mean squared error and its derivative with respect to the first-spike times."""
        t = np.asarray(values, dtype=np.float64)
        name = "targets" if target is None else "target"
        tg = self.targets if target is None else self._check(target)
        if tg is None:
            raise ValueError("target: SpikeTimeMSE needs target times (in the constructor or "
                             "as target)")
        if tg.shape not in (t.shape[1:], t.shape):
            raise ValueError(f"{name} must have shape (n,) = {t.shape[1:]} or (batch, n) = "
                             f"{t.shape} for this readout, got {tg.shape}")
        r = t - tg
        return float(np.mean(r * r)), 2.0 * r / r.size


class MaxVoltageCrossEntropy(Loss):
    """Softmax cross-entropy of the maxima of V of a non-spiking readout (EventProp's MNIST
    loss): ``L = mean_b -log softmax(V_max,b)[label_b]``; the predicted class is the largest
    maximum. The readout population must have ``threshold=inf``.
    """

    readout = "max_voltage"

    def __init__(self, pop="output", scale: float = 1.0) -> None:
        super().__init__(pop, None)
        positive(scale, "scale")
        self.scale = float(scale)

    def __call__(self, values: torch.Tensor, target=None) -> torch.Tensor:
        return _Numpy.apply(self, values, target)

    def value_and_grad(self, values: np.ndarray, target=None) -> tuple[float, np.ndarray]:
        """The cross-entropy (batch mean) and its derivative with respect to the maxima."""
        v = np.ascontiguousarray(values, dtype=np.float64)
        B, n = v.shape
        value, grad = _max_voltage_ce(v, _labels(target, B, n), self.scale)
        return float(value), grad


def dead_neuron_penalty(vmax: torch.Tensor, silent: torch.Tensor, threshold: float
                        ) -> torch.Tensor:
    """Sum over the neurons silent on every sample of ``threshold - max_b vmax[b, n]``.

    Parameters
    ----------
    vmax : tensor (batch, n) — maximum of V over the window (dimensionless voltage); entries
        of neurons that spiked are not used (they may be ``nan``)
    silent : bool tensor (batch, n) — True where neuron n did not spike on sample b
    threshold : float — the neurons' threshold

    Returns a scalar tensor >= 0 (0, with no gradient path, if no neuron is silent on the whole
    batch). See the module docs ("Dead neurons").
    """
    if vmax.shape != silent.shape or vmax.ndim != 2:
        raise ValueError(f"vmax and silent must have the same shape (batch, n), got "
                         f"{tuple(vmax.shape)} and {tuple(silent.shape)}")
    dead = silent.all(dim=0)
    if not bool(dead.any()):
        return vmax.new_zeros(())
    return (threshold - vmax[:, dead].max(dim=0).values).sum()


def dead_neuron_penalty_grad(vmax: np.ndarray, threshold: float) -> tuple[float, np.ndarray]:
    """:func:`dead_neuron_penalty` in numpy with its derivative, for a ``dead_max_voltage``
    readout ``vmax`` (batch, n): nan except for the neurons silent on every sample.

    Returns the penalty and ``dP/dvmax`` (batch, n): -1 where each dead neuron's maximum over
    the batch is reached (the first such sample), 0 elsewhere.
    """
    v = np.asarray(vmax, dtype=np.float64)
    dead = ~np.any(np.isnan(v), axis=0) if v.size else np.zeros(v.shape[1], dtype=bool)
    grad = np.zeros(v.shape)
    if not dead.any():
        return 0.0, grad
    cols = np.flatnonzero(dead)
    rows = np.argmax(v[:, cols], axis=0)
    grad[rows, cols] = -1.0
    return float(np.sum(threshold - v[rows, cols])), grad

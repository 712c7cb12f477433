"""Surrogate derivatives of the spike nonlinearity for the time-stepped path.

The forward pass is the Heaviside step ``S = 1 if U - threshold >= 0 else 0`` (the same rule as
the event engine); the backward pass replaces its derivative by a surrogate ``sigma(x)`` of
``x = U - threshold`` (dimensionless voltage) with scale ``beta`` (1/voltage). After Zenke &
Vogels (2021, Neural Computation 33:899) and Neftci, Mostafa & Zenke (2019):

==================  =========================================  ======================
name                sigma(x)                                   normalisation
==================  =========================================  ======================
superspike          1 / (beta |x| + 1)^2                       peak 1 (SuperSpike,
                                                               fast sigmoid)
superspike_asym     beta / (beta |x| + 1)^2                    integral 2
sigmoid             beta s (1 - s),  s = 1/(1 + exp(-beta x))  integral 1
triangle            max(0, 1 - beta |x|)                       peak 1 (Esser et al.)
exponential         exp(-beta |x|)                             peak 1 (SLAYER)
boxcar              1 if |x| < 1/(2 beta) else 0               peak 1 (straight-through
                                                               in a window)
==================  =========================================  ======================

The scale matters more than the shape (Zenke & Vogels 2021): the cross-check varies both.
"""

from __future__ import annotations

import torch

__all__ = ["Surrogate", "SURROGATES", "spike"]

from .._checks import positive
from .._constants import SURROGATES


class Surrogate:
    """A surrogate derivative: ``Surrogate("superspike", scale=10.0)``.

    Parameters
    ----------
    name : one of :data:`SURROGATES`
    scale : float, > 0, in 1/voltage (beta in the table above)
    """

    def __init__(self, name: str = "superspike", scale: float = 10.0) -> None:
        if name not in SURROGATES:
            raise ValueError(f"surrogate name must be one of {SURROGATES}, got {name!r}")
        scale = positive(scale, "surrogate scale")
        self.name = name
        self.scale = scale

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        b = self.scale
        if self.name == "superspike":
            return 1.0 / (b * x.abs() + 1.0) ** 2
        if self.name == "superspike_asym":
            return b / (b * x.abs() + 1.0) ** 2
        if self.name == "sigmoid":
            s = torch.sigmoid(b * x)
            return b * s * (1.0 - s)
        if self.name == "triangle":
            return torch.clamp(1.0 - b * x.abs(), min=0.0)
        if self.name == "exponential":
            return torch.exp(-b * x.abs())
        return (x.abs() < 0.5 / b).to(x.dtype)

    def __repr__(self) -> str:
        return f"Surrogate({self.name!r}, scale={self.scale})"


class _SpikeFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, surrogate: Surrogate) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (x,) = ctx.saved_tensors
        return grad_out * ctx.surrogate(x), None


def spike(x: torch.Tensor, surrogate: Surrogate) -> torch.Tensor:
    """Heaviside of ``x = U - threshold`` forward, ``surrogate(x)`` as its derivative."""
    return _SpikeFn.apply(x, surrogate)

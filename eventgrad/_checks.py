"""Argument checks shared by the modules that take values from users (no heavy imports).

Every message names the argument and the value it got."""

from __future__ import annotations

import math

import numpy as np


def _real(value, name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {value!r}") from None


def _at_least_zero(value, name: str, unit: str, strict: bool) -> float:
    v = _real(value, name)
    if not (math.isfinite(v) and (v > 0.0 if strict else v >= 0.0)):
        raise ValueError(f"{name} must be finite and {'>' if strict else '>='} 0"
                         f"{' ' + unit if unit else ''}, got {value!r}")
    return v


def positive(value, name: str, unit: str = "") -> float:
    """``value`` as a float; ValueError "``name`` must be finite and > 0 [unit], got ..."
    unless it is (TypeError if it is not a number)."""
    return _at_least_zero(value, name, unit, True)


def non_negative(value, name: str, unit: str = "") -> float:
    """As :func:`positive`, for ``>= 0``."""
    return _at_least_zero(value, name, unit, False)

#: Where to go for gradients, by kind of argument (see :func:`float_array`).
WEIGHTS_GRADIENT = ("the torch bridge, eventgrad.torch.SpikingNetwork or "
                    "eventgrad.torch.eventprop(network, spikes, t_max, weights=[...])")
TIMES_GRADIENT = "eventgrad.value_and_grad (Gradients.input_times is dL/d(input spike time))"


def _grad_tensor_error(name: str, value, use: str) -> TypeError:
    got = (f"a torch tensor that requires grad (shape {tuple(value.shape)})"
           if hasattr(value, "shape") else "torch tensors that require grad")
    return TypeError(f"{name}: got {got}; "
                     f"eventgrad would take only the values and lose the gradient. For "
                     f"gradients use {use}; for the value alone pass tensor.detach()")


def float_array(value, name: str, what: str = "an array of real numbers",
                use: str = WEIGHTS_GRADIENT) -> np.ndarray:
    """``value`` as a new float64 array. A torch tensor that requires grad (alone or inside a
    sequence) raises a TypeError naming ``name`` and pointing to ``use``; a value that is not
    numeric raises a TypeError "``name`` must be ``what``, got ..."."""
    if getattr(value, "requires_grad", False):
        raise _grad_tensor_error(name, value, use)
    try:
        return np.array(value, dtype=np.float64)
    except RuntimeError as e:   # torch's "Can't call numpy() on Tensor that requires grad"
        if "requires grad" in str(e):
            raise _grad_tensor_error(name, value, use) from None
        raise
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be {what}, got {value!r:.80}") from None

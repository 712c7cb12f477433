"""The current-based leaky integrate-and-fire neuron: its parameters, and array views of its
closed form.

Units: time in ms, voltage and current dimensionless (threshold usually 1). Between events a
neuron obeys::

    tau_mem dV/dt = -V + I        tau_syn dI/dt = -I

The formulas (closed-form flow, kernel, maximum of V, spike-time solver) are written once, in
:mod:`eventgrad.model.physics`, where their numerical forms and the spike-time rule are
documented; :class:`LIF`'s methods apply those same compiled functions element by element to
numpy arrays, so what they return is exactly what every engine computes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._checks import positive
from . import physics

__all__ = ["LIF", "KERNEL_SWITCH"]

#: |x| = D |1/tau_syn - 1/tau_mem| below which the expm1-based kernel form is used.
KERNEL_SWITCH = physics.KERNEL_SWITCH


def _flat(*arrays):
    """Broadcast float64 arrays, flattened (contiguous), and their common shape."""
    b = np.broadcast_arrays(*[np.asarray(a, dtype=np.float64) for a in arrays])
    return [np.array(x).ravel() for x in b], b[0].shape


def _shaped(x: np.ndarray, shape):
    out = x.reshape(shape)
    return out[()] if out.ndim == 0 else out


def _check_threshold(value: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"threshold must be a real number, got {value!r}") from None
    if math.isnan(v) or v <= 0.0:
        raise ValueError(f"threshold must be > 0 (or inf for a non-spiking readout), got {value!r}")
    return v


@dataclass(frozen=True)
class LIF:
    """Parameters of a current-based LIF neuron (immutable, validated).

    Parameters
    ----------
    tau_mem : float
        Membrane time constant in ms (finite, > 0).
    tau_syn : float
        Synaptic current time constant in ms (finite, > 0). May equal ``tau_mem``.
    threshold : float
        Firing threshold (dimensionless voltage, > 0: the resting potential is 0).
        ``math.inf`` makes a non-spiking leaky integrator, e.g. a readout for
        :class:`eventgrad.losses.MaxVoltageCrossEntropy`.
    v_reset : float
        Potential after a spike (finite, < threshold).
    t_ref : float
        Absolute refractory period in ms (finite, >= 0). During it V is held at ``v_reset``
        while I keeps decaying and integrating inputs (NEST's convention).
    """

    tau_mem: float
    tau_syn: float
    threshold: float = 1.0
    v_reset: float = 0.0
    t_ref: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "tau_mem", positive(self.tau_mem, "tau_mem"))
        object.__setattr__(self, "tau_syn", positive(self.tau_syn, "tau_syn"))
        object.__setattr__(self, "threshold", _check_threshold(self.threshold))
        try:
            v_reset = float(self.v_reset)
            t_ref = float(self.t_ref)
        except (TypeError, ValueError):
            raise TypeError(
                f"v_reset and t_ref must be real numbers, got v_reset={self.v_reset!r}, "
                f"t_ref={self.t_ref!r}"
            ) from None
        if not math.isfinite(v_reset) or v_reset >= self.threshold:
            raise ValueError(
                f"v_reset must be finite and < threshold={self.threshold}, got {self.v_reset!r}"
            )
        if not math.isfinite(t_ref) or t_ref < 0.0:
            raise ValueError(f"t_ref must be finite and >= 0, got {self.t_ref!r}")
        object.__setattr__(self, "v_reset", v_reset)
        object.__setattr__(self, "t_ref", t_ref)

    # ------------------------------------------------------------------ derived constants
    @property
    def g(self) -> float:
        """``1/tau_syn - 1/tau_mem`` in 1/ms (0 when the time constants are equal)."""
        return (self.tau_mem - self.tau_syn) / (self.tau_mem * self.tau_syn)

    # ------------------------------------------------------------------ closed form
    def kernel(self, D):
        """Voltage at time ``D`` (ms, >= 0) after a unit current step at 0 from rest.

        ``D`` may be a scalar or an array; returns the same shape (float64).
        """
        (d,), shape = _flat(D)
        return _shaped(physics.kernel_many(d, self.tau_mem, self.tau_syn, self.g), shape)

    def kernel_scalar(self, D: float) -> float:
        """Scalar version of :meth:`kernel`."""
        return float(physics.kernel(float(D), self.tau_mem, self.tau_syn, self.g))

    def propagate(self, V0, I0, D):
        """State ``(V, I)`` after ``D`` ms with no event, threshold and refractoriness ignored.

        Arrays broadcast; returns float64 arrays (or scalars for scalar input).
        """
        (v, i, d), shape = _flat(V0, I0, D)
        V, I = physics.propagate_many(v, i, d, self.tau_mem, self.tau_syn, self.g)
        return _shaped(V, shape), _shaped(I, shape)

    def voltage_scalar(self, V0: float, I0: float, D: float) -> float:
        """``V(D)`` from ``(V0, I0)`` for scalars."""
        return float(physics.voltage(float(V0), float(I0), float(D), self.tau_mem,
                                     self.tau_syn, self.g))

    def peak_time(self, V0, I0):
        """Time (ms) of the maximum of V on ``(0, inf)`` with no further input.

        Returns 0 where V is not rising at 0 (``I0 <= V0`` or ``I0 <= 0``) and ``inf`` where V
        rises for ever (towards 0 from below). Arrays broadcast.
        """
        (v, i), shape = _flat(V0, I0)
        return _shaped(physics.peak_time_many(v, i, self.tau_mem, self.tau_syn), shape)

    def max_on_interval(self, V0, I0, H):
        """Maximum of V on ``[0, H]``: returns ``(D_at_max, V_max)`` (arrays broadcast)."""
        D_end = np.minimum(self.peak_time(V0, I0), np.asarray(H, dtype=np.float64))
        V, _ = self.propagate(V0, I0, D_end)
        return D_end, V

    # ------------------------------------------------------------------ the spike-time solver
    def solve_crossing(self, V0: float, I0: float, D_end: float) -> float:
        """Root of ``V(D) = threshold`` on ``[0, D_end]`` for scalars.

        Preconditions (checked by :meth:`next_crossing`): ``V0 < threshold <= V(D_end)`` and V
        increasing on ``[0, D_end]``. See :func:`eventgrad.model.physics.solve_crossing` for
        its rule.
        """
        return float(physics.solve_crossing(float(V0), float(I0), float(D_end), self.tau_mem,
                                            self.tau_syn, self.g, self.threshold))

    def next_crossing(self, V0, I0, H):
        """Time to the first threshold crossing within ``[0, H]`` for arrays of neurons.

        Parameters
        ----------
        V0, I0 : array_like, shape (n,)
            State at the start of the interval.
        H : float
            Horizon in ms (>= 0).

        Returns
        -------
        D : ndarray, shape (n,)
            Time to the crossing (``inf`` where there is none).
        D_peak, V_peak : ndarray, shape (n,)
            Position and value of the maximum of V on ``[0, H]`` (for diagnostics).
        n_solves : int
            Number of root solves performed.
        """
        (v, i, h), _ = _flat(np.atleast_1d(V0), np.atleast_1d(I0), H)
        th = self.threshold
        D, Dp, Vp = physics.crossing_many(v, i, h, self.tau_mem, self.tau_syn, self.g, th)
        return D, Dp, Vp, int(np.sum((D > 0) & (D < np.inf)))

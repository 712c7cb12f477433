"""The current-based leaky integrate-and-fire neuron: closed form, maximum, spike-time solver.

Units: time in ms, voltage and current dimensionless (threshold usually 1). Between events a
neuron obeys::

    tau_mem dV/dt = -V + I        tau_syn dI/dt = -I

so over an interval of length ``D`` with no event inside::

    I(D) = I0 exp(-D/tau_syn)
    V(D) = V0 exp(-D/tau_mem) + I0 k(D)

with the synaptic kernel ``k(D) = tau_syn/(tau_mem - tau_syn) (exp(-D/tau_mem) - exp(-D/tau_syn))``
(``k(D) = (D/tau) exp(-D/tau)`` when ``tau_mem == tau_syn == tau``).

Numerical forms (all float64)
-----------------------------
Write ``g = 1/tau_syn - 1/tau_mem`` and ``x = D g``. Then exactly::

    k(D) = (D/tau_mem) exp(-D/tau_mem) * phi(x),     phi(x) = (1 - exp(-x)) / x,  phi(0) = 1

``phi`` is evaluated with ``expm1`` and has no cancellation; this form is used for ``|x| <= 1``
(which includes ``tau_mem == tau_syn``, where ``x = 0``). For ``|x| > 1`` the difference of the two
exponentials loses at most ~1.5 bits to cancellation, and the direct form is used (it cannot
overflow, unlike ``expm1(-x)`` for large negative ``x``). The switch is at ``|x| = KERNEL_SWITCH``
(= 1); both sides agree to a few ulp there and both are tested.

The maximum of V
----------------
``V`` is a sum of two decaying exponentials, so it has at most one extremum on ``(0, inf)``. If
``I0 > V0`` and ``I0 > 0`` (``V`` rising) the maximum is at::

    u = (I0 - V0)/I0,   y = (1 - tau_syn/tau_mem) u,
    D* = tau_syn u L(y),   L(y) = -log1p(-y)/y,   L(0) = 1

(the closed form for ``dV/dt = 0``, written so that it is exact for ``tau_mem == tau_syn`` and
stable near it). If ``y >= 1`` or ``D* <= 0`` there is no maximum: ``V`` rises towards 0 for
ever and can never reach a positive threshold.

Spike-time rule (no crossing is ever missed)
--------------------------------------------
The threshold is positive (the resting potential is 0), so ``V`` can reach it only while it is
rising, i.e. on ``[0, D*]``. On an interval ``[0, H]`` the solver computes
``D_end = min(D*, H)`` and ``V_max = V(D_end)``. **A crossing exists iff the float64 value of
V_max is >= threshold** (this is also the grazing rule: a maximum that equals the threshold to the
last bit counts as a spike, one a single ulp below does not; the margin ``threshold - V_max`` of
each realised maximum that did not cross is reported by the simulator as a diagnostic). The
crossing is then bracketed on ``[0, D_end]``, where V is monotone, and solved by a safeguarded
Newton iteration (analytic derivative ``(I - V)/tau_mem``, bisection whenever a step leaves the
bracket) followed by a bisection down to adjacent floats: the returned ``D`` satisfies
``V(D) >= threshold > V(prev(D))`` for the float64 closed form, i.e. it is a sign change of
``V(D) - threshold`` (how many floats around it are "at threshold" depends on the slope: the
closed form's rounding noise divided by ``dV/dt``). A neuron that starts an interval
at or above threshold (possible only by rounding, within ulp of a crossing) spikes at once
(``D = 0``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import _fast

__all__ = ["LIF", "KERNEL_SWITCH"]

#: |x| = D |1/tau_syn - 1/tau_mem| below which the expm1-based kernel form is used.
KERNEL_SWITCH = 1.0


def _check_positive_finite(name: str, value: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {value!r}") from None
    if not math.isfinite(v) or v <= 0.0:
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")
    return v


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
        object.__setattr__(self, "tau_mem", _check_positive_finite("tau_mem", self.tau_mem))
        object.__setattr__(self, "tau_syn", _check_positive_finite("tau_syn", self.tau_syn))
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
        D = np.asarray(D, dtype=np.float64)
        tm, ts, g = self.tau_mem, self.tau_syn, self.g
        x = D * g
        small = np.abs(x) <= KERNEL_SWITCH
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            xs = np.where(small, x, 1.0)
            phi = np.where(xs == 0.0, 1.0, -np.expm1(-xs) / np.where(xs == 0.0, 1.0, xs))
            k_small = (D / tm) * np.exp(-D / tm) * phi
            if g != 0.0:
                k_big = ts / (tm - ts) * (np.exp(-D / tm) - np.exp(-D / ts))
            else:
                k_big = k_small
        out = np.where(small, k_small, k_big)
        return out[()] if out.ndim == 0 else out

    def kernel_scalar(self, D: float) -> float:
        """Scalar version of :meth:`kernel` (same formulas; compiled, shared with the fast
        engine)."""
        return float(_fast.kernel(float(D), self.tau_mem, self.tau_syn, self.g))

    def propagate(self, V0, I0, D):
        """State ``(V, I)`` after ``D`` ms with no event, threshold and refractoriness ignored.

        Arrays broadcast; returns float64 arrays (or scalars for scalar input).
        """
        V0 = np.asarray(V0, dtype=np.float64)
        I0 = np.asarray(I0, dtype=np.float64)
        D = np.asarray(D, dtype=np.float64)
        V = V0 * np.exp(-D / self.tau_mem) + I0 * self.kernel(D)
        I = I0 * np.exp(-D / self.tau_syn)
        return V, I

    def voltage_scalar(self, V0: float, I0: float, D: float) -> float:
        """``V(D)`` from ``(V0, I0)`` for scalars (compiled, shared with the fast engine)."""
        return float(_fast.voltage(float(V0), float(I0), float(D), self.tau_mem, self.tau_syn,
                                   self.g))

    def peak_time(self, V0, I0):
        """Time (ms) of the maximum of V on ``(0, inf)`` with no further input.

        Returns 0 where V is not rising at 0 (``I0 <= V0`` or ``I0 <= 0``) and ``inf`` where V
        rises for ever (towards 0 from below). Arrays broadcast.
        """
        V0 = np.asarray(V0, dtype=np.float64)
        I0 = np.asarray(I0, dtype=np.float64)
        rising = (I0 > V0) & (I0 > 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            u = np.where(rising, (I0 - V0) / np.where(rising, I0, 1.0), 0.0)
            y = (1.0 - self.tau_syn / self.tau_mem) * u
            ok = rising & (y < 1.0)
            ys = np.where(ok & (y != 0.0), y, 0.5)
            L = np.where(y == 0.0, 1.0, -np.log1p(-ys) / ys)
            t = self.tau_syn * u * L
        t = np.where(rising, np.where(ok & (t > 0.0), t, np.inf), 0.0)
        return t[()] if t.ndim == 0 else t

    def max_on_interval(self, V0, I0, H):
        """Maximum of V on ``[0, H]``: returns ``(D_at_max, V_max)`` (arrays broadcast)."""
        D_end = np.minimum(self.peak_time(V0, I0), np.asarray(H, dtype=np.float64))
        V, _ = self.propagate(V0, I0, D_end)
        return D_end, V

    # ------------------------------------------------------------------ the spike-time solver
    def solve_crossing(self, V0: float, I0: float, D_end: float) -> float:
        """Root of ``V(D) = threshold`` on ``[0, D_end]`` for scalars.

        Preconditions (checked by :meth:`next_crossing`): ``V0 < threshold <= V(D_end)`` and V
        increasing on ``[0, D_end]``. The compiled solver shared with the fast engine
        (``eventgrad._fast.solve_crossing``): see the module docs for its rule.
        """
        return float(_fast.solve_crossing(float(V0), float(I0), float(D_end), self.tau_mem,
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
        V0 = np.atleast_1d(np.asarray(V0, dtype=np.float64))
        I0 = np.atleast_1d(np.asarray(I0, dtype=np.float64))
        theta = self.threshold
        D_peak, V_peak = self.max_on_interval(V0, I0, H)
        D = np.full(V0.shape, np.inf)
        if theta == math.inf:
            return D, D_peak, V_peak, 0
        already = V0 >= theta
        D[already] = 0.0
        cross = (~already) & (V_peak >= theta)
        idx = np.flatnonzero(cross)
        for i in idx:
            D[i] = self.solve_crossing(float(V0[i]), float(I0[i]), float(D_peak[i]))
        return D, D_peak, V_peak, len(idx)

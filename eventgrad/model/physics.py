"""The physics of the CuBa LIF neuron, written once: every closed form and every jump rule of
the forward pass and of its adjoint, as compiled scalar functions.

Every engine (the readable reference engine, the general compiled event loop, the layered fast
path) and :class:`eventgrad.LIF`'s array methods call these functions, so a formula changed here
changes everywhere. Units: time in ms, voltage and current dimensionless, float64.

Between events (``tau_mem dV/dt = -V + I``, ``tau_syn dI/dt = -I``), over a gap ``D`` with no
event inside, the state moves by the linear flow::

    V(D) = e^{-D/tau_mem} V0 + k(D) I0        I(D) = e^{-D/tau_syn} I0

with the synaptic kernel ``k`` (:func:`kernel`); :func:`decay` gives the three coefficients
``(em, es, kk)``, :func:`flow` applies them, and :func:`flow_adjoint` applies their transpose to
the costate ``(mu_V, mu_I) = dL/d(V, I)`` going backward::

    mu_V <- em mu_V        mu_I <- es mu_I + kk mu_V

Jumps (the derivation is in ``docs/adjoint.md``): an arrival of weight ``w`` adds ``w`` to ``I``
(:func:`arrival_adjoint` gives ``dL/d(arrival time)``); a spike at threshold resets ``V`` to
``v_reset`` (:func:`spike_adjoint` gives the costate's jump, with the factor
``1/(I - threshold)``); the end of a refractory period releases ``V`` from ``v_reset``
(:func:`release_adjoint`).

Kernel forms (float64)
----------------------
With ``g = 1/tau_syn - 1/tau_mem`` and ``x = D g``, exactly
``k(D) = (D/tau_mem) e^{-D/tau_mem} phi(x)`` with ``phi(x) = (1 - e^{-x})/x`` (``phi(0) = 1``,
evaluated with ``expm1``: no cancellation, exact for ``tau_mem == tau_syn``). This form is used
for ``|x| <= KERNEL_SWITCH`` (= 1); above, the direct difference of exponentials loses at most
~1.5 bits and cannot overflow. Both sides agree to a few ulp at the switch (tested).

Spike-time rule (no crossing missed)
------------------------------------
``V`` has at most one extremum on ``(0, inf)``; it can reach the (positive) threshold only while
rising, on ``[0, D*]`` with ``D*`` the closed-form peak time (:func:`peak_time`). On ``[0, H]``
a crossing exists iff the float64 value of ``V(min(D*, H)) >= threshold`` (this also settles a
grazing maximum: equal to the last bit counts as a spike). The root is then bracketed on that
monotone interval and solved to within a few ulp, at a float where ``V >= threshold``
(:func:`solve_crossing`).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["KERNEL_SWITCH", "CANDIDATE_MARGIN", "rate", "kernel", "decay", "flow",
           "flow_adjoint", "voltage", "peak_time", "max_on_interval", "peak_bound",
           "interior_bound", "may_cross", "is_candidate",
           "crossing", "crossing_lower_bound", "solve_crossing", "solve_rising", "hermite_root",
           "spike_adjoint", "release_adjoint", "arrival_adjoint", "slope_floor"]

INF = math.inf
EPS = 2.220446049250313e-16

#: |x| = D |1/tau_syn - 1/tau_mem| at or below which the expm1-based kernel form is used.
KERNEL_SWITCH = 1.0

#: Relative margin of the cheap test :func:`may_cross`: a neuron whose :func:`peak_bound` is
#: below ``threshold * (1 - CANDIDATE_MARGIN)`` cannot reach threshold, and the margin (1e-12,
#: ~4500 ulp) is far larger than the rounding error of the bound and of the closed form, so the
#: test never rejects a neuron whose float64 maximum would reach threshold.
CANDIDATE_MARGIN = 1e-12
_THIRD, _SIXTH = 1.0 / 3.0, 1.0 / 6.0  # (rounded constants: a bound with margin needs no more)

_JIT = {"cache": True, "nogil": True}


@njit(**_JIT)
def rate(tm, ts):
    """``g = 1/tau_syn - 1/tau_mem`` (1/ms; 0 when the time constants are equal)."""
    return (tm - ts) / (tm * ts)


@njit(**_JIT)
def kernel(D, tm, ts, g):
    """Voltage ``D`` ms after a unit current jump from rest (see the module docs)."""
    return _kernel(D, math.exp(-D / tm), tm, ts, g)


@njit(**_JIT)
def _kernel(D, em, tm, ts, g):
    """:func:`kernel` given ``em = exp(-D/tm)`` (the same operations, so the same bits)."""
    x = D * g
    if abs(x) <= KERNEL_SWITCH:
        phi = 1.0 if x == 0.0 else -math.expm1(-x) / x
        return (D / tm) * em * phi
    return ts / (tm - ts) * (em - math.exp(-D / ts))


@njit(**_JIT)
def decay(D, tm, ts, g):
    """Coefficients ``(em, es, kk)`` of the flow over ``D`` ms: ``e^{-D/tm}, e^{-D/ts}, k(D)``."""
    em = math.exp(-D / tm)
    return em, math.exp(-D / ts), _kernel(D, em, tm, ts, g)


@njit(inline="always", **_JIT)
def flow(V, I, em, es, kk):
    """State ``(V, I)`` moved forward by the flow with coefficients :func:`decay`."""
    return V * em + I * kk, I * es


@njit(**_JIT)
def flow_adjoint(mu_V, mu_I, em, es, kk):
    """Costate ``(mu_V, mu_I)`` moved backward over the same gap (the transposed flow)."""
    return em * mu_V, es * mu_I + kk * mu_V


@njit(**_JIT)
def voltage(V0, I0, D, tm, ts, g):
    """``V(D)`` from ``(V0, I0)`` with no event in between."""
    em = math.exp(-D / tm)
    return V0 * em + I0 * _kernel(D, em, tm, ts, g)


@njit(**_JIT)
def peak_time(V0, I0, tm, ts):
    """Time (ms) of the maximum of V on ``(0, inf)`` with no further input.

    0 where V is not rising at 0 (``I0 <= V0`` or ``I0 <= 0``), ``inf`` where it rises for
    ever (towards 0 from below). With ``u = (I0 - V0)/I0`` and ``y = (1 - ts/tm) u``:
    ``D* = ts u L(y)``, ``L(y) = -log1p(-y)/y`` (``L(0) = 1``): exact at ``tm == ts``.
    """
    if not (I0 > V0 and I0 > 0.0):
        return 0.0
    u = (I0 - V0) / I0
    y = (1.0 - ts / tm) * u
    if not (y < 1.0):
        return INF
    L = 1.0 if y == 0.0 else -math.log1p(-y) / y
    t = ts * u * L
    return t if t > 0.0 else INF


@njit(inline="always", **_JIT)
def peak_bound(V0, I0, tm, ts):
    """A cheap upper bound of the maximum of V over ``[0, inf)`` without input.

    ``V0`` if V is not rising. Otherwise the maximum is the current at the peak time
    (:func:`peak_time`): ``V* = I(D*) = I0 exp(-u L(y))``. With lower bounds of ``L``
    (``L(y) >= 1 + y/2 + y^2/3`` for ``y >= 0``, the rest of its series being positive;
    ``L(y) >= 1/(1 - y/2)`` for ``y < 0``, from ``log(1 + z) >= 2z/(2 + z)``) and
    ``exp(-w) <= 1/(1 + w + w^2/2 + w^3/6)``, ``V* <= I0/(1 + w + w^2/2 + w^3/6)`` with
    ``w = u L_low``: two divisions (three for ``y < 0``), no exp or log. It exceeds ``V*`` by
    a few per cent of ``I0`` for tau ratios up to ~4 and by up to ~16 % of ``I0`` at
    ``tm/ts = 20`` (measured; a loose bound costs an exact test, never a miss). Written
    with selects, not early returns (both cases computed, one kept).
    """
    rising = (I0 > V0) & (I0 > 0.0)
    u = (I0 - V0) / (I0 if rising else 1.0)
    y = (1.0 - ts / tm) * u
    L = 1.0 + y * (0.5 + y * _THIRD) if y >= 0.0 else 1.0 / (1.0 - 0.5 * y)
    w = u * L
    bound = I0 / (1.0 + w * (1.0 + w * (0.5 + w * _SIXTH)))
    return bound if rising else V0


@njit(inline="always", **_JIT)
def may_cross(bound, th):
    """Whether a neuron whose maximum is at most ``bound`` (:func:`peak_bound`) may reach
    ``th``: ``bound >= th (1 - CANDIDATE_MARGIN)`` (the margin is far larger than the rounding
    error of the bound and of the closed form, so no neuron whose float64 maximum reaches
    threshold is rejected)."""
    return bound >= th * (1.0 - CANDIDATE_MARGIN)


@njit(inline="always", **_JIT)
def interior_bound(I0, V1, inv_em):
    """An upper bound, without a division, of an interior maximum of V on an interval of
    ``D`` ms that starts with current ``I0 > 0`` and ends at ``V1`` (``inv_em = e^{D/tm}``,
    shared by a population). At the peak ``V* = I(D*) <= I0``; after it ``I >= 0`` gives
    ``dV/dt >= -V/tm``, so ``V1 >= V* e^{-D/tm}`` if ``V* > 0``: ``V* <= min(I0, max(V1
    e^{D/tm}, 0))``. Tight on short intervals, where :func:`peak_bound` is not needed."""
    return min(I0, max(V1 * inv_em, 0.0))


@njit(inline="always", **_JIT)
def is_candidate(V0, I0, V1, I1, bound, th):
    """Whether V may reach ``th`` on an interval from ``(V0, I0)`` to ``(V1, I1)`` with no
    input in between (``bound``: :func:`peak_bound` of ``(V0, I0)``): at or above threshold at
    an end, or an interior maximum (rising at the start, falling at the end) that ``bound``
    does not keep below threshold (:func:`may_cross`). Otherwise the maximum on the interval
    is below threshold."""
    interior = (I0 > V0) & (I0 > 0.0) & (I1 < V1)
    return (V0 >= th) | (V1 >= th) | (interior & may_cross(bound, th))


@njit(**_JIT)
def max_on_interval(V0, I0, H, tm, ts, g):
    """``(D_end, V_max)``: position and value of the maximum of V on ``[0, H]``."""
    Dp = peak_time(V0, I0, tm, ts)
    D_end = Dp if Dp < H else H
    return D_end, voltage(V0, I0, D_end, tm, ts, g)


@njit(**_JIT)
def crossing_lower_bound(V0, I0, D_end, tm, th):
    """A lower bound of the crossing time on ``[0, D_end]`` when ``V0 < th <= V(D_end)``: on
    the rising part ``I <= I0`` and ``V >= V0``, so ``dV/dt <= (I0 - V0)/tm`` and the crossing
    is at ``D >= tm (th - V0)/(I0 - V0)`` (clipped to ``D_end``)."""
    Dc = tm * (th - V0) / (I0 - V0)
    return Dc if Dc <= D_end else D_end


@njit(**_JIT)
def crossing(V0, I0, H, tm, ts, g, th):
    """The first threshold crossing within ``[0, H]`` from ``(V0, I0)``.

    Returns ``(D, D_peak, V_peak)``: the time to the crossing (``inf`` if none; 0 if ``V0`` is
    already at or above threshold, which only rounding can cause) and the position and value
    of the maximum of V on ``[0, H]`` (:func:`max_on_interval`).
    """
    D_end, Vp = max_on_interval(V0, I0, H, tm, ts, g)
    if V0 >= th:
        return 0.0, D_end, Vp
    if Vp >= th:
        # the same end state as solve_crossing's, so every engine solves from the same data;
        # at the peak I = V (dV/dt = 0), and the solve does not read I there
        at_peak = D_end < H
        I_end = Vp if at_peak else I0 * math.exp(-D_end / ts)
        return solve_rising(V0, I0, D_end, Vp, I_end, at_peak, tm, ts, g, th), D_end, Vp
    return INF, D_end, Vp


@njit(**_JIT)
def solve_crossing(V0, I0, D_end, tm, ts, g, th):
    """Root of ``V(D) = th`` on ``[0, D_end]`` (``V0 < th <= V(D_end)``, V increasing there).

    The result ``D`` is within a few ulp of the root and at or above threshold in float64:
    ``V(D) >= th`` for the float64 closed form (a spike is never recorded below threshold).
    Near the root the closed form's rounding noise divided by ``dV/dt`` makes a band of a few
    floats where ``V - th`` changes sign more than once; ``D`` lies in that band. See
    :func:`solve_rising`.
    """
    em, es, kk = decay(D_end, tm, ts, g)
    V_end, I_end = flow(V0, I0, em, es, kk)
    at_peak = D_end == peak_time(V0, I0, tm, ts)
    return solve_rising(V0, I0, D_end, V_end, I_end, at_peak, tm, ts, g, th)


@njit(**_JIT)
def solve_rising(V0, I0, D_end, V_end, I_end, at_peak, tm, ts, g, th):
    """:func:`solve_crossing` given the state ``(V_end, I_end)`` at ``D_end`` (``at_peak``:
    ``D_end`` is the peak time; ``I_end`` is then not read).

    Halley's iteration on ``f(D) = V(D) - th`` with the analytic derivatives
    ``f' = (I - V)/tm`` and ``f'' = (-I/ts - f')/tm``, kept inside the bracket (bisection when
    a step leaves it), from a start built from the two ends' states (:func:`_start`). The
    iterations evaluate V with reciprocals and shared exponentials (:func:`_v_steer`: within a
    few ulp of the closed form, which is all steering needs); once a step is below 1e-6
    relative, one more step lands within rounding of the root (cubic convergence) and the
    closed form itself decides: the result is that point if ``V >= th`` there, else the next
    float up where ``V >= th``. Usually two steering evaluations and one or two of the closed
    form.
    """
    if V_end - th <= 0.0:
        return D_end  # the maximum touches threshold to the last bit
    itm, its = 1.0 / tm, 1.0 / ts
    c = ts / (tm - ts) if tm != ts else 0.0
    lo = 0.0
    hi = D_end
    x = _start(V0, I0, D_end, V_end, I_end, at_peak, itm, its, th)
    for _ in range(60):
        V, I = _v_steer(V0, I0, x, itm, its, g, c)
        fx = V - th
        if fx < 0.0:
            lo = x
        else:
            hi = x
        d1 = (I - V) * itm
        d2 = (-I * its - d1) * itm
        den = 2.0 * d1 * d1 - fx * d2
        step = 2.0 * fx * d1 / den if den > 0.0 else INF
        if abs(step) <= 1e-6 * x:          # the next iterate is within rounding (cubic)
            x = min(max(x - step, lo), hi)
            break
        x = x - step
        if not (lo < x < hi):
            x = lo + 0.5 * (hi - lo)
            if hi - lo <= 2.0 * EPS * hi:
                break
    if voltage(V0, I0, x, tm, ts, g) - th >= 0.0:
        return x
    return _first_above(V0, I0, tm, ts, g, th, x, D_end)


@njit(**_JIT)
def _v_steer(V0, I0, x, itm, its, g, c):
    """``(V, I)`` at ``x`` for steering the root solve: the closed form with multiplications
    by reciprocals and ``e^{-x/ts} = e^{-x/tm} (1 + expm1(-x g))`` (two transcendentals)."""
    em = math.exp(-x * itm)
    xg = x * g
    if abs(xg) <= KERNEL_SWITCH:
        e = math.expm1(-xg)
        phi = 1.0 if xg == 0.0 else -e / xg
        return V0 * em + I0 * (x * itm) * em * phi, I0 * em * (1.0 + e)
    es = math.exp(-x * its)
    return V0 * em + I0 * c * (em - es), I0 * es


@njit(**_JIT)
def _start(V0, I0, D, V_end, I_end, at_peak, itm, its, th):
    """Starting point of the root solve on ``[0, D]``, a formula from the two ends' states.

    * Rising at ``D``: the cubic Hermite interpolant of the inverse function ``t(V)``.
    * ``D`` the peak: near a maximum the inverse is smooth in ``w = sqrt(V_peak - V)``
      (``V ~ V_peak - c (D - t)^2`` with ``c = V_peak/(2 tm ts)``, since ``V = I`` there), so
      the cubic Hermite interpolant of ``D - t`` in ``w``, from ``(w, dt/dw) = (0, 1/sqrt(c))``
      and ``(sqrt(V_peak - V0), 2 w0 tm/(I0 - V0))``.
    * Otherwise the root of the Hermite interpolant of ``V(t)`` (:func:`hermite_root`).
    """
    s0 = (I0 - V0) * itm
    if at_peak and V_end > 0.0:
        w0 = math.sqrt(V_end - V0)
        u = math.sqrt(V_end - th) / w0
        u2 = u * u
        tau = (u2 * u - 2.0 * u2 + u) * w0 / math.sqrt(0.5 * V_end * itm * its) \
            + (3.0 * u2 - 2.0 * u2 * u) * D + (u2 * u - u2) * 2.0 * w0 * w0 / s0
        return min(max(D - tau, 0.0), D)
    s1 = (I_end - V_end) * itm
    dV = V_end - V0
    if s1 > 0.0:
        u = (th - V0) / dV
        u2 = u * u
        t = (u2 * u - 2.0 * u2 + u) * dV / s0 + (3.0 * u2 - 2.0 * u2 * u) * D \
            + (u2 * u - u2) * dV / s1
        return min(max(t, 0.0), D)
    return hermite_root(V0 - th, V_end - th, D * s0, D * s1) * D


@njit(**_JIT)
def hermite_root(p0, p1, m0, m1):
    """Root in ``(0, 1)`` of the cubic Hermite interpolant with values ``p0 < 0 <= p1`` and
    slopes ``m0, m1`` at 0 and 1 (a few safeguarded Newton steps from the secant root): the
    solver's starting point."""
    u = -p0 / (p1 - p0)
    for _ in range(4):
        u2 = u * u
        h = (2.0 * u2 * u - 3.0 * u2 + 1.0) * p0 + (u2 * u - 2.0 * u2 + u) * m0 \
            + (3.0 * u2 - 2.0 * u2 * u) * p1 + (u2 * u - u2) * m1
        dh = (6.0 * u2 - 6.0 * u) * (p0 - p1) + (3.0 * u2 - 4.0 * u + 1.0) * m0 \
            + (3.0 * u2 - 2.0 * u) * m1
        if not dh > 0.0:
            break
        u = min(max(u - h / dh, 0.0), 1.0)
    return u


@njit(**_JIT)
def _first_above(V0, I0, tm, ts, g, th, x, hi):
    """A float above ``x`` (where ``f < 0``) with ``f >= 0`` whose predecessor has ``f < 0``,
    at most ``hi`` (``f(hi) >= 0``): a few steps of one float from a converged iterate (the
    first such float), then, where the noise band is wider, steps doubling in length until
    ``f >= 0`` and bisection of the last step (a few dozen evaluations fewer than bisecting
    all of ``[x, hi]``)."""
    lo = x
    for _ in range(8):
        x = np.nextafter(x, INF)
        if x >= hi:
            return hi
        if voltage(V0, I0, x, tm, ts, g) - th >= 0.0:
            return x
        lo = x
    w = 8.0 * (x - np.nextafter(x, -INF))
    while lo + w < hi:
        if voltage(V0, I0, lo + w, tm, ts, g) - th >= 0.0:
            hi = lo + w
            break
        lo = lo + w
        w *= 2.0
    while True:
        mid = lo + 0.5 * (hi - lo)
        if mid <= lo or mid >= hi:
            return hi
        if voltage(V0, I0, mid, tm, ts, g) - th >= 0.0:
            hi = mid
        else:
            lo = mid


# --------------------------------------------------------------------------- adjoint jumps
@njit(**_JIT)
def slope_floor(th):
    """Crossing slope used when ``I - threshold <= 0`` (an exactly grazing crossing, which only
    rounding produces): the float64 spacing at threshold."""
    return np.nextafter(th, INF) - th


@njit(**_JIT)
def spike_adjoint(mu_V, I, th, vr, tm, g_t):
    """Costate jump at a spike with pre-spike current ``I`` and ``dL/dt_k = g_t``.

    Returns ``(mu_V before the spike, grazing)``:
    ``mu_V^- = ((I - v_reset) mu_V^+ - tm g_t) / (I - th)``; ``grazing`` is True when the slope
    ``I - th`` was <= 0 to rounding and :func:`slope_floor` was used instead. ``mu_I`` does not
    jump.
    """
    slope = I - th
    grazing = not slope > 0.0
    if grazing:
        slope = slope_floor(th)
    return ((I - vr) * mu_V - tm * g_t) / slope, grazing


@njit(**_JIT)
def release_adjoint(mu_V, I_r, vr, tm):
    """``dL/dt_k`` of a spike through the end of its refractory period (current ``I_r`` there);
    ``mu_V`` is 0 before the release (V is held)."""
    return -mu_V * (I_r - vr) / tm


@njit(**_JIT)
def arrival_adjoint(w, mu_V, mu_I, tm, ts):
    """``dL/d(arrival time)`` of an arrival of weight ``w``; ``dL/dw`` is ``mu_I`` itself."""
    return w * (mu_I / ts - mu_V / tm)


# --------------------------------------------------------------------------- array forms
# Loops over flat arrays for :class:`eventgrad.LIF`'s array methods (the same functions,
# element by element).
@njit(**_JIT)
def kernel_many(D, tm, ts, g):
    out = np.empty(D.shape[0])
    for i in range(D.shape[0]):
        out[i] = kernel(D[i], tm, ts, g)
    return out


@njit(**_JIT)
def propagate_many(V0, I0, D, tm, ts, g):
    V = np.empty(D.shape[0])
    I = np.empty(D.shape[0])
    for i in range(D.shape[0]):
        em, es, kk = decay(D[i], tm, ts, g)
        V[i], I[i] = flow(V0[i], I0[i], em, es, kk)
    return V, I


@njit(**_JIT)
def peak_time_many(V0, I0, tm, ts):
    out = np.empty(V0.shape[0])
    for i in range(V0.shape[0]):
        out[i] = peak_time(V0[i], I0[i], tm, ts)
    return out


@njit(**_JIT)
def crossing_many(V0, I0, H, tm, ts, g, th):
    D = np.empty(V0.shape[0])
    Dp = np.empty(V0.shape[0])
    Vp = np.empty(V0.shape[0])
    for i in range(V0.shape[0]):
        D[i], Dp[i], Vp[i] = crossing(V0[i], I0[i], H[i], tm, ts, g, th)
    return D, Dp, Vp

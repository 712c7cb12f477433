"""The time loop of one population of the time-stepped path, forward and backward, compiled.

A population all of whose inputs are known for the whole window before it runs (input spikes,
and spikes of populations of lower index: a feed-forward network) needs no autograd graph per
step: given what arrives at each step, ``A_I[m]`` (current) and ``A_U[m]`` (voltage, from input
spikes' sub-step offsets), its neurons are independent recurrences. :func:`forward` runs them
and records what the backward needs; :func:`backward` is the hand-written reverse of the same
step, the gradient of every output with respect to ``A_I`` and ``A_U``. The step is the one of
:mod:`eventgrad.discrete.timestepped` (its module docs state it), with every option of it; the
torch step there is the general engine this one is cross-tested against (float64 gradients to
1e-12 relative).

Arrays are ``(n_steps + 1, n)`` with ``n = batch * neurons`` (row ``m`` is grid time ``m dt``),
of the run's dtype; ``c`` holds the population's constants in that dtype, so that float32 runs
compute the potentials in float32 as torch does: ``c = (alpha, beta, gain, threshold,
v_reset)``; the step ``dt`` and the window ``t_max`` (ms) are float64, and so are spike times
(rounded to the run's dtype where they are stored).

What the backward needs besides the saved potentials is one byte per step and neuron
(``code``): bit 0 — refractory at that step (the potential was held at ``v_reset``); bits 1-2 —
how the running maximum of U moved (:data:`NEW_MAX`, :data:`KEPT`, :data:`TIED`: torch's
``maximum`` sends half of the gradient to each side of a tie, and so does this).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["forward", "backward", "surrogate", "surrogate_grid",
           "RESETS", "NEW_MAX", "KEPT", "TIED", "REFRACTORY"]

_JIT = {"cache": True, "nogil": True, "error_model": "numpy"}

#: reset kinds, in the order of :data:`eventgrad.discrete.timestepped._RESETS`
RESETS = ("to_reset", "subtract", "multiplicative")
REFRACTORY, NEW_MAX, KEPT, TIED = 1, 0, 2, 4


@njit(**_JIT)
def surrogate(kind, scale, x):
    """The surrogate derivative number ``kind`` (index in
    :data:`eventgrad._constants.SURROGATES`) at ``x = U - threshold``; the table of
    :mod:`eventgrad.discrete.surrogates` (whose torch version states the same formulas)."""
    ax = abs(x)
    if kind == 0:
        return 1.0 / (scale * ax + 1.0) ** 2
    if kind == 1:
        return scale / (scale * ax + 1.0) ** 2
    if kind == 2:
        s = 1.0 / (1.0 + math.exp(-scale * x))
        return scale * s * (1.0 - s)
    if kind == 3:
        return max(0.0, 1.0 - scale * ax)
    if kind == 4:
        return math.exp(-scale * ax)
    return 1.0 if ax < 0.5 / scale else 0.0


@njit(**_JIT)
def surrogate_grid(kind, scale, Q, theta, out):
    """``out[m, j] = surrogate(kind, scale, Q[m, j] - theta)`` (2-d arrays); the default
    (SuperSpike, kind 0) in a loop of its own, which vectorises."""
    if kind == 0:
        for m in range(Q.shape[0]):
            for j in range(Q.shape[1]):
                out[m, j] = surrogate(0, scale, Q[m, j] - theta)
        return
    for m in range(Q.shape[0]):
        for j in range(Q.shape[1]):
            out[m, j] = surrogate(kind, scale, Q[m, j] - theta)


@njit(**_JIT)
def _crossing(m, dt, theta, u_prev, q, interpolate):
    """Spike time (ms) of a crossing detected at step ``m``: the secant root between
    ``(t_{m-1}, u_prev)`` and ``(t_m, q)``, or the grid time ``m dt``."""
    if not interpolate:
        return m * dt
    return (m - 1) * dt + dt * (theta - u_prev) / (q - u_prev)


@njit(**_JIT)
def _grow(cols, times, i):
    """``cols``, ``times`` with room for entry ``i`` (doubled when full)."""
    if i < cols.shape[0]:
        return cols, times
    c2, t2 = np.empty(2 * cols.shape[0], cols.dtype), np.empty(2 * cols.shape[0], times.dtype)
    c2[:i], t2[:i] = cols[:i], times[:i]
    return c2, t2


@njit(**_JIT)
def forward(AI, AU, c, dt, t_max, ref_steps, reset, spiking, interpolate, record, S, Q, U,
            code, first, first_step, u_first, vmax):
    """Run the population over the grid. Fills ``S`` (spikes, 0/1), ``Q`` (U before the reset)
    and ``code`` (see the module docs), each ``(n_steps + 1, n)``, and ``U`` (after the reset,
    the same shape) if ``record``; ``first`` (first-spike time, ms, inf if none within
    ``t_max``), ``first_step`` (its step, -1 if none), ``u_first`` (U at the step before it)
    and ``vmax`` (the maximum of U over the grid, from 0), each ``(n,)``. ``spiking``: False for
    an infinite threshold (nothing fires). Returns the spikes within ``t_max``, in step then
    column order, as ``(cols, times)`` (times in ms, float64).

    A step is a few passes over the neurons, each a loop of selects over a handful of rows (so
    that the compiler vectorises it): the flow, then refractoriness, maximum, spike and reset,
    then, only if someone fired, the spike times. The resets (:data:`RESETS`): to ``v_reset``,
    by subtraction of ``threshold - v_reset``, by multiplication with ``1 - S``; written
    ``r0 + r1 q`` where a spike is."""
    alpha, beta, gain, theta, v_r = c[0], c[1], c[2], c[3], c[4]
    zero = c[0] - c[0]
    one = zero + 1
    r0 = v_r if reset == 0 else v_r - theta if reset == 1 else zero
    r0 = r0 if spiking else zero               # (an infinite threshold: no reset)
    r1 = one if reset == 1 else zero
    T, n = AI.shape[0] - 1, AI.shape[1]
    I = AI[0].copy()
    u, u_prev = np.zeros(n, AI.dtype), np.zeros(n, AI.dtype)
    refr = np.zeros(n, np.int64)
    S[0], Q[0], code[0] = zero, zero, 0
    if record:
        U[0] = zero
    first[:], first_step[:], u_first[:], vmax[:] = np.inf, -1, zero, zero
    cols, times, k = np.empty(64, np.int64), np.empty(64, np.float64), 0
    for m in range(1, T + 1):
        Qm, AIm, AUm = Q[m], AI[m], AU[m]
        for j in range(n):
            u_prev[j] = u[j]
            Qm[j] = beta * u[j] + gain * I[j] + AUm[j]
            I[j] = alpha * I[j] + AIm[j]
        Sm, cm = S[m], code[m]
        fired = 0
        for j in range(n):
            held = refr[j] > 0
            q = v_r if held else Qm[j]
            vm = vmax[j]
            cm[j] = (REFRACTORY if held else 0) | (KEPT if vm > q else 0) | \
                (TIED if vm == q else 0)
            vmax[j] = q if q > vm else vm
            fire = (q - theta >= zero) & (not held) & spiking
            fired += fire
            refr[j] = ref_steps if fire else max(refr[j] - 1, 0)
            Sm[j] = one if fire else zero
            Qm[j] = q
            u[j] = r0 + r1 * q if fire else q
        if record:
            U[m] = u
        if fired:
            late = m * dt > t_max        # the last step may end after the window
            for j in range(n):
                if Sm[j] > zero:
                    t = _crossing(m, dt, theta, u_prev[j], Qm[j], interpolate)
                    if late and t > t_max:
                        continue
                    cols, times = _grow(cols, times, k)
                    cols[k], times[k] = j, t
                    k += 1
                    if first_step[j] < 0:
                        first[j], first_step[j], u_first[j] = t, m, u_prev[j]
    return cols[:k], times[:k]


@njit(**_JIT)
def _first_spike_partials(gfirst, first_step, u_first, Q, theta, dt, interpolate):
    """The neurons by the step of their first spike (``start``, ``cols``: those of step ``m``
    are ``cols[start[m]:start[m + 1]]``) and ``gfirst`` times the derivatives of the
    first-spike time (the secant root of :func:`_crossing`) with respect to the potential at
    that step (``fq``) and at the step before (``fu``)."""
    T1, n = Q.shape
    start = np.zeros(T1 + 1, np.int64)
    for j in range(n):
        if first_step[j] > 0 and interpolate:
            start[first_step[j] + 1] += 1
    for m in range(T1):
        start[m + 1] += start[m]
    cols, fill = np.empty(start[T1], np.int64), start[:T1].copy()
    fq, fu = np.zeros(n, Q.dtype), np.zeros(n, Q.dtype)
    for j in range(n):
        m = first_step[j]
        if m > 0 and interpolate:
            cols[fill[m]] = j
            fill[m] += 1
            q, u = Q[m, j], u_first[j]
            den = (q - u) * (q - u)
            fq[j] = -gfirst[j] * dt * (theta - u) / den
            fu[j] = gfirst[j] * dt * (theta - q) / den
    return start, cols, fq, fu


@njit(**_JIT)
def backward(gS, has_gS, gfirst, gvmax, S, Q, code, first_step, u_first, c, dt, reset, detach,
             spiking, interpolate, kind, scale, sig_grid, gAI, gAU):
    """The gradients of a loss with respect to ``A_I`` and ``A_U`` (into ``gAI``, ``gAU``),
    given its gradients with respect to the outputs of :func:`forward`: ``gS`` (spikes;
    ignored unless ``has_gS``), ``gfirst`` and ``gvmax``. ``kind``, ``scale``: the surrogate;
    ``sig_grid``: its values at every ``Q - threshold`` (:func:`surrogate_grid`; computed
    beforehand: inside this loop the surrogate makes the compile take seconds longer), used
    only where a gradient reaches the spikes (``has_gS`` or an undetached reset).

    The reverse of the step, in passes of selects like the forward: ``gu``, ``gi`` are the
    gradients with respect to U (after the reset) and I at the end of step ``m``, ``gq`` the
    one with respect to the step's potential; ``gv``, the running maximum's, goes back to the
    step that set it (half of it at a tie). The reset's derivatives: dU/dq is 0 where a reset
    to ``v_reset`` or to 0 happened (else 1), and dU/dS is ``v_reset - q``, ``-(threshold -
    v_reset)`` or ``-q`` (:data:`RESETS`), written ``ds0 + ds1 q``."""
    alpha, beta, gain, theta, v_r = c[0], c[1], c[2], c[3], c[4]
    zero = c[0] - c[0]
    one = zero + 1
    half = one / 2
    ds0 = v_r if reset == 0 else v_r - theta if reset == 1 else zero
    ds0 = ds0 if spiking else zero             # (an infinite threshold: no reset)
    ds1 = zero if reset == 1 else -one
    keep_s = zero if detach else one            # does the reset's S carry gradient?
    cut = reset != 1
    through_s = spiking and (has_gS or not detach)    # does any gradient reach S?
    hs = 1 if has_gS else 0                     # gS[0, 0] (a zero) where there is none
    T, n = Q.shape[0] - 1, Q.shape[1]
    gu, gi, gq = np.zeros(n, Q.dtype), np.zeros(n, Q.dtype), np.zeros(n, Q.dtype)
    gv = gvmax.copy()
    sig = np.zeros(n, Q.dtype)
    start, cols, fq, fu = _first_spike_partials(gfirst, first_step, u_first, Q, theta, dt,
                                                interpolate)
    for m in range(T, 0, -1):
        Qm, Sm, cm, gSm = Q[m], S[m], code[m], gS[m * hs]
        sg = sig_grid[m] if through_s else sig
        for j in range(n):                          # the reset and the spike
            guj = gu[j]
            base = zero if cut & (Sm[j] > zero) else guj
            gq[j] = base + (gSm[j * hs] + keep_s * (ds0 + ds1 * Qm[j]) * guj) * sg[j]
        for j in range(n):                          # the running maximum
            rel, gvj = cm[j] & (KEPT | TIED), gv[j]
            take = gvj if rel == NEW_MAX else half * gvj if rel == TIED else zero
            gv[j] = gvj - take
            gq[j] += take
        for i in range(start[m], start[m + 1]):     # first spikes at this step
            gq[cols[i]] += fq[cols[i]]
        gAUm, gAIm = gAU[m], gAI[m]
        for j in range(n):                          # back through the flow
            g = zero if cm[j] & REFRACTORY else gq[j]    # held at v_reset: no gradient
            gAUm[j] = g
            gAIm[j] = gi[j]
            gu[j] = beta * g
            gi[j] = alpha * gi[j] + gain * g
        for i in range(start[m], start[m + 1]):
            gu[cols[i]] += fu[cols[i]]
    gAI[0] = gi
    gAU[0] = zero

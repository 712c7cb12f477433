"""An independent fine-grid reference simulator for networks of CuBa LIF neurons.

Written from the equations of the model (``docs``/notes: ``tau_mem dV/dt = -V + I``,
``tau_syn dI/dt = -I``, ``I += w`` on arrival, ``V := v_reset`` on a spike, ``V`` held at
``v_reset`` for ``t_ref`` while ``I`` keeps decaying and integrating inputs), without calling
eventgrad's propagation, peak formula, root solver or event queue. Only the *description* of an
``eventgrad.Network`` (population sizes and neuron parameters, projection weights and delays) is
read, by :func:`spec_from_network`.

Method
------
* Time advances on the grid ``j dt`` (default ``dt = 2**-7`` ms ~ 0.0078 ms, a power of two so
  grid times and steps are exact floats). Every event time (input spike,
  synaptic arrival at ``t_pre + d``, refractory release, requested sample time, ``t_max``) splits
  the step, so events are applied at their exact times.
* Over a sub-step of length ``h`` the state is advanced with the exact exponential propagator of
  the linear 2x2 system::

      I(h) = I0 exp(-h/tau_syn)
      V(h) = V0 exp(-h/tau_mem) + I0 (h/tau_mem) exp(-h/tau_mem) phi(h g)

  with ``g = 1/tau_syn - 1/tau_mem`` and ``phi(x) = (1 - exp(-x))/x`` evaluated by its Taylor
  series (``|x| <= 1`` is asserted; a handful of terms reach full precision because ``h <= dt``
  is small). This is exact for ``tau_mem == tau_syn`` (``phi(0) = 1``) and has no cancellation
  for near-equal time constants.
* Crossing detection inside a sub-step never relies on the grid alone: V has at most one
  extremum between events, so a sub-step contains an interior maximum iff the slope
  ``I - V`` changes sign from ``> 0`` to ``<= 0``; that maximum is located by bisection on the
  slope and compared with the threshold. A crossing exists iff ``V(end) >= threshold`` or the
  interior maximum is ``>= threshold``; it is then located by bisection on the closed form of
  the sub-step on the monotone bracket ``[0, end or peak]`` (64 halvings: to the last ulp of the
  offset). The grid step therefore only bounds the length of the sub-steps (and the accumulated
  rounding, ~sqrt(t_max/dt) ulp of V); it does not limit which crossings are found: a
  crossing that goes above threshold and back within one grid step is found by the peak check.
* The earliest crossing of a sub-step truncates it; all neurons crossing at exactly that float
  time spike (in global order: population index, then neuron index), then the zero-delay
  arrivals they cause are applied at the same time, after every spike at that time (a spike is
  decided by the state before any arrival at its time; V is continuous).

Everything is float64. Requires ``dt |1/tau_syn - 1/tau_mem| <= 1`` (checked).

Accuracy: spike times to ~1e-13 ms of the exact solution when the crossing slope
``(I - threshold)/tau_mem`` is O(1e-2/ms) or more (e.g. 9e-14 ms for the Lambert-W case
tau = 10, w = 3, t = 7.19 ms, after ~800 sub-steps); the error of a time scales as
``eps_V * tau_mem / (I - threshold)`` with ``eps_V`` ~ 1e-14 (accumulated rounding of V), so the
reference also reports how well-posed a run is: ``min_slope`` (smallest ``I - threshold`` at a
spike), ``min_margin`` (smallest ``threshold - V`` over the realised local maxima of V that did not
cross), ``end_margin`` (``threshold - V(t_max)`` of neurons still rising at ``t_max``).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["NetSpec", "PopSpec", "ProjSpec", "RefResult", "spec_from_network",
           "simulate_reference", "phi_series", "propagate"]

_N_BISECT = 64


# ---------------------------------------------------------------------------- description
@dataclass
class PopSpec:
    size: int
    tau_mem: float
    tau_syn: float
    threshold: float = 1.0
    v_reset: float = 0.0
    t_ref: float = 0.0


@dataclass
class ProjSpec:
    pre: int  # -1 = input, else population index
    post: int
    weights: np.ndarray  # (n_pre, n_post)
    delays: np.ndarray  # (n_pre, n_post)


@dataclass
class NetSpec:
    n_inputs: int
    pops: list[PopSpec]
    projs: list[ProjSpec]


def spec_from_network(net) -> NetSpec:
    """Read the plain description of an ``eventgrad.Network`` (no eventgrad code is run)."""
    pops = []
    for p in net.populations:
        n = p.neuron
        pops.append(PopSpec(int(p.size), float(n.tau_mem), float(n.tau_syn), float(n.threshold),
                            float(n.v_reset), float(n.t_ref)))
    index = {id(p): i for i, p in enumerate(net.populations)}
    projs = []
    for pr in net.projections:
        pre = -1 if pr.pre is net.input else index[id(pr.pre)]
        d = np.array(pr.delays, dtype=np.float64)
        w = np.array(pr.weights, dtype=np.float64)
        projs.append(ProjSpec(pre, index[id(pr.post)], w, np.broadcast_to(d, w.shape).copy()))
    return NetSpec(int(net.input.size), pops, projs)


# ---------------------------------------------------------------------------- closed form
#: Taylor coefficients of phi(x) = (1 - exp(-x))/x: (-1)^n/(n+1)!
_COEF = [(-1.0) ** n / math.factorial(n + 1) for n in range(30)]
#: _XMAX[N]: largest |x| for which N terms leave a truncation error below 1e-19
_XMAX = [0.0] + [(1e-19 * math.factorial(N + 1)) ** (1.0 / N) for N in range(1, 30)]


def _n_terms(xmax: float) -> int:
    """Number of Taylor terms of phi needed for |x| <= xmax (truncation < 1e-19)."""
    if xmax > 1.0:
        raise ValueError(f"reference: |h g| = {xmax} > 1; use a smaller dt")
    N = 1
    while _XMAX[N] < xmax:
        N += 1
    return N + 1


def phi_series(x: np.ndarray) -> np.ndarray:
    """``(1 - exp(-x))/x = sum_n (-x)^n/(n+1)!`` for ``|x| <= 1`` by Horner's rule."""
    x = np.asarray(x, dtype=np.float64)
    xmax = float(np.max(np.abs(x))) if x.size else 0.0
    N = _n_terms(xmax)
    out = np.zeros_like(x)
    for n in range(N - 1, -1, -1):
        out = out * x + _COEF[n]
    return out


def propagate(V0, I0, h, tau_mem, tau_syn):
    """Exact ``(V, I)`` after ``h`` (>= 0, small) with no event; arrays broadcast."""
    V0, I0, h, tm, ts = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64)
                                             for a in (V0, I0, h, tau_mem, tau_syn)))
    g = 1.0 / ts - 1.0 / tm
    a = np.exp(-h / tm)
    k = (h / tm) * a * phi_series(h * g)
    return V0 * a + I0 * k, I0 * np.exp(-h / ts)


def _prop_scalar(V0: float, I0: float, h: float, tm: float, ts: float) -> tuple[float, float]:
    """Scalar twin of :func:`propagate` (same formulas, ``math`` functions)."""
    x = h * (1.0 / ts - 1.0 / tm)
    N = _n_terms(abs(x))
    phi = 0.0
    for n in range(N - 1, -1, -1):
        phi = phi * x + _COEF[n]
    a = math.exp(-h / tm)
    return V0 * a + I0 * (h / tm) * a * phi, I0 * math.exp(-h / ts)


def _bisect_peak(V0, I0, h, tm, ts) -> tuple[float, float]:
    """Maximum of V on [0, h] given slope I - V > 0 at 0 and <= 0 at h: (offset, V)."""
    lo, hi = 0.0, float(h)
    for _ in range(_N_BISECT):
        mid = lo + 0.5 * (hi - lo)
        if mid <= lo or mid >= hi:
            break
        Vm, Im = _prop_scalar(V0, I0, mid, tm, ts)
        if Im - Vm > 0.0:
            lo = mid
        else:
            hi = mid
    tp = 0.5 * (lo + hi)
    return tp, _prop_scalar(V0, I0, tp, tm, ts)[0]


def _bisect_cross(V0, I0, hi, tm, ts, theta) -> float:
    """Smallest float offset in (0, hi] (to the last ulp) with V >= theta; V(0) < theta <= V(hi)."""
    lo, hi = 0.0, float(hi)
    for _ in range(2 * _N_BISECT):
        mid = lo + 0.5 * (hi - lo)
        if mid <= lo or mid >= hi:
            break
        if _prop_scalar(V0, I0, mid, tm, ts)[0] >= theta:
            hi = mid
        else:
            lo = mid
    return hi


# ---------------------------------------------------------------------------- results
@dataclass
class RefResult:
    """Outcome of :func:`simulate_reference`.

    spikes : list of (t, pop, id, I_before) in emission order
    min_slope : smallest ``I - threshold`` at a spike (inf if none)
    min_margin : smallest ``threshold - V`` over realised local maxima that did not cross
    end_margin : smallest ``threshold - V(t_max)`` over neurons still rising at ``t_max``
    peaks : list of (t, pop, id, V) of the realised interior maxima and boundary maxima
    samples : dict pop -> (times, V, I) at the requested sample times (right-continuous)
    """

    sizes: list[int]
    spikes: list = field(default_factory=list)
    min_slope: float = math.inf
    min_margin: float = math.inf
    end_margin: float = math.inf
    peaks: list = field(default_factory=list)
    samples: dict = field(default_factory=dict)
    n_steps: int = 0

    def spike_times(self, pop: int) -> list[np.ndarray]:
        """Sorted spike times of each neuron of population ``pop``."""
        out = [[] for _ in range(self.sizes[pop])]
        for t, p, i, _ in self.spikes:
            if p == pop:
                out[i].append(t)
        return [np.sort(np.array(x, dtype=np.float64)) for x in out]

    def spike_counts(self, pop: int) -> np.ndarray:
        return np.array([len(x) for x in self.spike_times(pop)], dtype=np.int64)

    def currents(self, pop: int) -> list[np.ndarray]:
        """Pre-spike currents of each neuron of ``pop`` in time order."""
        out = [[] for _ in range(self.sizes[pop])]
        for _, p, i, c in sorted(self.spikes, key=lambda s: s[0]):
            if p == pop:
                out[i].append(c)
        return [np.array(x, dtype=np.float64) for x in out]


# ---------------------------------------------------------------------------- simulator
def simulate_reference(net, input_times, input_ids, t_max: float, dt: float = 2.0 ** -7,
                       sample_times=None) -> RefResult:
    """Simulate ``net`` (an ``eventgrad.Network`` or a :class:`NetSpec`) from rest on [0, t_max].

    ``input_times``/``input_ids``: the input spikes (any order; spikes after ``t_max`` have no
    effect). ``sample_times``: optional times in ``[0, t_max]`` at which ``(V, I)`` of every
    population is recorded (after every event at that time).
    """
    spec = net if isinstance(net, NetSpec) else spec_from_network(net)
    sizes = [p.size for p in spec.pops]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    N = int(offsets[-1])
    pop_of = np.repeat(np.arange(len(sizes)), sizes)
    loc_of = np.arange(N) - offsets[pop_of]

    def per_neuron(attr):
        return np.repeat([getattr(p, attr) for p in spec.pops], sizes).astype(np.float64)

    tm, ts = per_neuron("tau_mem"), per_neuron("tau_syn")
    theta, vr, tref = per_neuron("threshold"), per_neuron("v_reset"), per_neuron("t_ref")

    # outgoing synapses of each source neuron: src key (pop, m) -> list of (delay, posts, w)
    out: dict[tuple[int, int], list] = {}
    for pr in spec.projs:
        n_pre = pr.weights.shape[0]
        base = offsets[pr.post]
        for m in range(n_pre):
            d_row, w_row = pr.delays[m], pr.weights[m]
            lst = out.setdefault((pr.pre, m), [])
            for d in np.unique(d_row):
                sel = np.flatnonzero(d_row == d)
                lst.append((float(d), base + sel, w_row[sel].copy()))

    heap: list = []
    seq = 0
    ARR, REL = 1, 0  # releases before arrivals at equal times (irrelevant for V, kept fixed)

    def schedule_arrivals(src: tuple[int, int], t: float) -> None:
        nonlocal seq
        for d, posts, w in out.get(src, ()):
            ta = t + d
            if ta <= t_max:
                heapq.heappush(heap, (ta, ARR, seq, posts, w))
                seq += 1

    input_times = np.asarray(input_times, dtype=np.float64)
    input_ids = np.asarray(input_ids, dtype=np.int64)
    for tin, i in sorted(zip(input_times.tolist(), input_ids.tolist())):
        if tin <= t_max:
            schedule_arrivals((-1, int(i)), tin)

    samples = np.sort(np.asarray([] if sample_times is None else sample_times, dtype=np.float64))
    samp_V = np.full((samples.size, N), np.nan)
    samp_I = np.full((samples.size, N), np.nan)
    s_ptr = 0

    res = RefResult(sizes=sizes)
    V = np.zeros(N)
    I = np.zeros(N)
    refr = np.zeros(N, dtype=bool)
    t = 0.0

    # the standard step's propagator, cached
    a_dt = np.exp(-dt / tm)
    e_dt = np.exp(-dt / ts)
    k_dt = (dt / tm) * a_dt * phi_series(dt * (1.0 / ts - 1.0 / tm))

    def prop(V0, I0, h, sel=slice(None)):
        if isinstance(h, float) and h == dt:
            return V0 * a_dt[sel] + I0 * k_dt[sel], I0 * e_dt[sel]
        return propagate(V0, I0, h, tm[sel], ts[sel])

    def spike(n: int, tc: float) -> None:
        nonlocal seq
        res.spikes.append((tc, int(pop_of[n]), int(loc_of[n]), float(I[n])))
        res.min_slope = min(res.min_slope, float(I[n] - theta[n]))
        V[n] = vr[n]
        if tref[n] > 0.0:
            refr[n] = True
            heapq.heappush(heap, (tc + tref[n], REL, seq, n, None))
            seq += 1
        schedule_arrivals((int(pop_of[n]), int(loc_of[n])), tc)

    def record_peak(n: np.ndarray, tp: np.ndarray, Vp: np.ndarray) -> None:
        for j in range(n.size):
            res.peaks.append((float(tp[j]), int(pop_of[n[j]]), int(loc_of[n[j]]), float(Vp[j])))
        if n.size:
            res.min_margin = min(res.min_margin, float(np.min(theta[n] - Vp)))

    check_immediate = False
    while True:
        if check_immediate:
            # a neuron at or above threshold at an event time spikes at once (rounding only)
            for n in np.flatnonzero(~refr & (V >= theta)):
                spike(int(n), t)
            check_immediate = False
        t_ev = heap[0][0] if heap else math.inf
        t_s = samples[s_ptr] if s_ptr < samples.size else math.inf
        grid = (math.floor(t / dt) + 1.0) * dt
        if grid <= t:
            grid += dt
        t_next = min(grid, t_ev, t_max, t_s)
        h = t_next - t  # exact (Sterbenz) for t_next <= 2 t; the grid keeps h <= dt
        if h > 0.0:
            res.n_steps += 1
            V1, I1 = prop(V, I, h)
            any_refr = refr.any()
            if any_refr:
                V1 = np.where(refr, vr, V1)
            end_up = V1 >= theta
            pk_mask = (I > V) & (I1 <= V1) & ~end_up
            if any_refr:
                end_up &= ~refr
                pk_mask &= ~refr
            has_cross, has_pk = end_up.any(), pk_mask.any()
            if has_cross or has_pk:
                hi = np.where(end_up, h, np.nan)
                pk = np.flatnonzero(pk_mask)
                tp = Vp = None
                if has_pk:
                    tp = np.empty(pk.size)
                    Vp = np.empty(pk.size)
                    for j, n in enumerate(pk):
                        tp[j], Vp[j] = _bisect_peak(V[n], I[n], h, tm[n], ts[n])
                    over = Vp >= theta[pk]
                    hi[pk[over]] = tp[over]
                cr = np.flatnonzero(~np.isnan(hi))
                if cr.size:
                    hi_c = np.array([_bisect_cross(V[n], I[n], hi[n], tm[n], ts[n], theta[n])
                                     for n in cr])
                    oc = float(hi_c.min())
                    Vn, In = propagate(V, I, oc, tm, ts)
                    V = np.where(refr, vr, Vn)
                    I = In
                    t = t + oc
                    for n in cr[hi_c == oc]:
                        spike(int(n), t)
                    check_immediate = True
                    continue
                record_peak(pk, t + tp, Vp)
            V, I, t = V1, I1, t_next
        # events at time t: releases, then all arrivals at t together
        if heap and heap[0][0] <= t:
            for n in np.flatnonzero(~refr & (V >= theta)):
                spike(int(n), t)
            while heap and heap[0][0] <= t:
                _, kind, _, a, b = heapq.heappop(heap)
                if kind == REL:
                    refr[a] = False
                    V[a] = vr[a]
                else:
                    posts, w = a, b
                    before = I[posts] - V[posts]
                    np.add.at(I, posts, w)
                    after = I[posts] - V[posts]
                    mx = posts[(~refr[posts]) & (before > 0.0) & (after <= 0.0)]
                    if mx.size:
                        record_peak(mx, np.full(mx.size, t), V[mx])
        while s_ptr < samples.size and samples[s_ptr] <= t:
            samp_V[s_ptr], samp_I[s_ptr] = V, I
            s_ptr += 1
        if t >= t_max:
            break

    rising = (~refr) & (I - V > 0.0)
    if rising.any():
        res.end_margin = float(np.min(theta[rising] - V[rising]))
    for p in range(len(sizes)):
        sl = slice(offsets[p], offsets[p + 1])
        res.samples[p] = (samples, samp_V[:, sl], samp_I[:, sl])
    return res


def well_posed(ref: RefResult, t_max: float, *, slope: float = 1e-3, margin: float = 1e-7,
               t_gap: float = 1e-6) -> bool:
    """Whether the spike trains of ``ref`` are robust to ~1e-12 perturbations.

    False if a spike crosses with ``I - threshold < slope`` (time ill-conditioned), a realised
    maximum misses the threshold by less than ``margin`` (a near-graze: the spike count could
    flip), a neuron still rising at ``t_max`` is within ``margin`` of threshold, or a spike lies
    within ``t_gap`` of ``t_max``.
    """
    if ref.min_slope < slope or ref.min_margin < margin or ref.end_margin < margin:
        return False
    return not any(abs(t_max - s[0]) < t_gap for s in ref.spikes)

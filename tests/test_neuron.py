"""The LIF closed form, its maximum and the spike-time solver against independent derivations.

References used here (never eventgrad's own output):
* mpmath at 60 significant digits for the kernel, V(D), I(D), the peak time (closed form of
  dV/dt = 0, derived below) and the spike times;
* closed-form single-input spike times: Lambert W (tau_mem == tau_syn) and a quadratic in
  x = exp(-t/tau_mem) (tau_mem == 2 tau_syn).

Tolerances
----------
* kernel: relative error <= 8 eps (1 + D/min(tau)): the first factor covers the <= ~1.5 bits
  lost to cancellation in the direct form near the switch, the second is the conditioning of
  exp(-D/tau) to the rounding of D/tau itself (inherent, not an error of the method).
* peak time: relative 1e-12 (it is a smooth function of V0, I0 and the taus).
* single-input spike times: 1e-12 ms absolute, as the task requires, on cases with crossing
  slope >= ~0.01/ms; near-grazing inputs get the conditioning-based bound
  ``4 eps * threshold / |dV/dt| + 8 ulp(t)``.
"""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest
from mpclosed import peak_mp

import eventgrad as eg
from eventgrad.model.neuron import KERNEL_SWITCH

EPS = np.finfo(np.float64).eps
DPS = 60


# ---------------------------------------------------------------------------- mpmath model
def k_mp(D, tm, ts, dps=DPS):
    """Synaptic kernel at high precision (exact float inputs)."""
    with mp.workdps(dps):
        D, tm, ts = mp.mpf(D), mp.mpf(tm), mp.mpf(ts)
        if tm == ts:
            return D / tm * mp.exp(-D / tm)
        return ts / (tm - ts) * (mp.exp(-D / tm) - mp.exp(-D / ts))


def v_mp(V0, I0, D, tm, ts, dps=DPS):
    with mp.workdps(dps):
        return mp.mpf(V0) * mp.exp(-mp.mpf(D) / mp.mpf(tm)) + mp.mpf(I0) * k_mp(D, tm, ts, dps)


def i_mp(I0, D, ts):
    with mp.workdps(DPS):
        return mp.mpf(I0) * mp.exp(-mp.mpf(D) / mp.mpf(ts))


def cross_mp(V0, I0, tm, ts, theta, lo, hi):
    """Root of V = theta on [lo, hi] (V - theta changes sign there) at high precision."""
    with mp.workdps(DPS):
        f = lambda D: v_mp(V0, I0, D, tm, ts) - theta  # noqa: E731
        return mp.findroot(f, (mp.mpf(lo), mp.mpf(hi)), solver="anderson")


def single_input_net(lif, w, n_inputs=1):
    net = eg.Network(n_inputs)
    pop = net.add_population(1, lif)
    net.connect(net.input, pop, np.full((n_inputs, 1), w))
    return net


# ---------------------------------------------------------------------------- validation
BAD = [float("nan"), float("inf"), -float("inf"), -1.0, 0.0]


# threshold = +inf is allowed: documented as a non-spiking readout (tested below)
@pytest.mark.parametrize("name,value", [(n, v) for n in ("tau_mem", "tau_syn", "threshold")
                                        for v in BAD if not (n == "threshold" and v == np.inf)])
def test_lif_rejects_non_positive_or_non_finite(name, value):
    kw = dict(tau_mem=10.0, tau_syn=5.0)
    kw[name] = value
    with pytest.raises(ValueError) as e:
        eg.LIF(**kw)
    assert name in str(e.value) and repr(value) in str(e.value)


def test_infinite_threshold_is_a_non_spiking_integrator():
    # documented: threshold=inf makes a leaky integrator that never spikes
    lif = eg.LIF(10.0, 5.0, threshold=float("inf"))
    net = eg.Network(1)
    pop = net.add_population(1, lif)
    net.connect(net.input, pop, [[50.0]])
    res = eg.simulate(net, eg.Spikes([1.0], [0]), 40.0)
    assert res.spike_counts(0)[0] == 0 and res.diagnostics.n_spikes == 0
    assert 50 * float(k_mp(peak_mp(0, 1, 10.0, 5.0), 10.0, 5.0)) > 10  # far above any finite theta
    # (its replayed voltage: see test_simulate.py::test_voltage_replay_of_a_silent_neuron)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), 1.0, 1.5])
def test_lif_rejects_bad_v_reset(value):
    # v_reset must be finite and below the threshold (1.0 here)
    with pytest.raises(ValueError) as e:
        eg.LIF(10.0, 5.0, threshold=1.0, v_reset=value)
    assert "v_reset" in str(e.value) and repr(value) in str(e.value)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0, -1e-300])
def test_lif_rejects_bad_t_ref(value):
    with pytest.raises(ValueError) as e:
        eg.LIF(10.0, 5.0, t_ref=value)
    assert "t_ref" in str(e.value) and repr(value) in str(e.value)


@pytest.mark.parametrize("name", ["tau_mem", "tau_syn", "threshold", "v_reset", "t_ref"])
def test_lif_rejects_non_numbers(name):
    kw = dict(tau_mem=10.0, tau_syn=5.0)
    kw[name] = "abc"
    with pytest.raises(TypeError) as e:
        eg.LIF(**kw)
    assert name in str(e.value) and "'abc'" in str(e.value)


def test_lif_accepts_edge_values():
    n = eg.LIF(10.0, 10.0, threshold=2.0, v_reset=-5.0, t_ref=0.0)
    assert (n.tau_mem, n.tau_syn, n.threshold, n.v_reset, n.t_ref) == (10.0, 10.0, 2.0, -5.0, 0.0)
    assert eg.LIF(1.0, 2.0, v_reset=np.nextafter(1.0, 0.0)).v_reset < 1.0


# ---------------------------------------------------------------------------- kernel
NEAR = [1e-3, 1e-5, 1e-7, 1e-9, 1e-11, 1e-12]
TAU_PAIRS = ([(10.0, 5.0), (5.0, 10.0), (20.0, 1.0), (1.0, 20.0), (10.0, 10.0), (2.5, 2.5),
              (3.0, 1.5)]
             + [(10.0, 10.0 * (1 + d)) for d in NEAR] + [(10.0, 10.0 * (1 - d)) for d in NEAR])


def _kernel_tol(D, tm, ts):
    return 8 * EPS * (1.0 + D / min(tm, ts))


@pytest.mark.parametrize("tm,ts", TAU_PAIRS)
def test_kernel_matches_mpmath(tm, ts):
    lif = eg.LIF(tm, ts)
    D = np.concatenate([np.logspace(-6, np.log10(40 * max(tm, ts)), 60), [0.0]])
    k = lif.kernel(D)
    assert k.dtype == np.float64 and k.shape == D.shape
    for Dj, kj in zip(D, k):
        ks = lif.kernel_scalar(float(Dj))
        ref = k_mp(Dj, tm, ts)
        if Dj == 0.0:
            assert kj == 0.0 and ks == 0.0
            continue
        tol = _kernel_tol(Dj, tm, ts)
        assert abs(mp.mpf(kj) / ref - 1) <= tol, (Dj, kj, ref)
        assert abs(mp.mpf(ks) / ref - 1) <= tol, (Dj, ks, ref)


@pytest.mark.parametrize("tm,ts", [(10.0, 5.0), (5.0, 10.0), (20.0, 1.0), (3.0, 1.5)])
def test_kernel_equals_direct_formula_beyond_switch(tm, ts):
    lif = eg.LIF(tm, ts)
    g = (tm - ts) / (tm * ts)
    D = np.linspace(KERNEL_SWITCH / abs(g) * 1.01, 30 * max(tm, ts), 200)
    direct = ts / (tm - ts) * (np.exp(-D / tm) - np.exp(-D / ts))
    np.testing.assert_allclose(lif.kernel(D), direct, rtol=4 * EPS, atol=0)


@pytest.mark.parametrize("tm,ts", [(10.0, 5.0), (5.0, 10.0), (20.0, 1.0), (1.0, 20.0),
                                   (3.0, 1.5), (10.0, 10.0 * (1 + 1e-3))])
def test_kernel_continuous_across_switch(tm, ts):
    lif = eg.LIF(tm, ts)
    g = (tm - ts) / (tm * ts)
    Ds = KERNEL_SWITCH / abs(g)
    D = Ds * (1.0 + np.arange(-40, 41) * EPS)
    x = np.abs(D * g)
    assert (x <= KERNEL_SWITCH).any() and (x > KERNEL_SWITCH).any()  # both branches are used
    for fn in (lif.kernel, np.vectorize(lif.kernel_scalar)):
        k = fn(D)
        ref = np.array([float(k_mp(d, tm, ts)) for d in D])
        np.testing.assert_allclose(k, ref, rtol=_kernel_tol(Ds, tm, ts), atol=0)
        # no jump: neighbouring values differ by no more than the rounding bound
        assert np.max(np.abs(np.diff(k))) <= 2 * _kernel_tol(Ds, tm, ts) * np.max(np.abs(k))


def test_kernel_equal_taus_is_alpha_function():
    lif = eg.LIF(7.0, 7.0)
    D = np.linspace(0, 100, 1001)
    np.testing.assert_allclose(lif.kernel(D), D / 7.0 * np.exp(-D / 7.0), rtol=4 * EPS, atol=1e-300)


@pytest.mark.parametrize("d", NEAR)
def test_kernel_continuous_in_tau_syn(d):
    # near-equal taus: the kernel is a smooth function of tau_syn; it must approach the alpha
    # function as the gap closes, with the O(gap) difference the mpmath value predicts
    D = np.array([0.1, 1.0, 5.0, 10.0, 30.0, 100.0])
    eq = eg.LIF(10.0, 10.0).kernel(D)
    near = eg.LIF(10.0, 10.0 * (1 + d)).kernel(D)
    ref_diff = np.array([float(k_mp(x, 10.0, 10.0 * (1 + d)) - k_mp(x, 10.0, 10.0)) for x in D])
    np.testing.assert_allclose(near - eq, ref_diff, rtol=1e-3, atol=16 * EPS * np.max(eq))


def test_propagate_matches_mpmath():
    rng = np.random.default_rng(1)
    for tm, ts in TAU_PAIRS:
        lif = eg.LIF(tm, ts)
        V0 = rng.uniform(-1, 1, 8)
        I0 = rng.uniform(-2, 3, 8)
        D = rng.uniform(0, 3 * max(tm, ts), 8)
        V, I = lif.propagate(V0, I0, D)
        for j in range(8):
            vr, ir = v_mp(V0[j], I0[j], D[j], tm, ts), i_mp(I0[j], D[j], ts)
            scale = abs(V0[j]) + abs(I0[j])
            assert abs(V[j] - vr) <= _kernel_tol(D[j], tm, ts) * scale
            assert abs(I[j] - ir) <= _kernel_tol(D[j], tm, ts) * abs(I0[j])


# ---------------------------------------------------------------------------- peak time
PEAK_TAUS = [(10.0, 5.0), (5.0, 10.0), (20.0, 1.0), (10.0, 10.0), (10.0, 10.0 * (1 + 1e-9)),
             (10.0, 10.0 * (1 - 1e-4)), (4.0, 2.0)]


@pytest.mark.parametrize("tm,ts", PEAK_TAUS)
def test_peak_time_matches_closed_form_and_zero_slope(tm, ts):
    lif = eg.LIF(tm, ts)
    rng = np.random.default_rng(2)
    V0 = rng.uniform(-0.5, 0.9, 40)
    I0 = V0 + rng.uniform(0.05, 3.0, 40)
    I0 = np.where(I0 > 0, I0, 0.1)
    T = lif.peak_time(V0, I0)
    n_finite = 0
    for j in range(V0.size):
        ref = peak_mp(V0[j], I0[j], tm, ts)
        if ref is None:
            assert T[j] == np.inf
            # no interior maximum: V rises for ever towards 0 from below
            assert V0[j] < 0 and all(v_mp(V0[j], I0[j], D, tm, ts) < 0 for D in (1, 10, 100, 1000))
            continue
        n_finite += 1
        assert abs(T[j] / ref - 1) <= 1e-12, (V0[j], I0[j], T[j], ref)
        # dV/dt = (I - V)/tau_mem vanishes there (relative to the size of the terms)
        slope = i_mp(I0[j], T[j], ts) - v_mp(V0[j], I0[j], T[j], tm, ts)
        assert abs(slope) <= 1e-12 * (abs(I0[j]) + abs(V0[j]))
    assert n_finite >= 30


@pytest.mark.parametrize("tm,ts", PEAK_TAUS)
def test_peak_time_is_the_dense_sampled_maximum(tm, ts):
    lif = eg.LIF(tm, ts)
    for V0, I0 in [(0.0, 1.0), (0.3, 2.0), (-0.4, 1.5), (0.9, 1.0)]:
        if peak_mp(V0, I0, tm, ts) is None:  # no interior maximum (tested separately)
            assert lif.peak_time(V0, I0) == np.inf
            continue
        T = float(lif.peak_time(V0, I0))
        # coarse then fine samples of V (30 digits) locate the maximum to the fine step h
        D = np.linspace(0, 5 * max(tm, ts), 201)
        Vd = [v_mp(V0, I0, x, tm, ts, 30) for x in D]
        jc = int(np.argmax(Vd))
        fine = np.linspace(D[max(jc - 1, 0)], D[min(jc + 1, D.size - 1)], 201)
        h = fine[1] - fine[0]
        Vf = [v_mp(V0, I0, x, tm, ts, 30) for x in fine]
        assert abs(fine[int(np.argmax(Vf))] - T) <= h
        Dm, Vm = lif.max_on_interval(V0, I0, 1e6)
        assert Dm == T
        assert abs(Vm - float(v_mp(V0, I0, T, tm, ts))) <= 1e-14


def test_peak_time_not_rising_and_never_peaking():
    lif = eg.LIF(10.0, 5.0)
    # not rising at 0 (I0 <= V0, or I0 <= 0): the maximum on [0, inf) is at 0
    for V0, I0 in [(0.5, 0.5), (0.5, 0.2), (0.0, -1.0), (0.3, -0.2), (0.0, 0.0)]:
        assert lif.peak_time(V0, I0) == 0.0
        assert max(v_mp(V0, I0, D, 10.0, 5.0) for D in np.linspace(1e-3, 60, 200)) <= V0
    # V0 < 0, tau_syn < tau_mem and V0 + I0 tau_syn/(tau_mem - tau_syn) < 0: rises for ever
    assert peak_mp(-1.0, 0.5, 10.0, 5.0) is None
    assert lif.peak_time(-1.0, 0.5) == np.inf
    D, V = lif.max_on_interval(-1.0, 0.5, 7.0)
    assert D == 7.0 and abs(V - float(v_mp(-1.0, 0.5, 7.0, 10.0, 5.0))) <= 1e-15
    assert lif.next_crossing([-1.0], [0.5], 1e6)[0][0] == np.inf


# ---------------------------------------------------------------------------- spike times
def _engine_single(lif, w, t_in, t_max):
    res = eg.simulate(single_input_net(lif, w), eg.Spikes([t_in], [0]), t_max)
    return res.first_spike_times(0)[0], res


LAMBERT = [(tau, theta, ratio) for tau in (1.0, 5.0, 20.0) for theta in (1.0, 0.5, 2.0)
           for ratio in (2.8, 3.0, 5.0, 10.0, 50.0)]


@pytest.mark.parametrize("tau,theta,ratio", LAMBERT)
def test_spike_time_lambert_w_equal_taus(tau, theta, ratio):
    # V = w (s/tau) e^{-s/tau} = theta  ->  s = -tau W0(-theta/w)
    w, t_in = ratio * theta, 1.25
    with mp.workdps(DPS):
        s = -mp.mpf(tau) * mp.lambertw(-mp.mpf(theta) / mp.mpf(w), 0).real
    lif = eg.LIF(tau, tau, threshold=theta)
    D, _, _, n = lif.next_crossing([0.0], [w], 10 * tau)
    assert n == 1 and abs(D[0] - float(s)) <= 1e-12
    t, _ = _engine_single(lif, w, t_in, t_in + 10 * tau)
    assert abs(t - float(t_in + s)) <= 1e-12


QUAD = [(tm, theta, ratio) for tm in (2.0, 10.0, 40.0) for theta in (1.0, 0.3)
        for ratio in (4.5, 5.0, 8.0, 20.0, 100.0)]


@pytest.mark.parametrize("tm,theta,ratio", QUAD)
def test_spike_time_quadratic_tau_mem_twice_tau_syn(tm, theta, ratio):
    # tau_mem = 2 tau_syn: k = x - x^2 with x = e^{-t/tau_mem}; w (x - x^2) = theta, first
    # crossing at the larger root x = (1 + sqrt(1 - 4 theta/w))/2
    w, t_in = ratio * theta, 0.75
    with mp.workdps(DPS):
        x = (1 + mp.sqrt(1 - 4 * mp.mpf(theta) / mp.mpf(w))) / 2
        s = -mp.mpf(tm) * mp.log(x)
    lif = eg.LIF(tm, tm / 2, threshold=theta)
    D, _, _, _ = lif.next_crossing([0.0], [w], 10 * tm)
    assert abs(D[0] - float(s)) <= 1e-12
    t, _ = _engine_single(lif, w, t_in, t_in + 10 * tm)
    assert abs(t - float(t_in + s)) <= 1e-12


@pytest.mark.parametrize("tm,ts", PEAK_TAUS)
def test_spike_time_within_few_ulp_of_sign_change(tm, ts):
    lif = eg.LIF(tm, ts)
    rng = np.random.default_rng(3)
    with mp.workdps(DPS):
        k_peak = float(k_mp(peak_mp(0.0, 1.0, tm, ts), tm, ts))
    V0 = rng.uniform(-0.5, 0.9, 25)
    I0 = rng.uniform(2.0, 6.0, 25) / k_peak  # V_max >= -0.5 + 2 > threshold
    D, Dp, _, n = lif.next_crossing(V0, I0, 1e3)
    assert n == 25 and np.all(np.isfinite(D))
    for j in range(25):
        lo, hi = D[j], D[j]
        for _ in range(8):
            lo, hi = np.nextafter(lo, -np.inf), np.nextafter(hi, np.inf)
        assert v_mp(V0[j], I0[j], lo, tm, ts) < 1 <= v_mp(V0[j], I0[j], hi, tm, ts), j
        # and it agrees with the high-precision root
        ref = cross_mp(V0[j], I0[j], tm, ts, 1.0, 0.0, Dp[j])
        slope = abs(float(i_mp(I0[j], ref, ts)) - 1.0) / tm
        assert abs(D[j] - float(ref)) <= 4 * EPS / slope + 8 * np.spacing(D[j])


def test_next_crossing_respects_horizon():
    lif = eg.LIF(10.0, 10.0)
    s = float(-10 * mp.lambertw(-1 / mp.mpf(3)).real)
    D, _, _, _ = lif.next_crossing([0.0, 0.0], [3.0, 3.0], s * (1 - 1e-9))
    assert np.all(D == np.inf)
    D, _, _, _ = lif.next_crossing([0.0], [3.0], s * (1 + 1e-9))
    assert abs(D[0] - s) <= 1e-12
    # a state at or above threshold spikes at once
    D, _, _, _ = lif.next_crossing([1.0, 1.2], [0.0, 5.0], 10.0)
    assert np.all(D == 0.0)


def test_near_graze_spike_time_conditioning():
    # just above the grazing weight the crossing is ill-conditioned but still exact to
    # 4 eps theta / |dV/dt| (the rounding of V translated into time)
    tm, ts = 10.0, 5.0
    with mp.workdps(DPS):
        Tp = peak_mp(0.0, 1.0, tm, ts)
        wg = 1 / k_mp(Tp, tm, ts)
    lif = eg.LIF(tm, ts)
    for rel in (1e-2, 1e-4, 1e-6, 1e-8):
        w = float(wg * (1 + rel))
        D, _, _, _ = lif.next_crossing([0.0], [w], 100.0)
        ref = cross_mp(0.0, w, tm, ts, 1.0, 0.0, Tp)
        slope = abs(float(i_mp(w, ref, ts)) - 1.0) / tm
        assert abs(D[0] - float(ref)) <= 4 * EPS / slope + 8 * np.spacing(float(ref))


# ---------------------------------------------------------------------------- grazing rule
def _grazing_weights(lif):
    """Weights w_hit, w_miss = the largest float below w_hit, for a single input at rest,
    such that the float maximum of V reaches the threshold exactly for w_hit and not for
    w_miss (the documented rule is about the float value of V_max)."""
    theta = lif.threshold
    with mp.workdps(DPS):
        Tp = peak_mp(0.0, 1.0, lif.tau_mem, lif.tau_syn)
        w = float(theta / k_mp(Tp, lif.tau_mem, lif.tau_syn))
    vmax = lambda w: float(lif.max_on_interval(0.0, w, 1e3)[1])  # noqa: E731
    for _ in range(64):  # walk to the smallest float weight whose float maximum is >= theta
        if vmax(w) >= theta:
            w_lo = np.nextafter(w, 0.0)
            if vmax(w_lo) < theta:
                return w, w_lo
            w = w_lo
        else:
            w = np.nextafter(w, np.inf)
    raise AssertionError("no grazing weight found")


@pytest.mark.parametrize("tm,ts,theta", [(10.0, 5.0, 1.0), (10.0, 10.0, 1.0), (5.0, 10.0, 1.0),
                                          (20.0, 2.0, 0.7)])
def test_grazing_rule(tm, ts, theta):
    lif = eg.LIF(tm, ts, threshold=theta)
    w_hit, w_miss = _grazing_weights(lif)
    with mp.workdps(DPS):
        Tp = peak_mp(0.0, 1.0, tm, ts)
        true_max_hit = w_hit * k_mp(Tp, tm, ts)
        true_max_miss = w_miss * k_mp(Tp, tm, ts)
    # both really are grazes: the exact maxima are within a few ulp of the threshold
    assert abs(true_max_hit / theta - 1) < 4 * EPS and abs(true_max_miss / theta - 1) < 4 * EPS
    vm_hit = lif.max_on_interval(0.0, w_hit, 1e3)[1]
    vm_miss = lif.max_on_interval(0.0, w_miss, 1e3)[1]
    assert vm_hit >= theta > vm_miss
    assert theta - vm_miss <= 2 * np.spacing(theta)
    t_in, t_max = 2.0, 2.0 + 10 * max(tm, ts)
    hit = eg.simulate(single_input_net(lif, w_hit), eg.Spikes([t_in], [0]), t_max)
    miss = eg.simulate(single_input_net(lif, w_miss), eg.Spikes([t_in], [0]), t_max)
    # spike iff float V_max >= threshold
    assert hit.spike_counts(0)[0] == 1 and miss.spike_counts(0)[0] == 0
    # the spike is at the peak: V - theta ~ -(D - Tp)^2 there, so the time is only defined to
    # ~sqrt(eps) relative
    assert abs(hit.first_spike_times(0)[0] - float(t_in + Tp)) <= 1e-6 * float(Tp)
    # at the peak dV/dt = 0, i.e. I = theta: the reported crossing slope is ~0 (O(sqrt eps))
    assert abs(hit.diagnostics.min_crossing_slope) <= 1e-6
    assert abs(hit.records.currents[0] - theta) <= 1e-6
    # the miss is reported as a realised maximum theta - V_max = the float margin (~1 ulp)
    assert miss.diagnostics.closest_approach == theta - vm_miss
    assert 0 < miss.diagnostics.closest_approach <= 2 * np.spacing(theta)
    assert miss.diagnostics.min_crossing_slope == np.inf


def test_crossing_touching_threshold_between_inputs_is_not_missed():
    # input 0 at t=0 takes V 1e-9 (relative) above threshold around its peak Tp; input 1, a
    # strong inhibition, arrives 0.5 ms after the peak. The supra-threshold window is far
    # narrower than 0.01 ms: a 0.01 ms grid that only looks at grid points misses it.
    tm, ts = 10.0, 5.0
    with mp.workdps(DPS):
        Tp = peak_mp(0.0, 1.0, tm, ts)
        w = float(1.000000001 / k_mp(Tp, tm, ts))
        r1 = cross_mp(0.0, w, tm, ts, 1.0, 0.0, Tp)
        r2 = cross_mp(0.0, w, tm, ts, 1.0, Tp, 3 * Tp)
    assert float(r2 - r1) < 0.01
    grid = np.arange(0, 20, 0.01)
    near = grid[(grid > r1 - 0.05) & (grid < r2 + 0.05)]
    assert max(float(v_mp(0.0, w, g, tm, ts)) for g in near) < 1
    lif = eg.LIF(tm, ts)
    net = eg.Network(2)
    pop = net.add_population(1, lif)
    net.connect(net.input, pop, [[w], [-5.0]])
    res = eg.simulate(net, eg.Spikes([0.0, float(Tp) + 0.5], [0, 1]), 30.0)
    assert res.spike_counts(0)[0] == 1
    slope = abs(float(i_mp(w, r1, ts)) - 1.0) / tm
    assert abs(res.first_spike_times(0)[0] - float(r1)) <= 4 * EPS / slope + 1e-12


def test_crossing_after_a_later_input_peaks_between_inputs():
    # input A at 0 (sub-threshold), input B at 3 ms tuned so that the maximum after B exceeds
    # threshold by 1e-9 (relative), input C (inhibitory) after that maximum: the engine must
    # predict the crossing at B's arrival and find the first root
    tm, ts, wa, tb = 10.0, 5.0, 1.0, 3.0
    with mp.workdps(DPS):
        VB, IB = v_mp(0.0, wa, tb, tm, ts), i_mp(wa, tb, ts)

        def vmax(wb):
            T = peak_mp(VB, IB + wb, tm, ts)
            return v_mp(VB, IB + wb, T, tm, ts)

        wb = mp.findroot(lambda x: vmax(x) - mp.mpf("1.000000001"), mp.mpf(2.0))
        wb = float(wb)
        T = peak_mp(VB, IB + wb, tm, ts)
        r1 = tb + cross_mp(VB, IB + wb, tm, ts, 1.0, 0.0, T)
    net = eg.Network(3)
    pop = net.add_population(1, eg.LIF(tm, ts))
    net.connect(net.input, pop, [[wa], [wb], [-10.0]])
    res = eg.simulate(net, eg.Spikes([0.0, tb, tb + float(T) + 0.2], [0, 1, 2]), 40.0)
    assert res.spike_counts(0)[0] == 1
    slope = abs(float(i_mp(IB + wb, r1 - tb, ts)) - 1.0) / tm
    assert abs(res.first_spike_times(0)[0] - float(r1)) <= 4 * EPS / slope + 1e-12


@pytest.mark.parametrize("tm,ts", [(20.0, 5.0), (10.0, 10.0), (10.0, 10.0 * (1 + 1e-9)),
                                   (5.0, 20.0), (12.0, 6.0), (20.0, 1.0)])
def test_spike_time_within_rounding_of_a_40_digit_root(tm, ts):
    """The solver's root against the crossing of the closed form in 40-digit arithmetic: at
    or above threshold in float64, and within the closed form's rounding band (its noise,
    ~eps |V| tau_mem, divided by the slope tau_mem dV/dt = I - threshold)."""
    import mpmath as mp

    from eventgrad.model import physics

    mp.mp.dps = 40
    rng = np.random.default_rng(int(tm * 7 + ts * 3))
    g = (tm - ts) / (tm * ts)
    n = 0
    while n < 25:
        V0, I0, H = rng.uniform(-0.5, 0.95), rng.uniform(0.2, 6.0), rng.uniform(0.01, 30.0)
        D, D_end, _ = physics.crossing(V0, I0, H, tm, ts, g, 1.0)
        if not 0.0 < D < np.inf:
            continue
        n += 1

        def V(t):
            t = mp.mpf(t)
            if tm == ts:
                return (V0 + I0 * t / tm) * mp.exp(-t / tm)
            return V0 * mp.exp(-t / tm) + I0 * ts / (tm - ts) * (mp.exp(-t / tm) - mp.exp(-t / ts))

        lo, hi = mp.mpf(0), mp.mpf(D_end)
        for _ in range(160):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if V(mid) < 1 else (lo, mid)
        root = float(hi)
        slope = float(I0 * mp.exp(-hi / ts)) - 1.0
        band = 16 * np.finfo(float).eps * max(1.0, abs(V0), I0) * tm / slope
        assert physics.voltage(V0, I0, D, tm, ts, g) >= 1.0
        assert abs(D - root) <= band + 4 * np.spacing(D), (V0, I0, H, D, root)


@pytest.mark.parametrize("tm,ts", PEAK_TAUS)
def test_candidate_bounds_are_upper_bounds_of_the_maximum(tm, ts):
    """The two bounds the layered engine sorts neurons with (a neuron below both cannot
    spike): ``peak_bound`` of the peak from (V0, I0), and the division-free
    ``interior_bound`` of an interior maximum of an interval of length D from its end value,
    both never below the maximum of V on the interval (30-digit closed form), and
    ``peak_bound`` at most 0.2 I0 above it (its documented looseness)."""
    from eventgrad.model import physics

    rng = np.random.default_rng(11)
    for _ in range(200):
        V0, I0 = float(rng.uniform(-1.0, 1.0)), float(rng.uniform(1e-3, 3.0))
        D = float(rng.uniform(1e-3, 3.0)) * max(tm, ts)
        p = peak_mp(V0, I0, tm, ts)
        if p is None or I0 <= V0:
            continue
        Vp = float(v_mp(V0, I0, float(p), tm, ts, 30))
        assert physics.peak_bound(V0, I0, tm, ts) >= Vp
        assert physics.peak_bound(V0, I0, tm, ts) <= Vp + 0.2 * I0
        if float(p) < D:                      # an interior maximum on [0, D]
            V1 = float(v_mp(V0, I0, D, tm, ts, 30))
            assert physics.interior_bound(I0, V1, float(mp.exp(mp.mpf(D) / tm))) >= Vp


@pytest.mark.parametrize("excess", [1e-7, 1e-10, 1e-13])
def test_spike_time_near_a_grazing_peak(excess):
    """A maximum just above threshold: dV/dt is tiny at the crossing, so the closed form's
    rounding noise makes a band of many floats where V - threshold changes sign (where the
    solver may leave its single-float steps for doubling steps and bisection). The result is
    at or above threshold and lies within the band around the 40-digit root."""
    import mpmath as mp

    from eventgrad.model import physics

    mp.mp.dps = 40
    tm, ts, th = 20.0, 5.0, 1.0
    g = (tm - ts) / (tm * ts)
    _, unit_peak = physics.max_on_interval(0.0, 1.0, 100.0, tm, ts, g)
    I0 = (th + excess) / unit_peak            # peak of V from (0, I0) about th + excess
    D, D_end, Vp = physics.crossing(0.0, I0, 100.0, tm, ts, g, th)
    assert Vp >= th and 0.0 < D <= D_end
    assert physics.voltage(0.0, I0, D, tm, ts, g) >= th

    def V(t):
        t = mp.mpf(t)
        return I0 * ts / (tm - ts) * (mp.exp(-t / tm) - mp.exp(-t / ts))

    lo, hi = mp.mpf(0), mp.mpf(D_end)
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if V(mid) < th else (lo, mid)
    # the band: V's rounding noise (a few ulp of th) over the slope near the root, from the
    # curvature at the peak (V ~ Vp - (D - t)^2 Vp / (2 tm ts)), at least the slope at the root
    noise = 8 * np.finfo(float).eps * th
    slope_root = float(I0 * mp.exp(-hi / ts) - V(hi)) / tm
    width = max(noise / max(slope_root, 1e-300), 0.0)
    curv = float(Vp) / (tm * ts)
    width = min(width, 2 * np.sqrt(2 * noise / curv))
    assert abs(D - float(hi)) <= width + 4 * np.spacing(D), (D, float(hi), width)


def test_first_float_above_threshold_from_far_below():
    """The solver's last stage started 10^4 floats below the crossing (past its single-float
    steps): it returns a float at or above threshold whose predecessor is below, at the
    crossing of a steep rise (a band of one float), the first such float."""
    from eventgrad.model import physics

    tm, ts, th = 20.0, 5.0, 1.0
    g = (tm - ts) / (tm * ts)
    V0, I0 = 0.0, 8.0
    D, D_end, _ = physics.crossing(V0, I0, 50.0, tm, ts, g, th)
    x = D - 1e4 * np.spacing(D)
    got = physics._first_above(V0, I0, tm, ts, g, th, x, D_end)
    assert physics.voltage(V0, I0, got, tm, ts, g) >= th
    assert physics.voltage(V0, I0, np.nextafter(got, 0.0), tm, ts, g) < th
    first = x
    while physics.voltage(V0, I0, first, tm, ts, g) < th:
        first = np.nextafter(first, np.inf)
    assert got == first

"""The time-stepped surrogate-gradient path (``eventgrad.discrete``) against the exact event
engine, EventProp and closed forms.

Nothing here is compared with a number the discrete path produced once and was then written
down: every reference is the event engine (``eg.simulate``), EventProp (``eg.value_and_grad``),
a closed form derived in the test, or finite differences (``torch.autograd.gradcheck``).

What is expected, and why (tolerances and the measurements behind them)
----------------------------------------------------------------------
Forward (``update="exact"``, ``inputs="offset"``, the defaults). On the grid ``U[m]`` is the
closed form ``V(t_m)`` exactly, up to what spikes do. So

* the first spike of a population fed only by input spikes is found at the first grid time after
  the exact crossing (``0 <= t_grid - t_exact < dt``, ``interpolate=False``), and the
  interpolated time is a secant root of a smooth function: error O(dt^2) (measured slopes
  1.95-2.5, ``err <= 0.27 dt^2`` with dt in ms; asserted ``<= 0.5 dt^2``, slope >= 1.8);
* downstream, spikes are delivered at the grid time of the step that detected them (up to dt
  late), and the reset happens at the grid time instead of the crossing time: O(dt). With one
  spike per neuron (refractory period longer than the window: the first-spike regime) the
  measured error is ``<= 1.09 dt`` per spike, slopes of log(max error) vs log(dt) 0.93-1.00
  (asserted ``<= 2 dt``, slope in [0.8, 1.3]);
* ``update="euler"`` integrates I with its value at the start of the step: a voltage error of
  about ``V dt / (2 tau_syn)``, i.e. a time error ``~ dt tau_mem / (2 tau_syn (I - theta))``:
  measured up to 5.7 dt for tau 20/5 and 1.7 dt for 10/10 (asserted ``(2 + tau_mem / (0.4
  tau_syn)) dt``, using ``I - theta >= 0.2`` from the conditioning filter); ``inputs="round"``
  moves inputs by up to dt/2 (measured up to 1.2 dt here, 3.2 dt on another net; asserted
  ``4 dt``). **The 2 dt bound asked for does not hold for update="euler" with tau 20/5.**
* with several spikes per neuron the grid reset loses ``I (t_m - t_cross)/tau_mem`` of voltage
  at every spike and the next spike is late by that over the next crossing's slope, so errors
  accumulate along a burst: still order 1 (mean-error slopes 1.00-1.06, max-error 1.2) but with
  constants up to 26 dt (asserted ``<= 40 dt``); ~1 neuron in 6 changes its count at some dt
  (near-grazing last spike of a burst; asserted <= 1 in 4).

Samples are compared only when they are well conditioned *by the exact engine's own
diagnostics*: every crossing has ``I - threshold >= 0.2`` and every maximum that did not cross
misses by ``>= 0.02``; near-grazing crossings can gain or lose spikes at any finite dt.

Gradients. Where the only non-smooth piece is the interpolated spike time or the maximum over
the grid, the discrete gradient is the derivative of an O(dt)-accurate smooth function and
converges to EventProp's at order 1 (measured per-neuron relative error ``<= 0.22 dt`` for
first-spike times, asserted 0.6 dt; ``<= 0.011 dt`` for maxima of V, asserted 0.03 dt; dt in
ms). The exception is a spike within a step of an input arrival (a kink of V inside the
interpolation interval): there the interpolated derivative is O(1) wrong until dt is below the
gap (seen: 30-44 % for a spike 5 us after an inhibitory input); such neurons are excluded from
the rate check by their exact spike-to-input gap, but kept in the cosine check.

Behind hidden spiking layers the surrogate decides the gradient (section 3, numbers printed
with ``-s``): at dt = 0.1 ms the median over six 3-6-2 nets of ``1 - cos`` is 0.084 between
superspike scales 2 and 50 and 0.055 for the worst pair of shapes of matched width; the hidden
block's cosine with EventProp (0.06-0.99) does not improve as dt shrinks; keeping the reset in the
graph changes the hidden gradient by 80-105 %.

"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

import eventgrad as eg
from eventgrad import discrete
from eventgrad.discrete.surrogates import SURROGATES, Surrogate, spike
from eventgrad.event.readout import max_voltage
from eventgrad.losses import FirstSpikeCrossEntropy, MaxVoltageCrossEntropy, SpikeTimeMSE

DTS = np.array([0.2, 0.1, 0.05, 0.025])   # ms; t_max / dt is an integer for all of them
TAUS = [(20.0, 5.0), (10.0, 10.0)]
SINGLE_SPIKE_T_REF = 1000.0                # longer than any window: each neuron spikes once


# ----------------------------------------------------------------------------------- helpers
def _ff(seed, sizes, tm, ts, t_ref=0.0, gain=1.0):
    """Seeded feed-forward net (library's default initialisation) and an rng for inputs."""
    rng = np.random.default_rng(seed)
    net = eg.Network.feedforward(sizes, eg.LIF(tm, ts, t_ref=t_ref), seed=rng)
    if gain != 1.0:
        for p in net.projections:
            p.weights = p.weights * gain
    return net, rng


def _inputs(rng, n, batch, t_hi=8.0):
    return [eg.Spikes(np.sort(rng.uniform(0.0, t_hi, n)), rng.permutation(n))
            for _ in range(batch)]


def _well_conditioned(net, spikes, t_max):
    """The samples whose crossings and near misses are far from grazing (exact diagnostics)."""
    res = eg.simulate(net, spikes, t_max)
    keep = [i for i, r in enumerate(res)
            if r.diagnostics.min_crossing_slope >= 0.2 and r.diagnostics.closest_approach >= 0.02]
    return [spikes[i] for i in keep], [res[i] for i in keep]


def _spike_errors(net, exact, disc, pops):
    """|t_discrete - t_exact| of every spike, matched per neuron in order; counts must agree."""
    err = []
    for pop in pops:
        np.testing.assert_array_equal(disc.spike_counts(pop), exact.spike_counts(pop),
                                      err_msg=f"spike counts of {pop}")
        a, b = exact.spikes(pop), disc.spikes(pop)
        for n in range(net.population(pop).size):
            ta, tb = np.sort(a.times[a.ids == n]), np.sort(b.times[b.ids == n])
            err.extend(np.abs(ta - tb))
    return np.array(err)


def _slope(dts, y):
    return float(np.polyfit(np.log(dts), np.log(y), 1)[0])


def _flat(ws):
    return np.concatenate([np.asarray(w).ravel() for w in ws])


def _cos(a, b):
    a, b = _flat(a), _flat(b)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _rel(a, b):
    a, b = _flat(a), _flat(b)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


# ============================================================ 1. forward convergence to exact
@pytest.mark.parametrize("tm,ts", TAUS)
def test_input_driven_layer_grid_and_interpolated_first_spikes(tm, ts):
    """Inputs -> one LIF layer: grid times bracket the exact crossing; interpolation is O(dt^2)."""
    net, rng = _ff(0, [4, 12], tm, ts, gain=1.3)
    sps, exs = _well_conditioned(net, _inputs(rng, 4, 8), 20.0)
    t_ex = np.stack([r.first_spike_times("output") for r in exs])
    active = np.isfinite(t_ex)
    assert active.sum() >= 30
    max_err = []
    for dt in DTS:
        grid = discrete.simulate(net, sps, 20.0, dt, interpolate=False).first_spike_times("output")
        interp = discrete.simulate(net, sps, 20.0, dt).first_spike_times("output")
        np.testing.assert_array_equal(np.isfinite(grid), active)
        np.testing.assert_array_equal(np.isfinite(interp), active)
        lag = grid[active] - t_ex[active]
        assert np.all(lag >= -1e-12) and np.all(lag < dt), (dt, lag.min(), lag.max())
        np.testing.assert_allclose(grid[active] / dt, np.round(grid[active] / dt), atol=1e-9)
        e = np.abs(interp[active] - t_ex[active])
        assert e.max() <= 0.5 * dt ** 2, (dt, e.max() / dt ** 2)
        max_err.append(e.max())
    slope = _slope(DTS, max_err)
    print(f"\ninput-driven layer tau {tm}/{ts}: {active.sum()} first spikes, max err/dt^2 = "
          f"{np.round(np.array(max_err) / DTS ** 2, 4)}, slope {slope:.2f}")
    assert slope >= 1.8


def _c_bound(option_id, tm, ts):
    """Bound on |t_d - t_exact| / dt for well-conditioned single-spike 2-layer nets.

    exact-offset: hidden spikes are delivered up to one step late (<= dt) and the own crossing
    is interpolated (O(dt^2)): 2. round: inputs move by <= dt/2, amplified through two layers of
    mixed-sign weights: 4. euler: the held-I voltage error gives ~ tau_mem/(2 tau_syn (I - theta))
    dt with I - theta >= 0.2 by the conditioning filter, plus the 2 above.
    """
    c = {"exact-offset": 2.0, "round": 4.0}.get(option_id)
    if c is None:
        c = 2.0 + tm / (2 * ts * 0.2) + (2.0 if option_id == "euler-round" else 0.0)
    return c


OPTIONS = {"exact-offset": {}, "euler": {"update": "euler"}, "round": {"inputs": "round"},
           "euler-round": {"update": "euler", "inputs": "round"}}
FORWARD_CASES = [("exact-offset", 20.0, 5.0), ("exact-offset", 10.0, 10.0),
                 ("euler", 20.0, 5.0), ("round", 10.0, 10.0),
                 ("euler-round", 20.0, 5.0), ("euler-round", 10.0, 10.0)]


@pytest.mark.parametrize("option_id,tm,ts", FORWARD_CASES)
def test_first_spike_times_converge_order_dt(option_id, tm, ts):
    """4-16-4 net, one spike per neuron: |t_d - t_exact| <= c dt, slope of max error ~ 1."""
    t_max = 20.0
    net, rng = _ff(0, [4, 16, 4], tm, ts, t_ref=SINGLE_SPIKE_T_REF)
    sps, exs = _well_conditioned(net, _inputs(rng, 4, 8), t_max)
    assert len(sps) >= 6
    assert sum(r.spike_counts("output").sum() for r in exs) >= 20   # the 2nd layer is active
    max_err, mean_err = [], []
    for dt in DTS:
        res = discrete.simulate(net, sps, t_max, dt, **OPTIONS[option_id])
        e = np.concatenate([_spike_errors(net, ex, r, ["hidden", "output"])
                            for ex, r in zip(exs, res)])
        max_err.append(e.max())
        mean_err.append(e.mean())
    max_err, mean_err = np.array(max_err), np.array(mean_err)
    s_max, s_mean = _slope(DTS, max_err), _slope(DTS, mean_err)
    c = _c_bound(option_id, tm, ts)
    print(f"\n{option_id} tau {tm}/{ts}: {len(e)} spikes, max err/dt = "
          f"{np.round(max_err / DTS, 3)} (bound {c:.1f}), slope max {s_max:.2f}, "
          f"mean {s_mean:.2f}")
    assert np.all(max_err <= c * DTS)
    assert 0.8 <= s_max <= 1.3
    assert 0.8 <= s_mean <= 1.3


@pytest.mark.parametrize("tm,ts", TAUS)
def test_bursting_spike_times_converge_order_dt(tm, ts):
    """Several spikes per neuron (no refractoriness): still order dt, larger constant.

    48 independent neurons, each driven by two inputs, burst 0-10 times. The reset happens at
    the grid time, losing I (t_m - t_cross)/tau_mem of voltage per spike, so the error grows
    along a burst. Neurons whose count differs at some dt (near-grazing last spike of a burst)
    are counted and must be few; the others are compared spike by spike.
    """
    n = 48
    nrn = eg.LIF(tm, ts)
    k_peak = float(nrn.kernel(nrn.peak_time(0.0, 1.0)))
    rng = np.random.default_rng(0)
    net = eg.Network(2)
    out = net.add_population(n, nrn, name="output")
    net.connect("input", out, np.stack([np.linspace(1.2, 4.0, n), rng.uniform(-0.5, 1.0, n)])
                / k_peak)
    sp = eg.Spikes([0.0, 3.3], [0, 1])
    t_max = 25.0
    ex = eg.simulate(net, sp, t_max)
    counts = ex.spike_counts("output")
    assert counts.max() >= 5
    runs = [discrete.simulate(net, sp, t_max, dt) for dt in DTS]
    same = np.all([r.spike_counts("output") == counts for r in runs], axis=0)
    a = ex.spikes("output")
    max_err, mean_err = [], []
    for r in runs:
        b = r.spikes("output")
        e = np.concatenate([np.abs(np.sort(a.times[a.ids == j]) - np.sort(b.times[b.ids == j]))
                            for j in np.flatnonzero(same)])
        max_err.append(e.max())
        mean_err.append(e.mean())
    max_err, mean_err = np.array(max_err), np.array(mean_err)
    s_max, s_mean = _slope(DTS, max_err), _slope(DTS, mean_err)
    print(f"\nbursting tau {tm}/{ts}: counts {np.bincount(counts)}, {same.sum()}/{n} neurons "
          f"with equal counts at every dt; max err/dt {np.round(max_err / DTS, 2)} "
          f"(slope {s_max:.2f}), mean err/dt {np.round(mean_err / DTS, 3)} (slope {s_mean:.2f})")
    assert same.sum() >= 0.75 * n
    assert np.all(max_err <= 40.0 * DTS)
    assert 0.8 <= s_mean <= 1.3
    assert 0.7 <= s_max <= 1.5


# ========================================== 2. gradients that should converge to EventProp
@pytest.mark.parametrize("tm,ts", TAUS)
def test_single_layer_spike_time_gradient_converges(tm, ts):
    """Inputs -> LIF layer, SpikeTimeMSE: d(interpolated time)/dw -> EventProp, order dt.

    The output neurons are independent, so each column of dL/dW is one neuron's gradient: the
    per-neuron relative error gives the envelope without relying on one lucky grid phase.
    """
    t_max, n_out = 20.0, 32
    worst, mean, cos_all = [], [], []
    for seed in (0, 1):
        net, rng = _ff(seed, [5, n_out], tm, ts, gain=1.5)
        (sp,) = _inputs(rng, 5, 1)
        loss = SpikeTimeMSE(np.full(n_out, 8.0))
        _, g_ex = eg.value_and_grad(net, sp, loss, t_max)
        t_first = eg.simulate(net, sp, t_max).first_spike_times("output")
        gap = np.min(np.abs(t_first[:, None] - sp.times[None, :]), axis=1)
        cols = np.isfinite(t_first) & (gap > 2 * DTS.max())
        assert cols.sum() >= 10
        rows = []
        for dt in DTS:
            _, g = discrete.value_and_grad(net, sp, loss, t_max, dt)
            a, b = g.weights[0], g_ex.weights[0]
            rows.append(np.linalg.norm(a - b, axis=0)[cols] / np.linalg.norm(b, axis=0)[cols])
            cos_all.append((seed, dt, _cos(g.weights, g_ex.weights)))
        rows = np.array(rows)
        worst.append(rows.max(axis=1))
        mean.append(rows.mean(axis=1))
    worst = np.max(worst, axis=0)
    mean = np.mean(mean, axis=0)
    s_w, s_m = _slope(DTS, worst), _slope(DTS, mean)
    print(f"\nspike-time grad tau {tm}/{ts}: worst rel/dt {np.round(worst / DTS, 3)} "
          f"(slope {s_w:.2f}), mean slope {s_m:.2f}; cosines (all neurons) "
          f"{[round(c, 6) for _, _, c in cos_all]}")
    assert np.all(worst <= 0.6 * DTS)
    assert 0.75 <= s_w <= 1.4 and 0.75 <= s_m <= 1.4
    for seed, dt, c in cos_all:
        if dt <= 0.05:
            assert c >= 0.9999, (seed, dt, c)


@pytest.mark.parametrize("tm,ts", TAUS)
def test_readout_max_voltage_gradient_converges(tm, ts):
    """Inputs -> non-spiking readout, MaxVoltageCrossEntropy: grid maximum -> exact, gradient
    -> EventProp at order dt; the maximum itself within V* dt^2 / (8 tau_syn tau_mem)."""
    t_max, n_out = 20.0, 16
    worst = []
    for seed in (0, 1):
        rng = np.random.default_rng(100 + seed)
        net = eg.Network(5)
        out = net.add_population(n_out, eg.LIF(tm, ts, threshold=math.inf), name="output")
        net.connect("input", out, rng.uniform(0.2, 1.5, (5, n_out)))   # excitatory: interior peak
        (sp,) = _inputs(rng, 5, 1)
        label = [int(rng.integers(n_out))]
        loss = MaxVoltageCrossEntropy()
        L_ex, g_ex = eg.value_and_grad(net, sp, loss, t_max, label)
        mv = max_voltage(eg.simulate(net, sp, t_max), "output")
        rows = []
        for dt in DTS:
            L, g = discrete.value_and_grad(net, sp, loss, t_max, dt, target=label)
            vmax = discrete.run(net, sp, t_max, dt).vmax[0][0].numpy()
            # V(t_m) is exact on the grid, so the grid maximum is below V* by at most
            # |V''(t*)| (dt/2)^2 / 2 = V* dt^2 / (8 tau_syn tau_mem) (+ O(dt^3)).
            bound = mv.values * dt ** 2 / (8 * tm * ts)
            assert np.all(vmax <= mv.values + 1e-12)
            assert np.all(mv.values - vmax <= 1.2 * bound + 1e-12)
            # softmax cross-entropy is 2-Lipschitz in the max norm of its logits
            assert abs(L - L_ex) <= 2 * np.max(mv.values - vmax) + 1e-12
            a, b = g.weights[0], g_ex.weights[0]
            rows.append(np.linalg.norm(a - b, axis=0) / np.linalg.norm(b, axis=0))
            if dt <= 0.05:
                assert _cos(g.weights, g_ex.weights) >= 0.99999
        worst.append(np.max(rows, axis=1))
    worst = np.max(worst, axis=0)
    s = _slope(DTS, worst)
    print(f"\nmax-voltage grad tau {tm}/{ts}: worst rel/dt {np.round(worst / DTS, 4)}, "
          f"slope {s:.2f}")
    assert np.all(worst <= 0.03 * DTS)
    assert 0.8 <= s <= 1.3


# ============================ 3. hidden spiking layers: the surrogate decides the gradient
#: widths matched by half width at half maximum: superspike (sqrt(2) - 1)/beta, sigmoid
#: ln(3 + 2 sqrt(2))/beta, triangle 0.5/beta, exponential ln(2)/beta.
_HWHM = {"superspike": math.sqrt(2) - 1, "sigmoid": math.log(3 + 2 * math.sqrt(2)),
         "triangle": 0.5, "exponential": math.log(2)}


def _matched(name, beta_superspike=10.0):
    return Surrogate(name, beta_superspike * _HWHM[name] / _HWHM["superspike"])


def _hidden_net(seed, batch=4):
    """3-6-2, tau 20/5, weights x1.5 (hidden neurons fire 1-6 times), loss alternating."""
    net, rng = _ff(seed, [3, 6, 2], 20.0, 5.0, gain=1.5)
    sps = _inputs(rng, 3, batch)
    if seed % 2 == 0:
        return net, sps, SpikeTimeMSE(np.array([10.0, 12.0])), None
    return net, sps, FirstSpikeCrossEntropy(), rng.integers(0, 2, batch)


def test_surrogate_scale_matters_more_than_shape_and_reset_detach_matters():
    """Behind a spiking hidden layer (3-6-2), at dt = 0.1 ms:

    * the output-weight gradient does not involve the surrogate (detached reset, feed-forward):
      identical for every surrogate, and close to EventProp's;
    * the hidden-weight gradient changes more between scales 2 and 50 (superspike) than
      between shapes at a matched width (superspike, sigmoid, triangle, exponential);
    * keeping the reset in the graph (detach_reset=False) changes it by tens of percent.
    """
    t_max, dt = 20.0, 0.1
    rows = []
    for seed in range(6):
        net, sps, loss, target = _hidden_net(seed)
        ex = eg.simulate(net, sps, t_max)
        assert np.isfinite(ex.first_spike_times("output")).any()
        max_count = max(r.spike_counts("hidden").max() for r in ex)
        _, g_ex = eg.value_and_grad(net, sps, loss, t_max, target)

        def grad(**kw):
            return discrete.value_and_grad(net, sps, loss, t_max, dt, target=target, **kw)[1]

        g2 = grad(surrogate=Surrogate("superspike", 2.0))
        g50 = grad(surrogate=Surrogate("superspike", 50.0))
        shapes = {name: grad(surrogate=_matched(name)) for name in _HWHM}
        g_keep = grad(surrogate=_matched("superspike"), detach_reset=False)
        g10 = shapes["superspike"]
        for g in [g2, g50, *shapes.values()]:
            np.testing.assert_array_equal(g.weights[1], g10.weights[1])
        cos_out = _cos(g10.weights[1:], g_ex.weights[1:])
        cos_scale = _cos(g2.weights[0], g50.weights[0])
        cos_shape = min(_cos(shapes[a].weights[0], shapes[b].weights[0])
                        for a, b in itertools.combinations(_HWHM, 2))
        cos_event = _cos(g10.weights[0], g_ex.weights[0])
        rel_keep = _rel(g_keep.weights[0], g10.weights[0])
        rows.append((cos_scale, cos_shape, cos_event, cos_out, rel_keep, max_count))
        print(f"\nseed {seed} ({type(loss).__name__}, hidden spikes <= {max_count}): "
              f"cos scale 2 vs 50 {cos_scale:.3f}, min cos over shapes {cos_shape:.3f}, "
              f"hidden vs EventProp {cos_event:.3f}, output vs EventProp {cos_out:.4f}, "
              f"|g(keep reset) - g| / |g| = {rel_keep:.3f}")
    cos_scale, cos_shape, cos_event, cos_out, rel_keep, max_count = map(np.array, zip(*rows))
    assert np.all(cos_out >= 0.97)
    d_scale, d_shape = np.median(1 - cos_scale), np.median(1 - cos_shape)
    print(f"median 1 - cos: scale {d_scale:.3f}, shape {d_shape:.3f}; "
          f"nets where scale < shape cosine: {np.sum(cos_scale < cos_shape)}/6")
    # measured (dt 0.1): median 1 - cos 0.084 between scales, 0.055 for the worst pair of
    # matched-width shapes; the scale pair is further apart on 5 of 6 nets
    assert d_scale >= 0.03
    assert d_scale >= 1.2 * d_shape
    assert np.median(cos_shape) >= 0.9
    assert np.sum(cos_scale < cos_shape) >= 4
    assert np.all(max_count >= 2)
    assert np.all(rel_keep >= 0.15) and np.median(rel_keep) >= 0.3


def test_hidden_gradient_does_not_converge_to_eventprop():
    """The hidden-weight surrogate gradient's direction does not approach EventProp's as dt
    shrinks 4x, while the output block (exact pieces only) does."""
    t_max = 20.0
    for seed in (0, 1):
        net, sps, loss, target = _hidden_net(seed)
        _, g_ex = eg.value_and_grad(net, sps, loss, t_max, target)
        c_hid, c_out, ratio = [], [], []
        for dt in (0.2, 0.1, 0.05):
            _, g = discrete.value_and_grad(net, sps, loss, t_max, dt, target=target)
            c_hid.append(_cos(g.weights[0], g_ex.weights[0]))
            c_out.append(_cos(g.weights[1], g_ex.weights[1]))
            ratio.append(np.linalg.norm(g.weights[0]) / np.linalg.norm(g_ex.weights[0]))
        print(f"\nseed {seed}: hidden cos vs EventProp {np.round(c_hid, 3)}, norm ratio "
              f"{np.round(ratio, 3)}; output cos {np.round(c_out, 5)}")
        assert c_out[-1] >= 0.999
        assert abs(c_hid[-1] - c_hid[0]) <= 0.1
        assert c_hid[-1] <= 0.95




@pytest.mark.parametrize("reset", ["to_reset", "subtract", "multiplicative"])
@pytest.mark.parametrize("detach", [True, False])
def test_reset_in_graph_closed_form(reset, detach):
    """One neuron, one input of weight w at t = 0, two steps, no spike (U1 < threshold < U2 not
    needed: the readout is the grid maximum, here U2). With the closed form

        U1 = g w,  U2 = beta R(U1) + g alpha w,   g = k(dt),

    where R is the reset map, dU2/dw = g (beta R'(U1) + alpha) and with a detached reset
    R' = 1, otherwise R'(U) = 1 + dR/dS sigma(U - theta):  dR/dS = v_reset - U (to_reset),
    -(theta - v_reset) (subtract), -U (multiplicative)."""
    tm, ts, theta, v_r, dt, w = 20.0, 5.0, 1.0, -0.3, 0.5, 20.0
    nrn = eg.LIF(tm, ts, threshold=theta, v_reset=v_r)
    net = eg.Network(1)
    net.connect("input", net.add_population(1, nrn, name="output"), [[w]])
    sur = Surrogate("superspike", 4.0)
    W = torch.tensor([[w]], dtype=torch.float64, requires_grad=True)
    r = discrete.run(net, eg.Spikes([0.0], [0]), 2 * dt, dt, weights=[W], surrogate=sur,
                     reset=reset, detach_reset=detach)
    assert r.n_steps == 2 and r.spike_lists[0][0][0].size == 0   # no spike at all
    (dv,) = torch.autograd.grad(r.vmax[0][0, 0], W)
    g, a, b = float(nrn.kernel(dt)), math.exp(-dt / ts), math.exp(-dt / tm)
    u1 = g * w
    vmax = float(r.vmax[0][0, 0].detach())
    assert u1 < theta and u1 < vmax < theta     # no spike; the maximum is U2
    np.testing.assert_allclose(vmax, b * u1 + g * a * w, rtol=1e-14)
    x = u1 - theta
    sigma = 1.0 / (4.0 * abs(x) + 1.0) ** 2
    dR_dS = {"to_reset": v_r - u1, "subtract": -(theta - v_r), "multiplicative": -u1}[reset]
    r_prime = 1.0 if detach else 1.0 + dR_dS * sigma
    np.testing.assert_allclose(float(dv[0, 0]), g * (b * r_prime + a), rtol=1e-13)


@pytest.mark.parametrize("detach", [True, False])
def test_gradient_of_a_sample_does_not_depend_on_the_batch(detach):
    """Minimal reproduction: a quiet sample's gradient alone and next to a sample that fires."""
    net = eg.Network(1)
    net.connect("input", net.add_population(1, eg.LIF(20.0, 5.0), name="output"), [[20.0]])
    quiet = eg.Spikes([0.0], [0])                    # U = 0.48, 0.87: never reaches threshold
    loud = eg.Spikes([0.0, 0.0, 0.0], [0, 0, 0])     # three times the input: fires at step 1

    def grad(batch):
        W = torch.tensor([[20.0]], dtype=torch.float64, requires_grad=True)
        r = discrete.run(net, batch, 1.0, 0.5, weights=[W],
                         surrogate=Surrogate("superspike", 4.0), detach_reset=detach)
        assert r.spike_lists[0][0][0].size == 0
        return torch.autograd.grad(r.vmax[0][0, 0], W)[0].item()

    assert grad([quiet]) == grad([quiet, loud])


# ======================================= 4. the pieces meant to be exact: closed forms, gradcheck
@pytest.mark.parametrize("tm,ts,dt,w,a", [(20.0, 5.0, 0.1, 12.0, 0.0), (10.0, 10.0, 0.2, 5.0, 0.37),
                                          (5.0, 10.0, 0.05, 4.0, 1.234)])
def test_interpolated_spike_time_closed_form(tm, ts, dt, w, a):
    """One neuron, one input of weight w at time a: on the grid U_m = w k(t_m - a) exactly
    (exact update, sub-step input offset), and the first step with U_m >= theta gives

        t = t_{m-1} + dt (theta - U_{m-1}) / (U_m - U_{m-1}),
        dt/dw = -dt theta / (w^2 (k_m - k_{m-1})).

    discrete.run's time and autograd derivative, and discrete.value_and_grad with SpikeTimeMSE
    (dL/dw = 2 (t - target) dt/dw), must equal these."""
    nrn = eg.LIF(tm, ts)
    net = eg.Network(1)
    net.connect("input", net.add_population(1, nrn, name="output"), [[w]])
    sp = eg.Spikes([a], [0])
    t_max = 10.0
    grid = np.arange(round(t_max / dt) + 1) * dt
    k = np.where(grid >= a, nrn.kernel(np.maximum(grid - a, 0.0)), 0.0)
    m = int(np.flatnonzero(w * k >= 1.0)[0])
    t_cf = grid[m - 1] + dt * (1.0 - w * k[m - 1]) / (w * k[m] - w * k[m - 1])
    dtdw_cf = -dt / (w ** 2 * (k[m] - k[m - 1]))
    W = torch.tensor([[w]], dtype=torch.float64, requires_grad=True)
    t = discrete.run(net, sp, t_max, dt, weights=[W]).first[0][0, 0]
    (dtdw,) = torch.autograd.grad(t, W)
    np.testing.assert_allclose(float(t.detach()), t_cf, rtol=1e-13)
    np.testing.assert_allclose(float(dtdw[0, 0]), dtdw_cf, rtol=1e-10)
    # the event engine's exact time is within the O(dt^2) of the interpolation
    assert abs(t_cf - eg.simulate(net, sp, t_max).first_spike_times("output")[0]) < dt ** 2
    target = t_cf - 0.7
    L, g = discrete.value_and_grad(net, sp, SpikeTimeMSE([target]), t_max, dt)
    np.testing.assert_allclose(L, (t_cf - target) ** 2, rtol=1e-12)
    np.testing.assert_allclose(g.weights[0][0, 0], 2 * (t_cf - target) * dtdw_cf, rtol=1e-10)


def _gradcheck(fn, w):
    x = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(fn, (x,), eps=1e-6, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("engine", ["layered", "general"])
def test_gradcheck_first_spike_times_single_layer(engine):
    """First-spike times of an input-driven layer are smooth in the weights (the grid only
    decides the step): autograd through discrete.run equals central differences."""
    net, rng = _ff(2, [3, 5], 20.0, 5.0, gain=1.5)
    sps = _inputs(rng, 3, 2)
    r0 = discrete.simulate(net, sps, 15.0, 0.2)
    active = torch.from_numpy(np.isfinite(r0.first_spike_times("output")))
    assert active.sum() >= 4

    def fn(W):
        return discrete.run(net, sps, 15.0, 0.2, weights=[W], engine=engine).first[0][active]

    _gradcheck(fn, net.projections[0].weights)


@pytest.mark.parametrize("engine", ["layered", "general"])
def test_gradcheck_output_layer_behind_spiking_hidden_layer(engine):
    """3-6-2: with the hidden weights fixed, the output layer's first-spike times and the
    maximum of V are smooth functions of the output weights (hidden spikes are constants)."""
    net, rng = _ff(3, [3, 6, 2], 20.0, 5.0, gain=1.5)
    sps = _inputs(rng, 3, 2)
    W_h = torch.tensor(net.projections[0].weights, dtype=torch.float64)
    r0 = discrete.simulate(net, sps, 15.0, 0.2)
    active = torch.from_numpy(np.isfinite(r0.first_spike_times("output")))
    assert active.sum() >= 2

    def fn(W):
        r = discrete.run(net, sps, 15.0, 0.2, weights=[W_h, W], engine=engine)
        return torch.cat([r.first[1][active], r.vmax[1].ravel()])

    _gradcheck(fn, net.projections[1].weights)


@pytest.mark.parametrize("engine", ["layered", "general"])
def test_gradcheck_and_closed_form_readout_max_voltage(engine):
    """A non-spiking readout: the update without threshold crossing is linear in the weights.
    gradcheck, and the closed form d vmax_j / dw_ij = sum over input spikes of i of
    k(t_m* - a) at the grid argmax t_m* (when the maximum is positive)."""
    rng = np.random.default_rng(5)
    nrn = eg.LIF(10.0, 5.0, threshold=math.inf)
    net = eg.Network(4)
    net.connect("input", net.add_population(3, nrn, name="output"), rng.normal(0.5, 1.0, (4, 3)))
    sp = eg.Spikes([0.3, 1.17, 2.0, 4.61, 5.05], [0, 1, 2, 3, 0])
    dt, t_max = 0.1, 15.0

    def fn(W):
        return discrete.run(net, sp, t_max, dt, weights=[W], engine=engine).vmax[0]

    _gradcheck(fn, net.projections[0].weights)
    W = torch.tensor(net.projections[0].weights, requires_grad=True)
    r = discrete.run(net, sp, t_max, dt, weights=[W], record_voltage=True, engine=engine)
    v = r.voltages[0][:, 0, :].numpy()                     # (n_steps + 1, 3)
    grid = np.arange(r.n_steps + 1) * dt
    # the grid voltage is the closed-form sum of kernels
    K = np.stack([np.where(grid >= a, nrn.kernel(np.maximum(grid - a, 0.0)), 0.0)
                  for a in sp.times], axis=1)              # (steps, n_input_spikes)
    X = np.zeros((len(sp), 4))
    X[np.arange(len(sp)), sp.ids] = 1.0
    np.testing.assert_allclose(v, K @ X @ net.projections[0].weights, atol=1e-13)
    for j in range(3):
        (g,) = torch.autograd.grad(r.vmax[0][0, j], W, retain_graph=True)
        m = int(np.argmax(v[:, j]))
        expect = np.zeros((4, 3))
        if v[m, j] > 0:
            expect[:, j] = K[m] @ X
        np.testing.assert_allclose(g.numpy(), expect, atol=1e-13)


# ====================================================== 5. options, diagnostics, surrogates
def _tiny():
    net = eg.Network(2)
    net.connect("input", net.add_population(2, eg.LIF(10.0, 5.0), name="output"),
                [[8.0, 1.0], [1.0, 8.0]])
    return net, eg.Spikes([0.5, 1.0], [0, 1])


@pytest.mark.parametrize("kwargs,exc,word", [
    ({"dt": 0.0}, ValueError, "dt"), ({"dt": -0.1}, ValueError, "dt"),
    ({"dt": math.nan}, ValueError, "dt"), ({"dt": math.inf}, ValueError, "dt"),
    ({"t_max": 0.0}, ValueError, "t_max"), ({"t_max": -1.0}, ValueError, "t_max"),
    ({"reset": "zero"}, ValueError, "reset"), ({"reset": None}, ValueError, "reset"),
    ({"update": "rk4"}, ValueError, "update"), ({"inputs": "nearest"}, ValueError, "inputs"),
    ({"surrogate": "superspike"}, TypeError, "surrogate"),
    ({"surrogate": lambda x: x}, TypeError, "surrogate"),
    ({"dtype": torch.float16}, ValueError, "dtype"), ({"dtype": "float64"}, ValueError, "dtype"),
    ({"dtype": np.float64}, ValueError, "dtype"),
])
@pytest.mark.parametrize("entry", ["simulate", "value_and_grad", "run"])
def test_invalid_options_raise_naming_them(kwargs, exc, word, entry):
    net, sp = _tiny()
    args = {"t_max": 5.0, "dt": 0.1}
    args.update(kwargs)
    t_max, dt = args.pop("t_max"), args.pop("dt")
    if entry == "simulate":
        call = lambda: discrete.simulate(net, sp, t_max, dt, **args)   # noqa: E731
    elif entry == "run":
        call = lambda: discrete.run(net, sp, t_max, dt, **args)        # noqa: E731
    else:
        call = lambda: discrete.value_and_grad(                         # noqa: E731
            net, sp, SpikeTimeMSE([2.0, 2.0]), t_max, dt, **args)
    if entry == "value_and_grad" and word == "dtype":
        # value_and_grad builds its weight tensors with the dtype before run() validates it,
        # so a non-torch dtype surfaces as torch's TypeError (which still names 'dtype')
        exc = (ValueError, TypeError)
    with pytest.raises(exc, match=word):
        call()


@pytest.mark.parametrize("name,scale,word", [
    ("gauss", 10.0, "name"), ("SuperSpike", 10.0, "name"), ("superspike", 0.0, "scale"),
    ("superspike", -1.0, "scale"), ("sigmoid", math.nan, "scale"), ("triangle", math.inf, "scale"),
])
def test_invalid_surrogate(name, scale, word):
    with pytest.raises(ValueError, match=f"surrogate {word}"):
        Surrogate(name, scale)


def test_other_invalid_arguments():
    net, sp = _tiny()
    with pytest.raises(TypeError, match="loss"):
        discrete.value_and_grad(net, sp, lambda v, t: v.sum(), 5.0, 0.1)
    with pytest.raises(TypeError, match="spikes"):
        discrete.simulate(net, [sp, "x"], 5.0, 0.1)
    with pytest.raises(ValueError, match="input id"):
        discrete.simulate(net, eg.Spikes([1.0], [2]), 5.0, 0.1)
    with pytest.raises(ValueError, match="weights"):
        discrete.run(net, sp, 5.0, 0.1, weights=[])


@pytest.mark.parametrize("entry", ["simulate", "value_and_grad", "run"])
def test_step_longer_than_the_window_is_refused(entry):
    """Before: dt > t_max ran one grid step, every output silent while the exact engine
    fires (here at 1.92 ms and 2.31 ms, inside the 5 ms window)."""
    net, sp = _tiny()
    assert np.all(eg.simulate(net, sp, 5.0).first_spike_times("output") < 5.0)
    calls = {"simulate": lambda: discrete.simulate(net, sp, 5.0, 6.0),
             "run": lambda: discrete.run(net, sp, 5.0, 6.0),
             "value_and_grad": lambda: discrete.value_and_grad(
                 net, sp, SpikeTimeMSE([2.0, 2.0]), 5.0, 6.0)}
    with pytest.raises(ValueError, match=r"^dt must be <= t_max, got dt=6\.0 ms > "
                                         r"t_max=5\.0 ms$"):
        calls[entry]()
    assert discrete.simulate(net, sp, 5.0, 5.0).first_spike_times("output").shape == (2,)


def test_empty_batch_is_refused_by_the_time_stepped_path():
    """Before: discrete.value_and_grad of [] returned a nan loss (numpy's 'Mean of empty
    slice') and simulate an empty result."""
    net, _ = _tiny()
    msg = r"^spikes must be an eventgrad.Spikes or a non-empty sequence .*got an empty list$"
    with pytest.raises(ValueError, match=msg):
        discrete.simulate(net, [], 5.0, 0.1)
    with pytest.raises(ValueError, match=msg):
        discrete.value_and_grad(net, [], FirstSpikeCrossEntropy(), 5.0, 0.1, target=[])


# independent transcription of the table in eventgrad/surrogates.py
_FORMULAS = {
    "superspike": lambda x, b: 1.0 / (b * np.abs(x) + 1.0) ** 2,
    "superspike_asym": lambda x, b: b / (b * np.abs(x) + 1.0) ** 2,
    "sigmoid": lambda x, b: b * np.exp(-b * np.abs(x)) / (1.0 + np.exp(-b * np.abs(x))) ** 2,
    "triangle": lambda x, b: np.maximum(0.0, 1.0 - b * np.abs(x)),
    "exponential": lambda x, b: np.exp(-b * np.abs(x)),
    "boxcar": lambda x, b: (np.abs(x) < 1.0 / (2.0 * b)).astype(float),
}


@pytest.mark.parametrize("name", SURROGATES)
@pytest.mark.parametrize("scale", [1.0, 10.0, 37.5])
def test_surrogate_formulas_and_spike_gradient(name, scale):
    assert set(SURROGATES) == set(_FORMULAS)
    x = np.array([-2.0, -0.3, -0.05, -0.01, 0.0, 0.004, 0.02, 0.1, 0.5, 3.0])
    sur = Surrogate(name, scale)
    expect = _FORMULAS[name](x, scale)
    # atol: sigmoid's s (1 - s) underflows to 0 far out (e.g. 5e-48 at beta x = -75)
    np.testing.assert_allclose(sur(torch.tensor(x)).numpy(), expect, rtol=1e-12, atol=1e-14)
    xt = torch.tensor(x, requires_grad=True)
    s = spike(xt, sur)
    np.testing.assert_array_equal(s.detach().numpy(), (x >= 0).astype(float))  # H(0) = 1
    weights = torch.linspace(0.5, 2.0, len(x), dtype=torch.float64)
    (g,) = torch.autograd.grad((s * weights).sum(), xt)
    np.testing.assert_allclose(g.numpy(), weights.numpy() * expect, rtol=1e-12, atol=1e-14)
    # the stated normalisations
    if name in ("superspike", "triangle", "exponential", "boxcar"):
        assert float(sur(torch.tensor([0.0]))) == 1.0
    grid = np.linspace(-400.0 / scale, 400.0 / scale, 800001)
    y = _FORMULAS[name](grid, scale)
    area = float(np.sum((y[1:] + y[:-1]) * np.diff(grid)) / 2)     # trapezoid rule
    if name == "sigmoid":
        np.testing.assert_allclose(area, 1.0, rtol=1e-6)
    if name == "superspike_asym":
        np.testing.assert_allclose(area, 2.0 - 2.0 / 401.0, rtol=1e-6)   # 2 on the whole line


def test_float32_matches_float64():
    net, rng = _ff(0, [4, 16, 4], 20.0, 5.0, t_ref=SINGLE_SPIKE_T_REF)
    sps, _ = _well_conditioned(net, _inputs(rng, 4, 8), 20.0)
    r64 = discrete.simulate(net, sps, 20.0, 0.1)
    r32 = discrete.simulate(net, sps, 20.0, 0.1, dtype=torch.float32)
    assert r32.diagnostics.settings["dtype"] == "float32"
    for pop in ("hidden", "output"):
        np.testing.assert_array_equal(r32.spike_counts(pop), r64.spike_counts(pop))
        a, b = r32.first_spike_times(pop), r64.first_spike_times(pop)
        np.testing.assert_array_equal(np.isfinite(a), np.isfinite(b))
        m = np.isfinite(b)
        # float32 voltage rounding ~1e-7 relative, over slopes >= 0.2/tau_mem: ~1e-5 ms
        print(f"\nfloat32 vs float64 {pop}: max |dt| {np.max(np.abs(a[m] - b[m])):.2e} ms")
        assert np.max(np.abs(a[m] - b[m])) <= 1e-3
    loss = SpikeTimeMSE(np.full(4, 10.0))
    L64, g64 = discrete.value_and_grad(net, sps, loss, 20.0, 0.1)
    L32, g32 = discrete.value_and_grad(net, sps, loss, 20.0, 0.1, dtype=torch.float32)
    np.testing.assert_allclose(L32, L64, rtol=1e-4)
    print(f"float32 gradient rel. diff {_rel(g32.weights, g64.weights):.2e}, "
          f"loss {abs(L32 - L64) / L64:.2e}")
    assert _rel(g32.weights, g64.weights) <= 1e-3


def test_delays_are_rounded_to_the_grid_and_reported():
    """LIF -> LIF delays are rounded to whole steps (|error| <= dt/2, reported); input
    projection delays keep their exact arrival times (not rounded, not reported)."""
    dt = 0.1
    net, rng = _ff(1, [3, 6, 2], 10.0, 5.0, gain=1.5)
    d_in = rng.uniform(0.0, 2.0, (3, 6))
    d_hid = np.array([[0.33, 1.27], [0.0, 2.04], [0.61, 0.88], [1.0, 0.149], [0.71, 0.52],
                      [1.93, 0.26]])
    net.set_delays([d_in, d_hid])
    sps = _inputs(rng, 3, 3)
    r = discrete.simulate(net, sps, 25.0, dt)
    expect = np.max(np.abs(np.round(d_hid / dt) * dt - d_hid))
    np.testing.assert_allclose(r.diagnostics.max_delay_rounding, expect, atol=1e-12)
    np.testing.assert_allclose(expect, 0.049, atol=1e-12)        # 0.149 -> 0.1
    assert r.diagnostics.lagged_projections == []
    assert r.diagnostics.n_steps == 250
    # the same as the rounded delays ...
    rounded = net.copy()
    rounded.set_delays([d_in, np.round(d_hid / dt) * dt])
    r_round = discrete.simulate(rounded, sps, 25.0, dt)
    assert r_round.diagnostics.max_delay_rounding < 1e-12
    # ... and input delays act as shifted input times (exact sub-step offsets)
    shifted = net.copy()
    d_common = 0.437
    shifted.set_delays([np.full((3, 6), d_common), d_hid])
    r_shift = discrete.simulate(shifted, sps, 25.0, dt)
    no_delay = net.copy()
    no_delay.set_delays([np.zeros((3, 6)), d_hid])
    r_moved = discrete.simulate(no_delay, [eg.Spikes(s.times + d_common, s.ids) for s in sps],
                                25.0, dt)
    for pop in ("hidden", "output"):
        np.testing.assert_array_equal(r.spike_counts(pop), r_round.spike_counts(pop))
        np.testing.assert_allclose(r.first_spike_times(pop), r_round.first_spike_times(pop),
                                   rtol=0, atol=1e-12)
        np.testing.assert_array_equal(r_shift.spike_counts(pop), r_moved.spike_counts(pop))
        np.testing.assert_allclose(r_shift.first_spike_times(pop),
                                   r_moved.first_spike_times(pop), rtol=0, atol=1e-9)
    # against the exact engine with the rounded delays: O(dt) per spike
    ex = eg.simulate(rounded, sps, 25.0)
    worst = 0.0
    for e, d in zip(ex, r_round):
        for pop in ("hidden", "output"):
            a, b = e.first_spike_times(pop), d.first_spike_times(pop)
            np.testing.assert_array_equal(np.isfinite(a), np.isfinite(b))
            m = np.isfinite(a)
            worst = max(worst, np.max(np.abs(a[m] - b[m]), initial=0.0))
    print(f"\ndelays: first-spike error vs exact engine with rounded delays {worst / dt:.2f} dt")
    assert worst <= 3 * dt


def test_zero_delay_recurrence_is_lagged_and_reported():
    """A zero (rounded) delay onto the same or an earlier population becomes one step; onto a
    later population it stays zero. Each lagged projection is listed."""
    nrn = eg.LIF(10.0, 5.0)
    net = eg.Network(2)
    h = net.add_population(3, nrn, name="hidden")
    o = net.add_population(2, nrn, name="output")
    p_in = net.connect("input", h, np.full((2, 3), 8.0))
    p_ff = net.connect(h, o, np.full((3, 2), 3.0))                       # 0: forward, stays 0
    p_rec0 = net.connect(h, h, np.full((3, 3), -0.5))                    # 0 onto itself: lag
    p_back = net.connect(o, h, np.full((2, 3), 0.3), delay=0.04)         # rounds to 0: lag
    p_rec1 = net.connect(o, o, np.full((2, 2), 0.1), delay=0.06)         # rounds to 1 step
    sp = eg.Spikes([0.5, 1.0], [0, 1])
    d = discrete.simulate(net, sp, 10.0, 0.1).diagnostics
    assert sorted(d.lagged_projections) == sorted([p_rec0.index, p_back.index])
    assert p_in.index not in d.lagged_projections and p_ff.index not in d.lagged_projections
    assert p_rec1.index not in d.lagged_projections
    # the zero delays made one step (0.1 ms) are the largest change of a delay
    np.testing.assert_allclose(d.max_delay_rounding, 0.1, atol=1e-12)
    # with no zero delay onto itself or back, nothing is lagged
    ff, _ = _ff(0, [2, 3, 2], 10.0, 5.0)
    assert discrete.simulate(ff, sp, 10.0, 0.1).diagnostics.lagged_projections == []


def test_no_spike_reported_after_t_max():
    net = eg.Network(1)
    net.connect("input", net.add_population(1, eg.LIF(20.0, 5.0), name="output"), [[40.0]])
    sp = eg.Spikes([0.0], [0])
    t_exact = eg.simulate(net, sp, 10.0).first_spike_times("output")[0]     # 0.534 ms
    t_max = t_exact - 0.03
    assert np.isinf(eg.simulate(net, sp, t_max).first_spike_times("output")[0])
    r = discrete.simulate(net, sp, t_max, 0.1)
    assert np.all(r.spikes("output").times <= t_max)
    assert np.isinf(r.first_spike_times("output")[0])


def test_all_silent_readout_gives_zero_gradient():
    net = eg.Network(1)
    h = net.add_population(1, eg.LIF(20.0, 5.0), name="hidden")
    o = net.add_population(1, eg.LIF(20.0, 5.0), name="output")
    net.connect("input", h, [[20.0]])
    net.connect(h, o, [[0.1]])
    sp = eg.Spikes([1.0], [0])
    loss = SpikeTimeMSE([5.0])
    L_ex, g_ex = eg.value_and_grad(net, sp, loss, 10.0)
    assert all(np.all(g == 0) for g in g_ex.weights)
    L, g = discrete.value_and_grad(net, sp, loss, 10.0, 0.1)
    assert L == L_ex
    assert all(np.all(w == 0) for w in g.weights)


# ======================================================= 6. loss values agree to O(dt)
def test_loss_values_agree_with_event_path_to_order_dt():
    """First-spike losses are Lipschitz in the times, so |L_d - L_exact| <= Lip * max|dt_k|,
    and max|dt_k| <= 2 dt (section 1, single-spike regime):

    * SpikeTimeMSE: |(a + e)^2 - a^2| <= 2 |a| E + E^2 with a = t_exact - target, E = 2 dt;
    * FirstSpikeCrossEntropy: |d CE / d t|_1 <= 2/tau0 and the regulariser's slope is
      <= alpha e^{t_max/tau1}/tau1.
    """
    t_max = 20.0
    net, rng = _ff(0, [4, 16, 4], 20.0, 5.0, t_ref=SINGLE_SPIKE_T_REF)
    sps, exs = _well_conditioned(net, _inputs(rng, 4, 8), t_max)
    targets = np.array([6.0, 8.0, 10.0, 12.0])
    labels = rng.integers(0, 4, len(sps))
    mse, ce = SpikeTimeMSE(targets), FirstSpikeCrossEntropy()
    L_mse, _ = eg.value_and_grad(net, sps, mse, t_max)
    L_ce, _ = eg.value_and_grad(net, sps, ce, t_max, labels)
    t_ex = np.stack([np.where(np.isfinite(t), t, t_max) for t in
                     (r.first_spike_times("output") for r in exs)])
    lip_ce = 2 / ce.tau0 + ce.alpha * math.exp(t_max / ce.tau1) / ce.tau1
    diffs = []
    for dt in (0.2, 0.05):
        E = 2 * dt
        Ld_mse, _ = discrete.value_and_grad(net, sps, mse, t_max, dt)
        Ld_ce, _ = discrete.value_and_grad(net, sps, ce, t_max, dt, target=labels)
        bound_mse = np.mean(2 * np.abs(t_ex - targets) * E + E ** 2)
        diffs.append((abs(Ld_mse - L_mse), bound_mse, abs(Ld_ce - L_ce), lip_ce * E))
        assert abs(Ld_mse - L_mse) <= bound_mse
        assert abs(Ld_ce - L_ce) <= lip_ce * E
    # and they shrink with dt (4x smaller dt: measured 3.9x for MSE, 9.4x for CE)
    assert diffs[1][0] <= diffs[0][0] / 2 and diffs[1][2] <= diffs[0][2] / 2
    print("\nloss |L_d - L| (bound): "
          + "; ".join(f"MSE {a:.2e} ({b:.2e}), CE {c:.2e} ({d:.2e})" for a, b, c, d in diffs))


def test_surrogate_path_between_populations_does_not_depend_on_the_batch():
    """A hidden neuron that never fires still passes its surrogate gradient to the next
    population; the gradient of a sample must be the same alone and next to a sample in which
    the hidden neuron fires (the surrogate path must not be cut at quiet steps)."""
    net = eg.Network(1)
    h = net.add_population(1, eg.LIF(20.0, 5.0), name="hidden")
    o = net.add_population(1, eg.LIF(20.0, 5.0, threshold=np.inf), name="output")
    net.connect("input", h, [[4.0]])
    net.connect(h, o, [[1.0]])
    quiet = eg.Spikes([0.0], [0])
    loud = eg.Spikes([0.0, 0.0, 0.0], [0, 0, 0])
    assert eg.simulate(net, quiet, 20.0).spike_counts("hidden")[0] == 0
    assert eg.simulate(net, loud, 20.0).spike_counts("hidden")[0] > 0

    def grad(batch, b):
        W = [torch.tensor(p.weights, requires_grad=True) for p in net.projections]
        r = discrete.run(net, batch, 20.0, 0.1, weights=W)
        (g,) = torch.autograd.grad(r.vmax[o.index][b, 0], W[0])
        return float(g[0, 0])

    alone = grad([quiet], 0)
    assert alone != 0.0
    assert grad([quiet, loud], 0) == pytest.approx(alone, rel=1e-12)

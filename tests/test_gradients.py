"""EventProp gradients against central finite differences of the same forward pass (float64).

Random networks: feed-forward with 1-3 layers, per-synapse delays, refractoriness, a reset
below 0, several tau ratios (including tau_mem == tau_syn), and recurrent networks. Each
gradient kind (weights, delays, input spike times) is compared with 4-point central differences
of the event engine's loss; the norm-wise relative error must be below 1e-6. Parameters whose
finite-difference stencil adds or removes a spike are listed (printed) and excluded from that
comparison, and the test fails if they are more than a small fraction of all parameters.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from fdcheck import fd_grad, loss_value, rel_err

import eventgrad as eg
from eventgrad.losses import FirstSpikeCrossEntropy, MaxVoltageCrossEntropy, SpikeTimeMSE

TOL = 1e-6
H_W = 1e-4      # weights (dimensionless)
H_T = 1e-4      # delays and input times, ms


def _ff_net(rng, n_layers, ratio, t_ref, v_reset=0.0):
    tm = 20.0
    nrn = eg.LIF(tm, tm / ratio, t_ref=t_ref, v_reset=v_reset)
    sizes = [3] + [int(rng.integers(3, 5)) for _ in range(n_layers - 1)] + [2]
    k_pk = float(nrn.kernel(nrn.peak_time(0.0, 1.0)))
    weights, delays = [], []
    for i in range(n_layers):
        scale = 2.5 / (sizes[i] * k_pk)
        weights.append(rng.normal(scale, 0.6 * scale, (sizes[i], sizes[i + 1])))
        delays.append(rng.uniform(0.0, 3.0, (sizes[i], sizes[i + 1])))
    return eg.Network.feedforward(sizes, nrn, weights=weights, delays=delays)


def _recurrent_net(rng, ratio, t_ref):
    tm = 15.0
    nrn = eg.LIF(tm, tm / ratio, t_ref=t_ref)
    k_pk = float(nrn.kernel(nrn.peak_time(0.0, 1.0)))
    net = eg.Network(3)
    hid = net.add_population(4, nrn, name="hidden")
    out = net.add_population(2, nrn, name="output")
    net.connect(net.input, hid, rng.normal(1.0, 0.4, (3, 4)) / k_pk, rng.uniform(0, 2, (3, 4)))
    rec_w = rng.normal(0.0, 0.15, (4, 4)) / k_pk
    net.connect(hid, hid, rec_w, rng.uniform(0.5, 2.0, (4, 4)))      # onto itself
    net.connect(hid, out, rng.normal(0.7, 0.3, (4, 2)) / k_pk, rng.uniform(0, 2, (4, 2)))
    net.connect(out, hid, rng.normal(-0.2, 0.1, (2, 4)) / k_pk, 1.0)  # back to an earlier one
    return net


def _inputs(rng, n=3):
    return eg.Spikes(np.sort(rng.uniform(0.0, 8.0, n)), rng.permutation(n))


def _draw(rng, build, t_max, tries=50):
    """A network and input whose output spikes (so that the loss depends on the parameters)."""
    for _ in range(tries):
        net = build(rng)
        sp = _inputs(rng)
        res = eg.simulate(net, sp, t_max)
        if np.all(np.isfinite(res.first_spike_times("output"))):
            return net, sp
    raise AssertionError("no active network found")


def _check_all(net, sp, loss, t_max, target=None, label="", engine="fast"):
    """The gradient of ``engine`` against central differences of the same engine's forward
    pass, for weights, delays and input times."""
    _, g = eg.value_and_grad(net, sp, loss, t_max, target, engine=engine)
    shapes = [p.weights.shape for p in net.projections]
    sizes = [int(np.prod(s)) for s in shapes]

    def unflat(x):
        out, i = [], 0
        for s, n in zip(shapes, sizes):
            out.append(x[i:i + n].reshape(s))
            i += n
        return out

    w0 = np.concatenate([w.ravel() for w in net.get_weights()])
    d0 = np.concatenate([d.ravel() for d in net.get_delays()])

    def with_weights(x):
        n2 = net.copy()
        n2.set_weights(unflat(x))
        return n2

    def with_delays(x):
        n2 = net.copy()
        n2.set_delays(unflat(np.maximum(x, 0.0)))
        return n2

    def loss_of(n2, sp2):
        return loss_value(n2, sp2, loss, t_max, target, engine)

    checks = {
        "weights": (w0, H_W, lambda x: loss_of(with_weights(x), sp),
                    np.concatenate([a.ravel() for a in g.weights])),
        # delays at 0 cannot be stepped below 0: the drawn delays are > 0 almost surely
        "delays": (d0, H_T, lambda x: loss_of(with_delays(x), sp),
                   np.concatenate([a.ravel() for a in g.delays])),
        "input_times": (sp.times.copy(), H_T, lambda x: loss_of(net, eg.Spikes(x, sp.ids)),
                        g.input_times),
    }
    errors = {}
    for kind, (x0, h, f, ours) in checks.items():
        fd = fd_grad(f, x0, h)
        if fd.discontinuous:
            print(f"{label} {kind}: stencil changes spike counts at {fd.discontinuous}; "
                  "excluded from the comparison")
        assert len(fd.discontinuous) <= max(1, x0.size // 5), (label, kind, fd.discontinuous)
        assert np.linalg.norm(np.nan_to_num(fd.grad)) > 0, (label, kind, "zero gradient")
        errors[kind] = rel_err(ours, fd.grad)
        assert errors[kind] < TOL, (label, kind, errors[kind], ours, fd.grad)
    print(label, {k: f"{v:.1e}" for k, v in errors.items()})
    return errors


@pytest.mark.parametrize("n_layers,ratio,t_ref,seed", [
    (1, 4.0, 0.0, 1),
    (2, 1.0, 0.0, 2),       # tau_mem == tau_syn
    (2, 2.0, 1.5, 3),       # refractory
    (3, 0.5, 1.0, 4),       # tau_syn > tau_mem, refractory, three layers
    (2, 1.0 + 1e-9, 0.0, 5),  # near-equal time constants
])
def test_feedforward_first_spike_mse(n_layers, ratio, t_ref, seed, engine):
    rng = np.random.default_rng(seed)
    net, sp = _draw(rng, lambda r: _ff_net(r, n_layers, ratio, t_ref, v_reset=-0.1), 80.0)
    loss = SpikeTimeMSE(targets=[12.0, 18.0])
    _check_all(net, sp, loss, 80.0, label=f"ff{n_layers} r{ratio} tref{t_ref} {engine}",
               engine=engine)


@pytest.mark.parametrize("ratio,t_ref,seed", [(4.0, 0.0, 11), (1.0, 1.0, 12)])
def test_recurrent_cross_entropy(ratio, t_ref, seed, engine):
    rng = np.random.default_rng(seed)
    net, sp = _draw(rng, lambda r: _recurrent_net(r, ratio, t_ref), 60.0)
    res = eg.simulate(net, sp, 60.0)
    assert res.spike_counts("hidden").sum() > 4  # recurrence is exercised
    loss = FirstSpikeCrossEntropy(tau0=2.0, tau1=10.0, alpha=0.01)
    _check_all(net, sp, loss, 60.0, target=1, label=f"rec r{ratio} tref{t_ref} {engine}",
               engine=engine)


def test_max_voltage_readout():
    rng = np.random.default_rng(21)
    nrn = eg.LIF(10.0, 5.0)
    readout = eg.LIF(10.0, 5.0, threshold=np.inf)
    net = eg.Network(3)
    hid = net.add_population(5, nrn, name="hidden")
    out = net.add_population(3, readout, name="output")
    k_pk = float(nrn.kernel(nrn.peak_time(0.0, 1.0)))
    net.connect(net.input, hid, rng.normal(1.0, 0.5, (3, 5)) / k_pk, rng.uniform(0, 2, (3, 5)))
    net.connect(hid, out, rng.normal(0.2, 0.5, (5, 3)), rng.uniform(0, 2, (5, 3)))
    sp = _inputs(rng)
    assert eg.simulate(net, sp, 40.0).spike_counts("hidden").sum() > 0
    _check_all(net, sp, MaxVoltageCrossEntropy(), 40.0, target=2, label="max-voltage")


def test_batch_is_mean_of_samples():
    rng = np.random.default_rng(31)
    net, _ = _draw(rng, lambda r: _ff_net(r, 2, 4.0, 0.0), 60.0)
    batch = [_inputs(rng) for _ in range(3)]
    loss = SpikeTimeMSE(targets=[12.0, 18.0])
    L, g = eg.value_and_grad(net, batch, loss, 60.0)
    singles = [eg.value_and_grad(net, s, loss, 60.0) for s in batch]
    assert L == pytest.approx(np.mean([s[0] for s in singles]), rel=1e-14)
    for i in range(len(net.projections)):
        mean_w = np.mean([s[1].weights[i] for s in singles], axis=0)
        np.testing.assert_allclose(g.weights[i], mean_w, rtol=1e-12, atol=1e-15)
    for b in range(3):
        np.testing.assert_allclose(g.input_times[b], singles[b][1].input_times / 3, rtol=1e-12,
                                   atol=1e-15)


def test_memory_is_per_spike():
    """A long simulation keeps one record per spike and no per-time-step state."""
    rng = np.random.default_rng(41)
    net, sp = _draw(rng, lambda r: _ff_net(r, 2, 4.0, 0.0), 60.0)
    long_input = eg.Spikes(np.concatenate([sp.times + 200.0 * k for k in range(20)]),
                           np.tile(sp.ids, 20))
    res = eg.simulate(net, long_input, 4000.0)
    n = res.diagnostics.n_spikes
    for arr in (res.records.times, res.records.pops, res.records.ids, res.records.currents,
                res.records.release_currents):
        assert arr.shape == (n,)
    stored = sum(a.nbytes for a in (res.records.times, res.records.pops, res.records.ids,
                                     res.records.currents, res.records.release_currents))
    assert stored == 40 * n
    _, g = eg.value_and_grad(net, long_input, SpikeTimeMSE(targets=[12.0, 18.0]), 4000.0)
    assert all(np.all(np.isfinite(w)) for w in g.weights)


def test_near_grazing_gradient_is_large_and_finite():
    """One input, weight just above the firing weight: the crossing slope I - theta -> 0.

    For tau_mem == 2 tau_syn and one input of weight w at 0, the spike time is
    t = -tm log x with x = (1 + sqrt(1 - 4/w))/2, so dt/dw = tm (dx/dw)/x diverges as w -> 4.
    """
    tm, ts = 20.0, 10.0
    for eps in (1e-2, 1e-5, 1e-8):
        w = 4.0 * (1 + eps)
        net = eg.Network(1)
        pop = net.add_population(1, eg.LIF(tm, ts), name="output")
        net.connect(net.input, pop, [[w]])
        loss = SpikeTimeMSE(targets=[0.0])
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            _, g = eg.value_and_grad(net, eg.Spikes([0.0], [0]), loss, 100.0)
        s = np.sqrt(1 - 4 / w)
        x = (1 + s) / 2
        t = -tm * np.log(x)
        dx_dw = 1 / (w**2 * s)
        dt_dw = -tm * dx_dw / x
        expected = 2 * t * dt_dw
        assert g.weights[0][0, 0] == pytest.approx(expected, rel=1e-6)
        assert g.n_grazing == 0
        assert g.min_crossing_slope > 0


def _single(w: float, tm: float = 20.0, ts: float = 10.0) -> eg.Network:
    net = eg.Network(1)
    net.connect(net.input, net.add_population(1, eg.LIF(tm, ts), name="output"), [[w]])
    return net


def test_shallow_crossing_warns_once_with_the_tolerance():
    """A peak 1e-12 above threshold (w = 4 (1 + 1e-12), tau_mem = 2 tau_syn): correct but huge
    gradient, before without any warning. From the closed form of
    test_near_grazing_gradient_is_large_and_finite: s = sqrt((w - 4)/w) (w - 4 is exact),
    y = (1 + s)/2, t = -tm log y, slope I - theta = w y^2 - 1, dt/dw = -tm / (w^2 s y)."""
    from eventgrad.event.adjoint import NEAR_GRAZING_SLOPE, GrazingWarning

    tm, w = 20.0, 4.0 * (1 + 1e-12)
    s = np.sqrt((w - 4.0) / w)
    y = (1 + s) / 2
    t, slope = -tm * np.log(y), w * y * y - 1
    expected = 2 * t * (-tm / (w * w * s * y))
    assert NEAR_GRAZING_SLOPE > slope > 1e-6 and abs(expected) > 1e7
    sp = eg.Spikes([0.0], [0])
    for call in ("value_and_grad", "backward"):
        with warnings.catch_warnings(record=True) as got:
            warnings.simplefilter("always")
            if call == "value_and_grad":
                _, g = eg.value_and_grad(_single(w), sp, SpikeTimeMSE([0.0]), 100.0)
                gw, n, smallest = g.weights[0][0, 0], g.n_grazing, g.min_crossing_slope
            else:
                r = eg.simulate(_single(w), sp, 100.0)
                out = eg.backward(r, 2 * r.records.times)     # dL/dt of L = t^2
                gw, n, smallest = out.weights[0][0, 0], out.n_grazing, \
                    r.diagnostics.min_crossing_slope
        assert [type(x.message) for x in got] == [GrazingWarning]
        text = str(got[0].message)
        assert "NEAR_GRAZING_SLOPE = 1e-05" in text and f"smallest {slope:.3g}" in text
        assert n == 0 and smallest == pytest.approx(slope, rel=1e-3)
        assert gw == pytest.approx(expected, rel=1e-3)
    with warnings.catch_warnings():      # 1e-8 above (slope 2e-4): no warning
        warnings.simplefilter("error")
        eg.value_and_grad(_single(4.0 * (1 + 1e-8)), sp, SpikeTimeMSE([0.0]), 100.0)


def test_batch_min_crossing_slope_is_the_records_smallest_slope(engine):
    """The warning's shortcut (``min_slope``): the batch's smallest slope from the forward
    pass's diagnostics equals the smallest ``I - threshold`` of its records, and ``inf``
    without spikes."""
    from eventgrad.event.adjoint import shallow_crossings

    net = eg.Network.feedforward([4, 12, 3], eg.LIF(10.0, 4.0), seed=3)
    rng = np.random.default_rng(3)
    batch = [eg.Spikes(np.sort(rng.uniform(0, 20, 6)), rng.integers(0, 4, 6)) for _ in range(5)]
    res = eg.simulate(net, batch, 60.0, engine=engine)
    _, smallest = shallow_crossings(res.records, net)
    assert len(res.records.times) > 10 and res.min_crossing_slope == smallest
    silent = eg.simulate(net, [eg.Spikes([], [])] * 2, 60.0, engine=engine)
    assert silent.min_crossing_slope == np.inf


def test_grazing_warning_once_per_call_and_no_global_filter_left():
    """Before: batch_backward changed the warning filters inside warnings.catch_warnings (not
    thread-safe); after two threads called value_and_grad at once an 'ignore' filter stayed
    and a later exactly grazing gradient (~1e16) came without a warning. Now: no filter is
    touched, and a batch of three grazing samples gives one warning counting three spikes."""
    import threading
    from pathlib import Path

    from eventgrad.event.adjoint import GrazingWarning

    nrn = eg.LIF(20.0, 5.0)
    w = 1.0 / float(nrn.kernel(nrn.peak_time(0.0, 1.0)))   # peak exactly at threshold
    net = _single(w, 20.0, 5.0)
    loss, sp = SpikeTimeMSE([0.0]), eg.Spikes([0.0], [0])

    def work():
        for _ in range(5):
            eg.value_and_grad(net, [sp, sp], loss, 50.0)

    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        filters = list(warnings.filters)
        threads = [threading.Thread(target=work) for _ in range(2)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert warnings.filters == filters
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        _, g = eg.value_and_grad(net, [sp, sp, sp], loss, 50.0)
    assert g.n_grazing == 3 and abs(g.weights[0][0, 0]) > 1e15
    assert [type(x.message) for x in got] == [GrazingWarning]
    assert str(got[0].message).startswith("3 spike(s) crossed threshold with zero slope")
    src = Path(eg.__file__).parent
    assert not [p for p in src.rglob("*.py")
                if "catch_warnings" in p.read_text() or "simplefilter" in p.read_text()]


def test_completely_silent_network_has_zero_gradient():
    """No spike anywhere: the loss sees t_silent for every output and the gradient is 0."""
    net = eg.Network.feedforward([2, 3, 2], eg.LIF(10.0, 5.0), weights=[np.full((2, 3), 0.1),
                                                                       np.full((3, 2), 0.1)])
    loss = FirstSpikeCrossEntropy()
    L, g = eg.value_and_grad(net, [eg.Spikes([1.0], [0]), eg.Spikes([], [])], loss, 20.0, [0, 1])
    assert np.isfinite(L) and L == pytest.approx(np.log(2.0) + 3e-3 * np.expm1(20.0 / 6.4))
    assert all(np.all(w == 0) for w in g.weights)


def test_silent_slope_rule_gradient_matches_differences():
    """With silent_slope > 0 a silent output reads t_silent + slope (threshold - V_max): the
    gradient through V_max is exact (central differences) and non-zero, and 0 without it."""
    rng = np.random.default_rng(51)
    nrn = eg.LIF(20.0, 5.0)
    k = float(nrn.kernel(nrn.peak_time(0.0, 1.0)))
    ws = [rng.normal(1.2, 0.3, (3, 4)) / k, np.column_stack([rng.normal(0.6, 0.1, 4) / k,
                                                           rng.normal(0.05, 0.02, 4) / k])]
    net = eg.Network.feedforward([3, 4, 2], nrn, weights=ws, delays=[rng.uniform(0, 2, (3, 4)),
                                                                      0.5])
    sp = _inputs(rng)
    ft = eg.simulate(net, sp, 60.0).first_spike_times("output")
    assert np.isfinite(ft[0]) and np.isinf(ft[1])            # output 1 is silent
    loss = FirstSpikeCrossEntropy(tau0=2.0, silent_slope=10.0)
    errors = _check_all(net, sp, loss, 60.0, target=1, label="silent slope")
    assert max(errors.values()) < TOL
    _, g0 = eg.value_and_grad(net, sp, FirstSpikeCrossEntropy(tau0=2.0), 60.0, 1)
    _, g1 = eg.value_and_grad(net, sp, loss, 60.0, 1)
    assert np.all(g0.weights[1][:, 1] == 0) and np.any(g1.weights[1][:, 1] != 0)


def test_dead_neuron_rule_gradient_matches_differences():
    """The training objective with the dead-neuron rule, loss + revive * penalty over the hidden
    neurons silent on every sample (torch bridge, readouts "silent_max_voltage" and
    "dead_max_voltage"; and training.EventPropStep), has the exact
    gradient: central differences of the same forward pass, over a batch of three samples. The
    penalty reaches only the input weights of the dead neurons."""
    import torch

    from eventgrad.event.gradients import read
    from eventgrad.losses import dead_neuron_penalty
    from eventgrad.torch import eventprop

    rng = np.random.default_rng(8)
    nrn = eg.LIF(20.0, 5.0)
    k = float(nrn.kernel(nrn.peak_time(0.0, 1.0)))
    w1 = rng.normal(1.3, 0.3, (3, 6)) / k
    w1[:, 4:] = rng.uniform(0.05, 0.2, (3, 2)) / k            # hidden 4, 5: dead, V_max > 0
    w2 = rng.normal(0.8, 0.1, (6, 2)) / k
    net = eg.Network.feedforward([3, 6, 2], nrn, weights=[w1, w2])
    batch = [_inputs(rng) for _ in range(3)]
    labels, t_max, revive = [0, 1, 0], 60.0, 0.7
    loss = FirstSpikeCrossEntropy(tau0=2.0)
    counts = eg.simulate(net, batch, t_max).spike_counts("hidden")
    dead = counts.sum(axis=0) == 0
    assert dead.tolist() == [False] * 4 + [True] * 2 and np.isfinite(
        eg.simulate(net, batch, t_max).first_spike_times("output")).all()

    def objective(weights):
        n = net.copy()
        n.set_weights(weights)
        results = list(eg.simulate(n, batch, t_max))
        t, _ = read(results, "first_spike", "output")
        vm, _ = read(results, "silent_max_voltage", "hidden")
        assert np.array_equal(np.isnan(vm), counts > 0)
        vd, _ = read(results, "dead_max_voltage", "hidden")    # only the dead neurons' maxima
        assert np.isnan(vd[:, ~dead]).all() and np.array_equal(vd[:, dead], vm[:, dead])
        value = float(loss(torch.tensor(t), labels)) + revive * float(
            np.sum(1.0 - np.max(vm[:, dead], axis=0)))       # the penalty, by hand
        sig = tuple(tuple(r.spike_counts(p).tolist()) for r in results for p in n.populations)
        return value, sig

    params = [torch.tensor(w, requires_grad=True) for w in (w1, w2)]
    t, vm = eventprop(net.copy(), batch, t_max, params,
                      readouts=(("first_spike", "output"), ("dead_max_voltage", "hidden")))
    L = loss(t, labels) + revive * dead_neuron_penalty(vm, ~torch.isnan(vm), 1.0)
    assert float(L.detach()) == pytest.approx(objective([w1, w2])[0], rel=1e-13)
    L.backward()
    # training's step (numpy penalty and its derivative, no torch graph) on the same objective
    from eventgrad.training import EventPropStep

    step_params = [torch.tensor(w, requires_grad=True) for w in (w1, w2)]
    _, L_step = EventPropStep(net.copy(), loss, t_max, step_params, revive=revive)(batch, labels)
    assert L_step == pytest.approx(objective([w1, w2])[0], rel=1e-13)
    for i, w in enumerate((w1, w2)):
        def f(x, i=i):
            ws = [w1, w2]
            ws[i] = x
            return objective(ws)
        fd = fd_grad(f, w, 1e-5)
        assert not fd.discontinuous
        assert rel_err(params[i].grad.numpy(), fd.grad) < TOL, f"layer {i}"
        assert rel_err(step_params[i].grad.numpy(), fd.grad) < TOL, f"layer {i}, step"
    # the penalty moves only the dead neurons' input weights
    params2 = [torch.tensor(w, requires_grad=True) for w in (w1, w2)]
    _, vm2 = eventprop(net.copy(), batch, t_max, params2,
                       readouts=(("first_spike", "output"), ("silent_max_voltage", "hidden")))
    dead_neuron_penalty(vm2, ~torch.isnan(vm2), 1.0).backward()
    g = params2[0].grad.numpy()
    assert np.all(g[:, :4] == 0) and np.all(g[:, 4:] < 0)
    assert params2[1].grad is None or np.all(params2[1].grad.numpy() == 0)


def test_max_voltage_neurons_mask():
    """``neurons`` restricts max_voltage to a subset: the same values there, nan elsewhere;
    a mask of the wrong shape or type is an error that names it."""
    from eventgrad.event.readout import max_voltage

    rng = np.random.default_rng(3)
    net = eg.Network.feedforward([3, 5], eg.LIF(20.0, 5.0), weights=[rng.uniform(0, 1, (3, 5))])
    res = eg.simulate(net, _inputs(rng), 40.0)
    full = max_voltage(res, 0, only_silent=True)
    mask = np.array([True, False, True, False, False])
    part = max_voltage(res, 0, only_silent=True, neurons=mask)
    ok = mask & ~np.isnan(full.values)
    np.testing.assert_array_equal(part.values[ok], full.values[ok])
    assert np.isnan(part.values[~mask]).all() and (part.kind[~mask] == -1).all()
    with pytest.raises(ValueError, match="neurons"):
        max_voltage(res, 0, only_silent=True, neurons=np.ones(4, dtype=bool))

"""The compiled engine against the reference engine: same spikes, bit for bit.

Both engines run the same algorithm (event order, closed forms, spike-time solver); the fast one
in numba over flat arrays with a binary heap, the reference one in Python with a sorted list.
On random networks of every kind they must give identical spike records and diagnostics.
"""

import numpy as np
import pytest

import eventgrad as eg


def _random_net(rng, kind):
    ratio = rng.choice([4.0, 2.0, 1.0, 1.0 + 1e-9, 0.5])
    nrn = eg.LIF(20.0, 20.0 / ratio, t_ref=float(rng.choice([0.0, 0.0, 1.0])),
                 v_reset=float(rng.choice([0.0, -0.3])))
    k = float(nrn.kernel(nrn.peak_time(0.0, 1.0)))
    net = eg.Network(4)
    h = net.add_population(int(rng.integers(3, 30)), nrn, name="hidden")
    o = net.add_population(int(rng.integers(1, 5)), nrn, name="output")
    d_in = rng.uniform(0, 3, (4, h.size)) if rng.uniform() < 0.5 else 0.0
    net.connect(net.input, h, rng.normal(0.8, 0.5, (4, h.size)) / k, d_in)
    net.connect(h, o, rng.normal(0.3, 0.3, (h.size, o.size)) / k,
                rng.choice([0.0, 0.5, 1.0], size=(h.size, o.size)))
    if kind == "recurrent":
        net.connect(h, h, rng.normal(0.0, 0.2, (h.size, h.size)) / k,
                    rng.choice([0.0, 1.0, 2.5], size=(h.size, h.size)))
        net.connect(o, h, rng.normal(-0.2, 0.1, (o.size, h.size)) / k, 0.0)
    return net


@pytest.mark.parametrize("kind", ["feedforward", "recurrent"])
@pytest.mark.parametrize("seed", range(6))
def test_fast_equals_reference(kind, seed):
    rng = np.random.default_rng(seed)
    net = _random_net(rng, kind)
    batch = [eg.Spikes(rng.uniform(0, 10, 6), rng.integers(0, 4, 6)) for _ in range(3)]
    batch.append(eg.Spikes([0.0, 0.0, 5.0], [0, 1, 1]))  # ties at equal times
    try:
        ref = eg.simulate(net, batch, 60.0, engine="reference", max_events=20000)
    except eg.EventLimitError:
        with pytest.raises(eg.EventLimitError, match="max_events=20000"):
            eg.simulate(net, batch, 60.0, engine="fast", max_events=20000)
        return
    fast = eg.simulate(net, batch, 60.0, engine="fast")
    for r, f in zip(ref, fast):
        for name in ("times", "pops", "ids", "currents", "release_currents"):
            np.testing.assert_array_equal(getattr(f.records, name), getattr(r.records, name),
                                          err_msg=name)
        # identical diagnostics, except that the compiled engine solves a predicted crossing
        # only when it reaches the front of the queue (fewer root solves, same spikes)
        fd, rd = dict(vars(f.diagnostics)), dict(vars(r.diagnostics))
        assert fd.pop("n_root_solves") <= rd.pop("n_root_solves")
        assert fd == rd


def test_event_limit_in_fast_engine():
    nrn = eg.LIF(10.0, 5.0)
    net = eg.Network(1)
    p = net.add_population(5, nrn)
    net.connect(net.input, p, np.full((1, 5), 20.0))
    net.connect(p, p, np.full((5, 5), 10.0), 0.5)  # runaway excitation
    with pytest.raises(eg.EventLimitError, match="max_events=5000"):
        eg.simulate(net, eg.Spikes([0.0], [0]), 1000.0, max_events=5000)


def test_threads_do_not_change_results():
    rng = np.random.default_rng(7)
    net = _random_net(rng, "recurrent")
    batch = [eg.Spikes(rng.uniform(0, 10, 6), rng.integers(0, 4, 6)) for _ in range(21)]
    a = eg.simulate(net, batch, 60.0, workers=1, max_events=10**6)
    b = eg.simulate(net, batch, 60.0, workers=4, max_events=10**6)
    c = [eg.simulate(net, s, 60.0, max_events=10**6) for s in batch]  # one sample per call
    for x, y, z in zip(a, b, c):
        for name in ("times", "pops", "ids", "currents", "release_currents"):
            np.testing.assert_array_equal(getattr(x.records, name), getattr(y.records, name))
            np.testing.assert_array_equal(getattr(x.records, name), getattr(z.records, name))
        assert x.diagnostics == z.diagnostics


def test_parallel_map_order_errors_and_bad_workers():
    from eventgrad._parallel import parallel_map

    assert parallel_map(lambda x: x * x, range(37), workers=3) == [x * x for x in range(37)]

    def boom(x):
        if x == 20:
            raise KeyError("sample 20")
        return x

    with pytest.raises(KeyError, match="sample 20"):
        parallel_map(boom, range(37), workers=2)
    with pytest.raises(ValueError, match="workers must be >= 1"):
        parallel_map(abs, [1, 2], workers=0)


def test_event_limit_names_the_sample_in_a_batch():
    nrn = eg.LIF(10.0, 5.0)
    net = eg.Network(1)
    p = net.add_population(5, nrn)
    net.connect(net.input, p, np.full((1, 5), 20.0))
    net.connect(p, p, np.full((5, 5), 10.0), 0.5)  # runaway excitation once it fires
    quiet = eg.Spikes([0.0], [0], n_neurons=1)
    for engine in ("fast", "reference"):
        with pytest.raises(eg.EventLimitError, match="sample 9: max_events=5000"):
            eg.simulate(net, [eg.Spikes(np.zeros(0), np.zeros(0, int))] * 9 + [quiet], 1000.0,
                        max_events=5000, engine=engine)


def test_unknown_engine():
    net = eg.Network.feedforward([2, 2], eg.LIF(10.0, 5.0), seed=0)
    with pytest.raises(ValueError, match="engine"):
        eg.simulate(net, eg.Spikes([0.0], [0]), 10.0, engine="turbo")


@pytest.mark.parametrize("kind", ["feedforward", "recurrent"])
@pytest.mark.parametrize("seed", range(4))
def test_fast_adjoint_equals_reference(kind, seed):
    from eventgrad.adjoint import VoltageProbe, backward

    rng = np.random.default_rng(100 + seed)
    net = _random_net(rng, kind)
    readout = net.add_population(2, eg.LIF(10.0, 5.0, threshold=np.inf), name="readout")
    net.connect("hidden", readout, rng.normal(0.0, 1.0, (net.populations[0].size, 2)),
                rng.choice([0.0, 0.7], size=(net.populations[0].size, 2)))
    sp = eg.Spikes(rng.uniform(0, 10, 6), rng.integers(0, 4, 6))
    try:
        res = eg.simulate(net, sp, 60.0, max_events=20000)
    except eg.EventLimitError:
        return
    g_t = rng.normal(size=len(res.records))
    from eventgrad.readout import AT_ARRIVAL, AT_END, max_voltage

    mv = max_voltage(res, readout)
    probe = VoltageProbe(readout.index, np.arange(2), mv.times, rng.normal(size=2),
                         mv.kind == AT_ARRIVAL, mv.vdot_left, mv.kind == AT_END)
    a = backward(res, g_t, [probe], engine="reference")
    b = backward(res, g_t, [probe], engine="fast")
    for x, y in zip(a.weights + a.delays + [a.input_times, a.spike_times],
                    b.weights + b.delays + [b.input_times, b.spike_times]):
        scale = max(np.abs(x).max(initial=0.0), 1e-300)
        assert np.abs(x - y).max(initial=0.0) <= 1e-12 * scale


def _terms_for_batch(net, results, rng, loss):
    from eventgrad.gradients import readout_values

    vals, aux = readout_values(results, loss)
    dv = rng.normal(size=vals.shape)
    return [[(loss.readout, loss.pop, aux[b], dv[b])] for b in range(len(results))]


@pytest.mark.parametrize("kind", ["feedforward", "recurrent"])
@pytest.mark.parametrize("readout", ["first_spike", "max_voltage"])
def test_batch_backward_equals_per_sample_reference(kind, readout):
    """The chunked compiled backward (several samples per compiled call, on threads) gives
    the per-sample reference adjoint's gradients, summed; and is independent of workers."""
    from eventgrad.gradients import batch_backward
    from eventgrad.losses import FirstSpikeCrossEntropy, MaxVoltageCrossEntropy

    rng = np.random.default_rng(11)
    net = _random_net(rng, kind)
    if readout == "max_voltage":
        ro = net.add_population(2, eg.LIF(10.0, 5.0, threshold=np.inf), name="readout")
        net.connect("hidden", ro, rng.normal(0.0, 1.0, (net.populations[0].size, 2)), 0.5)
        loss = MaxVoltageCrossEntropy(pop="readout")
    else:
        loss = FirstSpikeCrossEntropy(silent_slope=2.0)  # silent outputs add voltage probes
    batch = [eg.Spikes(rng.uniform(0, 10, 6), rng.integers(0, 4, 6)) for _ in range(19)]
    res = list(eg.simulate(net, batch, 60.0, max_events=10**6))
    terms = _terms_for_batch(net, res, rng, loss)
    gw1, gd1, gi1, _ = batch_backward(res, terms, workers=1)
    gw2, gd2, gi2, _ = batch_backward(res, terms, workers=3)
    for x, y in zip(gw1 + gd1 + gi1, gw2 + gd2 + gi2):
        np.testing.assert_array_equal(x, y)
    from eventgrad.adjoint import backward
    from eventgrad.gradients import _adjoint_inputs

    ref_w = [np.zeros(p.shape) for p in net.projections]
    ref_d = [np.zeros(p.shape) for p in net.projections]
    for b, r in enumerate(res):
        g, probes = _adjoint_inputs(r, terms[b])
        sg = backward(r, g, probes, engine="reference")
        for i in range(len(ref_w)):
            ref_w[i] += sg.weights[i]
            ref_d[i] += sg.delays[i]
        np.testing.assert_allclose(gi1[b], sg.input_times, rtol=1e-12,
                                   atol=1e-12 * np.abs(sg.input_times).max(initial=1.0))
    for x, y in zip(gw1 + gd1, ref_w + ref_d):
        assert np.abs(x - y).max(initial=0.0) <= 1e-12 * max(np.abs(y).max(initial=0.0), 1e-300)


def test_cached_plan_follows_weights_and_delays():
    """The compiled plan is cached on the network: a new weight or delay must be used, and a
    result keeps the weights it was simulated with."""
    from eventgrad.adjoint import backward

    rng = np.random.default_rng(5)
    net = _random_net(rng, "feedforward")
    sp = eg.Spikes(rng.uniform(0, 10, 6), rng.integers(0, 4, 6))
    r1 = eg.simulate(net, sp, 60.0)
    g1 = backward(r1, np.ones(len(r1.records))).weights
    net2 = net.copy()
    w = net.get_weights()
    w[0] = w[0] * 1.3
    d = net.get_delays()
    d[1] = d[1] + 0.25
    for change in ("weights", "delays"):
        if change == "weights":
            net.set_weights(w)
            net2.set_weights(w)
        else:
            net.set_delays(d)
            net2.set_delays(d)
        r_cached = eg.simulate(net, sp, 60.0)
        r_fresh = eg.simulate(net2.copy(), sp, 60.0)   # a copy has no cached plan
        np.testing.assert_array_equal(r_cached.records.times, r_fresh.records.times)
        assert len(r_cached.records) > 0
    g1_again = backward(r1, np.ones(len(r1.records))).weights
    for x, y in zip(g1, g1_again):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("seed", range(4))
def test_max_voltage_matches_dense_replay(seed):
    """The compiled maximum of V of a readout against V replayed by the closed form on a
    dense grid plus every arrival time (SimulationResult.voltage, an independent path)."""
    from eventgrad.readout import AT_ARRIVAL, AT_END, AT_PEAK, arrivals_into, max_voltage

    rng = np.random.default_rng(50 + seed)
    net = _random_net(rng, "feedforward")
    ro = net.add_population(3, eg.LIF(10.0, 5.0 if seed % 2 else 10.0, threshold=np.inf),
                            name="readout")
    net.connect("hidden", ro, rng.normal(0.0, 1.0, (net.populations[0].size, 3)),
                rng.choice([0.0, 0.7], size=(net.populations[0].size, 3)))
    res = eg.simulate(net, eg.Spikes(rng.uniform(0, 10, 6), rng.integers(0, 4, 6)), 40.0)
    mv = max_voltage(res, ro)
    a_times, _ = arrivals_into(res, ro)
    grid = np.union1d(np.linspace(0, 40.0, 40001), a_times)
    V = res.voltage(ro, grid)
    # on the grid V never exceeds the maximum; the maximum is approached to O(h^2)
    assert np.all(V.max(axis=0) <= mv.values + 1e-12)
    assert np.all(mv.values - V.max(axis=0) <= 1e-5)
    for q in range(3):
        if mv.kind[q] in (AT_ARRIVAL, AT_END):   # a grid point: the left limit there
            assert mv.times[q] in grid
        if mv.kind[q] == AT_PEAK:
            assert abs(mv.vdot_left[q]) == 0.0

"""The engines against each other (:mod:`eventgrad.event.engines`).

* general (compiled queue) against reference (Python): the same algorithm, event order, closed
  forms and solver: identical spike records and diagnostics, bit for bit, on random networks of
  every kind; their adjoints agree to rounding.
* layered (fast path) against general, on random layered networks (any tau ratio, reset,
  refractoriness, one delay per presynaptic row, several layers and skip projections): the same
  spikes, spike times to rounding, the same event counts; adjoints on the same records to
  1e-12 relative.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


def _layered_net(rng):
    """A random layered network: 2-3 populations, one delay per presynaptic row, maybe a skip
    projection from the input to the last population."""
    ratio = rng.choice([4.0, 2.0, 1.0, 1.0 + 1e-9, 0.5])
    nrn = eg.LIF(20.0, 20.0 / ratio, t_ref=float(rng.choice([0.0, 0.0, 1.0])),
                 v_reset=float(rng.choice([0.0, -0.3])))
    k = float(nrn.kernel(nrn.peak_time(0.0, 1.0)))
    sizes = [4] + [int(rng.integers(2, 25)) for _ in range(int(rng.integers(2, 4)))]
    net = eg.Network(4)
    pre = net.input
    for i, n in enumerate(sizes[1:]):
        pop = net.add_population(n, nrn, name=f"p{i}")
        rows = rng.choice([0.0, 0.5, 1.0], size=(pre.size, 1)) if rng.uniform() < 0.5 else 0.0
        d = np.broadcast_to(rows, (pre.size, n)).copy() if np.ndim(rows) else 0.0
        net.connect(pre, pop, rng.normal(0.8 if i == 0 else 0.4, 0.5, (pre.size, n)) / k, d)
        pre = pop
    if rng.uniform() < 0.5:
        net.connect(net.input, pre, rng.normal(0.2, 0.3, (4, pre.size)) / k, 0.3)
    return net


def _batch(rng, n=3):
    batch = [eg.Spikes(rng.uniform(0, 10, 6), rng.integers(0, 4, 6)) for _ in range(n)]
    batch.append(eg.Spikes([0.0, 0.0, 5.0], [0, 1, 1]))  # ties at equal times
    return batch


def _ulps(a, b):
    return np.abs(a - b) / np.spacing(np.maximum(np.abs(a), 1.0))


@pytest.mark.parametrize("seed", range(12))
def test_layered_matches_general(seed):
    rng = np.random.default_rng(300 + seed)
    net = _layered_net(rng)
    batch = _batch(rng)
    lay = eg.simulate(net, batch, 60.0, engine="layered", max_events=10**5)
    gen = eg.simulate(net, batch, 60.0, engine="general", max_events=10**5)
    assert lay.engine == "layered" and gen.engine == "general"
    for a, b in zip(lay, gen):
        np.testing.assert_array_equal(a.records.pops, b.records.pops)
        np.testing.assert_array_equal(a.records.ids, b.records.ids)
        # spike times to rounding. The general engine moves a whole population forward at
        # every spike of one of its neurons, so a neuron's state there has one rounding per
        # spike of its population since its last arrival (the layered path: one per arrival
        # interval); in the first population that is a few dozen ulp at most. Later ones
        # inherit their inputs' differences (an ulp of an upstream spike moves a crossing by
        # up to the ratio of the slopes).
        first = a.records.pops == net.populations[0].index
        assert np.all(_ulps(a.records.times[first], b.records.times[first]) <= 64)
        np.testing.assert_allclose(a.records.times, b.records.times, rtol=1e-11, atol=1e-11)
        np.testing.assert_allclose(a.records.currents, b.records.currents, rtol=1e-10,
                                   atol=1e-11)
        np.testing.assert_allclose(a.records.release_currents, b.records.release_currents,
                                   rtol=1e-10, atol=1e-11)
        da, db = a.diagnostics, b.diagnostics
        assert (da.n_events, da.n_spikes, da.n_inputs_after_t_max) == \
            (db.n_events, db.n_spikes, db.n_inputs_after_t_max)
        assert da.closest_approach == pytest.approx(db.closest_approach, rel=1e-9, abs=1e-12)
        assert da.min_crossing_slope == pytest.approx(db.min_crossing_slope, rel=1e-9)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n_in=st.integers(0, 8))
def test_layered_matches_general_property(seed, n_in):
    """Any random layered network and input: the same spike counts in every engine, V never
    above threshold between recorded spikes (checked on the layered records by the general
    engine's agreement), and first-spike times to rounding."""
    rng = np.random.default_rng(seed)
    net = _layered_net(rng)
    sp = eg.Spikes(rng.uniform(0, 20, n_in), rng.integers(0, 4, n_in))
    lay = eg.simulate(net, sp, 40.0, engine="layered", max_events=10**5)
    gen = eg.simulate(net, sp, 40.0, engine="general", max_events=10**5)
    for p in net.populations:
        np.testing.assert_array_equal(lay.spike_counts(p), gen.spike_counts(p))
        np.testing.assert_allclose(lay.first_spike_times(p), gen.first_spike_times(p),
                                   rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("engine", ["layered", "general"])
def test_closest_approach_untracked_changes_nothing_else(seed, engine):
    """Without the closest approach (the training paths' setting) the records and every other
    diagnostic are the same, bit for bit, and the closest approach reads nan."""
    from eventgrad.event.plan import plan_for
    from eventgrad.event.simulate import simulate_plan

    rng = np.random.default_rng(700 + seed)
    net = _layered_net(rng)
    batch = _batch(rng)
    runs = [simulate_plan(net, plan_for(net), batch, 60.0, 10**5, engine, None, None, track)
            for track in (True, False)]
    for a, b in zip(*runs):
        for f in ("times", "pops", "ids", "currents", "release_currents"):
            np.testing.assert_array_equal(getattr(a.records, f), getattr(b.records, f))
        da, db = a.diagnostics, b.diagnostics
        assert np.isfinite(da.closest_approach) or da.closest_approach == np.inf
        assert np.isnan(db.closest_approach)
        for f in ("n_events", "n_spikes", "n_predictions", "n_root_solves",
                  "n_immediate_spikes", "min_crossing_slope"):
            assert getattr(da, f) == getattr(db, f)
    assert np.isnan(runs[1].diagnostics.closest_approach)
    both = eg.Diagnostics.combine([runs[0].diagnostics, runs[1].diagnostics])
    assert np.isnan(both.closest_approach) and both.n_spikes == 2 * runs[0].diagnostics.n_spikes


def test_layered_refuses_what_it_does_not_cover():
    rng = np.random.default_rng(0)
    rec = _random_net(rng, "recurrent")
    sp = eg.Spikes([1.0], [0])
    with pytest.raises(ValueError, match="recurrent loop"):
        eg.simulate(rec, sp, 10.0, engine="layered")
    per_synapse = _random_net(np.random.default_rng(3), "feedforward")
    per_synapse.set_delays([np.random.default_rng(1).uniform(0, 1, p.shape)
                            for p in per_synapse.projections])
    with pytest.raises(ValueError, match="different delays"):
        eg.simulate(per_synapse, sp, 10.0, engine="layered")
    assert eg.simulate(rec, sp, 10.0).engine == "general"          # "fast" picks for it
    assert eg.simulate(_layered_net(rng), sp, 10.0).engine == "layered"


@pytest.mark.parametrize("seed", range(6))
def test_layered_adjoint_matches_general(seed):
    """On the same forward records, the layered adjoint and the general one agree to 1e-12
    (relative to the largest entry), probes on silent neurons included."""
    from eventgrad.event.adjoint import VoltageProbe, backward
    from eventgrad.event.readout import AT_ARRIVAL, AT_END, max_voltage

    rng = np.random.default_rng(400 + seed)
    net = _layered_net(rng)
    last = net.populations[-1]
    sp = eg.Spikes(rng.uniform(0, 10, 6), rng.integers(0, 4, 6))
    res = eg.simulate(net, sp, 60.0, engine="layered", max_events=10**5)
    g_t = rng.normal(size=len(res.records))
    mv = max_voltage(res, last, only_silent=True)
    silent = np.flatnonzero(mv.kind >= 0)
    probes = [VoltageProbe(last.index, silent, mv.times[silent], rng.normal(size=silent.size),
                           mv.kind[silent] == AT_ARRIVAL, mv.vdot_left[silent],
                           mv.kind[silent] == AT_END)]
    a = backward(res, g_t, probes, engine="layered")
    b = backward(res, g_t, probes, engine="general")
    c = backward(res, g_t, probes, engine="reference")
    for x, y, z in zip(a.weights + a.delays + [a.input_times, a.spike_times],
                       b.weights + b.delays + [b.input_times, b.spike_times],
                       c.weights + c.delays + [c.input_times, c.spike_times]):
        scale = max(np.abs(y).max(initial=0.0), 1e-300)
        assert np.abs(x - y).max(initial=0.0) <= 1e-12 * scale
        assert np.abs(z - y).max(initial=0.0) <= 1e-12 * scale


@pytest.mark.parametrize("kind", ["feedforward", "recurrent"])
@pytest.mark.parametrize("seed", range(6))
def test_general_equals_reference(kind, seed):
    rng = np.random.default_rng(seed)
    net = _random_net(rng, kind)
    batch = [eg.Spikes(rng.uniform(0, 10, 6), rng.integers(0, 4, 6)) for _ in range(3)]
    batch.append(eg.Spikes([0.0, 0.0, 5.0], [0, 1, 1]))  # ties at equal times
    try:
        ref = eg.simulate(net, batch, 60.0, engine="reference", max_events=20000)
    except eg.EventLimitError:
        with pytest.raises(eg.EventLimitError, match="max_events=20000"):
            eg.simulate(net, batch, 60.0, engine="general", max_events=20000)
        return
    fast = eg.simulate(net, batch, 60.0, engine="general")
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


def test_num_threads_setting(monkeypatch):
    assert eg.get_num_threads() >= 1
    eg.set_num_threads(1)
    assert eg.get_num_threads() == 1
    eg.set_num_threads(None)
    monkeypatch.setenv("EVENTGRAD_NUM_THREADS", "3")
    assert eg.get_num_threads() == 3
    monkeypatch.setenv("EVENTGRAD_NUM_THREADS", "zero")
    with pytest.raises(ValueError, match="EVENTGRAD_NUM_THREADS"):
        eg.get_num_threads()
    monkeypatch.delenv("EVENTGRAD_NUM_THREADS")
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="positive integer"):
            eg.set_num_threads(bad)
    net = eg.Network.feedforward([2, 3], eg.LIF(10.0, 5.0), seed=0)
    with pytest.raises(ValueError, match="workers"):
        eg.simulate(net, eg.Spikes([0.0], [0]), 10.0, workers=0)


def test_event_limit_names_the_sample_in_a_batch():
    nrn = eg.LIF(10.0, 5.0)
    net = eg.Network(1)
    p = net.add_population(5, nrn)
    net.connect(net.input, p, np.full((1, 5), 20.0))
    net.connect(p, p, np.full((5, 5), 10.0), 0.5)  # runaway excitation once it fires
    quiet = eg.Spikes([0.0], [0], n_neurons=1)
    for engine in ("fast", "general", "reference"):
        with pytest.raises(eg.EventLimitError, match="sample 9: max_events=5000"):
            eg.simulate(net, [eg.Spikes(np.zeros(0), np.zeros(0, int))] * 9 + [quiet], 1000.0,
                        max_events=5000, engine=engine)


def test_unknown_engine():
    net = eg.Network.feedforward([2, 2], eg.LIF(10.0, 5.0), seed=0)
    with pytest.raises(ValueError, match="engine"):
        eg.simulate(net, eg.Spikes([0.0], [0]), 10.0, engine="turbo")


@pytest.mark.parametrize("kind", ["feedforward", "recurrent"])
@pytest.mark.parametrize("seed", range(4))
def test_general_adjoint_equals_reference(kind, seed):
    from eventgrad.event.adjoint import VoltageProbe, backward

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
    from eventgrad.event.readout import AT_ARRIVAL, AT_END, max_voltage

    mv = max_voltage(res, readout)
    probe = VoltageProbe(readout.index, np.arange(2), mv.times, rng.normal(size=2),
                         mv.kind == AT_ARRIVAL, mv.vdot_left, mv.kind == AT_END)
    a = backward(res, g_t, [probe], engine="reference")
    b = backward(res, g_t, [probe], engine="general")
    for x, y in zip(a.weights + a.delays + [a.input_times, a.spike_times],
                    b.weights + b.delays + [b.input_times, b.spike_times]):
        scale = max(np.abs(x).max(initial=0.0), 1e-300)
        assert np.abs(x - y).max(initial=0.0) <= 1e-12 * scale


@pytest.mark.parametrize("kind", ["feedforward", "recurrent", "layered"])
@pytest.mark.parametrize("readout", ["first_spike", "max_voltage"])
def test_batch_backward_equals_per_sample_reference(kind, readout):
    """The batched compiled backward (chunks of samples on threads) gives the per-sample
    reference adjoint's gradients, summed; and is independent of the number of threads."""
    from eventgrad.event.adjoint import backward, probes_of_sample
    from eventgrad.event.engines import Probes
    from eventgrad.event.gradients import Readout, backward_batch
    from eventgrad.losses import FirstSpikeCrossEntropy, MaxVoltageCrossEntropy

    rng = np.random.default_rng(11)
    net = _layered_net(rng) if kind == "layered" else _random_net(rng, kind)
    last = net.populations[-1] if kind == "layered" else net.population("output")
    if readout == "max_voltage":
        ro = net.add_population(2, eg.LIF(10.0, 5.0, threshold=np.inf), name="readout")
        net.connect(net.populations[0], ro, rng.normal(0.0, 1.0, (net.populations[0].size, 2)),
                    0.5)
        loss = MaxVoltageCrossEntropy(pop="readout")
    else:
        loss = FirstSpikeCrossEntropy(silent_slope=2.0, pop=last.name)  # probes on silent
    batch = [eg.Spikes(rng.uniform(0, 10, 6), rng.integers(0, 4, 6)) for _ in range(19)]
    res = eg.simulate(net, batch, 60.0, max_events=10**6)
    r = Readout.of(res, loss.readout, loss.pop, None, getattr(loss, "silent_slope", 0.0))
    dv = rng.normal(size=r.values.shape)
    one = backward_batch(res, [(r, dv)], workers=1)
    three = backward_batch(res, [(r, dv)], workers=3)
    for x, y in zip((one.weights, one.delays, one.input_times),
                    (three.weights, three.delays, three.input_times)):
        np.testing.assert_array_equal(x, y)
    inp = r.adjoint_inputs(dv, len(res.records.times))
    g, probes = inp.spike_time_grads, Probes.from_columns(inp.probes, len(res))
    ref_w = np.zeros_like(one.weights)
    ref_d = np.zeros_like(one.delays)
    off, ioff = res.records.offsets, res.flat_inputs.offsets
    for b in range(len(res)):
        sg = backward(res[b], g[off[b]:off[b + 1]], probes_of_sample(probes, b),
                      engine="reference")
        ref_w += np.concatenate([w.ravel() for w in sg.weights])
        ref_d += np.concatenate([d.ravel() for d in sg.delays])
        gi = one.input_times[ioff[b]:ioff[b + 1]]
        np.testing.assert_allclose(gi, sg.input_times, rtol=1e-12,
                                   atol=1e-12 * np.abs(sg.input_times).max(initial=1.0))
    for x, y in ((one.weights, ref_w), (one.delays, ref_d)):
        assert np.abs(x - y).max(initial=0.0) <= 1e-12 * max(np.abs(y).max(initial=0.0), 1e-300)


def test_cached_plan_follows_weights_and_delays():
    """The plan is cached on the network: a new weight or delay must be used, and a result
    keeps the weights it was simulated with; in-place writes are refused."""
    from eventgrad.event.adjoint import backward

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
    with pytest.raises(ValueError, match="read-only"):
        net.projections[0].weights[0, 0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        net.projections[0].delays[0, 0] = -1.0


@pytest.mark.parametrize("seed", range(4))
def test_max_voltage_matches_dense_replay(seed):
    """The compiled maximum of V of a readout against V replayed by the closed form on a
    dense grid plus every arrival time (SimulationResult.voltage, an independent path)."""
    from eventgrad.event.readout import AT_ARRIVAL, AT_END, AT_PEAK, arrivals_into, max_voltage

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


@pytest.mark.parametrize("seed", range(3))
def test_max_voltage_is_the_first_largest_point_in_time_order(seed):
    """The maxima located largest bound first (two passes) against the rule stated directly:
    every candidate point in time order (the start, each interval's interior maximum from the
    closed-form peak time, each left limit at an arrival, the end), a later point kept only if
    strictly larger. The states come from readout.arrivals_into (numpy sums)."""
    from eventgrad.event.readout import (
        AT_ARRIVAL,
        AT_END,
        AT_PEAK,
        AT_START,
        arrivals_into,
        max_voltage,
    )
    from eventgrad.model.physics import decay, flow, peak_time, rate, voltage

    rng = np.random.default_rng(70 + seed)
    net = _random_net(rng, "feedforward")
    tm, ts = 10.0, (5.0, 10.0, 2.5)[seed]
    ro = net.add_population(4, eg.LIF(tm, ts, threshold=np.inf), name="readout")
    net.connect("hidden", ro, rng.normal(0.3, 1.0, (net.populations[0].size, 4)),
                rng.choice([0.0, 0.7, 1.9], size=(net.populations[0].size, 4)))
    res = eg.simulate(net, eg.Spikes(rng.uniform(0, 10, 8), rng.integers(0, 4, 8)), 40.0)
    mv = max_voltage(res, ro)
    times, W = arrivals_into(res, ro)
    g = rate(tm, ts)
    assert len(times) > 5
    for q in range(4):
        V = I = 0.0
        best = (0.0, 0.0, AT_START)
        t0 = 0.0
        for k, t in enumerate(list(times) + [40.0]):
            D = t - t0
            if D > 0:
                em, es, kk = decay(D, tm, ts, g)
                V1, I1 = flow(V, I, em, es, kk)
                Dp = peak_time(V, I, tm, ts)
                if 0.0 < Dp < D and V1 > I1:
                    vp = voltage(V, I, Dp, tm, ts, g)
                    if vp > best[0]:
                        best = (vp, t0 + Dp, AT_PEAK)
                V, I = V1, I1
            if V > best[0]:
                best = (V, t, AT_END if k == len(times) else AT_ARRIVAL)
            if k < len(times):
                I += W[k, q]
            t0 = t
        assert mv.kind[q] == best[2]
        np.testing.assert_allclose([mv.values[q], mv.times[q]], best[:2], rtol=1e-12)


def test_stale_cache_files_are_removed(tmp_path):
    """A stamp from other sources makes the engine's cache files go (numba checks a cached
    kernel against its own file only); a matching stamp keeps them."""
    from eventgrad.event import compile as comp

    stale = tmp_path / "layered.forward_sample-1.py311.nbi"
    other = tmp_path / "someone_else.f-1.py311.nbi"
    stale.write_text("x")
    other.write_text("x")
    (tmp_path / comp._STAMP).write_text("another-hash\nlayered event engine\n")
    comp._check(str(tmp_path), "this-hash")
    assert not stale.exists() and other.exists()
    assert (tmp_path / comp._STAMP).read_text().splitlines() == ["this-hash"]
    stale.write_text("x")
    (tmp_path / comp._STAMP).write_text("this-hash\nlayered event engine\n")
    comp._check(str(tmp_path), "this-hash")
    assert stale.exists() and "layered event engine" in comp._compiled


def test_engine_stamp_covers_the_physics_the_kernels_inline():
    """The closed forms live beside the model (eventgrad.model.physics), outside the engine's
    folder, and the engines inline them: the stamp's hash must change with that file too."""
    import os

    from eventgrad.event import compile as comp
    from eventgrad.model import physics

    assert os.path.abspath(physics.__file__) in [os.path.abspath(p) for p in comp._CALLED]
    real = comp.source_hash()
    saved = comp._CALLED
    try:
        comp._CALLED = ()
        assert comp.source_hash() != real
    finally:
        comp._CALLED = saved


def test_batch_of_results_needs_one_set_of_weights():
    net = eg.Network.feedforward([2, 3], eg.LIF(10.0, 5.0), seed=0)
    sp = eg.Spikes([0.0, 1.0], [0, 1])
    a = eg.simulate(net, sp, 20.0)
    assert len(eg.BatchResult([a, eg.simulate(net, sp, 20.0)])) == 2
    net.set_weights([w * 2 for w in net.get_weights()])
    with pytest.raises(ValueError, match="same weights"):
        eg.BatchResult([a, eg.simulate(net, sp, 20.0)])


def test_layered_record_buffers_grow_without_loss():
    """A population with far more spikes than the layered engine's first record buffers
    (256, grown 4x when full, the population then run again): the same spikes as the general
    engine, none dropped."""
    nrn = eg.LIF(20.0, 40.0, t_ref=0.2)
    net = eg.Network(2)
    h = net.add_population(40, nrn, name="hidden")
    o = net.add_population(2, nrn, name="output")
    rng = np.random.default_rng(5)
    net.connect(net.input, h, rng.uniform(2.0, 4.0, (2, 40)))
    net.connect(h, o, rng.uniform(0.0, 0.05, (40, 2)))
    sp = eg.Spikes(np.linspace(0.0, 20.0, 20), np.arange(20) % 2)
    lay = eg.simulate(net, sp, 80.0, engine="layered", max_events=10**6)
    gen = eg.simulate(net, sp, 80.0, engine="general", max_events=10**6)
    n_hidden = int(lay.spike_counts(h).sum())
    assert n_hidden > 4 * 256
    np.testing.assert_array_equal(lay.spike_counts(h), gen.spike_counts(h))
    np.testing.assert_array_equal(lay.spike_counts(o), gen.spike_counts(o))
    np.testing.assert_allclose(lay.records.times, gen.records.times, rtol=1e-11, atol=1e-11)
    assert lay.diagnostics.n_events == gen.diagnostics.n_events


def test_general_engine_grows_its_queue_and_records_without_loss():
    """Thousands of arrivals in flight at once (one delay per synapse, 300 of them per input)
    and more spikes than the first record buffer: the general engine grows both while its
    event loop stops and goes on, and equals the reference engine bit for bit."""
    rng = np.random.default_rng(8)
    nrn = eg.LIF(10.0, 5.0, t_ref=0.5)
    net = eg.Network(2)
    h = net.add_population(300, nrn, name="hidden")
    net.connect(net.input, h, rng.uniform(0.5, 3.0, (2, 300)), rng.uniform(0.0, 30.0, (2, 300)))
    sp = eg.Spikes(np.linspace(0.0, 4.0, 24), np.arange(24) % 2)
    ref = eg.simulate(net, sp, 50.0, engine="reference", max_events=10**6)
    gen = eg.simulate(net, sp, 50.0, engine="general", max_events=10**6)
    assert gen.diagnostics.n_spikes > 256 and gen.diagnostics.n_events > 24 * 300
    for name in ("times", "pops", "ids", "currents", "release_currents"):
        np.testing.assert_array_equal(getattr(gen.records, name), getattr(ref.records, name))
    assert gen.diagnostics.n_events == ref.diagnostics.n_events

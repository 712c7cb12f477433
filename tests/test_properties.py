"""Properties on random networks (hypothesis): what must hold whatever the network and input.

* Between its recorded spikes a neuron's V never exceeds threshold: each neuron's trajectory
  is replayed here from the records alone (its arrivals from the presynaptic records and
  inputs, resets at its own spikes, refractory holds) with ``tests/reference.py``'s closed
  form on a 0.02 ms grid, independent of the engines.
* A batch gives every sample the result that sample gives alone.
* A result does not depend on what the process simulated before (the plan cache, the compiled
  engines' buffers): the same network and input, simulated again after other networks and
  other weights, gives the same bits.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from reference import propagate
from test_engines import _layered_net, _random_net

import eventgrad as eg

SETTINGS = dict(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
STEP = 0.02   # ms, the replay's grid


def _arrivals(net, res, pop, n):
    """(time, weight) of every input current jump of neuron ``n`` of ``pop``, in time order."""
    rec = res.records
    out = []
    for pr in net.projections:
        if pr.post is not pop:
            continue
        if pr.pre is net.input:
            times, ids = res.inputs.times, res.inputs.ids
        else:
            sel = rec.pops == pr.pre.index
            times, ids = rec.times[sel], rec.ids[sel]
        d = np.broadcast_to(pr.delays, pr.weights.shape)
        for t, m in zip(times, ids):
            out.append((float(t + d[m, n]), float(pr.weights[m, n])))
    return sorted(out)


def _max_excess(net, res, pop, n, t_max):
    """The largest ``V - threshold`` of the replayed neuron on the grid, away from its own
    spike times (where V reaches threshold by definition)."""
    nrn = pop.neuron
    sel = (res.records.pops == pop.index) & (res.records.ids == n)
    spikes = list(res.records.times[sel])
    events = sorted([(t, 0, w) for t, w in _arrivals(net, res, pop, n) if t <= t_max] +
                    [(t, 1, 0.0) for t in spikes] +
                    [(t + nrn.t_ref, 3, 0.0) for t in spikes if nrn.t_ref > 0])
    V = I = 0.0
    t, held, worst = 0.0, False, -np.inf
    for te, kind, w in events + [(t_max, 2, 0.0)]:
        while t < te:
            h = min(STEP, te - t)
            V, I = (float(x) for x in propagate(V, I, h, nrn.tau_mem, nrn.tau_syn))
            t += h
            if held:
                V = nrn.v_reset                  # refractory: V held, I goes on
            elif te - t > 1e-6 or kind != 1:     # (not the point of its own spike)
                worst = max(worst, V - nrn.threshold)
        if kind == 0:
            I += w
        elif kind == 1:
            V, held = nrn.v_reset, nrn.t_ref > 0
        elif kind == 3:
            held = False
    return worst


@settings(**SETTINGS)
@given(seed=st.integers(0, 2**32 - 1), kind=st.sampled_from(["feedforward", "recurrent"]))
def test_voltage_never_above_threshold_between_recorded_spikes(seed, kind):
    rng = np.random.default_rng(seed)
    net = _random_net(rng, kind)
    sp = eg.Spikes(rng.uniform(0, 10, 6), rng.integers(0, 4, 6))
    t_max = 30.0
    try:
        res = eg.simulate(net, sp, t_max, max_events=20000)
    except eg.EventLimitError:   # runaway activity: refused, as it should be
        assume(False)
    for pop in net.populations:
        for n in range(pop.size):
            assert _max_excess(net, res, pop, n, t_max) <= 1e-9 * pop.neuron.threshold


@settings(**SETTINGS)
@given(seed=st.integers(0, 2**32 - 1), engine=st.sampled_from(["fast", "general"]))
def test_a_batch_gives_each_sample_its_own_result(seed, engine):
    rng = np.random.default_rng(seed)
    net = _layered_net(rng) if engine == "fast" else _random_net(rng, "recurrent")
    batch = [eg.Spikes(rng.uniform(0, 10, int(k)), rng.integers(0, 4, int(k)))
             for k in rng.integers(0, 8, 5)]
    try:
        together = eg.simulate(net, batch, 40.0, engine=engine, max_events=20000)
    except eg.EventLimitError:   # runaway activity: refused, as it should be
        assume(False)
    for b, s in enumerate(batch):
        alone = eg.simulate(net, s, 40.0, engine=engine, max_events=20000)
        for name in ("times", "pops", "ids", "currents", "release_currents"):
            np.testing.assert_array_equal(getattr(together[b].records, name),
                                          getattr(alone.records, name))


@settings(**SETTINGS)
@given(seed=st.integers(0, 2**32 - 1))
def test_results_do_not_depend_on_what_was_simulated_before(seed):
    rng = np.random.default_rng(seed)
    net = _layered_net(rng)
    other = _random_net(rng, "recurrent")
    sp = eg.Spikes(rng.uniform(0, 10, 6), rng.integers(0, 4, 6))
    try:
        first = eg.simulate(net, sp, 40.0, max_events=20000)
    except eg.EventLimitError:
        assume(False)
    w0 = net.get_weights()
    for before in (lambda: eg.simulate(other, sp, 40.0, max_events=20000),
                   lambda: net.set_weights([w * 0.7 for w in w0]),  # same structure
                   lambda: eg.simulate(net, [sp, sp], 40.0, max_events=20000)):
        try:
            before()
        except eg.EventLimitError:   # (runaway activity there is as good a history)
            pass
    net.set_weights(w0)
    again = eg.simulate(net, sp, 40.0, max_events=20000)
    for name in ("times", "pops", "ids", "currents", "release_currents"):
        np.testing.assert_array_equal(getattr(first.records, name), getattr(again.records, name))
    assert vars(first.diagnostics) == vars(again.diagnostics)


def test_the_replay_sees_a_missed_crossing():
    """The check above is not vacuous: with one recorded spike taken out of the records (as
    if the engine had missed that crossing), the replay finds V above threshold."""
    from types import SimpleNamespace

    rng = np.random.default_rng(3)
    net = _layered_net(rng)
    sp = eg.Spikes(rng.uniform(0, 10, 6), rng.integers(0, 4, 6))
    res = eg.simulate(net, sp, 30.0)
    rec = res.records
    pop = net.populations[0]
    k = int(np.flatnonzero(rec.pops == pop.index)[0])
    keep = np.arange(len(rec.times)) != k
    fake = SimpleNamespace(inputs=res.inputs, records=SimpleNamespace(
        times=rec.times[keep], pops=rec.pops[keep], ids=rec.ids[keep]))
    assert _max_excess(net, res, pop, int(rec.ids[k]), 30.0) <= 1e-9
    assert _max_excess(net, fake, pop, int(rec.ids[k]), 30.0) > 1e-3

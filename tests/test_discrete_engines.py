"""The two engines of the time-stepped path give the same run: the feed-forward engine
(``engine="layered"``: a population at a time, its time loop compiled, a hand-written
backward) against the general one (``engine="general"``: torch, step by step, autograd).

The general engine is the reference here: it states the step in torch ops and its gradients
are torch's autograd of them (checked against ``gradcheck`` and closed forms in
``test_discrete.py``). On seeded random feed-forward networks with skip projections, several
delays in one projection, refractoriness, a non-spiking readout population and a window that
is not a whole number of steps, for every combination of the options that change a
surrogate gradient (reset kind, detached reset, update form, input placement, interpolated
spike times; the surrogate shape cycles through all six):

* spikes: the same neurons at the same steps in every sample; times equal to 1e-12 ms (the
  arrivals of a step are summed in another order, which moves a potential by an ulp);
* float64 gradients of a loss that reads every population's first-spike times and maxima of
  U: equal to 1e-12 relative (to the largest entry of each weight matrix);
* the voltage traces, equal to 1e-12.

float32 runs agree to float32's precision.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import eventgrad as eg
from eventgrad import discrete
from eventgrad.discrete.surrogates import SURROGATES, Surrogate

RESETS = ("to_reset", "subtract", "multiplicative")
COMBOS = list(itertools.product(RESETS, (True, False), ("exact", "euler"), ("offset", "round"),
                                (True, False)))


def _net(seed: int, out_threshold: float = np.inf) -> eg.Network:
    """3 inputs -> h1 (5) -> h2 (4) -> out (3), with input->h2 and h1->out skips; delays: two
    values within input->h1 and h1->h2; refractory periods of 0, 0.3 and 2 ms."""
    rng = np.random.default_rng(seed)
    net = eg.Network(3)
    h1 = net.add_population(5, eg.LIF(10.0, 5.0, t_ref=0.3), name="h1")
    h2 = net.add_population(4, eg.LIF(12.0, 4.0, t_ref=2.0), name="h2")
    out = net.add_population(3, eg.LIF(8.0, 6.0, threshold=out_threshold), name="output")

    def w(n, m, mu, sd):
        return rng.normal(mu, sd, (n, m))

    net.connect("input", h1, w(3, 5, 2.5, 1.5), delay=rng.choice([0.0, 0.35], (3, 5)))
    net.connect("input", h2, w(3, 4, 0.5, 0.5), delay=0.2)
    net.connect(h1, h2, w(5, 4, 1.2, 0.8), delay=rng.choice([0.0, 0.5], (5, 4)))
    net.connect(h2, out, w(4, 3, 1.0, 0.6))
    net.connect(h1, out, w(5, 3, 0.3, 0.4), delay=0.1)
    return net


def _inputs(seed: int, batch: int = 3) -> list[eg.Spikes]:
    rng = np.random.default_rng(seed + 1000)
    out = [eg.Spikes(np.sort(rng.uniform(0.0, 4.0, 6)), rng.integers(0, 3, 6))
           for _ in range(batch - 1)]
    return out + [eg.Spikes([], [], n_neurons=3)]          # one sample without input


def _run(net, batch, engine, **options):
    W = [torch.tensor(w, requires_grad=True) for w in net.get_weights()]
    r = discrete.run(net, batch, 6.05, 0.1, weights=W, engine=engine, record_voltage=True,
                     **options)
    rng = np.random.default_rng(7)
    L = 0.0
    for p in net.populations:
        t = r.first[p.index]
        c1 = torch.tensor(rng.normal(size=t.shape))
        c2 = torch.tensor(rng.normal(size=t.shape))
        L = L + (c1 * torch.where(torch.isinf(t), torch.zeros_like(t), t)).sum() \
            + (c2 * r.vmax[p.index]).sum()
    grads = torch.autograd.grad(L, W, allow_unused=True)
    return r, [np.zeros(w.shape) if g is None else g.numpy() for g, w in zip(grads, W)]


def _same_spikes(net, a, b, atol):
    for p in net.populations:
        for (ta, ia), (tb, ib) in zip(a.spike_lists[p.index], b.spike_lists[p.index]):
            np.testing.assert_array_equal(ia, ib, err_msg=f"spike ids of {p.name}")
            np.testing.assert_allclose(ta, tb, rtol=0, atol=atol, err_msg=p.name)


@pytest.mark.parametrize("k,combo", list(enumerate(COMBOS)))
def test_layered_engine_equals_general_engine(k, combo):
    reset, detach, update, inputs, interpolate = combo
    options = {"reset": reset, "detach_reset": detach, "update": update, "inputs": inputs,
               "interpolate": interpolate,
               "surrogate": Surrogate(SURROGATES[k % len(SURROGATES)], (2.0, 5.0, 10.0)[k % 3])}
    net = _net(k, out_threshold=np.inf if k % 2 else 1.0)
    spikes = _inputs(k)
    a, ga = _run(net, spikes, "layered", **options)
    b, gb = _run(net, spikes, "general", **options)
    n_spikes = sum(len(t) for s in b.spike_lists for t, _ in s)
    assert n_spikes >= 10, "the network should be active"
    _same_spikes(net, a, b, 1e-12)
    for p in net.populations:
        np.testing.assert_allclose(a.first[p.index].detach(), b.first[p.index].detach(),
                                   rtol=0, atol=1e-12)
        np.testing.assert_allclose(a.voltages[p.index], b.voltages[p.index], rtol=0, atol=1e-12)
    for i, (x, y) in enumerate(zip(ga, gb)):
        assert np.any(y != 0), f"projection {i} has no gradient"
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-12 * np.abs(y).max(),
                                   err_msg=f"gradient of projection {i}")


@pytest.mark.parametrize("reset", RESETS)
def test_float32_engines_agree(reset):
    net, spikes = _net(3, out_threshold=1.0), _inputs(3)
    opts = {"reset": reset, "dtype": torch.float32}
    W = [torch.tensor(w, dtype=torch.float32, requires_grad=True) for w in net.get_weights()]
    res = {}
    for engine in ("layered", "general"):
        r = discrete.run(net, spikes, 6.05, 0.1, weights=W, engine=engine, **opts)
        L = sum((r.vmax[p.index] ** 2).sum() for p in net.populations)
        res[engine] = r, torch.autograd.grad(L, W)
    (a, ga), (b, gb) = res["layered"], res["general"]
    _same_spikes(net, a, b, 1e-5)
    for x, y in zip(ga, gb):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5 * float(y.abs().max()))


def test_fast_engine_choice_and_errors():
    ff = _net(0)
    rec = _net(0)
    rec.connect("h2", "h1", np.full((4, 5), 0.1), delay=0.5)
    sp = _inputs(0)
    # "fast" takes the layered engine where it applies and the general one elsewhere: the
    # results equal the named engine's
    for net, engine in ((ff, "layered"), (rec, "general")):
        with torch.no_grad():
            a = discrete.run(net, sp, 6.0, 0.1)
            b = discrete.run(net, sp, 6.0, 0.1, engine=engine)
        for p in net.populations:
            assert torch.equal(a.first[p.index], b.first[p.index])
    with pytest.raises(ValueError, match="engine='layered' does not apply"):
        discrete.run(rec, sp, 6.0, 0.1, engine="layered")
    with pytest.raises(ValueError, match="engine must be one of"):
        discrete.run(ff, sp, 6.0, 0.1, engine="compiled")


def test_layered_gradient_through_a_batch_of_one_and_the_public_entry():
    """``discrete.value_and_grad`` (the default engine) on one Spikes equals the general
    engine's gradient."""
    net = _net(5, out_threshold=1.0)
    sp = _inputs(5)[0]
    loss = eg.losses.SpikeTimeMSE([4.0, 4.5, 5.0], silent_slope=2.0)
    La, ga = discrete.value_and_grad(net, sp, loss, 6.0, 0.1)
    Lb, gb = discrete.value_and_grad(net, sp, loss, 6.0, 0.1, engine="general")
    assert La == pytest.approx(Lb, rel=1e-13)
    for x, y in zip(ga.weights, gb.weights):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-12 * max(np.abs(y).max(), 1e-300))

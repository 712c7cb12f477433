"""The torch bridge: autograd agrees with finite differences; plain torch training works."""

import numpy as np
import pytest
import torch

import eventgrad as eg
from eventgrad.losses import FirstSpikeCrossEntropy
from eventgrad.torch import SpikingNetwork, eventprop


def _net_and_batch(seed=0, n=4):
    rng = np.random.default_rng(seed)
    nrn = eg.LIF(20.0, 5.0, t_ref=0.5)
    k_pk = float(nrn.kernel(nrn.peak_time(0.0, 1.0)))
    ws = [rng.normal(1.0, 0.3, (3, 5)) / k_pk, rng.normal(0.5, 0.2, (5, 2)) / k_pk]
    ds = [rng.uniform(0.1, 2.0, (3, 5)), rng.uniform(0.1, 2.0, (5, 2))]
    net = eg.Network.feedforward([3, 5, 2], nrn, weights=ws, delays=ds)
    batch = [eg.Spikes(rng.uniform(0, 5, 3), np.arange(3)) for _ in range(n)]
    return net, batch


def test_gradcheck_weights_and_delays():
    net, batch = _net_and_batch()
    res = eg.simulate(net, batch, 50.0)
    assert np.all(np.isfinite(res.first_spike_times("output")))
    w = [torch.tensor(a, requires_grad=True) for a in net.get_weights()]
    d = [torch.tensor(a, requires_grad=True) for a in net.get_delays()]

    def f(*params):
        (t,) = eventprop(net.copy(), batch, 50.0, params[:2], params[2:])
        return t

    # eps small enough that no spike appears or vanishes in this network
    assert torch.autograd.gradcheck(f, (*w, *d), eps=1e-6, atol=1e-6, rtol=1e-4)


def test_max_voltage_readout_gradcheck():
    rng = np.random.default_rng(3)
    net = eg.Network(2)
    out = net.add_population(3, eg.LIF(10.0, 4.0, threshold=np.inf), name="output")
    net.connect(net.input, out, rng.normal(0.5, 1.0, (2, 3)), rng.uniform(0.2, 3.0, (2, 3)))
    batch = [eg.Spikes(rng.uniform(0, 5, 2), [0, 1]) for _ in range(2)]
    w = [torch.tensor(net.get_weights()[0], requires_grad=True)]
    d = [torch.tensor(net.get_delays()[0], requires_grad=True)]

    def f(w0, d0):
        (v,) = eventprop(net.copy(), batch, 30.0, [w0], [d0], readouts=[("max_voltage", "output")])
        return v

    assert torch.autograd.gradcheck(f, (*w, *d), eps=1e-6, atol=1e-6, rtol=1e-4)


def test_module_matches_value_and_grad():
    net, batch = _net_and_batch(seed=1)
    labels = np.array([0, 1, 1, 0])
    loss = FirstSpikeCrossEntropy()
    L_ref, g_ref = eg.value_and_grad(net, batch, loss, 50.0, labels)
    model = SpikingNetwork(net, t_max=50.0, learn_delays=True)
    L = loss(model(batch), labels)
    L.backward()
    assert float(L.detach()) == pytest.approx(L_ref, rel=1e-14)
    for i in range(2):
        np.testing.assert_allclose(model.weights[i].grad.numpy(), g_ref.weights[i], rtol=1e-12,
                                   atol=1e-15)
        np.testing.assert_allclose(model.delays[i].grad.numpy(), g_ref.delays[i], rtol=1e-12,
                                   atol=1e-15)


def test_training_in_plain_torch_reduces_loss():
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    net = eg.Network.feedforward([5, 30, 2], eg.LIF(20.0, 5.0), seed=2)
    model = SpikingNetwork(net, t_max=60.0)
    xs = rng.uniform(0, 1, (32, 2))
    batch = [eg.Spikes([30 * x, 30 * y, 30 * (1 - x), 30 * (1 - y), 0.0], np.arange(5))
             for x, y in xs]
    labels = torch.tensor((xs[:, 0] > xs[:, 1]).astype(int))
    loss_fn = FirstSpikeCrossEntropy()
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.9)
    losses = []
    for _ in range(15):
        L = loss_fn(model(batch), labels)
        opt.zero_grad()
        L.backward()
        opt.step()
        sched.step()
        losses.append(float(L.detach()))
    assert losses[-1] < 0.2 * losses[0], losses
    assert model.last_result is not None and len(model.last_result) == 32


def test_negative_delay_after_step_is_a_clear_error():
    net, batch = _net_and_batch()
    model = SpikingNetwork(net, t_max=50.0, learn_delays=True)
    with torch.no_grad():
        model.delays[0][0, 0] = -0.5
    with pytest.raises(ValueError, match="delays of projection 0"):
        model(batch)
    model.clamp_delays_()
    assert float(model.delays[0][0, 0].detach()) == 0.0
    model(batch)


@pytest.mark.parametrize("t_ref", [0.0, 1.0])
def test_first_spike_only_outputs_change_nothing_read(t_ref):
    """Outputs that project nowhere and are read by first spikes only are followed to their
    first spike (first_only): the readouts and the exact gradients equal those of the full
    simulation, where the outputs fire many times; the records hold first spikes only."""
    from eventgrad.losses import FirstSpikeCrossEntropy
    from eventgrad.torch import eventprop

    rng = np.random.default_rng(3)
    nrn = eg.LIF(20.0, 5.0, t_ref=t_ref)
    k = float(nrn.kernel(nrn.peak_time(0.0, 1.0)))
    net = eg.Network.feedforward([3, 8, 2], nrn, weights=[rng.normal(1.5, 0.3, (3, 8)) / k,
                                                           rng.normal(1.0, 0.2, (8, 2)) / k])
    batch = [eg.Spikes(rng.uniform(0, 10, 3), [0, 1, 2]) for _ in range(4)]
    labels = torch.tensor([0, 1, 1, 0])
    full = eg.simulate(net, batch, 60.0).spike_counts("output")
    assert full.max() >= 3                         # the outputs fire repeatedly
    outs, grads = [], []
    for all_spikes in (False, True):
        w = [torch.tensor(a, requires_grad=True) for a in net.get_weights()]
        (t,) = eventprop(net, batch, 60.0, w, all_spikes=all_spikes)
        FirstSpikeCrossEntropy()(t, labels).backward()
        outs.append(t.detach().numpy())
        grads.append([x.grad.numpy() for x in w])
    np.testing.assert_array_equal(outs[0], outs[1])
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)
    from eventgrad.torch import SpikingNetwork

    model = SpikingNetwork(net, 60.0)
    model(batch)
    assert model.last_result.spike_counts("output").max() == 1
    np.testing.assert_array_equal(model.last_result.spike_counts("hidden"),
                                  eg.simulate(net, batch, 60.0).spike_counts("hidden"))

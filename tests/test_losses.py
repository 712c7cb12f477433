"""Each loss's own derivative (autograd) against central differences of its value, and the
loss formulas against direct numpy evaluations."""

import re

import numpy as np
import pytest
import torch

from eventgrad.losses import FirstSpikeCrossEntropy, MaxVoltageCrossEntropy, SpikeTimeMSE


def _fd(loss, values, target, h=1e-6):
    g = np.zeros_like(values)
    for idx in np.ndindex(values.shape):
        vp, vm = values.copy(), values.copy()
        vp[idx] += h
        vm[idx] -= h
        g[idx] = (float(loss(torch.tensor(vp), target))
                  - float(loss(torch.tensor(vm), target))) / (2 * h)
    return g


def _autograd(loss, values, target):
    v = torch.tensor(values, requires_grad=True)
    (g,) = torch.autograd.grad(loss(v, target), v)
    return g.numpy()


@pytest.mark.parametrize("loss,values,target", [
    (FirstSpikeCrossEntropy(), np.array([[3.0, 4.5, 9.0], [12.0, 2.0, 2.5]]), [0, 2]),
    (FirstSpikeCrossEntropy(tau0=2.0, tau1=5.0, alpha=0.1), np.array([[3.0, 4.5]]), [1]),
    (SpikeTimeMSE(targets=[5.0, 10.0, 15.0]), np.array([[3.0, 4.5, 9.0], [12.0, 2.0, 2.5]]), None),
    (MaxVoltageCrossEntropy(), np.array([[0.3, 0.9, -0.2], [1.2, 0.1, 0.4]]), [1, 0]),
])
def test_derivative_matches_differences(loss, values, target):
    np.testing.assert_allclose(_autograd(loss, values, target), _fd(loss, values, target),
                               rtol=1e-6, atol=1e-9)


def test_first_spike_cross_entropy_formula():
    t = np.array([[3.0, 4.5, 9.0]])
    tau0, tau1, alpha = 0.5, 6.4, 3e-3
    z = -t[0] / tau0
    ce = -(z[1] - np.log(np.exp(z).sum()))
    expected = ce + alpha * (np.exp(t[0, 1] / tau1) - 1)
    got = float(FirstSpikeCrossEntropy(tau0, tau1, alpha)(torch.tensor(t), [1]))
    assert got == pytest.approx(expected, rel=1e-14)


def test_spike_time_mse_formula_and_batch_targets():
    t = np.array([[3.0, 4.0], [1.0, 2.0]])
    tg = np.array([[2.0, 2.0], [1.0, 0.0]])
    assert float(SpikeTimeMSE()(torch.tensor(t), tg)) == pytest.approx((1 + 4 + 0 + 4) / 4)


@pytest.mark.parametrize("make,match", [
    (lambda: FirstSpikeCrossEntropy(tau0=0.0), "tau0"),
    (lambda: FirstSpikeCrossEntropy(alpha=-1.0), "alpha"),
    (lambda: SpikeTimeMSE(targets=[np.nan]), "targets"),
    (lambda: MaxVoltageCrossEntropy(scale=0.0), "scale"),
])
def test_bad_parameters(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_labels():
    with pytest.raises(ValueError, match="target"):
        FirstSpikeCrossEntropy()(torch.zeros(2, 3, dtype=torch.float64), [0, 3])
    with pytest.raises(ValueError, match="target"):
        FirstSpikeCrossEntropy()(torch.zeros(2, 3, dtype=torch.float64), None)


def test_dead_neuron_penalty_by_hand():
    """threshold - max over the batch of V_max, summed over the neurons silent on every sample;
    neurons that spike somewhere (their entries may be nan) add nothing."""
    import torch

    from eventgrad.losses import dead_neuron_penalty

    vmax = torch.tensor([[0.2, np.nan, 0.5, -0.1],
                         [0.7, 0.3, np.nan, -0.4]], dtype=torch.float64, requires_grad=True)
    silent = ~torch.isnan(vmax)
    P = dead_neuron_penalty(vmax, silent, 1.5)
    assert float(P.detach()) == pytest.approx((1.5 - 0.7) + (1.5 - (-0.1)))
    P.backward()
    assert vmax.grad.tolist() == [[0, 0, 0, -1], [-1, 0, 0, 0]]
    none = dead_neuron_penalty(vmax[:, 1:3], silent[:, 1:3], 1.0)
    assert float(none) == 0.0 and not none.requires_grad
    with pytest.raises(ValueError, match="same shape"):
        dead_neuron_penalty(vmax, silent[:, :2], 1.0)


@pytest.mark.parametrize("labels,match", [([0.7, 1], "integers"), ([np.nan, 1], "integers"),
                                          ([0, 3], r"in \[0, 3\)"), ([0], "shape")])
def test_labels_are_checked(labels, match):
    loss = FirstSpikeCrossEntropy()
    with pytest.raises(ValueError, match=match):
        loss.value_and_grad(np.ones((2, 3)), labels)


@pytest.mark.parametrize("loss,values,target", [
    (FirstSpikeCrossEntropy(), np.array([[3.0, 4.5, 9.0], [12.0, 2.0, 2.5]]), [0, 2]),
    (SpikeTimeMSE(targets=[5.0, 10.0, 15.0]), np.array([[3.0, 4.5, 9.0], [12.0, 2.0, 2.5]]), None),
    (MaxVoltageCrossEntropy(scale=2.0), np.array([[0.3, 0.9, -0.2], [1.2, 0.1, 0.4]]), [1, 0]),
])
def test_numpy_derivative_against_torch_formulas(loss, values, target):
    """The numpy closed forms against the same losses written directly in torch ops."""
    v = torch.tensor(values, requires_grad=True)
    if isinstance(loss, FirstSpikeCrossEntropy):
        lab = torch.tensor(target)
        L = (torch.nn.functional.cross_entropy(-v / loss.tau0, lab, reduction="none")
             + loss.alpha * torch.expm1(v.gather(1, lab[:, None])[:, 0] / loss.tau1)).mean()
    elif isinstance(loss, SpikeTimeMSE):
        L = ((v - torch.tensor(loss.targets)) ** 2).mean()
    else:
        L = torch.nn.functional.cross_entropy(loss.scale * v, torch.tensor(target))
    (g,) = torch.autograd.grad(L, v)
    value, grad = loss.value_and_grad(values, target)
    assert value == pytest.approx(float(L.detach()), rel=1e-14)
    np.testing.assert_allclose(grad, g.numpy(), rtol=1e-13, atol=1e-16)


# ------------------------------------------------------------------ issue 14: shapes, labels
@pytest.mark.parametrize("targets", [12.0, [12.0], [[12.0, 15.0]], [[[12.0, 15.0]]]])
def test_spike_time_mse_targets_are_never_broadcast(targets):
    """Allowed: (n,) or (batch, n). Before, [12.0] on two outputs (and a scalar, and (1, n) on
    a batch of two) broadcast silently: the loss of targets nobody gave."""
    values = np.array([[3.0, 4.0], [1.0, 2.0]])
    shape = np.shape(targets)
    if len(shape) not in (1, 2):    # rejected where it is given
        with pytest.raises(ValueError, match=rf"^targets must have shape \(n,\) or \(batch, n\), "
                                             rf"got shape {re.escape(str(shape))}$"):
            SpikeTimeMSE(targets=targets)
        with pytest.raises(ValueError, match=r"^target must have shape"):
            SpikeTimeMSE().value_and_grad(values, targets)
        return
    msg = (rf"^{{}} must have shape \(n,\) = \(2,\) or \(batch, n\) = \(2, 2\) for this "
           rf"readout, got {re.escape(str(shape))}$")
    with pytest.raises(ValueError, match=msg.format("targets")):
        SpikeTimeMSE(targets=targets).value_and_grad(values)
    with pytest.raises(ValueError, match=msg.format("target")):
        SpikeTimeMSE()(torch.tensor(values), targets)


def test_spike_time_mse_allowed_shapes_by_hand():
    values = np.array([[3.0, 4.0], [1.0, 2.0]])
    # (n,): residuals [1, 2], [-1, 0]; (batch, n): [1, 2], [0, 2]
    assert SpikeTimeMSE([2.0, 2.0]).value_and_grad(values)[0] == (1 + 4 + 1 + 0) / 4
    L, g = SpikeTimeMSE().value_and_grad(values, [[2.0, 2.0], [1.0, 0.0]])
    assert L == (1 + 4 + 0 + 4) / 4
    np.testing.assert_array_equal(g, 2 * np.array([[1.0, 2.0], [0.0, 2.0]]) / 4)


def test_spike_time_mse_one_target_for_two_outputs_through_value_and_grad():
    import eventgrad as eg

    net = eg.Network.feedforward([2, 2], eg.LIF(20.0, 5.0), weights=[np.full((2, 2), 6.0)])
    with pytest.raises(ValueError, match=r"^targets must have shape \(n,\) = \(2,\)"):
        eg.value_and_grad(net, eg.Spikes([0.0, 1.0], [0, 1]), SpikeTimeMSE(targets=[12.0]),
                          50.0)


@pytest.mark.parametrize("label,shown", [(0.7, "0.7"), (np.nan, "nan"), (-0.0 + 2, "2")])
def test_class_labels_are_checked_through_value_and_grad(label, shown):
    """Item 3 (already fixed on main, tested here end to end): label 0.7 used to become class
    0 and a nan label a garbage integer; now each is a ValueError naming target and the
    value."""
    import eventgrad as eg

    net = eg.Network.feedforward([2, 2], eg.LIF(20.0, 5.0), weights=[np.full((2, 2), 6.0)])
    with pytest.raises(ValueError, match=rf"^target labels must be .*{shown}"):
        eg.value_and_grad(net, eg.Spikes([0.0, 1.0], [0, 1]), FirstSpikeCrossEntropy(), 50.0,
                          target=label)

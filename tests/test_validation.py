"""Every bad input raises, with a message naming the argument and the offending value; Spikes
sorting and conversions round-trip."""

from __future__ import annotations

import re

import numpy as np
import pytest

import eventgrad as eg

LIF = eg.LIF(10.0, 5.0)


def _net():
    net = eg.Network(2)
    net.add_population(3, LIF, "h")
    return net


def raises(exc, *fragments):
    """pytest.raises that also checks each fragment appears in the message (literally)."""
    return pytest.raises(exc, match="(?s)" + "".join(f"(?=.*{re.escape(f)})" for f in fragments))


# ---------------------------------------------------------------------------- weights / delays
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weight(bad):
    net = _net()
    w = np.ones((2, 3))
    w[1, 2] = bad
    with raises(ValueError, "weights", str(float(bad)), "[1, 2]"):
        net.connect("input", "h", w)
    assert net.projections == ()  # nothing half-made


@pytest.mark.parametrize("shape", [(3, 2), (2,), (2, 3, 1), (1, 3), ()])
def test_wrong_weight_shape(shape):
    with raises(ValueError, "weights", "(2, 3)", str(shape)):
        _net().connect("input", "h", np.ones(shape))


def test_non_numeric_weights():
    with raises(TypeError, "weights"):
        _net().connect("input", "h", "abc")


@pytest.mark.parametrize("bad", [-1.0, -1e-300, np.nan, np.inf])
def test_bad_delay_value(bad):
    net = _net()
    d = np.zeros((2, 3))
    d[0, 1] = bad
    with raises(ValueError, "delay", str(bad), "[0, 1]"):
        net.connect("input", "h", np.ones((2, 3)), delay=d)
    with raises(ValueError, "delay", str(bad)):
        net.connect("input", "h", np.ones((2, 3)), delay=bad)
    assert net.projections == ()


@pytest.mark.parametrize("shape", [(3, 2), (3,), (2, 3, 1)])
def test_wrong_delay_shape(shape):
    with raises(ValueError, "delay", "(2, 3)", str(shape)):
        _net().connect("input", "h", np.ones((2, 3)), delay=np.zeros(shape))


def test_assigning_bad_weights_or_delays_to_a_projection():
    net = _net()
    pr = net.connect("input", "h", np.ones((2, 3)))
    with raises(ValueError, "weights", "nan"):
        pr.weights = np.full((2, 3), np.nan)
    with raises(ValueError, "weights", "(2, 3)", "(3, 3)"):
        pr.weights = np.ones((3, 3))
    with raises(ValueError, "delays", "-2.0"):
        pr.delays = -2.0
    assert np.array_equal(pr.weights, np.ones((2, 3)))
    assert np.array_equal(pr.delays, np.zeros((2, 3)))
    with raises(ValueError, "weights", "1", "2"):
        net.set_weights([np.ones((2, 3)), np.ones((2, 3))])
    with raises(ValueError, "delays", "1", "0"):
        net.set_delays([])


# ---------------------------------------------------------------------------- populations
def test_connecting_into_the_input():
    net = _net()
    with raises(ValueError, "post", "input"):
        net.connect("h", "input", np.ones((3, 2)))
    with raises(ValueError, "post", "input"):
        net.connect("h", net.input, np.ones((3, 2)))


def test_unknown_population_name_and_index_in_results():
    net = _net()
    net.connect("input", "h", np.ones((2, 3)))
    res = eg.simulate(net, eg.Spikes([1.0], [0]), 5.0)
    with raises(KeyError, "pop", "'nope'"):
        res.spikes("nope")
    with raises(IndexError, "pop", "7"):
        res.first_spike_times(7)
    with raises(IndexError, "pop", "-2"):
        res.spike_counts(-2)
    with raises(TypeError, "pop", "1.5"):
        res.spikes(1.5)
    other = eg.Network(2)
    with raises(ValueError, "pop", "another network"):
        res.spikes(other.add_population(3, LIF, "h"))
    with raises(ValueError, "pop", "input"):
        res.voltage("input", [1.0])
    with raises(ValueError, "times", "t_max"):
        res.voltage("h", [6.0])
    with raises(ValueError, "times", "t_max"):
        res.voltage("h", [np.nan])


def test_unknown_population_in_connect_raises():
    net = _net()
    with raises(KeyError, "'nope'"):
        net.connect("nope", "h", np.ones((2, 3)))
    with raises(KeyError, "'nope'"):
        net.connect("input", "nope", np.ones((2, 3)))
    with raises(IndexError, "5"):
        net.connect("input", 5, np.ones((2, 3)))
    assert net.projections == ()


def test_unknown_population_in_connect_names_the_argument():
    net = _net()
    with raises(KeyError, "post", "'nope'"):
        net.connect("input", "nope", np.ones((2, 3)))


def test_bad_population_arguments():
    net = _net()
    with raises(ValueError, "size", "0"):
        net.add_population(0, LIF)
    with raises(TypeError, "size", "2.5"):
        net.add_population(2.5, LIF)
    with raises(TypeError, "neuron", "'lif'"):
        net.add_population(2, "lif")
    with raises(ValueError, "name", "'h'"):
        net.add_population(2, LIF, "h")
    with raises(ValueError, "name", "'input'"):
        net.add_population(2, LIF, "input")
    with raises(ValueError, "n_inputs", "0"):
        eg.Network(0)
    with raises(TypeError, "n_inputs", "2.5"):
        eg.Network(2.5)


def test_bad_feedforward_arguments():
    with raises(ValueError, "sizes", "[3]"):
        eg.Network.feedforward([3], LIF)
    with raises(ValueError, "neuron", "2", "3"):
        eg.Network.feedforward([3, 4, 2], [LIF, LIF, LIF])
    with raises(ValueError, "weights", "2", "1"):
        eg.Network.feedforward([3, 4, 2], LIF, weights=[np.ones((3, 4))])
    with raises(ValueError, "delays", "2", "3"):
        eg.Network.feedforward([3, 4, 2], LIF, delays=[0.0, 1.0, 2.0])
    with raises(ValueError, "delay", "-1.0"):
        eg.Network.feedforward([3, 4, 2], LIF, delays=-1.0)


# ---------------------------------------------------------------------------- Spikes
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, -1.0, -1e-300])
def test_spike_times_must_be_finite_and_non_negative(bad):
    with raises(ValueError, "times", str(bad)):
        eg.Spikes([1.0, bad, 2.0], [0, 1, 0])


@pytest.mark.parametrize("bad", [0.5, np.nan, np.inf, 2.25])
def test_spike_ids_must_be_integers(bad):
    with raises(ValueError, "ids", str(bad)):
        eg.Spikes([1.0, 2.0], [0, bad])


def test_spike_ids_non_numeric_names_ids():
    with raises((TypeError, ValueError), "ids", "a"):
        eg.Spikes([1.0, 2.0], [0, "a"])


def test_spike_ids_negative_or_out_of_range():
    with raises(ValueError, "ids", "-1"):
        eg.Spikes([1.0, 2.0], [0, -1])
    with raises(ValueError, "ids", "n_neurons=3", "5"):
        eg.Spikes([1.0, 2.0], [0, 5], n_neurons=3)
    with raises(ValueError, "ids", "n_neurons=3", "3"):
        eg.Spikes([1.0, 2.0], [3, 0], n_neurons=3)
    with raises(ValueError, "n_neurons", "-1"):
        eg.Spikes([], [], n_neurons=-1)
    assert eg.Spikes([1.0], [2.0], n_neurons=3).ids.dtype == np.int64  # integral floats are ids


def test_spike_n_neurons_must_be_an_integer():
    with raises((TypeError, ValueError), "n_neurons", "2.7"):
        eg.Spikes([1.0], [0], n_neurons=2.7)


def test_spikes_mismatched_lengths_and_dims():
    with raises(ValueError, "times", "ids", "2", "3"):
        eg.Spikes([1.0, 2.0], [0, 1, 2])
    with raises(ValueError, "times", "1-D", "(1, 2)"):
        eg.Spikes([[1.0, 2.0]], [0, 1])
    with raises(ValueError, "ids", "1-D", "(2, 1)"):
        eg.Spikes([1.0, 2.0], [[0], [1]])


def test_simulate_checks_ids_against_the_network_input():
    net = _net()
    net.connect("input", "h", np.ones((2, 3)))
    with raises(ValueError, "spikes[0]", "input id 2", "n_inputs=2"):
        eg.simulate(net, eg.Spikes([1.0], [2]), 10.0)
    with raises(ValueError, "spikes[1]", "input id 5", "n_inputs=2"):
        eg.simulate(net, [eg.Spikes([1.0], [1]), eg.Spikes([1.0, 2.0], [0, 5])], 10.0)
    with raises(TypeError, "spikes[0]", "list"):
        eg.simulate(net, [[1.0, 2.0]], 10.0)
    with raises(TypeError, "spikes"):
        eg.simulate(net, 3.0, 10.0)
    with raises(TypeError, "network"):
        eg.simulate("net", eg.Spikes([1.0], [0]), 10.0)


@pytest.mark.parametrize("bad", [0.0, -1.0, np.nan, np.inf, -np.inf])
def test_bad_t_max(bad):
    net = _net()
    with raises(ValueError, "t_max", str(bad)):
        eg.simulate(net, eg.Spikes([1.0], [0]), bad)


@pytest.mark.parametrize("bad", ["abc", None])
def test_non_numeric_t_max(bad):
    with raises(TypeError, "t_max", repr(bad)):
        eg.simulate(_net(), eg.Spikes([1.0], [0]), bad)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, None, "10", np.float64(5.0)])
def test_bad_max_events(bad):
    with raises((TypeError, ValueError), "max_events", repr(bad) if not isinstance(bad, np.floating)
                else "5.0"):
        eg.simulate(_net(), eg.Spikes([1.0], [0]), 10.0, max_events=bad)


def test_good_max_events_types():
    net = _net()
    net.connect("input", "h", np.full((2, 3), 0.1))
    for ok in (10, np.int64(10), np.int32(10)):
        res = eg.simulate(net, eg.Spikes([1.0], [0]), 10.0, max_events=ok)
        assert res.diagnostics.n_events == 2


# ---------------------------------------------------------------------------- sorting / round trips
def test_spikes_sorting_is_stable_for_ties():
    times = [3.0, 1.0, 3.0, 1.0, 3.0, 0.5]
    ids = [4, 2, 0, 7, 1, 9]
    s = eg.Spikes(times, ids)
    # ties keep the order in which they were given
    assert s.times.tolist() == [0.5, 1.0, 1.0, 3.0, 3.0, 3.0]
    assert s.ids.tolist() == [9, 2, 7, 4, 0, 1]
    assert not s.times.flags.writeable and not s.ids.flags.writeable
    assert s.times.dtype == np.float64 and s.ids.dtype == np.int64


def test_spikes_do_not_alias_the_input():
    t = np.array([2.0, 1.0])
    s = eg.Spikes(t, [0, 1])
    t[:] = 9.0
    assert s.times.tolist() == [1.0, 2.0]


def test_from_lists_round_trip():
    rng = np.random.default_rng(0)
    lists = [np.sort(rng.uniform(0, 10, k)) for k in (3, 0, 5, 1)]
    s = eg.Spikes.from_lists(lists)
    assert s.n_neurons == 4 and len(s) == 9
    back = s.per_neuron()
    assert len(back) == 4
    for a, b in zip(lists, back):
        assert np.array_equal(a, b)
    assert np.all(np.diff(s.times) >= 0)
    # unsorted per-neuron input comes back sorted
    s2 = eg.Spikes.from_lists([[3.0, 1.0], [2.0]])
    assert [x.tolist() for x in s2.per_neuron()] == [[1.0, 3.0], [2.0]]
    e = eg.Spikes.from_lists([])
    assert len(e) == 0 and e.n_neurons == 0
    with raises(ValueError, "times", "nan"):
        eg.Spikes.from_lists([[1.0], [np.nan]])


@pytest.mark.parametrize("dt", [2.0 ** -3, 0.5, 1.0, 2.0 ** -7])
def test_from_dense_to_dense_round_trip(dt):
    rng = np.random.default_rng(1)
    dense = rng.integers(0, 3, (4, 50)) * (rng.random((4, 50)) < 0.3)
    s = eg.Spikes.from_dense(dense, dt)
    assert len(s) == dense.sum() and s.n_neurons == 4
    # spikes sit at the start of their bin: t = j dt
    j = np.nonzero(dense)
    assert set(zip(s.ids.tolist(), s.times.tolist())) == {(n, k * dt) for n, k in zip(*j)}
    back = s.to_dense(dt, 50 * dt)
    assert back.shape == dense.shape and np.array_equal(back, dense)
    assert np.array_equal(eg.Spikes.from_dense(back, dt).to_dense(dt, 50 * dt), dense)


def test_to_dense_of_times_and_bins():
    s = eg.Spikes([0.0, 0.25, 0.99, 1.0, 2.5], [0, 1, 0, 0, 1], n_neurons=2)
    d = s.to_dense(1.0, 3.0)
    assert np.array_equal(d, [[2, 1, 0], [1, 0, 1]])
    with raises(ValueError, "t_max", "2.0"):
        s.to_dense(1.0, 2.0)  # the spike at 2.5 lies beyond: nothing dropped silently
    with raises(ValueError, "dt", "0.0"):
        s.to_dense(0.0, 3.0)


def test_from_dense_to_dense_round_trip_decimal_dt():
    dense = np.zeros((1, 44), dtype=np.int64)
    dense[0, 43] = 1
    back = eg.Spikes.from_dense(dense, 0.1).to_dense(0.1, 4.4)
    assert np.array_equal(back, dense)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_to_dense_bad_t_max_names_it(bad):
    with raises((TypeError, ValueError), "t_max", str(bad)):
        eg.Spikes([1.0], [0]).to_dense(1.0, bad)


def test_bad_dense():
    with raises(ValueError, "dense"):
        eg.Spikes.from_dense([[1, -1]], 0.1)
    with raises(ValueError, "dense"):
        eg.Spikes.from_dense([[1, 0.5]], 0.1)
    with raises(ValueError, "dense", "2-D"):
        eg.Spikes.from_dense([1, 0], 0.1)
    with raises(ValueError, "dt", "0.0"):
        eg.Spikes.from_dense([[1, 1]], 0.0)
    with raises(ValueError, "dt", "nan"):
        eg.Spikes.from_dense([[1, 1]], np.nan)


# ------------------------------------------------------- issue 14: silent results, clear errors
def _one_neuron(w: float, delay: float = 0.0) -> eg.Network:
    """One input -> one LIF neuron (tau_mem 20 = 2 tau_syn), weight w, delay in ms."""
    net = eg.Network(1)
    net.add_population(1, eg.LIF(20.0, 10.0), "output")
    net.connect("input", "output", [[w]], delay=delay)
    return net


def _closed_form_spike(w: float) -> float:
    """First spike of _one_neuron(w) for an input at 0: V = w ts/(tm - ts) (e^{-t/tm} -
    e^{-t/ts}) = w (y - y^2) with y = e^{-t/tm} (tm = 2 ts), so V = 1 first at
    y = (1 + sqrt(1 - 4/w))/2 (w > 4), t = -tm log y."""
    return -20.0 * np.log((1 + np.sqrt(1 - 4 / w)) / 2)


def test_projection_weights_and_delays_cannot_be_written_in_place():
    """Item 1: a NaN weight or a negative delay written in place would bypass validation
    (silenced neurons, spikes before their cause). Neither the array nor its writeable flag
    can be changed, so the spike stays where the closed form puts it."""
    net = _one_neuron(6.0, delay=1.5)
    pr = net.projections[0]
    with raises(ValueError, "read-only"):
        pr.weights[0, 0] = np.nan
    with raises(ValueError, "read-only"):
        pr.delays[0, 0] = -1.0
    for arr in (pr.weights, pr.delays, np.asarray(pr.weights)):
        with raises(ValueError, "WRITEABLE"):
            arr.flags.writeable = True
    w = net.get_weights()
    w[0][0, 0] = np.nan                      # a copy: writable, and changes nothing
    t = eg.simulate(net, eg.Spikes([0.0], [0]), 40.0).first_spike_times("output")[0]
    assert t == pytest.approx(1.5 + _closed_form_spike(6.0), abs=1e-12)
    with raises(ValueError, "weights of projection 0", "nan", "[0, 0]"):
        net.set_weights(w)                   # the documented way validates


@pytest.mark.parametrize("bad,rule", [(1e20, "< 2**63"), (-1e20, ">= 0"), (2.0 ** 63, "< 2**63")])
def test_huge_float_id_is_reported_as_given(bad, rule):
    """Before: 'ids must be >= 0, got -9223372036854775808' (the int64 cast of 1e20)."""
    with raises(ValueError, "ids", rule, repr(bad)) as e:
        eg.Spikes([0.0, 1.0], [0.0, bad])
    assert "-9223372036854775808" not in str(e.value)


def test_huge_unsigned_id_is_reported_as_given():
    with raises(ValueError, "ids", "< 2**63", str(2 ** 63 + 5)):
        eg.Spikes([0.0], np.array([2 ** 63 + 5], dtype=np.uint64))


# (numpy warns that torch's Tensor.__array__ takes no copy keyword, for a list of tensors)
@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
def test_torch_tensors_that_require_grad_point_to_the_bridge():
    """Weights or spike times given as torch tensors that require grad: a TypeError naming the
    argument and saying where gradients come from (not torch's 'Can't call numpy()')."""
    torch = pytest.importorskip("torch")
    w = torch.ones((2, 3), dtype=torch.float64, requires_grad=True)
    with raises(TypeError, "weights of projection 0", "requires grad", "(2, 3)",
                "eventgrad.torch", "detach()"):
        _net().connect("input", "h", w)
    with raises(TypeError, "weights of projection 0", "require grad", "eventgrad.torch"):
        _net().connect("input", "h", [[torch.tensor(1.0, requires_grad=True)] * 3] * 2)
    net = _net()
    net.connect("input", "h", np.ones((2, 3)))
    with raises(TypeError, "weights of projection 0", "requires grad", "eventgrad.torch"):
        net.set_weights([w])
    with raises(TypeError, "delays of projection 0", "requires grad"):
        net.set_delays([torch.zeros((2, 3), requires_grad=True)])
    with raises(TypeError, "times", "requires grad", "value_and_grad", "input_times"):
        eg.Spikes(torch.tensor([0.0, 1.0], requires_grad=True), [0, 1])
    # tensors that do not require grad are values, taken as they are
    net.set_weights([w.detach() * 2])
    assert np.array_equal(net.projections[0].weights, np.full((2, 3), 2.0))
    s = eg.Spikes(torch.tensor([1.0, 0.5]), torch.tensor([0, 1]))
    assert s.times.tolist() == [0.5, 1.0] and s.ids.tolist() == [1, 0]


def test_empty_batch_names_spikes_everywhere():
    """An empty batch: one message naming spikes and what it got, from simulate,
    value_and_grad, backward's caller and the torch bridge (the issue saw numpy's 'need at
    least one array to stack' from deep inside)."""
    from eventgrad.losses import FirstSpikeCrossEntropy

    net = _net()
    net.connect("input", "h", np.ones((2, 3)))
    msg = "spikes must be an eventgrad.Spikes or a non-empty sequence of them"
    with raises(ValueError, msg, "got an empty list"):
        eg.simulate(net, [], 10.0)
    with raises(ValueError, msg, "got an empty tuple"):
        eg.value_and_grad(net, (), FirstSpikeCrossEntropy(pop="h"), 10.0, target=[])
    torch = pytest.importorskip("torch")
    from eventgrad.torch import SpikingNetwork, eventprop

    with raises(ValueError, msg, "got an empty list"):
        SpikingNetwork(net, 10.0, pop="h")([])
    with raises(ValueError, msg, "got an empty list"):
        eventprop(net, [], 10.0, [torch.ones((2, 3), dtype=torch.float64)],
                  readouts=(("first_spike", "h"),))


def test_shared_scalar_checks_name_the_argument_and_the_value():
    """eventgrad._checks.positive / non_negative: the value back as a float, or an error
    naming the argument, the rule (with its unit) and the value."""
    from eventgrad._checks import non_negative, positive
    from eventgrad.discrete.surrogates import Surrogate

    assert positive(np.float32(2.5), "dt", "ms") == 2.5 and non_negative(0, "alpha") == 0.0
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=r"^dt must be finite and > 0 ms, got "):
            positive(bad, "dt", "ms")
    for bad in (-1e-300, float("nan"), float("-inf")):
        with pytest.raises(ValueError, match=r"^alpha must be finite and >= 0, got "):
            non_negative(bad, "alpha")
    with pytest.raises(TypeError, match=r"^lr must be a real number, got 'fast'"):
        positive("fast", "lr")
    with pytest.raises(ValueError, match="surrogate scale must be finite and > 0, got -2"):
        Surrogate("superspike", -2)

"""The gradient cross-check (eventgrad.crosscheck), the temporal-XOR task and their CLI commands.

Fast: the grids are cut down to a few settings; the full default grid is what
``eventgrad crosscheck --task xor`` runs.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from eventgrad.tasks import Task, temporal_xor, xor_2_2_2

import eventgrad as eg
from eventgrad import crosscheck as cc
from eventgrad.experiments.cli import main
from eventgrad.losses import FirstSpikeCrossEntropy


@pytest.fixture(scope="module")
def xor():
    return temporal_xor(0)


# --------------------------------------------------------------------- the task
def test_xor_labels_are_the_truth_table_and_outputs_spike(xor):
    assert isinstance(xor, Task)
    assert xor.n_classes == 2 and len(xor.inputs) == 4
    for sp, label in zip(xor.inputs, xor.labels):
        t = {int(i): float(x) for i, x in zip(sp.ids, sp.times)}
        late0, late1 = t[0] == 6.0, t[1] == 6.0
        assert t[0] in (0.0, 6.0) and t[1] in (0.0, 6.0)
        assert t[2] == 0.0                      # the bias input
        assert label == int(late0 != late1)
    assert sorted(xor.labels.tolist()) == [0, 0, 1, 1]
    res = eg.simulate(xor.network, xor.inputs, xor.t_max)
    assert np.all(np.isfinite(res.first_spike_times("output")))
    assert np.all(res.spike_counts("hidden").sum(axis=0) > 0)
    assert [p.size for p in xor.network.populations] == [4, 2]
    assert isinstance(xor.loss, FirstSpikeCrossEntropy)


def test_xor_is_deterministic_and_2_2_2(xor):
    again = temporal_xor(0)
    for a, b in zip(xor.network.get_weights(), again.network.get_weights()):
        np.testing.assert_array_equal(a, b)
    small = xor_2_2_2(0)
    assert small.network.input.size == 3
    assert [p.size for p in small.network.populations] == [2, 2]
    res = eg.simulate(small.network, small.inputs, small.t_max)
    assert np.all(np.isfinite(res.first_spike_times("output")))
    no_bias = temporal_xor(1, bias=False)
    assert no_bias.network.input.size == 2
    np.testing.assert_array_equal(no_bias.labels, [0, 1, 1, 0])


# --------------------------------------------------------------------- central differences
def test_central_differences_flag_jumps_and_are_exact_for_cubics():
    x0 = np.array([0.3, 1.0 + 1e-5, -0.7])

    def f(x):  # cubic (4-point stencil is exact) with a jump at x[1] = 1
        return float(np.sum(x ** 3) + (x[1] > 1.0)), (bool(x[1] > 1.0),)

    r = cc.central_differences(f, x0, 1e-3)
    assert r.discontinuous == [(1,)]
    assert np.isnan(r.grad[1])
    np.testing.assert_allclose(r.grad[[0, 2]], 3 * x0[[0, 2]] ** 2, rtol=1e-10)


# --------------------------------------------------------------------- crosscheck rows
@pytest.fixture(scope="module")
def xor_rows(xor):
    return cc.crosscheck(xor.network, xor.inputs, xor.loss, xor.t_max, xor.labels,
                         dts=(0.1,), surrogates=("superspike", "sigmoid"), scales=(10.0,),
                         detach_resets=(True, False))


def test_rows_have_the_documented_keys(xor_rows):
    assert len(xor_rows) == 3 * (1 + 1 + 4)   # (2 projections + all) x (ep, fd, 4 discrete)
    for r in xor_rows:
        assert set(cc.ROW_KEYS) <= set(r)
    assert {r["method"] for r in xor_rows} == {"eventprop", "fd", "discrete"}
    assert {r["projection"] for r in xor_rows} == {"input->hidden", "hidden->output", "all"}
    disc = [r for r in xor_rows if r["method"] == "discrete"]
    for r in disc:
        assert r["dt"] == 0.1 and r["scale"] == 10.0 and r["n_discontinuous"] is None
        for k in ("cosine", "norm_ratio", "rel_error", "sign_agreement", "loss"):
            assert math.isfinite(r[k]), (k, r)
        assert -1 - 1e-12 <= r["cosine"] <= 1 + 1e-12
    json.dumps(cc.to_json(xor_rows), allow_nan=False)
    table = cc.format_table(xor_rows)
    assert len(table.splitlines()) == len(xor_rows) + 2


def test_fd_row_validates_eventprop(xor_rows):
    fd = [r for r in xor_rows if r["method"] == "fd"]
    assert len(fd) == 3
    for r in fd:
        assert r["n_discontinuous"] == 0, r["discontinuous"]
        assert r["cosine"] > 1 - 1e-9
        assert r["rel_error"] < 1e-6
        assert r["sign_agreement"] == 1.0
    ep = [r for r in xor_rows if r["method"] == "eventprop"]
    assert all(r["rel_error"] == 0.0 and r["norm_ratio"] == 1.0 for r in ep)


def test_fd_reports_discontinuous_parameters():
    # a hidden neuron that just reaches threshold: its input weights sit at a spike-count jump
    nrn = eg.LIF(20.0, 5.0)
    k_pk = float(nrn.kernel(nrn.peak_time(0.0, 1.0)))
    w1 = np.array([[1.0 / k_pk + 5e-5, 3.0 / k_pk]])     # hidden 0 peaks at threshold + 8e-6
    w2 = np.array([[2.0 / k_pk, 1.0 / k_pk], [2.0 / k_pk, 2.0 / k_pk]])
    net = eg.Network.feedforward([1, 2, 2], nrn, weights=[w1, w2])
    sp = eg.Spikes([0.0], [0])
    rows = cc.crosscheck(net, sp, FirstSpikeCrossEntropy(), 40.0, 0, dts=(), fd_h=1e-4)
    fd = {r["projection"]: r for r in rows if r["method"] == "fd"}
    assert fd["input->hidden"]["n_discontinuous"] >= 1
    assert [0, 0] in fd["input->hidden"]["discontinuous"]
    assert fd["all"]["n_discontinuous"] == sum(
        fd[p]["n_discontinuous"] for p in ("input->hidden", "hidden->output"))


def test_discrete_approaches_eventprop_as_dt_shrinks():
    """Single layer, detached reset, first-spike loss: the discrete gradient flows only through
    the interpolated crossing times, which converge to the exact ones."""
    nrn = eg.LIF(20.0, 5.0)
    k_pk = float(nrn.kernel(nrn.peak_time(0.0, 1.0)))
    rng = np.random.default_rng(3)
    net = eg.Network.feedforward([3, 2], nrn, weights=[rng.normal(1.0, 0.3, (3, 2)) / k_pk])
    batch = [eg.Spikes(rng.uniform(0, 5, 3), [0, 1, 2]) for _ in range(3)]
    assert np.all(np.isfinite(eg.simulate(net, batch, 30.0).first_spike_times("output")))
    rows = cc.crosscheck(net, batch, FirstSpikeCrossEntropy(), 30.0, [0, 1, 0],
                         dts=(0.5, 0.1, 0.02), surrogates=("superspike",), scales=(10.0,),
                         detach_resets=(True,), fd=False)
    err = [r["rel_error"] for r in rows if r["method"] == "discrete" and r["projection"] == "all"]
    assert err[0] > err[1] > err[2]
    assert err[2] < 1e-2
    cos = [r["cosine"] for r in rows if r["method"] == "discrete" and r["projection"] == "all"]
    assert cos[2] > 1 - 1e-4


# --------------------------------------------------------------------- CLI
def test_cli_crosscheck_writes_json_and_plot(tmp_path, capsys):
    js, png = tmp_path / "cc.json", tmp_path / "cc.png"
    rc = main(["crosscheck", "--task", "xor", "--dt", "0.2", "0.1", "--scale", "10",
               "--surrogate", "superspike", "--json", str(js), "--plot", str(png)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "cosine" in out and "eventprop" in out
    data = json.loads(js.read_text())
    rows = data["rows"]
    assert len(rows) == 3 * (1 + 1 + 2 * 2)
    assert all(set(cc.ROW_KEYS) <= set(r) for r in rows)
    fd_all = next(r for r in rows if r["method"] == "fd" and r["projection"] == "all")
    assert fd_all["cosine"] > 1 - 1e-9 and fd_all["rel_error"] < 1e-6
    assert sorted({r["dt"] for r in rows if r["method"] == "discrete"}) == [0.1, 0.2]
    assert png.exists() and png.stat().st_size > 10_000


def test_cli_figure1_writes_json_and_plot(tmp_path, capsys):
    js, png = tmp_path / "f1.json", tmp_path / "f1.png"
    rc = main(["figure1", "--points", "5", "--steps", "5", "--dt", "0.2",
               "--plot", str(png), "--json", str(js)])
    assert rc == 0
    assert "figure1" in capsys.readouterr().out
    data = json.loads(js.read_text())
    assert data["alpha"] == [0.0, 0.25, 0.5, 0.75, 1.0]
    for key in ("loss", "loss_discrete", "grad_norm_eventprop", "grad_norm_surrogate"):
        assert len(data[key]) == 5 and all(math.isfinite(v) for v in data[key]), key
    assert data["train"]["steps"] == 5
    # where the loss is smooth, central differences lie on EventProp
    smooth = [i for i in range(5) if data["n_discontinuous"][i] == 0]
    assert smooth
    for i in smooth:
        assert data["fd_rel_error"][i] < 1e-6
        assert data["grad_norm_fd"][i] == pytest.approx(data["grad_norm_eventprop"][i],
                                                        rel=1e-6)
    assert png.exists() and png.stat().st_size > 10_000


def test_cli_figure1_needs_an_output(capsys):
    assert main(["figure1"]) == 2


def test_norm_ratio_axis_is_bounded_and_marks_what_lies_outside():
    """Ratios outside RATIO_RANGE are drawn at its edge and counted; nan is not drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from eventgrad.experiments.crosscheck import RATIO_RANGE, _ratio_line

    fig, ax = plt.subplots()
    ys = [8e50, 2.0, 1e-9, float("nan"), RATIO_RANGE[1]]
    n = _ratio_line(ax, [1, 2, 3, 4, 5], ys, "-", "o", 3, "k")
    assert n == 2
    drawn = np.concatenate([line.get_ydata() for line in ax.lines])
    finite = drawn[np.isfinite(drawn)]
    assert finite.min() >= RATIO_RANGE[0] and finite.max() <= RATIO_RANGE[1]
    markers = {line.get_marker() for line in ax.lines}
    assert {"^", "v"} <= markers
    plt.close(fig)

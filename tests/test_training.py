"""Training: train() on both gradient paths, Newton refinement, save/load, the `xor` and
`timing` commands, the spike-timing task, the examples (reduced sizes)."""

from __future__ import annotations

import json
import re
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import eventgrad as eg
from eventgrad import tasks, training
from eventgrad.discrete.surrogates import Surrogate
from eventgrad.experiments import cli

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


# ------------------------------------------------------------------------------ train()
@pytest.mark.filterwarnings("error::eventgrad.GrazingWarning")   # ordinary training: none
@pytest.mark.parametrize("method", ["eventprop", "surrogate"])
def test_train_loss_falls_on_xor(method):
    task = tasks.temporal_xor(0)
    w0 = task.network.get_weights()
    extra = {"dt": 0.2, "surrogate": Surrogate("superspike", 10.0)} \
        if method == "surrogate" else {}
    res = training.train(task, method=method, epochs=6, lr=0.05, progress=False, **extra)
    h = res.history
    assert [e["epoch"] for e in h] == list(range(7))
    assert h[0]["phase"] == "init" and all(e["phase"] == "adam" for e in h[1:])
    # the method's own loss and the exact loss both fall
    assert h[-1]["loss"] < h[1]["loss"]
    assert h[-1]["exact_loss"] < 0.7 * h[0]["exact_loss"]
    for e in h:
        assert set(e) >= {"epoch", "loss", "exact_loss", "train_accuracy", "seconds", "lr"}
    # the task is untouched, the result holds the trained weights
    for a, b in zip(task.network.get_weights(), w0):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(res.network.get_weights(), res.weights):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(res.weights[0], w0[0])
    # evaluation is by the exact engine, for both methods
    s = res.summary
    assert "exact event engine" in s["evaluation"]
    assert s["accuracy"] == task.accuracy(res.network)
    np.testing.assert_array_equal(s["predictions"], task.predict(res.network))
    assert s["loss"] == pytest.approx(h[-1]["exact_loss"], rel=0, abs=0)
    assert res.config["method"] == method


def test_train_reproducible_with_minibatches():
    task = tasks.temporal_xor(1)
    runs = [training.train(task, epochs=4, lr=0.05, batch_size=2, seed=3, progress=False)
            for _ in range(2)]
    assert [e["exact_loss"] for e in runs[0].history] == \
        [e["exact_loss"] for e in runs[1].history]
    other = training.train(task, epochs=4, lr=0.05, batch_size=2, seed=4, progress=False)
    assert [e["exact_loss"] for e in other.history] != \
        [e["exact_loss"] for e in runs[0].history]


def test_train_argument_errors():
    task = tasks.temporal_xor(0)
    with pytest.raises(ValueError, match="method"):
        training.train(task, method="bptt", epochs=1, progress=False)
    with pytest.raises(ValueError, match="surrogate"):
        training.train(task, epochs=1, progress=False, surrogate=Surrogate())
    with pytest.raises(ValueError, match="target times"):
        training.train(task, epochs=1, newton_steps=3, progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        training.train(task, epochs=1, batch_size=0, progress=False)
    with pytest.raises(ValueError, match="revive"):
        training.train(task, epochs=1, revive=-1.0, progress=False)


@pytest.mark.parametrize("bad,exc", [(0, ValueError), (-2, ValueError), (2.5, TypeError)])
def test_task_layer_sizes_name_their_argument(bad, exc):
    """Before: temporal_xor(n_hidden=0) said 'size must be >= 1, got 0' (add_population's
    argument); spike_timing(hidden=0) silently built no hidden layer."""
    import re
    with pytest.raises(exc, match=f"^n_hidden must be .*got {re.escape(str(bad))}$"):
        tasks.temporal_xor(0, n_hidden=bad)
    with pytest.raises(exc, match=f"^hidden must be .*got {re.escape(str(bad))}$"):
        tasks.spike_timing(0, hidden=bad)


# ------------------------------------------------------------------------------ spike timing
def test_spike_timing_task_seeded_and_reachable():
    a, b = tasks.spike_timing(0), tasks.spike_timing(0)
    for sa, sb in zip(a.inputs, b.inputs):
        np.testing.assert_array_equal(sa.times, sb.times)
    np.testing.assert_array_equal(a.targets, b.targets)
    for wa, wb in zip(a.network.get_weights(), b.network.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    c = tasks.spike_timing(1)
    assert not np.array_equal(a.targets, c.targets)
    assert not np.array_equal(a.inputs[0].times, c.inputs[0].times)

    assert a.targets.shape == (4, 1) and a.n_classes is None
    np.testing.assert_array_equal(a.loss_target([2, 0]), a.targets[[2, 0]])
    for s in a.inputs:                       # one spike per input, in [0, 20] ms
        assert sorted(s.ids.tolist()) == list(range(5))
        assert s.times.min() >= 0 and s.times.max() <= 20
    assert np.all((a.targets >= 15) & (a.targets <= 30))
    t0 = a.first_spike_times()
    assert t0.shape == (4, 1) and np.all(np.isfinite(t0))     # the initial output fires
    assert a.timing_error() == pytest.approx(np.max(np.abs(t0 - a.targets)))
    # reachable: exact Gauss-Newton from the initial weights hits the targets
    net, steps = training.newton_refine(a, a.network, steps=30)
    assert a.timing_error(net) < 1e-9
    assert steps[-1]["timing_error_ms"] == a.timing_error(net)
    # targets passed explicitly are used; the loss takes them per sample as (batch, 1)
    d = tasks.spike_timing(0, targets=[20.0, 21.0, 22.0, 23.0])
    np.testing.assert_array_equal(d.targets[:, 0], [20.0, 21.0, 22.0, 23.0])
    with pytest.raises(ValueError, match="regression"):
        d.predict()
    # the loss's silent-neuron rule is passed through (and reaches the exact readout)
    e = tasks.spike_timing(0, silent_slope=5.0)
    assert e.loss.silent_slope == 5.0 and a.loss.silent_slope == 0.0
    silent = e.network.copy()
    silent.set_weights([0.1 * w for w in silent.get_weights()])
    ev = training.evaluate(e, silent)
    assert ev["timing_error_ms"] == np.inf
    t_read = ev["loss"]                   # mean (t_max + 5 (1 - V_max) - target)^2 > (50-tg)^2
    assert t_read > np.mean((50.0 - e.targets) ** 2)
    # hidden layer variant
    h = tasks.spike_timing(0, hidden=3)
    assert [p.size for p in h.network.populations] == [3, 1]
    assert np.all(np.isfinite(h.first_spike_times()))


def test_eventprop_newton_reaches_float_precision_surrogate_floors():
    task = tasks.spike_timing(0)
    ep = training.train(task, "eventprop", epochs=10, lr=0.03, newton_steps=20, progress=False)
    assert ep.summary["timing_error_ms"] < 1e-12
    assert ep.history[-1]["phase"] == "newton"
    assert ep.summary["after_adam"]["timing_error_ms"] > 1e-2
    # the surrogate path's own Newton converges on its grid, not on the exact model
    _, steps = training.newton_refine(task, ep.network, steps=6, method="surrogate", dt=0.2)
    assert steps and steps[-1]["residual_ms"] < 1e-9          # its own residuals vanish
    assert steps[-1]["timing_error_ms"] > 1e-5                 # the exact error does not


def test_clip_grad_norm_zero_is_off_and_negative_is_refused():
    """One meaning everywhere: None or 0 is no clipping (as --clip 0), so clip_grad_norm=0 no
    longer zeroes every gradient (before: the weights never moved); a negative value (before:
    ascent) or a non-finite one is a ValueError naming clip_grad_norm and the value."""
    task = tasks.temporal_xor(0)
    off = training.train(task, epochs=2, lr=0.05, progress=False, clip_grad_norm=None)
    zero = training.train(task, epochs=2, lr=0.05, progress=False, clip_grad_norm=0)
    for a, b, w0 in zip(off.weights, zero.weights, task.network.get_weights()):
        np.testing.assert_array_equal(a, b)
        assert np.max(np.abs(b - w0)) > 1e-3       # it trained
    assert zero.config["clip_grad_norm"] is None and off.config["clip_grad_norm"] is None
    for bad in (-1.0, -1e-9, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=rf"^clip_grad_norm must be None or a finite number"
                                             rf" >= 0 .*got {bad!r}$"):
            training.train(task, epochs=1, progress=False, clip_grad_norm=bad)
    with pytest.raises(TypeError, match=r"^clip_grad_norm .*'0\.05'"):
        training.train(task, epochs=1, progress=False, clip_grad_norm="0.05")


# ------------------------------------------------------------------------------ save / load
def test_save_load_round_trip(tmp_path):
    task = tasks.temporal_xor(0, tau_mem=15.0, tau_syn=4.0)
    res = training.train(task, epochs=3, lr=0.05, progress=False)
    res.network.projections[1].delays = np.full((4, 2), 0.5)   # delays are saved too
    npz, js = training.save(tmp_path / "run", res)
    assert Path(npz).exists() and Path(js).exists()
    text = Path(js).read_text()
    assert "Infinity" not in text and "NaN" not in text           # strict JSON
    doc = json.loads(text)
    assert doc["summary"]["evaluation"].startswith("exact event engine")
    assert len(doc["history"]) == 4
    net, config = training.load(tmp_path / "run")
    assert config == json.loads(json.dumps(training.to_json(res.config)))
    assert net.input.size == res.network.input.size
    for p, q in zip(net.populations, res.network.populations):
        assert (p.name, p.size, p.neuron) == (q.name, q.size, q.neuron)
    for p, q in zip(net.projections, res.network.projections):
        assert (p.pre.name, p.post.name) == (q.pre.name, q.post.name)
        np.testing.assert_array_equal(p.weights, q.weights)
        np.testing.assert_array_equal(p.delays, q.delays)
    r1 = eg.simulate(net, task.inputs, task.t_max)
    r2 = eg.simulate(res.network, task.inputs, task.t_max)
    for a, b in zip(r1, r2):
        np.testing.assert_array_equal(a.records.times, b.records.times)
    # a non-spiking readout (threshold inf) survives the strict-JSON encoding
    ro = eg.Network(2)
    ro.add_population(3, eg.LIF(10.0, 5.0, threshold=np.inf), name="output")
    ro.connect("input", "output", np.ones((2, 3)))
    res2 = training.TrainResult([], ro.get_weights(), ro, {"x": np.inf})
    training.save(tmp_path / "ro.json", res2)
    net2, cfg2 = training.load(tmp_path / "ro")
    assert net2.populations[0].neuron.threshold == np.inf and cfg2 == {"x": "inf"}


@pytest.mark.parametrize("which,cut", [("npz", 0.5), ("npz", 0.0), ("json", 0.5),
                                       ("json", 0.0), ("npz", "drop")])
def test_load_of_a_damaged_file_names_it(tmp_path, which, cut):
    """Before: zipfile.BadZipFile 'File is not a zip file', EOFError 'No data left in file'
    or json's 'Unterminated string ...', none naming the file."""
    task = tasks.temporal_xor(0)
    res = training.TrainResult([], task.network.get_weights(), task.network, {"epochs": 0})
    npz, js = training.save(tmp_path / "run", res)
    path = Path(npz if which == "npz" else js)
    if cut == "drop":       # a valid archive without the second projection's arrays
        np.savez(path, weights_0=task.network.get_weights()[0], delays_0=np.zeros((3, 4)))
    else:
        data = path.read_bytes()
        path.write_bytes(data[:int(len(data) * cut)])
    with pytest.raises(ValueError, match=f"^{re.escape(str(path))}: not a readable eventgrad "
                                         f"training file"):
        training.load(tmp_path / "run")
    path.unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
        training.load(tmp_path / "run")



# ------------------------------------------------------------------------------ CLI
def test_cli_xor_json_plot_save(tmp_path, capsys):
    out = tmp_path / "xor.json"
    rc = cli.main(["xor", "--epochs", "20", "--no-progress", "--json", str(out),
                   "--plot", str(tmp_path / "xor.png"), "--save", str(tmp_path / "run")])
    assert rc == 0
    d = json.loads(out.read_text())
    assert d["accuracy"] == 1.0 and d["method"] == "eventprop"
    assert d["evaluation"].startswith("exact event engine")
    assert d["labels"] == [0, 1, 1, 0] and d["predictions"] == [0, 1, 1, 0]
    assert len(d["history"]) == 21
    assert (tmp_path / "xor.png").stat().st_size > 10_000
    net, config = training.load(tmp_path / "run")
    assert tasks.temporal_xor(0).accuracy(net) == 1.0 and config["epochs"] == 20
    assert "accuracy 0.50 -> 1.00" in capsys.readouterr().out
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        cli.main(["xor", "--epochs", "1", "--json", str(tmp_path / "a.json"),
                  "--save", str(tmp_path / "a")])
    assert e.value.code == 2 and "overwritten" in capsys.readouterr().err


def test_cli_xor_surrogate_json(tmp_path):
    out = tmp_path / "xs.json"
    assert cli.main(["xor", "--method", "surrogate", "--epochs", "3", "--dt", "0.2",
                     "--no-progress", "--json", str(out)]) == 0
    d = json.loads(out.read_text())
    assert d["method"] == "surrogate" and 0.0 <= d["accuracy"] <= 1.0
    assert d["config"]["dt"] == 0.2
    assert d["config"]["discrete_options"]["surrogate"] == {"name": "superspike", "scale": 10.0}
    assert d["evaluation"].startswith("exact event engine")


@pytest.mark.parametrize("method,dt,bound", [("eventprop", 0.1, (0.0, 1e-6)),
                                             ("surrogate", 0.25, (1e-5, 0.5))])
def test_cli_timing_json(tmp_path, method, dt, bound):
    out = tmp_path / "t.json"
    args = ["timing", "--method", method, "--dt", str(dt), "--epochs", "10", "--newton",
            "20" if method == "eventprop" else "4", "--no-progress", "--json", str(out)]
    if method == "eventprop":
        args += ["--plot", str(tmp_path / "t.png")]
    assert cli.main(args) == 0
    d = json.loads(out.read_text())
    assert bound[0] <= d["final_timing_error_ms"] < bound[1]
    t, tg = np.array(d["first_spike_times"]), np.array(d["targets"])
    assert d["final_timing_error_ms"] == pytest.approx(np.max(np.abs(t - tg)), abs=0)
    assert d["history"][-1]["phase"] == "newton"
    assert d["evaluation"].startswith("exact event engine")
    if method == "eventprop":
        assert (tmp_path / "t.png").stat().st_size > 10_000


# ------------------------------------------------------------------------------ examples
def _run_example(name, argv, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [name] + argv)
    return runpy.run_path(str(EXAMPLES / name), run_name="__main__")


def test_example_xor(monkeypatch, tmp_path, capsys):
    _run_example("xor.py", ["--quick", "--epochs", "20"], monkeypatch, tmp_path)
    out = capsys.readouterr().out
    assert "eventprop seed 0: accuracy 0.50 -> 1.00" in out


def test_example_spike_timing(monkeypatch, tmp_path, capsys):
    _run_example("spike_timing.py", ["--quick", "--epochs", "5", "--dts", "0.25",
                                     "--newton", "15"], monkeypatch, tmp_path)
    out = capsys.readouterr().out
    assert "eventprop" in out and "surrogate dt 0.25 ms" in out


# ------------------------------------------------------------------------------ Yin-Yang
def test_yinyang_task_splits_encoding_and_seeding():
    from eventgrad.datasets import yinyang_class

    t = tasks.yinyang(0, n_train=200, n_validation=50, n_test=80)
    assert [len(x.inputs) for x in (t, t.validation, t.test)] == [200, 50, 80]
    for split in (t, t.validation, t.test):
        assert split.network is t.network and split.loss is t.loss and split.n_classes == 3
        np.testing.assert_array_equal(split.labels, yinyang_class(*split.features.T))
        x, y = split.features[7]
        sp = split.inputs[7]
        np.testing.assert_allclose(sp.times[np.argsort(sp.ids, kind="stable")],
                                   [30 * x, 30 * y, 30 * (1 - x), 30 * (1 - y), 0.0],
                                   rtol=0, atol=1e-12)
    # three independent draws; the data depend on data_seed only, the weights on seed only
    assert not np.array_equal(t.features[:50], t.validation.features)
    t1 = tasks.yinyang(1, n_train=200, n_validation=50, n_test=80)
    np.testing.assert_array_equal(t1.features, t.features)
    assert not np.array_equal(t1.network.get_weights()[0], t.network.get_weights()[0])
    t2 = tasks.yinyang(0, n_train=200, n_validation=50, n_test=80, data_seed=1)
    assert not np.array_equal(t2.features, t.features)
    np.testing.assert_array_equal(t2.network.get_weights()[1], t.network.get_weights()[1])
    assert t.loss.silent_slope == 5.0 and t.t_max == 60.0
    # EventProp's initialisation for 20/5 ms; other time constants keep the PSP peak
    w1, w2 = tasks.yinyang(3, n_train=1, n_validation=0, n_test=0, hidden=4000
                           ).network.get_weights()
    assert abs(w1.mean() - 1.5) < 0.05 and abs(w1.std() - 0.78) < 0.05
    assert abs(w2.mean() - 0.93) < 0.01 and abs(w2.std() - 0.1) < 0.01
    t3 = tasks.yinyang(3, n_train=1, n_validation=0, n_test=0, hidden=4000, tau_mem=10.0,
                       tau_syn=2.0)
    nrn, ref = t3.network.populations[0].neuron, eg.LIF(20.0, 5.0)
    peak = float(nrn.kernel(nrn.peak_time(0.0, 1.0)))
    peak_ref = float(ref.kernel(ref.peak_time(0.0, 1.0)))
    np.testing.assert_allclose(t3.network.get_weights()[0] * peak, w1 * peak_ref, rtol=1e-12)
    assert t3.validation is None and t3.test is None
    with pytest.raises(ValueError, match="n_train"):
        tasks.yinyang(0, n_train=0)
    with pytest.raises(ValueError, match="points"):
        tasks.yinyang_inputs(np.array([[0.5, 1.5]]))


def test_yinyang_reference_splits():
    from eventgrad.datasets import KRIENER_SEEDS, yinyang_reference

    t = tasks.yinyang(0, n_train=120, n_validation=30, n_test=40, generator="kriener")
    for split, key, n in ((t, "train", 120), (t.validation, "validation", 30),
                          (t.test, "test", 40)):
        pts, lab = yinyang_reference(n, KRIENER_SEEDS[key])
        np.testing.assert_array_equal(split.features, pts)
        np.testing.assert_array_equal(split.labels, lab)
    # same weights as with the default generator: only the data change
    t0 = tasks.yinyang(0, n_train=120, n_validation=30, n_test=40)
    np.testing.assert_array_equal(t.network.get_weights()[0], t0.network.get_weights()[0])
    assert not np.array_equal(t.features, t0.features)
    np.testing.assert_array_equal(
        tasks.yinyang(0, n_train=120, n_validation=0, n_test=0, data_seed=0).features,
        t0.features)
    with pytest.raises(ValueError, match="data_seed must be None"):
        tasks.yinyang(0, n_train=10, generator="kriener", data_seed=0)
    with pytest.raises(ValueError, match="generator must be"):
        tasks.yinyang(0, n_train=10, generator="kriner")
    with pytest.raises(ValueError, match="data_seed must be a non-negative"):
        tasks.yinyang(0, n_train=10, data_seed=-1)


@pytest.mark.filterwarnings("error::eventgrad.GrazingWarning")   # ordinary training: none
def test_yinyang_training_loss_falls_and_reports_test_accuracy():
    task = tasks.yinyang(0, hidden=40, n_train=256, n_validation=64, n_test=128)
    res = training.train(task, epochs=3, lr=5e-3, batch_size=32, lr_decay=0.95,
                         progress=False)
    h, s = res.history, res.summary
    assert h[-1]["exact_loss"] < 0.8 * h[0]["exact_loss"]
    assert all("validation_accuracy" in e and "validation_loss" in e for e in h)
    # the reported numbers are the exact engine's on the respective splits
    assert s["test_accuracy"] == task.test.accuracy(res.network)
    assert s["accuracy"] == s["test_accuracy"] and s["accuracy_split"] == "test"
    assert s["validation_accuracy"] == task.validation.accuracy(res.network)
    assert s["train_accuracy"] == task.accuracy(res.network) == h[-1]["train_accuracy"]
    assert s["seconds_per_epoch"] > 0 and all(e["train_seconds"] >= 0 for e in h)
    # the best-validation epoch: selected by validation accuracy, its test accuracy reported
    best = s["best_validation"]
    va = [e["validation_accuracy"] for e in h[1:]]
    assert best["epoch"] == 1 + int(np.argmax(va)) and best["validation_accuracy"] == max(va)
    assert task.validation.accuracy(res.best_network) == best["validation_accuracy"]
    assert task.test.accuracy(res.best_network) == best["test_accuracy"]


@pytest.mark.parametrize("method", ["eventprop", "surrogate"])
def test_revive_brings_dead_hidden_neurons_back(method):
    """The dead-neuron rule: hidden neurons that spike for no sample get a gradient toward
    threshold, so after one epoch fewer are dead; without it none comes back with EventProp (an
    exactly zero gradient); the task's loss in the history does not include the rule's term."""
    task = tasks.yinyang(0, hidden=60, n_train=128, n_validation=0, n_test=0)

    def dead(network):
        return int((eg.simulate(network, task.inputs, task.t_max).spike_counts("hidden")
                    .sum(axis=0) == 0).sum())

    d0 = dead(task.network)
    assert d0 >= 15
    kw = {"dt": 0.1} if method == "surrogate" else {}
    off = training.train(task, method, epochs=1, lr=0.05, batch_size=16, progress=False, **kw)
    on = training.train(task, method, epochs=1, lr=0.05, batch_size=16, progress=False,
                        revive=1.0, **kw)
    if method == "eventprop":
        assert dead(off.network) >= d0 and dead(on.network) < 0.5 * d0
    else:          # a surrogate derivative reaches silent neurons too; the rule adds to it
        assert dead(on.network) < dead(off.network) < d0
    assert on.config["revive"] == 1.0 and off.config["revive"] == 0.0
    assert on.history[0]["loss"] == off.history[0]["loss"]      # task loss only


def test_cli_yinyang_json_plot(tmp_path, capsys):
    out = tmp_path / "yy.json"
    assert cli.main(["yinyang", "--epochs", "2", "--hidden", "30", "--train-size", "160",
                     "--validation-size", "40", "--test-size", "60", "--tau-mem", "15",
                     "--tau-syn", "4", "--batch-size", "16", "--lr", "0.01", "--no-progress",
                     "--json", str(out), "--plot", str(tmp_path / "yy.png")]) == 0
    d = json.loads(out.read_text())
    assert d["command"] == "yinyang" and d["task"] == "yinyang 5-30-3"
    task = tasks.yinyang(0, hidden=30, tau_mem=15.0, tau_syn=4.0, n_train=160,
                         n_validation=40, n_test=60)
    assert d["accuracy"] == d["test_accuracy"] and 0.0 <= d["accuracy"] <= 1.0
    assert d["config"]["batch_size"] == 16 and d["config"]["lr"] == 0.01
    assert d["config"]["n_samples"] == 160 and len(d["history"]) == 3
    assert d["initial_train_accuracy"] == task.accuracy()
    assert d["seconds_per_epoch"] > 0
    assert (tmp_path / "yy.png").stat().st_size > 20_000
    assert "test" in capsys.readouterr().out
    assert d["generator"] == "eventgrad" and d["data_seed"] == 0
    # the reference generator's splits
    assert cli.main(["yinyang", "--epochs", "1", "--hidden", "20", "--train-size", "64",
                     "--validation-size", "0", "--test-size", "32", "--generator", "kriener",
                     "--no-progress", "--json", str(out)]) == 0
    d = json.loads(out.read_text())
    assert d["generator"] == "kriener" and d["data_seed"] is None
    task = tasks.yinyang(0, hidden=20, n_train=64, n_validation=0, n_test=32,
                         generator="kriener")
    assert d["initial_train_accuracy"] == task.accuracy()
    assert "seeds 42 / 41 / 40" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        cli.main(["yinyang", "--generator", "kriener", "--data-seed", "3"])
    assert e.value.code == 2
    assert "eventgrad yinyang: error: --data-seed 3 does not apply" in capsys.readouterr().err


def test_example_yinyang(monkeypatch, tmp_path, capsys):
    _run_example("yinyang.py", ["--quick", "--plot", "", "--generator", "kriener"], monkeypatch,
                 tmp_path)
    assert "test accuracy over 1 seed(s)" in capsys.readouterr().out


def test_json_encodings_of_non_finite_values():
    from eventgrad import crosscheck

    obj = {"a": np.array([1.5, np.inf, -np.inf, np.nan]), 2: (np.int64(3), np.bool_(True)),
           "dtype": torch.float32, "none": None, "other": slice(1)}
    saved = training.to_json(obj)
    assert saved == {"a": [1.5, "inf", "-inf", "nan"], "2": [3, True], "dtype": "float32",
                     "none": None, "other": "slice(None, 1, None)"}
    assert [float(v) for v in saved["a"][:3]] == [1.5, np.inf, -np.inf]
    assert np.isnan(float(saved["a"][3]))
    assert crosscheck.to_json is training.to_json       # one encoding (eventgrad._json)
    json.dumps(saved, allow_nan=False)
    assert type(saved["2"][0]) is int and type(saved["2"][1]) is bool


@pytest.mark.parametrize("method", ["eventprop", "surrogate"])
def test_interrupted_and_resumed_run_equals_an_uninterrupted_one(method, tmp_path, monkeypatch,
                                                                  capsys):
    """Ctrl-C during epoch 3 of 4 (mini-batches: the batch order's RNG matters): the message
    says epoch 2 is saved; resuming ends bit-identical to the run that was not interrupted."""
    task = tasks.temporal_xor(seed=2)
    kw = dict(method=method, epochs=4, lr=0.02, batch_size=2, seed=5, progress=False)
    full = training.train(task, **kw)
    real_evaluate, real_postfix = training.evaluate, training._postfix
    done = {"epochs": 0}

    def counting(entry):             # called once per finished epoch
        done["epochs"] += 1
        return real_postfix(entry)

    def interrupting(*a, **k):       # Ctrl-C while epoch 3 is being evaluated
        if done["epochs"] == 2:
            raise KeyboardInterrupt
        return real_evaluate(*a, **k)

    monkeypatch.setattr(training, "_postfix", counting)
    monkeypatch.setattr(training, "evaluate", interrupting)
    with pytest.raises(KeyboardInterrupt):
        training.train(task, checkpoint=str(tmp_path), **kw)
    monkeypatch.setattr(training, "evaluate", real_evaluate)
    err = capsys.readouterr().err
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["epoch"] == 2
    assert f"interrupted: epoch 2 is saved in {tmp_path / 'checkpoint.pt'}" in err
    resumed = training.train(task, checkpoint=str(tmp_path), resume=True, **kw)
    for a, b in zip(full.weights, resumed.weights):
        np.testing.assert_array_equal(a, b)
    keys = ("epoch", "loss", "exact_loss", "train_accuracy", "lr")
    assert [[h.get(k) for k in keys] for h in resumed.history] == \
        [[h.get(k) for k in keys] for h in full.history]
    assert resumed.summary["loss"] == full.summary["loss"]


def test_resume_refuses_other_settings_and_missing_checkpoints(tmp_path):
    task = tasks.temporal_xor(seed=2)
    training.train(task, epochs=1, lr=0.02, seed=5, progress=False, checkpoint=str(tmp_path))
    with pytest.raises(ValueError, match=r"other settings \(lr: saved 0.02, now 0.03\)"):
        training.train(task, epochs=2, lr=0.03, seed=5, progress=False,
                       checkpoint=str(tmp_path), resume=True)
    training.train(task, epochs=2, lr=0.02, seed=5, progress=False, checkpoint=str(tmp_path))
    with pytest.raises(ValueError, match=r"epochs must be >= the 2 epochs the checkpoint .* "
                                         r"holds, got 1"):
        training.train(task, epochs=1, lr=0.02, seed=5, progress=False,
                       checkpoint=str(tmp_path), resume=True)
    with pytest.raises(FileNotFoundError, match="resume: no checkpoint at"):
        training.train(task, epochs=2, progress=False, checkpoint=str(tmp_path / "none"),
                       resume=True)
    with pytest.raises(ValueError, match="resume=True needs checkpoint=DIR"):
        training.train(task, epochs=2, progress=False, resume=True)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"bad/checkpoint\.pt is not a readable eventgrad"):
        training.train(task, epochs=2, progress=False, checkpoint=str(tmp_path / "bad"),
                       resume=True)


def test_adam_is_adam():
    """training.adam (fused where torch has it): two steps against Adam written out by hand
    (Kingma & Ba 2015, bias-corrected, betas 0.9 / 0.999, eps 1e-8)."""
    rng = np.random.default_rng(3)
    p0, g1, g2 = rng.normal(size=(3, 7, 4))
    p = torch.tensor(p0, requires_grad=True)
    opt = training.adam([p], 0.01)
    m = v = 0.0
    want = p0.copy()
    for k, g in enumerate((g1, g2), start=1):
        p.grad = torch.tensor(g)
        opt.step()
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        want = want - 0.01 * (m / (1 - 0.9 ** k)) / (np.sqrt(v / (1 - 0.999 ** k)) + 1e-8)
    np.testing.assert_allclose(p.detach().numpy(), want, rtol=0, atol=1e-14)


def test_timing_figure_says_when_one_curve_hides_another():
    from eventgrad.experiments.training_plots import _coincides

    ep = np.arange(5.0)
    y = np.array([3.0, 2.0, 1.0, 0.5, 0.25])
    first = (ep, y, "EventProp")
    assert _coincides(None, ep, y) == ""
    assert "on the EventProp curve: within 0.5%" in _coincides(first, ep, y * 1.005)
    assert _coincides(first, ep, y * 1.05) == ""             # visibly apart
    assert _coincides(first, ep[:4], y[:4]) == ""            # other epochs


def test_yinyang_figure_names_every_region(tmp_path):
    """The decision map's legend lists the three predicted regions, the silent cells when
    there are any, the outside, the three classes of points and the misclassified ones."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from eventgrad.experiments import tasks, training_plots

    task = tasks.yinyang(seed=0, hidden=20, n_train=40, n_validation=0, n_test=40)
    hist = [{"epoch": 0, "loss": 1.0, "exact_loss": 1.0, "train_accuracy": 0.3},
            {"epoch": 1, "loss": 0.9, "exact_loss": 0.8, "train_accuracy": 0.4}]
    seen = {}
    save = plt.Figure.savefig

    def spy(fig, *a, **k):
        seen["labels"] = [t.get_text() for t in fig.axes[2].get_legend().get_texts()]
        seen["xticks"] = [t for t in fig.axes[0].get_xticks() if 0 <= t <= 1]
        return save(fig, *a, **k)

    plt.Figure.savefig = spy
    try:
        training_plots.plot_yinyang(task, hist, task.network, str(tmp_path / "yy.png"), grid=16)
    finally:
        plt.Figure.savefig = save
    labels = seen["labels"]
    for name in ("predicted yang", "predicted yin", "predicted dot", "outside the disc",
                 "point of class yang (0)", "point of class dot (2)"):
        assert name in labels
    assert any(lab.startswith("misclassified (") for lab in labels)
    assert all(float(t).is_integer() for t in seen["xticks"])
    assert (tmp_path / "yy.png").stat().st_size > 0


@pytest.mark.parametrize("peak,marked", [(0.995, 1), (0.9, 0)])
def test_xor_figure_marks_a_silent_neuron_that_nearly_fires(peak, marked):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from eventgrad.experiments.training_plots import NEAR_MISS, _mark_near_misses

    nrn = eg.LIF(10.0, 5.0)
    t = np.linspace(0.0, 40.0, 400001)
    w = peak / nrn.kernel(t).max()          # the PSP peaks at `peak` (threshold 1)
    net = eg.Network(1)
    net.connect("input", net.add_population(1, nrn, name="output"), [[w]])
    r = eg.simulate(net, eg.Spikes([1.0], [0]), 40.0)
    assert r.spike_counts("output")[0] == 0
    fig, ax = plt.subplots()
    assert _mark_near_misses(ax, r, net.population("output"), ["C0"]) == marked
    assert NEAR_MISS == 0.01
    plt.close(fig)

"""The README's quick start runs and gives the closed-form answer for a single input."""

from scipy.special import lambertw

import eventgrad as eg


def test_single_input_equal_taus_matches_lambert_w():
    tau, w, t_in = 10.0, 3.0, 1.0
    net = eg.Network(1)
    pop = net.add_population(1, eg.LIF(tau, tau))
    net.connect(net.input, pop, [[w]])
    res = eg.simulate(net, eg.Spikes([t_in], [0]), t_max=100.0)
    # V = w (s/tau) exp(-s/tau) = 1 with s = t - t_in  ->  s = -tau W0(-1/w)
    expected = t_in - tau * lambertw(-1.0 / w, 0).real
    assert abs(res.first_spike_times(0)[0] - expected) < 1e-12


def test_cli_forward_runs(capsys):
    from eventgrad.experiments.cli import main

    assert main(["forward", "--hidden", "20", "--batch", "2"]) == 0
    out = capsys.readouterr().out
    assert "events" in out and "output first-spike times" in out


def test_cli_demo_main_job(tmp_path, capsys):
    """The README's main job (shortened): cross-check table and both training paths."""
    import json

    from eventgrad.experiments.cli import main

    out = tmp_path / "demo.json"
    assert main(["demo", "--epochs", "25", "--dt", "0.5", "--json", str(out)]) == 0
    d = json.loads(out.read_text())
    rows = {(r["method"], r["dt"], r["surrogate"], r["projection"]): r for r in d["crosscheck"]}
    assert rows[("fd", None, None, "all")]["rel_error"] < 1e-8
    assert rows[("eventprop", None, None, "all")]["rel_error"] == 0.0
    assert {k[2] for k in rows if k[0] == "discrete"} == {"superspike", "sigmoid"}
    assert d["training"]["eventprop"]["accuracy"] == 1.0
    assert 0.0 <= d["training"]["surrogate"]["accuracy"] <= 1.0
    text = capsys.readouterr().out
    assert "cosine" in text and "EventProp (exact)" in text and "surrogate (dt 0.1 ms" in text

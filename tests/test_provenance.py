"""What a run records about where it ran, and the reproducibility eventgrad states
(:mod:`eventgrad.experiments.provenance`): same machine and software, bit-identical results,
whatever the number of engine threads."""

import json
import platform
import sys

import numpy as np
import pytest

import eventgrad as eg
from eventgrad.experiments import provenance


def test_environment_names_the_software_and_machine():
    env = provenance.environment()
    json.dumps(env)                                    # JSON-ready
    assert env["python"] == platform.python_version()
    assert env["packages"]["numpy"] == np.__version__
    import numba
    assert env["packages"]["numba"] == numba.__version__
    assert env["packages"]["eventgrad"] == eg.__version__
    assert isinstance(env["cpu"], str) and env["cpu"]
    assert env["cpus_available"] >= 1
    torch = sys.modules.get("torch")
    assert env["torch_threads"] == (torch.get_num_threads() if torch else None)


def test_environment_names_how_batches_are_launched(monkeypatch):
    from eventgrad.event import batch

    net = eg.Network.feedforward([2, 3], eg.LIF(10.0, 5.0), seed=0)
    eg.simulate(net, [eg.Spikes([0.0], [0])] * 8, 20.0, workers=2)
    launch = provenance.environment()["eventgrad_launch"]
    assert launch in ("thread pool", "numba parallel loop (omp)", "numba parallel loop (tbb)")
    monkeypatch.setitem(batch._LAYER, "ok", False)
    assert provenance.environment()["eventgrad_launch"] == "thread pool"


def test_environment_follows_the_thread_setting():
    old = eg.get_num_threads()
    try:
        eg.set_num_threads(3)
        assert provenance.environment()["eventgrad_threads"] == 3
    finally:
        eg.set_num_threads(old)


@pytest.mark.parametrize("method", ["eventprop", "surrogate"])
def test_training_is_bit_identical_on_one_machine_whatever_the_engine_threads(method):
    pytest.importorskip("torch")
    from eventgrad import tasks, training

    task = tasks.temporal_xor(seed=1)
    old = eg.get_num_threads()
    runs = []
    try:
        for threads in (1, 2, 1):
            eg.set_num_threads(threads)
            r = training.train(task, method=method, epochs=3, lr=0.01, seed=4, progress=False)
            runs.append(r)
    finally:
        eg.set_num_threads(old)
    for r in runs[1:]:
        for a, b in zip(runs[0].weights, r.weights):
            np.testing.assert_array_equal(a, b)
        assert [h["loss"] for h in r.history] == [h["loss"] for h in runs[0].history]
    assert runs[0].config["environment"]["packages"]["eventgrad"] == eg.__version__

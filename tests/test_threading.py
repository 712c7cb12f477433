"""How a batch is spread over threads (eventgrad.event.batch.run_chunks) never changes a result.

Three launch paths exist: numba's parallel loop (OpenMP/TBB layers), a thread pool (any other
layer, more threads than numba has, or a process forked from one that used GNU OpenMP) and
one serial call. Each is compared bit for bit with one sample per call (no threads at all).
"""

import multiprocessing as mp
import os

import numpy as np
import pytest

import eventgrad as eg
from eventgrad.event import batch
from eventgrad.event.gradients import Readout, backward_batch
from eventgrad.losses import FirstSpikeCrossEntropy


def _net(kind: str, seed: int):
    rng = np.random.default_rng(seed)
    nrn = eg.LIF(20.0, 5.0, t_ref=1.0)
    net = eg.Network(4)
    h = net.add_population(12, nrn)
    o = net.add_population(3, nrn, name="output")
    net.connect(net.input, h, rng.normal(1.2, 0.8, (4, 12)))
    net.connect(h, o, rng.normal(0.6, 0.5, (12, 3)), 0.5)
    if kind == "recurrent":
        net.connect(h, h, rng.normal(0.0, 0.3, (12, 12)), 1.0)
    return net


def _batch(seed: int, n: int = 13):
    rng = np.random.default_rng(seed)
    return [eg.Spikes(np.sort(rng.uniform(0, 15, 6)), rng.integers(0, 4, 6)) for _ in range(n)]


def _run(net, spikes, workers):
    """Records, dL/dw and max-V of the silent hidden neurons with ``workers`` threads."""
    res = eg.simulate(net, spikes, 60.0, workers=workers, max_events=10**6)
    loss = FirstSpikeCrossEntropy()
    ro = Readout.of(res, "first_spike", "output")
    _, dv = loss.value_and_grad(ro.values, np.arange(len(spikes)) % 3)
    grads = backward_batch(res, [(ro, dv)], workers=workers).weights
    vmax = Readout.of(res, "silent_max_voltage", 0, workers=workers).values
    rec = res.records
    return [rec.times, rec.pops, rec.ids, rec.currents, rec.release_currents, grads, vmax]


def _assert_same(a, b):
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("kind", ["layered", "recurrent"])
def test_every_launch_path_gives_the_same_bits(kind, monkeypatch):
    net, spikes = _net(kind, 1), _batch(2)
    one_by_one = [_run(net, [s], 1) for s in spikes]
    flat = [np.concatenate([r[k] for r in one_by_one]) for k in range(5)]
    paths = {"default": _run(net, spikes, 2), "serial": _run(net, spikes, 1)}
    monkeypatch.setitem(batch._LAYER, "ok", False)        # the thread pool
    paths["pool"] = _run(net, spikes, 2)
    paths["pool, 3 threads"] = _run(net, spikes, 3)
    for got in paths.values():
        _assert_same(got[:5], flat)
        _assert_same(got, paths["serial"])
    np.testing.assert_array_equal(paths["default"][6][0], one_by_one[0][6][0])


def test_workqueue_layer_falls_back_to_the_pool(monkeypatch):
    monkeypatch.setitem(batch._LAYER, "ok", True)
    monkeypatch.setattr(batch.numba, "threading_layer", lambda: "workqueue")
    batch._check_layer()
    assert batch._spinning_layer() is False
    net, spikes = _net("layered", 3), _batch(4, 5)
    got = _run(net, spikes, 2)                            # runs, on the pool
    monkeypatch.setitem(batch._LAYER, "ok", None)
    monkeypatch.setattr(batch.numba.config, "THREADING_LAYER", "workqueue")
    assert batch._spinning_layer() is False               # a workqueue choice is respected
    _assert_same(got, _run(net, spikes, 1))


def _child(queue):
    net, spikes = _net("layered", 5), _batch(6, 9)
    queue.put([a.tolist() for a in _run(net, spikes, 2)])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_runs_on_the_pool():
    """GNU OpenMP aborts a forked child that launches a parallel loop; the child uses the pool
    instead (the parent has launched one, at 2 threads, before forking)."""
    net, spikes = _net("layered", 5), _batch(6, 9)
    want = _run(net, spikes, 2)
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(q,))
    p.start()
    got = q.get(timeout=120)
    p.join(60)
    assert p.exitcode == 0
    for x, y in zip(want, got):
        np.testing.assert_array_equal(x, np.asarray(y, dtype=x.dtype))


@pytest.mark.parametrize("layer,wants", [("default", ("tbbpool", "omppool")),
                                         ("threadsafe", ("tbbpool", "omppool")),
                                         ("omp", ("omppool",)), ("tbb", ("tbbpool",)),
                                         ("safe", ("tbbpool",)), ("forksafe", ("tbbpool",)),
                                         ("workqueue", ())])
def test_the_parallel_loop_only_where_numba_would_load_a_spinning_layer(layer, wants,
                                                                        monkeypatch):
    import importlib

    def importable(mod):
        try:
            importlib.import_module(f"numba.np.ufunc.{mod}")
            return True
        except ImportError:
            return False

    monkeypatch.setattr(batch.numba.config, "THREADING_LAYER", layer)
    monkeypatch.setitem(batch._LAYER, "ok", None)
    assert batch._spinning_layer() == any(importable(m) for m in wants)

"""``simulate``: the exact forward simulation of a network, event by event.

One event loop serves every topology (feed-forward, recurrent, with delays): input spikes,
synaptic arrivals, predicted threshold crossings and refractory releases are taken in time
order, ties in the order of :mod:`eventgrad.event.order`, and every spike time is found from the
closed form (:mod:`eventgrad.model.physics`), never on a grid. The engines
(:mod:`eventgrad.event.engines`: ``"fast"`` picks the layered fast path or the general compiled
queue, ``"reference"`` is the readable Python statement of the algorithm) give the same spikes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .._checks import positive
from ..model.network import Network
from ..model.spikes import Spikes
from . import engines, reference
from .diagnostics import F_FAIL
from .plan import plan_for
from .reference import EventLimitError, limit_message
from .result import BatchResult, Diagnostics, SimulationResult, SpikeRecord

__all__ = ["simulate", "EventLimitError", "DEFAULT_MAX_EVENTS", "ENGINES"]

#: Default bound on the number of events processed for one sample.
DEFAULT_MAX_EVENTS = 1_000_000

ENGINES = engines.ENGINES


def _validate_inputs(network: Network, spikes) -> tuple[list[Spikes], bool]:
    single = isinstance(spikes, Spikes)
    batch = [spikes] if single else list(spikes) if isinstance(spikes, Sequence) else None
    if batch is None:
        raise TypeError("spikes must be an eventgrad.Spikes or a sequence of them, got "
                        f"{type(spikes)}")
    if not batch:
        raise ValueError(f"spikes must be an eventgrad.Spikes or a non-empty sequence of them "
                         f"(a batch), got an empty {type(spikes).__name__}")
    n_in = network.input.size
    for b, s in enumerate(batch):
        if not isinstance(s, Spikes):
            raise TypeError(f"spikes[{b}] must be an eventgrad.Spikes, got {type(s)}")
    top = max((s.n_neurons if s.n_neurons is not None else n_in + 1) for s in batch)
    if top > n_in:   # (Spikes with n_neurons <= n_inputs have their ids checked already)
        for b, s in enumerate(batch):
            if len(s) and s.ids.max() >= n_in:
                raise ValueError(f"spikes[{b}]: input id {int(s.ids.max())} out of range for "
                                 f"n_inputs={n_in}")
    return batch, single


def _check_t_max(t_max) -> float:
    return positive(t_max, "t_max", "ms")


def _check_max_events(max_events) -> int:
    if isinstance(max_events, bool) or not isinstance(max_events, (int, np.integer)) \
            or max_events < 1:
        raise ValueError(f"max_events must be a positive integer, got {max_events!r}")
    return int(max_events)


def simulate(network: Network, spikes: Spikes | Sequence[Spikes], t_max: float,
             max_events: int = DEFAULT_MAX_EVENTS, engine: str = "fast",
             workers: int | None = None) -> SimulationResult | BatchResult:
    """Simulate ``network`` exactly, event by event, from ``t = 0`` to ``t_max``.

    Parameters
    ----------
    network : Network
    spikes : Spikes or sequence of Spikes
        Input spikes (ids index ``network.input``); a sequence is a batch of samples.
    t_max : float
        End of the window in ms (> 0). Crossings at ``t <= t_max`` are spikes.
    max_events : int
        Bound on the events processed per sample; exceeding it raises
        :class:`EventLimitError` (nothing is truncated silently).
    engine : "fast", "layered", "general" or "reference"
        See :mod:`eventgrad.event.engines`: ``"fast"`` (default) runs the layered fast path
        when the network has no recurrent loop and one delay per presynaptic row, else the
        general compiled event queue; ``"reference"`` the readable Python engine. All give the
        same spikes (cross-tested; the general and reference engines bit for bit, the layered
        path to rounding).
    workers : int, optional
        Threads for the samples of a batch (default :func:`eventgrad.get_num_threads`);
        results do not depend on it.

    Returns
    -------
    SimulationResult for one Spikes, BatchResult for a sequence.
    """
    if not isinstance(network, Network):
        raise TypeError(f"network must be an eventgrad.Network, got {type(network)}")
    t_max = _check_t_max(t_max)
    max_events = _check_max_events(max_events)
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    engines.threads_for(workers)
    batch, single = _validate_inputs(network, spikes)
    res = simulate_plan(network, plan_for(network), batch, t_max, max_events, engine, workers)
    return res[0] if single else res


def simulate_plan(network: Network, plan, batch: list[Spikes], t_max: float, max_events: int,
                  engine: str, workers: int | None, first_only=None,
                  track_closest: bool = True) -> BatchResult:
    """:func:`simulate` of a validated batch with the weights (and delays) of ``plan``
    (:func:`eventgrad.event.plan.plan_for`), leaving ``network`` as it is. ``first_only``:
    see :func:`eventgrad.event.engines.forward` (the reference engine records every spike);
    ``track_closest``: as there (the reference engine always tracks it)."""
    which = engines.resolve(engine, plan)
    if which == "reference":
        return BatchResult([_run_reference(network, plan, s, t_max, max_events, b, len(batch))
                            for b, s in enumerate(batch)])
    return _run_compiled(network, plan, batch, t_max, max_events, which, workers, first_only,
                         track_closest)


def _run_reference(network, plan, inputs, t_max, max_events, b, n) -> SimulationResult:
    diag = Diagnostics()
    try:
        rec = reference.forward(network, plan, inputs, t_max, max_events, diag)
    except EventLimitError as e:
        if n == 1:
            raise
        raise EventLimitError(f"sample {b}: {e}") from None
    return SimulationResult(network, plan.weights, plan.delays, t_max, inputs,
                            SpikeRecord(*rec), diag, "reference", plan)


def _run_compiled(network, plan, batch, t_max, max_events, which, workers,
                  first_only=None, track_closest=True) -> BatchResult:
    flat = engines.FlatInputs.of(batch)
    out = engines.forward(plan, flat, t_max, max_events, which, workers, first_only,
                          track_closest)
    failed = np.flatnonzero(out.status == 1)
    if failed.size:
        b = int(failed[0])
        where = f"sample {b}: " if len(batch) > 1 else ""
        raise EventLimitError(where + limit_message(max_events, float(out.diag_float[b, F_FAIL]),
                                                    t_max))
    return BatchResult.from_flat(network, plan, t_max, batch, out.records, out.diag_int,
                                 out.diag_float, which, flat)

"""Run per-sample work on both (all) cores: the compiled passes release the GIL.

One task per sample would spend much of its time in the pool's hand-off and in the Python
around each compiled call, both of which hold the GIL (measured: no gain from a second thread).
So a batch is cut into fixed chunks of consecutive samples, each chunk is one task (and, in the
event engine, one compiled call), and the threads take chunks as they free up. The chunks do not
depend on the number of threads, so neither does any result: sums over a batch are formed per
chunk in sample order and then over chunks in chunk order, bit for bit the same with 1 or 8
workers.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

__all__ = ["parallel_map", "parallel_chunks", "default_workers", "CHUNK"]

CHUNK = 8  # samples per task
_POOLS: dict[int, ThreadPoolExecutor] = {}


def default_workers() -> int:
    """Worker threads used when ``workers`` is None: the number of CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _pool(n: int) -> ThreadPoolExecutor:
    pool = _POOLS.get(n)
    if pool is None:
        pool = _POOLS[n] = ThreadPoolExecutor(max_workers=n, thread_name_prefix="eventgrad")
    return pool


def _n_workers(workers) -> int:
    n = default_workers() if workers is None else int(workers)
    if n < 1:
        raise ValueError(f"workers must be >= 1 or None, got {workers!r}")
    return n


def parallel_chunks(fn, items, workers: int | None = None, chunk: int = CHUNK) -> list:
    """``[fn(items[i:i + chunk]) for i in range(0, len(items), chunk)]``, in order, on up to
    ``workers`` threads (default :func:`default_workers`; 1: serially in the calling thread).
    An exception raised by ``fn`` is re-raised here."""
    items = list(items)
    parts = [items[i:i + chunk] for i in range(0, len(items), chunk)]
    n = min(_n_workers(workers), len(parts))
    if n <= 1:
        return [fn(p) for p in parts]
    return list(_pool(n).map(fn, parts))


def parallel_map(fn, items, workers: int | None = None, chunk: int = CHUNK) -> list:
    """``[fn(x) for x in items]``, in order, computed chunk by chunk on up to ``workers``
    threads (see :func:`parallel_chunks`)."""
    out = parallel_chunks(lambda xs: [fn(x) for x in xs], items, workers, chunk)
    return [r for part in out for r in part]

"""A whole batch in few compiled calls: forward, readouts and adjoint, samples on all threads.

A batch of ``B`` samples is cut into fixed chunks of :data:`CHUNK` consecutive samples, spread
over the threads by :func:`run_chunks`: with numba's OpenMP or TBB threading layer, one
``prange`` over the chunks (:mod:`eventgrad.event.parallel`; a launch is cheap: the layer's
threads wait spinning between launches); otherwise (numba's workqueue layer only, more
threads than numba started, or a forked child process, where GNU OpenMP would abort the
launch) one compiled call per thread on a thread pool, each running every ``threads``-th chunk
with the GIL released (a launch costs far more: the pool's threads sleep between launches; the
figures are in ``docs/performance.md``). One consequence of the parallel loop: once eventgrad
has run, a child forked from the process cannot launch numba parallel code of its own with GNU
OpenMP (numba aborts it; eventgrad itself falls back to the pool there); start such children
with ``multiprocessing``'s "spawn" or "forkserver" method. Each chunk writes its own part of
the outputs, and sums over the batch (dL/dw, dL/dd) are formed per chunk in sample order, then
over chunks in chunk order, so every result is the same, bit for bit, whatever the number of
threads.

Inputs and outputs are flat arrays with offsets: sample ``b``'s input spikes are
``in_t[in_off[b]:in_off[b + 1]]``, its records ``rec_*[rec_off[b]:rec_off[b + 1]]``, its voltage
probes ``pr_*[pr_off[b]:pr_off[b + 1]]``. There is one chunk runner per engine
(``forward_chunks_layered`` and ``_general``, ``backward_chunks_layered`` and ``_general``), so
an engine is compiled only when it is used.

The forward pass writes the records of a chunk into a buffer of ``cap`` entries; a chunk that
needs more stops and reports it (status 2), and the caller runs the batch again with a larger
buffer (:func:`eventgrad.event.engines.forward`): nothing is dropped.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from numba import njit

from . import general, layered
from .arrivals import arrivals_into, by_population
from .voltage_max import max_voltage_neurons

__all__ = ["CHUNK", "run_chunks", "launcher", "forward_chunks_layered",
           "forward_chunks_general", "compact", "backward_chunks_layered",
           "backward_chunks_general", "first_spikes", "max_voltage_chunks"]

CHUNK = 4  # samples per chunk
_JIT = {"cache": True, "nogil": True}

OK, EVENT_LIMIT, OVERFLOW, NOT_RUN = 0, 1, 2, 3
_POOLS: dict[int, ThreadPoolExecutor] = {}


def run_chunks(fn, n_chunks: int, threads: int, *args) -> None:
    """``fn(c0, c1, step, *args)`` over the chunks ``0..n_chunks`` on ``threads`` threads (see
    the module docs): one ``prange`` launch where numba's threading layer allows it, else
    thread ``k`` of a pool takes chunks ``k, k + threads, ...`` (interleaved, so chunks of
    unequal cost spread evenly; the calling thread is thread 0)."""
    n = max(1, min(threads, n_chunks))
    if _spinning_layer() and n <= numba.config.NUMBA_NUM_THREADS:
        from .parallel import LAUNCH

        with _numba_threads(n):
            LAUNCH[fn.__name__](n_chunks, *args)
        _check_layer()
        return
    if n == 1:
        fn(0, n_chunks, 1, *args)
        return
    pool = _POOLS.get(n)
    if pool is None:
        pool = _POOLS[n] = ThreadPoolExecutor(n - 1, thread_name_prefix="eventgrad")
    futures = [pool.submit(fn, k, n_chunks, n, *args) for k in range(1, n)]
    fn(0, n_chunks, n, *args)
    for f in futures:
        f.result()


_LAYER: dict[str, bool | None] = {"ok": None}  # numba's layer launches cheaply (None: unknown)


def _spinning_layer() -> bool:
    """Whether numba's threading layer is (or will be) OpenMP or TBB, whose threads wait
    spinning between launches; not workqueue (whose launches cost more than the pool's) and
    not in a child forked after GNU OpenMP was used (:func:`_after_fork`)."""
    if _LAYER["ok"] is None:
        ok = False
        for mod in _SPINNING.get(numba.config.THREADING_LAYER, ("tbbpool", "omppool")):
            try:
                importlib.import_module(f"numba.np.ufunc.{mod}")
                ok = True
                break
            except ImportError:
                pass
        _LAYER["ok"] = ok
    return bool(_LAYER["ok"])


#: The spinning layers numba may load for each of its ``THREADING_LAYER`` settings
#: ("default" and "threadsafe": TBB, then OpenMP; "forksafe" excludes GNU OpenMP).
_SPINNING = {"workqueue": (), "tbb": ("tbbpool",), "safe": ("tbbpool",),
             "forksafe": ("tbbpool",), "omp": ("omppool",)}


def launcher() -> str:
    """How batches with several threads are launched in this process: ``"numba parallel
    loop (omp)"`` (or ``tbb``; the layer once numba has chosen it) or ``"thread pool"``."""
    if not _spinning_layer():
        return "thread pool"
    try:
        return f"numba parallel loop ({numba.threading_layer()})"
    except ValueError:      # no parallel loop launched yet: numba has not chosen its layer
        return "numba parallel loop"


def _check_layer() -> None:
    """After a launch: the layer numba loaded (another library's launch may have loaded
    workqueue first); fall back to the pool if it is workqueue."""
    if numba.threading_layer() == "workqueue":
        _LAYER["ok"] = False


@contextlib.contextmanager
def _numba_threads(n: int):
    """numba's thread count (per calling thread) set to ``n`` for the launch (only when it
    differs: each setting has a cost; the loop's default static schedule gives each
    thread an equal block of chunks)."""
    before = numba.get_num_threads()
    if before == n:
        yield
        return
    numba.set_num_threads(n)
    try:
        yield
    finally:
        numba.set_num_threads(before)


def _after_fork() -> None:
    """In a forked child: GNU OpenMP cannot be used (numba aborts the process), and the
    parent's pool threads do not exist here."""
    _LAYER["ok"] = False
    _POOLS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


# --------------------------------------------------------------------------- forward
@njit(**_JIT)
def _store(s, c, cap, pos, out, buf_f, buf_i, cnt, status, di, df):
    """Copy one sample's forward output into its chunk's buffer; returns the new position, or
    -1 if the chunk is to stop (buffer full or a failed sample)."""
    st, t, p, i, cur, rel, dgi, dgf = out
    k = t.shape[0]
    cnt[s] = k
    di[s, :] = dgi
    df[s, :] = dgf
    if pos + k > (c + 1) * cap:
        status[s] = OVERFLOW
        return -1
    buf_f[pos:pos + k, 0] = t
    buf_f[pos:pos + k, 1] = cur
    buf_f[pos:pos + k, 2] = rel
    buf_i[pos:pos + k, 0] = p
    buf_i[pos:pos + k, 1] = i
    status[s] = st
    return pos + k if st == OK else -1


@njit(inline="always", **_JIT)
def _forward_chunk(engine, c, P, W, in_t, in_id, in_off, t_max, max_events, first_only, track,
                   chunk, cap, buf_f, buf_i, cnt, status, di, df):
    """The samples of chunk ``c`` through ``engine.forward_sample`` into the chunk's buffer."""
    B = in_off.shape[0] - 1
    pos = c * cap
    for s in range(c * chunk, min(B, (c + 1) * chunk)):
        a, b = in_off[s], in_off[s + 1]
        out = engine.forward_sample(P, W, in_t[a:b], in_id[a:b], t_max, max_events, first_only,
                                    track)
        pos = _store(s, c, cap, pos, out, buf_f, buf_i, cnt, status, di, df)
        if pos < 0:
            break


@njit(**_JIT)
def forward_chunks_layered(c0, c1, cstep, P, W, in_t, in_id, in_off, t_max, max_events,
                           first_only, track, chunk, cap, buf_f, buf_i, cnt, status, di, df):
    """Chunks ``c0, c0 + cstep, ... < c1`` of a batch forward pass with the layered engine
    (see the module docs; outputs are written into the buffers)."""
    for c in range(c0, c1, cstep):
        _forward_chunk(layered, c, P, W, in_t, in_id, in_off, t_max, max_events, first_only,
                       track, chunk, cap, buf_f, buf_i, cnt, status, di, df)


@njit(**_JIT)
def forward_chunks_general(c0, c1, cstep, P, W, in_t, in_id, in_off, t_max, max_events,
                           first_only, track, chunk, cap, buf_f, buf_i, cnt, status, di, df):
    """As :func:`forward_chunks_layered`, with the general engine."""
    for c in range(c0, c1, cstep):
        _forward_chunk(general, c, P, W, in_t, in_id, in_off, t_max, max_events, first_only,
                       track, chunk, cap, buf_f, buf_i, cnt, status, di, df)


@njit(**_JIT)
def compact(buf_f, buf_i, cnt, chunk, cap):
    """The chunk buffers as contiguous per-sample records: ``(rec_off, t, pop, id, current,
    release current)``."""
    B = cnt.shape[0]
    rec_off = np.zeros(B + 1, dtype=np.int64)
    for s in range(B):
        rec_off[s + 1] = rec_off[s] + cnt[s]
    n = rec_off[B]
    rt, rc, rr = np.empty(n), np.empty(n), np.empty(n)
    rp, ri = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
    for s in range(B):
        src = (s // chunk) * cap + rec_off[s] - rec_off[(s // chunk) * chunk]
        for u in range(cnt[s]):
            k = rec_off[s] + u
            rt[k], rc[k], rr[k] = buf_f[src + u, 0], buf_f[src + u, 1], buf_f[src + u, 2]
            rp[k], ri[k] = buf_i[src + u, 0], buf_i[src + u, 1]
    return rec_off, rt, rp, ri, rc, rr


# --------------------------------------------------------------------------- adjoint
@njit(**_JIT)
def _probes_of(pr, qa, qb):
    return (pr[0][qa:qb], pr[1][qa:qb], pr[2][qa:qb], pr[3][qa:qb], pr[4][qa:qb],
            pr[5][qa:qb], pr[6][qa:qb])


@njit(inline="always", **_JIT)
def _backward_chunk(engine, c, P, W, rec, rec_off, g_t, in_t, in_id, in_off, t_max, pr, pr_off,
                    chunk, gw, gd, g_in, g_out, n_graz):
    """The samples of chunk ``c`` through ``engine.backward_sample``, dL/dw and dL/dd into
    ``gw[c]``, ``gd[c]``."""
    rt, rp, ri, rc, rr = rec
    B = rec_off.shape[0] - 1
    for s in range(c * chunk, min(B, (c + 1) * chunk)):
        a, b, ia, ib = rec_off[s], rec_off[s + 1], in_off[s], in_off[s + 1]
        g_in[ia:ib], g_out[a:b], n_graz[s] = engine.backward_sample(
            P, W, rt[a:b], rp[a:b], ri[a:b], rc[a:b], rr[a:b], g_t[a:b], in_t[ia:ib],
            in_id[ia:ib], t_max, _probes_of(pr, pr_off[s], pr_off[s + 1]), gw[c], gd[c])


@njit(**_JIT)
def backward_chunks_layered(c0, c1, cstep, P, W, rec, rec_off, g_t, in_t, in_id, in_off, t_max,
                            pr, pr_off, chunk, gw, gd, g_in, g_out, n_graz):
    """Chunks ``c0, c0 + cstep, ... < c1`` of a batch adjoint pass with the layered engine:
    chunk ``c`` adds its samples' dL/dw, dL/dd into ``gw[c]``, ``gd[c]``; dL/d(input time), the
    complete dL/dt of each record and the grazing counts go to ``g_in``, ``g_out``,
    ``n_graz``."""
    for c in range(c0, c1, cstep):
        _backward_chunk(layered, c, P, W, rec, rec_off, g_t, in_t, in_id, in_off, t_max, pr,
                        pr_off, chunk, gw, gd, g_in, g_out, n_graz)


@njit(**_JIT)
def backward_chunks_general(c0, c1, cstep, P, W, rec, rec_off, g_t, in_t, in_id, in_off, t_max,
                            pr, pr_off, chunk, gw, gd, g_in, g_out, n_graz):
    """As :func:`backward_chunks_layered`, with the general engine."""
    for c in range(c0, c1, cstep):
        _backward_chunk(general, c, P, W, rec, rec_off, g_t, in_t, in_id, in_off, t_max, pr,
                        pr_off, chunk, gw, gd, g_in, g_out, n_graz)


# --------------------------------------------------------------------------- readouts
@njit(**_JIT)
def first_spikes(rec_p, rec_i, rec_off, pop, n):
    """Record index (into the flat records) of each neuron's first spike in population
    ``pop``, shape ``(B, n)``; -1 where the neuron is silent."""
    B = rec_off.shape[0] - 1
    out = np.full((B, n), -1, dtype=np.int64)
    for s in range(B):
        for k in range(rec_off[s], rec_off[s + 1]):
            if rec_p[k] == pop and out[s, rec_i[k]] < 0:
                out[s, rec_i[k]] = k
    return out


@njit(inline="always", **_JIT)
def _max_voltage_chunk(c, chunk, P, W, q, mask, rec, rec_off, in_t, in_id, in_off, t_max,
                       out_f, out_k):
    """:func:`max_voltage_chunks` for chunk ``c``."""
    B, n = mask.shape
    npop = P.pop_size.shape[0]
    v, t, d = np.empty(n), np.empty(n), np.empty(n)
    kind = np.empty(n, dtype=np.int64)
    for s in range(c * chunk, min(B, (c + 1) * chunk)):
        sel = np.flatnonzero(mask[s])
        if sel.shape[0] == 0:
            continue
        a, b, ia, ib = rec_off[s], rec_off[s + 1], in_off[s], in_off[s + 1]
        first, last, idx = by_population(rec[1][a:b], rec[0][a:b], npop)
        at, aj, am, _, ag = arrivals_into(P, q, t_max, in_t[ia:ib], in_id[ia:ib],
                                          rec[0][a:b], rec[2][a:b], first, last, idx)
        max_voltage_neurons(P, W, q, sel, at, aj, am, ag, t_max, v, t, kind, d)
        for u in range(sel.shape[0]):
            out_f[s, sel[u], 0], out_f[s, sel[u], 1], out_f[s, sel[u], 2] = v[u], t[u], d[u]
            out_k[s, sel[u]] = kind[u]


@njit(**_JIT)
def max_voltage_chunks(c0, c1, cstep, chunk, P, W, q, mask, rec, rec_off, in_t, in_id,
                       in_off, t_max, out_f, out_k):
    """Exact maximum of V over ``[0, t_max]`` of the neurons of population ``q`` selected by
    ``mask`` (B, n), for the samples of chunks ``c0, c0 + cstep, ... < c1``: ``out_f[b, n] =
    (value, time, vdot_left)`` and ``out_k[b, n]`` the kind (see
    :mod:`eventgrad.event.voltage_max`)."""
    for c in range(c0, c1, cstep):
        _max_voltage_chunk(c, chunk, P, W, q, mask, rec, rec_off, in_t, in_id, in_off, t_max,
                           out_f, out_k)

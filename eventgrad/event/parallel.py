"""One ``prange`` launch per chunk runner of :mod:`eventgrad.event.batch` (used by
:func:`~eventgrad.event.batch.run_chunks` with numba's OpenMP or TBB threading layer).

Each iteration of the ``prange`` runs one chunk with the chunk runner's own body (the inlined
``_*_chunk`` functions of :mod:`~eventgrad.event.batch`, which call the engines' per-sample
functions directly: one compiled entry point per runner, not two), so every chunk writes the
same outputs as on a thread pool and results do not depend on the threads.

numba's parallel loops cannot hand a tuple of arrays (the plan, the records, the probes) to
their threads, only arrays and scalars: so each launch takes the tuples apart before the loop
and puts them together again inside.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from . import general, layered
from .batch import _backward_chunk, _forward_chunk, _max_voltage_chunk
from .plan import PlanArrays

__all__ = ["LAUNCH"]

_JIT = {"cache": True, "nogil": True, "parallel": True}


@njit(**_JIT)
def _forward_layered(n_chunks, P, W, in_t, in_id, in_off, t_max, max_events, first_only, track,
                     chunk, cap, buf_f, buf_i, cnt, status, di, df):
    (a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19,
     a20, a21, a22, a23) = P
    for i in prange(n_chunks):
        c = np.int64(i)          # (prange's index is unsigned)
        Q = PlanArrays(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16,
                       a17, a18, a19, a20, a21, a22, a23)
        _forward_chunk(layered, c, Q, W, in_t, in_id, in_off, t_max, max_events, first_only,
                       track, chunk, cap, buf_f, buf_i, cnt, status, di, df)


@njit(**_JIT)
def _forward_general(n_chunks, P, W, in_t, in_id, in_off, t_max, max_events, first_only, track,
                     chunk, cap, buf_f, buf_i, cnt, status, di, df):
    (a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19,
     a20, a21, a22, a23) = P
    for i in prange(n_chunks):
        c = np.int64(i)          # (prange's index is unsigned)
        Q = PlanArrays(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16,
                       a17, a18, a19, a20, a21, a22, a23)
        _forward_chunk(general, c, Q, W, in_t, in_id, in_off, t_max, max_events, first_only,
                       track, chunk, cap, buf_f, buf_i, cnt, status, di, df)


@njit(**_JIT)
def _backward_layered(n_chunks, P, W, rec, rec_off, g_t, in_t, in_id, in_off, t_max, pr, pr_off,
                      chunk, gw, gd, g_in, g_out, n_graz):
    (a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19,
     a20, a21, a22, a23) = P
    r0, r1, r2, r3, r4 = rec
    q0, q1, q2, q3, q4, q5, q6 = pr
    for i in prange(n_chunks):
        c = np.int64(i)          # (prange's index is unsigned)
        Q = PlanArrays(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16,
                       a17, a18, a19, a20, a21, a22, a23)
        _backward_chunk(layered, c, Q, W, (r0, r1, r2, r3, r4), rec_off, g_t, in_t,
                        in_id, in_off, t_max, (q0, q1, q2, q3, q4, q5, q6), pr_off, chunk,
                        gw, gd, g_in, g_out, n_graz)


@njit(**_JIT)
def _backward_general(n_chunks, P, W, rec, rec_off, g_t, in_t, in_id, in_off, t_max, pr, pr_off,
                      chunk, gw, gd, g_in, g_out, n_graz):
    (a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19,
     a20, a21, a22, a23) = P
    r0, r1, r2, r3, r4 = rec
    q0, q1, q2, q3, q4, q5, q6 = pr
    for i in prange(n_chunks):
        c = np.int64(i)          # (prange's index is unsigned)
        Q = PlanArrays(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16,
                       a17, a18, a19, a20, a21, a22, a23)
        _backward_chunk(general, c, Q, W, (r0, r1, r2, r3, r4), rec_off, g_t, in_t,
                        in_id, in_off, t_max, (q0, q1, q2, q3, q4, q5, q6), pr_off, chunk,
                        gw, gd, g_in, g_out, n_graz)


@njit(**_JIT)
def _max_voltage(n_chunks, chunk, P, W, q, mask, rec, rec_off, in_t, in_id, in_off, t_max,
                 out_f, out_k):
    (a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19,
     a20, a21, a22, a23) = P
    r0, r1, r2, r3, r4 = rec
    for i in prange(n_chunks):
        c = np.int64(i)          # (prange's index is unsigned)
        Q = PlanArrays(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16,
                       a17, a18, a19, a20, a21, a22, a23)
        _max_voltage_chunk(c, chunk, Q, W, q, mask, (r0, r1, r2, r3, r4), rec_off, in_t, in_id,
                           in_off, t_max, out_f, out_k)


#: The parallel launch of each chunk runner, by the runner's name: ``LAUNCH[name](n_chunks,
#: *args)`` does what ``runner(0, n_chunks, 1, *args)`` does, the chunks on numba's threads.
LAUNCH = {"forward_chunks_layered": _forward_layered, "forward_chunks_general": _forward_general,
          "backward_chunks_layered": _backward_layered,
          "backward_chunks_general": _backward_general, "max_voltage_chunks": _max_voltage}

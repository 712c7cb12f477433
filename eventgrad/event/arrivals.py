"""The synaptic arrivals into one population, rebuilt from the spikes that cause them.

An arrival is a presynaptic spike (an input spike or a recorded LIF spike) reaching the
neurons of one projection after one of its delays. For population ``q`` the compiled builder
:func:`arrivals_into` lists every arrival at ``t <= t_max`` as ``(time, projection j,
presynaptic neuron m, tag, group)``, sorted by time (stable: ties keep projection order, then
the order of the presynaptic spikes), where ``tag`` names the cause (``s >= 0``: record ``s``;
``-(i + 1)``: input spike ``i``) and ``group`` the arrival group of the plan (which neurons of
``q`` it reaches: all when ``P.grp_all[group]``, else the plan's ``post_idx`` of the group).
The layered engine, its adjoint and the maximum-of-V readout walk this list; every distinct
arrival time is an interval edge of the whole population.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["arrivals_into", "by_population", "is_sorted", "stable_order"]

_JIT = {"cache": True, "nogil": True}


@njit(**_JIT)
def stable_order(keys, n):
    """The stable ascending order of ``keys[:n]`` by insertion sort: ``O(n + inversions)``,
    for keys that are nearly sorted already (records in event order, arrivals of one
    projection)."""
    o = np.arange(n)
    for i in range(1, n):
        j, oi, ki = i, o[i], keys[o[i]]
        while j > 0 and keys[o[j - 1]] > ki:
            o[j] = o[j - 1]
            j -= 1
        o[j] = oi
    return o


@njit(**_JIT)
def by_population(rec_p, rec_t, npop):
    """Records grouped by population, each group in time order.

    Returns ``(first, last, idx)``: the records of population ``p`` are
    ``idx[first[p]:last[p]]`` (indices into the record arrays), sorted by time (stable).
    """
    n = rec_p.shape[0]
    order = np.arange(n) if is_sorted(rec_t, n) else stable_order(rec_t, n)
    start = np.zeros(npop + 1, dtype=np.int64)
    for k in range(n):
        start[rec_p[k] + 1] += 1
    for p in range(npop):
        start[p + 1] += start[p]
    pos = start[:npop].copy()
    idx = np.empty(n, dtype=np.int64)
    for u in range(n):
        k = order[u]
        p = rec_p[k]
        idx[pos[p]] = k
        pos[p] += 1
    return start[:npop].copy(), start[1:].copy(), idx


@njit(**_JIT)
def is_sorted(a, n):
    for k in range(1, n):
        if a[k] < a[k - 1]:
            return False
    return True


@njit(**_JIT)
def _count(P, q, in_n, first, last):
    total = 0
    for jj in range(P.in_ptr[q], P.in_ptr[q + 1]):
        j = P.in_proj[jj]
        s = P.proj_pre[j]
        n_src = in_n if s < 0 else last[s] - first[s]
        total += n_src * (P.grp_ptr[P.row_ptr[j] + P.proj_npre[j]] - P.grp_ptr[P.row_ptr[j]])
    return total


@njit(**_JIT)
def arrivals_into(P, q, t_max, in_t, in_id, rec_t, rec_i, first, last, idx):
    """Every arrival into population ``q`` at ``t <= t_max``, sorted by time.

    ``in_t, in_id``: the sample's input spikes (time order); the spikes of population ``p``
    are records ``idx[first[p]:last[p]]`` (time order; see :func:`by_population`).
    Returns ``(t, j, m, tag, grp)`` arrays of equal length (see the module docs).
    """
    cap = _count(P, q, in_t.shape[0], first, last)
    at = np.empty(cap)
    aj = np.empty(cap, dtype=np.int64)
    am = np.empty(cap, dtype=np.int64)
    atag = np.empty(cap, dtype=np.int64)
    ag = np.empty(cap, dtype=np.int64)
    c = 0
    for jj in range(P.in_ptr[q], P.in_ptr[q + 1]):
        j = P.in_proj[jj]
        s = P.proj_pre[j]
        n_src = in_t.shape[0] if s < 0 else last[s] - first[s]
        for u in range(n_src):
            if s < 0:
                t, m, tag = in_t[u], in_id[u], -(u + 1)
            else:
                k = idx[first[s] + u]
                t, m, tag = rec_t[k], rec_i[k], k
            r = P.row_ptr[j] + m
            for g in range(P.grp_ptr[r], P.grp_ptr[r + 1]):
                a = t + P.grp_delay[g]
                if a <= t_max:
                    at[c] = a
                    aj[c] = j
                    am[c] = m
                    atag[c] = tag
                    ag[c] = g
                    c += 1
    if is_sorted(at, c):
        return at[:c], aj[:c], am[:c], atag[:c], ag[:c]
    o = stable_order(at, c)
    return at[o], aj[o], am[o], atag[o], ag[o]

"""The plan: a network as flat arrays for the compiled engines, built once and cached.

One :class:`Plan` serves every engine. It holds the structure (populations, projections,
outgoing projections per source, incoming projections per population, a topological order when
there is one) and the arrival groups (for each projection and presynaptic neuron, one group per
distinct delay, with the postsynaptic neurons it reaches), in a :class:`PlanArrays` named tuple
that the compiled code reads by field name, plus the weights as one flat array ``W``.

A plan is cached on the network and rebuilt only when the structure or the delays change
(:attr:`eventgrad.Network.structure_version`, :attr:`eventgrad.Projection.delays_version`);
new weights give a new plan object that shares the structure (:meth:`Plan.with_weights`), so an
older result keeps the weights it was computed with.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["PlanArrays", "Plan", "plan_for"]


class PlanArrays(NamedTuple):
    """Structure of a network as flat arrays (``P`` in the compiled code).

    Populations ``p = 0..npop-1`` (neurons ``pop_off[p]..pop_off[p+1]`` globally); projections
    ``j`` with weights ``W[proj_w_off[j] + m * n_post + n]``; sources ``-1`` (the input) to
    ``npop - 1``. Arrival groups of projection ``j``, presynaptic neuron ``m``:
    ``grp_ptr[row_ptr[j] + m] .. grp_ptr[row_ptr[j] + m + 1]``; group ``k`` has delay
    ``grp_delay[k]`` (ms) and reaches every postsynaptic neuron (``grp_all[k]``) or
    ``post_idx[post_ptr[k]:post_ptr[k+1]]`` (sorted).
    """

    pop_size: np.ndarray      # (npop,) int64
    pop_off: np.ndarray       # (npop + 1,) int64
    p_tm: np.ndarray          # (npop,) float64, ms
    p_ts: np.ndarray          # (npop,) float64, ms
    p_g: np.ndarray           # (npop,) float64, 1/tau_syn - 1/tau_mem
    p_th: np.ndarray          # (npop,) float64
    p_vr: np.ndarray          # (npop,) float64
    p_tref: np.ndarray        # (npop,) float64, ms
    proj_pre: np.ndarray      # (nproj,) int64, source (-1 = input)
    proj_post: np.ndarray     # (nproj,) int64
    proj_npre: np.ndarray     # (nproj,) int64
    proj_npost: np.ndarray    # (nproj,) int64
    proj_w_off: np.ndarray    # (nproj + 1,) int64
    src_ptr: np.ndarray       # (npop + 2,) int64: outgoing projections of source s at
    src_proj: np.ndarray      # src_proj[src_ptr[s + 1]:src_ptr[s + 2]]
    in_ptr: np.ndarray        # (npop + 1,) int64: incoming projections of population p at
    in_proj: np.ndarray       # in_proj[in_ptr[p]:in_ptr[p + 1]], in projection order
    topo: np.ndarray          # (npop,) int64 topological order (valid if acyclic)
    row_ptr: np.ndarray       # (nproj,) int64
    grp_ptr: np.ndarray       # (nrows + 1,) int64
    grp_delay: np.ndarray     # (ngroups,) float64, ms
    grp_all: np.ndarray       # (ngroups,) bool
    post_ptr: np.ndarray      # (ngroups + 1,) int64
    post_idx: np.ndarray      # int64


def _i64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def _offsets(sizes) -> np.ndarray:
    out = np.zeros(len(sizes) + 1, dtype=np.int64)
    np.cumsum(sizes, out=out[1:])
    return out


def _topological_order(npop: int, edges: list[tuple[int, int]]) -> list[int] | None:
    """Kahn's algorithm (smallest index first); None if the populations form a cycle."""
    indeg = [0] * npop
    succ: list[list[int]] = [[] for _ in range(npop)]
    for a, b in edges:
        succ[a].append(b)
        indeg[b] += 1
    ready = sorted(p for p in range(npop) if indeg[p] == 0)
    order = []
    while ready:
        p = ready.pop(0)
        order.append(p)
        for q in succ[p]:
            indeg[q] -= 1
            if indeg[q] == 0:
                ready.append(q)
                ready.sort()
    return order if len(order) == npop else None


def _groups(delays: list[np.ndarray]):
    """Arrival groups: one per distinct delay of each (projection, presynaptic) row."""
    row_ptr, grp_ptr, grp_delay, grp_all, post_ptr, post_idx = [], [0], [], [], [0], []
    for d in delays:
        row_ptr.append(len(grp_ptr) - 1)
        for row in d:
            if np.all(row == row[0]):
                grp_delay.append(float(row[0]))
                grp_all.append(True)
                post_ptr.append(len(post_idx))
            else:
                for u in np.unique(row):
                    grp_delay.append(float(u))
                    grp_all.append(False)
                    post_idx.extend(np.flatnonzero(row == u).tolist())
                    post_ptr.append(len(post_idx))
            grp_ptr.append(len(grp_delay))
    return (_i64(row_ptr), _i64(grp_ptr), np.asarray(grp_delay, dtype=np.float64),
            np.asarray(grp_all, dtype=np.bool_), _i64(post_ptr), _i64(post_idx))


def _flat_weights(weights) -> np.ndarray:
    if not len(weights):
        return np.zeros(0)
    return np.concatenate([np.asarray(w, dtype=np.float64).ravel() for w in weights])


def _frozen(a) -> np.ndarray:
    a = np.array(a, dtype=np.float64)
    a.flags.writeable = False
    return a


class Plan:
    """A network's structure (:attr:`arrays`), weights (:attr:`W`) and engine facts.

    Attributes
    ----------
    arrays : PlanArrays
    W : ndarray, float64 — all weights, projection after projection, row-major (read-only)
    weights, delays : lists of read-only ``(n_pre, n_post)`` arrays aligned with
        ``network.projections`` (``weights`` are views of ``W``; delays in ms)
    acyclic : bool — the populations have a topological order (no recurrent loop)
    uniform_rows : bool — every presynaptic neuron reaches all its postsynaptic neurons with
        one delay (per projection row), so every neuron of a population sees the same arrival
        times
    layered : bool — ``acyclic and uniform_rows``: the layered fast path applies
    """

    def __init__(self, network, weights, delays) -> None:
        pops = network.populations
        projs = network.projections
        npop = len(pops)
        srcs = [-1 if p.pre is network.input else p.pre.index for p in projs]
        posts = [p.post.index for p in projs]
        src_proj = [j for s in range(-1, npop) for j in range(len(projs)) if srcs[j] == s]
        in_proj = [j for q in range(npop) for j in range(len(projs)) if posts[j] == q]
        order = _topological_order(npop, [(s, q) for s, q in zip(srcs, posts) if s >= 0])
        groups = _groups(delays)
        self.acyclic = order is not None
        self.uniform_rows = bool(np.all(groups[3]))
        self.layered = self.acyclic and self.uniform_rows
        self.arrays = PlanArrays(
            pop_size=_i64([p.size for p in pops]),
            pop_off=_offsets([p.size for p in pops]),
            p_tm=np.array([p.neuron.tau_mem for p in pops], dtype=np.float64),
            p_ts=np.array([p.neuron.tau_syn for p in pops], dtype=np.float64),
            p_g=np.array([p.neuron.g for p in pops], dtype=np.float64),
            p_th=np.array([p.neuron.threshold for p in pops], dtype=np.float64),
            p_vr=np.array([p.neuron.v_reset for p in pops], dtype=np.float64),
            p_tref=np.array([p.neuron.t_ref for p in pops], dtype=np.float64),
            proj_pre=_i64(srcs), proj_post=_i64(posts),
            proj_npre=_i64([p.pre.size for p in projs]),
            proj_npost=_i64([p.post.size for p in projs]),
            proj_w_off=_offsets([p.pre.size * p.post.size for p in projs]),
            src_ptr=_offsets([srcs.count(s) for s in range(-1, npop)]), src_proj=_i64(src_proj),
            in_ptr=_offsets([posts.count(q) for q in range(npop)]), in_proj=_i64(in_proj),
            topo=_i64(order if order is not None else range(npop)),
            row_ptr=groups[0], grp_ptr=groups[1], grp_delay=groups[2], grp_all=groups[3],
            post_ptr=groups[4], post_idx=groups[5])
        self.shapes = [p.shape for p in projs]
        self.delays = [_frozen(d) for d in delays]
        self._set_weights(weights)
        # largest spike count per sample seen (sizes the chunk buffers), shared by the plans
        # of this structure that with_weights makes
        self._max_records = [0]

    def _set_weights(self, weights) -> None:
        self.W = _flat_weights(weights)
        self.W.flags.writeable = False
        self.weights = self.split(self.W)

    def with_weights(self, weights) -> Plan:
        """A plan for the same structure and delays with other weights (this one unchanged)."""
        other = object.__new__(Plan)
        other.__dict__.update(self.__dict__)
        other._set_weights(weights)
        return other

    def groups(self, j: int, m: int) -> list[tuple[float, np.ndarray | None]]:
        """Arrival groups of projection ``j``, presynaptic neuron ``m``: ``(delay in ms,
        postsynaptic neurons or None for all)`` (the plan's arrays, for the Python engine)."""
        A = self.arrays
        r = A.row_ptr[j] + m
        return [(float(A.grp_delay[g]), None if A.grp_all[g] else
                 A.post_idx[A.post_ptr[g]:A.post_ptr[g + 1]])
                for g in range(A.grp_ptr[r], A.grp_ptr[r + 1])]

    def split(self, flat: np.ndarray) -> list[np.ndarray]:
        """A flat per-synapse array (like :attr:`W`) as one ``(n_pre, n_post)`` array per
        projection."""
        off = self.arrays.proj_w_off
        return [flat[off[j]:off[j + 1]].reshape(sh) for j, sh in enumerate(self.shapes)]

    @property
    def max_records(self) -> int:
        """The largest spike count of one sample seen with this structure."""
        return self._max_records[0]

    def note_records(self, n: int) -> None:
        """Remember the largest per-sample spike count."""
        self._max_records[0] = max(self._max_records[0], n)


def plan_for(network, weights=None, delays=None) -> Plan:
    """The network's :class:`Plan` with ``weights`` (default: the network's current weights).

    Cached on the network and rebuilt only when its structure or its delays change; ``delays``
    that differ from the network's own give an uncached plan.
    """
    if delays is not None:
        own = [p.delays for p in network.projections]
        if len(delays) != len(own) or any(not np.array_equal(a, b) for a, b in zip(delays, own)):
            w = [p.weights for p in network.projections] if weights is None else weights
            return Plan(network, w, delays)
    projs = network.projections
    key = (network.structure_version, tuple(p.delays_version for p in projs))
    wkey = tuple(p.weights_version for p in projs)
    cached = getattr(network, "_plan_cache", None)
    if cached is None or cached[0] != key:
        base = Plan(network, [p.weights for p in projs], [p.delays for p in projs])
        cached = network._plan_cache = [key, base, wkey, base]
    if weights is not None:
        return cached[1].with_weights(weights)
    if cached[2] != wkey:
        cached[2], cached[3] = wkey, cached[1].with_weights([p.weights for p in projs])
    return cached[3]

"""The feed-forward engine of the time-stepped path: a population at a time, whole window.

When every projection between LIF populations runs from a lower population index to a higher
one (no recurrent loop), a population's input over the whole window is known before it runs:
input spikes, and the spikes of the populations before it. So this engine runs population by
population instead of step by step. Each population is one autograd node:

* forward: what arrives at each step, ``A_I`` and ``A_U`` ``(n_steps + 1, batch, n)``
  (current, and voltage from input spikes' sub-step offsets), is a few matrix products over
  all steps at once; then the neurons' time loop is one compiled call
  (:func:`eventgrad.discrete.kernels.forward`);
* backward: the hand-written reverse of the step (:func:`~eventgrad.discrete.kernels.backward`)
  gives the gradients with respect to ``A_I`` and ``A_U``, and from them those of the weights
  and of the presynaptic spikes (matrix products again).

The result is the same :class:`~eventgrad.discrete.grid.EngineOutput` the general engine
(torch, step by step) gives, with the same options; the two are cross-tested (identical
spikes, float64 gradients to 1e-12 relative).

Input spikes arrive at few steps: they enter as a compact matrix of the (step, sample) rows
that carry any. Spikes of LIF populations enter as the dense spike tensor (its surrogate
gradient is nonzero where no spike is). Large arrays are allocated by numpy, whose freed
memory is reused without new page faults (torch's large tensors fault in on every call, which
cost as much as the time loop here).
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass

import numpy as np
import torch

from .._constants import SURROGATES
from ..event import compile
from ..model.network import InputPopulation, Network
from . import kernels
from .grid import EngineOutput, StepOptions, arrival_steps, lif_delays, step_constants
from .surrogates import Surrogate

__all__ = ["applies", "run", "PopulationSpec", "InputTerm", "SpikeTerm", "PopulationPlan",
           "PopulationRun", "population"]


with open(kernels.__file__, "rb") as _f:       # (its kernels' sources, for the compile notice)
    _KERNELS_HASH = hashlib.sha256(_f.read()).hexdigest()[:12]


def applies(network: Network) -> bool:
    """Whether every LIF-to-LIF projection runs from a lower population index to a higher one
    (so that each population's input is known before it runs)."""
    return all(isinstance(pr.pre, InputPopulation) or pr.pre.index < pr.post.index
               for pr in network.projections)


@dataclass(frozen=True)
class PopulationSpec:
    """What the compiled loop of one population needs besides its input.

    ``consts``: ``(alpha, beta, gain, threshold, v_reset)`` (see
    :func:`eventgrad.discrete.grid.step_constants`); ``ref_steps``: refractory steps;
    ``spiking``: a finite threshold; ``dt``, ``t_max`` (ms) and the rest are the run's
    options."""

    consts: tuple
    dt: float
    ref_steps: int
    spiking: bool
    reset: str
    detach_reset: bool
    interpolate: bool
    surrogate: Surrogate
    t_max: float

    def constants(self, dtype: np.dtype) -> np.ndarray:
        return np.array(self.consts, dtype=dtype)


@dataclass(frozen=True)
class InputTerm:
    """The arrivals of an input projection's synapses with one delay: on the flat rows
    ``step * batch + sample`` listed in ``rows``, each input neuron adds ``X_I`` to the current
    and ``X_U`` to the voltage ``(len(rows), n_pre)``, through weights ``w`` (an index into
    the node's tensors) masked by ``mask`` (None: every synapse has this delay)."""

    rows: torch.Tensor
    X_I: torch.Tensor
    X_U: torch.Tensor
    w: int
    mask: torch.Tensor | None


@dataclass(frozen=True)
class SpikeTerm:
    """Spikes of a LIF population (tensor ``s`` of the node) through weights ``w`` masked by
    ``mask``, ``k`` steps late: ``A_I[m] += S[m - k] @ W`` for ``m - k >= 1``."""

    s: int
    k: int
    w: int
    mask: torch.Tensor | None


@dataclass(frozen=True)
class PopulationPlan:
    """One population's node: its loop, the shape ``(n_steps + 1, batch, n)``, its terms and
    how many of the node's tensors are weights (the rest are presynaptic spikes)."""

    spec: PopulationSpec
    shape: tuple
    inputs: tuple
    spikes: tuple
    n_weights: int


@dataclass(frozen=True)
class PopulationRun:
    """One population over the grid: ``S`` spikes (0/1) ``(n_steps + 1, batch, n)``;
    ``first`` first-spike times (ms, inf where none) and ``vmax`` the maximum of U over the
    grid (from 0), each ``(batch, n)``; ``U`` the potential after the resets ``(n_steps + 1,
    batch, n)`` when recorded (else empty); ``spike_cols`` (``sample * n + neuron``) and
    ``spike_times`` (ms) of every spike within the window, in step then column order. ``S``,
    ``first`` and ``vmax`` are in the autograd graph when a weight is."""

    S: torch.Tensor
    first: torch.Tensor
    vmax: torch.Tensor
    U: torch.Tensor
    spike_cols: np.ndarray
    spike_times: np.ndarray


class _Workspace:
    """Scratch arrays kept from one call to the next (a few of each shape and dtype), so
    that a large array is not faulted in by the kernel again on every call; only for arrays
    that die within the call."""

    def __init__(self, keep: int = 8) -> None:
        self._free: dict[tuple, list[np.ndarray]] = {}
        self._keep = keep
        self._lock = threading.Lock()        # (runs in several threads share it)

    def take(self, shape: tuple, dtype) -> np.ndarray:
        with self._lock:
            free = self._free.get((shape, np.dtype(dtype)))
            if free:
                return free.pop()
        return np.empty(shape, dtype)

    def give(self, *arrays: np.ndarray) -> None:
        with self._lock:
            for a in arrays:
                free = self._free.setdefault((a.shape, a.dtype), [])
                if len(free) < 2:
                    free.append(a)
            while len(self._free) > self._keep:
                self._free.pop(next(iter(self._free)))


_WORK = _Workspace()


def _masked(W: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return W if mask is None else W * mask


def _drive(plan: PopulationPlan, W: list, S: list) -> tuple[np.ndarray, np.ndarray]:
    """``A_I``, ``A_U`` as flat ``((n_steps + 1) * batch, n)`` workspace arrays (no
    autograd)."""
    T1, B, n = plan.shape
    dtype = torch.empty(0, dtype=W[0].dtype).numpy().dtype
    AI, AU = _WORK.take((T1 * B, n), dtype), _WORK.take((T1 * B, n), dtype)
    AI[:] = 0.0
    AU[:] = 0.0
    tI, tU = torch.from_numpy(AI), torch.from_numpy(AU)
    for t in plan.inputs:
        Wm = _masked(W[t.w], t.mask)
        tI.index_add_(0, t.rows, t.X_I @ Wm)
        tU.index_add_(0, t.rows, t.X_U @ Wm)
    for t in plan.spikes:
        if t.k + 1 < T1:
            pre = S[t.s][1:T1 - t.k].reshape((T1 - 1 - t.k) * B, -1)
            tI[(t.k + 1) * B:].addmm_(pre, _masked(W[t.w], t.mask))
    return AI, AU


def _forward(plan: PopulationPlan, AI: np.ndarray, AU: np.ndarray, record: bool) -> dict:
    """The compiled loop (:func:`kernels.forward`) on flat arrays; numpy outputs."""
    spec = plan.spec
    T1, B, n = plan.shape
    flat, dt = (T1, B * n), AI.dtype
    o = {"S": np.empty(flat, dt), "Q": np.empty(flat, dt),
         "U": np.empty(flat if record else (1, 1), dt), "code": np.empty(flat, np.int8),
         "first": np.empty(B * n, dt), "vmax": np.empty(B * n, dt),
         "first_step": np.empty(B * n, np.int64), "u_first": np.empty(B * n, dt)}
    o["cols"], o["times"] = kernels.forward(
        AI.reshape(flat), AU.reshape(flat), spec.constants(dt), spec.dt, spec.t_max,
        spec.ref_steps, kernels.RESETS.index(spec.reset), spec.spiking, spec.interpolate,
        record, o["S"], o["Q"], o["U"], o["code"], o["first"], o["first_step"], o["u_first"],
        o["vmax"])
    return o


class _Population(torch.autograd.Function):
    """``(weights..., presynaptic spikes...) -> (S, first, vmax, U, spike columns, spike
    times)`` of one population (the last three carry no gradient)."""

    @staticmethod
    def forward(ctx, plan: PopulationPlan, record: bool, *tensors):
        W, S = list(tensors[:plan.n_weights]), list(tensors[plan.n_weights:])
        AI, AU = _drive(plan, W, S)
        o = _forward(plan, AI, AU, record)
        _WORK.give(AI, AU)
        T1, B, n = plan.shape
        S_ = torch.from_numpy(o["S"].reshape(T1, B, n))
        U = torch.from_numpy(o["U"].reshape(T1, B, n) if record else o["U"][:0])
        first = torch.from_numpy(o["first"].reshape(B, n))
        vmax = torch.from_numpy(o["vmax"].reshape(B, n))
        cols, times = torch.from_numpy(o["cols"]), torch.from_numpy(o["times"])
        ctx.save_for_backward(*tensors)
        ctx.plan, ctx.o = plan, o
        ctx.mark_non_differentiable(U, cols, times)
        ctx.set_materialize_grads(False)
        return S_, first, vmax, U, cols, times

    @staticmethod
    def backward(ctx, gS, gfirst, gvmax, *_):
        plan, o = ctx.plan, ctx.o
        gAI, gAU = _backward_loop(plan, o, gS, gfirst, gvmax)
        tensors = ctx.saved_tensors
        grads = _term_grads(plan, list(tensors[:plan.n_weights]), list(tensors[plan.n_weights:]),
                            torch.from_numpy(gAI), torch.from_numpy(gAU), ctx.needs_input_grad[2:])
        _WORK.give(gAI, gAU)
        return (None, None, *grads)


def _backward_loop(plan: PopulationPlan, o: dict, gS, gfirst, gvmax):
    """The compiled reverse (:func:`kernels.backward`): ``gAI``, ``gAU`` as flat
    ``((n_steps + 1) * batch, n)`` workspace arrays."""
    spec = plan.spec
    T1, B, n = plan.shape
    flat, dt = (T1, B * n), o["Q"].dtype
    gAI, gAU = _WORK.take(flat, dt), _WORK.take(flat, dt)
    zeros = np.zeros(B * n, dt)
    kind, scale = SURROGATES.index(spec.surrogate.name), spec.surrogate.scale
    sig = np.zeros((1, 1), dt)
    if spec.spiking and (gS is not None or not spec.detach_reset):
        sig = _WORK.take(flat, dt)
        kernels.surrogate_grid(kind, scale, o["Q"], spec.constants(dt)[3], sig)
    kernels.backward(
        np.zeros((1, 1), dt) if gS is None else _np(gS).reshape(flat), gS is not None,
        zeros if gfirst is None else _np(gfirst).reshape(-1),
        zeros if gvmax is None else _np(gvmax).reshape(-1),
        o["S"], o["Q"], o["code"], o["first_step"], o["u_first"], spec.constants(dt), spec.dt,
        kernels.RESETS.index(spec.reset), spec.detach_reset, spec.spiking, spec.interpolate,
        kind, scale, sig, gAI, gAU)
    if sig.shape == flat:
        _WORK.give(sig)
    return gAI.reshape(T1 * B, n), gAU.reshape(T1 * B, n)


def _term_grads(plan: PopulationPlan, W: list, S: list, gAI, gAU, needs) -> list:
    """The gradients of the node's tensors (weights, then presynaptic spikes) from those of
    ``A_I`` and ``A_U`` (flat); None where not needed."""
    T1, B, _ = plan.shape
    gW = [None] * len(W)
    gS = [None] * len(S)

    def add_w(i, g, mask):
        g = g if mask is None else g * mask
        gW[i] = g if gW[i] is None else gW[i] + g

    for t in plan.inputs:
        if needs[t.w]:
            add_w(t.w, t.X_I.T @ gAI[t.rows] + t.X_U.T @ gAU[t.rows], t.mask)
    for t in plan.spikes:
        if t.k + 1 >= T1:
            continue
        g = gAI[(t.k + 1) * B:]
        pre = S[t.s][1:T1 - t.k].reshape(g.shape[0], -1)
        if needs[t.w]:
            add_w(t.w, pre.T @ g, t.mask)
        if needs[len(W) + t.s]:
            if gS[t.s] is None:
                gS[t.s] = torch.from_numpy(np.zeros(S[t.s].shape, g.numpy().dtype))
            gS[t.s][1:T1 - t.k].reshape(g.shape[0], -1).addmm_(
                g, _masked(W[t.w], t.mask).T)
    return gW + gS


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().contiguous().numpy()


def population(plan: PopulationPlan, W: list, S: list, record: bool = False) -> PopulationRun:
    """One population from the weights ``W`` and presynaptic spikes ``S`` its terms refer
    to (U kept if ``record``); in the autograd graph when any of them is."""
    S_, first, vmax, U, cols, times = _Population.apply(plan, record, *W, *S)
    return PopulationRun(S_, first, vmax, U, cols.numpy(), times.numpy())


def spike_lists(r: PopulationRun) -> list:
    """Per sample ``(times, ids)`` (numpy) of a population's spikes, in step then neuron
    order, times as the first-spike times are stored (in the run's dtype)."""
    _, B, n = r.S.shape
    b, i = np.divmod(r.spike_cols, n)
    t = r.spike_times.astype(r.first.detach().numpy().dtype).astype(np.float64)
    order = np.argsort(b, kind="stable")
    b, i, t = b[order], i[order], t[order]
    cut = np.searchsorted(b, np.arange(B + 1))
    return [(t[cut[s]:cut[s + 1]], i[cut[s]:cut[s + 1]]) for s in range(B)]


def _spec(pop, o: StepOptions) -> PopulationSpec:
    alpha, beta, gain, theta, v_r, ref_steps = step_constants(pop.neuron, o.dt, o.update)
    return PopulationSpec((alpha, beta, gain, theta, v_r), o.dt, ref_steps, theta != np.inf,
                          o.reset, o.detach_reset, o.interpolate, o.surrogate, o.t_max)


def _input_terms(pr, batch: list, w: int, o: StepOptions, n_steps: int) -> list[InputTerm]:
    """An input projection's arrivals, one term per distinct delay: the current
    ``e^{-s/tau_syn}`` and voltage ``k(s)`` an input spike adds at the step it lands on
    (``s``: its sub-step offset, :func:`~eventgrad.discrete.grid.arrival_steps`)."""
    B, nrn = len(batch), pr.post.neuron
    times = np.concatenate([s.times for s in batch])
    ids = np.concatenate([s.ids for s in batch])
    sample = np.repeat(np.arange(B), [len(s) for s in batch])
    delays = np.unique(pr.delays)
    out = []
    for u in delays:
        a = times + u
        keep = a <= n_steps * o.dt
        m, off = arrival_steps(a[keep], o.dt, n_steps, o.inputs)
        rows, inv = np.unique(m * B + sample[keep], return_inverse=True)
        X_I = np.zeros((len(rows), pr.pre.size))
        X_U = np.zeros((len(rows), pr.pre.size))
        np.add.at(X_I, (inv, ids[keep]), np.exp(-off / nrn.tau_syn))
        np.add.at(X_U, (inv, ids[keep]), nrn.kernel(off))
        mask = None if len(delays) == 1 else torch.tensor(pr.delays == u, dtype=o.dtype)
        out.append(InputTerm(torch.from_numpy(rows), torch.tensor(X_I, dtype=o.dtype),
                             torch.tensor(X_U, dtype=o.dtype), w, mask))
    return out


def _plan(network: Network, q, batch: list, o: StepOptions, n_steps: int):
    """Population ``q``'s node: its plan, and which projections (weights) and presynaptic
    populations (spikes) its tensors are."""
    into = [pr for pr in network.projections if pr.post is q]
    projs = [pr.index for pr in into]
    pres = sorted({pr.pre.index for pr in into if not isinstance(pr.pre, InputPopulation)})
    inputs, spikes = [], []
    for w, pr in enumerate(into):
        if isinstance(pr.pre, InputPopulation):
            inputs += _input_terms(pr, batch, w, o, n_steps)
            continue
        terms = lif_delays(pr, o.dt, o.dtype)[0]
        spikes += [SpikeTerm(pres.index(p), k, w, None if len(terms) == 1 else mask)
                   for p, k, mask in terms]
    plan = PopulationPlan(_spec(q, o), (n_steps + 1, len(batch), q.size), tuple(inputs),
                          tuple(spikes), len(projs))
    return plan, projs, pres


def run(network: Network, batch: list, W: list, o: StepOptions, n_steps: int) -> EngineOutput:
    """The feed-forward engine: each population in index order, whole window at once (see the
    module docs); ``W`` one weight tensor per projection (in the graph if they require it)."""
    compile.announce(f"time-stepped engine ({str(o.dtype).replace('torch.', '')})",
                     key=f"time-stepped engine {o.dtype} {_KERNELS_HASH}")
    S: dict[int, torch.Tensor] = {}
    out = EngineOutput([], [], [], [] if o.record_voltage else None)
    for q in network.populations:
        plan, projs, pres = _plan(network, q, batch, o, n_steps)
        r = population(plan, [W[i] for i in projs], [S[p] for p in pres], o.record_voltage)
        S[q.index] = r.S
        out.first.append(r.first)
        out.vmax.append(r.vmax)
        out.spike_lists.append(spike_lists(r))
        if out.voltages is not None:
            out.voltages.append(r.U)
    return out

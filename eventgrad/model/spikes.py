"""Spike trains: validated, time-sorted (time, id) pairs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .._checks import TIMES_GRADIENT, float_array, positive

__all__ = ["Spikes"]


def _int_ids(raw: np.ndarray) -> np.ndarray:
    """Neuron ids (integer or integral float array) as int64, checked: integer-valued, >= 0
    and < 2**63. A bad id is reported as given (never as its int64 cast)."""
    if not raw.size:
        return raw.astype(np.int64)
    if raw.dtype.kind in "iu":
        if raw.dtype.kind == "i" and (raw < 0).any():
            raise ValueError(f"ids must be >= 0, got {raw[raw < 0][0].item()}")
        if raw.dtype.kind == "u" and raw.max() > np.iinfo(np.int64).max:
            raise ValueError(f"ids must be < 2**63, got {raw.max().item()}")
        return raw.astype(np.int64)
    f = raw.astype(np.float64)
    whole = np.isfinite(f) & (f == np.round(f))
    for bad, rule in ((~whole, "integers"), (f < 0, ">= 0"), (f >= 2.0 ** 63, "< 2**63")):
        if bad.any():
            raise ValueError(f"ids must be {rule}, got {raw[bad][0].item()!r}")
    return f.astype(np.int64)


class Spikes:
    """A set of spikes: float64 times (ms) and integer neuron ids, sorted by time.

    Parameters
    ----------
    times : array_like, shape (n,)
        Spike times in ms; finite and >= 0.
    ids : array_like, shape (n,)
        Neuron index of each spike; integers >= 0 (and < ``n_neurons`` if given).
    n_neurons : int, optional
        Number of neurons the ids refer to. When given, ids are checked against it.

    The spikes are sorted by time on construction with a stable sort, so spikes at equal times
    keep the order in which they were given. The arrays are read-only.
    """

    __slots__ = ("times", "ids", "n_neurons")

    def __init__(self, times, ids, n_neurons: int | None = None) -> None:
        t = float_array(times, "times", "real numbers", TIMES_GRADIENT)
        if getattr(ids, "requires_grad", False):
            raise TypeError("ids must be integers, got a torch tensor that requires grad")
        raw_ids = np.asarray(ids)
        if raw_ids.size and not (np.issubdtype(raw_ids.dtype, np.integer)
                                 or np.issubdtype(raw_ids.dtype, np.floating)):
            raise TypeError(f"ids must be integers, got {ids!r}")
        if t.ndim != 1:
            raise ValueError(f"times must be 1-D, got shape {t.shape}")
        if raw_ids.ndim != 1:
            raise ValueError(f"ids must be 1-D, got shape {raw_ids.shape}")
        if t.shape != raw_ids.shape:
            raise ValueError(
                f"times and ids must have the same length, got {t.shape[0]} and {raw_ids.shape[0]}"
            )
        idv = _int_ids(raw_ids)
        if t.size:
            finite = np.isfinite(t)
            if not finite.all():
                raise ValueError(f"times must be finite, got {t[~finite][0]!r}")
            if (t < 0).any():
                raise ValueError(f"times must be >= 0 ms, got {t[t < 0][0]!r}")
        if n_neurons is not None:
            if isinstance(n_neurons, (bool, np.bool_)) or not isinstance(
                    n_neurons, (int, np.integer)):
                raise TypeError(f"n_neurons must be an integer, got {n_neurons!r}")
            n_neurons = int(n_neurons)
            if n_neurons < 0:
                raise ValueError(f"n_neurons must be >= 0, got {n_neurons}")
            if idv.size and idv.max() >= n_neurons:
                raise ValueError(
                    f"ids must be < n_neurons={n_neurons}, got {int(idv.max())}"
                )
        order = np.argsort(t, kind="stable")
        self.times = t[order]
        self.ids = idv[order]
        self.times.flags.writeable = False
        self.ids.flags.writeable = False
        self.n_neurons = n_neurons

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_lists(cls, per_neuron: Sequence) -> Spikes:
        """Build from one array of spike times per neuron (neuron ``i`` is ``per_neuron[i]``)."""
        times, ids = [], []
        for i, ts in enumerate(per_neuron):
            a = np.atleast_1d(np.asarray(ts, dtype=np.float64))
            if a.ndim != 1:
                raise ValueError(f"per_neuron[{i}] must be 1-D, got shape {a.shape}")
            times.append(a)
            ids.append(np.full(a.shape, i, dtype=np.int64))
        if not times:
            return cls(np.empty(0), np.empty(0, dtype=np.int64), n_neurons=0)
        return cls(np.concatenate(times), np.concatenate(ids), n_neurons=len(per_neuron))

    @classmethod
    def from_dense(cls, dense, dt: float, t0: float = 0.0) -> Spikes:
        """Build from a dense ``(n_neurons, n_steps)`` array of spike counts.

        A count ``c`` in column ``j`` gives ``c`` spikes at time ``t0 + j * dt`` (the start of
        the bin). Counts must be non-negative integers.
        """
        a = np.asarray(dense)
        if a.ndim != 2:
            raise ValueError(f"dense must be 2-D (n_neurons, n_steps), got shape {a.shape}")
        dt = positive(dt, "dt")
        af = a.astype(np.float64)
        if not np.all(np.isfinite(af)) or np.any(af < 0) or np.any(af != np.round(af)):
            raise ValueError("dense must hold non-negative integer spike counts")
        counts = af.astype(np.int64)
        n, j = np.nonzero(counts)
        reps = counts[n, j]
        ids = np.repeat(n, reps)
        times = t0 + np.repeat(j, reps) * dt
        return cls(times, ids, n_neurons=a.shape[0])

    def to_dense(self, dt: float, t_max: float, n_neurons: int | None = None) -> np.ndarray:
        """Spike counts in bins ``[j dt, (j+1) dt)``; shape ``(n_neurons, ceil(t_max/dt))``.

        A spike at ``t >= n_steps * dt`` raises (nothing is dropped silently).
        """
        n = self.n_neurons if n_neurons is None else int(n_neurons)
        if n is None:
            n = int(self.ids.max()) + 1 if self.ids.size else 0
        dt = positive(dt, "dt")
        t_max_f = positive(t_max, "t_max", "ms")
        n_steps = int(np.ceil(t_max_f / dt))
        # bin j holds j*dt <= t < (j+1)*dt, with j*dt computed exactly as from_dense does
        bins = np.floor(self.times / dt).astype(np.int64)
        bins += ((bins + 1) * dt <= self.times).astype(np.int64)
        bins -= (bins * dt > self.times).astype(np.int64)
        if bins.size and bins.max() >= n_steps:
            raise ValueError(
                f"a spike at t={self.times[bins.argmax()]!r} ms lies beyond t_max={t_max!r} ms"
            )
        if self.ids.size and self.ids.max() >= n:
            raise ValueError(f"ids must be < n_neurons={n}, got {int(self.ids.max())}")
        out = np.zeros((n, n_steps), dtype=np.int64)
        np.add.at(out, (self.ids, bins), 1)
        return out

    def per_neuron(self, n_neurons: int | None = None) -> list[np.ndarray]:
        """Spike times of each neuron as a list of sorted arrays."""
        n = self.n_neurons if n_neurons is None else int(n_neurons)
        if n is None:
            n = int(self.ids.max()) + 1 if self.ids.size else 0
        return [self.times[self.ids == i] for i in range(n)]

    # ------------------------------------------------------------------ conveniences
    def __len__(self) -> int:
        return int(self.times.shape[0])

    def __repr__(self) -> str:
        return f"Spikes(n={len(self)}, n_neurons={self.n_neurons})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Spikes):
            return NotImplemented
        return (
            np.array_equal(self.times, other.times)
            and np.array_equal(self.ids, other.ids)
            and self.n_neurons == other.n_neurons
        )

    __hash__ = None  # type: ignore[assignment]

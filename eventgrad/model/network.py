"""Network description: populations of LIF neurons, the input population, projections.

A :class:`Network` is a plain, validated description (no simulation state). Any topology is
allowed: feed-forward layers, projections of a population onto itself, projections back to an
earlier population. Weights are dimensionless current jumps (``I += w`` on arrival), delays are
in ms (``>= 0``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .._checks import float_array
from .neuron import LIF

__all__ = ["Network", "Population", "InputPopulation", "Projection", "default_weight_init"]


class InputPopulation:
    """The network's input neurons: they emit the spikes given to :func:`eventgrad.simulate`."""

    name = "input"

    def __init__(self, size: int) -> None:
        self.size = _check_size("n_inputs", size)

    def __repr__(self) -> str:
        return f"InputPopulation(size={self.size})"


class Population:
    """A population of ``size`` identical LIF neurons (create with
    :meth:`Network.add_population`)."""

    def __init__(self, size: int, neuron: LIF, name: str, index: int) -> None:
        self.size = size
        self.neuron = neuron
        self.name = name
        self.index = index

    def __repr__(self) -> str:
        return f"Population({self.name!r}, size={self.size}, neuron={self.neuron})"


AnyPopulation = InputPopulation | Population

#: How a population is named in the API: the object, its index in ``network.populations``,
#: or its name (``Network.population`` resolves it).
PopKey = AnyPopulation | int | str


def _check_size(name: str, size) -> int:
    if isinstance(size, (bool, np.bool_)) or not isinstance(size, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {size!r}")
    if size < 1:
        raise ValueError(f"{name} must be >= 1, got {size}")
    return int(size)


def _as_weights(weights, shape: tuple[int, int], name: str = "weights") -> np.ndarray:
    w = float_array(weights, name)
    if w.shape != shape:
        raise ValueError(f"{name} must have shape (n_pre, n_post) = {shape}, got {w.shape}")
    bad = ~np.isfinite(w)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(f"{name} must be finite, got {w[i, j]!r} at [{i}, {j}]")
    return w


def _as_delays(delay, shape: tuple[int, int], name: str = "delay") -> np.ndarray:
    d = float_array(delay, name, "a real number or an array of them")
    if d.ndim == 0:
        d = np.full(shape, float(d))
    if d.shape != shape:
        raise ValueError(f"{name} must be a scalar or have shape (n_pre, n_post) = {shape}, "
                         f"got {d.shape}")
    bad = ~np.isfinite(d) | (d < 0)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(f"{name} must be finite and >= 0 ms, got {d[i, j]!r} at [{i}, {j}]")
    return d


def _frozen(a: np.ndarray) -> np.ndarray:
    """A read-only view of ``a`` (made read-only too): the view's ``writeable`` flag cannot be
    set back to True."""
    a.flags.writeable = False
    return a.view()


class Projection:
    """All-to-all synapses from ``pre`` to ``post`` with weights and delays.

    Attributes
    ----------
    pre : InputPopulation or Population
    post : Population
    weights : ndarray, shape (pre.size, post.size)
        Current jump (dimensionless) of each synapse; a zero weight is a synapse that does
        nothing (it still has a gradient).
    delays : ndarray, shape (pre.size, post.size)
        Transmission delay of each synapse in ms (>= 0).
    index : int
        Position in :attr:`Network.projections`.

    Assigning ``weights`` or ``delays`` validates the new values (shape, finiteness, sign).
    The arrays themselves are read-only views of read-only arrays (writing into them in place
    raises, and so does setting their ``writeable`` flag), so no value can bypass that
    validation; assign a new array (or use :meth:`Network.set_weights`) instead.
    ``weights_version`` and ``delays_version`` count the assignments (the engines' cached
    plans follow them).
    """

    def __init__(self, pre: AnyPopulation, post: Population, weights, delays, index: int) -> None:
        self.pre = pre
        self.post = post
        self.index = index
        self.weights_version = 0
        self.delays_version = 0
        self.weights = weights
        self.delays = delays

    @property
    def shape(self) -> tuple[int, int]:
        return (self.pre.size, self.post.size)

    @property
    def weights(self) -> np.ndarray:
        return self._weights

    @weights.setter
    def weights(self, value) -> None:
        self._weights = _frozen(_as_weights(value, self.shape,
                                            f"weights of projection {self.index}"))
        self.weights_version += 1

    @property
    def delays(self) -> np.ndarray:
        return self._delays

    @delays.setter
    def delays(self, value) -> None:
        self._delays = _frozen(_as_delays(value, self.shape,
                                          f"delays of projection {self.index}"))
        self.delays_version += 1

    def __repr__(self) -> str:
        return f"Projection({self.pre.name!r} -> {self.post.name!r}, shape={self.shape})"


class Network:
    """A network of LIF populations driven by ``n_inputs`` input neurons.

    Examples
    --------
    >>> import eventgrad as eg
    >>> net = eg.Network(2)
    >>> hidden = net.add_population(4, eg.LIF(tau_mem=20.0, tau_syn=5.0), name="hidden")
    >>> proj = net.connect(net.input, hidden, weights=[[1.0] * 4, [0.5] * 4], delay=1.0)
    """

    def __init__(self, n_inputs: int) -> None:
        self.input = InputPopulation(n_inputs)
        self._populations: list[Population] = []
        self._projections: list[Projection] = []
        #: Incremented by every change of structure (a population or projection added).
        self.structure_version = 0

    @property
    def populations(self) -> tuple[Population, ...]:
        """The LIF populations in the order they were added (the input is not among them)."""
        return tuple(self._populations)

    @property
    def projections(self) -> tuple[Projection, ...]:
        """The projections in the order they were made."""
        return tuple(self._projections)

    def add_population(self, size: int, neuron: LIF, name: str | None = None) -> Population:
        """Add ``size`` neurons with parameters ``neuron``; ``name`` defaults to ``"pop{i}"``."""
        size = _check_size("size", size)
        if not isinstance(neuron, LIF):
            raise TypeError(f"neuron must be an eventgrad.LIF, got {neuron!r}")
        index = len(self._populations)
        if name is None:
            name = f"pop{index}"
        if not isinstance(name, str) or not name:
            raise TypeError(f"name must be a non-empty string, got {name!r}")
        if name == "input" or any(p.name == name for p in self._populations):
            raise ValueError(f"name must be unique and not 'input', got {name!r}")
        pop = Population(size, neuron, name, index)
        self._populations.append(pop)
        self.structure_version += 1
        return pop

    def population(self, key: PopKey, arg: str = "pop") -> AnyPopulation:
        """Resolve a population given as object, index into :attr:`populations`, or name.

        ``arg`` is the argument name used in error messages.
        """
        try:
            return self._resolve(key)
        except (ValueError, KeyError, IndexError, TypeError) as e:
            msg = e.args[0] if e.args else str(e)
            if msg.startswith("pop:") and arg != "pop":
                msg = f"{arg}:" + msg[4:]
            raise type(e)(msg) from None

    def _resolve(self, key) -> AnyPopulation:
        if isinstance(key, InputPopulation):
            if key is not self.input:
                raise ValueError("pop: this input population belongs to another network")
            return key
        if isinstance(key, Population):
            if key.index >= len(self._populations) or self._populations[key.index] is not key:
                raise ValueError(f"pop: {key!r} belongs to another network")
            return key
        if isinstance(key, str):
            if key == "input":
                return self.input
            for p in self._populations:
                if p.name == key:
                    return p
            raise KeyError(f"pop: no population named {key!r}; names: "
                           f"{['input'] + [p.name for p in self._populations]}")
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            n = len(self._populations)
            if not -n <= key < n:
                raise IndexError(f"pop: index {key} out of range for {n} populations")
            return self._populations[key]
        raise TypeError(f"pop must be a population, an index or a name, got {key!r}")

    def connect(self, pre, post, weights, delay=0.0) -> Projection:
        """Connect ``pre`` to ``post`` all-to-all.

        Parameters
        ----------
        pre : population, index or name (``"input"`` or ``network.input`` for the inputs)
        post : population, index or name (not the input)
        weights : array_like, shape (pre.size, post.size)
        delay : float or array_like of shape (pre.size, post.size)
            Delays in ms, >= 0.
        """
        pre_p = self.population(pre, "pre")
        post_p = self.population(post, "post")
        if isinstance(post_p, InputPopulation):
            raise ValueError("post: the input population cannot receive projections")
        proj = Projection(pre_p, post_p, weights, delay, len(self._projections))
        self._projections.append(proj)
        self.structure_version += 1
        return proj

    def incoming(self, pop: Population) -> list[Projection]:
        """Projections whose ``post`` is ``pop``."""
        return [p for p in self._projections if p.post is pop]

    def outgoing(self, pop: AnyPopulation) -> list[Projection]:
        """Projections whose ``pre`` is ``pop``."""
        return [p for p in self._projections if p.pre is pop]

    def get_weights(self) -> list[np.ndarray]:
        """Copies of all projections' weights, aligned with :attr:`projections`."""
        return [p.weights.copy() for p in self._projections]

    def set_weights(self, weights: Sequence) -> None:
        """Set all projections' weights (a sequence aligned with :attr:`projections`)."""
        if len(weights) != len(self._projections):
            raise ValueError(f"weights must have {len(self._projections)} arrays, got "
                             f"{len(weights)}")
        for p, w in zip(self._projections, weights):
            p.weights = w

    def get_delays(self) -> list[np.ndarray]:
        """Copies of all projections' delays (ms), aligned with :attr:`projections`."""
        return [p.delays.copy() for p in self._projections]

    def set_delays(self, delays: Sequence) -> None:
        """Set all projections' delays (a sequence aligned with :attr:`projections`)."""
        if len(delays) != len(self._projections):
            raise ValueError(f"delays must have {len(self._projections)} arrays, got {len(delays)}")
        for p, d in zip(self._projections, delays):
            p.delays = d

    def copy(self) -> Network:
        """A deep copy (same structure, copied weights and delays)."""
        new = Network(self.input.size)
        for p in self._populations:
            new.add_population(p.size, p.neuron, p.name)
        for pr in self._projections:
            pre = "input" if isinstance(pr.pre, InputPopulation) else pr.pre.index
            new.connect(pre, pr.post.index, pr.weights.copy(), pr.delays.copy())
        return new

    def __repr__(self) -> str:
        pops = ", ".join(f"{p.name}[{p.size}]" for p in self._populations)
        return f"Network(inputs={self.input.size}; {pops}; {len(self._projections)} projections)"

    # ------------------------------------------------------------------ layered constructor
    @classmethod
    def feedforward(cls, sizes: Sequence[int], neuron, weights=None, delays=0.0,
                    seed=None) -> Network:
        """A layered network ``sizes[0] -> sizes[1] -> ... -> sizes[-1]``.

        Parameters
        ----------
        sizes : sequence of int
            ``[n_inputs, n_1, ..., n_out]`` (at least two entries).
        neuron : LIF or sequence of LIF
            One neuron model for all layers, or one per non-input layer.
        weights : sequence of arrays, optional
            One ``(sizes[i], sizes[i+1])`` array per layer; drawn by
            :func:`default_weight_init` (seeded by ``seed``) when omitted.
        delays : float, or sequence of (float or array)
            Delays in ms, one for all layers or one per layer.
        seed : int or numpy Generator, optional
        """
        sizes = list(sizes)
        if len(sizes) < 2:
            raise ValueError("sizes must have at least 2 entries (inputs and one layer), got "
                             f"{sizes}")
        n_layers = len(sizes) - 1
        neurons = [neuron] * n_layers if isinstance(neuron, LIF) else list(neuron)
        if len(neurons) != n_layers:
            raise ValueError(f"neuron must be one LIF or {n_layers} of them, got {len(neurons)}")
        if weights is not None and len(weights) != n_layers:
            raise ValueError(f"weights must have {n_layers} arrays, got {len(weights)}")
        if isinstance(delays, (int, float, np.integer, np.floating)) or (
                isinstance(delays, np.ndarray) and delays.ndim == 0):
            delays = [delays] * n_layers
        elif isinstance(delays, np.ndarray):
            raise ValueError("delays must be a scalar or a sequence with one entry per layer, "
                             f"got an array of shape {delays.shape}")
        if len(delays) != n_layers:
            raise ValueError(f"delays must be a scalar or have {n_layers} entries, got "
                             f"{len(delays)}")
        rng = np.random.default_rng(seed)
        net = cls(sizes[0])
        pre = "input"
        for i in range(n_layers):
            name = "output" if i == n_layers - 1 else f"hidden{i}" if n_layers > 2 else "hidden"
            pop = net.add_population(sizes[i + 1], neurons[i], name=name)
            n_pre = sizes[i] if i == 0 else net.populations[i - 1].size
            w = (default_weight_init(n_pre, pop.size, neurons[i], rng) if weights is None
                 else weights[i])
            net.connect(pre, pop, w, delays[i])
            pre = pop
        return net


def default_weight_init(n_pre: int, n_post: int, neuron: LIF, rng=None) -> np.ndarray:
    """Normal initial weights scaled to the neuron's PSP so that layers are active.

    With ``k_peak`` the peak of the PSP of a unit weight, the standard deviation is
    ``threshold / (sqrt(n_pre) * k_peak)`` and the mean half of it: a neuron whose ``n_pre``
    inputs all arrive together reaches about ``0.5 sqrt(n_pre)`` thresholds on average, and
    the spread gives every layer a mix of early, late and silent neurons.
    Shape ``(n_pre, n_post)``.
    """
    rng = np.random.default_rng(rng)
    k_peak = float(neuron.kernel(neuron.peak_time(0.0, 1.0)))
    std = neuron.threshold / (np.sqrt(n_pre) * k_peak)
    return rng.normal(0.5 * std, std, size=(n_pre, n_post))

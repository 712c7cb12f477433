"""eventgrad: exact event-based simulation and gradients for spiking networks of CuBa LIF neurons.

Units: time in ms, voltage and current dimensionless. The event path is float64 throughout.
``import eventgrad`` and the event path (simulate, results, gradients of the built-in losses)
do not import torch; the torch bridge (:mod:`eventgrad.torch`), the time-stepped path and
training do.
"""

from . import _moved, losses
from .event.adjoint import GrazingWarning, VoltageProbe, backward
from .event.engines import get_num_threads, set_num_threads
from .event.gradients import Gradients, value_and_grad
from .event.result import BatchResult, Diagnostics, SimulationResult, SpikeRecord
from .event.simulate import DEFAULT_MAX_EVENTS, ENGINES, EventLimitError, simulate
from .model.network import InputPopulation, Network, Population, Projection, default_weight_init
from .model.neuron import LIF
from .model.spikes import Spikes

__version__ = "0.1.0"

_moved.install()   # the module names from before the folders (eventgrad.tasks, ...)

__all__ = [
    "LIF",
    "Network",
    "Population",
    "InputPopulation",
    "Projection",
    "default_weight_init",
    "Spikes",
    "simulate",
    "EventLimitError",
    "DEFAULT_MAX_EVENTS",
    "ENGINES",
    "SimulationResult",
    "BatchResult",
    "SpikeRecord",
    "Diagnostics",
    "losses",
    "value_and_grad",
    "Gradients",
    "backward",
    "VoltageProbe",
    "GrazingWarning",
    "set_num_threads",
    "get_num_threads",
]

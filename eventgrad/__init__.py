"""eventgrad: exact event-based simulation and gradients for spiking networks of CuBa LIF neurons.

Units: time in ms, voltage and current dimensionless. The event path is float64 throughout.
"""

from .network import InputPopulation, Network, Population, Projection, default_weight_init
from .neuron import LIF
from .result import BatchResult, Diagnostics, SimulationResult, SpikeRecord
from .simulate import DEFAULT_MAX_EVENTS, EventLimitError, simulate
from .spikes import Spikes

__version__ = "0.1.0"

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
    "SimulationResult",
    "BatchResult",
    "SpikeRecord",
    "Diagnostics",
]

from . import losses  # noqa: E402
from .adjoint import GrazingWarning, VoltageProbe, backward  # noqa: E402
from .gradients import Gradients, value_and_grad  # noqa: E402

__all__ += ["losses", "value_and_grad", "Gradients", "backward", "VoltageProbe", "GrazingWarning"]

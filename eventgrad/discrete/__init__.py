"""The time-stepped path: the same networks on a grid of step ``dt``, with surrogate gradients
(:mod:`.timestepped`: the step, its options and their defaults), and the surrogate derivatives
(:mod:`.surrogates`). Torch underneath, float64 by default."""

from .timestepped import (
    DiscreteBatchResult,
    DiscreteDiagnostics,
    DiscreteResult,
    DiscreteRun,
    readout_tensor,
    run,
    simulate,
    value_and_grad,
)

__all__ = ["simulate", "value_and_grad", "DiscreteResult", "DiscreteBatchResult",
           "DiscreteDiagnostics", "DiscreteRun", "run", "readout_tensor"]

"""The order of simultaneous events: one table for the forward pass and its adjoint.

Events are sorted by ``(time, rank, source, index)``; the adjoint walks the same order backward.
At one instant:

* ``SPIKE`` (0): threshold crossings, input spikes first (source -1), then LIF spikes by
  population index and neuron index. A crossing at ``t`` is decided by the state before any
  arrival at ``t`` (V is continuous; an arrival changes only I).
* ``RELEASE`` (1): ends of refractory periods.
* ``PROBE`` (2): a loss term on V at ``t`` (adjoint only): the left limit before the arrivals at
  ``t``, where a maximum of V on a kink sits.
* ``ARRIVAL`` (3): synaptic arrivals, by projection and presynaptic neuron; all arrivals at one
  time are applied together before any crossing is predicted again, so a spike's zero-delay
  arrivals come after every spike at that time.
* ``PROBE_END`` (4): a loss term on V at ``t_max``, after every event (adjoint only).

The ranks are the numbers the compiled engines compare (heap keys forward, sort keys backward).
"""

SPIKE, RELEASE, PROBE, ARRIVAL, PROBE_END = 0, 1, 2, 3, 4

__all__ = ["SPIKE", "RELEASE", "PROBE", "ARRIVAL", "PROBE_END"]

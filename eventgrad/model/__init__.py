"""The model: the CuBa LIF neuron and its closed forms (:mod:`.physics`, written once for every
engine), networks of its populations (:mod:`.network`) and spike trains (:mod:`.spikes`).
Units: time in ms, voltage and current dimensionless."""

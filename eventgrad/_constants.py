"""Names and defaults shared by the time-stepped path, the cross-check and the command line,
in a module that imports nothing heavy (``eventgrad --help`` reads them without torch)."""

#: Surrogate spike derivatives of the time-stepped path (see :mod:`eventgrad.discrete.surrogates`).
SURROGATES = ("superspike", "superspike_asym", "sigmoid", "triangle", "exponential", "boxcar")

#: Defaults of :func:`eventgrad.crosscheck.crosscheck`: time steps (ms), surrogates, scales.
DEFAULT_DTS = (0.5, 0.1, 0.05, 0.02)
DEFAULT_SURROGATES = ("superspike", "sigmoid")
DEFAULT_SCALES = (5.0, 10.0, 50.0)

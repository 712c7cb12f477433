"""Experiments built on the two gradient paths: tasks (:mod:`.tasks`) and their data
(:mod:`.datasets`), training (:mod:`.training`, figures :mod:`.training_plots`), the gradient
cross-check (:mod:`.crosscheck`), provenance records (:mod:`.provenance`) and the command line
(:mod:`.cli`). ``eventgrad.tasks``, ``eventgrad.training``, ``eventgrad.datasets`` and
``eventgrad.crosscheck`` are these modules (see :mod:`eventgrad._moved`)."""

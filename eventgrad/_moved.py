"""Module names from before the package had folders, kept for the code that imports them.

``eventgrad.tasks`` *is* :mod:`eventgrad.experiments.tasks` (the same module object, so
attributes set on one are seen through the other), and so on for every entry of
:data:`MOVED`. A finder on :data:`sys.meta_path` hands out the module under its new name when
the old one is imported; nothing is copied.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

#: old name -> the module it now is
MOVED = {
    "eventgrad.neuron": "eventgrad.model.neuron",
    "eventgrad.network": "eventgrad.model.network",
    "eventgrad.spikes": "eventgrad.model.spikes",
    "eventgrad.event.physics": "eventgrad.model.physics",
    "eventgrad.simulate": "eventgrad.event.simulate",
    "eventgrad.result": "eventgrad.event.result",
    "eventgrad.readout": "eventgrad.event.readout",
    "eventgrad.adjoint": "eventgrad.event.adjoint",
    "eventgrad.gradients": "eventgrad.event.gradients",
    "eventgrad.surrogates": "eventgrad.discrete.surrogates",
    "eventgrad.tasks": "eventgrad.experiments.tasks",
    "eventgrad.datasets": "eventgrad.experiments.datasets",
    "eventgrad.training": "eventgrad.experiments.training",
    "eventgrad.training_plots": "eventgrad.experiments.training_plots",
    "eventgrad.crosscheck": "eventgrad.experiments.crosscheck",
    "eventgrad.cli": "eventgrad.experiments.cli",
    "eventgrad.provenance": "eventgrad.experiments.provenance",
}


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the old names of :data:`MOVED`; loading one returns the module it now is."""

    def find_spec(self, name, path=None, target=None):
        if name not in MOVED:
            return None
        return importlib.util.spec_from_loader(name, self)

    def create_module(self, spec):
        module = importlib.import_module(MOVED[spec.name])
        _OWN_SPEC[module.__name__] = module.__spec__
        return module

    def exec_module(self, module) -> None:
        # executed already, under its new name; the import system has just set its __spec__
        # to the old name's: it gets its own back (relative imports and pickling read it)
        module.__spec__ = _OWN_SPEC[module.__name__]


_OWN_SPEC: dict = {}      # new name -> the module's own spec, while an old name is loaded


def install() -> None:
    """Put the finder on :data:`sys.meta_path` (once), and enter the old names of the modules
    already imported in :data:`sys.modules` directly: importing a name the finder hands out
    sets it as an attribute of its package, which for ``eventgrad.simulate`` would replace the
    function :func:`eventgrad.simulate` with the module."""
    for old, new in MOVED.items():
        if new in sys.modules:
            sys.modules.setdefault(old, sys.modules[new])
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())

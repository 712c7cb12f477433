"""Where a number came from: the software and machine a run used, for its JSON record.

Every training run (:func:`eventgrad.training.train`) and every study of the command line
records :func:`environment` so that two runs can be compared.

What is reproducible (tested in ``tests/test_provenance.py`` and ``tests/test_engines.py``):

* **Same machine, same software**: bit-identical. The compiled engines give the same bits
  whatever the number of threads (chunk sums are formed in a fixed order; see
  :mod:`eventgrad.event.batch`), and training sets torch's intra-op threads (one by default).
* **Another machine or another software version**: the same to rounding, not to the bit. The
  event path calls ``exp``, ``expm1`` and ``log1p`` of the C library, whose last bit may differ
  between glibc versions and between the code paths it picks for a CPU (with or without FMA),
  and numba compiles for the host CPU. A spike time then moves by an ulp or so; over a hundred
  epochs of training such differences compound, so final accuracies of the same command can
  differ by several tenths of a per cent between machines. Compare runs with their
  ``environment`` records side by side.
"""

from __future__ import annotations

import platform
import sys
from importlib import metadata

__all__ = ["environment", "PACKAGES"]

PACKAGES = ("eventgrad", "numpy", "scipy", "numba", "llvmlite", "torch", "sortedcontainers")


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else :func:`platform.processor`)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict:
    """The software and machine of this process, JSON-ready: Python, the versions of
    :data:`PACKAGES` (None if not installed), platform, CPU model, CPUs this process may use,
    the event engines' thread count (:func:`eventgrad.get_num_threads`) and how their
    batches are launched on threads (:func:`eventgrad.event.batch.launcher`; results do not
    depend on it) and, if torch is already imported, its intra-op thread count (torch is not
    imported for this)."""
    from ..event.batch import launcher
    from ..event.engines import available_cpus, get_num_threads

    torch = sys.modules.get("torch")
    return {
        "python": platform.python_version(),
        "packages": {name: _version(name) for name in PACKAGES},
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpus_available": available_cpus(),
        "eventgrad_threads": get_num_threads(),
        "eventgrad_launch": launcher(),
        "torch_threads": torch.get_num_threads() if torch is not None else None,
    }

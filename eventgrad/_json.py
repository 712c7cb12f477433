"""The one JSON encoding of eventgrad's outputs (the CLI, saved runs, cross-check tables).

Strict JSON has no inf or NaN; eventgrad writes them as the strings ``"inf"``, ``"-inf"`` and
``"nan"``, which ``float()`` reads back (a silent neuron's first-spike time is inf, an
undefined cosine nan: the value says which). numpy arrays become lists, numpy scalars Python
numbers, a ``torch.dtype`` its name, dict keys strings, any other object its ``repr``.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def to_json(obj):
    """A JSON-ready copy of ``obj`` in the encoding of the module docs (``json.dumps(...,
    allow_nan=False)`` accepts it)."""
    if isinstance(obj, dict):
        return {str(k): to_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_json(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer, int)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        if math.isfinite(v):
            return v
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if isinstance(obj, torch.dtype):
        return str(obj).replace("torch.", "")
    if obj is None or isinstance(obj, str):
        return obj
    return repr(obj)

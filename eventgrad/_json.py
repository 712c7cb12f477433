"""One walker that turns result objects into strict JSON values (used by the CLI and savers)."""

from __future__ import annotations

import math

import numpy as np
import torch


def plain(obj, nonfinite: str = "string"):
    """A JSON-ready copy of ``obj``: dicts (keys made ``str``), lists, numbers, strings, None.

    numpy arrays become lists, numpy scalars Python numbers, a ``torch.dtype`` its name, any
    other object its ``repr``. Non-finite floats have no strict-JSON form: ``nonfinite="string"``
    writes ``"inf"``, ``"-inf"``, ``"nan"`` (``float()`` reads them back), ``"null"`` writes
    ``None``.
    """
    if nonfinite not in ("string", "null"):
        raise ValueError(f"nonfinite must be 'string' or 'null', got {nonfinite!r}")
    return _walk(obj, nonfinite == "string")


def _walk(obj, as_string: bool):
    if isinstance(obj, dict):
        return {str(k): _walk(v, as_string) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_walk(v, as_string) for v in obj]
    if isinstance(obj, np.ndarray):
        return _walk(obj.tolist(), as_string)
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer, int)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        if math.isfinite(v):
            return v
        if not as_string:
            return None
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if isinstance(obj, torch.dtype):
        return str(obj).replace("torch.", "")
    if obj is None or isinstance(obj, str):
        return obj
    return repr(obj)

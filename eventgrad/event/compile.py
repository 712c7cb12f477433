"""Compilation of the engines: said once, cached on disk, never stale.

The compiled kernels (numba, ``cache=True``) are compiled on their first call and then loaded
from numba's cache in later processes. Two things are added here:

* **A one-line notice** on standard error before a kernel is compiled for the first time on
  this machine (``eventgrad: compiling ... (once; cached for later runs)``), so a first call
  that takes seconds does not look like a hang.
* **No stale code.** numba checks a cached kernel against its own source file only; a kernel in
  one file that calls a function of another file keeps the old compiled callee when only that
  other file changed (an editable install after ``git pull``). So a stamp in the cache folder
  records a hash of every engine source file and of the closed forms they call
  (:mod:`eventgrad.model.physics`), with the numba and Python versions; when it differs, the
  engine's cache files are deleted before anything is compiled. (The physics' own kernels call
  nothing of another file, so numba's own check keeps them right.)
"""

from __future__ import annotations

import glob
import hashlib
import os
import sys

__all__ = ["announce", "source_hash", "cache_dir"]

_HERE = os.path.dirname(os.path.abspath(__file__))
#: Source files outside this folder that the engines compile into their kernels.
_CALLED = (os.path.join(os.path.dirname(_HERE), "model", "physics.py"),)
_STAMP = "eventgrad-engine.stamp"
_stamp: str | None = None   # the sources' hash, once this process has checked the cache
_compiled: set[str] = set()


def source_hash() -> str:
    """Hash of the engine's source files and of the numba and Python versions."""
    import numba

    h = hashlib.sha256(f"{numba.__version__} {sys.version}".encode())
    for path in sorted(glob.glob(os.path.join(_HERE, "*.py"))) + list(_CALLED):
        with open(path, "rb") as f:
            h.update(os.path.basename(path).encode() + f.read())
    return h.hexdigest()[:20]


def cache_dir() -> str | None:
    """The folder numba caches the engine's kernels in (None if it cannot tell)."""
    try:
        from . import batch

        return batch.compact._cache._cache_path
    except Exception:  # a numba without this (private) attribute
        return None


def _read(path: str) -> list[str]:
    """The stamp's lines: the source hash, then one line per part compiled."""
    try:
        with open(path) as f:
            return f.read().splitlines()
    except OSError:
        return []


def _write(path: str, lines: list[str]) -> None:
    try:
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
    except OSError:
        pass  # a read-only cache folder: numba then uses another one, or compiles each time


def _check(folder: str, stamp: str) -> None:
    """Delete the engine's cache files if they were compiled from other sources."""
    global _compiled
    words = _read(os.path.join(folder, _STAMP))
    if words[:1] == [stamp]:
        _compiled = set(words[1:])
        return
    mods = [os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(_HERE,
                                                                                   "*.py"))]
    for m in mods:
        for f in glob.glob(os.path.join(folder, f"{m}.*.nb[ic]")):
            try:
                os.remove(f)
            except OSError:
                pass
    _compiled = set()
    _write(os.path.join(folder, _STAMP), [stamp])


def announce(what: str = "event engine", key: str | None = None) -> None:
    """Say once, before ``what`` is compiled for the first time with these sources, that it is
    being compiled (and clear stale cache files on the first call of the process). ``key``
    (default ``what``) is what the stamp remembers: a part compiled from sources outside the
    engine's folder puts their hash in it, so that an edit is announced again."""
    global _stamp
    key = what if key is None else key
    if _stamp is not None and key in _compiled:
        return
    folder = cache_dir()
    if folder is None:
        return
    if _stamp is None:
        _stamp = source_hash()
        os.makedirs(folder, exist_ok=True)
        _check(folder, _stamp)
    if key in _compiled:
        return
    print(f"eventgrad: compiling the {what} once (~10-30 s; later runs load it from the cache)",
          file=sys.stderr, flush=True)
    _compiled.add(key)
    _write(os.path.join(folder, _STAMP), [_stamp] + sorted(_compiled))

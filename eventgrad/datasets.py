"""Data sets generated in code (nothing is downloaded).

Yin-Yang (Kriener, Göltz & Petrovici 2021, "The Yin-Yang dataset"): points in the unit square
inside the yin-yang symbol, three classes. Geometry of the reference generator: the symbol is
the disc of radius ``r_big = 0.5`` centred at ``(0.5, 0.5)``; its two dots have radius
``r_small = 0.1`` and centres ``(0.25, 0.5)`` (left) and ``(0.75, 0.5)`` (right). With ``d_l``,
``d_r`` the distances to the dot centres:

* class 2 ("dot") if ``d_l < r_small`` or ``d_r < r_small``;
* class 1 ("yin") if ``d_r <= r_small`` or ``r_small < d_l <= r_big/2`` or
  (``y > r_big`` and ``d_r > r_big/2``);
* class 0 ("yang") otherwise.

(label 1 is the region the reference generator calls yin.) Samples are drawn by choosing the
class uniformly at random and then rejection-sampling a point of that class, so the classes are
balanced in expectation, as in the reference.
"""

from __future__ import annotations

import numpy as np

__all__ = ["yinyang_class", "yinyang"]


def yinyang_class(x, y, r_small: float = 0.1, r_big: float = 0.5) -> np.ndarray:
    """Class (0 yang, 1 yin, 2 dot) of points ``(x, y)`` inside the symbol; arrays broadcast.

    Points outside the disc get -1.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    d_l = np.hypot(x - 0.5 * r_big, y - r_big)
    d_r = np.hypot(x - 1.5 * r_big, y - r_big)
    yin = (d_r <= r_small) | ((d_l > r_small) & (d_l <= 0.5 * r_big)) | (
        (y > r_big) & (d_r > 0.5 * r_big))
    cls = np.where((d_l < r_small) | (d_r < r_small), 2, yin.astype(np.int64))
    outside = np.hypot(x - r_big, y - r_big) > r_big
    return np.where(outside, -1, cls).astype(np.int64)


def yinyang(n: int, seed: int = 0, r_small: float = 0.1, r_big: float = 0.5
            ) -> tuple[np.ndarray, np.ndarray]:
    """``n`` Yin-Yang points and labels: ``(points (n, 2), labels (n,))``, seeded."""
    if int(n) != n or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    rng = np.random.default_rng(seed)
    goals = rng.integers(0, 3, int(n))
    pts = np.empty((int(n), 2))
    for c in range(3):
        idx = np.flatnonzero(goals == c)
        got = 0
        while got < idx.size:
            cand = rng.uniform(0.0, 2 * r_big, (4 * (idx.size - got) + 16, 2))
            ok = cand[yinyang_class(cand[:, 0], cand[:, 1], r_small, r_big) == c]
            take = ok[: idx.size - got]
            pts[idx[got:got + take.shape[0]]] = take
            got += take.shape[0]
    return pts, goals.astype(np.int64)

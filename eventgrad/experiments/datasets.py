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

Two generators follow that recipe. :func:`yinyang` draws from numpy's ``Generator`` (vectorised
rejection sampling); :func:`yinyang_reference` consumes numpy's legacy Mersenne-Twister stream
in the reference generator's order (per sample: one ``randint(3)`` for the class, then pairs
``rand(2)`` until a point of that class is found), so with the seeds of the reference README
(train 42, validation 41, test 40; :data:`KRIENER_SEEDS`) it yields the reference's own
splits. (Whether these equal the ``publication_data/`` files of the reference repository, which
Göltz et al. 2021 and the EventProp reference code load, was not checked: those are binary files
we have not compared.) Same seed, different generator: different points.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["yinyang_class", "yinyang", "yinyang_reference", "KRIENER_SEEDS"]

#: Seeds of the train / validation / test splits in the reference generator's README
#: (Kriener, Göltz & Petrovici 2021, github.com/lkriener/yin_yang_data_set).
KRIENER_SEEDS: dict[str, int] = {"train": 42, "validation": 41, "test": 40}


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


def yinyang_reference(n: int, seed: int = 42, r_small: float = 0.1, r_big: float = 0.5
                      ) -> tuple[np.ndarray, np.ndarray]:
    """``n`` Yin-Yang points and labels in the reference generator's random sequence.

    Returns ``(points (n, 2), labels (n,))`` as :func:`yinyang` does. The draws follow the
    reference generator (Kriener et al. 2021) step by step on
    ``numpy.random.RandomState(seed)``: for each sample a goal class ``randint(3)``, then
    points ``rand(2) * 2 r_big`` until one lies in the disc and has the goal class. The first
    ``n`` samples do not depend on ``n``. Seeds of the published splits:
    :data:`KRIENER_SEEDS`. Pure Python per draw (about 4 draws per sample).
    """
    if int(n) != n or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    if int(seed) != seed or not 0 <= seed < 2 ** 32:
        raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")
    # distances as sqrt(dx**2 + dy**2) (not hypot), so that points within an ulp of a
    # boundary get the reference's decision too
    def dist(x: float, y: float, cx: float) -> float:
        return math.sqrt((x - cx) ** 2 + (y - r_big) ** 2)

    def label(x: float, y: float) -> int:
        d_r, d_l = dist(x, y, 1.5 * r_big), dist(x, y, 0.5 * r_big)
        if d_r < r_small or d_l < r_small:
            return 2
        return int(d_r <= r_small or r_small < d_l <= 0.5 * r_big
                   or (y > r_big and d_r > 0.5 * r_big))

    rs = np.random.RandomState(int(seed))
    pts = np.empty((int(n), 2))
    lab = np.empty(int(n), dtype=np.int64)
    for i in range(int(n)):
        goal = int(rs.randint(3))
        while True:
            x, y = (float(v) for v in rs.rand(2) * 2.0 * r_big)
            if dist(x, y, r_big) <= r_big and label(x, y) == goal:
                break
        pts[i] = x, y
        lab[i] = goal
    return pts, lab

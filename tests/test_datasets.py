"""The Yin-Yang generator: labels from the symbol's geometry, balance, seeding, bad input."""

import numpy as np
import pytest
from eventgrad.datasets import KRIENER_SEEDS, yinyang, yinyang_class, yinyang_reference


def test_labels_at_points_placed_by_hand():
    # dot centres (0.25, 0.5) and (0.75, 0.5); the top half away from the right dot is yin (1),
    # the bottom half away from the left dot is yang (0); outside the disc is -1
    pts = {(0.25, 0.5): 2, (0.75, 0.5): 2, (0.5, 0.9): 1, (0.5, 0.1): 0,
           (0.25, 0.65): 1, (0.75, 0.35): 0, (0.02, 0.02): -1}
    x, y = np.array(list(pts)).T
    assert yinyang_class(x, y).tolist() == list(pts.values())


def test_symbol_is_point_symmetric():
    # rotating by 180 degrees about the centre swaps yin and yang and keeps the dots
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, (4000, 2))
    a = yinyang_class(p[:, 0], p[:, 1])
    b = yinyang_class(1 - p[:, 0], 1 - p[:, 1])
    inside = (a >= 0) & (b >= 0)
    swap = np.array([1, 0, 2])
    # boundary points (measure zero) may differ by the <= / < convention
    assert np.mean(swap[a[inside]] == b[inside]) > 0.999


def test_generated_points_have_their_labels_and_are_balanced_and_seeded():
    pts, lab = yinyang(3000, seed=3)
    assert pts.shape == (3000, 2) and lab.shape == (3000,)
    assert np.array_equal(yinyang_class(pts[:, 0], pts[:, 1]), lab)
    counts = np.bincount(lab, minlength=3) / 3000
    assert np.all(np.abs(counts - 1 / 3) < 0.03)
    pts2, lab2 = yinyang(3000, seed=3)
    assert np.array_equal(pts, pts2) and np.array_equal(lab, lab2)
    assert not np.array_equal(yinyang(3000, seed=4)[0], pts)


@pytest.mark.parametrize("n", [-1, 2.5])
def test_bad_n(n):
    with pytest.raises(ValueError, match="n must be"):
        yinyang(n)


def _reference_draws(n, seed):
    # the reference generator's recipe written out independently: a goal class from
    # randint(3), then points rand(2) (times 2 r_big = 1) until one inside the disc has it
    rs = np.random.RandomState(seed)
    out = []
    for _ in range(n):
        goal = rs.randint(3)
        while True:
            p = rs.rand(2)
            c = yinyang_class(p[0], p[1])
            if c == goal:            # -1 outside the disc never equals a goal
                out.append((p[0], p[1], goal))
                break
    a = np.array(out)
    return a[:, :2], a[:, 2].astype(np.int64)


@pytest.mark.parametrize("seed", sorted(KRIENER_SEEDS.values()))
def test_reference_generator_follows_the_reference_random_sequence(seed):
    pts, lab = yinyang_reference(400, seed)
    want_pts, want_lab = _reference_draws(400, seed)
    assert np.array_equal(pts, want_pts) and np.array_equal(lab, want_lab)
    assert np.array_equal(yinyang_class(pts[:, 0], pts[:, 1]), lab)
    # the first n samples do not depend on n
    assert np.array_equal(yinyang_reference(150, seed)[0], pts[:150])


def test_reference_splits_are_balanced_and_differ_from_the_seeded_generator():
    pts, lab = yinyang_reference(5000, KRIENER_SEEDS["train"])
    assert np.all(np.abs(np.bincount(lab, minlength=3) / 5000 - 1 / 3) < 0.02)
    assert not np.array_equal(pts[:10], yinyang(10, seed=KRIENER_SEEDS["train"])[0])


@pytest.mark.parametrize("kw, match", [({"n": -1}, "n must be"),
                                       ({"n": 3, "seed": -1}, "seed must be"),
                                       ({"n": 3, "seed": 2 ** 32}, "seed must be")])
def test_reference_generator_bad_input(kw, match):
    with pytest.raises(ValueError, match=match):
        yinyang_reference(**kw)

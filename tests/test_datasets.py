"""The Yin-Yang generator: labels from the symbol's geometry, balance, seeding, bad input."""

import numpy as np
import pytest

from eventgrad.datasets import yinyang, yinyang_class


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

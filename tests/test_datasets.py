"""The labels of the built-in data sets follow their definitions (rkgen/train/datasets.py).

The labels are drawn from the clean point and the noise is added afterwards, so a label can only
be checked through the noisy point statistically: on a large seeded sample,

- the class shares agree with the probabilities of the definition, to within 5 binomial standard
  deviations (the noise does not change the labels, so the shares are those of the clean points);
- far from every class boundary (several noise standard deviations away) nearly every point carries
  the class its region has by the definition, on each side of the boundary separately.

Both the training and the test draw are checked (they come from the same generator).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from rkgen.train.datasets import make_dataset

N = 40_000  # points in each of the training and the test draw
SEED = 20240601


@pytest.fixture(scope="module")
def draws():
    cache = {}

    def draw(name):
        if name not in cache:
            ds = make_dataset(name, np.random.default_rng(SEED), N, N)
            assert ds.x_train.shape[0] == ds.x_test.shape[0] == N
            cache[name] = (
                ds,
                np.concatenate([ds.x_train, ds.x_test]),
                np.concatenate([ds.c_train, ds.c_test]),
            )
        return cache[name]

    return draw


def assert_share(c, k, p, what=""):
    """The share of label k in c is p to within 5 binomial standard deviations."""
    n = len(c)
    got = float(np.mean(c == k))
    tol = 5.0 * math.sqrt(p * (1.0 - p) / n)
    assert abs(got - p) <= tol, f"{what}: share of class {k} is {got:.4f}, expected {p:.4f} +- {tol:.4f}"


def assert_region(c, mask, k, at_least, what):
    """Nearly every point in the region (mask) has label k; the region is not empty."""
    assert mask.sum() >= 100, f"{what}: only {mask.sum()} points in the region"
    got = float(np.mean(c[mask] == k))
    assert got >= at_least, f"{what}: {got:.4f} of the points have class {k} (expected >= {at_least})"


def test_labels_are_integers_of_the_classes(draws):
    for name, k in [("donut1d", 2), ("donut2d", 2), ("squares", 2), ("spiral", 2), ("donut2d-3c", 3),
                    ("donut3d-5c", 5), ("squares2d-4c", 4), ("squares3d-4c", 4)]:  # fmt: skip
        ds, _, c = draws(name)
        assert ds.n_classes == k, name
        assert c.dtype == np.int64, name
        assert set(np.unique(c)) == set(range(k)), name


# -- donut1d: x1 uniform on [-4, 4]; class 0 iff |x1| < 1; noise 0.5 N(0, 1) ----------------------


def test_donut1d_shares(draws):
    _, _, c = draws("donut1d")
    assert_share(c, 0, 2.0 / 8.0, "donut1d")


def test_donut1d_far_out_on_each_side(draws):
    _, x, c = draws("donut1d")
    x1 = x[:, 0]
    # 3 noise standard deviations from the boundaries |x1| = 1
    assert_region(c, x1 < -2.5, 1, 0.99, "donut1d, x1 < -2.5")
    assert_region(c, x1 > 2.5, 1, 0.99, "donut1d, x1 > 2.5")
    # the middle: a point observed at |x1| < 0.25 is clean in (-1, 1) unless its noise exceeds 1.5 sd
    assert_region(c, np.abs(x1) < 0.25, 0, 0.9, "donut1d, |x1| < 0.25")
    for side, mask in [("left", (x1 > -0.25) & (x1 < 0.0)), ("right", (x1 >= 0.0) & (x1 < 0.25))]:
        assert_region(c, mask, 0, 0.9, f"donut1d, middle {side}")


def test_donut1d_label_does_not_depend_on_x2(draws):
    _, x, c = draws("donut1d")
    far = np.abs(x[:, 0]) > 2.5
    for mask in (far & (x[:, 1] > 1.0), far & (x[:, 1] < -1.0)):
        assert_region(c, mask, 1, 0.99, "donut1d, far out, |x2| > 1")


# -- donut2d: x standard normal; class 0 iff |x| < 1; scaled by 1.2, noise 0.2 N(0, 1) --------------


def test_donut2d_shares(draws):
    _, _, c = draws("donut2d")
    assert_share(c, 0, 1.0 - math.exp(-0.5), "donut2d")  # P(|x| < 1) for a 2D standard normal


def test_donut2d_inside_and_outside_in_every_direction(draws):
    _, x, c = draws("donut2d")
    r = np.hypot(x[:, 0], x[:, 1])
    angle = np.arctan2(x[:, 1], x[:, 0])
    # the boundary is at |x| = 1.2 after scaling; the noise has standard deviation 0.2
    for q in range(4):
        sector = (angle >= -np.pi + q * np.pi / 2) & (angle < -np.pi + (q + 1) * np.pi / 2)
        assert_region(c, sector & (r > 2.0), 1, 0.99, f"donut2d, |x| > 2, quadrant {q}")
        assert_region(c, sector & (r < 0.5), 0, 0.99, f"donut2d, |x| < 0.5, quadrant {q}")


# -- squares: x uniform on [-4, 4]^2; class 0 iff x1 x2 > 0; noise 0.3 N(0, 1) -----------------------


def test_squares_shares(draws):
    _, _, c = draws("squares")
    assert_share(c, 0, 0.5, "squares")


@pytest.mark.parametrize(("s1", "s2", "k"), [(1, 1, 0), (-1, -1, 0), (1, -1, 1), (-1, 1, 1)])
def test_squares_quadrants(draws, s1, s2, k):
    _, x, c = draws("squares")
    core = (s1 * x[:, 0] > 1.0) & (s2 * x[:, 1] > 1.0)  # 3.3 noise sd from the axes
    assert_region(c, core, k, 0.99, f"squares, quadrant ({s1:+d}, {s2:+d})")


# -- spiral: arms r = +-(2 phi + pi), phi in [0, 2 pi], noise N(0, 1), all scaled by 1/5 ------------


def _nearest_arm(x):
    """0 or 1: the arm of the clean spiral nearest to each point."""
    phi = np.linspace(0.0, 2.0 * np.pi, 600)
    r = 2.0 * phi + np.pi
    arm = np.column_stack([np.cos(phi) * r, np.sin(phi) * r]) / 5.0
    out = []
    for i in range(0, len(x), 2000):
        q = x[i : i + 2000, None, :]
        d0 = np.min(np.sum((q - arm) ** 2, axis=-1), axis=1)
        d1 = np.min(np.sum((q + arm) ** 2, axis=-1), axis=1)
        out.append((d1 < d0).astype(np.int64))
    return np.concatenate(out)


def test_spiral_shares_are_halves():
    for n in (1000, 1001, 4000):
        ds = make_dataset("spiral", np.random.default_rng(SEED), n)
        assert abs(int(np.sum(ds.c_train == 0)) - int(np.sum(ds.c_train == 1))) == n % 2


def test_spiral_points_lie_near_the_arm_of_their_class(draws):
    _, x, c = draws("spiral")
    arm = _nearest_arm(x[:5000])
    for k in (0, 1):
        assert_region(arm, c[:5000] == k, k, 0.99, f"spiral class {k}: nearest arm")
    # at phi = 3 pi / 2 the first arm (class 0) passes (0, -4 pi) / 5 and the second (0, 4 pi) / 5;
    # the other arm is 2 pi / 5 (6 noise sd) away there
    at0 = np.hypot(x[:, 0], x[:, 1] + 4 * np.pi / 5) < 0.4
    at1 = np.hypot(x[:, 0], x[:, 1] - 4 * np.pi / 5) < 0.4
    assert_region(c, at0, 0, 0.98, "spiral, arm 0 at (0, -4 pi / 5)")
    assert_region(c, at1, 1, 0.98, "spiral, arm 1 at (0, 4 pi / 5)")


# -- donut<D>d-<K>c: x ~ 1.5 N(0, I_D); class k iff |x| in [4k/K, 4(k+1)/K), the last class open ----


def _chi_cdf(t, dim):
    """P(|z| <= t) for z standard normal in ``dim`` dimensions (dim = 1, 2, 3)."""
    if dim == 1:
        return math.erf(t / math.sqrt(2.0))
    if dim == 2:
        return 1.0 - math.exp(-0.5 * t * t)
    if dim == 3:
        return math.erf(t / math.sqrt(2.0)) - math.sqrt(2.0 / math.pi) * t * math.exp(-0.5 * t * t)
    raise ValueError(dim)


MULTI_DONUTS = [(1, 2), (1, 3), (2, 2), (2, 3), (2, 5), (3, 3), (3, 4)]


@pytest.mark.parametrize(("dim", "k"), MULTI_DONUTS)
def test_multiclass_donut_shares(draws, dim, k):
    ds, _, c = draws(f"donut{dim}d-{k}c")
    assert ds.dim == dim and ds.n_classes == k
    cdf = [0.0] + [_chi_cdf(4.0 * j / k / 1.5, dim) for j in range(1, k)] + [1.0]
    for j in range(k):
        assert_share(c, j, cdf[j + 1] - cdf[j], f"donut{dim}d-{k}c")


@pytest.mark.parametrize(("dim", "k"), [(d, k) for d, k in MULTI_DONUTS if k <= 3])
def test_multiclass_donut_rings(draws, dim, k):
    _, x, c = draws(f"donut{dim}d-{k}c")
    r = np.linalg.norm(x, axis=1)
    margin = 0.5  # 2.5 noise standard deviations from each ring's edges
    for j in range(k):
        lo, hi = 4.0 * j / k + margin, 4.0 * (j + 1) / k - margin
        if j == k - 1:
            hi = np.inf  # the last class is open
        if j == 0:
            lo = 0.0
        assert_region(c, (r > lo) & (r < hi), j, 0.95, f"donut{dim}d-{k}c, ring {j}")
    assert_region(c, r > 4.5, k - 1, 0.99, f"donut{dim}d-{k}c, |x| > 4.5")
    if dim >= 2:  # every direction: the sign of x1 does not matter
        for s in (1, -1):
            assert_region(c, (s * x[:, 0] > 0) & (r > 4.5), k - 1, 0.99, f"donut{dim}d-{k}c, far, x1 {s:+d}")


# -- squares2d-4c and squares3d-4c: x uniform on [-4, 4]^D, classes by the signs --------------------

SQUARES2D = {(1, 1): 0, (1, -1): 1, (-1, 1): 2, (-1, -1): 3}
# a class is a pair of opposite octants: reflect into x1 > 0, then (+,+): 0, (+,-): 1, (-,-): 2, (-,+): 3
SQUARES3D = {(1, s2, s3): {(1, 1): 0, (1, -1): 1, (-1, -1): 2, (-1, 1): 3}[(s2, s3)]
             for s2 in (1, -1) for s3 in (1, -1)}  # fmt: skip
SQUARES3D.update({(-1, -s2, -s3): k for (_, s2, s3), k in list(SQUARES3D.items())})


@pytest.mark.parametrize("dim", [2, 3])
def test_multiclass_squares_shares(draws, dim):
    ds, _, c = draws(f"squares{dim}d-4c")
    assert ds.dim == dim and ds.n_classes == 4
    for k in range(4):
        assert_share(c, k, 0.25, f"squares{dim}d-4c")


@pytest.mark.parametrize(("dim", "signs"), [(2, s) for s in SQUARES2D] + [(3, s) for s in SQUARES3D])
def test_multiclass_squares_by_the_signs(draws, dim, signs):
    _, x, c = draws(f"squares{dim}d-4c")
    k = (SQUARES2D if dim == 2 else SQUARES3D)[signs]
    core = np.all(x * np.array(signs) > 1.0, axis=1)  # 3.3 noise sd from every coordinate plane
    assert_region(c, core, k, 0.99, f"squares{dim}d-4c, signs {signs}")


def test_opposite_octants_share_a_class():
    assert len(SQUARES3D) == 8
    assert sorted(SQUARES3D.values()) == [0, 0, 1, 1, 2, 2, 3, 3]
    for signs, k in SQUARES3D.items():
        assert SQUARES3D[tuple(-s for s in signs)] == k

"""Data sets for the trainer (downstream of the chain): the papers' point-classification problems.

The four of Benning et al. (000 section 5), the multiclass and 3D
sets of Giesecke and Kröner (004 Fig. 8), a stand-in for MNIST100 and a user's own CSV or .npz file.

Every generator draws from a numpy Generator, so one seed gives the same points; the test set is an
independent draw of the same distribution (of the same size unless asked otherwise). Labels are
integers 0..K-1. The shapes follow 004's published generators (which are "inspired by" 000's):

- donut1d: x1 uniform on [-4, 4], x2 standard normal; class 0 iff |x1| < 1; then noise 0.5 N(0, 1).
- donut2d: x standard normal in 2D; class 0 iff |x| < 1; scaled by 1.2, then noise 0.2 N(0, 1).
- squares: x uniform on [-4, 4]^2; class 0 iff x1 x2 > 0; then noise 0.3 N(0, 1).
- spiral: two interleaved arms r = +-(2 phi + pi), phi = 2 pi sqrt(U), noise N(0, 1), scaled by 1/5.
- donut<D>d-<K>c: x ~ 1.5 N(0, I_D); class k iff |x| lies in [4k/K, 4(k+1)/K) (the last class open);
  then noise 0.2 N(0, 1), so labels near a ring are noisy.
- squares<D>d-4c (D = 2 or 3): x uniform on [-4, 4]^D; 4 classes by the signs of the coordinates;
  noise 0.3.
- digits08: 0 against 8 of the 8x8 digits bundled with scikit-learn (optional extra
  ``rkgen[digits]``), pixels scaled to [0, 1]; 100 training images, the rest (about 250) for
  testing. It stands in for 000's MNIST100 (0 against 8, 100 train, 500 test), which cannot be
  downloaded here.

Labels are drawn from the clean point and the noise is added afterwards, as in 004: points near a
class boundary cross it, which is the "label noise" of these sets.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rkgen.errors import RkgenError

BUILTIN = ("donut1d", "donut2d", "squares", "spiral")
MULTI_PATTERN = re.compile(r"^(donut|squares)([1-9])d-([0-9]+)c$")

# 000 section 5.1: 500 samples for donut1d, 1000 for the other three.
DEFAULT_SIZES = {"donut1d": 500, "donut2d": 1000, "squares": 1000, "spiral": 1000}
MULTI_DEFAULT_SIZE = 1500  # 004 uses 1500 training and 1500 validation points


@dataclass
class Dataset:
    """Training and test points with integer labels 0..n_classes-1."""

    name: str
    x_train: np.ndarray
    c_train: np.ndarray
    x_test: np.ndarray
    c_test: np.ndarray
    n_classes: int
    class_names: tuple = ()

    @property
    def dim(self) -> int:
        return self.x_train.shape[1]

    def save(self, path) -> None:
        np.savez(
            path,
            x_train=self.x_train,
            c_train=self.c_train,
            x_test=self.x_test,
            c_test=self.c_test,
            n_classes=self.n_classes,
            name=self.name,
            class_names=np.array([str(c) for c in self.class_names]),
        )

    @classmethod
    def load(cls, path) -> Dataset:
        with np.load(path, allow_pickle=False) as z:
            return cls(
                str(z["name"]),
                z["x_train"],
                z["c_train"].astype(np.int64),
                z["x_test"],
                z["c_test"].astype(np.int64),
                int(z["n_classes"]),
                tuple(str(c) for c in z["class_names"]),
            )


def _donut1d(rng, n):
    x = np.column_stack([8.0 * rng.random(n) - 4.0, rng.standard_normal(n)])
    c = (np.abs(x[:, 0]) >= 1.0).astype(np.int64)
    return x + 0.5 * rng.standard_normal(x.shape), c


def _donut2d(rng, n):
    x = rng.standard_normal((n, 2))
    c = (np.hypot(x[:, 0], x[:, 1]) >= 1.0).astype(np.int64)
    return 1.2 * x + 0.2 * rng.standard_normal(x.shape), c


def _squares(rng, n):
    x = 8.0 * rng.random((n, 2)) - 4.0
    c = (x[:, 0] * x[:, 1] <= 0.0).astype(np.int64)
    return x + 0.3 * rng.standard_normal(x.shape), c


def _spiral(rng, n):
    half = (n + 1) // 2
    phi = np.sqrt(rng.random(half)) * 2.0 * np.pi
    r = 2.0 * phi + np.pi
    arm = np.column_stack([np.cos(phi) * r, np.sin(phi) * r])
    x = np.concatenate(
        [arm + rng.standard_normal(arm.shape), -arm + rng.standard_normal(arm.shape)]
    )
    c = np.concatenate([np.zeros(half, np.int64), np.ones(half, np.int64)])
    perm = rng.permutation(2 * half)[:n]
    return x[perm] / 5.0, c[perm]


def _donut_multi(rng, n, dim, k):
    x = 1.5 * rng.standard_normal((n, dim))
    r = np.sqrt(np.sum(x * x, axis=1))
    c = np.minimum((r * k / 4.0).astype(np.int64), k - 1)
    return x + 0.2 * rng.standard_normal(x.shape), c


def _squares_multi(rng, n, dim):
    x = 8.0 * rng.random((n, dim)) - 4.0
    pos = x > 0.0
    if dim == 2:
        c = 2 * (~pos[:, 0]) + (~pos[:, 1])
    else:
        # the 3D set of 004: a class is a pair of opposite octants
        flip = ~pos[:, 0]
        q = pos ^ flip[:, None]  # the octant reflected into x1 > 0
        c = 2 * (~q[:, 1]) + (q[:, 1] ^ q[:, 2])
    return x + 0.3 * rng.standard_normal(x.shape), c.astype(np.int64)


def dataset_names() -> list[str]:
    """The names --dataset accepts besides file paths."""
    return [*BUILTIN, "donut<D>d-<K>c", "squares2d-4c", "squares3d-4c", "digits08"]


def make_dataset(
    name: str,
    rng: np.random.Generator,
    n_train: int | None = None,
    n_test: int | None = None,
    label_column: int = -1,
    test_fraction: float = 0.5,
) -> Dataset:
    """Draw a built-in data set, or read a user's .csv / .npz file (see load_file)."""
    if name in BUILTIN:
        gen = {"donut1d": _donut1d, "donut2d": _donut2d, "squares": _squares, "spiral": _spiral}[
            name
        ]
        n_train = n_train or DEFAULT_SIZES[name]
        n_test = n_test or n_train
        x, c = gen(rng, n_train)
        xt, ct = gen(rng, n_test)
        return Dataset(name, x, c, xt, ct, 2)
    m = MULTI_PATTERN.match(name)
    if m:
        kind, dim, k = m.group(1), int(m.group(2)), int(m.group(3))
        n_train = n_train or MULTI_DEFAULT_SIZE
        n_test = n_test or n_train
        if kind == "donut":
            if k < 2:
                raise RkgenError(f"dataset {name!r}: a donut needs at least 2 classes")

            def gen(r, n):
                return _donut_multi(r, n, dim, k)
        else:
            if dim not in (2, 3) or k != 4:
                raise RkgenError(
                    f"dataset {name!r}: the squares sets are squares2d-4c and squares3d-4c"
                )

            def gen(r, n):
                return _squares_multi(r, n, dim)

        x, c = gen(rng, n_train)
        xt, ct = gen(rng, n_test)
        return Dataset(name, x, c, xt, ct, k)
    if name == "digits08":
        return _digits08(rng, n_train or 100, n_test)
    path = Path(name)
    if path.suffix.lower() in (".csv", ".npz", ".txt"):
        return load_file(path, rng, label_column, test_fraction)
    raise RkgenError(
        f"unknown dataset {name!r}; choose one of {', '.join(dataset_names())} or a .csv/.npz file"
    )


def _digits08(rng, n_train, n_test):
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise RkgenError(
            "dataset 'digits08' needs scikit-learn: pip install 'rkgen[digits]'"
        ) from None
    x, y = load_digits(return_X_y=True)
    keep = (y == 0) | (y == 8)
    x, c = x[keep] / 16.0, (y[keep] == 8).astype(np.int64)
    perm = rng.permutation(len(c))
    if n_train >= len(c):
        raise RkgenError(f"digits08 has {len(c)} images of 0 and 8; ask for fewer than that")
    test = perm[n_train:] if n_test is None else perm[n_train : n_train + n_test]
    return Dataset(
        "digits08", x[perm[:n_train]], c[perm[:n_train]], x[test], c[test], 2, ("0", "8")
    )


def _labels(raw, where):
    """Map arbitrary label values onto 0..K-1 (sorted), keeping the names."""
    names, codes = np.unique(np.asarray(raw).astype(str), return_inverse=True)
    try:  # numeric labels sort numerically
        order = np.argsort(names.astype(float), kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        names, codes = names[order], rank[codes]
    except ValueError:
        pass
    if len(names) < 2:
        raise RkgenError(f"{where}: the labels take a single value; need at least two classes")
    return codes.astype(np.int64), tuple(str(n) for n in names)


def load_file(path, rng, label_column=-1, test_fraction=0.5) -> Dataset:
    """A user's data set.

    CSV: one sample a row, numbers separated by commas, the label in ``label_column`` (default: the
    last);
    a first row that is not numeric is taken as a header. .npz: arrays ``x`` (m, d) and ``y`` (m,),
    and
    optionally ``x_test`` and ``y_test``. Without a test set, a seeded random ``test_fraction`` of
    the
    rows is held out.
    """
    path = Path(path)
    if not path.is_file():
        raise RkgenError(f"dataset file {str(path)!r} does not exist")
    x_test = y_test = None
    if path.suffix.lower() == ".npz":
        with np.load(path, allow_pickle=False) as z:
            if "x" not in z or "y" not in z:
                raise RkgenError(
                    f"{path}: an .npz data set needs arrays 'x' and 'y' (and "
                    f"optionally 'x_test', 'y_test'); found {sorted(z.files)}"
                )
            x, y = np.asarray(z["x"], float), np.asarray(z["y"]).ravel()
            if "x_test" in z and "y_test" in z:
                x_test, y_test = np.asarray(z["x_test"], float), np.asarray(z["y_test"]).ravel()
    else:
        with open(path, newline="") as fh:
            rows = [r for r in csv.reader(fh) if r and any(cell.strip() for cell in r)]
        if not rows:
            raise RkgenError(f"{path}: no rows")
        try:
            [float(v) for i, v in enumerate(rows[0]) if i != label_column % len(rows[0])]
        except ValueError:
            rows = rows[1:]
        width = len(rows[0])
        if width < 2:
            raise RkgenError(f"{path}: need at least one feature column and a label column")
        col = label_column % width
        try:
            x = np.array([[float(v) for i, v in enumerate(r) if i != col] for r in rows])
        except ValueError as e:
            raise RkgenError(f"{path}: a feature is not a number ({e})") from None
        y = np.array([r[col].strip() for r in rows])
    if x.ndim != 2 or len(x) != len(y):
        raise RkgenError(f"{path}: x must be (m, d) and y (m,), got {x.shape} and {y.shape}")
    if not np.all(np.isfinite(x)):
        raise RkgenError(f"{path}: the features contain NaN or infinite values")
    if x_test is None:
        allc, names = _labels(y, str(path))
        perm = rng.permutation(len(x))
        n_test = int(round(test_fraction * len(x)))
        if n_test < 1 or n_test >= len(x):
            raise RkgenError(f"{path}: too few rows ({len(x)}) to hold out a test set")
        te, tr = perm[:n_test], perm[n_test:]
        return Dataset(path.stem, x[tr], allc[tr], x[te], allc[te], len(names), names)
    allc, names = _labels(np.concatenate([y.astype(str), y_test.astype(str)]), str(path))
    return Dataset(path.stem, x, allc[: len(y)], x_test, allc[len(y) :], len(names), names)

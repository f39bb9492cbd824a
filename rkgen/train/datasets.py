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

The sets of 000 as its authors' published MATLAB code draws them, all within about [-1, 1]^2 (the
defaults of the two 000 examples; 500 training and 500 test points):

- benning-donut1d: grid points x1 on 100 equally spaced values of [-1, 1], x2 = 0; class 1 (a third
  of the points) drawn with weights exp(-r^2 / (2 0.1^2)) around radius 0, class 0 with weights
  exp(-(r - 0.5)^2 / (2 0.1^2)) around radius 0.5, r = |x|; then noise N(0, 0.1^2) on both
  coordinates.
- benning-donut2d: the same on the 100 x 100 grid of [-1, 1]^2, half of the points in each class.
- benning-spiral: two arms of equally many points, radius linear from 0.1 to 1 and angle linear
  from 0.1 to 2 pi; the second arm (class 1) is the first rotated by pi; noise N(0, 0.05^2).
- benning-squares: x uniform on [-0.7, 0.7]^2, class 1 iff x1 x2 > 0, then noise N(0, 0.1^2).
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rkgen.errors import RkgenError, count

BUILTIN = ("donut1d", "donut2d", "squares", "spiral")
#: the sets of 000 as its authors' code draws them (module docstring)
BENNING = ("benning-donut1d", "benning-donut2d", "benning-spiral", "benning-squares")
MULTI_PATTERN = re.compile(r"^(donut|squares)([1-9])d-([0-9]+)c$")

# 000 section 5.1: 500 samples for donut1d, 1000 for the other three.
DEFAULT_SIZES = {"donut1d": 500, "donut2d": 1000, "squares": 1000, "spiral": 1000}
DEFAULT_SIZES.update(dict.fromkeys(BENNING, 500))  # 000 section 5.2: 500 training, 500 validation
MULTI_DEFAULT_SIZE = 1500  # 004 uses 1500 training and 1500 validation points

#: a number as a data file writes it: decimal, optionally with an exponent, or nan/inf (refused
#: later as not finite); not Python's extras (1_000) and not hexadecimal
NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?:nan|inf|infinity)", re.IGNORECASE)
#: the longest value a message repeats whole
SHORT = 40


def number(text: str) -> float:
    """The float of a data file's cell; ValueError unless it is a number in the usual notation."""
    if not NUMBER.fullmatch(text):
        raise ValueError(f"not a number: {text!r}")
    return float(text)


def short(text) -> str:
    """repr(text), cut to about SHORT characters with an ellipsis, for a message."""
    text = str(text)
    return repr(text if len(text) <= SHORT else text[: SHORT - 1] + "\u2026")


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

    def arrays(self) -> dict:
        """The arrays of dataset.npz (see load)."""
        return dict(
            x_train=self.x_train,
            c_train=self.c_train,
            x_test=self.x_test,
            c_test=self.c_test,
            n_classes=self.n_classes,
            name=self.name,
            class_names=np.array([str(c) for c in self.class_names]),
        )

    def save(self, path) -> None:
        np.savez(path, **self.arrays())

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
    x = np.concatenate([arm + rng.standard_normal(arm.shape), -arm + rng.standard_normal(arm.shape)])
    c = np.concatenate([np.zeros(half, np.int64), np.ones(half, np.int64)])
    perm = rng.permutation(2 * half)[:n]
    return x[perm] / 5.0, c[perm]


def _radial_draw(rng, grid, n, centre):
    """n grid points drawn (with replacement) with weights exp(-(|x| - centre)^2 / (2 0.1^2))."""
    r = np.sqrt(np.sum(grid * grid, axis=1))
    w = np.exp(-((r - centre) ** 2) / (2.0 * 0.1**2))
    return grid[rng.choice(len(grid), size=n, p=w / w.sum())]


def _benning_donut(rng, n, grid, share1):
    n1 = int(round(n * share1))
    x = np.concatenate([_radial_draw(rng, grid, n1, 0.0), _radial_draw(rng, grid, n - n1, 0.5)])
    c = np.concatenate([np.ones(n1, np.int64), np.zeros(n - n1, np.int64)])
    perm = rng.permutation(n)
    return x[perm] + 0.1 * rng.standard_normal(x.shape), c[perm]


_LINE = np.linspace(-1.0, 1.0, 100)


def _benning_donut1d(rng, n):
    return _benning_donut(rng, n, np.column_stack([_LINE, np.zeros_like(_LINE)]), 1.0 / 3.0)


def _benning_donut2d(rng, n):
    g1, g2 = np.meshgrid(_LINE, _LINE)
    return _benning_donut(rng, n, np.column_stack([g1.ravel(), g2.ravel()]), 0.5)


def _benning_spiral(rng, n):
    half = (n + 1) // 2
    r = np.linspace(0.1, 1.0, half)
    phi = np.linspace(0.1, 2.0 * np.pi, half)
    arm = np.column_stack([r * np.cos(phi), r * np.sin(phi)])
    x = np.concatenate([arm, -arm])  # the second arm is the first rotated by pi
    c = np.concatenate([np.zeros(half, np.int64), np.ones(half, np.int64)])
    perm = rng.permutation(2 * half)[:n]
    return x[perm] + 0.05 * rng.standard_normal((n, 2)), c[perm]


def _benning_squares(rng, n):
    x = 1.4 * rng.random((n, 2)) - 0.7
    c = (x[:, 0] * x[:, 1] > 0.0).astype(np.int64)
    return x + 0.1 * rng.standard_normal(x.shape), c


GENERATORS = {
    "donut1d": _donut1d,
    "donut2d": _donut2d,
    "squares": _squares,
    "spiral": _spiral,
    "benning-donut1d": _benning_donut1d,
    "benning-donut2d": _benning_donut2d,
    "benning-spiral": _benning_spiral,
    "benning-squares": _benning_squares,
}


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
    return [*BUILTIN, *BENNING, "donut<D>d-<K>c", "squares2d-4c", "squares3d-4c", "digits08"]


def is_builtin(name: str) -> bool:
    """True for a built-in data set's name (drawn by a generator), False for a file."""
    return name in GENERATORS or name == "digits08" or MULTI_PATTERN.match(name) is not None


def builtin_dim(name: str) -> int:
    """The input dimension of a built-in data set."""
    m = MULTI_PATTERN.match(name)
    return int(m.group(2)) if m else 64 if name == "digits08" else 2


def make_dataset(
    name: str,
    rng: np.random.Generator,
    n_train: int | None = None,
    n_test: int | None = None,
    label_column: int = -1,
    test_fraction: float = 0.5,
) -> Dataset:
    """Draw a built-in data set, or read a user's .csv / .npz file (see load_file)."""
    if name in GENERATORS:
        gen = GENERATORS[name]
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
            if k > 2 and k > MAX_CLASS_SHARE * n_train:
                raise RkgenError(
                    f"dataset {name!r}: {k} classes on {count(n_train, 'training point')} (more than half "
                    f"of them); ask for at least {math.ceil(k / MAX_CLASS_SHARE)} points with --samples, or "
                    "for fewer classes"
                )

            def gen(r, n):
                return _donut_multi(r, n, dim, k)
        else:
            if dim not in (2, 3) or k != 4:
                raise RkgenError(f"dataset {name!r}: the squares sets are squares2d-4c and squares3d-4c")

            def gen(r, n):
                return _squares_multi(r, n, dim)

        x, c = gen(rng, n_train)
        xt, ct = gen(rng, n_test)
        return Dataset(name, x, c, xt, ct, k)
    if name == "digits08":
        return _digits08(rng, n_train or 100, n_test)
    check_source(name)
    return load_file(Path(name), rng, label_column, test_fraction)


def check_source(name: str) -> None:
    """Refuse a --dataset that is neither a built-in set nor a data file that exists."""
    if is_builtin(name):
        return
    path = Path(name)
    if path.suffix.lower() not in (".csv", ".npz", ".txt"):
        raise RkgenError(
            f"unknown dataset {short(name)}; choose one of {', '.join(dataset_names())} or a .csv/.npz file"
        )
    _check_file(path)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise RkgenError(f"dataset file {short(path)} does not exist")
    if not path.is_file():
        raise RkgenError(f"dataset file {short(path)} is not a regular file")


def _digits08(rng, n_train, n_test):
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise RkgenError("dataset 'digits08' needs scikit-learn: pip install 'rkgen[digits]'") from None
    x, y = load_digits(return_X_y=True)
    keep = (y == 0) | (y == 8)
    x, c = x[keep] / 16.0, (y[keep] == 8).astype(np.int64)
    perm = rng.permutation(len(c))
    if n_train >= len(c):
        raise RkgenError(f"digits08 has {len(c)} images of 0 and 8; ask for fewer than that")
    test = perm[n_train:] if n_test is None else perm[n_train : n_train + n_test]
    return Dataset("digits08", x[perm[:n_train]], c[perm[:n_train]], x[test], c[test], 2, ("0", "8"))


#: more distinct labels than this share of the rows: the column holds values, not classes
MAX_CLASS_SHARE = 0.5


def _labels(raw, where, rows=None):
    """Map label values onto 0..K-1 (sorted), keeping the names.

    Labels are class names (any text that is not a number) or class numbers: non-negative
    integers, written as 3 or 3.0. A number that is not one (0.5, -1, nan, inf) is refused, and so
    is a column with so many distinct values that it looks continuous. ``rows`` gives each label's
    line number for the message."""
    raw = np.asarray(raw).astype(str)
    values = np.char.strip(raw)
    for i, v in enumerate(values):
        if not v:
            raise RkgenError(f"{where}: {_row(rows, i)} has an empty label")
    distinct = len(np.unique(values))
    if distinct > 2 and distinct > MAX_CLASS_SHARE * len(values):
        raise RkgenError(
            f"{where}: the labels take {distinct} distinct values in {count(len(values), 'row')}, so the "
            "column looks continuous (a regression target?); rkgen trains classifiers with a few "
            "classes: choose the class column with --label-column"
        )
    numbers = []
    for v in values:
        try:
            numbers.append(number(v))
        except ValueError:
            numbers = None
            break
    if numbers is not None:
        for i, (v, x) in enumerate(zip(values, numbers, strict=True)):
            if not (np.isfinite(x) and x >= 0 and x == int(x)):
                raise RkgenError(
                    f"{where}: {_row(rows, i)} has the label {short(v)}, which is not a class; numeric "
                    "labels must be non-negative integers (0, 1, 2, ...)"
                )
        ints = np.array([int(x) for x in numbers])
        names, codes = np.unique(ints, return_inverse=True)
    else:
        names, codes = np.unique(values, return_inverse=True)
    if len(names) < 2:
        raise RkgenError(f"{where}: the labels take a single value; need at least two classes")
    return codes.astype(np.int64), tuple(str(n) for n in names)


def _row(rows, i):
    return f"line {rows[i]}" if rows is not None else f"entry {i + 1}"


def csv_rows(path):
    """The rows of a CSV file as lists of stripped cells, with their line numbers: UTF-8, commas, blank
    lines and lines that start with # skipped."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            rows, lines = [], []
            for r in reader:
                if r and any(cell.strip() for cell in r) and not r[0].lstrip().startswith("#"):
                    rows.append([cell.strip() for cell in r])
                    lines.append(reader.line_num)
    except UnicodeDecodeError:
        raise RkgenError(f"{path}: not a text file in UTF-8") from None
    except (OSError, csv.Error) as e:
        raise RkgenError(f"{path}: not a readable CSV file ({e})") from None
    if not rows:
        raise RkgenError(f"{path}: no rows")
    return rows, lines


def csv_table(path, rows, lines, col):
    """(x, labels or None, line numbers) of CSV rows whose label is in column ``col`` (None: no label
    column). A first row whose features are not all numbers is a header; every row must have the first
    row's width; every feature must be a finite number."""
    width = len(rows[0])
    if is_header(rows[0], col):
        rows, lines = rows[1:], lines[1:]
        if not rows:
            raise RkgenError(f"{path}: a header and no data rows")
    for r, line in zip(rows, lines, strict=True):
        if len(r) != width:
            raise RkgenError(f"{path}: line {line} has {count(len(r), 'column')}, the first row {width}")
    x = np.empty((len(rows), width - (col is not None)))
    for k, (r, line) in enumerate(zip(rows, lines, strict=True)):
        for j, (i, v) in enumerate((i, v) for i, v in enumerate(r) if i != col):
            if not v:
                raise RkgenError(f"{path}: line {line}, column {i + 1}: the feature is empty")
            try:
                x[k, j] = number(v)
            except ValueError:
                raise RkgenError(
                    f"{path}: line {line}, column {i + 1}: the feature {short(v)} is not a number"
                ) from None
            if not np.isfinite(x[k, j]):
                raise RkgenError(f"{path}: line {line}, column {i + 1}: the feature {short(v)} is not finite")
    labels = None if col is None else np.array([r[col] for r in rows])
    return x, labels, lines


def is_header(row, col) -> bool:
    """A first row is a header when every cell but the label's is text: not empty, not a number."""
    cells = [v for i, v in enumerate(row) if i != col]
    return bool(cells) and all(v and not NUMBER.fullmatch(v) for v in cells)


def label_column_index(path, label_column, width):
    """The 0-based column of ``label_column`` (negative counts from the end) in rows of ``width``."""
    if not -width <= label_column < width:
        raise RkgenError(
            f"{path}: --label-column {label_column} is out of range for {width} columns (use 0 to "
            f"{width - 1}, or -1 to -{width} counted from the end)"
        )
    return label_column % width


def _read_csv(path, label_column):
    """(x, labels, line numbers) of a CSV file; see load_file."""
    rows, lines = csv_rows(path)
    width = len(rows[0])
    if width < 2:
        raise RkgenError(
            f"{path}: line {lines[0]} has {count(width, 'column')}; need at least one feature column and a "
            "label column, separated by commas"
        )
    return csv_table(path, rows, lines, label_column_index(path, label_column, width))


def _load_npz(path):
    """(x, y, x_test, y_test) of an .npz data set; see load_file."""
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as z:
            if "x" not in z or "y" not in z:
                raise RkgenError(
                    f"{path}: an .npz data set needs arrays 'x' and 'y' (and optionally 'x_test', "
                    f"'y_test'); found {sorted(z.files)}"
                )
            arrays = {k: z[k] for k in ("x", "y", "x_test", "y_test") if k in z}
    except RkgenError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        why = "it holds Python objects, which rkgen never loads" if "pickle" in str(e) else e
        raise RkgenError(f"{path}: not a readable .npz file ({why})") from None
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise RkgenError(f"{path}: give both 'x_test' and 'y_test', or neither")
    out = []
    for xk, yk in (("x", "y"), ("x_test", "y_test")):
        if xk not in arrays:
            out += [None, None]
            continue
        x, y = arrays[xk], arrays[yk]
        if x.ndim != 2 or y.ndim != 1 or len(x) != len(y) or len(x) == 0:
            raise RkgenError(f"{path}: '{xk}' must be (m, d) and '{yk}' (m,) with m >= 1; got {x.shape} and {y.shape}")
        if x.dtype.kind not in "biuf":
            raise RkgenError(f"{path}: '{xk}' must hold numbers, not {x.dtype}")
        out += [x.astype(float), y]
    if out[2] is not None and out[2].shape[1] != out[0].shape[1]:
        raise RkgenError(f"{path}: 'x' has {out[0].shape[1]} features, 'x_test' {out[2].shape[1]}")
    return out


def load_file(path, rng, label_column=-1, test_fraction=0.5) -> Dataset:
    """A user's data set.

    CSV (UTF-8): one sample a row, numbers separated by commas, the label in ``label_column``
    (default: the last); a first row whose features are all text is a header; blank lines and lines that
    start with # are skipped. .npz: arrays ``x`` (m, d) and ``y`` (m,), and optionally ``x_test``
    and ``y_test``. Labels are class names or non-negative integers (see _labels). Without a test
    set, a seeded random ``test_fraction`` of the rows is held out.
    """
    path = Path(path)
    _check_file(path)
    x_test = y_test = lines = None
    if path.suffix.lower() == ".npz":
        x, y, x_test, y_test = _load_npz(path)
    else:
        x, y, lines = _read_csv(path, label_column)
    for name, a in (("the features", x), ("the test features", x_test)):
        if a is not None and not np.all(np.isfinite(a)):
            raise RkgenError(f"{path}: {name} contain NaN or infinite values")
    if x_test is None:
        allc, names = _labels(y, str(path), lines)
        n_test = int(round(test_fraction * len(x)))
        if n_test < 1 or n_test >= len(x):
            raise RkgenError(
                f"{path}: {count(len(x), 'row')} cannot be split into training and test points with "
                f"--test-fraction {test_fraction:g}; add rows or give a test set"
            )
        perm = rng.permutation(len(x))
        te, tr = perm[:n_test], perm[n_test:]
        return Dataset(path.stem, x[tr], allc[tr], x[te], allc[te], len(names), names)
    allc, names = _labels(np.concatenate([y.astype(str), y_test.astype(str)]), str(path))
    return Dataset(path.stem, x, allc[: len(y)], x_test, allc[len(y) :], len(names), names)

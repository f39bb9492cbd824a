"""``rkgen predict``: class probabilities and labels of new points from a trained run.

The lead's rkgen/cli.py hooks it in as a subcommand through ``add_arguments(parser)`` and
``run(args)``; ``python -m rkgen.train.predict_cli`` runs it alone.

DATA is a .csv (or .txt) or .npz file of points as in the data source (the run's --data-scale is
applied here, as training applied it):

- CSV, read by the trainer's rules (UTF-8, commas; blank lines and lines starting with # are
  skipped; a first row whose features are not all numbers is a header): with d columns, d the
  run's data dimension, every column is a feature; with d + 1 columns, one of them is the label,
  in --label-column (default: the run's own, -1 the last).
- .npz: an array ``x`` (m, d), and optionally ``y`` (m,) with the labels.

Labels are the original class names (a number matches a numeric class of equal value). The output
is a CSV with one row per point: ``p_<class>`` for every class (the probabilities, in the order of
the run's classes) and ``label``, the predicted class; to -o FILE (written atomically), else to
stdout. With labels, the accuracy goes to stderr.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import zipfile
from pathlib import Path

import numpy as np

from rkgen.errors import RkgenError
from rkgen.train.datasets import csv_rows, csv_table, label_column_index

DESCRIPTION = """\
Predict the classes of new points with a trained run (a folder written by 'rkgen train').

DATA is a .csv with d columns (features) or d + 1 (features and a label, in --label-column),
d being the run's data dimension, or an .npz with an array x (m, d) and optionally y (m,).
The run's --data-scale is applied to the points as in training. The output is a CSV, one row a
point: p_<class> for every class, then label (the predicted class name). With labels, the
accuracy is printed to stderr.

example:
  rkgen predict runs/spiral-rk4 points.csv -o predictions.csv
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN", help="the run folder (written by 'rkgen train')")
    parser.add_argument("data", metavar="DATA", help="the points: a .csv/.txt or .npz file")
    parser.add_argument(
        "-o",
        "--output",
        metavar="OUT.csv",
        help="write the predictions here (replaced atomically) instead of to stdout",
    )
    parser.add_argument(
        "--label-column",
        type=int,
        metavar="I",
        help="CSV column of the label when DATA has d + 1 columns (default: the run's, -1 the last)",
    )
    parser.add_argument(
        "--tableau",
        metavar="SPEC",
        help="the run's tableau, if its file (JSON or *_net.py) has moved since training; it must be the same tableau",
    )


def run(args: argparse.Namespace) -> int:
    from rkgen.train.predict import load_run

    tableau = getattr(args, "tableau", None)
    r = load_run(args.run_dir, network=tableau)
    label_column = getattr(args, "label_column", None)
    if label_column is None:
        label_column = r.config.label_column if isinstance(r.config.label_column, int) else -1
    x, labels, where = read_points(args.data, r.dim, label_column)
    try:
        c = r.encode(labels, where) if labels is not None else None
        proba, classes = r.classify(x)
    except RkgenError as e:
        raise RkgenError(f"{args.data}: {e}") from None
    text = format_predictions(r.class_names, proba, classes)
    output = getattr(args, "output", None)
    if output:
        _write(output, text)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    if r.status not in (None, "completed", "stalled"):
        print(
            f"rkgen: note: the run's status is {r.status}; these are its last saved parameters",
            file=sys.stderr,
        )
    if c is not None:
        correct = int(np.count_nonzero(classes == c))
        print(
            f"accuracy {100 * correct / len(c):.2f}% ({correct} of {len(c)} points)",
            file=sys.stderr,
        )
    return 0


def format_predictions(class_names, proba: np.ndarray, classes: np.ndarray) -> str:
    """The output CSV: p_<class> columns (probabilities, repr: they read back exactly), label."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([f"p_{n}" for n in class_names] + ["label"])
    names = list(class_names)
    for p, k in zip(proba.tolist(), classes.tolist(), strict=True):
        w.writerow([repr(v) for v in p] + [names[k]])
    return buf.getvalue()


def _write(path, text: str) -> None:
    from rkgen.fileio import write_text_atomic

    write_text_atomic(path, text)


# -- reading DATA ----------------------------------------------------------------------------------


def read_points(data, dim: int, label_column: int = -1):
    """(x (m, dim), labels (m,) as strings or None, the labels' places for messages) from a
    .csv/.txt or .npz file."""
    path = Path(data)
    if not path.is_file():
        raise RkgenError(f"{data}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _read_npz(path, dim)
    if suffix in (".csv", ".txt"):
        return _read_csv(path, dim, label_column)
    raise RkgenError(f"{data}: give the points as a .csv, .txt or .npz file")


def _read_npz(path: Path, dim: int):
    try:
        with np.load(path, allow_pickle=False) as z:
            files = sorted(z.files)
            if "x" not in files:
                raise RkgenError(
                    f"{path}: the points must be in an array 'x' (and the labels, if any, in 'y'); found {files}"
                )
            x = z["x"]
            y = z["y"] if "y" in files else None
    except RkgenError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
        why = "it holds Python objects, which rkgen never loads" if "pickle" in str(e) else e
        raise RkgenError(f"{path}: not a readable .npz file ({why})") from None
    if x.dtype.kind not in "biuf":
        raise RkgenError(f"{path}: 'x' must hold numbers, not {x.dtype}")
    if x.ndim != 2 or x.shape[1] != dim or len(x) == 0:
        raise RkgenError(
            f"{path}: 'x' must have shape (m, {dim}) with m >= 1 (the run's data has {dim} features); got {x.shape}"
        )
    x = x.astype(float)
    bad = ~np.all(np.isfinite(x), axis=1)
    if bad.any():
        raise RkgenError(f"{path}: x[{np.flatnonzero(bad)[0]}] holds NaN or infinite values")
    labels = None
    if y is not None:
        if y.ndim != 1 or len(y) != len(x):
            raise RkgenError(f"{path}: 'y' must have shape ({len(x)},); got {y.shape}")
        if y.dtype.kind not in "biufUS":
            raise RkgenError(f"{path}: 'y' must hold numbers or text, not {y.dtype}")
        labels = np.array([str(v).strip() for v in y.tolist()], dtype=object)
    return x, labels, [f"y[{i}]" for i in range(len(x))]


def _read_csv(path: Path, dim: int, label_column: int):
    """The trainer's CSV rules (rkgen.train.datasets), with the label column optional: d columns are
    features only, d + 1 features and a label."""
    rows, lines = csv_rows(path)
    width = len(rows[0])
    if width == dim:
        col = None
    elif width == dim + 1:
        col = label_column_index(path, label_column, width)
    else:
        raise RkgenError(
            f"{path}: line {lines[0]} has {width} columns; the run's data has {dim} features, so "
            f"give {dim} columns (the features) or {dim + 1} (the features and a label)"
        )
    x, labels, lines = csv_table(path, rows, lines, col)
    if labels is not None:
        labels = labels.astype(object)
        for lab, line in zip(labels, lines, strict=True):
            if not lab:
                raise RkgenError(f"{path}: line {line} has an empty label")
    return x, labels, [f"line {line}" for line in lines]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="rkgen predict",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except RkgenError as e:
        print(f"rkgen: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

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
the run's classes) and ``label``, the predicted class; to -o FILE (written atomically; a file of the
run folder or DATA itself is refused), else to stdout. With labels, the accuracy goes to stderr.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import stat
import sys
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from rkgen.errors import RkgenError, count
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
        help="write the predictions here (replaced atomically; never a file of RUN, nor DATA) instead of to stdout",
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
    given = getattr(args, "label_column", None)
    label_column = given
    if label_column is None:
        label_column = r.config.label_column if isinstance(r.config.label_column, int) else -1
    x, labels, where = read_points(args.data, r.dim, label_column, given=given is not None)
    output = getattr(args, "output", None)
    if output is not None:
        check_output(output, r.path, args.data)  # before anything is computed or written
    try:
        c = r.encode(labels, where.labels) if labels is not None else None
        proba, classes = r.classify(x, where=where.points)
    except RkgenError as e:
        raise RkgenError(f"{args.data}: {e}") from None
    text = format_predictions(r.class_names, proba, classes)
    if output is not None:
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
            f"accuracy {100 * correct / len(c):.2f}% ({correct} of {count(len(c), 'point')})",
            file=sys.stderr,
        )
    return 0


def check_output(output, run_dir, data) -> None:
    """Refuse an -o that is empty, the input DATA, or a file of the run folder (its config.json,
    params.npz, ...: any file there that exists); paths are compared resolved (links followed)."""
    if not str(output):
        raise RkgenError("-o is empty; give the file to write the predictions to")
    real = os.path.realpath(output)
    if real == os.path.realpath(data) or _same_file(output, data):
        raise RkgenError(f"-o is the input DATA ({data}); write the predictions elsewhere")
    folder = os.path.realpath(run_dir)
    inside = os.path.commonpath([real, folder]) == folder and real != folder
    if inside and os.path.lexists(real):
        own = Path(os.path.relpath(real, folder)).as_posix()
        raise RkgenError(f"-o would overwrite the run's own {own}; write the predictions elsewhere")


def _same_file(a, b) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


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


class Places(NamedTuple):
    """The names of the points' and of the labels' places for messages (1-based): a CSV's lines, or
    an .npz's "x row i" and "y entry i"."""

    points: list
    labels: list


def read_points(data, dim: int, label_column: int = -1, given: bool = False):
    """(x (m, dim), labels (m,) as strings or None, the points' and labels' :class:`Places`) from a
    .csv/.txt or .npz file. given: --label-column was given (a file without a label column refuses it)."""
    path = Path(data)
    _check_data(data)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        if given:
            raise RkgenError(f"{data}: --label-column is for a CSV file; an .npz holds the labels in 'y'")
        return _read_npz(path, dim)
    if suffix in (".csv", ".txt"):
        return _read_csv(path, dim, label_column, given)
    raise RkgenError(f"{data}: give the points as a .csv, .txt or .npz file")


def _check_data(data) -> None:
    """DATA must be a regular file (a link to one is fine: it is only read)."""
    if not str(data):
        raise RkgenError("DATA is empty; give a .csv, .txt or .npz file of points")
    try:
        st = os.stat(data)
    except FileNotFoundError:
        raise RkgenError(f"{data}: no such file") from None
    except OSError as e:
        raise RkgenError(f"{data}: cannot read: {e.strerror or e}") from None
    if stat.S_ISDIR(st.st_mode):
        raise RkgenError(f"{data} is a folder; give a .csv, .txt or .npz file of points")
    if not stat.S_ISREG(st.st_mode):
        kind = next((name for test, name in _KINDS if test(st.st_mode)), "a special file")
        raise RkgenError(f"{data} is not a regular file (it is {kind}); give a .csv, .txt or .npz file")


_KINDS = (
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISCHR, "a device"),
    (stat.S_ISBLK, "a device"),
    (stat.S_ISSOCK, "a socket"),
)


_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip's first entry, or an empty zip


def _read_npz(path: Path, dim: int):
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError as e:
        raise RkgenError(f"{path}: cannot read: {e.strerror or e}") from None
    if head not in _ZIP_MAGIC:
        raise RkgenError(f"{path}: not an .npz (zip) file; write the points with numpy.savez(file, x=..., y=...)")
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
    except (OSError, ValueError, EOFError, KeyError, TypeError, zipfile.BadZipFile) as e:
        # numpy refuses an object array of a zip member with "Object arrays cannot be loaded when
        # allow_pickle=False"; anything else is a damaged file
        why = "it holds Python objects, which rkgen never loads" if "allow_pickle" in str(e) else e
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
        raise RkgenError(f"{path}: x row {np.flatnonzero(bad)[0] + 1} holds NaN or infinite values")
    labels = None
    if y is not None:
        if y.ndim != 1 or len(y) != len(x):
            raise RkgenError(f"{path}: 'y' must have shape ({len(x)},); got {y.shape}")
        if y.dtype.kind not in "biufUS":
            raise RkgenError(f"{path}: 'y' must hold numbers or text, not {y.dtype}")
        labels = np.array([str(v).strip() for v in y.tolist()], dtype=object)
        for i, lab in enumerate(labels):
            if not lab:
                raise RkgenError(f"{path}: y entry {i + 1} is an empty label")
    m = range(1, len(x) + 1)
    return x, labels, Places([f"x row {i}" for i in m], [f"y entry {i}" for i in m])


def _read_csv(path: Path, dim: int, label_column: int, given: bool = False):
    """The trainer's CSV rules (rkgen.train.datasets), with the label column optional: d columns are
    features only, d + 1 features and a label."""
    rows, lines = csv_rows(path)
    width = len(rows[0])
    if width == dim:
        if given:
            raise RkgenError(
                f"{path}: --label-column {label_column} given, but the file has no label column: "
                f"its {count(dim, 'column')} {'is' if dim == 1 else 'are'} the {'feature' if dim == 1 else 'features'}"
            )
        col = None
    elif width == dim + 1:
        col = label_column_index(path, label_column, width)
    else:
        raise RkgenError(
            f"{path}: line {lines[0]} has {count(width, 'column')}; the run's data has {count(dim, 'feature')}, so "
            f"give {count(dim, 'column')} (the {'feature' if dim == 1 else 'features'}) or {count(dim + 1, 'column')} "
            f"(the {'feature' if dim == 1 else 'features'} and a label)"
        )
    x, labels, lines = csv_table(path, rows, lines, col)
    if labels is not None:
        labels = labels.astype(object)
        for lab, line in zip(labels, lines, strict=True):
            if not lab:
                raise RkgenError(f"{path}: line {line} has an empty label")
    places = [f"line {line}" for line in lines]
    return x, labels, Places(places, places)


def main(argv=None) -> int:
    from rkgen.train.cli import standalone

    return standalone("rkgen predict", DESCRIPTION, add_arguments, run, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

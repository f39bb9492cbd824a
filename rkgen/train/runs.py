"""Run folders: unique names, exclusive creation, atomic writes, a history file that grows.

Every file goes through :mod:`rkgen.fileio`: regular files only, written atomically; a failure (a full disk, a
read-only folder) is one :class:`RkgenError` line ``PATH: cannot write: <reason>``.
"""

from __future__ import annotations

import csv
import json
import os
import re
import secrets
import stat
import time
import zipfile
from pathlib import Path

import numpy as np

from rkgen.errors import RkgenError
from rkgen.fileio import cannot_write, check_target, open_append, open_atomic, save_figure, write_text_atomic
from rkgen.train.datasets import Dataset

__all__ = [
    "HISTORY_COLUMNS",
    "HistoryWriter",
    "check_same_tableau",
    "create_run_dir",
    "read_history",
    "read_history_rows",
    "save_figure",
    "save_npz",
    "write_json",
]

HISTORY_COLUMNS = (
    "iteration",
    "epoch",
    "train_loss",
    "train_accuracy",
    "test_loss",
    "test_accuracy",
    "seconds",
    "step_control",
)


def _slug(text: str) -> str:
    text = Path(str(text)).stem if ("/" in str(text) or "." in str(text)) else str(text)
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", text).strip("_") or "x"


def create_run_dir(out: str | None, dataset: str, tableau: str | None, model: str) -> Path:
    """Create the run folder exclusively (never reuse or overwrite one).

    With out=None: runs/<dataset>-<tableau>-<model>-<YYYYmmdd-HHMMSS>-<6 hex digits> under the
    current
    directory; two runs started in the same second still get different folders. With out given, that
    folder is created (its parents too); if it exists and is not empty, this is an error.
    """
    if out is None:
        base = Path("runs").resolve()
        stamp = time.strftime("%Y%m%d-%H%M%S")
        stem = f"{_slug(dataset)}-{_slug(tableau or 'none')}-{model}-{stamp}"
        try:
            base.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _cannot_create("runs", exc) from None
        for _ in range(100):
            path = base / f"{stem}-{secrets.token_hex(3)}"
            try:
                path.mkdir()
                return path
            except FileExistsError:
                continue
            except OSError as exc:
                raise _cannot_create(Path("runs") / path.name, exc) from None
        raise RkgenError(f"could not create a new run folder under {base}")  # pragma: no cover
    if not str(out):
        raise RkgenError("--out is empty; give the run folder's name")
    if os.path.islink(out) or os.path.islink(os.path.normpath(out)):
        raise RkgenError(
            f"{out} is a symbolic link; rkgen writes only into folders it creates: give the new folder's own path"
        )
    try:
        mode = os.stat(out).st_mode
    except OSError:
        mode = None
    if mode is not None and not stat.S_ISDIR(mode):
        raise RkgenError(f"{out} is a file, not a folder; choose another --out")
    path = Path(out).resolve()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir()
    except FileExistsError:
        if not path.is_dir() or any(path.iterdir()):
            raise RkgenError(
                f"{out} exists and is not empty; choose another --out, or continue that run with --resume {out}"
            ) from None
    except OSError as exc:
        raise _cannot_create(out, exc) from None
    return path


def _cannot_create(path, exc: OSError) -> RkgenError:
    return RkgenError(f"{path}: cannot create the run folder: {exc.strerror or exc}")


def write_json(path: Path, data) -> None:
    """``data`` as indented JSON, written atomically (a value JSON cannot hold fails before any file is made)."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False, default=_jsonable) + "\n")


def _jsonable(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def save_npz(path: Path, **arrays) -> None:
    """np.savez to a temporary file, then an atomic rename: a crash never leaves half a file."""
    with open_atomic(path) as fh:
        np.savez(fh, **arrays)


class HistoryWriter:
    """history.csv, one row per evaluation, flushed as it is written."""

    def __init__(self, path: Path, truncate_after: int | None = None):
        self.path = path
        rows = read_history_rows(path) if check_target(path) is not None else []
        if truncate_after is not None:
            rows = [r for r in rows if int(r["iteration"]) <= truncate_after]
        with open_atomic(path, text=True) as fh:  # the header and the rows kept: replaced at once
            w = csv.writer(fh)
            w.writerow(HISTORY_COLUMNS)
            for r in rows:
                w.writerow([r[k] for k in HISTORY_COLUMNS])
        self._fh = open_append(path)
        self._w = csv.writer(self._fh)

    def append(self, row: dict) -> None:
        try:
            self._w.writerow([_fmt(row[k]) for k in HISTORY_COLUMNS])
            self._fh.flush()
        except OSError as exc:
            raise cannot_write(self.path, exc) from None

    def close(self) -> None:
        try:
            self._fh.close()
        except OSError as exc:
            raise cannot_write(self.path, exc) from None


def _fmt(v):
    if isinstance(v, float):
        return repr(v)
    return v


def read_history_rows(path: Path) -> list[dict]:
    try:
        with open(path, newline="") as fh:
            return list(csv.DictReader(fh))
    except OSError as exc:
        raise RkgenError(f"{path}: cannot read: {exc.strerror or exc}") from None


def read_history(path: Path) -> dict:
    """history.csv as a dict of numpy arrays, one per column."""
    rows = read_history_rows(Path(path))
    out = {}
    for k in HISTORY_COLUMNS:
        dtype = np.int64 if k in ("iteration", "epoch") else float
        out[k] = np.array([r[k] for r in rows], dtype=dtype)
    return out


def read_json(path: Path):
    """A run file's JSON; anything unreadable is one line."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise RkgenError(f"{path}: cannot read it as JSON ({type(e).__name__}: {e})") from None


def read_npz(path: Path) -> dict:
    """A run file's arrays (never pickled objects); anything unreadable is one line."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
        raise RkgenError(f"{path}: not a readable .npz file ({type(e).__name__}: {e})") from None


def read_dataset(path: Path) -> Dataset:
    """A run's dataset.npz; anything unreadable is one line."""
    try:
        ds = Dataset.load(path)
    except (OSError, ValueError, EOFError, KeyError, TypeError, zipfile.BadZipFile) as e:
        raise RkgenError(f"{path}: not a run's data set ({type(e).__name__}: {e})") from None
    if ds.x_train.ndim != 2 or ds.x_train.shape[1] < 1 or ds.n_classes < 2:
        raise RkgenError(f"{path}: not a run's data set (shape {ds.x_train.shape})")
    return ds


def check_same_tableau(path: Path, net, info: dict, spec) -> None:
    """Refuse a network whose tableau (stages, A, b, c) is not the one config.json's "network"
    records for the run in ``path``: resuming or predicting with another method would be silent."""
    ok = True
    if info.get("stages") is not None and getattr(net, "STAGES", None) is not None:
        ok = int(info["stages"]) == int(net.STAGES)
    for key in ("A", "B", "C"):
        if not ok:
            break
        if key in info and hasattr(net, key):
            try:
                want = np.asarray(info[key], dtype=float)
            except (TypeError, ValueError):
                raise RkgenError(f"{path / 'config.json'}: network.{key} is not an array of numbers") from None
            have = np.asarray(getattr(net, key), dtype=float)
            ok = want.shape == have.shape and np.allclose(have, want, rtol=1e-13, atol=1e-15)
    if not ok:
        raise RkgenError(
            f"{path}: the tableau {spec if isinstance(spec, str) else getattr(net, 'NAME', spec)!r} "
            f"is not the one the run was trained with ({info.get('name')!r}, config.json)"
        )

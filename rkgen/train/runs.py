"""Run folders: unique names, exclusive creation, atomic writes, a history file that grows."""

from __future__ import annotations

import csv
import json
import os
import re
import secrets
import time
from pathlib import Path

import numpy as np

from rkgen.errors import RkgenError

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
        base.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        stem = f"{_slug(dataset)}-{_slug(tableau or 'none')}-{model}-{stamp}"
        for _ in range(100):
            path = base / f"{stem}-{secrets.token_hex(3)}"
            try:
                path.mkdir()
                return path
            except FileExistsError:
                continue
        raise RkgenError(f"could not create a new run folder under {base}")  # pragma: no cover
    path = Path(out).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir()
    except FileExistsError:
        if not path.is_dir() or any(path.iterdir()):
            raise RkgenError(
                f"{out} exists and is not empty; choose another --out, or continue that run with "
                f"--resume {out}"
            ) from None
    return path


def write_json(path: Path, data) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=_jsonable) + "\n")
    os.replace(tmp, path)


def _jsonable(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def save_npz(path: Path, **arrays) -> None:
    """np.savez to a temporary name, then an atomic rename: a crash never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


class HistoryWriter:
    """history.csv, one row per evaluation, flushed as it is written."""

    def __init__(self, path: Path, truncate_after: int | None = None):
        self.path = path
        rows = read_history_rows(path) if path.exists() else []
        if truncate_after is not None:
            rows = [r for r in rows if int(r["iteration"]) <= truncate_after]
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(HISTORY_COLUMNS)
            for r in rows:
                w.writerow([r[k] for k in HISTORY_COLUMNS])
        self._fh = open(path, "a", newline="")
        self._w = csv.writer(self._fh)

    def append(self, row: dict) -> None:
        self._w.writerow([_fmt(row[k]) for k in HISTORY_COLUMNS])
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


def _fmt(v):
    if isinstance(v, float):
        return repr(v)
    return v


def read_history_rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def read_history(path: Path) -> dict:
    """history.csv as a dict of numpy arrays, one per column."""
    rows = read_history_rows(Path(path))
    out = {}
    for k in HISTORY_COLUMNS:
        dtype = np.int64 if k in ("iteration", "epoch") else float
        out[k] = np.array([r[k] for r in rows], dtype=dtype)
    return out

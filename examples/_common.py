"""Shared pieces of the examples: options, the output folder, a results file written as results
come, and the table that puts the papers' numbers beside ours."""

from __future__ import annotations

import argparse
import csv
import secrets
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(HERE.parent))


#: 000 section 5.2's step rule as its authors' code runs it: Algorithm 2 from L0 = 0.1, L <- 1.5 L on a
#: rejected trial, L <- 0.99 L on an accepted one, at most 200 trials (also 001's and the stability example's)
STEP_RULE_52 = {"optimizer": "gd-backtracking", "lipschitz": 0.1, "rho_up": 1.5, "rho_down": 0.99, "max_trials": 200}


def finals(res) -> dict:
    """A run's last evaluation: train_loss, test_loss, train_accuracy, test_accuracy (results.csv's columns)."""
    return {key: res.final(key) for key in ("train_loss", "test_loss", "train_accuracy", "test_accuracy")}


def parser(description: str, quick_help: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help=quick_help)
    p.add_argument("--out", help="output folder (default: a new folder under ./runs/)")
    p.add_argument("--seed", type=int, default=1, help="base seed (default 1)")
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bars (default: when stderr is a terminal)",
    )
    return p


def out_dir(name: str, given: str | None) -> Path:
    """A new output folder (never an existing one with files in it)."""
    if given:
        path = Path(given).resolve()
        path.mkdir(parents=True, exist_ok=True)
        if any(path.iterdir()):
            sys.exit(f"{sys.argv[0]}: error: {given} is not empty; choose another --out")
        return path
    base = Path("runs").resolve()
    base.mkdir(exist_ok=True)
    while True:
        path = base / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue


class Results:
    """results.csv, one row per finished run, flushed at once (a crash keeps what was done)."""

    def __init__(self, path: Path, columns):
        self.path, self.columns = path, list(columns)
        self.rows = []
        with open(path, "w", newline="") as fh:
            csv.writer(fh).writerow(self.columns)

    def add(self, **row):
        self.rows.append(row)
        with open(self.path, "a", newline="") as fh:
            csv.writer(fh).writerow([_fmt(row.get(c, "")) for c in self.columns])


def _fmt(v):
    return f"{v:.6g}" if isinstance(v, float) else v


def table(header, rows) -> str:
    """A plain-text table, columns aligned."""
    cells = [[str(h) for h in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def report(out: Path, text: str) -> None:
    """Print the final table and keep it beside the figures."""
    print(text)
    (out / "summary.txt").write_text(text + "\n")

"""How long `rkgen derive` takes to write a whole derivation document, every section included.

Each format is written by a fresh ``rkgen derive`` process (interpreter start, imports, the exact analyses, the
stability section and its drawings, the numerical check, the document), timed from outside; the median of
``--repeat`` runs. PDF runs pdflatex twice inside (when it is installed); the notebook format is timed when this
rkgen writes notebooks.

Target: a gauss5 document in under 30 s (Markdown and LaTeX; the PDF is reported beside them).

Run:  python benchmarks/bench_derive.py [--repeat 3] [--tableaux gauss5 rk4] [--no-pdf]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_builds import cpu_model  # noqa: E402

TARGET_SECONDS = 30.0


def _formats(no_pdf: bool) -> list[str]:
    help_text = subprocess.run(
        [sys.executable, "-m", "rkgen", "derive", "--help"], capture_output=True, text=True, cwd=REPO
    ).stdout
    out = ["md", "tex"]
    if "ipynb" in help_text:
        out.append("ipynb")
    if not no_pdf and shutil.which("pdflatex"):
        out.append("pdf")
    return out


def _time(name: str, fmt: str, folder: Path) -> float:
    target = folder / f"{name}.{fmt}"
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "rkgen", "derive", name, "--format", fmt, "-o", str(target), "--force"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    seconds = time.perf_counter() - t0
    if proc.returncode != 0 or not target.is_file():
        raise SystemExit(f"rkgen derive {name} --format {fmt} failed: {proc.stderr.strip()}")
    return seconds


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--tableaux", nargs="+", default=["gauss5", "rk4", "gauss2"])
    p.add_argument("--no-pdf", action="store_true", help="skip the PDF (pdflatex) timings")
    args = p.parse_args(argv)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; CPU: {cpu_model()}; load average {load}")
    formats = _formats(args.no_pdf)
    print(f"{'tableau':<10}" + "".join(f"{f:>12}" for f in formats) + "   (seconds, median of "
          f"{args.repeat} fresh processes)")
    verdicts = []
    with tempfile.TemporaryDirectory(prefix="rkgen-bench-derive-") as tmp:
        folder = Path(tmp)
        for name in args.tableaux:
            row = {}
            for fmt in formats:
                repeat = 1 if fmt == "pdf" else args.repeat
                row[fmt] = statistics.median(_time(name, fmt, folder) for _ in range(repeat))
            print(f"{name:<10}" + "".join(f"{row[f]:12.2f}" for f in formats), flush=True)
            if name == "gauss5":
                worst = max(row[f] for f in formats if f != "pdf")
                verdicts.append(
                    f"gauss5: the slowest of {', '.join(f for f in formats if f != 'pdf')} took {worst:.1f} s "
                    f"(target < {TARGET_SECONDS:.0f} s: {'met' if worst < TARGET_SECONDS else 'missed'})"
                )
    for line in verdicts:
        print(line)
    print(f"load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

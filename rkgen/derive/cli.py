"""The `rkgen derive` command: the document of a tableau's equations to stdout, a file or a PDF; the examples."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ..adjoint import PARAMS
from ..codegen.printer import check_float_range
from ..errors import RkgenError
from ..fileio import check_target, write_bytes_atomic, write_text_atomic
from ..tableau import Tableau, load
from .data import equations_json
from .derivation import Derivation

__all__ = ["EXAMPLES", "PDFLATEX_MISSING", "compile_pdf", "run_derive", "write_examples", "main"]

#: The built-ins whose documents are kept in examples/derivations/.
EXAMPLES = ("euler", "rk4", "midpoint", "gauss2")

#: The one-line error of ``--format pdf`` without a LaTeX installation.
PDFLATEX_MISSING = (
    "--format pdf needs pdflatex, which is not installed: install a TeX distribution "
    "(Debian/Ubuntu: apt install texlive-latex-base; elsewhere TeX Live, https://tug.org/texlive/), "
    "or write the LaTeX source with --format tex, which needs no LaTeX installation"
)


def compile_pdf(tex: str, output: Path, pdflatex: str | None = None) -> None:
    """Compile LaTeX source to ``output`` with pdflatex (in a temporary folder; a second run when asked for)."""
    pdflatex = pdflatex or shutil.which("pdflatex")
    if pdflatex is None:
        raise RkgenError(PDFLATEX_MISSING)
    with tempfile.TemporaryDirectory(prefix="rkgen-derive-") as tmp:
        src = Path(tmp) / "derivation.tex"
        src.write_text(tex, encoding="ascii", errors="replace")
        cmd = [pdflatex, "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", src.name]
        for _ in range(2):  # longtable settles its column widths on the second run
            try:
                proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, errors="replace", timeout=300)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise RkgenError(f"pdflatex failed to run: {exc}") from None
            if proc.returncode != 0 or "Rerun LaTeX" not in proc.stdout:
                break
        pdf = Path(tmp) / "derivation.pdf"
        if proc.returncode != 0 or not pdf.is_file():
            error = next((line for line in proc.stdout.splitlines() if line.startswith("!")), "see its log")
            raise RkgenError(f"pdflatex failed ({error.lstrip('! ').strip()}); --format tex writes the source")
        try:
            data = pdf.read_bytes()
        except OSError as exc:
            raise RkgenError(f"{pdf.name}: cannot read pdflatex's output: {exc.strerror}") from None
    write_bytes_atomic(output, data)  # next to the target, then renamed: never half-written, never a non-file


_SUFFIX_FORMAT = {".md": "md", ".markdown": "md", ".tex": "tex", ".pdf": "pdf"}


def _target(output: str | None, tableau: Tableau, fmt: str, params: str = "shared") -> Path | None:
    stem = tableau.identifier + ("" if params == "shared" else f"_{params}") + "_derivation"
    if output is None:
        return Path(f"{stem}.pdf") if fmt == "pdf" else None
    path = Path(output)
    if path.is_dir():
        path = path / f"{stem}.{fmt}"
    return path


def _write(path: Path, text: str) -> None:
    write_text_atomic(path, text)


def run_derive(args) -> int:
    """`rkgen derive TABLEAU [--format md|tex|pdf] [-o FILE] [--json] [--params shared|stage|continuous]`."""
    fmt = args.format
    if fmt is None:
        fmt = _SUFFIX_FORMAT.get(Path(args.output).suffix.lower(), "md") if args.output else "md"
    params = getattr(args, "params", None) or "shared"
    if params not in PARAMS:
        raise RkgenError(f"unknown parameter layout {params!r}; choose one of {', '.join(PARAMS)}")
    tableau = load(args.tableau)
    check_float_range(tableau)  # the document shows the network's float64 code, as `generate` writes it
    if args.json:
        text = json.dumps(equations_json(tableau, params), indent=2, ensure_ascii=False) + "\n"
        if args.output:
            _write(Path(args.output), text)
            print(f"wrote {args.output}")
        else:
            sys.stdout.write(text)
        return 0
    pdflatex = None
    if fmt == "pdf":
        pdflatex = shutil.which("pdflatex")
        if pdflatex is None:
            raise RkgenError(PDFLATEX_MISSING)
    target = _target(args.output, tableau, fmt, params)
    if target is not None:
        check_target(target)  # a link, a FIFO or a device is refused before the document is built
    doc = Derivation(tableau, params)
    if fmt == "pdf":
        compile_pdf(doc.latex(), target, pdflatex)
        print(f"wrote {target}")
        return 0
    text = doc.markdown() if fmt == "md" else doc.latex()
    if target is None:
        sys.stdout.write(text)
    else:
        _write(target, text)
        print(f"wrote {target}")
    return 0


def example_path(folder: Path, name: str, fmt: str) -> Path:
    return Path(folder) / f"{name}.{fmt}"


def write_examples(folder: str | os.PathLike = "examples/derivations") -> list[tuple[Path, str]]:
    """Write the derivation documents of :data:`EXAMPLES` (Markdown and LaTeX) to ``folder``."""
    folder = Path(folder)
    done = []
    for name in EXAMPLES:
        doc = Derivation(name)
        for fmt, text in (("md", doc.markdown()), ("tex", doc.latex())):
            path = example_path(folder, name, fmt)
            old = path.read_text(encoding="utf-8") if path.is_file() else None
            if old != text:
                _write(path, text)
            done.append((path, "unchanged" if old == text else "written"))
    return done


def main(argv: list[str]) -> int:
    folder = argv[0] if argv else "examples/derivations"
    for path, status in write_examples(folder):
        print(f"{status:>9}  {path}")
    return 0

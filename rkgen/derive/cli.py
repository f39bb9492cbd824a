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


_SUFFIX_FORMAT = {".md": "md", ".markdown": "md", ".tex": "tex", ".pdf": "pdf", ".json": "json", ".ipynb": "ipynb"}
_FORMAT_SUFFIX = {"md": ".md", "tex": ".tex", "pdf": ".pdf", "json": ".json", "ipynb": ".ipynb"}


def _target(output: str | None, tableau: Tableau, fmt: str, params: str = "shared") -> Path | None:
    stem = tableau.identifier + ("" if params == "shared" else f"_{params}") + "_derivation"
    if output is None:
        return Path(f"{stem}{_FORMAT_SUFFIX[fmt]}") if fmt in ("pdf", "ipynb") else None  # files, not terminal text
    path = Path(output)
    if path.is_dir() or output.endswith(("/", os.sep)):
        return path / f"{stem}{_FORMAT_SUFFIX[fmt]}"
    want = _SUFFIX_FORMAT.get(path.suffix.lower())
    if want is not None and want != fmt:
        what = "--json" if fmt == "json" else f"--format {fmt}"
        raise RkgenError(
            f"-o {output}: a {path.suffix} file does not hold the output of {what}; name it *{_FORMAT_SUFFIX[fmt]} "
            "(or give a folder)"
        )
    return path


def _write(path: Path, text: str) -> None:
    write_text_atomic(path, text)


def _existing(target: Path, force: bool, new: str | None = None) -> str:
    """How ``target`` is to be written: "wrote" (new), "unchanged" (it holds ``new`` already) or "overwrote"
    (with ``force``); an existing different file without ``force`` is refused (as `rkgen generate` does)."""
    if check_target(target) is None:  # a link, a FIFO or a device is refused here too
        return "wrote"
    if new is not None:
        try:
            if target.read_text(encoding="utf-8") == new:
                return "unchanged"
        except (OSError, UnicodeDecodeError):
            pass
    if not force:
        raise RkgenError(f"{target} exists{'' if new is None else ' and differs'}; use --force to overwrite it")
    return "overwrote"


def _emit(target: Path | None, text: str, force: bool) -> None:
    """``text`` to stdout (no target) or to ``target`` (see _existing), saying which."""
    if target is None:
        sys.stdout.write(text)
        return
    status = _existing(target, force, text)
    if status != "unchanged":
        _write(target, text)
    print(f"{status} {target}")


def run_derive(args) -> int:
    """`rkgen derive TABLEAU [--format md|tex|pdf] [-o FILE] [--json] [--params shared|stage|continuous] [--force]`.

    An existing file is replaced only when it differs and ``force`` is set (a file that already holds the document
    is left as it is); -o's suffix must not contradict the format (a folder or another suffix is fine)."""
    output = args.output
    if output is not None and not str(output):
        raise RkgenError("-o is empty; give a file or a folder (or leave -o out for stdout)")
    output = None if output is None else os.fspath(output)
    force = bool(getattr(args, "force", False))
    fmt = args.format
    if args.json:
        fmt = "json"
    elif fmt is None:
        fmt = _SUFFIX_FORMAT.get(Path(output).suffix.lower(), "md") if output else "md"
        if fmt == "json":
            raise RkgenError(f"-o {output}: a .json file is for --json; name it *.md or *.tex, or add --json")
    params = getattr(args, "params", None) or "shared"
    if params not in PARAMS:
        raise RkgenError(f"unknown parameter layout {params!r}; choose one of {', '.join(PARAMS)}")
    tableau = load(args.tableau)
    check_float_range(tableau)  # the document shows the network's float64 code, as `generate` writes it
    target = _target(output, tableau, fmt, params)
    if target is not None:
        check_target(target)  # a link, a FIFO or a device is refused before the document is built
    if fmt == "json":
        _emit(target, json.dumps(equations_json(tableau, params), indent=2, ensure_ascii=False) + "\n", force)
        return 0
    if fmt == "pdf":
        pdflatex = shutil.which("pdflatex")
        if pdflatex is None:
            raise RkgenError(PDFLATEX_MISSING)
        status = _existing(target, force)  # a PDF is never byte-identical (pdflatex stamps the time)
        compile_pdf(Derivation(tableau, params).latex(), target, pdflatex)
        print(f"{status} {target}")
        return 0
    if fmt == "ipynb":  # the document as a notebook whose code cells recompute its numbers (rkgen.derive.notebook)
        from .notebook import notebook_json

        _emit(target, notebook_json(Derivation(tableau, params)), force)
        return 0
    doc = Derivation(tableau, params)
    _emit(target, doc.markdown() if fmt == "md" else doc.latex(), force)
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

"""The `rkgen derive` command: the document of a tableau's equations to stdout, a file or a PDF; the examples.

A Markdown document written to a file ``<stem>.md`` gets its drawings as SVG files in ``<stem>_figures/`` beside
it.  Each such file starts with :data:`~.markdown.SVG_MARK`; only files with that mark are replaced without
``--force`` or removed as stale, and only inside that folder.  LaTeX output names any character it cannot typeset
(a warning line on stderr), and ``--format pdf`` reads pdflatex's log and reports every overfull box wider than
:data:`OVERFULL_PT` and every missing character, one warning line each (the PDF is still written).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

from ..adjoint import PARAMS
from ..codegen.printer import check_float_range
from ..errors import RkgenError
from ..fileio import cannot_write, check_target, write_bytes_atomic, write_text_atomic
from ..tableau import Tableau, load
from .data import equations_json
from .derivation import Derivation
from .latex import missing_characters
from .markdown import SVG_MARK, figure_files, figures_folder, markdown_document

__all__ = [
    "EXAMPLES",
    "PDFLATEX_MISSING",
    "OVERFULL_PT",
    "compile_pdf",
    "log_problems",
    "run_derive",
    "write_examples",
    "write_markdown",
    "main",
]

#: The built-ins whose documents are kept in examples/derivations/.
EXAMPLES = ("euler", "rk4", "midpoint", "gauss2")

#: The one-line error of ``--format pdf`` without a LaTeX installation.
PDFLATEX_MISSING = (
    "--format pdf needs pdflatex, which is not installed: install a TeX distribution "
    "(Debian/Ubuntu: apt install texlive-latex-base texlive-pictures; elsewhere TeX Live, https://tug.org/texlive/), "
    "or write the LaTeX source with --format tex, which needs no LaTeX installation"
)


#: Overfull boxes up to this many points are rounding; wider ones are reported (text reaches into the margin).
OVERFULL_PT = 2.0

_OVERFULL = re.compile(r"^Overfull \\[hv]box \((\d+(?:\.\d+)?)pt too (?:wide|high)\) (.*)$")
_MISSING_CHAR = re.compile(r"^Missing character: There is no (.+?) in font (.+?)!")


def log_problems(log: str, limit: float = OVERFULL_PT) -> list[str]:
    """The problems a reader would see, from a pdflatex log: overfull boxes wider than ``limit`` points (clipped
    or protruding text) and missing characters (printed as nothing), one line each.

    >>> log_problems("Overfull \\\\hbox (79.5pt too wide) in paragraph at lines 10--12\\n"
    ...              "Overfull \\\\hbox (0.5pt too wide) in alignment at lines 3--4\\n"
    ...              "Missing character: There is no ^^e2 in font cmr10!")
    ['overfull box: 79.5pt too wide in paragraph at lines 10--12', 'missing character: ^^e2 in font cmr10']
    """
    out = []
    for line in log.splitlines():
        m = _OVERFULL.match(line)
        if m and float(m.group(1)) > limit:
            what = "wide" if "too wide" in line else "high"
            out.append(f"overfull box: {m.group(1)}pt too {what} {m.group(2).strip()}")
            continue
        m = _MISSING_CHAR.match(line)
        if m:
            out.append(f"missing character: {m.group(1)} in font {m.group(2)}")
    return out


def _warn(message: str) -> None:
    print(f"rkgen: warning: {message}", file=sys.stderr)


def _warn_missing(tex: str) -> None:
    """A warning line for each character the LaTeX could not typeset (it shows as a boxed U+XXXX)."""
    for ch in missing_characters(tex):
        _warn(
            f"LaTeX cannot typeset the character {ch!r} (U+{ord(ch):04X}) of the tableau's text; it is printed "
            f"as U+{ord(ch):04X}"
        )


def compile_pdf(tex: str, output: Path, pdflatex: str | None = None) -> list[str]:
    """Compile LaTeX source to ``output`` with pdflatex (in a temporary folder; a second run when asked for);
    the problems of :func:`log_problems` in the last run's log are returned (the PDF is written all the same)."""
    pdflatex = pdflatex or shutil.which("pdflatex")
    if pdflatex is None:
        raise RkgenError(PDFLATEX_MISSING)
    with tempfile.TemporaryDirectory(prefix="rkgen-derive-") as tmp:
        src = Path(tmp) / "derivation.tex"
        src.write_text(tex, encoding="ascii", errors="backslashreplace")  # the printer writes ASCII only
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
            hint = ""
            if "tikz.sty' not found" in error:
                hint = " (TikZ draws the trees: Debian/Ubuntu: apt install texlive-pictures)"
            raise RkgenError(f"pdflatex failed ({error.lstrip('! ').strip()}){hint}; --format tex writes the source")
        try:
            data = pdf.read_bytes()
        except OSError as exc:
            raise RkgenError(f"{pdf.name}: cannot read pdflatex's output: {exc.strerror}") from None
        try:
            log = (Path(tmp) / "derivation.log").read_text(encoding="latin-1")
        except OSError:
            log = proc.stdout
    write_bytes_atomic(output, data)  # next to the target, then renamed: never half-written, never a non-file
    return log_problems(log)


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


def _is_ours(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.readline().rstrip("\n") == SVG_MARK
    except OSError:
        return False


def _figure_plan(folder: Path, files: dict[str, str], force: bool) -> tuple[list[Path], list[Path]]:
    """Which SVG files of ``folder`` to (re)write and which stale ones to remove; raises before anything is
    written when the folder is not a folder or holds a different SVG that rkgen did not write (without force)."""
    try:
        st = os.lstat(folder)
    except FileNotFoundError:
        return [folder / name for name in files], []
    except OSError as exc:
        raise cannot_write(folder, exc) from None
    if not stat.S_ISDIR(st.st_mode):
        check_target(folder)  # a link, a FIFO, ...: its one-line error
        raise RkgenError(
            f"{folder} is a file; the drawings of the document go in this folder (remove it or choose another name)"
        )
    write, stale = [], []
    for name, content in files.items():
        path = folder / name
        if check_target(path) is None:
            write.append(path)
            continue
        try:
            same = path.read_text(encoding="utf-8") == content
        except (OSError, UnicodeDecodeError):
            same = False
        if same:
            continue
        if not (_is_ours(path) or force):
            raise RkgenError(f"{path} exists and was not written by rkgen; use --force to overwrite it")
        write.append(path)
    for path in sorted(folder.iterdir()):
        if path.name not in files and path.suffix == ".svg" and stat.S_ISREG(os.lstat(path).st_mode) and _is_ours(path):
            stale.append(path)
    return write, stale


def write_markdown(target: Path, doc: Derivation, force: bool, examples: bool = False) -> list[tuple[Path, str]]:
    """The Markdown document to ``target`` and its drawings to ``<stem>_figures/`` beside it: what was done to each
    file ("wrote", "unchanged", "overwrote", "removed"; the examples always replace their own documents)."""
    folder = target.parent / figures_folder(target.stem)
    text = markdown_document(doc.title, doc.blocks, folder.name)
    files = figure_files(doc.blocks)
    if examples:
        old = check_target(target) and target.read_text(encoding="utf-8")
        status = "unchanged" if old == text else "wrote"
    else:
        status = _existing(target, force, text)
    write, stale = _figure_plan(folder, files, force)
    done = []
    for path in write:
        existed = check_target(path) is not None
        write_text_atomic(path, files[path.name])
        done.append((path, "overwrote" if existed else "wrote"))
    if status != "unchanged":
        _write(target, text)
    done.insert(0, (target, status))
    for path in stale:
        try:
            path.unlink()
        except OSError as exc:
            raise cannot_write(path, exc) from None
        done.append((path, "removed"))
    if not files:
        try:
            folder.rmdir()  # only when empty: a folder with anything of the user's stays
        except OSError:
            pass
    return done


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
        tex = Derivation(tableau, params).latex()
        _warn_missing(tex)
        problems = compile_pdf(tex, target, pdflatex)
        print(f"{status} {target}")
        for problem in problems or ():
            _warn(f"{target}: {problem}")
        return 0
    if fmt == "ipynb":  # the document as a notebook whose code cells recompute its numbers (rkgen.derive.notebook)
        from .notebook import notebook_json

        _emit(target, notebook_json(Derivation(tableau, params)), force)
        return 0
    doc = Derivation(tableau, params)
    if fmt == "md" and target is not None:
        done = write_markdown(target, doc, force)
        print(f"{done[0][1]} {target}")
        changed = [status for _, status in done[1:]]
        if changed:
            folder = target.parent / figures_folder(target.stem)
            counts = ", ".join(
                f"{what} {changed.count(what)}" for what in ("wrote", "overwrote", "removed") if what in changed
            )
            print(f"drawings in {folder}: {counts}")
        return 0
    if fmt == "tex":
        text = doc.latex()
        _warn_missing(text)
    else:
        text = doc.markdown()
    _emit(target, text, force)
    return 0


def example_path(folder: Path, name: str, fmt: str) -> Path:
    return Path(folder) / f"{name}.{fmt}"


def write_examples(folder: str | os.PathLike = "examples/derivations") -> list[tuple[Path, str]]:
    """Write the derivation documents of :data:`EXAMPLES` (Markdown with its drawings, and LaTeX) to ``folder``:
    (path, "written" | "unchanged" | "removed") for each file."""
    folder = Path(folder)
    done = []
    for name in EXAMPLES:
        doc = Derivation(name)
        for path, status in write_markdown(example_path(folder, name, "md"), doc, force=False, examples=True):
            done.append((path, {"wrote": "written", "overwrote": "written"}.get(status, status)))
        path, text = example_path(folder, name, "tex"), doc.latex()
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

"""Code generation: tableau → layer equations → printer → Jinja template → one Python module (the chain's end).

The chain, each step a module:

1. :func:`rkgen.adjoint.layer_equations` — the forward and backward stage equations and the stage systems of
   implicit tableaux, as exact data;
2. :mod:`rkgen.codegen.printer` — those equations as whole numba functions (:mod:`rkgen.codegen.ir` statements,
   floats with the exact value beside), with a source map;
3. :mod:`rkgen.codegen.renderer` — the ``network.py.j2`` template (strict keys) with the printed functions and the
   runtime (:mod:`rkgen.runtime`) inlined;
4. :func:`generate_file` — written atomically (temporary file, then rename; :mod:`rkgen.fileio`), never
   half-written, and only ever over a regular file.

:func:`load_network` keeps modules in a cache folder named by the sha256 of the rendered text and imports them,
so numba's on-disk cache is reused across processes, and any change of the generator gives a new folder.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import RkgenError
from ..fileio import check_target, write_text_atomic
from ..tableau import Tableau, load
from .renderer import (
    TEMPLATE_KEYS,
    Rendered,
    _partner_status,
    render,
    render_module,
    template_context,
    template_dir,
    template_environment,
    template_variables,
)

__all__ = [
    "render_module",
    "generate_file",
    "load_network",
    "template_dir",
    "module_filename",
    "GenerateResult",
    "TEMPLATE_KEYS",
    "Rendered",
    "render",
    "template_context",
    "template_environment",
    "template_variables",
    "cached_module_path",
    "import_path",
]


def module_filename(tableau: Tableau) -> str:
    """``<identifier>_net.py``."""
    return f"{tableau.identifier}_net.py"


@dataclass(frozen=True)
class GenerateResult:
    path: Path
    status: str  # "written", "unchanged", "overwritten"
    tableau: Tableau

    def summary(self) -> str:
        t = self.tableau
        what = {"written": "wrote", "unchanged": "unchanged", "overwritten": "overwrote"}[self.status]
        return (
            f"{what} {self.path}\n"
            f"{t.name}: {t.stages} stages, order {t.order}, {t.structure_detail}; {_partner_status(t)}\n"
            f"train this file: rkgen train --tableau {_shell_path(self.path)} (a tableau name or JSON file "
            "trains rkgen's own copy, kept under the user cache)"
        )


def _shell_path(path: Path) -> str:
    """The path as a user types it: relative to the current folder when inside it, quoted when it needs it."""
    import shlex

    path = Path(path)
    try:
        text = str(path.resolve().relative_to(Path.cwd().resolve()))
        text = text if "/" in text else f"./{text}"
    except ValueError:
        text = str(path)
    return shlex.quote(text)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename (regular files only;
    errors are one :class:`RkgenError` line, see :mod:`rkgen.fileio`)."""
    write_text_atomic(path, text)


def generate_file(tableau: Tableau, output: str | os.PathLike | None = None, force: bool = False) -> GenerateResult:
    """Write the network module; an existing different file is kept unless ``force``."""
    target = Path(output) if output is not None else Path.cwd()
    if output is None or target.is_dir() or str(output).endswith(os.sep):
        target = target / module_filename(tableau)
    if target.suffix != ".py":
        raise RkgenError(f"{target}: the output must be a .py file or a folder")
    check_target(target)  # a link, a FIFO or a device is refused before anything is rendered or read
    source = render_module(tableau)
    status = "written"
    if check_target(target) is not None:
        try:
            current = target.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            current = None
        if current == source:
            return GenerateResult(target, "unchanged", tableau)
        if not force:
            raise RkgenError(f"{target} exists and differs; use --force to overwrite it")
        status = "overwritten"
    write_atomic(target, source)
    return GenerateResult(target, status, tableau)


def cache_dir() -> Path:
    """Where :func:`load_network` keeps generated modules: $RKGEN_CACHE, else ~/.cache/rkgen."""
    root = os.environ.get("RKGEN_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "rkgen"
    )
    path = Path(root)
    if path.exists() and not path.is_dir():
        raise RkgenError(f"{root}: the module cache ($RKGEN_CACHE or ~/.cache/rkgen) is not a folder")
    return path


_LOADED: dict[str, object] = {}


def import_path(path: Path, name: str | None = None):
    """Import a generated module from a file path (once per process per file content).

    The import name is taken from the file's content, never from its location; a module rkgen writes then also
    registers itself under its own ``MODULE_KEY`` (see the module's header)."""
    path = Path(path).resolve()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RkgenError(f"{path}: cannot read: {exc.strerror}") from None
    digest = hashlib.sha256(data).hexdigest()[:16]
    key = f"{path}|{digest}"
    if key in _LOADED:
        return _LOADED[key]
    modname = name or f"rkgen_file_{digest}_{path.stem}"
    spec = importlib.util.spec_from_file_location(modname, path)
    if spec is None or spec.loader is None:
        raise RkgenError(f"{path}: cannot import")
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    spec.loader.exec_module(module)
    _LOADED[key] = module
    return module


def cached_module_path(tableau: Tableau, rendered: Rendered | None = None) -> Path:
    """Where :func:`load_network` keeps the module of ``tableau``: a folder named by the sha256 of its text."""
    rendered = rendered or render(tableau)
    return cache_dir() / f"{tableau.identifier}-{rendered.digest[:16]}" / module_filename(tableau)


@lru_cache(maxsize=1)
def generator_fingerprint() -> str:
    """A sha256 of everything that can change a rendered module: every file of the rkgen package and its
    templates, rkgen's version and the versions of Python, sympy and python-flint (exact values print through
    them).  Only a shortcut to a module's text digest, never a key of its own (see :func:`_index_path`)."""
    from importlib.metadata import PackageNotFoundError, version

    package = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for path in sorted(package.rglob("*.py")) + sorted(template_dir().glob("*.j2")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    for dist in ("rkgen", "sympy", "python-flint"):
        try:
            h.update(f"{dist}={version(dist)}".encode())
        except PackageNotFoundError:
            h.update(f"{dist}=?".encode())
    h.update(sys.version.encode())
    return h.hexdigest()


def _index_path(tableau: Tableau) -> Path:
    """The file that remembers which module text a tableau renders to with this generator, so that a warm
    start need not render (the order analysis of a large tableau takes a second)."""
    key = f"{tableau.canonical_json()}|{tableau.name}|{tableau.source}|{generator_fingerprint()}"
    return cache_dir() / "index" / hashlib.sha256(key.encode()).hexdigest()


def _cached_module(tableau: Tableau) -> Path:
    """The cached module of ``tableau``, written if it is missing; rendered only when the index does not know it."""
    index = _index_path(tableau)
    try:
        folder = index.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        folder = ""
    path = cache_dir() / folder / module_filename(tableau)
    if folder.startswith(f"{tableau.identifier}-") and "/" not in folder and path.is_file():
        return path
    rendered = render(tableau)
    path = cached_module_path(tableau, rendered)
    if not path.is_file():
        write_atomic(path, rendered.text)
    write_atomic(index, path.parent.name + "\n")
    return path


def load_network(spec):
    """The generated network module for a built-in name, a JSON path, a Tableau, or a ``*_net.py`` path.

    Modules are rendered, written once into :func:`cache_dir` under a folder named by the sha256 of their text (so
    any change of the tableau or of the generator gives a new folder), and imported from there (numba's
    ``cache=True`` then works across processes).  A small index (``cache_dir()/index``), keyed by the tableau and
    :func:`generator_fingerprint`, remembers which folder a tableau's module is in, so a warm start does not
    render it again.
    """
    if not isinstance(spec, Tableau):
        text = os.fspath(spec)
        if text.endswith(".py"):
            if not Path(text).is_file():
                raise RkgenError(f"{text}: no such file")
            return import_path(Path(text))
        spec = load(text)
    return import_path(_cached_module(spec))

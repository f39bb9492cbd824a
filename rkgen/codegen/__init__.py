"""Code generation: tableau → layer equations → printer → Jinja template → one Python module.

The chain, each step a function here:

1. :func:`rkgen.adjoint.layer_equations` — the forward and backward stage equations as exact data;
2. :mod:`rkgen.codegen.printer` — those equations as Python source (floats with the exact value beside);
3. :func:`render_module` — the ``network.py.j2`` template, with ``StrictUndefined`` and a check that the keys given
   are exactly the keys the template uses;
4. :func:`generate_file` — written atomically (temporary file, then rename), never half-written.

:func:`load_network` generates into a content-addressed cache folder (the sha256 of the canonical tableau and
rkgen's version) and imports the module, so numba's on-disk cache is reused across processes.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jinja2
import jinja2.meta

from .. import __version__
from ..adjoint import layer_equations
from ..errors import RkgenError
from ..tableau import Tableau, load
from . import printer

__all__ = [
    "render_module",
    "generate_file",
    "load_network",
    "template_dir",
    "module_filename",
    "GenerateResult",
    "TEMPLATE_KEYS",
]

TEMPLATE = "network.py.j2"
TEMPLATE_KEYS = frozenset(
    {
        "module_name",
        "name",
        "doc_name",
        "regenerate",
        "version",
        "sha256",
        "structure",
        "structure_detail",
        "order",
        "partner_status",
        "tableau_drawing",
        "adjoint_summary",
        "stages",
        "coefficients",
        "arrays",
        "implicit",
        "forward_code",
        "update_code",
        "backward_code",
    }
)


def template_dir() -> Path:
    """The templates folder: inside the installed package, or the repository's ``templates/``."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "templates", here.parent / "templates"):
        if (candidate / TEMPLATE).is_file():
            return candidate
    raise RkgenError("rkgen's templates are missing from this installation")  # pragma: no cover


@lru_cache(maxsize=1)
def template_environment() -> jinja2.Environment:
    """The one Jinja environment for rkgen's templates (modules and documents): strict undefined keys."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir())),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def template_variables(name: str = TEMPLATE) -> set[str]:
    """The variables a template (with its includes) reads."""
    env = template_environment()
    source = env.loader.get_source(env, name)[0]
    return set(jinja2.meta.find_undeclared_variables(env.parse(source)))


def module_filename(tableau: Tableau) -> str:
    """``<identifier>_net.py``."""
    return f"{tableau.identifier}_net.py"


def _partner_status(tableau: Tableau) -> str:
    if tableau.is_symplectic:
        return "symplectic: its own partner"
    p = tableau.partner
    if p is None:
        zero = ", ".join(f"b_{i + 1}" for i in tableau.zero_weights)
        return f"no symplectic partner ({zero} = 0); the xi-form adjoint needs none"
    from ..partner import c_matches

    return f"partner {p.structure}, c~ {'=' if c_matches(tableau) else '!='} c"


def _adjoint_summary(eq) -> str:
    lines = []
    if eq.structure == "explicit":
        lines.append("    eta_i = b_i p + sum_(k>i) a_ki mu_k   for i = s..1, in this order:")
        lines += [f"        {st}" for st in eq.backward]
    elif eq.structure == "diagonally implicit":
        lines.append("    (I - h a_ii J_i^T) eta_i = b_i p + sum_(k>i) a_ki mu_k   for i = s..1 (a d x d solve each)")
    else:
        lines.append("    (I - h (A^T kron I) blockdiag(J_k^T)) eta = b kron p   (one s*d system per sample)")
    lines.append("    mu_i = h J_i^T eta_i,  dJ/dy_j = p + sum_i mu_i,  dJ/dh_j = sum_i eta_i . F_i,")
    lines.append("    dJ/dK_j, dJ/dbeta_j = sum_i (df/dK, df/dbeta at Y_i)^T (h eta_i)")
    return "\n".join(lines)


def _drawing(tableau: Tableau, format_tableau) -> str:
    """The tableau drawn as a matrix, or entry by entry (wrapped) when the matrix is too wide."""
    A, b, c = tableau.exact_strings().values()
    drawing = format_tableau(A, b, c, indent="    ")
    if max(len(line) for line in drawing.splitlines()) <= printer.LINE_LENGTH:
        return drawing
    entries = [(f"c_{i + 1}", x) for i, x in enumerate(c)]
    entries += [(f"a_{i + 1}_{j + 1}", x) for i, row in enumerate(A) for j, x in enumerate(row)]
    entries += [(f"b_{i + 1}", x) for i, x in enumerate(b)]
    lines = []
    for name, value in entries:
        lines += textwrap.wrap(
            f"{name} = {value}", printer.LINE_LENGTH - 4, initial_indent="    ", subsequent_indent="        "
        )
    return "\n".join(lines)


def _docstring_safe(text: str) -> str:
    """Text that can sit inside a triple-quoted docstring: no backslashes, no quote runs, one line."""
    text = " ".join(text.split())
    return text.replace("\\", "/").replace('"', "'")


def template_context(tableau: Tableau) -> dict:
    """Everything the template needs, from the layer equations (the one source of truth)."""
    from ..report import format_tableau

    eq = layer_equations(tableau)
    explicit = tableau.structure == "explicit"
    return {
        "module_name": tableau.identifier + "_net",
        "name": tableau.name,
        "doc_name": _docstring_safe(tableau.name),
        "regenerate": f"`rkgen generate {tableau.name}`"
        if tableau.source == f"built-in {tableau.name}"
        else "`rkgen generate` from its tableau file",
        "version": __version__,
        "sha256": tableau.sha256,
        "structure": tableau.structure,
        "structure_detail": tableau.structure_detail,
        "order": tableau.order,
        "partner_status": _partner_status(tableau),
        "tableau_drawing": _drawing(tableau, format_tableau),
        "adjoint_summary": _adjoint_summary(eq),
        "stages": tableau.stages,
        "coefficients": printer.coefficient_constants(eq),
        "arrays": "\n".join(printer.array_source(x, eq) for x in "ABC"),
        "implicit": not explicit,
        "forward_code": [printer.forward_stage_code(st) for st in eq.forward] if explicit else [],
        "update_code": printer.update_code(eq),
        "backward_code": [printer.backward_stage_code(st) for st in eq.backward] if explicit else [],
    }


def render_module(tableau: Tableau) -> str:
    """The source of the network module for ``tableau`` (deterministic: same tableau, same bytes)."""
    context = template_context(tableau)
    expected = template_variables()
    if set(context) != expected or expected != TEMPLATE_KEYS:
        missing, extra = expected - set(context), set(context) - expected
        raise RuntimeError(f"template keys out of step: missing {sorted(missing)}, unused {sorted(extra)}")
    source = template_environment().get_template(TEMPLATE).render(**context)
    lines = [line.rstrip() for line in source.splitlines()]
    out, blank = [], 0
    for line in lines:  # at most two blank lines in a row (template conditionals leave gaps)
        blank = blank + 1 if not line else 0
        if blank <= 2:
            out.append(line)
    return "\n".join(out).rstrip() + "\n"


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
            f"{t.name}: {t.stages} stages, order {t.order}, {t.structure_detail}; {_partner_status(t)}"
        )


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a written module is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def generate_file(tableau: Tableau, output: str | os.PathLike | None = None, force: bool = False) -> GenerateResult:
    """Write the network module; an existing different file is kept unless ``force``."""
    target = Path(output) if output is not None else Path.cwd()
    if output is None or target.is_dir() or str(output).endswith(os.sep):
        target = target / module_filename(tableau)
    if target.suffix != ".py":
        raise RkgenError(f"{target}: the output must be a .py file or a folder")
    source = render_module(tableau)
    status = "written"
    if target.exists():
        try:
            current = target.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            current = None
        if current == source:
            return GenerateResult(target, "unchanged", tableau)
        if not force:
            raise RkgenError(f"{target} exists and differs; use --force to overwrite it")
        status = "overwritten"
    try:
        write_atomic(target, source)
    except OSError as exc:
        raise RkgenError(f"{target}: cannot write: {exc.strerror}") from None
    return GenerateResult(target, status, tableau)


def cache_dir() -> Path:
    """Where :func:`load_network` keeps generated modules: $RKGEN_CACHE, else ~/.cache/rkgen."""
    root = os.environ.get("RKGEN_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "rkgen"
    )
    return Path(root)


_LOADED: dict[str, object] = {}


def import_path(path: Path, name: str | None = None):
    """Import a generated module from a file path (once per process)."""
    path = Path(path).resolve()
    key = str(path)
    if key in _LOADED:
        return _LOADED[key]
    modname = name or f"rkgen_generated_{hashlib.sha1(key.encode()).hexdigest()[:12]}_{path.stem}"
    spec = importlib.util.spec_from_file_location(modname, path)
    if spec is None or spec.loader is None:
        raise RkgenError(f"{path}: cannot import")
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    spec.loader.exec_module(module)
    _LOADED[key] = module
    return module


@lru_cache(maxsize=1)
def _templates_digest() -> str:
    """A hash of the templates and the printer: a generator change gives a new cache folder."""
    h = hashlib.sha256()
    for path in sorted(template_dir().glob("*.j2")) + [Path(printer.__file__)]:
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def cached_module_path(tableau: Tableau) -> Path:
    """Where :func:`load_network` keeps the module of ``tableau``."""
    key = f"{tableau.canonical_json()}|{__version__}|{_templates_digest()}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return cache_dir() / f"{tableau.identifier}-{digest}" / module_filename(tableau)


def load_network(spec):
    """The generated network module for a built-in name, a JSON path, a Tableau, or a ``*_net.py`` path.

    Modules are generated once into :func:`cache_dir` under a folder named by a hash of the canonical tableau,
    rkgen's version and the generator's templates, and imported from there (numba's ``cache=True`` then works
    across processes).
    """
    if not isinstance(spec, Tableau):
        text = os.fspath(spec)
        if text.endswith(".py"):
            if not Path(text).is_file():
                raise RkgenError(f"{text}: no such file")
            return import_path(Path(text))
        spec = load(text)
    tableau = spec
    path = cached_module_path(tableau)
    if not path.is_file():
        source = render_module(tableau)
        try:
            write_atomic(path, source)
        except OSError as exc:
            raise RkgenError(f"{path}: cannot write the generated module: {exc.strerror}") from None
    return import_path(path)

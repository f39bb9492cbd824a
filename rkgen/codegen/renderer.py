"""Render a network module: layer equations -> printed kernels + inlined runtime -> template -> text with a source map.

The last steps of the chain.  :func:`render` fills ``templates/network.py.j2`` (strict keys: the context must hold
exactly the variables the template reads) with the tableau's constants, the functions the printer wrote from
:func:`rkgen.adjoint.layer_equations`, and the runtime modules (:mod:`rkgen.runtime`) the tableau's structure
needs, copied in without their docstrings and imports.  The result is deterministic: the same tableau and rkgen
give the same bytes, and its sha256 (:attr:`Rendered.digest`) names the module and keys the module cache.
"""

from __future__ import annotations

import ast
import hashlib
import sys
import textwrap
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jinja2
import jinja2.meta

from .. import __version__
from ..adjoint import layer_equations
from ..errors import RkgenError
from ..runtime import modules_for
from ..tableau import Tableau
from . import printer

__all__ = ["Rendered", "render", "render_module", "template_context", "template_dir", "TEMPLATE_KEYS", "inline"]

TEMPLATE = "network.py.j2"
TEMPLATE_KEYS = frozenset(
    {
        "module_name",
        "name",
        "doc_name",
        "regenerate",
        "version",
        "sha256",
        "key",
        "structure",
        "structure_detail",
        "order",
        "partner_status",
        "tableau_drawing",
        "adjoint_summary",
        "stages",
        "coefficients",
        "arrays",
        "imports",
        "kernels",
        "runtime",
    }
)
RUNTIME = Path(__file__).resolve().parent.parent / "runtime"
_KEY_PLACEHOLDER = "0" * 16


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


# ------------------------------------------------------------------------------------------------------------------
# Inlining the runtime
# ------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Inlined:
    """The runtime modules as one text: their merged imports, their code, and each function's 0-based lines."""

    imports: str
    text: str
    spans: dict[str, tuple[int, int]]


def _module_parts(name: str) -> tuple[list[ast.stmt], list[str], str]:
    """(import statements, code lines without docstring and imports, docstring) of a runtime module."""
    source = (RUNTIME / f"{name}.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    lines = source.splitlines()
    drop: set[int] = set()
    imports = []
    doc = ast.get_docstring(tree) or ""
    for node in tree.body:
        is_doc = node is tree.body[0] and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        if isinstance(node, (ast.Import, ast.ImportFrom)) or is_doc:
            drop.update(range(node.lineno - 1, node.end_lineno))
            if isinstance(node, ast.Import) or (isinstance(node, ast.ImportFrom) and node.level == 0):
                if not (isinstance(node, ast.ImportFrom) and node.module == "__future__"):
                    imports.append(node)
    kept = [line for k, line in enumerate(lines) if k not in drop]
    while kept and not kept[0].strip():
        kept.pop(0)
    return imports, kept, doc


def _import_block(nodes: list[ast.stmt]) -> str:
    """The imports of all inlined modules, merged and sorted as isort (and ruff) order them."""
    plain: dict[str, set[str]] = {}
    froms: dict[str, set[str]] = {}
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                plain.setdefault(alias.name, set()).add(alias.asname or "")
        else:
            froms.setdefault(node.module, set()).update(a.name for a in node.names)
    sections: dict[bool, list[str]] = {True: [], False: []}
    for module in sorted(plain):
        for asname in sorted(plain[module]):
            line = f"import {module}" + (f" as {asname}" if asname else "")
            sections[module.split(".")[0] in sys.stdlib_module_names].append(line)
    for module in sorted(froms):
        line = f"from {module} import {', '.join(sorted(froms[module]))}"
        sections[module.split(".")[0] in sys.stdlib_module_names].append(line)
    return "\n\n".join("\n".join(sections[std]) for std in (True, False) if sections[std])


@lru_cache(maxsize=8)
def inline(structure: str) -> Inlined:
    """The runtime of a module of this structure, ready to paste below the tableau's kernels."""
    imports: list[ast.stmt] = []
    out: list[str] = []
    spans: dict[str, tuple[int, int]] = {}
    for name in modules_for(structure):
        nodes, lines, doc = _module_parts(name)
        imports += nodes
        if out:
            out += ["", ""]
        out.append(f"# --- rkgen/runtime/{name}.py " + "-" * (printer.LINE_LENGTH - 24 - len(name)))
        for k, paragraph in enumerate(doc.split("\n\n")):
            text = textwrap.dedent(paragraph)
            if text.startswith("    "):  # an indented example keeps its lines
                block = text.splitlines()
            else:
                block = textwrap.wrap(" ".join(text.split()), printer.LINE_LENGTH - 2)
            out += ["#"] * (k > 0) + ["# " + line if line else "#" for line in block]
        out.append("")
        offset = len(out)
        tree = ast.parse("\n".join(lines))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef):
                first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                spans[f"def:{node.name}"] = (offset + first - 1, offset + node.end_lineno - 1)
        out += lines
    return Inlined(_import_block(imports), "\n".join(out), spans)


# ------------------------------------------------------------------------------------------------------------------
# The template's context
# ------------------------------------------------------------------------------------------------------------------


def _partner_status(tableau: Tableau) -> str:
    if tableau.is_symplectic:
        return "symplectic: its own partner"
    p = tableau.partner
    if p is None:
        zero = ", ".join(f"b_{i + 1}" for i in tableau.zero_weights)
        return f"no symplectic partner ({zero} = 0); the xi-form adjoint needs none"
    from ..partner import c_matches

    shapes = {"explicit": "strictly lower triangular", "diagonally implicit": "lower triangular"}
    shape = shapes.get(p.structure, "full")
    backward = {
        "explicit": "no solves",
        "diagonally implicit": "one d x d solve per stage with a_ii != 0",
    }.get(tableau.structure, f"one coupled {tableau.stages}d x {tableau.stages}d solve")
    return f"partner A~ {shape}, c~ {'=' if c_matches(tableau) else '!='} c; the backward pass needs {backward}"


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
    lines.append("    g_i = (df/dK, df/dbeta at Y_i)^T (h eta_i): the gradient of stage i's parameters, summed over")
    lines.append("    the stages of a layer (shared), kept per stage (stage), or sent to the nodes (continuous)")
    return "\n".join(lines)


def _drawing(tableau: Tableau) -> str:
    """The tableau drawn as a matrix, or entry by entry (wrapped) when the matrix is too wide."""
    from ..report import format_tableau

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


def template_context(tableau: Tableau, eq=None, kernels: printer.Kernels | None = None) -> dict:
    """Everything the template needs, from the layer equations (the one source of truth); ``eq`` and ``kernels``
    are computed here unless the caller has them already."""
    eq = eq or layer_equations(tableau)
    kernels = kernels or printer.kernels(eq)
    runtime = inline(tableau.structure)
    return {
        "module_name": tableau.identifier + "_net",
        "name": tableau.name,
        "doc_name": _docstring_safe(tableau.name),
        "regenerate": f"`rkgen generate {tableau.name}`"
        if tableau.source == f"built-in {tableau.name}"
        else "`rkgen generate` from its tableau file",
        "version": __version__,
        "sha256": tableau.sha256,
        "key": _KEY_PLACEHOLDER,
        "structure": tableau.structure,
        "structure_detail": tableau.structure_detail,
        "order": tableau.order,
        "partner_status": _partner_status(tableau),
        "tableau_drawing": _drawing(tableau),
        "adjoint_summary": _adjoint_summary(eq),
        "stages": tableau.stages,
        "coefficients": printer.coefficient_constants(eq),
        "arrays": "\n".join(printer.array_source(x, eq) for x in "ABC"),
        "imports": runtime.imports,
        "kernels": kernels.text,
        "runtime": runtime.text,
    }


# ------------------------------------------------------------------------------------------------------------------
# Rendering
# ------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rendered:
    """A module's text, its content key and its source map: ``spans[label] = (first, last)``, 1-based lines.

    Labels are those of :class:`rkgen.codegen.printer.Kernels` (the tableau's equations and functions) and
    ``def:<name>`` for every runtime function."""

    text: str
    key: str
    spans: dict[str, tuple[int, int]]

    @property
    def digest(self) -> str:
        """The sha256 of the text: the module cache key."""
        return hashlib.sha256(self.text.encode()).hexdigest()


def _squeeze(source: str) -> list[str]:
    """Trailing spaces dropped and at most two blank lines in a row (template conditionals leave gaps)."""
    out, blank = [], 0
    for line in source.splitlines():
        line = line.rstrip()
        blank = blank + 1 if not line else 0
        if blank <= 2:
            out.append(line)
    while out and not out[-1]:
        out.pop()
    return out


def _render(tableau: Tableau) -> Rendered:
    eq = layer_equations(tableau)
    kernels = printer.kernels(eq)
    context = template_context(tableau, eq=eq, kernels=kernels)
    expected = template_variables()
    if set(context) != expected or expected != TEMPLATE_KEYS:
        missing, extra = expected - set(context), set(context) - expected
        raise RuntimeError(f"template keys out of step: missing {sorted(missing)}, unused {sorted(extra)}")
    marks = {k: f"\x00{k}\x00" for k in ("kernels", "runtime")}
    lines = _squeeze(template_environment().get_template(TEMPLATE).render(**{**context, **marks}))
    where = {k: lines.index(m) for k, m in marks.items()}
    spans: dict[str, tuple[int, int]] = {}
    runtime = inline(tableau.structure)
    for name, inner in (("kernels", kernels.spans), ("runtime", runtime.spans)):
        shift = where[name] + 1 + sum(  # 1-based, after the blocks above it are expanded
            len(context[k].splitlines()) - 1 for k in marks if where[k] < where[name]
        )
        spans.update({label: (a + shift, b + shift) for label, (a, b) in inner.items()})
    out: list[str] = []
    for line in lines:
        name = next((k for k, m in marks.items() if line == m), None)
        out += context[name].splitlines() if name else [line]
    text = "\n".join(out) + "\n"
    key = hashlib.sha256(text.encode()).hexdigest()[:16]
    text = text.replace(f'MODULE_KEY = "rkgen_net_{_KEY_PLACEHOLDER}"', f'MODULE_KEY = "rkgen_net_{key}"', 1)
    return Rendered(text, key, spans)


_RENDERED: dict[str, Rendered] = {}


def render(tableau: Tableau) -> Rendered:
    """The module for ``tableau`` with its source map (remembered per tableau in this process)."""
    memo = f"{tableau.canonical_json()}|{tableau.name}|{tableau.source}"
    if memo not in _RENDERED:
        if len(_RENDERED) >= 64:
            _RENDERED.clear()
        _RENDERED[memo] = _render(tableau)
    return _RENDERED[memo]


def render_module(tableau: Tableau) -> str:
    """The source of the network module for ``tableau`` (deterministic: same tableau, same bytes)."""
    return render(tableau).text

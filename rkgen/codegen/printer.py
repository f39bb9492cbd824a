"""Print the layer equations (:mod:`rkgen.adjoint`) as whole numba functions, with a source map.

The printer builds :mod:`rkgen.codegen.ir` statements from the equations and prints them; it is the only place
that writes a tableau's kernel code.  What it prints is the tableau's side of the contract in
:mod:`rkgen.runtime._tableau`: ``_layer_forward`` and ``_layer_backward`` for every tableau, and for a fully
implicit one ``_newton_residual``, ``_newton_jacobian`` and ``_adjoint_system``.  Everything else in a generated
module is the runtime (:mod:`rkgen.runtime`), the same for every tableau.

Coefficients become named module constants (``a_2_1 = 0.5  # 1/2``): the float64 nearest the exact value, written
with ``repr`` so it reads back bit for bit, the exact value in a comment beside it.  Stages are unrolled and terms
with a zero coefficient are not written.

>>> from rkgen import load
>>> from rkgen.adjoint import layer_equations
>>> eq = layer_equations(load("heun2"))
>>> print(kernels(eq).text.split("\\n\\n\\n")[0])
@njit(cache=True, error_model="numpy", inline="always", fastmath={"reassoc", "contract"})
def _layer_forward(K, beta, kj, hj, y, Y, X, S, F, Z, ws, field, act, d, nb, nw):
    \"\"\"One layer of heun2 on a block of samples: the explicit stages, then the update.\"\"\"
    Fj = S if field == 0 else F  # the resnet field f = sigma: its values are S
    short = Y.shape[0] < STAGES  # a tape of y_j only: Y_2.. in X
    Ys = X if short else Y
    # Y_1 = y
    for a in range(d):
        for q in range(nw):
            Y[0, a, q] = y[a, q]
    _field(K[kj[0]], beta[kj[0]], Y[0], Z, S[0], Fj[0], field, act, d, nw)
    # Y_2 = y + h*(a_2_1*F_1)
    for a in range(d):
        for q in range(nw):
            Ys[1, a, q] = y[a, q] + hj * (a_2_1 * Fj[0, a, q])
    _field(K[kj[1]], beta[kj[1]], Ys[1], Z, S[1], Fj[1], field, act, d, nw)
    # y = y + h*(b_1*F_1 + b_2*F_2)
    for a in range(d):
        for q in range(nw):
            y[a, q] += hj * (b_1 * Fj[0, a, q] + b_2 * Fj[1, a, q])
    return 0, 0
>>> [(c.name, c.literal, c.exact) for c in coefficient_constants(eq)]
[('a_2_1', '1.0', '1'), ('b_1', '0.5', '1/2'), ('b_2', '0.5', '1/2'), ('c_2', '1.0', '1')]
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass

import mpmath
import sympy

from ..adjoint import LayerEquations, StageSystem, Term
from ..butcher import entry_name
from ..errors import RkgenError
from .ir import LINE_LENGTH, Assign, Call, Comment, Function, If, Labelled, Loop, Return, Sum, render

__all__ = [
    "Constant",
    "coefficient_constants",
    "float_literal",
    "float_range_error",
    "check_float_range",
    "array_source",
    "kernels",
    "Kernels",
    "FASTMATH",
]

#: the fastmath flags of the kernels that sum stages (the runtime's ``_FAST``; a test keeps the two equal)
FASTMATH = '{"reassoc", "contract"}'
# Every printed function has one caller in the runtime and is inlined into it by numba (inline="always"): as
# separate functions they would each be compiled and optimised again inside their caller, which costs compile
# time (euler, cold: 14.5 -> 19.4 s) and a call per layer and block (A-euler 1.14x, A-midpoint 1.17x slower).
_OPTIONS = 'cache=True, error_model="numpy", inline="always"'
_FAST_OPTIONS = f"{_OPTIONS}, fastmath={FASTMATH}"


@dataclass(frozen=True)
class Constant:
    name: str
    literal: str
    exact: str

    @property
    def source(self) -> str:
        """``name = literal  # exact``; a long exact value goes on comment lines above."""
        line = f"{self.name} = {self.literal}  # {self.exact}"
        if len(line) <= LINE_LENGTH:
            return line
        wrapped = textwrap.wrap(
            f"{self.name} = {self.exact}", LINE_LENGTH - 2, subsequent_indent="    ", break_long_words=True
        )
        return "\n".join(["# " + w for w in wrapped] + [f"{self.name} = {self.literal}"])


def float_literal(value: float) -> str:
    """Python source for a float that reads back to the same bits.

    >>> float_literal(1/3), float_literal(-0.0), float_literal(2.0)
    ('0.3333333333333333', '-0.0', '2.0')
    """
    text = repr(float(value))
    if text in ("inf", "-inf", "nan"):
        raise ValueError(f"coefficient is not finite: {text}")
    return text


#: the largest finite float64 and the smallest positive one (subnormal), as the range error shows them
_FLOAT64_MAX = "1.8e308"
_FLOAT64_TINY = "4.9e-324"


def _short(x: sympy.Expr) -> str:
    """An exact value as it reads in a one-line error: itself when short, else ``1e400`` or ``≈1.414e400``.

    >>> _short(sympy.Integer(10) ** 400), _short(-sympy.Integer(10) ** -400), _short(sympy.Rational(1, 3))
    ('1e400', '-1e-400', '1/3')
    >>> _short(sympy.sqrt(2) * 10**400)
    '≈1.414e400'
    """
    text = str(x)
    if len(text) <= 24:
        return text
    mantissa, _, exponent = mpmath.nstr(mpmath.mpf(sympy.N(x, 30)), 4, min_fixed=1, max_fixed=0).partition("e")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    short = f"{mantissa}e{int(exponent or 0)}"
    return short if sympy.Rational(mantissa) * sympy.Integer(10) ** int(exponent or 0) == x else "≈" + short


def float_range_error(tableau) -> str | None:
    """Why the tableau's network cannot compute in float64, or None when it can.

    The exact analysis (``rkgen check``) takes any exact number, but a network computes with the float64 nearest
    each coefficient: an entry beyond the float64 range would be ±inf, and a nonzero entry that rounds to 0.0
    would silently make the network another method (a subnormal that stays nonzero is fine).  Entries are named
    1-based, as the module's constants (``a_2_1``) are.

    >>> from rkgen import from_json
    >>> error = float_range_error(from_json('{"A": [["0", "0"], ["1e400", "0"]], "b": ["1/2", "1/2"]}', "big.json"))
    >>> error.split("; ")[0]
    'big.json: a_21 (row 2, column 1 of A) = 1e400 lies beyond the float64 range (|x| ≤ 1.8e308)'
    >>> float_range_error(from_json('{"A": [["1e-320"]], "b": ["1"]}')) is None
    True
    """
    (fA, fb, fc), (eA, eb, ec) = tableau.floats(), tableau.exact
    s = range(tableau.stages)
    entries = [(entry_name("A", i, j), fA[i][j], eA[i][j], tableau.A[i][j]) for i in s for j in s]
    entries += [(entry_name("b", i), fb[i], eb[i], tableau.b[i]) for i in s]
    entries += [(entry_name("c", i), fc[i], ec[i], tableau.c[i]) for i in s]
    for label, value, element, exact in entries:
        where = f"{tableau.source or tableau.name}: {label} = {_short(exact)}"
        if not math.isfinite(value):
            return (
                f"{where} lies beyond the float64 range (|x| ≤ {_FLOAT64_MAX}); rkgen check analyses it exactly, "
                "but a network cannot compute with it"
            )
        if value == 0.0 and not element.is_zero():
            return (
                f"{where} rounds to 0.0 in float64 (the smallest nonzero |x| is {_FLOAT64_TINY}); rkgen check "
                "analyses it exactly, but a network would compute another method with it"
            )
    return None


def check_float_range(tableau) -> None:
    """:class:`RkgenError` with :func:`float_range_error`'s line when the tableau's network cannot compute in
    float64.  :func:`coefficient_constants` raises it before any module text is made, so every rendering does:
    ``rkgen generate``, the documents of ``rkgen derive`` (whose command calls it first, too) and the networks
    the trainer loads (:func:`rkgen.codegen.load_network`)."""
    error = float_range_error(tableau)
    if error is not None:
        raise RkgenError(error)


def _exact_text(x: sympy.Expr) -> str:
    return str(x)


def coefficient_constants(eq: LayerEquations) -> list[Constant]:
    """The nonzero coefficients the kernels use, with their float and exact values, sorted by name."""
    t = eq.tableau
    F = t.number_field
    used: dict[str, sympy.Expr] = {}
    for st in eq.forward:
        for term in st.terms:
            used[term.name] = term.value
    for term in eq.update:
        used[term.name] = term.value
    for st in eq.backward:
        for term in st.terms:
            used[term.name] = term.value
    for i, ci in enumerate(t.c):
        if not F.element(ci).is_zero():
            used[f"c_{i + 1}"] = ci
    out = []
    for name in sorted(used, key=_name_key):
        value = used[name]
        x = F.to_float(F.element(value))
        if not math.isfinite(x) or x == 0.0:  # (every used value is nonzero) a network cannot compute with it
            check_float_range(t)
        out.append(Constant(name, float_literal(x), _exact_text(value)))
    return out


def _name_key(name: str):
    letter, *idx = name.split("_")
    return ("abcw".index(letter), tuple(int(i) for i in idx))




def _row(i: int, index: str = "a") -> str:
    """The flat index of component ``index`` of stage i in an (s d) vector: a, d + a, 2 * d + a, ..."""
    return index if i == 0 else f"d + {index}" if i == 1 else f"{i} * d + {index}"


def _block_loop(*body) -> Loop:
    """``for a in range(d): for q in range(nw): body`` -- a statement over a block of samples."""
    return Loop("a", "d", (Loop("q", "nw", body),))


def _products(terms: tuple[Term, ...], vector: str, index: str = "a, q") -> tuple[str, ...]:
    return tuple(f"{t.name} * {vector}[{t.index}, {index}]" for t in terms)


def _update(eq: LayerEquations) -> Labelled:
    """y_(j+1) = y_j + h Σ_i b_i F_i."""
    terms = " + ".join(f"{t.name}*F_{t.index + 1}" for t in eq.update)
    body: tuple = (Comment(f"y = y + h*({terms})"),)
    if eq.update:
        body += (_block_loop(Assign("y[a, q]", Sum(_products(eq.update, "Fj"), "hj * (", ")"), "+=")),)
    return Labelled("update", body)


def _stage_parameters(i: int, names: tuple[str, str] = ("K", "beta")) -> tuple[str, str]:
    """Stage i's parameter rows, ``K[kj[i]]`` and ``beta[kj[i]]``: kj maps the layer's stages onto rows of the
    parameter arrays, which is how one kernel serves every parameter layout (shared, stage, continuous)."""
    return tuple(f"{n}[kj[{i}]]" for n in names)


_FIELD_OF_S = Assign("Fj", "S if field == 0 else F  # the resnet field f = sigma: its values are S")
# An explicit tableau's tape may keep only each layer's input y_j = Y_1 (the resnet field: api.forward decides); the
# later stage values Y_i then go to the work array X and the backward pass forms them again from y_j and the S_l on
# the tape (F_l = S_l), with the same printed expression.
_SHORT = Assign("short", "Y.shape[0] < STAGES  # a tape of y_j only: Y_2.. in X")
_STAGE_VALUES = Assign("Ys", "X if short else Y")


def _stage_value(st, F: str, y: str) -> str | Sum:
    """Y_i = y + h Σ_(l<i) a_il F_l at (a, q), from the array named ``F`` and the element ``y`` of y."""
    return Sum(_products(st.terms, F), f"{y} + hj * (", ")") if st.terms else y


def _explicit_forward(eq: LayerEquations) -> tuple:
    body: list = [_FIELD_OF_S] + ([_SHORT, _STAGE_VALUES] if eq.stages > 1 else [])
    for st in eq.forward:
        i = st.i
        Y = "Y" if i == 0 else "Ys"  # Y_1 = y_j is always on the tape
        args = (*_stage_parameters(i), f"{Y}[{i}]", "Z", f"S[{i}]", f"Fj[{i}]", "field", "act", "d", "nw")
        field = Call("_field", args)
        stage = (Comment(str(st)), _block_loop(Assign(f"{Y}[{i}, a, q]", _stage_value(st, "Fj", "y[a, q]"))), field)
        body.append(Labelled(f"forward:Y_{i + 1}", stage))
    return (*body, _update(eq), Return("0, 0"))


def _count(call: Call) -> tuple:
    """A block's stage solve and its bookkeeping: failed solves add up, the most iterations any sample took."""
    return (call, Assign("failures", "failed", "+="), Assign("most", "max(most, it)"))


def _dirk_forward(eq: LayerEquations) -> tuple:
    """Stage by stage on the block: Y_i = (y + h Σ_(l<i) a_il F_l) + h a_ii f(Y_i), Newton where a_ii ≠ 0 (every
    sample of the block at once), then F_i = f(Y_i) as for an explicit stage."""
    body: list = [Assign("base", "ws[0]"), _FIELD_OF_S, Assign("failures", "0"), Assign("most", "0")]
    for st in eq.forward:
        i = st.i
        explicit = tuple(t for t in st.terms if t.index < i)
        value = Sum(_products(explicit, "Fj"), "y[a, q] + hj * (", ")") if explicit else "y[a, q]"
        args = (*_stage_parameters(i), f"Y[{i}]", "Z", f"S[{i}]", f"Fj[{i}]", "field", "act", "d", "nw")
        field = Call("_field", args)
        if st.diagonal:
            solve = (*_stage_parameters(i), f"hj * {st.diagonal.name}", "base", f"Y[{i}]", "Z", f"S[{i}]", f"Fj[{i}]")
            solve += ("ws", "field", "act", "d", "nb", "nw")
            stage = (
                Comment(str(st)),
                _block_loop(Assign("base[a, q]", value)),
                *_count(Call("_dirk_solve", solve, "failed, it")),
                field,
            )
        else:
            stage = (Comment(str(st)), _block_loop(Assign(f"Y[{i}, a, q]", value)), field)
        body.append(Labelled(f"forward:Y_{i + 1}", stage))
    return (*body, _update(eq), Return("failures, most"))


def _firk_forward(eq: LayerEquations) -> tuple:
    """Newton on the coupled stage system of every sample of the block at once (residual and matrix printed
    below), then F_i = f(Y_i) at the solved stages."""
    solve = ("K", "beta", "kj", "hj", "y", "Y", "Z", "S", "Fj", "ws", "field", "act", "d", "nb", "nw")
    fields = Call("_stage_fields", ("K", "beta", "kj", "Y", "Z", "S", "Fj", "field", "act", "d", "nw"))
    return (_FIELD_OF_S, Call("_coupled_solve", solve, "failures, most"), fields, _update(eq), Return("failures, most"))


def _adjoint_stage(i: int, Y: str = "Y") -> Call:
    K, _ = _stage_parameters(i)
    dK, dbeta = _stage_parameters(i, ("dK", "dbeta"))
    args = (K, f"{Y}[{i}]", f"S[{i}]", f"D[{i}]", f"eta[{i}]", f"mu[{i}]", "G", "U", dK, dbeta, "hj", "field", "slope")
    return Call("_adjoint_stage", (*args, "d", "nb", "nw"), "dhj", "+=")


def _explicit_backward(eq: LayerEquations, diagonal_solves: bool = False) -> tuple:
    """η_i = b_i p + Σ_(k>i) a_ki μ_k in the order of eq.backward (a DIRK stage then solves for its diagonal).

    An explicit tableau's stage values Y_i (i > 1) come from the tape, or where it keeps only y_j (_STAGE_VALUES)
    are formed again first, by the forward pass's expression on the same values."""
    short = not diagonal_solves and eq.stages > 1
    body: list = [Assign("dhj", "0.0")] + ([_SHORT, _STAGE_VALUES] if short else [])
    for st in eq.backward:
        if short and st.i > 0:
            forward = eq.forward[st.i]
            again = _block_loop(Assign(f"X[{st.i}, a, q]", _stage_value(forward, "S", "Y[0, a, q]")))
            what = f"{forward} again, from the tape's Y[0] = y_j and F_l = S_l"
            body.append(Labelled(f"backward:Y_{st.i + 1}", (If("short", (Comment(what), again)),)))
        i = st.i
        terms = st.explicit_terms if diagonal_solves else st.terms
        parts = ((f"{st.weight.name} * P[a, q]",) if st.weight else ()) + _products(terms, "mu")
        value = Sum(parts) if parts else "0.0"
        stage: list = [Comment(str(st)), _block_loop(Assign(f"eta[{i}, a, q]", value))]
        if diagonal_solves and st.diagonal:
            K, _ = _stage_parameters(i)
            args = (K, f"D[{i}]", f"eta[{i}]", f"hj * {st.diagonal.name}", "ws", "field", "d", "nb")
            stage.append(Call("_dirk_adjoint", args))
        stage.append(_adjoint_stage(i, "Ys" if short and i > 0 else "Y"))
        body.append(Labelled(f"backward:eta_{i + 1}", tuple(stage)))
    return (*body, Return("dhj"))


def _firk_backward(eq: LayerEquations) -> tuple:
    solve = Call("_coupled_adjoint", ("K", "kj", "D", "P", "eta", "ws", "hj", "field", "d", "nb"))
    stages = [Labelled(f"backward:eta_{st.i + 1}", (_adjoint_stage(st.i),)) for st in eq.backward]
    return (Assign("dhj", "0.0"), Labelled("adjoint:solve", (solve,)), *stages, Return("dhj"))


def _block_entries(system: StageSystem, matrix: str, index: str) -> tuple:
    """M[row block i, column block k, q] = -h coefficient J[k, a, index, q] (J or J^T): one assignment per block,
    0.0 where it is zero."""
    out = []
    for blk in system.blocks:
        target = f"M[{_row(blk.i)}, {_row(blk.k, index)}, q]"
        if blk.term is None:
            out.append(Assign(target, "0.0"))
        else:
            out.append(Assign(target, f"-hj * {blk.term.name} * {matrix}[{blk.k}, a, {index}, q]"))
    return tuple(out)


def _identity(s: int) -> Loop:
    return Loop("a", "d" if s == 1 else f"{s} * d", (Loop("q", "nw", (Assign("M[a, a, q]", "1.0", "+="),)),))


def _newton_residual(eq: LayerEquations) -> Function:
    (system,) = eq.newton
    rows = []
    for st in eq.forward:
        i = st.i
        items = (f"y[a, q] - Y[{i}, a, q]", *(f"hj * {t.name} * F[{t.index}, a, q]" for t in st.terms))
        rows.append(Comment(f"R_{i + 1} = {str(st).split(' = ')[1]} - Y_{i + 1}"))
        rows.append(Assign(f"R[{i}, a, q]", Sum(items)))
    body = (Labelled("newton:residual", (_block_loop(*rows),)),)
    doc = "R = y + h (A kron I) F - Y for the stages of every sample of a block (R[i] the residual of stage i)."
    return Function("_newton_residual", ("y", "Y", "F", "hj", "R", "d", "nw"), body, doc, _FAST_OPTIONS)


def _newton_jacobian(eq: LayerEquations) -> Function:
    (system,) = eq.newton
    loops = Loop("a", "d", (Loop("k", "d", (Loop("q", "nw", _block_entries(system, "J", "k")),)),))
    body = (Labelled("newton:jacobian", (loops, _identity(eq.stages))),)
    doc = "M[:, :, q] = I - h (A kron I) blockdiag(J_l[:, :, q]): the Newton matrix of each sample of a block."
    return Function("_newton_jacobian", ("J", "hj", "M", "d", "nw"), body, doc, _FAST_OPTIONS)


def _adjoint_system(eq: LayerEquations) -> Function:
    (system,) = eq.adjoint
    rhs = [
        Assign(f"R[{_row(st.i)}, q]", f"{st.weight.name} * P[a, q]" if st.weight else "0.0") for st in system.rhs
    ]
    matrix = Loop("c", "d", (Loop("q", "nw", _block_entries(system, "J", "c")),))
    loops = Loop("a", "d", (Loop("q", "nw", tuple(rhs)), matrix))
    body = (Labelled("adjoint:system", (loops, _identity(eq.stages))),)
    doc = (
        "M[:, :, q] = I - h (A^T kron I) blockdiag(J_k[:, :, q]) (J_k holding J_k^T) and R[:, q] = b kron p for "
        "each sample q of a block: eta solves M eta = R."
    )
    return Function("_adjoint_system", ("P", "J", "hj", "M", "R", "d", "nw"), body, doc, _FAST_OPTIONS)


def _adjoint_fixed_point(eq: LayerEquations) -> Function:
    """eta_i = b_i p + h Σ_k a_ki G_k with G_k = J_k^T eta_k: the backward stages, as the fixed-point iteration of
    the adjoint system that wide layers run (mu_k = h G_k)."""
    rows = []
    for st in eq.backward:
        parts = ((f"{st.weight.name} * P[a, q]",) if st.weight else ()) + tuple(
            f"hj * {t.name} * G[{t.index}, a, q]" for t in st.terms
        )
        rows.append(Comment(str(st).replace("mu_", "h G_")))
        rows.append(Assign(f"E[{st.i}, a, q]", Sum(parts) if parts else "0.0"))
    body = (Labelled("adjoint:fixed_point", (_block_loop(*rows),)),)
    doc = "E_i = b_i p + h sum_k a_ki G_k on a block, G_k = J_k^T eta_k: one sweep of the adjoint's fixed point."
    return Function("_adjoint_fixed_point", ("P", "G", "hj", "E", "d", "nw"), body, doc, _FAST_OPTIONS)


FORWARD_PARAMS = ("K", "beta", "kj", "hj", "y", "Y", "X", "S", "F", "Z", "ws", "field", "act", "d", "nb", "nw")
BACKWARD_PARAMS = (
    *("K", "kj", "hj", "P", "Y", "X", "S", "D", "eta", "mu", "G", "U", "dK", "dbeta", "ws", "field", "slope"),
    *("d", "nb", "nw"),
)


def functions(eq: LayerEquations) -> list[Function]:
    """The tableau's functions, in file order."""
    name = eq.tableau.name
    structure = eq.structure
    if structure == "explicit":
        forward, backward = _explicit_forward(eq), _explicit_backward(eq)
        how = "the explicit stages, then the update"
        back = "eta_i for i = s..1 in turn, each with its stage's share of the gradients"
    elif structure == "diagonally implicit":
        forward, backward = _dirk_forward(eq), _explicit_backward(eq, diagonal_solves=True)
        how = "stage by stage, Newton where a_ii != 0 (every sample of the block at once), then the update"
        back = "eta_i for i = s..1, a d x d solve where a_ii != 0, each with its share of the gradients"
    else:
        forward, backward = _firk_forward(eq), _firk_backward(eq)
        how = "Newton on the coupled stages (every sample of the block at once), then the update"
        back = "one (s d) x (s d) solve per sample, then each stage's share of the gradients"
    doc_forward = f"One layer of {_safe(name)} on a block of samples: {how}."
    doc_backward = f"The adjoint of one layer on a block: {back}.\n\nReturns dJ/dh_j."
    out = [
        Function("_layer_forward", FORWARD_PARAMS, forward, doc_forward, _FAST_OPTIONS),
        Function("_layer_backward", BACKWARD_PARAMS, backward, doc_backward, _FAST_OPTIONS),
    ]
    if structure == "fully implicit":
        out += [_newton_residual(eq), _newton_jacobian(eq), _adjoint_system(eq), _adjoint_fixed_point(eq)]
    return out


def _safe(text: str) -> str:
    """A tableau name as docstring text: one line, no backslashes or quotes."""
    return " ".join(text.split()).replace("\\", "/").replace('"', "'")


@dataclass(frozen=True)
class Kernels:
    """The printed functions and where each equation is: ``spans[label] = (first, last)``, 0-based lines of ``text``.

    Labels: ``def:<function>``; ``forward:Y_i``, ``update``, ``backward:eta_i``; for explicit tableaux of two or
    more stages ``backward:Y_i`` (i > 1: Y_i formed again where the tape keeps y_j only); for fully implicit tableaux
    ``newton:residual``, ``newton:jacobian``, ``adjoint:system``, ``adjoint:solve``, ``adjoint:fixed_point``."""

    text: str
    spans: dict[str, tuple[int, int]]


def kernels(eq: LayerEquations) -> Kernels:
    """Print the tableau's functions, two blank lines apart, with their source map."""
    lines: list[str] = []
    spans: dict[str, tuple[int, int]] = {}
    for fn in functions(eq):
        if lines:
            lines += ["", ""]
        body, inner = render(fn)
        offset = len(lines)
        spans[f"def:{fn.name}"] = (offset, offset + len(body) - 1)
        for label, (a, b) in inner.items():
            spans[label] = (offset + a, offset + b)
        lines += body
    return Kernels("\n".join(lines), spans)


def array_source(name: str, eq: LayerEquations) -> str:
    """``A``, ``B`` or ``C`` as an ``np.array`` built from the named constants (0.0 for zeros).

    >>> from rkgen import load
    >>> from rkgen.adjoint import layer_equations
    >>> print(array_source("A", layer_equations(load("heun2"))))
    A = np.array((
        (0.0, 0.0),
        (a_2_1, 0.0),
    ))
    >>> print(array_source("B", layer_equations(load("heun3"))))
    B = np.array((b_1, 0.0, b_3))
    """
    t = eq.tableau
    names = {c.name for c in coefficient_constants(eq)}
    s = t.stages

    def entry(label: str) -> str:
        return label if label in names else "0.0"

    if name == "A":
        rows = []
        for i in range(s):
            cells = ", ".join(entry(f"a_{i + 1}_{j + 1}") for j in range(s))
            rows.append(f"    ({cells}{',' if s == 1 else ''}),")
        return "A = np.array((\n" + "\n".join(rows) + "\n))"
    letter = name.lower()
    items = ", ".join(entry(f"{letter}_{i + 1}") for i in range(s))
    return f"{name} = np.array(({items}{',' if s == 1 else ''}))"

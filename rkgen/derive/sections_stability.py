"""The derivation's linear-stability section: R(z), A-/L-stability, the real interval, algebraic stability, and why
the backward pass is exactly as stable as the forward pass (R̃(z)·R(−z) = 1). Every verdict is
:mod:`rkgen.stability`'s, decided in exact arithmetic; this module only writes them out.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import sympy

from ..stability import Z
from .document import Code, Display, Figure, Heading, Items, Para, rich
from .region import region_svg, region_tikz

if TYPE_CHECKING:
    from .context import Context

#: The number of the section (its subsections are 9.1 ...).
NUMBER = 9

#: Polynomials whose LaTeX is longer than this are shown coefficient by coefficient, rounded.
_LONG = 160

_HW = "HW96"


def _poly_latex(doc: Context, expr) -> str:
    text = sympy.latex(sympy.expand(expr), order="rev-lex")
    if len(text) <= _LONG:
        return text
    poly = sympy.Poly(expr, Z)
    terms = []
    for (k,), c in sorted(poly.terms()):
        value = float(sympy.N(c, 20))
        power = "" if k == 0 else ("z" if k == 1 else f"z^{{{k}}}")
        terms.append(f"{value:+.10g}" + (f" {power}" if power else ""))
    return r"\approx " + " ".join(terms).lstrip("+")


def _R_latex(doc: Context, p, q) -> str:
    num, den = _poly_latex(doc, p), _poly_latex(doc, q)
    return num if q == 1 else rf"\frac{{{num}}}{{{den}}}"


def section_stability(doc: Context) -> list:
    t = doc.t
    s = t.stability
    n = NUMBER
    out = [Heading(2, rich(f"{n}. Linear stability, forward and backward"))]
    out.append(
        Para(
            rich(
                "Applied to the test equation $y' = \\lambda y$ with step $h$, one layer multiplies $y$ by the "
                "stability function of the method, $y_{j+1} = R(z) y_j$ with $z = h\\lambda$ "
                f"[{_HW}, Sec. IV.3]:"
            )
        )
    )
    out.append(
        Display(
            [
                r"R(z) = 1 + z b^{T} (I - zA)^{-1} \mathbf{1} = \frac{P(z)}{Q(z)}, \qquad "
                r"Q(z) = \det(I - zA), \qquad P(z) = \det(I - zA + z \mathbf{1} b^{T})."
            ]
        )
    )
    p, q = s.P.as_expr(), s.Q.as_expr()
    deg_p, deg_q = s.degrees
    out.append(
        Para(
            rich(
                "Both determinants are computed exactly (characteristic polynomials in the tableau's number "
                "field, common factors cancelled). For ",
                Code(t.name),
                ":",
            )
        )
    )
    out.append(Display([f"R(z) = {_R_latex(doc, p, q)}"]))
    k, c = s.linear_order
    shape = (
        f"a polynomial of degree {deg_p}, as for every explicit method"
        if deg_q == 0
        else f"a rational function with numerator degree {deg_p} and denominator degree {deg_q}"
    )
    out.append(
        Para(
            rich(
                f"$R$ is {shape}. It agrees with $e^{{z}}$ to order {k}: "
                f"$R(z) - e^{{z}} = {sympy.latex(c)} z^{{{k + 1}}} + O(z^{{{k + 2}}})$"
                + (
                    f", the classical order {t.order} seen on linear problems."
                    if k == t.order
                    else f" (the classical order is {t.order}; linear problems see order {k})."
                )
            )
        )
    )

    box = s.plot_box()
    out.append(
        Figure(
            "stability-region",
            region_svg(s, "stability", box),
            region_tikz(s, "stability", box),
            rich(
                f"The stability region $\\lbrace z : |R(z)| \\le 1 \\rbrace$ of `{doc.safe_name}` (shaded), drawn "
                "from $R$ on a grid of the window; the verdicts below are decided exactly, not read off the picture."
            ),
        )
    )

    # -- A- and L-stability ------------------------------------------------------------------------------
    out.append(Heading(3, rich(f"{n}.1 A-stability and L-stability")))
    out.append(
        Para(
            rich(
                "The method is A-stable when $|R(z)| \\le 1$ on the whole half-plane $\\operatorname{Re} z \\le 0$: "
                "a stiff layer (large negative $h\\lambda$) then never amplifies. By the maximum principle this "
                "holds exactly when $R$ has no pole with $\\operatorname{Re} z < 0$ and $|R(iy)| \\le 1$ for all "
                "real $y$, that is when the E-polynomial"
            )
        )
    )
    E = s.E_polynomial
    y = sympy.Symbol("y", real=True)
    e_tex = sympy.latex(E, order="rev-lex") if E != 0 else "0"
    if len(e_tex) > _LONG:
        e_tex = r"\text{(a polynomial in } y^{2} \text{ of degree " + str(sympy.degree(E, y)) + ")}"
    out.append(Display([rf"E(y) = |Q(iy)|^{{2}} - |P(iy)|^{{2}} = {e_tex}"]))
    out.append(
        Para(
            rich(
                "is nonnegative. rkgen decides both without sampling: the sign changes of $E$ are its real roots of "
                "odd multiplicity, counted exactly by a Sturm sequence of the odd-multiplicity part of $E$ "
                "(Yun's square-free decomposition); the poles are located by the Routh-Hurwitz array of "
                "$Q(-z)$. Here:"
            )
        )
    )
    at_inf = s.at_infinity
    inf_text = (
        "$R$ is unbounded as $|z| \\to \\infty$"
        if at_inf is None
        else f"$R(\\infty) = {sympy.latex(at_inf)}$"
    )
    out.append(
        Items(
            [
                rich(("**A-stable**: " if s.a_stable else "**not A-stable**: ") + _tex_reason(s.a_stability_reason)),
                rich(
                    ("**L-stable**: A-stable and " if s.l_stable else "**not L-stable**: ")
                    + inf_text
                    + (
                        ""
                        if s.l_stable
                        else (
                            " (L-stability asks for A-stability and $R(\\infty) = 0$)"
                            if s.a_stable
                            else " (L-stability needs A-stability first)"
                        )
                    )
                    + "."
                ),
            ]
        )
    )

    # -- the real interval -------------------------------------------------------------------------------
    out.append(Heading(3, rich(f"{n}.2 The stability interval on the negative real axis")))
    iv = s.interval
    if iv.unbounded:
        out.append(
            Para(
                rich(
                    "$|R(x)| \\le 1$ for every real $x \\le 0$: the interval is $(-\\infty, 0]$, and a layer with a "
                    "real negative eigenvalue is stable at any step."
                )
            )
        )
    else:
        poly = sympy.latex(iv.polynomial, order="rev-lex")
        if iv.exact is not None and not iv.exact.has(sympy.CRootOf):
            where = f"$-r = {sympy.latex(iv.exact)}$" + ("" if iv.exact.is_Rational else f" $\\approx {iv.digits}$")
        else:
            where = f"$-r \\approx {iv.digits}$ (isolated by exact bisection to better than $10^{{-30}}$)"
        out.append(
            Para(
                rich(
                    "$|R(x)| \\le 1$ on $[-r, 0]$ and not beyond, where $-r$ is the negative root of odd multiplicity "
                    f"of $Q(x)^{{2}} - P(x)^{{2}}$ nearest to 0, a root of ${poly} = 0$: {where}. A step $h$ with "
                    "$h\\lambda < -r$ for a real eigenvalue $\\lambda$ of the layer's Jacobian amplifies."
                )
            )
        )

    # -- algebraic stability ------------------------------------------------------------------------------
    out.append(Heading(3, rich(f"{n}.3 Algebraic stability")))
    alg = s.algebraic
    out.append(
        Para(
            rich(
                "The matrix $M = \\operatorname{diag}(b) A + A^{T} \\operatorname{diag}(b) - b b^{T}$ of section 4 "
                "has a second meaning: the method is algebraically stable (contractive for every dissipative "
                f"problem, not only linear ones) when $b \\ge 0$ and $M$ is positive semidefinite [{_HW}, "
                "Sec. IV.12]. rkgen decides it with an exact $LDL^{T}$ factorisation of $M$ with diagonal pivots. "
                "Here: "
                + ("**algebraically stable**: " if alg.holds else "**not algebraically stable**: ")
                + _tex_reason(alg.reason)
                + "."
                + (
                    " A symplectic method ($M = 0$) with $b \\ge 0$ is always algebraically stable."
                    if t.is_symplectic and alg.holds
                    else ""
                )
            )
        )
    )

    # -- the partner --------------------------------------------------------------------------------------
    out.append(Heading(3, rich(f"{n}.4 The backward pass is as stable as the forward pass")))
    if s.partner_R is None:
        out.append(
            Para(
                rich(
                    "With a zero weight there is no partner tableau (section 5). The backward pass of section 6 is "
                    "still the exact adjoint of the forward map: on the test equation it multiplies the adjoint by "
                    "the same $R(h\\lambda)$ as the forward pass multiplies the state, since the adjoint of "
                    "$y \\mapsto R(h\\lambda) y$ is $p \\mapsto R(h\\lambda) p$."
                )
            )
        )
        return out
    out.append(
        Para(
            rich(
                "Write $B = \\operatorname{diag}(b)$. The partner of section 5 is $\\tilde A = \\mathbf{1} b^{T} - "
                "B^{-1} A^{T} B$, so $B (I - z\\tilde A) B^{-1} = I + z A^{T} - z b \\mathbf{1}^{T}$ and, "
                "transposing inside the determinants,"
            )
        )
    )
    out.append(
        Display(
            [
                r"\det(I - z\tilde A) &= \det(I + zA - z \mathbf{1} b^{T}) = P(-z),",
                r"\det(I - z\tilde A + z \mathbf{1} b^{T}) &= \det(I + zA) = Q(-z),",
                r"\tilde R(z) &= \frac{Q(-z)}{P(-z)} = \frac{1}{R(-z)}.",
            ],
            aligned=True,
        )
    )
    out.append(Para(rich("For this tableau, computed from $\\tilde A$ itself:")))
    pt = sympy.fraction(sympy.together(s.partner_R))
    out.append(Display([rf"\tilde R(z) = {_R_latex(doc, pt[0], pt[1])}"]))
    check = (
        "$\\tilde R(z) R(-z) = 1$ holds as an identity of polynomials, checked exactly. "
        if s.partner_identity
        else "Here $\\tilde R(z) R(-z) \\ne 1$, which contradicts the derivation above: please report it. "
    )
    out.append(
        Para(
            rich(
                check,
                "What it means: the adjoint of $y' = \\lambda y$ is $p' = -\\lambda p$. The partner steps it forward "
                "with $\\tilde z = -h\\lambda$, so $p_{j+1} = \\tilde R(-h\\lambda) p_j = p_j / R(h\\lambda)$, "
                "that is $p_j = R(h\\lambda) p_{j+1}$: the backward pass multiplies the adjoint by exactly the "
                "factor by which the forward pass multiplied the state. A layer that is stable forward is stable "
                "backward, and the gradient neither explodes nor vanishes faster than the states do. "
                "$\\tilde R$ on its own can look unstable (the partner of an explicit method has poles), but it "
                "is only ever evaluated at $-h\\lambda$, backwards in time."
            )
        )
    )
    return out


def _tex_reason(text: str) -> str:
    """A verdict's reason (plain text from rkgen.stability) with its formulas as inline math."""
    swaps = [
        ("|R(iy)| ≤ 1", "$|R(iy)| \\le 1$"),
        ("|R(iy)| > 1", "$|R(iy)| > 1$"),
        ("|R(iy)| = 1", "$|R(iy)| = 1$"),
        ("E(y) ≥ 0", "$E(y) \\ge 0$"),
        ("E(y) < 0", "$E(y) < 0$"),
        ("E(y) = 0", "$E(y) = 0$"),
        ("y² > 0", "$y^{2} > 0$"),
        ("E(y) changes", "$E(y)$ changes"),
        ("real y ≠ 0", "real $y \\ne 0$"),
        ("real y", "real $y$"),
        ("Re z ≤ 0", "$\\operatorname{Re} z \\le 0$"),
        ("Re z < 0", "$\\operatorname{Re} z < 0$"),
        ("Re z > 0", "$\\operatorname{Re} z > 0$"),
        ("Q(−z)", "$Q(-z)$"),
        ("LDLᵀ", "$LDL^{T}$"),
        ("b ≥ 0", "$b \\ge 0$"),
        ("M = 0", "$M = 0$"),
    ]
    for a, b in swaps:
        text = text.replace(a, b)
    text = re.sub(r"\bb_(\d+) < 0", r"$b_{\1} < 0$", text)
    return text.replace(" M ", " $M$ ").replace("M is", "$M$ is")

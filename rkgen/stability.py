"""Linear stability of a tableau, decided exactly: R(z), A- and L-stability, the real interval, algebraic stability.

Applied to the test equation y' = λy with step h, a Runge–Kutta method multiplies y by the stability function

    R(z) = 1 + z bᵀ(I − zA)⁻¹𝟙 = P(z) / Q(z),   Q(z) = det(I − zA),   P(z) = det(I − zA + z𝟙bᵀ),   z = hλ.

Everything here is computed in the tableau's exact number field (:mod:`rkgen.exact`): the characteristic
polynomials, the common factor of P and Q (cancelled), and every sign that a verdict rests on. A sign is an exact
zero test followed by a certified float of a nonzero number, so no verdict uses a tolerance or samples a curve:

- **A-stable** (|R(z)| ≤ 1 on Re z ≤ 0): no pole in the left half-plane, decided by the Routh–Hurwitz array of
  Q(−z); and |R(iy)| ≤ 1 for every real y, i.e. the E-polynomial E(y) = |Q(iy)|² − |P(iy)|² is nonnegative,
  decided by counting the real roots of odd multiplicity of E with Sturm sequences.
- **L-stable**: A-stable and R(∞) = 0, i.e. deg P < deg Q.
- **The real stability interval** [−r, 0]: r is the largest x ≥ 0 with |R| ≤ 1 on [−x, 0], the negative root of
  odd multiplicity of Q² − P² nearest to 0 (or ∞). It is algebraic: given exactly (a rational, a surd or a
  ``CRootOf``) and as a float from an isolating interval narrower than 1e-30.
- **Algebraically stable** (Burrage–Butcher; Hairer–Wanner IV.12): b ≥ 0 and M = diag(b)A + Aᵀdiag(b) − bbᵀ
  positive semidefinite, decided by an exact LDLᵀ with diagonal pivots.
- **The partner's stability function**: R̃(z)·R(−z) = 1, checked as a polynomial identity. With B = diag(b),
  Ã = 𝟙bᵀ − B⁻¹AᵀB gives det(I − zÃ) = P(−z) and det(I − zÃ + z𝟙bᵀ) = Q(−z): the partner, stepping the adjoint
  equation p' = −λp forward, multiplies by R̃(−hλ) = 1/R(hλ), so the backward pass amplifies p exactly as the
  forward pass amplifies y.

>>> from rkgen import load
>>> s = load("rk4").stability
>>> s.R
z**4/24 + z**3/6 + z**2/2 + z + 1
>>> s.a_stable, s.interval.text
(False, '[-2.785293563405282..., 0]')
>>> g = load("gauss2").stability
>>> g.R, g.a_stable, g.l_stable
((z**2/12 + z/2 + 1)/(z**2/12 - z/2 + 1), True, False)
>>> load("radau_iia2").stability.l_stable
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
from itertools import pairwise

import numpy as np
import sympy

from .butcher import ButcherTableau
from .numbers import sign
from .partner import _partner_elements, symplecticity_elements

__all__ = ["StabilityReport", "StabilityInterval", "AlgebraicStability", "analyse_stability", "Z"]

#: The variable of R(z).
Z = sympy.Symbol("z")

#: Bisection of the interval's end point stops below this width (well beyond float64).
_ROOT_WIDTH = Fraction(1, 2**110)


# -- polynomials over a number field: lists of elements, constant term first, no trailing zeros ---------------
class _Poly:
    """Polynomial arithmetic over a :class:`rkgen.exact.NumberField` (coefficient lists, low degree first)."""

    def __init__(self, F):
        self.F = F

    def trim(self, p):
        p = list(p)
        while p and p[-1].is_zero():
            p.pop()
        return p

    def add(self, p, q):
        n = max(len(p), len(q))
        z = self.F.zero
        return self.trim([(p[k] if k < len(p) else z) + (q[k] if k < len(q) else z) for k in range(n)])

    def neg(self, p):
        return [-c for c in p]

    def sub(self, p, q):
        return self.add(p, self.neg(q))

    def mul(self, p, q):
        if not p or not q:
            return []
        out = [self.F.zero] * (len(p) + len(q) - 1)
        for i, a in enumerate(p):
            for j, b in enumerate(q):
                out[i + j] = out[i + j] + a * b
        return self.trim([self.F.reduce(c) for c in out])

    def scale(self, p, a):
        return self.trim([self.F.mul(c, a) for c in p])

    def divmod(self, p, q):
        F = self.F
        p = list(p)
        inv = F.inv(q[-1])
        quot = [F.zero] * max(len(p) - len(q) + 1, 0)
        while len(p) >= len(q) and p:
            k = len(p) - len(q)
            c = F.mul(p[-1], inv)
            quot[k] = c
            for j, b in enumerate(q):
                p[k + j] = F.sub(p[k + j], F.mul(c, b))
            p = self.trim(p[:-1])
        return self.trim(quot), p

    def monic(self, p):
        return self.scale(p, self.F.inv(p[-1])) if p else p

    def gcd(self, p, q):
        while q:
            p, q = q, self.divmod(p, q)[1]
        return self.monic(p)

    def deriv(self, p):
        return self.trim([self.F.mul(c, self.F.from_rational(k)) for k, c in enumerate(p)][1:])

    def at(self, p, x):
        """p(x) for a field element x."""
        value = self.F.zero
        for c in reversed(p):
            value = self.F.add(self.F.mul(value, x), c)
        return value

    def reflect(self, p):
        """p(−z)."""
        return [(-c if k % 2 else c) for k, c in enumerate(p)]


def _sign(F, a) -> int:
    """The exact sign of a field element: an exact zero test, then a certified float of a nonzero number."""
    if a.is_zero():
        return 0
    return 1 if F.to_float(a) > 0 else -1


def _charpoly(F, M) -> list:
    """The characteristic polynomial det(xI − M), low degree first, in O(n³) field operations: a similarity
    transform to upper Hessenberg form, then the recurrence of the Hessenberg determinant (Cohen, A Course in
    Computational Algebraic Number Theory, Alg. 2.2.9)."""
    n = len(M)
    H = [list(row) for row in M]
    for m in range(1, n - 1):
        piv = next((i for i in range(m, n) if not H[i][m - 1].is_zero()), None)
        if piv is None:
            continue
        if piv != m:
            H[piv], H[m] = H[m], H[piv]
            for row in H:
                row[piv], row[m] = row[m], row[piv]
        inv = F.inv(H[m][m - 1])
        for i in range(m + 1, n):
            u = F.mul(H[i][m - 1], inv)
            if u.is_zero():
                continue
            for j in range(n):
                H[i][j] = F.sub(H[i][j], F.mul(u, H[m][j]))
            for row in H:
                row[m] = F.add(row[m], F.mul(u, row[i]))
    P = _Poly(F)
    polys = [[F.one]]
    for m in range(1, n + 1):
        p = P.mul([F.sub(F.zero, H[m - 1][m - 1]), F.one], polys[m - 1])
        t = F.one
        for i in range(m - 1, 0, -1):
            t = F.mul(t, H[i][i - 1])
            term = F.mul(H[i - 1][m - 1], t)
            if not term.is_zero():
                p = P.sub(p, P.scale(polys[i - 1], term))
        polys.append(p)
    return polys[n]


def _rational_function(F, A, b) -> tuple[list, list]:
    """R(z) = P(z)/Q(z) of the tableau (A, b) over F: Q = det(I − zA), P = det(I − zA + z𝟙bᵀ), their common
    factor cancelled and Q(0) = 1."""
    P = _Poly(F)
    s = len(b)
    Q = _det_one_minus(F, A)
    Pn = _det_one_minus(F, [[F.sub(A[i][j], b[j]) for j in range(s)] for i in range(s)])
    g = P.gcd(Pn, Q)
    if len(g) > 1:
        Pn, Q = P.divmod(Pn, g)[0], P.divmod(Q, g)[0]
    q0 = F.inv(Q[0])
    return P.scale(Pn, q0), P.scale(Q, q0)


def _det_one_minus(F, M) -> list:
    """det(I − zM) as a polynomial in z: the characteristic polynomial of M with its coefficients reversed."""
    return _Poly(F).trim(list(reversed(_charpoly(F, M))))


# -- real roots: Sturm sequences, square-free parts ------------------------------------------------------
def _sturm(P: _Poly, p) -> list:
    seq = [p, P.deriv(p)]
    while seq[-1]:
        rem = P.divmod(seq[-2], seq[-1])[1]
        if not rem:
            break
        seq.append(P.neg(rem))
    return [s for s in seq if s]


def _variations(signs) -> int:
    signs = [s for s in signs if s]
    return sum(1 for a, b in pairwise(signs) if a != b)


def _v_at(P: _Poly, seq, x: Fraction) -> int:
    F = P.F
    xe = F.from_rational(x)
    return _variations([_sign(F, P.at(s, xe)) for s in seq])


def _v_inf(P: _Poly, seq, side: int) -> int:
    F = P.F
    return _variations([_sign(F, s[-1]) * (side ** (len(s) - 1)) for s in seq])


def _odd_part(P: _Poly, p) -> list:
    """The product of the square-free factors of odd multiplicity of p (Yun's algorithm): the points where p
    changes sign are exactly its real roots."""
    a = P.monic(p)
    b = P.deriv(a)
    c = P.gcd(a, b)
    w = P.divmod(a, c)[0]
    y = P.divmod(b, c)[0]
    z = P.sub(y, P.deriv(w))
    out, k = [P.F.one], 1
    while len(w) > 1:
        g = P.gcd(w, z)
        if k % 2:
            out = P.mul(out, g)
        w = P.divmod(w, g)[0]
        y = P.divmod(z, g)[0]
        z = P.sub(y, P.deriv(w))
        k += 1
    return out


def _without_root_at_zero(p) -> list:
    k = 0
    while k < len(p) and p[k].is_zero():
        k += 1
    return p[k:]


# -- the results ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StabilityInterval:
    """The real stability interval [left, 0] (left = −inf when unbounded).

    ``exact``: the end point as a sympy number (a rational, a surd or a ``CRootOf``) or None (unbounded, or an
    algebraic number of a number field: then ``polynomial`` and the isolating ``bracket`` define it exactly).
    """

    left: float
    exact: sympy.Expr | None
    polynomial: sympy.Expr | None  # a polynomial in x with root ``left`` (irreducible over Q for rational tableaux)
    bracket: tuple[Fraction, Fraction] | None  # left lies in (lo, hi]

    @property
    def unbounded(self) -> bool:
        return self.left == -math.inf

    @property
    def text(self) -> str:
        if self.unbounded:
            return "(-inf, 0]"
        if self.exact is not None and self.exact.is_Rational:
            return f"[{self.exact}, 0]"
        return f"[{self.left!r}..., 0]"

    @property
    def digits(self) -> str:
        """The end point to 25 significant digits (from the exact form or the isolating bracket)."""
        if self.unbounded:
            return "-inf"
        if self.exact is not None:
            return str(sympy.N(self.exact, 25))
        lo, hi = self.bracket
        return str(sympy.N(sympy.Rational(hi.numerator, hi.denominator), 25))


@dataclass(frozen=True)
class AlgebraicStability:
    """b ≥ 0 and M ⪰ 0, each decided exactly; ``reason`` says which fails (or why both hold)."""

    b_nonnegative: bool
    M_psd: bool
    M_rank: int | None  # the rank of M when it is positive semidefinite
    reason: str

    @property
    def holds(self) -> bool:
        return self.b_nonnegative and self.M_psd


class StabilityReport:
    """The exact linear stability of one tableau (see the module's docstring). Built by :func:`analyse_stability`;
    every member is computed on first use."""

    def __init__(self, tableau: ButcherTableau):
        self.tableau = tableau
        self.F = tableau.number_field
        self._P = _Poly(self.F)

    # -- R(z) ---------------------------------------------------------------------------------------------
    @cached_property
    def _pq(self):
        """(P, Q) as field-element coefficient lists, common factor cancelled, Q(0) = 1."""
        A, b, _ = self.tableau.exact
        return _rational_function(self.F, A, b)

    def _sympy_poly(self, coeffs, var=Z) -> sympy.Expr:
        return sympy.Add(*[self.F.to_sympy(c) * var**k for k, c in enumerate(coeffs)])

    @cached_property
    def P(self) -> sympy.Poly:
        """The numerator of R(z), exact (over the tableau's field), after cancelling common factors."""
        return sympy.Poly(self._sympy_poly(self._pq[0]), Z)

    @cached_property
    def Q(self) -> sympy.Poly:
        """The denominator of R(z), exact, with Q(0) = 1 (1 for explicit methods)."""
        return sympy.Poly(self._sympy_poly(self._pq[1]), Z)

    @cached_property
    def R(self) -> sympy.Expr:
        """R(z) = P(z)/Q(z) as a sympy expression in :data:`Z`."""
        p, q = self._sympy_poly(self._pq[0]), self._sympy_poly(self._pq[1])
        return p if q == 1 else p / q

    @property
    def degrees(self) -> tuple[int, int]:
        """(deg P, deg Q)."""
        return len(self._pq[0]) - 1, len(self._pq[1]) - 1

    @cached_property
    def _float_coeffs(self):
        F = self.F
        return [np.array([F.to_float(c) for c in part]) for part in self._pq]

    def evaluate(self, z) -> np.ndarray:
        """R at the points z (complex numpy array), from the float coefficients (Horner)."""
        z = np.asarray(z, dtype=complex)
        p, q = self._float_coeffs
        num = np.zeros_like(z)
        for c in p[::-1]:
            num = num * z + c
        den = np.zeros_like(z)
        for c in q[::-1]:
            den = den * z + c
        with np.errstate(divide="ignore", invalid="ignore"):
            return num / den

    def poles(self) -> np.ndarray:
        """The poles of R (roots of Q), as floats: for drawing, never for a verdict."""
        return _float_roots(self._float_coeffs[1])

    def zeros(self) -> np.ndarray:
        """The zeros of R (roots of P), as floats: for drawing."""
        return _float_roots(self._float_coeffs[0])

    def plot_box(self, kind: str = "stability") -> tuple[float, float, float, float]:
        """A plot window (x_min, x_max, y_min, y_max) that shows the picture: the boundary locus of the stability
        region (P(z) = e^{iθ} Q(z) on a fine grid of θ), the poles and zeros of R, the real interval and the
        origin, with a margin, rounded outward to halves; symmetric in Im z (R has real coefficients). The one
        window of `rkgen plot` and of the derivation's drawings."""
        poles, zeros = self.poles(), self.zeros()
        left = self.interval.left
        special = [*poles, *zeros, 0j] + ([complex(left)] if math.isfinite(left) else [])
        scale = min(max([2.0, *(abs(v) for v in special)]), _MAX_EXTENT)
        cap = min(1.5 * scale, _MAX_EXTENT)
        points = [v for v in special if abs(v) <= cap]
        if kind == "stability":
            p, q = self._float_coeffs
            n = max(len(p), len(q))
            P, Q = np.zeros(n, complex), np.zeros(n, complex)
            P[: len(p)], Q[: len(q)] = p, q
            for theta in np.linspace(0.0, 2 * np.pi, 721)[:-1]:
                points.extend(v for v in _float_roots(P - np.exp(1j * theta) * Q) if abs(v) <= cap)
            if not math.isfinite(left):  # unbounded interval: show a stretch of the negative real axis
                points.append(complex(-scale))
        else:
            points.extend([complex(scale), complex(-scale), complex(0, scale), complex(0, -scale)])
        pts = np.array(points, dtype=complex)
        xmin, xmax = min(float(pts.real.min()), -1.0), max(float(pts.real.max()), 0.0)
        half = max(float(pts.imag.max()), -float(pts.imag.min()), 1.0)
        if len(self._float_coeffs[1]) > 1:  # poles: the boundary may run off along the imaginary axis
            half = min(half, max(-xmin, xmax, 1.0))
        margin = 0.08 * max(xmax - xmin, 2 * half)
        half = math.ceil((half + margin) * 2) / 2
        return (math.floor((xmin - margin) * 2) / 2, math.ceil((xmax + margin) * 2) / 2, -half, half)

    def log_amplification(self, z, kind: str = "stability") -> np.ndarray:
        """log|R(z)| (``kind="stability"``: the region is where it is ≤ 0) or log|R(z)e^{-z}| (``"order-star"``: the
        star is where it is > 0) at the points z, finite: zeros and poles clipped to ±60. For drawing (`rkgen plot`
        and the derivation's figure alike), never for a verdict."""
        z = np.asarray(z, dtype=complex)
        with np.errstate(all="ignore"):
            values = np.log(np.abs(self.evaluate(z)))
        values = np.nan_to_num(values, nan=60.0, posinf=60.0, neginf=-60.0).clip(-60.0, 60.0)
        if kind == "order-star":
            return (values - z.real).clip(-60.0, 60.0)
        if kind != "stability":
            raise ValueError(f"kind must be 'stability' or 'order-star', not {kind!r}")
        return values

    @property
    def at_infinity(self) -> sympy.Expr | None:
        """lim R(z) as |z| → ∞ (None when deg P > deg Q: R is unbounded)."""
        p, q = self._pq
        if len(p) > len(q):
            return None
        if len(p) < len(q):
            return sympy.Integer(0)
        return self.F.to_sympy(self.F.div(p[-1], q[-1]))

    @cached_property
    def linear_order(self) -> tuple[int, sympy.Expr]:
        """(k, C): R(z) = e^z + C z^{k+1} + O(z^{k+2}) with C ≠ 0, exactly: the order the method shows on linear
        problems (at least its classical order). R's power series comes from P = Q·R term by term in the
        tableau's field; a rational R of degrees (m, n) matches e^z to order at most m + n."""
        F = self.F
        p, q = self._pq
        top = sum(self.degrees) + 2
        r = []
        for k in range(top + 1):
            acc = p[k] if k < len(p) else F.zero
            for j in range(1, min(k, len(q) - 1) + 1):
                acc = F.sub(acc, F.mul(q[j], r[k - j]))
            r.append(acc)  # q[0] = 1
            diff = F.sub(acc, F.from_rational(Fraction(1, math.factorial(k))))
            if not diff.is_zero():
                return k - 1, F.to_sympy(diff)
        return top, sympy.Integer(0)  # not reached: R = e^z is impossible for a rational R

    # -- A- and L-stability -------------------------------------------------------------------------------
    @cached_property
    def E(self) -> list:
        """The E-polynomial in x = y²: E(y) = |Q(iy)|² − |P(iy)|² = e(y²), coefficients (field elements)."""
        P = self._P

        def halves(p):  # p(iy) = even(y²) + i·y·odd(y²)
            even = [c if (k // 2) % 2 == 0 else -c for k, c in enumerate(p) if k % 2 == 0]
            odd = [c if (k // 2) % 2 == 0 else -c for k, c in enumerate(p) if k % 2 == 1]
            return P.trim(even), P.trim(odd)

        pe, po = halves(self._pq[0])
        qe, qo = halves(self._pq[1])
        x = [self.F.zero, self.F.one]
        q2 = P.add(P.mul(qe, qe), P.mul(x, P.mul(qo, qo)))
        p2 = P.add(P.mul(pe, pe), P.mul(x, P.mul(po, po)))
        return P.sub(q2, p2)

    @cached_property
    def E_polynomial(self) -> sympy.Expr:
        """E(y) as a sympy polynomial expression in y."""
        y = sympy.Symbol("y", real=True)
        return sympy.expand(self._sympy_poly(self.E, y**2))

    @cached_property
    def _imaginary_axis(self) -> tuple[bool, str]:
        """Whether |R(iy)| ≤ 1 for all real y, and why."""
        F, P = self.F, self._P
        e = self.E
        if not e:
            return True, "|R(iy)| = 1 on the whole imaginary axis: E(y) = 0"
        odd = _without_root_at_zero(_odd_part(P, e))
        seq = _sturm(P, odd) if len(odd) > 1 else [odd]
        changes = _v_at(P, seq, Fraction(0)) - _v_inf(P, seq, 1) if len(odd) > 1 else 0
        if changes:
            return False, f"|R(iy)| > 1 for some real y: E(y) changes sign at {changes} value(s) of y² > 0"
        if _sign(F, e[-1]) < 0:
            return False, "|R(iy)| > 1 for every real y ≠ 0: E(y) < 0"
        return True, "|R(iy)| ≤ 1 for every real y: E(y) ≥ 0, by an exact real-root count"

    @cached_property
    def _left_poles(self) -> tuple[bool, str]:
        """Whether R has no pole with Re z < 0 (Routh–Hurwitz array of Q(−z): every root of Q(−z) in the open
        left half-plane). Only conclusive together with E ≥ 0, which rules out poles on the imaginary axis."""
        F = self.F
        q = self._P.reflect(self._pq[1])
        n = len(q) - 1
        if n == 0:
            return True, "no poles"
        coeffs = list(reversed(q))  # leading first
        rows = [coeffs[0::2], coeffs[1::2]]
        while len(rows) < n + 1:
            r1, r2 = rows[-2], rows[-1]
            if not r2 or r2[0].is_zero():
                return False, "a pole with Re z ≤ 0: the Routh–Hurwitz array of Q(−z) has a zero"
            new = []
            for j in range(len(r1) - 1):
                a = r1[j + 1]
                b = r2[j + 1] if j + 1 < len(r2) else F.zero
                new.append(F.div(F.sub(F.mul(r2[0], a), F.mul(r1[0], b)), r2[0]))
            rows.append(new)
        signs = [_sign(F, r[0]) if r else 0 for r in rows]
        if 0 in signs:
            return False, "a pole with Re z ≤ 0: the Routh–Hurwitz array of Q(−z) has a zero"
        flips = sum(1 for a, b in pairwise(signs) if a != b)
        if flips:
            return False, f"{flips} pole(s) with Re z < 0, by the Routh–Hurwitz array of Q(−z)"
        return True, "every pole has Re z > 0, by the Routh–Hurwitz array of Q(−z)"

    @cached_property
    def a_stable(self) -> bool:
        """|R(z)| ≤ 1 for every z with Re z ≤ 0, decided exactly."""
        return self._imaginary_axis[0] and self._left_poles[0]

    @property
    def a_stability_reason(self) -> str:
        axis_ok, axis = self._imaginary_axis
        if not axis_ok:
            return axis
        poles_ok, poles = self._left_poles
        return f"{axis}; {poles}" if poles_ok else poles

    @property
    def l_stable(self) -> bool:
        """A-stable and R(∞) = 0 (deg P < deg Q)."""
        return self.a_stable and self.degrees[0] < self.degrees[1]

    # -- the real interval --------------------------------------------------------------------------------
    @cached_property
    def interval(self) -> StabilityInterval:
        """[−r, 0], the largest interval of the negative real axis on which |R(x)| ≤ 1."""
        F, P = self.F, self._P
        p, q = self._pq
        f = P.sub(P.mul(q, q), P.mul(p, p))  # |R(x)| ≤ 1 ⟺ f(x) ≥ 0 where Q(x) ≠ 0
        none = StabilityInterval(-math.inf, None, None, None)
        if not f:  # |R| = 1 on the whole real axis (R = 1, as for weights that sum to 0 with R(z) = 1 + 0 z + ...)
            return none
        odd = _without_root_at_zero(_odd_part(P, f))
        if len(odd) <= 1:
            return none
        seq = _sturm(P, odd)
        below = _v_inf(P, seq, -1) - _v_at(P, seq, Fraction(0))  # negative roots
        if below == 0:
            return none
        lo = Fraction(-1)
        while _v_inf(P, seq, -1) - _v_at(P, seq, lo) > 0:  # some root at or below lo: go further out
            lo *= 2
        hi = Fraction(0)
        # invariant: the negative root nearest 0 lies in (lo, hi], none in (hi, 0)
        while hi - lo > _ROOT_WIDTH:
            mid = (lo + hi) / 2
            if _v_at(P, seq, mid) - _v_at(P, seq, hi) >= 1:
                lo = mid
            else:
                hi = mid
            if P.at(odd, F.from_rational(hi)).is_zero():
                return StabilityInterval(float(hi), sympy.Rational(hi.numerator, hi.denominator), _X - hi, (hi, hi))
        poly, exact = _exact_root(self._sympy_poly(odd, _X), lo, hi, F.is_rational)
        return StabilityInterval(_mid_float(lo, hi), exact, poly, (lo, hi))

    # -- algebraic stability, the partner ----------------------------------------------------------------
    @cached_property
    def algebraic(self) -> AlgebraicStability:
        """b ≥ 0 and M ⪰ 0, decided exactly (an LDLᵀ with diagonal pivots in the tableau's field)."""
        F = self.F
        _, b, _ = self.tableau.exact
        negative = [i for i, x in enumerate(b) if _sign(F, x) < 0]
        psd, rank, why = _psd(F, symplecticity_elements(self.tableau))
        if negative:
            reason = f"b_{negative[0] + 1} < 0"
        elif not psd:
            reason = why
        else:
            reason = "b ≥ 0 and M is positive semidefinite" + (" (M = 0)" if rank == 0 else f" (rank {rank})")
        return AlgebraicStability(not negative, psd, rank if psd else None, reason)

    @cached_property
    def partner_R(self) -> sympy.Expr | None:
        """The stability function R̃(z) of the symplectic partner (None when some b_i = 0)."""
        partner = self._partner_pq
        if partner is None:
            return None
        p, q = partner
        num, den = self._sympy_poly(p), self._sympy_poly(q)
        return num if den == 1 else num / den

    @cached_property
    def _partner_pq(self):
        """The partner's (P̃, Q̃), from Ã of :mod:`rkgen.partner` (None when some b_i = 0)."""
        if self.tableau.zero_weights:
            return None
        _, b, _ = self.tableau.exact
        return _rational_function(self.F, _partner_elements(self.tableau), b)

    @cached_property
    def partner_identity(self) -> bool | None:
        """R̃(z)·R(−z) = 1, checked exactly as P̃(z)P(−z) = Q̃(z)Q(−z) (None without a partner)."""
        if self._partner_pq is None:
            return None
        P = self._P
        pt, qt = self._partner_pq
        p, q = self._pq
        return not P.sub(P.mul(pt, P.reflect(p)), P.mul(qt, P.reflect(q)))

    # -- data ---------------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-ready data (exact expressions as strings)."""
        iv = self.interval
        alg = self.algebraic
        return {
            "R": str(self.R),
            "numerator": str(self.P.as_expr()),
            "denominator": str(self.Q.as_expr()),
            "degrees": list(self.degrees),
            "R_at_infinity": None if self.at_infinity is None else str(self.at_infinity),
            "E_polynomial": str(self.E_polynomial),
            "A_stable": self.a_stable,
            "A_stability_reason": self.a_stability_reason,
            "L_stable": self.l_stable,
            "interval": {
                "left": None if iv.unbounded else iv.left,
                "unbounded": iv.unbounded,
                "exact": None if iv.exact is None else str(iv.exact),
                "digits": iv.digits,
                "polynomial": None if iv.polynomial is None else str(iv.polynomial),
            },
            "algebraically_stable": alg.holds,
            "algebraic_stability_reason": alg.reason,
            "partner_R": None if self.partner_R is None else str(self.partner_R),
            "partner_identity": self.partner_identity,
        }


_X = sympy.Symbol("x")

#: The largest |z| a plot window reaches.
_MAX_EXTENT = 100.0


def _float_roots(coefficients) -> np.ndarray:
    """Roots of a float polynomial given low degree first (numpy; for drawing only)."""
    c = np.trim_zeros(np.asarray(coefficients, dtype=complex)[::-1], "f")
    return np.roots(c) if len(c) > 1 else np.zeros(0, dtype=complex)


def _mid_float(lo: Fraction, hi: Fraction) -> float:
    return float((lo + hi) / 2)


def _exact_root(poly: sympy.Expr, lo: Fraction, hi: Fraction, rational: bool):
    """The root of ``poly`` in (lo, hi]: (its irreducible factor over Q, the root in closed form (degree ≤ 2) or as
    a ``CRootOf``) for rational coefficients; (poly, None) in a number field (the bracket then defines it)."""
    if not rational:
        return poly, None
    lo_q, hi_q = sympy.Rational(lo.numerator, lo.denominator), sympy.Rational(hi.numerator, hi.denominator)
    for factor, _ in sympy.factor_list(poly, _X)[1]:
        f = sympy.Poly(factor, _X)
        if f.count_roots(lo_q, hi_q) == 0:
            continue
        f = sympy.Poly(f.monic().as_expr() * sympy.lcm([c.q for c in f.monic().coeffs()]), _X)
        if f.degree() <= 2:
            for r in sympy.roots(f, _X):  # real roots of a rational quadratic: rationals and real surds
                if r.is_real and sign(r - lo_q) > 0 and sign(hi_q - r) >= 0:  # exact, however large
                    return f.as_expr(), sympy.radsimp(r)
        below = sum(1 for r in f.real_roots() if r.evalf(40) <= lo_q)
        return f.as_expr(), sympy.CRootOf(f.as_expr(), below)
    return poly, None


def _psd(F, M) -> tuple[bool, int, str]:
    """Whether the symmetric matrix M (field elements) is positive semidefinite, its rank, and why not."""
    n = len(M)
    M = [list(row) for row in M]
    active = list(range(n))
    rank = 0
    while active:
        signs = {k: _sign(F, M[k][k]) for k in active}
        neg = next((k for k in active if signs[k] < 0), None)
        if neg is not None:
            return False, 0, "M is indefinite: its exact LDLᵀ has a negative pivot"
        k = next((k for k in active if signs[k] > 0), None)
        if k is None:
            if any(not M[i][j].is_zero() for i in active for j in active):
                return False, 0, "M is indefinite: its exact LDLᵀ meets a zero pivot with a nonzero row"
            return True, rank, ""
        rank += 1
        active.remove(k)
        inv = F.inv(M[k][k])
        for i in active:
            f = F.mul(M[i][k], inv)
            for j in active:
                M[i][j] = F.sub(M[i][j], F.mul(f, M[k][j]))
    return True, rank, ""


def analyse_stability(tableau: ButcherTableau) -> StabilityReport:
    """The :class:`StabilityReport` of a tableau (members computed on first use)."""
    return StabilityReport(tableau)

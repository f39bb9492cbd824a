"""The facts a derivation's sections share (tableau, layer equations, check, generated module), read once.

The sections (``sections_*.py``) take a :class:`Context`; :class:`rkgen.derive.derivation.Derivation` adds the
sections in order and prints them.
"""

from __future__ import annotations

import re
from functools import cached_property

from ..adjoint import PARAMS, layer_equations, parameter_layout
from ..errors import RkgenError
from ..tableau import Tableau, load
from .check import CheckResult, numerical_check, partner_entries
from .formulas import float_tex, longest, lx, vector_latex

__all__ = ["Context", "SHORT_LATEX"]

#: Exact values whose LaTeX is longer than this are shown as floats where a table needs a short cell.
SHORT_LATEX = 48


class Context:
    """What every section of a derivation reads: the tableau, its equations, the check, the module, helpers."""

    def __init__(self, tableau: Tableau | str, params: str = "shared"):
        if params not in PARAMS:
            raise RkgenError(f"unknown parameter layout {params!r}; choose one of {', '.join(PARAMS)}")
        self.t = load(tableau) if not isinstance(tableau, Tableau) else tableau
        self.eq = layer_equations(self.t)
        self.F = self.t.number_field
        #: which parameters each stage reads (:func:`rkgen.adjoint.parameter_layout`); ``shared`` by default
        self.layout = parameter_layout(self.t, params)

    # -- the parameter layout ----------------------------------------------------------------------------
    @property
    def params(self) -> str:
        return self.layout.name

    @property
    def shared(self) -> bool:
        """One parameter set per layer (the default; the document is then the one without ``--params``)."""
        return self.layout.name == "shared"

    @property
    def u(self) -> str:
        """The parameters stage i reads, as written in the formulas: u_j (shared) or u_i (per stage)."""
        return "u_j" if self.shared else "u_i"

    # -- shared facts ----------------------------------------------------------------------------------
    @cached_property
    def check(self) -> CheckResult:
        return numerical_check(self.t, self.eq)

    @cached_property
    def module(self):
        """The generated module's text and source map (:class:`rkgen.codegen.Rendered`)."""
        from ..codegen import render

        return render(self.t)

    @property
    def module_source(self) -> str:
        return self.module.text

    @cached_property
    def misprint_differences(self) -> list[tuple[int, int]]:
        """(i, j) where the partner of the misprinted conditions differs from the partner (0-based; empty when
        they agree or when some b_i = 0)."""
        t = self.t
        if t.zero_weights:
            return []
        wrong, right = partner_entries(t, misprint=True), partner_entries(t)
        s = t.stages
        return [(i, j) for i in range(s) for j in range(s) if not self.F.sub(wrong[i][j], right[i][j]).is_zero()]

    @cached_property
    def is_symmetric(self) -> bool:
        """A = Aᵀ exactly (then the misprint of (19) changes nothing)."""
        A, _, _ = self.t.exact
        s = self.t.stages
        return all(self.F.sub(A[i][j], A[j][i]).is_zero() for i in range(s) for j in range(s))

    def short(self, values, limit: int = SHORT_LATEX) -> bool:
        return longest(values) <= limit

    def exact_or_float(self, value, limit: int = SHORT_LATEX) -> str:
        """The LaTeX of an exact value, or its float (with ≈) when the LaTeX is long."""
        text = lx(value)
        if len(text) <= limit:
            return text
        return r"\approx " + float_tex(self.F.to_float(self.F.element(value)), 10)

    def element_latex(self, el) -> str:
        """LaTeX of a field element: exact when rational or in a quadratic field, else a float with ≈."""
        F = self.F
        if el.degree() < 1 or F.degree <= 2:
            return self.exact_or_float(F.to_sympy(el))
        return r"\approx " + float_tex(F.to_float(el), 10)

    def vector_of_elements(self, elements) -> str:
        """A column vector of field elements: exact when short (and rational or quadratic), else rounded."""
        F = self.F
        if F.degree <= 2:
            values = [F.to_sympy(x) for x in elements]
            if self.short(values, 40):
                return vector_latex(values)
        parts = [lx(F.to_sympy(x)) if x.degree() < 1 else float_tex(F.to_float(x)) for x in elements]
        prefix = r"\approx" if any(x.degree() >= 1 for x in elements) else ""
        return prefix + r"\left(" + ", ".join(parts) + r"\right)^{T}"

    @property
    def title(self) -> str:
        if self.shared:
            return f"Exact gradients for {self.t.name}: a derivation"
        return f"Exact gradients for {self.t.name} with the {self.params} parameter layout: a derivation"

    @property
    def safe_name(self) -> str:
        return self.t.name if re.fullmatch(r"[A-Za-z0-9_.+-]{1,40}", self.t.name) else "this tableau"

    def residual_math(self, cond) -> str:
        text = lx(cond.residual)
        return text if len(text) <= SHORT_LATEX else rf"\approx {cond.residual_float:.6e}"

    def numeric_ok(self, terms, limit: int = 40) -> bool:
        return self.short([x.value for x in terms], limit)

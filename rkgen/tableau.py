"""The Tableau users load: the chain's input (tableau -> adjoint equations -> printer -> template -> module) + analyses.

The data (exact, frozen, validated entries; reading, structure, serialisation) is :class:`rkgen.butcher.ButcherTableau`.
:class:`Tableau` is that class with the analyses beside the chain as members: order conditions (:mod:`rkgen.order`),
symplecticity and the partner (:mod:`rkgen.partner`), each computed once, on first use, exactly.

The imports run one way: this module imports :mod:`rkgen.order` and :mod:`rkgen.partner`, which import only
:mod:`rkgen.butcher`; nothing below imports this module, and nothing writes into a Tableau.  The names this module
exported before the split (``Tableau``, ``load``, ``from_json``, ``builtin_names``, ``MAX_STAGES``,
``MAX_FILE_BYTES``) are all here still.

>>> rk4 = load("rk4")
>>> rk4.stages, rk4.structure, rk4.order
(4, 'explicit', 4)
>>> rk4.b
(1/6, 1/3, 1/3, 1/6)
>>> load("gauss2").is_symplectic
True
>>> load("euler").partner
Tableau('euler_partner', stages=1)
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

from .butcher import MAX_FILE_BYTES, MAX_STAGES, ButcherTableau, builtin_names
from .order import OrderReport, analyse_order
from .partner import PairReport, check_pair, partner_tableau, symplecticity_matrix
from .stability import StabilityReport, analyse_stability

__all__ = ["Tableau", "load", "builtin_names", "from_json", "MAX_STAGES", "MAX_FILE_BYTES"]


class Tableau(ButcherTableau):
    """A Runge–Kutta method (A, b, c) with exact sympy entries, and its analyses.

    The fields and constructor are :class:`~rkgen.butcher.ButcherTableau`'s (this class adds members, never fields).
    Build one with :func:`load` (a built-in name or a JSON path) or :func:`from_json`; the constructor takes
    already-exact entries.  ``c`` defaults to the row sums of A.

    >>> import sympy
    >>> t = Tableau("heun2", ((0, 0), (1, 0)), (sympy.Rational(1, 2), sympy.Rational(1, 2)))
    >>> t.c, t.structure, t.order
    ((0, 1), 'explicit', 2)
    """

    @cached_property
    def order_report(self) -> OrderReport:
        """Order conditions, exact and tolerant order, stage order, B/C/D (see :mod:`rkgen.order`)."""
        if isinstance(self.same_as, Tableau):  # the same A, b, c: the same report, computed once
            return self.same_as.order_report
        return analyse_order(self)

    @property
    def order(self) -> int:
        """The classical order, exactly."""
        return self.order_report.order

    @cached_property
    def symplecticity_matrix(self):
        """M = diag(b) A + Aᵀ diag(b) − b bᵀ as sympy numbers."""
        return symplecticity_matrix(self)

    @property
    def is_symplectic(self) -> bool:
        """Whether M = 0 exactly (the method is its own symplectic partner)."""
        return all(x == 0 for row in self.symplecticity_matrix for x in row)

    @cached_property
    def partner(self) -> Tableau | None:
        """The symplectic partner (Ã, b, c̃) of conditions (19), or None when some b_i = 0.

        A Tableau: :func:`~rkgen.partner.partner_tableau` builds an instance of its argument's class.
        """
        return partner_tableau(self)

    @cached_property
    def stability(self) -> StabilityReport:
        """Linear stability, exactly: R(z), A-/L-stability, the real interval, algebraic stability, the partner's
        R̃(z) (see :mod:`rkgen.stability`)."""
        if isinstance(self.same_as, Tableau):
            return self.same_as.stability
        return analyse_stability(self)

    def pair_report(self, other: ButcherTableau) -> PairReport:
        """Check conditions (19) for the pair (self, other)."""
        return check_pair(self, other)

    # -- display in Jupyter ------------------------------------------------------------------------------------
    # The exact tableau and its key properties (rkgen.derive.notebook); exact, and nothing is compiled.  Jupyter
    # shows the Markdown (math typeset); nbconvert's LaTeX/PDF export takes the LaTeX.
    def _repr_markdown_(self) -> str:
        from .display import tableau_markdown

        return tableau_markdown(self)

    def _repr_latex_(self) -> str:
        from .display import tableau_latex

        return tableau_latex(self)


# -- reading --------------------------------------------------------------------------------------------------
def load(spec: str | os.PathLike) -> Tableau:
    """A tableau from a built-in name (``"rk4"``) or a JSON file path.

    A path that exists wins over a built-in name; errors are :class:`RkgenError` with one-line messages.

    >>> load("gauss3").order
    6
    >>> load("rk5")
    Traceback (most recent call last):
    ...
    rkgen.errors.RkgenError: rk5: no such file, and not a built-in tableau (see 'rkgen list'; did you mean rk4?)
    """
    return Tableau.load(spec)


def read_json_file(path: Path) -> Tableau:
    """A tableau from a JSON file (size-limited, UTF-8)."""
    return Tableau.read_json_file(path)


def from_json(text: str, source: str = "<string>", default_name: str = "tableau") -> Tableau:
    """Build a tableau from JSON text (see README for the format).

    >>> t = from_json('{"A": [["0", "0"], ["2/3", "0"]], "b": ["1/4", "3/4"]}', default_name="ralston")
    >>> t.name, t.c, t.order
    ('ralston', (0, 2/3), 2)
    >>> from_json('{"A": [["0"]], "b": ["1", "0"]}')
    Traceback (most recent call last):
    ...
    rkgen.errors.RkgenError: <string>: A has 1 row but b has 2 entries
    """
    return Tableau.from_json(text, source=source, default_name=default_name)

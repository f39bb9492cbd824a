"""The derivation document of one tableau: the sections in order, on a Context, as Markdown or LaTeX.

The document reads the same data as the code generator (tableau -> adjoint equations (data) -> printer -> template
-> module): the exact tableau, its analyses and :func:`rkgen.adjoint.layer_equations`.
"""

from __future__ import annotations

from functools import cached_property

from ..tableau import Tableau
from .context import SHORT_LATEX, Context
from .latex import latex_document
from .markdown import markdown_document
from .sections_adjoint import section_adjoint
from .sections_check import section_check, section_code, section_references
from .sections_partner import section_partner, section_symplecticity
from .sections_roads import section_roads
from .sections_stability import section_stability
from .sections_tableau import preface, section_order, section_problem, section_tableau

__all__ = ["Derivation", "render", "SECTIONS", "SHORT_LATEX"]

#: The numbered sections of the document, in order (each a function of the :class:`Derivation`).
SECTIONS = (
    section_problem,
    section_tableau,
    section_order,
    section_symplecticity,
    section_partner,
    section_adjoint,
    section_check,
    section_code,
    section_stability,
    section_roads,
    section_references,
)


class Derivation(Context):
    """The derivation document of one tableau: :attr:`blocks`, printed by :meth:`markdown` / :meth:`latex`."""

    # -- the sections ------------------------------------------------------------------------------------
    @cached_property
    def blocks(self) -> list:
        out = [preface(self)]
        for section in SECTIONS:
            out.extend(section(self))
        return out

    # -- output ------------------------------------------------------------------------------------------
    def markdown(self, figures: str | None = None) -> str:
        """The Markdown document; its drawings are linked from the folder ``figures`` (relative to the document,
        see :func:`.markdown.figure_files`), or replaced by a note when None (stdout)."""
        return markdown_document(self.title, self.blocks, figures)

    def latex(self) -> str:
        return latex_document(self.title, self.blocks)


def render(spec: Tableau | str, fmt: str = "md", params: str = "shared") -> str:
    """The derivation document of a tableau (a Tableau, a built-in name or a JSON path) as Markdown or LaTeX, for
    the parameter layout ``params`` (:data:`rkgen.adjoint.PARAMS`)."""
    doc = Derivation(spec, params)
    if fmt == "md":
        return doc.markdown()
    if fmt == "tex":
        return doc.latex()
    raise ValueError(f"unknown format {fmt!r} (md or tex)")

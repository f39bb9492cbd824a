r"""`rkgen derive`: the derivation of the exact gradient as a document, read from the same equations as the module.

The chain is tableau -> adjoint equations (data) -> printer -> template -> module, and the document reads the same
equations: every formula of it is computed from the objects the analysis and the code generator use: the
exact tableau (:class:`~rkgen.tableau.Tableau`), its order conditions (:mod:`rkgen.order`, trees from
:mod:`rkgen.trees`), the symplecticity matrix and the partner (:mod:`rkgen.partner`), the layer equations
(:func:`rkgen.adjoint.layer_equations`) and the generated module's text (:func:`rkgen.codegen.render_module`).
Nothing here is a second, hand-written copy of a tableau's formula.

The document is built once as a list of blocks (headings, paragraphs with inline math, display math,
tables, code; :mod:`.document`) and printed twice: as Markdown with ``$...$`` / ``$$...$$`` math
(GitHub-compatible; :mod:`.markdown`) and as standalone LaTeX that pdflatex compiles with a minimal TeX
installation (:mod:`.latex`).  The sections are functions of the :class:`Derivation` (:mod:`.sections_tableau`,
:mod:`.sections_partner`, :mod:`.sections_adjoint`, :mod:`.sections_check`).  Output is deterministic: the
numerical check of section 7 (:mod:`.check`, on :mod:`rkgen.reference`) uses a fixed seed and prints numbers in a
fixed format.

>>> md = render("euler", "md")
>>> md.splitlines()[0]
'# Exact gradients for euler: a derivation'
>>> r"\tilde a_{11} &= b_{1} - \frac{b_{1} a_{11}}{b_{1}} = 1" in md    # the partner: backward Euler
True

Refresh the example documents with ``python -m rkgen.derive examples/derivations``.
"""

from .check import CheckResult, misprint_evidence, misprinted_weights, numerical_check, partner_entries
from .cli import EXAMPLES, PDFLATEX_MISSING, compile_pdf, main, run_derive, write_examples
from .code import code_locations
from .data import equations_json
from .derivation import SECTIONS, Derivation, render
from .formulas import phi_formula
from .latex import tex_text
from .markdown import md_text
from .sections_tableau import FULL_TREE_ORDER, MAX_FAILING_LISTED

__all__ = [
    "Derivation",
    "render",
    "equations_json",
    "run_derive",
    "write_examples",
    "compile_pdf",
    "main",
    "EXAMPLES",
    "PDFLATEX_MISSING",
    "SECTIONS",
    "CheckResult",
    "numerical_check",
    "misprint_evidence",
    "misprinted_weights",
    "partner_entries",
    "code_locations",
    "phi_formula",
    "md_text",
    "tex_text",
    "FULL_TREE_ORDER",
    "MAX_FAILING_LISTED",
]

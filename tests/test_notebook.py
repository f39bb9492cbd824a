"""`rkgen derive --format ipynb` and a Tableau's display in Jupyter (rkgen/derive/notebook.py).

- the notebook is nbformat 4.5, valid, not run (no outputs, no execution counts), with stable ids, and written
  byte for byte as nbformat writes it, the same each time;
- its Markdown cells are the document: joined, they give `rkgen derive`'s Markdown exactly;
- executed with nbclient (the python3 kernel of ipykernel) for a built-in tableau and a user's JSON file, every
  code cell runs without an error, the cells print the document's numbers, and an assertion of a cell does fail
  when the document's number is changed;
- pictures (Picture spans, Figure blocks) become embedded SVG images;
- the Tableau shows itself as Markdown and LaTeX with the exact tableau and its properties.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
from dataclasses import dataclass

import pytest

from conftest import ROOT
from rkgen import load
from rkgen.cli import main as rkgen_main
from rkgen.derive import Derivation
from rkgen.derive.document import Para, Text
from rkgen.derive.markdown import md_text
from rkgen.derive.notebook import (
    cell_markdown,
    code_stability,
    code_stability_plot,
    notebook,
    notebook_json,
)
from rkgen.display import tableau_facts, tableau_latex

RALSTON3 = ROOT / "examples" / "ralston3.json"


def _source(cell) -> str:
    return "".join(cell["source"])


def _code(nb) -> list[str]:
    return [_source(c) for c in nb["cells"] if c["cell_type"] == "code"]


@pytest.fixture(scope="module")
def midpoint():
    return Derivation("midpoint")


@pytest.fixture(scope="module")
def ralston3():
    return Derivation(load(RALSTON3))


# -- structure -------------------------------------------------------------------------------------------------
def test_notebook_is_valid_nbformat_and_not_run(midpoint):
    nbformat = pytest.importorskip("nbformat")
    text = notebook_json(midpoint)
    nb = nbformat.reads(text, as_version=4)
    nbformat.validate(nb)
    assert (nb.nbformat, nb.nbformat_minor) == (4, 5)
    assert nb.metadata.kernelspec.name == "python3"
    ids = [c.id for c in nb.cells]
    assert len(set(ids)) == len(ids) and ids[0] == "markdown-000"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert len(code) == 9 and all(c.outputs == [] and c.execution_count is None for c in code)
    # written exactly as nbformat writes it, and the same bytes each time
    assert nbformat.writes(nb) + "\n" == text
    assert notebook_json(Derivation("midpoint")) == text


def test_markdown_cells_are_the_document(midpoint, ralston3):
    """Joined, the Markdown cells are the document's blocks, printed by the Markdown printer (drawings embedded);
    without drawings, exactly `rkgen derive`'s Markdown."""
    for doc in (midpoint, ralston3):
        cells = [_source(c) for c in notebook(doc)["cells"] if c["cell_type"] == "markdown"]
        assert cells[1].startswith("The code cells of this notebook recompute")
        joined = "\n\n".join(cells[:1] + cells[2:])
        assert joined == f"# {md_text(doc.title)}\n\n" + "\n\n".join(cell_markdown(b) for b in doc.blocks)
        if "<img " not in joined:
            assert "\n".join(line.rstrip() for line in joined.splitlines()) + "\n" == doc.markdown()
        headings = [c.splitlines()[0] for c in cells if c.startswith("#")]
        assert len(headings) == len(cells) - 1  # a cell per heading (and the note on the code cells)
        assert [h[:6] for h in headings[1:4]] == ["## 1. ", "## 2. ", "## 3. "]


def test_code_cells_hold_the_document_numbers(midpoint, ralston3):
    setup, order, M, partner, check, compare = _code(notebook(midpoint))[:6]
    assert 'tableau = rkgen.load("midpoint")' in setup.replace("'", '"')
    assert f'tableau.sha256 == "{midpoint.t.sha256}"' in setup
    assert "(2, 1, 2, 1, 1)" in order  # order, stage order, B, C, D of section 3
    assert "assert M == [['0']]" in M
    assert "pair.c_matches is True" in partner and "[['1/2']]" in partner
    assert "default_rng(20190601)" in check
    first = midpoint.check.rows[0][1]
    assert f"{first:.6e}" in compare and "misprint < 1e-6" in compare  # midpoint: A = A^T
    # a user's file: its data embedded (no path), and the misprint shows
    setup, *_, compare = _code(notebook(ralston3))[:6]
    assert str(RALSTON3) not in setup and "rkgen.from_json(json.dumps(data))" in setup
    assert '"b": ["2/9", "1/3", "4/9"],' in setup
    assert "misprint > 1e-4" in compare


def test_stability_cells_follow_the_stability_section(monkeypatch):
    from rkgen.derive import derivation
    from rkgen.derive.document import Heading, rich

    def section_stability(doc):
        return [Heading(2, rich("Linear stability")), Para(rich("R(z) and the region."))]

    sections = [s for s in derivation.SECTIONS if s.__name__ != "section_stability"]
    at = [s.__name__ for s in sections].index("section_partner") + 1
    monkeypatch.setattr(derivation, "SECTIONS", (*sections[:at], section_stability, *sections[at:]))
    cells = [_source(c) for c in notebook(Derivation("gauss2"))["cells"]]
    k = cells.index("## Linear stability\n\nR(z) and the region.")
    assert cells[k + 1].startswith("stability = tableau.stability")
    assert "assert str(stability.R) == '(z**2/12 + z/2 + 1)/(z**2/12 - z/2 + 1)'" in cells[k + 1]
    assert "== (True, False)" in cells[k + 1] and "interval.text == '(-inf, 0]'" in cells[k + 1]
    assert "partner_identity is True" in cells[k + 1]
    assert cells[k + 2].endswith("stability_plot(tableau)")


def test_zero_weight_has_no_partner_cell():
    cells = _code(notebook(Derivation("heun3")))
    assert any("assert tableau.partner is None" in c and "zero_weights == (1,)" in c for c in cells)
    assert not any("form=" in c for c in cells)  # no P form without the partner


def test_pictures_become_embedded_svg(monkeypatch):
    from rkgen.derive import document

    @dataclass(frozen=True)
    class Picture:
        name: str
        svg: str
        tikz: str

    @dataclass(frozen=True)
    class Figure:
        name: str
        svg: str
        tikz: str
        caption: list

    if not hasattr(document, "Picture"):
        monkeypatch.setattr(document, "Picture", Picture, raising=False)
        monkeypatch.setattr(document, "Figure", Figure, raising=False)
    svg = '<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>'
    encoded = base64.b64encode(svg.encode()).decode()
    para = Para([Text("the tree "), document.Picture("t_1", svg, ""), Text(" of order 1")])
    assert cell_markdown(para) == f'the tree <img src="data:image/svg+xml;base64,{encoded}" alt="t_1"> of order 1'
    fig = document.Figure("region", svg, "", [Text("The stability region.")])
    image = f'<img src="data:image/svg+xml;base64,{encoded}" alt="region">'
    assert cell_markdown(fig) == f"{image}\n\nThe stability region."


# -- the command -----------------------------------------------------------------------------------------------
def test_derive_format_ipynb_writes_the_notebook(tmp_path, monkeypatch, capsys, midpoint):
    monkeypatch.chdir(tmp_path)
    assert rkgen_main(["derive", "midpoint", "--format", "ipynb"]) == 0
    target = tmp_path / "midpoint_derivation.ipynb"
    assert capsys.readouterr().out.strip() == f"wrote {target.name}"
    assert target.read_text(encoding="utf-8") == notebook_json(midpoint)
    assert rkgen_main(["derive", "midpoint", "-o", "m.ipynb"]) == 0  # the format from the suffix
    assert (tmp_path / "m.ipynb").read_bytes() == target.read_bytes()
    capsys.readouterr()
    assert rkgen_main(["derive", "midpoint", "-o", "m.ipynb"]) == 0
    assert capsys.readouterr().out.strip() == "unchanged m.ipynb"
    assert rkgen_main(["derive", "midpoint", "--format", "ipynb", "-o", "m.md"]) == 2
    assert "a .md file does not hold the output of --format ipynb" in capsys.readouterr().err


# -- executed --------------------------------------------------------------------------------------------------
def _run(doc, tmp_path, monkeypatch):
    """Execute the notebook of ``doc`` (python3 kernel); then a copy of its order cell with a wrong order, in the
    same kernel, which must fail.  The executed notebook."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    nb = nbformat.reads(notebook_json(doc), as_version=4)
    if not any("tableau.stability" in _source(c) for c in nb.cells):  # before the document has its section
        nb.cells += [nbformat.v4.new_code_cell(make(doc)) for make in (code_stability, code_stability_plot)]
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", shutdown_kernel="immediate", resources={"metadata": {"path": tmp_path}}
    )
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
        order = next(c for c in nb.cells if c.cell_type == "code" and "report.order" in _source(c))
        p = doc.t.order
        wrong = nbformat.v4.new_code_cell(_source(order).replace(f"== ({p}, ", f"== ({p + 1}, "))
        with pytest.raises(nbclient.exceptions.CellExecutionError, match="AssertionError"):
            client.execute_cell(wrong, len(nb.cells))
    return nb


def _stdout(nb) -> str:
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_notebook_runs_builtin(midpoint, tmp_path, monkeypatch):
    start = time.perf_counter()
    nb = _run(midpoint, tmp_path, monkeypatch)
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    out = _stdout(nb)
    assert "order 2, stage order 1; B(2), C(1), D(1) hold" in out
    fd = float(re.search(r"adjoint against finite differences: (\S+)", out).group(1))
    assert fd < 1e-6
    # the Tableau showed itself: the exact tableau and its properties
    setup = next(c for c in nb.cells if c.cell_type == "code")
    shown = setup.outputs[-1]["data"]
    assert r"\frac{1}{2} & \frac{1}{2}" in shown["text/markdown"] and "text/latex" in shown
    assert time.perf_counter() - start < 60


def test_notebook_runs_user_json(ralston3, tmp_path, monkeypatch):
    nb = _run(ralston3, tmp_path, monkeypatch)
    out = _stdout(nb)
    assert "A-stable: False; L-stable: False; interval [" in out
    region = next(c for c in nb.cells if "stability_plot(tableau)" in _source(c)).outputs[-1]["data"]
    assert base64.b64decode(region["image/png"]).startswith(b"\x89PNG")  # the stability region, drawn
    assert "order 3, stage order 1; B(3), C(1), D(0) hold" in out
    partner = float(re.search(r"partner form: (\S+); misprinted partner: (\S+)", out).group(1))
    misprint = float(re.search(r"partner form: (\S+); misprinted partner: (\S+)", out).group(2))
    assert partner < 1e-6 < 1e-4 < misprint


# -- the Tableau in Jupyter -------------------------------------------------------------------------------------
def test_tableau_shows_exact_tableau_and_properties():
    t = load("rk4")
    md = t._repr_markdown_()
    assert md.startswith("**rk4**: ")
    assert "\\frac{1}{2} & \\frac{1}{2} & 0 & 0 & 0" in md
    assert "\\hline & \\frac{1}{6} & \\frac{1}{3} & \\frac{1}{3} & \\frac{1}{6}" in md
    for row in ("| order | 4 |", "| stage order | 1 |", "| symplectic | no |", "| structure | explicit |"):
        assert row in md
    assert "| symplectic partner | exists, $\\tilde c = c$ |" in md  # D(1) holds
    assert "| symplectic partner | exists, $\\tilde c \\ne c$ |" in load(RALSTON3)._repr_markdown_()
    tex = t._repr_latex_()
    assert tex.startswith("$$\n\\mathtt{rk4}") and tex.endswith("$$")
    assert "\\text{order} & \\text{4}" in tex
    assert tex.count("\\begin{array}") == tex.count("\\end{array}") == 2


def test_tableau_display_long_entries_as_floats_and_names_safely():
    facts = dict(tableau_facts(load("gauss4")))
    assert facts["order"] == "8"
    md = load("gauss4")._repr_markdown_()
    # a long exact entry is shown as its float (c_1, a_12), a short one exactly (a_11)
    assert "\\approx 0.0694318442 & \\frac{1}{8} - \\frac{\\sqrt{30}}{144} & \\approx -0.02660418008" in md
    assert "| symplectic partner | the method itself |" in md
    odd = load("euler").__class__.from_json('{"name": "a$b\\\\c", "A": [["0"]], "b": ["1"]}')
    assert "\\text{this tableau}" in tableau_latex(odd)
    assert odd._repr_markdown_().startswith("**a\\$b\\\\c**")


def test_tableau_display_is_fast_and_uncompiled():
    """In a fresh interpreter: the display imports neither numba nor a generated module, and takes little time."""
    import subprocess
    import sys

    script = (
        "import sys, time; import rkgen; start = time.perf_counter()\n"
        "for name in ('rk4', 'gauss2', 'radau_iia3', 'heun3'):\n"
        "    t = rkgen.load(name); t._repr_markdown_(); t._repr_latex_()\n"
        "print(time.perf_counter() - start, 'numba' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    seconds, numba = out.stdout.split()
    assert numba == "False" and float(seconds) < 10, out.stderr


def test_tableau_display_shows_stability_when_there():
    facts = dict(tableau_facts(load("gauss2")))
    assert facts["A-stable"] == "yes" and facts["L-stable"] == "no"
    assert facts["stability interval"] == r"$(-\infty, 0]$"
    rk4 = dict(tableau_facts(load("rk4")))
    assert rk4["stability interval"] == r"$\approx [-2.785293563, 0]$"
    assert json.dumps(load("rk4")._repr_markdown_()).count("A-stable") == 1

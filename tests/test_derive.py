"""`rkgen derive`: the derivation document (the package rkgen/derive/).

- the example documents in examples/derivations/ are current (regenerated and compared; the few
  numbers computed in floating point are compared to a tolerance, everything else byte for byte);
- the Markdown has balanced math delimiters and nothing a Markdown pass could eat inside math;
- the LaTeX is ASCII and compiles with pdflatex (skipped, with the reason, when pdflatex is absent) with no
  overfull box wider than 2 pt and no missing character in pdflatex's log;
- the trees of the order section are drawn (one layout, SVG and TikZ), and a Markdown file gets its SVG files in
  ``<stem>_figures/`` (stale ones removed, foreign ones kept);
- every formula comes from the one source: partner entries from ``tableau.partner``, stage equations
  and their order from ``layer_equations``, code lines from ``render_module``;
- the numerical check agrees with finite differences, and shows the misprint of (19);
- bad input and a missing pdflatex behave as in `rkgen check`: one line, exit status 2;
- a 5-stage Gauss document is written in under 30 s.
"""

from __future__ import annotations

import functools
import json
import math
import re
import shutil
import subprocess
import sys
import time

import pytest
import sympy

from conftest import ROOT
from rkgen import load
from rkgen.adjoint import layer_equations
from rkgen.cli import main as rkgen_main
from rkgen.codegen import module_filename
from rkgen.derive import (
    EXAMPLES,
    MAX_FAILING_LISTED,
    PDFLATEX_MISSING,
    Derivation,
    code_locations,
    equations_json,
    md_text,
    numerical_check,
    phi_formula,
    tex_text,
    write_examples,
)
from rkgen.derive.cli import compile_pdf, log_problems
from rkgen.derive.formulas import combination
from rkgen.derive.markdown import SVG_MARK, figure_files, figures_folder, markdown_document

EXAMPLE_DIR = ROOT / "examples" / "derivations"
REFRESH = "python -m rkgen.derive examples/derivations"
PDFLATEX = shutil.which("pdflatex")


def _has_tikz() -> bool:
    kpsewhich = shutil.which("kpsewhich")
    if PDFLATEX is None or kpsewhich is None:
        return False
    return subprocess.run([kpsewhich, "tikz.sty"], capture_output=True, text=True).stdout.strip() != ""


HAS_LATEX = _has_tikz()
needs_pdflatex = pytest.mark.skipif(
    not HAS_LATEX, reason="pdflatex or TikZ is not installed (apt install texlive-latex-base texlive-pictures)"
)

#: tableaux of every kind: explicit, zero weight, ESDIRK, SDIRK, fully implicit, symplectic, wide (7 stages)
VARIETY = ("euler", "rk4", "heun3", "trapezoid", "sdirk2", "midpoint", "gauss2", "radau_iia3", "dopri5")


@functools.cache
def document(name: str) -> Derivation:
    return Derivation(name)


@functools.cache
def markdown(name: str) -> str:
    return document(name).markdown()


@functools.cache
def latex(name: str) -> str:
    return document(name).latex()


def markdown_file(doc: Derivation, stem: str) -> str:
    """The Markdown that `rkgen derive -o <stem>.md` writes: drawings linked from ``<stem>_figures/``."""
    return markdown_document(doc.title, doc.blocks, figures_folder(stem))


# --------------------------------------------------------------------------------------------------
# golden example documents
# --------------------------------------------------------------------------------------------------

# numbers printed from floating-point computations (section 7, magnitudes of differences)
_FLOAT = re.compile(r"-?\d+(?:\.\d+)?e[+-]\d+")
# ... as LaTeX: 7.834391 \times 10^{-2}, 3 \times 10^{-11}, 10^{-10} (read back as 7.834391e-02, 3e-11, 1e-10)
_TEX_FLOAT = re.compile(r"(-?\d+(?:\.\d+)?) \\times 10\^\{(-?\d+)\}|(?<![\d.])10\^\{(-\d+)\}")


def _plain_numbers(text: str) -> str:
    def plain(m):
        if m.group(3) is not None:
            return f"1e{int(m.group(3)):+03d}"
        return f"{m.group(1)}e{int(m.group(2)):+03d}"

    return _TEX_FLOAT.sub(plain, text)


def _same_number(a: str, b: str) -> bool:
    x, y = float(a), float(b)
    if abs(x) < 1e-7 and abs(y) < 1e-7:  # finite-difference noise: its digits depend on the platform
        return True
    if "." not in a or "." not in b:  # one significant digit: allow the neighbouring digit
        return math.isclose(x, y, rel_tol=0.5)
    return math.isclose(x, y, rel_tol=1e-5)


def same_document(new: str, old: str) -> str | None:
    """None when the documents agree (text exactly, floating-point numbers to a tolerance), else the
    first difference."""
    new, old = _plain_numbers(new), _plain_numbers(old)
    new_text, old_text = _FLOAT.split(new), _FLOAT.split(old)
    if new_text != old_text:
        for k, (a, b) in enumerate(zip(new.splitlines(), old.splitlines(), strict=False)):
            if _FLOAT.sub("#", a) != _FLOAT.sub("#", b):
                return f"line {k + 1}: {a[:120]!r} != {b[:120]!r}"
        return "the documents differ in length"
    for a, b in zip(_FLOAT.findall(new), _FLOAT.findall(old), strict=True):
        if not _same_number(a, b):
            return f"number {a} != {b}"
    return None


def test_same_document_tolerates_noise_only():
    assert same_document("x 1.234567e-01 y 3e-11", "x 1.234568e-01 y 7e-12") is None
    assert same_document("x 1.234567e-01", "x 1.334567e-01") is not None
    assert same_document("x 1.2e-01 y", "x 1.2e-01 z") is not None
    assert (
        same_document(r"$7.834391 \times 10^{-2}$ and $10^{-10}$", r"$7.834392 \times 10^{-2}$ and $3 \times 10^{-11}$")
        is None
    )
    assert same_document(r"$7.834391 \times 10^{-2}$", r"$7.934391 \times 10^{-2}$") is not None


@pytest.mark.parametrize("fmt", ["md", "tex"])
@pytest.mark.parametrize("name", EXAMPLES)
def test_example_document_is_current(name, fmt):
    path = EXAMPLE_DIR / f"{name}.{fmt}"
    assert path.is_file(), f"{path} is missing; create it with `{REFRESH}`"
    new = markdown_file(document(name), name) if fmt == "md" else latex(name)
    problem = same_document(new, path.read_text(encoding="utf-8"))
    assert problem is None, (
        f"{path} differs from what rkgen writes now ({problem}); if the change is intended, refresh the "
        f"examples with `{REFRESH}` and review the diff"
    )


def test_no_stale_example_documents():
    present = {p.name for p in EXAMPLE_DIR.iterdir()}
    documents = {f"{n}.{f}" for n in EXAMPLES for f in ("md", "tex")}
    assert present == documents | {figures_folder(n) for n in EXAMPLES}, f"run `{REFRESH}`"


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_drawings_are_current(name):
    """examples/derivations/<name>_figures/ holds exactly the document's SVG files, as rkgen writes them now."""
    folder = EXAMPLE_DIR / figures_folder(name)
    files = figure_files(document(name).blocks)
    assert files and {p.name for p in folder.iterdir()} == set(files), f"run `{REFRESH}`"
    for file_name, content in files.items():
        assert (folder / file_name).read_text(encoding="utf-8") == content, f"{file_name}: run `{REFRESH}`"
    md = (EXAMPLE_DIR / f"{name}.md").read_text(encoding="utf-8")
    for file_name in files:
        assert f"]({figures_folder(name)}/{file_name})" in md  # linked relatively from the document


def test_refresh_command_writes_the_same_documents(tmp_path):
    done = write_examples(tmp_path)
    svgs = {n: sorted(figure_files(document(n).blocks)) for n in EXAMPLES}
    assert sorted(str(p.relative_to(tmp_path)) for p, _ in done) == sorted(
        [f"{n}.{f}" for n in EXAMPLES for f in ("md", "tex")]
        + [f"{figures_folder(n)}/{svg}" for n in EXAMPLES for svg in svgs[n]]
    )
    assert all(status == "written" for _, status in done)
    for name in EXAMPLES:
        assert (tmp_path / f"{name}.md").read_text(encoding="utf-8") == markdown_file(document(name), name)
        assert (tmp_path / f"{name}.tex").read_text(encoding="utf-8") == latex(name)
        for svg in svgs[name]:
            assert (tmp_path / figures_folder(name) / svg).read_text(encoding="utf-8").startswith(SVG_MARK + "\n<svg")
    assert all(status == "unchanged" for _, status in write_examples(tmp_path))


def test_documents_are_deterministic():
    assert Derivation("rk4").markdown() == markdown("rk4")


# --------------------------------------------------------------------------------------------------
# Markdown: balanced math, nothing a Markdown pass could eat
# --------------------------------------------------------------------------------------------------


def _strip_code(text: str) -> str:
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def math_problems(md: str) -> list[str]:
    """Unbalanced or fragile math in a Markdown document (GitHub's $...$ and $$...$$)."""
    problems = []
    text = _strip_code(md)
    in_display = False
    paragraph_dollars = 0
    for k, line in enumerate(text.splitlines(), 1):
        if line.strip() == "$$":
            if in_display is False and paragraph_dollars % 2:
                problems.append(f"line {k}: display math opens inside unbalanced inline math")
            in_display = not in_display
            continue
        if in_display:
            if not line.strip():
                problems.append(f"line {k}: blank line inside $$ ... $$")
            if "$" in line:
                problems.append(f"line {k}: $ inside display math")
            math = [line]
        else:
            if not line.strip():
                if paragraph_dollars % 2:
                    problems.append(f"line {k}: paragraph ends inside inline math")
                paragraph_dollars = 0
                continue
            unescaped = re.sub(r"\\\$", "", line)
            if "$$" in unescaped:
                problems.append(f"line {k}: $$ inside a line")
            paragraph_dollars += unescaped.count("$")
            if unescaped.count("$") % 2:
                problems.append(f"line {k}: odd number of $ in a line")
            math = re.findall(r"\$([^$]*)\$", unescaped)
            for m in math:
                if m != m.strip():
                    problems.append(f"line {k}: inline math starts or ends with a space: ${m}$")
            if line.startswith("|"):
                outside = re.sub(r"\$[^$]*\$", "", unescaped).replace("\\|", "")
                if outside.count("|") != line_count_of_header(md, k):
                    problems.append(f"line {k}: table row with a stray |")
        for m in math:
            body = re.sub(r"\\\\\s*$", "", m)  # a row break at the end of a display line is fine
            bad = re.findall(r"\\[^A-Za-z\s]", body)
            if bad:
                problems.append(f"line {k}: backslash-punctuation {bad} in math (Markdown may eat it)")
            if "*" in m:
                problems.append(f"line {k}: * in math (Markdown emphasis)")
            if re.search(r"<[A-Za-z]", m):
                problems.append(f"line {k}: <letter in math (an HTML tag to Markdown)")
    if in_display:
        problems.append("the document ends inside $$")
    return problems


def line_count_of_header(md: str, k: int) -> int:
    """The number of | in the header row of the table that holds line k (outside math)."""
    lines = md.splitlines()
    j = k - 1
    while j > 0 and lines[j - 1].startswith("|"):
        j -= 1
    return re.sub(r"\$[^$]*\$", "", lines[j]).count("|")


def test_math_checker_finds_problems():
    assert math_problems("a $x$ b\n\n$$\nx\n$$\n") == []
    assert math_problems("a $x b\n") != []
    assert math_problems("$$\nx\n") != []
    assert math_problems("a $x \\, y$\n") != []
    assert math_problems("$$\nx\n\ny\n$$\n") != []
    assert math_problems("| $a$ | b |\n|---|---|\n| $a|b$ | c |\n") == []
    assert math_problems("a \\$5 and `$x` fine\n") == []


@pytest.mark.parametrize("name", VARIETY)
def test_markdown_math_is_balanced(name):
    assert math_problems(markdown(name)) == []


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_markdown_math_is_balanced(name):
    assert math_problems((EXAMPLE_DIR / f"{name}.md").read_text(encoding="utf-8")) == []


def test_markdown_sections_in_order():
    headings = [line for line in markdown("rk4").splitlines() if line.startswith("## ")]
    numbers = [h.split()[1] for h in headings[:-1]]
    assert numbers == [f"{k}." for k in range(1, 11)] and headings[-1] == "## References"


# --------------------------------------------------------------------------------------------------
# LaTeX: ASCII, and it compiles
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", VARIETY)
def test_latex_is_ascii_and_balanced(name):
    tex = latex(name)
    assert tex.isascii()
    assert tex.startswith("\\documentclass") and tex.rstrip().endswith("\\end{document}")
    for env in ("align*", "longtable", "itemize", "pmatrix", "array", "aligned", "tikzpicture", "figure"):
        assert tex.count(f"\\begin{{{env}}}") == tex.count(f"\\end{{{env}}}"), env
    assert tex.count("\\[") == tex.count("\\]")
    body = re.sub(r"\\\$", "", re.sub(r"\\begin\{verbatim\}.*?\\end\{verbatim\}", "", tex, flags=re.S))
    assert body.count("$") % 2 == 0


def _pdflatex(tex: str, folder) -> subprocess.CompletedProcess:
    """pdflatex on ``tex`` (twice when asked to rerun); its log's problems (overfull boxes > 2 pt, missing
    characters) in ``proc.problems``."""
    (folder / "doc.tex").write_text(tex, encoding="ascii")
    for _ in range(2):  # as compile_pdf: longtable settles its column widths on a second run
        proc = subprocess.run(
            [PDFLATEX, "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", "doc.tex"],
            cwd=folder,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=300,
        )
        if proc.returncode != 0 or "Rerun LaTeX" not in proc.stdout:
            break
    log = folder / "doc.log"
    proc.problems = log_problems(log.read_text(encoding="latin-1")) if log.is_file() else ["no log"]
    return proc


def _errors(proc) -> list[str]:
    return [line for line in proc.stdout.splitlines() if line.startswith("!")]


def test_log_problems_reads_overfull_boxes_and_missing_characters():
    log = (
        "Overfull \\hbox (79.12pt too wide) in paragraph at lines 120--125\n"
        "Overfull \\hbox (1.5pt too wide) in alignment at lines 3--9\n"
        "Overfull \\vbox (12.0pt too high) has occurred while \\output is active\n"
        "Missing character: There is no ^^ce in font cmr10!\n"
        "Underfull \\hbox (badness 10000) in paragraph at lines 1--2\n"
    )
    assert log_problems(log) == [
        "overfull box: 79.12pt too wide in paragraph at lines 120--125",
        "overfull box: 12.0pt too high has occurred while \\output is active",
        "missing character: ^^ce in font cmr10",
    ]
    assert log_problems(log, limit=100) == ["missing character: ^^ce in font cmr10"]


@needs_pdflatex
@pytest.mark.parametrize("name", EXAMPLES)
def test_example_latex_compiles(name, tmp_path):
    proc = _pdflatex((EXAMPLE_DIR / f"{name}.tex").read_text(encoding="utf-8"), tmp_path)
    assert proc.returncode == 0 and (tmp_path / "doc.pdf").is_file(), _errors(proc)
    assert proc.problems == []


OTHER_STRUCTURES = ("heun3", "radau_iia3", "dopri5")


@needs_pdflatex
@pytest.mark.parametrize("name", OTHER_STRUCTURES)
def test_latex_of_other_structures_compiles(name, tmp_path):
    proc = _pdflatex(latex(name), tmp_path)
    assert proc.returncode == 0, _errors(proc)
    assert proc.problems == []


@needs_pdflatex
def test_format_pdf_writes_a_pdf(tmp_path, capsys):
    out = tmp_path / "euler.pdf"
    assert rkgen_main(["derive", "euler", "-o", str(out)]) == 0  # the format from the suffix
    assert out.read_bytes().startswith(b"%PDF")
    assert capsys.readouterr().out.strip() == f"wrote {out}"


def test_format_pdf_without_pdflatex_is_one_line_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    out = tmp_path / "rk4.pdf"
    assert rkgen_main(["derive", "rk4", "--format", "pdf", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("rkgen: error: ")
    assert "pdflatex" in err and "apt install texlive-latex-base" in err and "TeX Live" in err
    assert "--format tex" in err and err.strip() == f"rkgen: error: {PDFLATEX_MISSING}"
    assert not out.exists()
    # the suffix alone asks for a PDF too
    assert rkgen_main(["derive", "rk4", "-o", str(out)]) == 2
    assert not out.exists()


def test_format_pdf_without_pdflatex_in_a_subprocess(tmp_path):
    """The real command, with a PATH that has python but no pdflatex."""
    env = {"PATH": str(tmp_path), "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "rkgen", "derive", "euler", "--format", "pdf"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "texlive-latex-base" in proc.stderr
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------------
# one source: the document's formulas are the analysis's and the code generator's objects
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["rk4", "gauss2", "sdirk2", "radau_iia2", "euler", "lobatto_iiia3"])
def test_partner_entries_are_those_of_tableau_partner(name):
    t = load(name)
    md = markdown(name)
    lines = {}
    for line in md.splitlines():
        m = re.match(r"\\tilde a_\{(\d)(\d)\} &= (.*?)( \\\\)?$", line)
        if m:
            lines[int(m.group(1)) - 1, int(m.group(2)) - 1] = m.group(3)
    s = t.stages
    assert sorted(lines) == [(i, j) for i in range(s) for j in range(s)]
    for (i, j), text in lines.items():
        assert text.endswith("= " + sympy.latex(t.partner.A[i][j])), (i, j, text)
    # the partner tableau as drawn: entries, b and c~
    c = " & ".join(sympy.latex(x) for x in t.partner.A[0])
    assert f"{sympy.latex(t.partner.c[0])} & {c} \\\\" in md


def test_json_partner_is_str_of_tableau_partner():
    t = load("rk4")
    data = equations_json(t)
    assert data["partner"]["A"] == [[str(x) for x in row] for row in t.partner.A]
    assert data["partner"]["c"] == [str(x) for x in t.partner.c]
    assert data["M"] == [[str(x) for x in row] for row in t.symplecticity_matrix]


@pytest.mark.parametrize("name", ["rk4", "heun3", "sdirk2", "gauss2"])
def test_backward_stages_in_computing_order(name):
    eq = layer_equations(load(name))
    md = markdown(name)
    section = md.split("### 6.2")[1].split("### 6.3")[0]
    if eq.structure == "fully implicit":  # one block system: the vector of all eta_i
        etas = "\n".join(f"\\eta_{{{i + 1}}}" for i in eq.backward_order)
        assert etas.replace("\n", " \\\\\n") in section
        return
    found = re.findall(r"^(?:\\left\(I - h_j a_\{\d+\} J_\{\d+\}\^\{T\}\\right\))?\\eta_\{(\d+)\} &= ", section, re.M)
    assert [int(i) - 1 for i in found] == list(eq.backward_order)
    for st in eq.backward:
        assert str(st) in json.dumps(equations_json(load(name))["backward"])


@pytest.mark.parametrize("name", ["rk4", "heun3"])
def test_forward_and_backward_lines_carry_the_exact_coefficients(name):
    eq = layer_equations(load(name))
    md = markdown(name)
    for st in eq.forward:
        for term in st.terms:
            a = f"a_{{{st.i + 1}{term.index + 1}}}"
            assert f"{a} F_{{{term.index + 1}}}" in md
    for st in eq.backward:
        line = next(x for x in md.splitlines() if x.startswith(f"\\eta_{{{st.i + 1}}} &= "))
        for term in st.terms:
            assert f"a_{{{term.index + 1}{st.i + 1}}} \\mu_{{{term.index + 1}}}" in line
            if term.value != 1:
                assert sympy.latex(term.value) in line


def test_p_form_weights_are_b_minus_partner():
    t = load("rk4")
    eq = layer_equations(t)
    md = markdown("rk4")
    section = md.split("### 6.4")[1].split("## 7")[0]
    for i, row in enumerate(eq.p_form):
        for term in row:
            k = term.index
            assert sympy.simplify(term.value - (t.b[k] - t.partner.A[i][k])) == 0
            assert f"w_{{{i + 1}{k + 1}}} J_{{{k + 1}}}^{{T}} P_{{{k + 1}}}" in section


def test_phi_formula_follows_the_tree():
    from rkgen.trees import trees_of_order

    assert [phi_formula(t, True) for t in trees_of_order(3)] == ["c^{2}", "Ac"]
    assert phi_formula(trees_of_order(1)[0], True) == r"\mathbf{1}"
    assert phi_formula(trees_of_order(2)[0], False) == r"A\mathbf{1}"
    assert [phi_formula(t, True) for t in trees_of_order(5)][2] == "(Ac)^{2}"


@pytest.mark.parametrize("name", ["euler", "rk4", "heun3", "trapezoid", "sdirk2", "gauss2", "radau_iia3", "dopri5"])
def test_code_lines_point_at_the_equations(name):
    from rkgen.codegen import render

    t = load(name)
    eq = layer_equations(t)
    module = render(t)
    lines = module.text.splitlines()
    rows = code_locations(t, eq, module.spans)
    spans = {}
    for equation, where, what in rows:
        nums = [int(x) for x in re.findall(r"\d+", where)]
        spans[equation, what] = (nums[0], nums[-1])
        named = re.match(r"`(\w+)`", what).group(1)  # the lines lie inside the function the row names
        first, last = module.spans[f"def:{named}"]
        assert first <= nums[0] <= nums[-1] <= last, (equation, where, what)

    def lines_of(start, function=""):
        return next(v for (e, w), v in spans.items() if e.startswith(start) and w.startswith(function))

    if t.structure != "fully implicit":
        for st in eq.forward:
            first, _ = lines_of(f"Y_{{{st.i + 1}}} = ", "`_layer_forward`")
            assert lines[first - 1].strip() == f"# {st}"
            if t.structure == "explicit" and st.i > 0:  # the same equation, formed again in the backward pass
                first, last = lines_of(f"Y_{{{st.i + 1}}} = ", "`_layer_backward`")
                assert f"# {st} again" in "\n".join(lines[first - 1 : last])
        for st in eq.backward:
            first, last = lines_of(f"\\eta_{{{st.i + 1}}} = ")
            assert lines[first - 1].strip().startswith(f"# eta_{st.i + 1} = ")
            assert "_adjoint_stage(" in "\n".join(lines[first - 1 : last])
    else:
        residual = lines_of("R = ")
        code = " ".join(x.strip() for x in lines[residual[0] - 1 : residual[1]])
        assert "R[1, a, q] = y[a, q] - Y[1, a, q]" in code.replace("( ", "")
    adjoint = lines_of(r"\mu_i = h_j")
    assert lines[adjoint[0] - 1].startswith("@njit") and lines[adjoint[0]].startswith("def _adjoint_stage_any(")
    layers = lines_of(r"\partial\mathcal{J}/\partial h_j")
    code = "\n".join(lines[layers[0] - 1 : layers[1]])  # dJ/dh_j and dJ/dy_j: the layer loop that sums them
    assert "dh[j] += _layer_backward(" in code and "acc += mu[i, a, q]" in code


def test_code_section_names_the_module():
    md = markdown("rk4")
    assert "`generated/rk4_net.py`" in md and "`rkgen generate rk4`" in md
    assert (ROOT / "generated" / "rk4_net.py").is_file()


# --------------------------------------------------------------------------------------------------
# what the document says
# --------------------------------------------------------------------------------------------------


def test_heun3_explains_no_partner_and_the_xi_form():
    md = markdown("heun3")
    partner = md.split("## 5.")[1].split("## 6.")[0]
    assert "$b_{2} = 0$" in partner and "no symplectic partner exists" in partner
    assert r"b_{3} a_{32} = \frac{3}{4} \cdot \frac{2}{3} = \frac{1}{2} \ne 0" in partner
    assert "$\\xi$ form goes around it" in partner and "never divides by $b_i$" in partner
    assert r"\eta_{2} &= a_{32} \mu_{3} = \frac{2}{3} \mu_{3}" in md  # the stage with b_2 = 0
    assert "does not exist for this tableau" in md.split("### 6.4")[1]
    assert equations_json(load("heun3"))["p_form"] is None


def test_euler_partner_and_c():
    md = markdown("euler")
    assert r"\tilde a_{11} &= b_{1} - \frac{b_{1} a_{11}}{b_{1}} = 1" in md
    assert r"$\tilde c = (1)$ differs from $c = (0)$" in md
    assert "the partner's nodes never enter the backward pass" in md  # WHY_C_DOES_NOT_MATTER


def test_symplectic_tableau_is_its_own_partner():
    md = markdown("gauss2")
    assert "$M = 0$" in md and r"$\tilde A = A$: the method is its own partner" in md


def test_misprint_remark_with_numbers():
    md = markdown("rk4")
    remark = md.split("### The index in (19)")[1].split("## 5.")[0]
    assert "misprint" in remark and "$a_{i,j}$" in remark and "6 of 16 entries" in remark
    check = markdown("rk4").split("## 7.")[1].split("## 8.")[0]
    assert "misprinted conditions" in check and "a wrong gradient" in check
    assert "invisible here" in markdown("midpoint")


def test_numerical_check_agrees_and_shows_the_misprint():
    c = numerical_check(load("rk4"))
    assert len(c.rows) == 2 * 2 + 2 * 2 * 2 + 2 * 2 + 2
    assert c.max_diff < 1e-7 * max(1.0, c.max_fd) and c.stable_diff < 1e-7 and c.p_form_diff < 1e-7
    assert c.misprint_diff > 1e-3
    for label, adjoint, fd in c.rows:
        assert abs(adjoint - fd) < 1e-7, label
    for name in ("heun3", "sdirk2", "radau_iia2"):
        c = numerical_check(load(name))
        assert c.max_diff < 1e-7 and c.stable_diff < 1e-7, name
    assert numerical_check(load("heun3")).p_form_diff is None


def test_order_section_lists_trees_and_failing_conditions():
    md = markdown("rk4")
    order = md.split("## 3.")[1].split("## 4.")[0]
    assert order.count("| holds |") == 8  # the 8 trees of orders 1 to 4
    assert (
        r"| (`-o` draws it) | $[{[\tau]}]$ | 3 | $Ac$ | $\left(0, 0, \frac{1}{4}, \frac{1}{2}\right)^{T}$ | "
        r"$\frac{1}{6}$ | $\frac{1}{6}$ | holds |" in order
    )
    assert "Order 5: 9 trees, 9 of them fail" in order
    assert "$B(4)$, $C(1)$ and $D(1)$" in order


# --------------------------------------------------------------------------------------------------
# the command
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["derive", "rk5"],
        ["derive", "no/such/file.json"],
        ["derive", "BAD_JSON"],
        ["derive", "BAD_ENTRY", "--format", "tex"],
        ["derive", "BAD_ENTRY", "--json"],
        ["derive", "BAD_ENTRY", "--format", "pdf"],
    ],
)
def test_bad_input_is_one_line_exit_2(argv, tmp_path, capsys):
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{not json", encoding="utf-8")
    bad_entry = tmp_path / "entry.json"
    bad_entry.write_text(json.dumps({"A": [["0"]], "b": ["__import__('os')"]}), encoding="utf-8")
    argv = [str(bad_json) if a == "BAD_JSON" else str(bad_entry) if a == "BAD_ENTRY" else a for a in argv]
    assert rkgen_main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("rkgen: error: ")


def test_stdout_and_output_files(tmp_path, capsys):
    assert rkgen_main(["derive", "euler"]) == 0
    assert capsys.readouterr().out == Derivation("euler").markdown()
    out = tmp_path / "e.tex"
    assert rkgen_main(["derive", "euler", "-o", str(out)]) == 0  # the format from the suffix
    assert out.read_text(encoding="utf-8").startswith("\\documentclass")
    assert capsys.readouterr().out == f"wrote {out}\n"
    assert rkgen_main(["derive", "euler", "--format", "md", "-o", str(tmp_path)]) == 0  # a folder
    assert (tmp_path / "euler_derivation.md").read_text(encoding="utf-8").startswith("# Exact gradients for euler")
    assert rkgen_main(["derive", "euler", "--format", "tex"]) == 0
    assert capsys.readouterr().out.endswith("\\end{document}\n")


def test_json_output(tmp_path, capsys):
    assert rkgen_main(["derive", "rk4", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    eq = layer_equations(load("rk4"))
    assert data["backward_order"] == [i + 1 for i in eq.backward_order] == [4, 3, 2, 1]
    assert [b["text"] for b in data["backward"]] == [str(st) for st in eq.backward]
    assert [f["text"] for f in data["forward"]] == [str(st) for st in eq.forward]
    assert data["forward"][1]["terms"] == [{"name": "a_2_1", "stage": 1, "value": "1/2", "latex": r"\frac{1}{2}"}]
    assert data["p_form"][0]["terms"][0]["name"] == "w_1_2"
    out = tmp_path / "rk4.json"
    assert rkgen_main(["derive", "rk4", "--json", "-o", str(out)]) == 0
    assert json.loads(out.read_text(encoding="utf-8")) == data


def test_user_tableau_with_awkward_text(tmp_path, capsys):
    """Name and description from a user's file are escaped in both formats."""
    path = tmp_path / "my.json"
    path.write_text(
        json.dumps(
            {
                "name": "my_$odd&name",
                "description": "costs $5 & 50% of a #1 {thing} <b>*x*</b> | Runge\u2013Kutta \u03b1",
                "A": [["0", "0"], ["2/3", "0"]],
                "b": ["1/4", "3/4"],
            }
        ),
        encoding="utf-8",
    )
    assert rkgen_main(["derive", str(path)]) == 0
    md = capsys.readouterr().out
    assert math_problems(md) == []
    assert md_text("my_$odd&name") in md and "`rkgen derive TABLEAU`" in md
    doc = Derivation(str(path))
    tex = doc.latex()
    assert tex.isascii() and tex_text("costs $5 & 50%") in tex and "Runge--Kutta" in tex
    assert f"`rkgen generate TABLEAU` writes it to `./{module_filename(doc.t)}`" in md
    if HAS_LATEX:
        proc = _pdflatex(tex, tmp_path)
        assert proc.returncode == 0, _errors(proc)
        assert proc.problems == []


def test_inconsistent_nodes_are_reported(capsys, tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"A": [["0", "0"], ["1", "0"]], "b": ["1/2", "1/2"], "c": ["0", "1/2"]}))
    assert rkgen_main(["derive", str(path)]) == 0
    md = capsys.readouterr().out
    assert r"differ from the row sums $A\mathbf{1} = (0, 1)$" in md and math_problems(md) == []


@pytest.mark.slow
def test_gauss5_document_in_under_30_seconds(tmp_path):
    out = tmp_path / "gauss5.md"
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "rkgen", "derive", "gauss5", "-o", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    elapsed = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr
    assert elapsed < 30, f"gauss5 took {elapsed:.1f} s"
    md = out.read_text(encoding="utf-8")
    assert math_problems(md) == []
    order = md.split("## 3.")[1].split("## 4.")[0]
    assert order.count("| holds |") == 8  # trees in full up to order 4 only
    assert "Order 10: 719 trees, every condition holds exactly" in order
    assert "Order 11: 1842 trees, " in order
    failing = order.split("The failing trees of order 11")[1].split("###")[0]
    assert f"(the first {MAX_FAILING_LISTED} of " in failing
    assert failing.count("\n- ") == MAX_FAILING_LISTED
    assert len(md) < 60_000


# --------------------------------------------------------------------------------------------------
# parameter layouts: --params stage | continuous (section 6.5)
# --------------------------------------------------------------------------------------------------

LAYOUT_CASES = [(n, p) for n in ("rk4", "heun3", "gauss2", "midpoint") for p in ("stage", "continuous")]


@functools.cache
def layout_markdown(name: str, params: str) -> str:
    return Derivation(name, params).markdown()


def layout_section(name: str, params: str) -> str:
    md = layout_markdown(name, params)
    return md[md.index("### 6.5 ") : md.index("## 7.")]


def _derive_args(tableau, **kw):
    """The parsed arguments of `rkgen derive` (with ``params`` only when given: the CLI may not define it)."""
    from types import SimpleNamespace

    args = {"format": None, "output": None, "json": False, **kw}
    return SimpleNamespace(tableau=tableau, **args)


@pytest.mark.parametrize("name, params", LAYOUT_CASES)
def test_layout_section_exists_with_the_stage_gradient(name, params):
    md = layout_markdown(name, params)
    sec = layout_section(name, params)
    assert sec.startswith(f"### 6.5 The parameter layout: {params}")
    assert r"G_i = h_j \partial_u f(Y_i, u_i)^{T} \eta_i" in sec  # the ξ form, every tableau
    assert f"--params {params}" in md.split("\n## 1.")[0]  # the preface names the command
    assert "F_i = f(Y_i, u_i)" in md and "F_i = f(Y_i, u_j)" not in md  # no shared-only text left
    assert "shared by its" not in md and f"not of the {params} layout" in md  # the check says what it checks
    assert math_problems(md) == []


@pytest.mark.parametrize("name, params", LAYOUT_CASES)
def test_layout_partner_form_only_where_every_weight_is_nonzero(name, params):
    sec = layout_section(name, params)
    eq = layer_equations(load(name))
    if eq.p_form is None:
        assert r"\[BCE+19, (18)\]" in sec and "The $\\xi$ form handles the zero weight" in sec
        assert "P_{" not in sec
    else:
        for x in eq.update:  # G_i = b_i h_j ∂_u fᵀ P_i with this tableau's exact b_i
            i = x.index + 1
            b = "" if x.value == 1 else sympy.latex(x.value) + " "
            assert f"G_{{{i}}} &= {b}h_j \\partial_u f(Y_{{{i}}}, u_{{{i}}})^{{T}} P_{{{i}}}" in sec


@pytest.mark.parametrize("params", ["stage", "continuous"])
def test_heun3_zero_weight_is_handled_by_the_xi_form(params):
    sec = layout_section("heun3", params)
    assert "Here $b_{2} = 0$: the partner form does not exist (6.4)" in sec
    assert "The $\\xi$ form handles the zero weight" in sec
    assert r"$\eta_{2} = \frac{2}{3} \mu_{3}$ (6.2), which is not zero in general" in sec  # a_32 = 2/3


@pytest.mark.parametrize("name", ["rk4", "heun3", "gauss2", "midpoint"])
def test_stage_layout_reads_one_set_per_stage(name):
    sec = layout_section(name, "stage")
    s = load(name).stages
    assert ", \\qquad ".join(f"u_{{{i}}} = u_{{j,{i}}}" for i in range(1, s + 1)) in sec
    assert all(rf"\frac{{\partial\mathcal{{J}}}}{{\partial u_{{j,{i}}}}} = G_{{{i}}}" in sec for i in range(1, s + 1))
    assert "u(t" not in sec and "L_j" not in sec  # nothing of the continuous layout


@pytest.mark.parametrize("name", ["rk4", "heun3", "gauss2", "midpoint"])
def test_continuous_weights_are_the_tableaus_nodes(name):
    t = load(name)
    sec = layout_section(name, "continuous")
    for i, c in enumerate(t.c):
        pairs = ((sympy.expand(1 - c), "u_j"), (c, "u_{j+1}"))
        read = combination([(w, u) for w, u in pairs if w != 0])
        assert f"u_{{{i + 1}}} &= u\\left(" in sec and f"= {read}" in sec, (i, read)
    # the chain rule to the nodes with the same weights
    left = combination([(sympy.expand(1 - c), f"G_{{{i + 1}}}") for i, c in enumerate(t.c) if sympy.expand(1 - c)])
    right = combination([(c, f"G_{{{i + 1}}}") for i, c in enumerate(t.c) if c != 0])
    assert rf"L_j &= \sum_i (1 - c_i) G_i = {left}," in sec
    assert rf"R_j &= \sum_i c_i G_i = {right or '0'}," in sec


def test_gauss2_continuous_weights_are_its_surds():
    sec = layout_section("gauss2", "continuous")
    plus, minus = r"\frac{\sqrt{3}}{6} + \frac{1}{2}", r"\frac{1}{2} - \frac{\sqrt{3}}{6}"  # 1/2 ± √3/6
    assert (
        rf"u_{{1}} &= u\left(t_j + \left({minus}\right) h_j\right) = \left({plus}\right) u_j + \left({minus}\right) "
        r"u_{j+1}" in sec
    )
    assert rf"u_{{2}} &= u\left(t_j + \left({plus}\right) h_j\right) = \left({minus}\right) u_j" in sec
    assert "$\\tilde c = c = (" + minus + ", " + plus + ")$" in sec  # symplectic: its own partner


def test_continuous_step_gradient_has_the_motion_of_the_stage_times():
    sec = layout_section("rk4", "continuous")
    assert r"\sum_{j > l} \sum_i u'(t_{j,i}) \cdot G_i^{(j)}" in sec
    assert (
        r"= \frac{1}{2} u'(t_{l,2}) \cdot G_{2}^{(l)} + \frac{1}{2} u'(t_{l,3}) \cdot G_{3}^{(l)} + "
        r"u'(t_{l,4}) \cdot G_{4}^{(l)}." in sec
    )
    assert "A stage with $c_i = 1$ (stage 4)" in sec
    assert "Here every $c_i = 0$" in layout_section("euler", "continuous")
    assert "gains the motion of the stage times (section 6.5)" in layout_markdown("rk4", "continuous")


@pytest.mark.parametrize(
    "name, text",
    [
        ("euler", "$c = (0)$ and $\\tilde c = (1)$; they differ at $c_{1} = 0$, $\\tilde c_{1} = 1$. The two"),
        ("rk4", "$\\tilde c = c = (0, \\frac{1}{2}, \\frac{1}{2}, 1)$: the partner's stages sit at the forward"),
        ("heun3", "$c = (0, \\frac{1}{3}, \\frac{2}{3})$, and $b_{2} = 0$: rkgen has no partner"),
        ("midpoint", "$\\tilde c = c = (\\frac{1}{2})$"),
    ],
)
def test_continuous_says_where_c_tilde_matters(name, text):
    t = load(name)
    sec = layout_section(name, "continuous")
    assert "**Where $\\tilde c \\ne c$ matters, and where it does not.**" in sec
    assert "unless the gradient is taken as the discrete one" in sec
    assert text in sec
    if t.partner is not None:  # c~ as rkgen.partner computes it
        assert ", ".join(sympy.latex(x) for x in t.partner.c) in sec
    assert "Where $\\tilde c" not in layout_section(name, "stage")


def test_section_5_on_c_tilde_follows_the_layout():
    shared, stage, cont = markdown("euler"), layout_markdown("euler", "stage"), layout_markdown("euler", "continuous")
    assert "with one parameter set per layer, as in rkgen's networks" in shared
    assert "with one parameter set per layer, as in rkgen's networks" not in stage + cont
    assert "in the stage layout each stage has its own set, tied to the stage" in stage
    assert "section 6.5 says where $\\tilde c \\ne c$ matters" in cont


@pytest.mark.parametrize("name", EXAMPLES)
def test_default_document_is_the_shared_one_and_the_examples(name):
    from rkgen.derive import render

    md = markdown(name)
    assert md == Derivation(name, "shared").markdown() == render(name) == render(name, "md", "shared")
    assert "### 6.5" not in md and "--params" not in md
    for fmt, new in (("md", markdown_file(Derivation(name, "shared"), name)), ("tex", latex(name))):
        old = (EXAMPLE_DIR / f"{name}.{fmt}").read_text(encoding="utf-8")
        cut = "## 8." if fmt == "md" else "\\section*{8."  # section 8 quotes the generated module's line numbers
        assert same_document(new.split(cut)[0], old.split(cut)[0]) is None


@needs_pdflatex
@pytest.mark.parametrize("name, params", [("gauss2", "continuous"), ("heun3", "stage")])
def test_layout_latex_compiles(name, params, tmp_path):
    tex = Derivation(name, params).latex()
    assert tex.isascii() and "6.5 The parameter layout: " + params in tex
    proc = _pdflatex(tex, tmp_path)
    assert proc.returncode == 0, _errors(proc)
    assert proc.problems == []


def test_json_has_the_layout(tmp_path, capsys):
    from rkgen.derive import run_derive

    assert run_derive(_derive_args("gauss2", json=True, params="continuous")) == 0
    data = json.loads(capsys.readouterr().out)
    lay = data["params"]
    assert lay["name"] == "continuous"
    assert [s["weights"] for s in lay["stages"]] == [
        ["sqrt(3)/6 + 1/2", "1/2 - sqrt(3)/6"],
        ["1/2 - sqrt(3)/6", "sqrt(3)/6 + 1/2"],
    ]
    assert lay["partner_c"] == [s["c"] for s in lay["stages"]] == [str(c) for c in load("gauss2").c]
    assert lay["gradients"][0].startswith("Eq(dJ/du_j (from layer j)")
    heun3 = equations_json(load("heun3"), "stage")["params"]
    assert heun3["partner_form"] is None and heun3["zero_weights"] == [2]
    assert heun3["gradients"] == ["Eq(dJ/du_j,1, g_1)", "Eq(dJ/du_j,2, g_2)", "Eq(dJ/du_j,3, g_3)"]
    assert equations_json(load("euler"), "continuous")["params"]["partner_c"] == ["1"]
    assert equations_json(load("rk4"))["params"]["name"] == "shared"  # the default


def test_params_argument_of_run_derive(tmp_path, capsys):
    from rkgen.derive import run_derive
    from rkgen.errors import RkgenError

    assert run_derive(_derive_args("rk4")) == 0  # no params attribute: shared, as before `--params` exists
    assert capsys.readouterr().out == markdown("rk4")
    assert run_derive(_derive_args("rk4", params="stage")) == 0
    assert capsys.readouterr().out == layout_markdown("rk4", "stage")
    assert run_derive(_derive_args("rk4", params="stage", output=str(tmp_path))) == 0
    written = (tmp_path / "rk4_stage_derivation.md").read_text(encoding="utf-8")
    assert written == markdown_file(Derivation("rk4", "stage"), "rk4_stage_derivation")
    assert len(list((tmp_path / "rk4_stage_derivation_figures").glob("tree-*.svg"))) == 8  # the trees of orders 1 to 4
    with pytest.raises(RkgenError, match="unknown parameter layout 'stages'"):
        run_derive(_derive_args("rk4", params="stages"))


# --------------------------------------------------------------------------------------------------
# -o: never over a different file without --force; a suffix that contradicts the format is refused
# --------------------------------------------------------------------------------------------------


def _derive_error(capsys, argv) -> str:
    assert rkgen_main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("rkgen: error: ") and "Traceback" not in err
    return err


def test_an_existing_file_is_replaced_only_with_force(tmp_path, capsys):
    """As `rkgen generate`: an existing file is kept unless it already holds the document (unchanged) or
    --force is given (overwrote)."""
    from rkgen.derive import run_derive

    target = tmp_path / "target.txt"
    target.write_text("keep\n", encoding="utf-8")
    err = _derive_error(capsys, ["derive", "euler", "-o", str(target)])
    assert f"{target} exists and differs; use --force to overwrite it" in err
    assert target.read_text(encoding="utf-8") == "keep\n"
    assert run_derive(_derive_args("euler", output=str(target), force=True)) == 0
    figures = tmp_path / "target_figures"
    assert capsys.readouterr().out == f"overwrote {target}\ndrawings in {figures}: wrote 3\n"  # 2 trees, the region
    assert target.read_text(encoding="utf-8") == markdown_file(document("euler"), "target")
    mtime = target.stat().st_mtime_ns
    assert rkgen_main(["derive", "euler", "-o", str(target)]) == 0  # the same document: left as it is
    assert capsys.readouterr().out == f"unchanged {target}\n" and target.stat().st_mtime_ns == mtime
    # the same in a folder and for --json
    (tmp_path / "euler_derivation.md").write_text("mine\n", encoding="utf-8")
    _derive_error(capsys, ["derive", "euler", "-o", str(tmp_path)])
    assert (tmp_path / "euler_derivation.md").read_text(encoding="utf-8") == "mine\n"
    js = tmp_path / "e.json"
    js.write_text("{}\n", encoding="utf-8")
    assert "e.json exists and differs" in _derive_error(capsys, ["derive", "euler", "--json", "-o", str(js)])
    assert run_derive(_derive_args("euler", json=True, output=str(js), force=True)) == 0
    assert capsys.readouterr().out == f"overwrote {js}\n" and json.loads(js.read_text())["tableau"]
    assert run_derive(_derive_args("euler", json=True, output=str(tmp_path))) == 0  # a folder: <stem>.json
    assert json.loads((tmp_path / "euler_derivation.json").read_text()) == json.loads(js.read_text())


def test_an_existing_pdf_needs_force_before_compiling(tmp_path, capsys, monkeypatch):
    from rkgen.derive import cli

    calls = []
    monkeypatch.setattr(cli.shutil, "which", lambda name, *a, **k: "/no/pdflatex")
    monkeypatch.setattr(
        cli, "compile_pdf", lambda tex, out, pdflatex: calls.append(out) or out.write_bytes(b"%PDF") and []
    )
    out = tmp_path / "z.pdf"
    out.write_bytes(b"keep")
    assert f"{out} exists; use --force to overwrite it" in _derive_error(capsys, ["derive", "euler", "-o", str(out)])
    assert out.read_bytes() == b"keep" and calls == []
    assert cli.run_derive(_derive_args("euler", output=str(out), force=True)) == 0
    assert capsys.readouterr().out == f"overwrote {out}\n" and calls == [out] and out.read_bytes() == b"%PDF"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--json", "--format", "pdf", "-o", "z.pdf"], "-o z.pdf: a .pdf file does not hold the output of --json"),
        (["--json", "-o", "z.md"], "a .md file does not hold the output of --json; name it *.json"),
        (["--format", "tex", "-o", "y.md"], "-o y.md: a .md file does not hold the output of --format tex"),
        (["--format", "md", "-o", "z.pdf"], "-o z.pdf: a .pdf file does not hold the output of --format md"),
        (["--format", "md", "-o", "z.TEX"], "a .TEX file does not hold the output of --format md; name it *.md"),
        (["--format", "pdf", "-o", "z.markdown"], "a .markdown file does not hold the output of --format pdf"),
        (["-o", "e.json"], "-o e.json: a .json file is for --json"),
        (["-o", ""], "-o is empty"),
        (["--json", "-o", ""], "-o is empty"),
    ],
)
def test_a_suffix_that_contradicts_the_format_is_refused(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    err = _derive_error(capsys, ["derive", "euler", *argv])
    assert message in err
    assert list(tmp_path.iterdir()) == []  # nothing written, not even ./euler_derivation.md


def test_suffixes_that_fit_or_say_nothing_stay_allowed(tmp_path, capsys):
    for argv, name, start in [
        (["--format", "md", "-o", "notes"], "notes", "# Exact gradients for euler"),  # no suffix
        (["--format", "tex", "-o", "doc.txt"], "doc.txt", "\\documentclass"),  # a suffix of no format
        (["-o", "e.markdown"], "e.markdown", "# Exact gradients for euler"),
        (["--format", "md", "-o", "E.MD"], "E.MD", "# Exact gradients for euler"),
        (["--json", "-o", "e.JSON"], "e.JSON", "{"),
        (["--format", "md", "-o", "new/"], "new/euler_derivation.md", "# Exact gradients for euler"),
    ]:
        argv = [f"{tmp_path}/{a}" if a in (name, "new/") else a for a in argv]
        assert rkgen_main(["derive", "euler", *argv]) == 0, argv
        assert (tmp_path / name).read_text(encoding="utf-8").startswith(start)
    capsys.readouterr()


def test_refreshing_the_examples_overwrites_its_own_files(tmp_path):
    """`python -m rkgen.derive FOLDER` keeps replacing its example documents (no --force there)."""
    write_examples(tmp_path)
    (tmp_path / "euler.md").write_text("stale\n", encoding="utf-8")
    done = dict(write_examples(tmp_path))
    assert done[tmp_path / "euler.md"] == "written" and done[tmp_path / "rk4.md"] == "unchanged"
    assert (tmp_path / "euler.md").read_text(encoding="utf-8") == markdown_file(document("euler"), "euler")


# --------------------------------------------------------------------------------------------------
# trees drawn: one layout, two writers
# --------------------------------------------------------------------------------------------------


def _all_trees(up_to: int = 6):
    from rkgen.trees import trees_up_to

    return trees_up_to(up_to)


def test_tree_layout_has_the_tree_shape():
    from rkgen.derive.drawing import tree_layout

    trees = _all_trees()
    assert len(trees) == 1 + 1 + 2 + 4 + 9 + 20
    for t in trees:
        lay = tree_layout(t)
        assert len(lay.nodes) == t.order, t
        assert len(lay.edges) == t.order - 1, t
        assert lay.nodes[0][1] == 0 and all(y > 0 for _, y in lay.nodes[1:]), t  # the root alone at the bottom
        for parent, child in lay.edges:  # every edge goes one level up
            assert lay.nodes[child][1] == lay.nodes[parent][1] + 1, t
        children = sorted(child for _, child in lay.edges)
        assert children == list(range(1, t.order)), t  # every node but the root has exactly one parent
        leaves = [k for k in range(t.order) if k not in {p for p, _ in lay.edges}]
        assert sorted(lay.nodes[k][0] for k in leaves) == list(range(len(leaves))), t  # one slot per leaf
    stalk = tree_layout(next(t for t in trees if t.notation == "[[[τ]]]"))
    assert stalk.nodes == ((0.0, 0.0), (0.0, 1.0), (0.0, 2.0), (0.0, 3.0))
    bush = tree_layout(next(t for t in trees if t.notation == "[τ³]"))
    assert bush.nodes == ((1.0, 0.0), (0.0, 1.0), (1.0, 1.0), (2.0, 1.0))


def test_tree_drawings_are_deterministic_and_well_formed():
    import xml.etree.ElementTree as ET

    from rkgen.derive.drawing import svg, tikz, tree_layout, tree_name, tree_picture

    trees = _all_trees()
    assert len({tree_name(t) for t in trees}) == len(trees)
    for t in trees:
        pic = tree_picture(t)
        assert pic == tree_picture(t) and pic.name == tree_name(t)
        assert pic.svg == svg(tree_layout(t)) and pic.tikz == tikz(tree_layout(t))
        root = ET.fromstring(pic.svg)
        circles = root.findall(".//{http://www.w3.org/2000/svg}circle")
        lines = root.findall(".//{http://www.w3.org/2000/svg}line")
        assert len(circles) == t.order and len(lines) == t.order - 1
        assert max(float(c.get("cy")) for c in circles) == float(circles[0].get("cy"))  # root lowest on screen
        assert pic.tikz.startswith("\\begin{tikzpicture}") and pic.tikz.endswith("\\end{tikzpicture}")
        assert pic.tikz.count(" circle (") == t.order and pic.tikz.count(" -- ") == t.order - 1
        for number in re.findall(r"-?\d+\.\d+", pic.svg + pic.tikz):  # rounded coordinates only
            assert len(number.split(".")[1]) <= 2, number


def test_order_table_draws_each_tree_with_its_weight():
    doc = document("rk4")
    md = markdown_file(doc, "rk4")
    order = md.split("## 3.")[1].split("## 4.")[0]
    rows = [line for line in order.splitlines() if line.startswith("| ![tree-")]
    assert len(rows) == 8
    assert rows[2] == (
        r"| ![tree-3-1](rk4_figures/tree-3-1.svg) | $[\tau^2]$ | 3 | $c^{2}$ | "
        r"$\left(0, \frac{1}{4}, \frac{1}{4}, 1\right)^{T}$ | $\frac{1}{3}$ | $\frac{1}{3}$ | holds |"
    )
    euler = markdown_file(document("euler"), "euler").split("## 3.")[1].split("## 4.")[0]
    assert r"| $[\tau]$ | 2 | $c$ | $\left(0\right)^{T}$ | $0$ | $\frac{1}{2}$ | fails by $- \frac{1}{2}$ |" in euler
    assert "(`-o` draws it)" in markdown("rk4") and "_figures/" not in markdown("rk4")
    tex = latex("rk4").split("section*{3.")[1].split("section*{4.")[0]
    assert tex.count("\\begin{tikzpicture}") == 8


# --------------------------------------------------------------------------------------------------
# the figures folder of a Markdown file
# --------------------------------------------------------------------------------------------------


def test_markdown_file_writes_its_drawings_and_removes_only_its_own_stale_ones(tmp_path, capsys):
    out = tmp_path / "doc.md"
    folder = tmp_path / "doc_figures"
    assert rkgen_main(["derive", "rk4", "-o", str(out)]) == 0
    assert capsys.readouterr().out == f"wrote {out}\ndrawings in {folder}: wrote 9\n"  # 8 trees, the region
    files = figure_files(document("rk4").blocks)
    assert {p.name for p in folder.iterdir()} == set(files)
    assert all((folder / n).read_text(encoding="utf-8") == c for n, c in files.items())
    # rewritten for euler: rk4's trees of order 3 and 4 are stale and go; a file of the user's stays
    (folder / "notes.svg").write_text("<svg/>\n", encoding="utf-8")
    (folder / "keep.txt").write_text("mine\n", encoding="utf-8")
    assert rkgen_main(["derive", "euler", "-o", str(out), "--force"]) == 0
    # euler's region differs from rk4's: overwritten; rk4's trees of orders 3 and 4 removed
    assert capsys.readouterr().out == f"overwrote {out}\ndrawings in {folder}: overwrote 1, removed 6\n"
    assert {p.name for p in folder.iterdir()} == {
        "tree-1-1.svg", "tree-2-1.svg", "stability-region.svg", "notes.svg", "keep.txt"
    }
    # an SVG of the user's where a drawing goes is not replaced without --force, and nothing is written
    (folder / "tree-1-1.svg").write_text("<svg>mine</svg>\n", encoding="utf-8")
    out.unlink()
    err = _derive_error(capsys, ["derive", "rk4", "-o", str(out)])
    assert "tree-1-1.svg exists and was not written by rkgen; use --force" in err
    assert not out.exists() and not (folder / "tree-3-1.svg").exists()  # nothing written
    assert rkgen_main(["derive", "rk4", "-o", str(out), "--force"]) == 0
    assert (folder / "tree-1-1.svg").read_text(encoding="utf-8") == files["tree-1-1.svg"]
    capsys.readouterr()


def test_markdown_figures_folder_must_be_a_real_folder(tmp_path, capsys):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "doc_figures").symlink_to(elsewhere)
    err = _derive_error(capsys, ["derive", "euler", "-o", str(tmp_path / "doc.md")])
    assert "doc_figures is a symbolic link" in err
    assert list(elsewhere.iterdir()) == [] and not (tmp_path / "doc.md").exists()
    (tmp_path / "doc_figures").unlink()
    (tmp_path / "doc_figures").write_text("a file\n", encoding="utf-8")
    assert "doc_figures is a file" in _derive_error(capsys, ["derive", "euler", "-o", str(tmp_path / "doc.md")])


def test_drawing_names_are_file_safe_and_unique():
    from rkgen.derive.document import Figure, Para, Picture, Text, drawings

    assert drawings([Figure("region", "<svg/>", "t", [Text("x")])])[0].name == "region"
    with pytest.raises(ValueError, match="not a file-safe stem"):
        drawings([Para([Picture("../x", "<svg/>", "t")])])
    with pytest.raises(ValueError, match="two different drawings"):
        drawings([Para([Picture("a", "<svg/>", "t"), Picture("a", "<svg></svg>", "t")])])


# --------------------------------------------------------------------------------------------------
# non-ASCII text, and what pdflatex reports
# --------------------------------------------------------------------------------------------------

NON_ASCII = "SDIRK, γ = 1 − √2/2 ≈ 0.29, x ≤ y × 2, ℚ, Schönlieb, Crouzeix–Raviart, “quoted”"


def _non_ascii_tableau(tmp_path, extra: str = "") -> str:
    path = tmp_path / "sdirk.json"
    path.write_text(
        json.dumps(
            {
                "name": "my_sdirk",
                "description": NON_ASCII + extra,
                "A": [["1/2", "0"], ["1/2", "1/2"]],
                "b": ["1/2", "1/2"],
            }
        ),
        encoding="utf-8",
    )
    return str(path)


def test_non_ascii_description_is_transliterated(tmp_path, capsys):
    tex = Derivation(_non_ascii_tableau(tmp_path)).latex()
    assert tex.isascii()
    expected = (
        r"SDIRK, \ensuremath{\gamma} = 1 \ensuremath{-} \ensuremath{\surd}2/2 \ensuremath{\approx} 0.29, "
        r"x \ensuremath{\le} y \ensuremath{\times} 2, \ensuremath{\mathbb{Q}}, Sch\"{o}nlieb, Crouzeix--Raviart, "
        r"``quoted''"
    )
    assert expected in tex and "?" not in tex.split("Description: ")[1].split("\n")[0]
    assert rkgen_main(["derive", _non_ascii_tableau(tmp_path), "--format", "tex"]) == 0
    assert capsys.readouterr().err == ""  # every character has a LaTeX form: no warning


def test_untypesettable_character_is_named_in_a_warning(tmp_path, capsys):
    spec = _non_ascii_tableau(tmp_path, " 中")
    assert rkgen_main(["derive", spec, "--format", "tex", "-o", str(tmp_path / "x.tex")]) == 0
    err = capsys.readouterr().err
    assert err == (
        "rkgen: warning: LaTeX cannot typeset the character '中' (U+4E2D) of the tableau's text; it is printed "
        "as U+4E2D\n"
    )
    assert "\\missingchar{4E2D}" in (tmp_path / "x.tex").read_text(encoding="utf-8")


@needs_pdflatex
def test_format_pdf_reports_log_problems(tmp_path, capsys):
    """A real pdflatex log: an overfull box and a missing character are found; the PDF is written all the same."""
    tex = (
        "\\documentclass{article}\\tracinglostchars=2\\begin{document}"
        "\\hbox to 1cm{\\vrule width 3cm}\\char200\\end{document}\n"
    )
    out = tmp_path / "t.pdf"
    problems = compile_pdf(tex, out)
    assert out.read_bytes().startswith(b"%PDF")
    assert len(problems) == 2 and problems[0].startswith("overfull box: 56.9") and "too wide" in problems[0]
    assert problems[1].startswith("missing character: ") and "cmr10" in problems[1]


def test_format_pdf_prints_a_warning_per_problem(tmp_path, capsys, monkeypatch):
    from rkgen.derive import cli

    monkeypatch.setattr(cli.shutil, "which", lambda name, *a, **k: "/no/pdflatex")
    found = ["overfull box: 50.0pt too wide in paragraph at lines 1--2", "missing character: x in font cmr10"]
    monkeypatch.setattr(cli, "compile_pdf", lambda tex, out, pdflatex: out.write_bytes(b"%PDF") and found)
    out = tmp_path / "e.pdf"
    assert rkgen_main(["derive", "euler", "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"wrote {out}\n"
    assert captured.err == "".join(f"rkgen: warning: {out}: {p}\n" for p in found)


# --------------------------------------------------------------------------------------------------
# every built-in's PDF: no overfull box wider than 2 pt, no missing character
# --------------------------------------------------------------------------------------------------

#: compiled in the default run (beside the examples, compiled above); every other built-in in the slow set
PDF_FAST = ("radau_iia2", "sdirk2")


def _compile_all(names: list, tmp_path) -> dict:
    """The log problems of each document's PDF; documents are built here one after another while pdflatex
    runs on the previous ones (two at a time)."""
    from concurrent.futures import ThreadPoolExecutor

    def run(name, tex):
        folder = tmp_path / re.sub(r"\W", "_", name)
        folder.mkdir()
        proc = _pdflatex(tex, folder)
        return _errors(proc) if proc.returncode else proc.problems

    with ThreadPoolExecutor(max_workers=2) as pool:
        jobs = {
            name: pool.submit(run, name, latex(name) if "/" not in name else Derivation(name).latex()) for name in names
        }
        return {name: job.result() for name, job in jobs.items()}


@needs_pdflatex
def test_pdfs_of_the_risky_tableaux_have_no_overfull_box(tmp_path):
    names = [*PDF_FAST, _non_ascii_tableau(tmp_path)]
    problems = _compile_all(names, tmp_path)
    assert problems == {name: [] for name in names}


@pytest.mark.slow
@needs_pdflatex
def test_pdfs_of_every_builtin_have_no_overfull_box(tmp_path):
    from rkgen.butcher import builtin_names

    elsewhere = (*EXAMPLES, *PDF_FAST, *OTHER_STRUCTURES)  # compiled by the tests above
    names = [n for n in builtin_names() if n not in elsewhere]
    assert "gauss5" in names and len(names) + len(elsewhere) == len(builtin_names())
    problems = _compile_all(names, tmp_path)
    assert problems == {name: [] for name in names}


def test_figure_block_in_both_formats():
    from rkgen.derive.document import Figure, Math, Para, Picture, Text
    from rkgen.derive.latex import latex_block
    from rkgen.derive.markdown import FIGURE_NOTE, PICTURE_NOTE, markdown_block

    tikz = "\\begin{tikzpicture}\n\\draw (0,0) -- (1,1);\n\\end{tikzpicture}"
    fig = Figure("region", "<svg/>", tikz, [Text("The region "), Math("|R(z)| \\le 1"), Text(".")])
    assert markdown_block(fig, "doc_figures") == "![region](doc_figures/region.svg)\n\nThe region $|R(z)| \\le 1$."
    assert markdown_block(fig) == f"The region $|R(z)| \\le 1$. {FIGURE_NOTE}"
    assert latex_block(fig) == (
        "\\begin{figure}[htbp]\n\\centering\n" + tikz + "\n\\caption{The region $|R(z)| \\le 1$.}\n\\end{figure}"
    )
    pic = Para([Text("a "), Picture("p-1", "<svg/>", tikz)])
    assert markdown_block(pic, "my doc_figures") == "a ![p-1](my%20doc_figures/p-1.svg)"
    assert markdown_block(pic) == f"a {PICTURE_NOTE}"
    assert latex_block(pic) == "a " + tikz
    assert figure_files([fig, pic]) == {"region.svg": SVG_MARK + "\n<svg/>\n", "p-1.svg": SVG_MARK + "\n<svg/>\n"}

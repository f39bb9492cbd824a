"""The two roads to the gradient (rkgen.compare, `rkgen compare-adjoints`): the measured orders against theory.

- the orders of the differences (b) − (a), (c) − (a) and (a) − continuous for euler, rk4 and midpoint are within
  ±0.1 of theory; where theory says two gradients coincide, their difference is at rounding at every N;
- (a) agrees with central differences (d), explicit and implicit: it is the exact gradient of the network;
- the pieces are checked on their own: the continuous reference against scipy's solve_ivp, the float Gauss
  coefficients, the exact predictions (symmetry, the adjoint's tree weights, the true pair's order p);
- `rkgen compare-adjoints`: the table, the plot, --json, and bad input as one line with exit status 2.
"""

from __future__ import annotations

import functools
import json
import re

import numpy as np
import pytest
from cli_run import run

from rkgen import load
from rkgen.compare import (
    FIT_POINTS,
    ROUNDING_FLOOR,
    _spines,
    _Weights,
    adjoint_matrix,
    compare,
    continuous_gradient,
    gauss_legendre,
    instance,
    is_symmetric,
    predictions,
    weights_first_differ,
)
from rkgen.derive.check import partner_entries

#: N = 8 … 64 at T = 1: past the pre-asymptotic h = 1/4 of euler, and rk4's errors stay above rounding
LAYERS = (8, 16, 32, 64)
TOLERANCE = 0.1


@functools.cache
def measured(name: str):
    return compare(name, layers=LAYERS, fd_layers=None)


# -- the orders: measurement against theory ----------------------------------------------------------------------

#: theory for each comparison: an order, or "coincide"
THEORY = {
    # euler: both roads have order 1 (the step -h is not the inverse of the forward step); A = (0) is symmetric,
    # so the misprinted conditions give the true partner
    "euler": {"b": 1, "c": "coincide", "a": 1},
    # rk4: order 4 on both roads; the misprinted pair breaks the second-order condition (1ᵀAb = 7/12 ≠ 1/2)
    "rk4": {"b": 4, "c": 1, "a": 4},
    # midpoint: symmetric and symplectic, so the backward sweep retraces the forward stages and is its own
    # partner: (b) is (a) to rounding; A = (1/2) is symmetric, so (c) is (a) too
    "midpoint": {"b": "coincide", "c": "coincide", "a": 2},
    # heun2: the roads differ by h^3, not h^2: the adjoint method (A*, b), A* = 1bᵀ − A, has the principal error
    # of heun2 (the tree weights of (A*, A*) and (A, Ã) first differ at order 4); the misprinted pair is of order
    # 2 (1ᵀAb = 1/2 holds, an order-3 condition fails)
    "heun2": {"b": 3, "c": 2, "a": 2},
}


@pytest.mark.parametrize("name", sorted(THEORY))
def test_the_predictions_are_the_textbook_ones(name):
    th = predictions(name)
    for key, want in THEORY[name].items():
        if want == "coincide":
            assert th[key].coincides and th[key].order is None, (key, th[key])
        else:
            assert not th[key].coincides and th[key].order == want and not th[key].at_least, (key, th[key])


@pytest.mark.parametrize("name", sorted(THEORY))
def test_measured_orders_agree_with_theory(name):
    r = measured(name)
    for key, want in THEORY[name].items():
        errors = r.errors[key]
        if want == "coincide":
            # no order to fit: the two gradients are the same numbers computed in another order, so the
            # difference is rounding at every N (it must not grow like a discretisation error)
            assert max(errors) <= ROUNDING_FLOOR, (key, errors)
            assert r.agrees(key) is True
        else:
            fit = r.fits[key]
            assert min(errors) > ROUNDING_FLOOR, (key, errors)  # every point above rounding
            assert fit.points == min(len(LAYERS), FIT_POINTS)  # fitted over the largest N
            assert abs(fit.order - want) <= TOLERANCE, (key, fit, errors)
            assert r.agrees(key) is True
            assert all(e1 > e2 for e1, e2 in zip(errors, errors[1:], strict=False)), (key, errors)


def test_the_misprint_is_a_first_order_gradient_for_rk4():
    r = measured("rk4")
    # not small: at N = 8 the misprinted gradient is wrong in the second digit, while (b) is within 1e-4
    assert r.errors["c"][0] > 1e-3
    assert r.errors["b"][0] < 1e-4


def test_the_continuous_reference_agrees_with_solve_ivp():
    """An independent road to the continuous gradient: scipy's DOP853 on the forward ODE (dense output), then on
    λ' = −f_yᵀλ, g' = −f_θᵀλ backwards along the interpolated y."""
    from scipy.integrate import solve_ivp

    inst, T = instance(5), 1.0
    K, beta, W = inst.K, inst.beta, inst.W
    m, d = inst.y0.shape
    tol = {"rtol": 1e-12, "atol": 1e-13, "method": "DOP853"}

    def f(_, z):
        return np.tanh(z.reshape(m, d) @ K.T + beta).ravel()

    fwd = solve_ivp(f, (0.0, T), inst.y0.ravel(), dense_output=True, **tol)

    def adj(t, z):
        y = fwd.sol(t).reshape(m, d)
        lam = z[: m * d].reshape(m, d)
        G = (1.0 - np.tanh(y @ K.T + beta) ** 2) * lam  # σ' ⊙ λ
        return -np.concatenate([(G @ K).ravel(), (G.T @ y).ravel(), G.sum(axis=0)])

    z0 = np.concatenate([W.ravel(), np.zeros(d * d + d)])
    back = solve_ivp(adj, (T, 0.0), z0, **tol)
    lam0, gK, gb = back.y[: m * d, -1], back.y[m * d : m * d + d * d, -1], back.y[m * d + d * d :, -1]
    oracle = np.concatenate([lam0, gK, gb])  # g(0) = g(T) − ∫_0^T g' dt = ∫_0^T f_θᵀ λ dt
    ours, err = continuous_gradient(inst, T)
    assert err < 1e-13
    assert np.max(np.abs(ours - oracle)) / np.max(np.abs(oracle)) < 1e-9


def test_gauss_coefficients_are_the_tableaux():
    A, b = gauss_legendre(2)
    Aq, bq, _ = load("gauss2").floats()
    assert np.array_equal(A, np.array(Aq)) and np.array_equal(b, np.array(bq))
    A, b = gauss_legendre(5)
    c = A.sum(axis=1)
    for k in range(1, 11):  # order 10: the quadrature is exact for degree 9
        assert abs(b @ c ** (k - 1) - 1 / k) < 1e-15
    for k in range(1, 6):  # C(5)
        assert np.max(np.abs(A @ c ** (k - 1) - c**k / k)) < 1e-15


# -- (a) against (d) ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["rk4", "sdirk2", "gauss2"])
def test_the_discrete_gradient_is_the_gradient_of_the_network(name):
    r = compare(name, layers=(3, 6), fd_layers="first")
    assert r.fd_layers == 3
    assert r.fd_error < 1e-8
    d, a = r.gradients[3]["d"], r.gradients[3]["a"]
    assert np.max(np.abs(d - a)) < 1e-8 * r.scale
    # and (b), (c) are not: for rk4 at h = 1/3 they differ from (d) far beyond its accuracy
    if name == "rk4":
        for key in ("b", "c"):
            assert np.max(np.abs(r.gradients[3][key] - d)) > 1e-5 * r.scale


def test_gauss2_optimise_then_discretise_is_the_exact_gradient():
    r = compare("gauss2", layers=(2, 4), fd_layers=None)
    assert predictions("gauss2")["b"].kind == "retrace"
    assert max(r.errors["b"]) < 1e-13
    assert predictions("gauss2")["c"].order == 2  # the misprinted pair: first-difference at order 3
    assert r.errors["c"][0] > 1e-6


# -- exact theory ---------------------------------------------------------------------------------------------------


def test_symmetry_and_the_kinds_of_prediction():
    assert [is_symmetric(load(n)) for n in ("lobatto_iiia3", "lobatto_iiib2", "gauss3", "sdirk2", "heun2")] == [
        True,
        True,
        True,
        False,
        False,
    ]
    trapezoid = predictions("trapezoid")  # symmetric, not symplectic: (b) is the pair (A, A), of order 2
    assert trapezoid["b"].kind == "pair" and trapezoid["b"].order == 2
    heun3 = predictions("heun3")  # b_2 = 0: no partner, misprinted or not
    assert not heun3["c"].defined and heun3["b"].order == 3


@pytest.mark.parametrize("name", ["heun2", "kutta3", "rk4", "radau_iia2", "gauss2"])
def test_the_true_pair_has_the_order_of_the_method_on_the_adjoint_trees(name):
    """Every adjoint tree of order n <= p has the weight 1/γ with the true partner (Hager; Sanz-Serna), and some
    tree of order p + 1 has not (the pair's order is exactly p)."""
    t = load(name)
    F = t.number_field
    w = _Weights(t, t.exact[0], partner_entries(t))

    def gamma(spine):
        from rkgen.trees import tree

        forest, child = spine
        n = 1 + sum(tree(i).order for i in forest) + (0 if child is None else _order(child))
        g = n
        for i in forest:
            g *= tree(i).gamma
        return g * (1 if child is None else gamma(child))

    def _order(spine):
        from rkgen.trees import tree

        forest, child = spine
        return 1 + sum(tree(i).order for i in forest) + (0 if child is None else _order(child))

    def exact(spine):
        return F.is_zero(F.sub(w.weight(spine), F.inv(F.from_rational(gamma(spine)))))

    p = t.order
    for n in range(1, p + 1):
        assert all(exact(sp) for sp in _spines(n)), (name, n)
    assert not all(exact(sp) for sp in _spines(p + 1))


def test_the_misprint_of_rk4_first_shows_at_order_two():
    rk4 = load("rk4")
    A, right, wrong = rk4.exact[0], partner_entries(rk4), partner_entries(rk4, misprint=True)
    assert weights_first_differ(rk4, (A, right), (A, wrong), 5) == 2
    assert weights_first_differ(rk4, (A, right), (A, right), 5) is None
    # the backward sweep (b) is the pair (A*, A*) with A* = 1bᵀ − A: it differs from (A, Ã) at order 5 (h^4)
    assert weights_first_differ(rk4, (A, right), (adjoint_matrix(rk4),) * 2, 6) == 5
    assert [len(_spines(n)) for n in range(1, 6)] == [1, 2, 5, 13, 35]


# -- the document's section -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, theory, measured",
    [
        ("rk4", ["4", "1", "4"], [4.0, 1.1, 4.0]),
        ("midpoint", ["coincide", "coincide", "2"], ["at rounding", "identical (0)", 2.0]),
    ],
)
def test_the_document_section_shows_the_measurement_beside_theory(name, theory, measured):
    from rkgen.derive.context import Context
    from rkgen.derive.markdown import markdown_block
    from rkgen.derive.sections_roads import section_roads

    md = "\n\n".join(markdown_block(b) for b in section_roads(Context(name)))
    assert md.startswith("## 10. The two roads to the gradient")
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[3:6]] for line in md.splitlines()
            if line.startswith("| order, ")}  # fmt: skip
    assert rows["order, theory"] == theory
    for got, want in zip(rows["order, measured"], measured, strict=True):
        if isinstance(want, float):
            assert abs(float(got) - want) <= 0.15, (got, want)
        else:
            assert got.startswith(want), (got, want)
    assert "does not agree" not in md and md.count("the measurement agrees") == 3


def test_a_pre_asymptotic_order_is_said_to_be_on_its_way():
    r = compare("gauss3", layers=(4, 8, 16, 32), fd_layers=None)
    local = r.local_orders("c")
    assert r.agrees("c") is False and r.approaching("c")  # 1.29 over N = 4 … 32, theory 1
    assert len(local) == 3 and local[0] > local[1] > local[2] > 1


# -- the command --------------------------------------------------------------------------------------------------


def test_cli_prints_the_table_and_writes_the_plot(capsys, tmp_path):
    png, svg = tmp_path / "rk4.png", tmp_path / "rk4.svg"
    status, out, err = run(capsys, "compare-adjoints", "rk4", "--layers", "8", "16", "32", "-o", str(png))
    assert status == 0 and err == ""
    lines = out.splitlines()
    rows = [line.split() for line in lines if line.split() and line.split()[0] in ("8", "16", "32")]
    assert [row[0] for row in rows] == ["8", "16", "32"] and all(len(row) == 4 for row in rows)
    orders = dict(re.findall(r"^  \((\w)\) .*: measured (\d\.\d\d) \(3 points\); theory", out, re.M))
    assert {k: round(float(v)) for k, v in orders.items()} == {"b": 4, "c": 1, "a": 4}, out
    assert "DIFFERS" not in out
    assert f"wrote {png}" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    status, out, err = run(capsys, "compare-adjoints", "midpoint", "--layers", "4", "8", "-o", str(svg), "--seed", "3")
    assert status == 0, err
    assert svg.read_text().lstrip().startswith("<?xml") and "</svg>" in svg.read_text()
    assert "coincide" in out


def test_cli_json(capsys):
    status, out, err = run(
        capsys, "compare-adjoints", "euler", "--layers", "8", "16", "32", "--final-time", "2", "--json"
    )
    assert status == 0 and err == ""
    data = json.loads(out)
    assert data["tableau"] == "euler" and data["layers"] == [8, 16, 32] and data["final_time"] == 2.0
    assert data["comparisons"]["b"]["theory_order"] == 1
    assert data["comparisons"]["c"]["theory_coincides"] is True
    assert abs(data["comparisons"]["a"]["measured_order"] - 1) < 0.15
    assert len(data["errors"]["b"]) == 3 and data["finite_differences"]["layers"] == 8


@pytest.mark.parametrize(
    "argv, message",
    [
        (["nosuch"], None),
        (["rk4", "--layers", "8"], "--layers needs at least two layer counts to fit a slope"),
        (["rk4", "--layers", "8", "0"], "--layers must be between 1 and 4096"),
        (["rk4", "--layers", "8", "8"], "--layers must not repeat a layer count"),
        (["rk4", "--final-time", "-1"], "--final-time must be a number in (0, 100]"),
        (["rk4", "--final-time", "nan"], "--final-time must be a number in (0, 100]"),
        (["rk4", "--seed", "-2"], "--seed must be a nonnegative integer"),
        (["rk4", "-o", "plot.txt"], "-o plot.txt: the plot is written as .png, .pdf or .svg; name the file so"),
        (["rk4", "--layers", "x"], None),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(capsys, argv, message):
    status, out, err = run(capsys, "compare-adjoints", *argv)
    assert status == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("rkgen: error: ") and "Traceback" not in err
    if message is not None:
        assert err == f"rkgen: error: {message}\n"


def test_cli_a_directory_as_the_plot_is_one_line(capsys, tmp_path):
    target = tmp_path / "x.png"
    target.mkdir()
    status, out, err = run(capsys, "compare-adjoints", "euler", "--layers", "2", "4", "-o", str(target))
    assert status == 2 and err.count("\n") == 1 and "folder" in err

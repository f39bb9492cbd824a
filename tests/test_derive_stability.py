"""The derivation's stability section and its drawings (rkgen.derive.sections_stability, rkgen.derive.region)."""

from __future__ import annotations

import numpy as np
import pytest

from rkgen import load
from rkgen.derive import Derivation
from rkgen.derive.region import region_polygons, region_svg, region_tikz


def _inside(rings, x, y) -> bool:
    """Even-odd ray casting: an oracle independent of the contouring."""
    inside = False
    for ring in rings:
        for (x1, y1), (x2, y2) in zip(ring, ring[1:] + ring[:1], strict=True):
            if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
                inside = not inside
    return inside


@pytest.mark.parametrize("name", ["rk4", "radau_iia2", "euler", "gauss2"])
def test_region_matches_the_stability_function(name):
    s = load(name).stability
    rings, lines = region_polygons(s)
    rng = np.random.default_rng(7)
    x0, x1, y0, y1 = s.plot_box()
    pts = np.column_stack([rng.uniform(x0, x1, 400), rng.uniform(y0, y1, 400)])
    modulus = np.abs(s.evaluate(pts[:, 0] + 1j * pts[:, 1]))
    clear = np.abs(modulus - 1) > 0.05  # away from the boundary, where the polygon is an approximation
    agree = [_inside(rings, x, y) == (m <= 1) for (x, y), m, c in zip(pts, modulus, clear, strict=True) if c]
    assert len(agree) > 300 and all(agree)
    assert lines


def test_order_star_of_radau_iia2_has_p_plus_one_sectors_at_the_origin():
    """Order p: R(z)e^{-z} = 1 + C z^{p+1} + ..., so 2(p+1) sectors alternate around 0 (p = 3: 8 sectors)."""
    s = load("radau_iia2").stability
    rings, _ = region_polygons(s, "order-star", box=(-4, 4, -4, 4), n=321)
    angles = np.linspace(0, 2 * np.pi, 720, endpoint=False)
    inside = [_inside(rings, 0.3 * np.cos(a), 0.3 * np.sin(a)) for a in angles]
    changes = sum(a != b for a, b in zip(inside, inside[1:] + inside[:1], strict=True))
    assert changes == 8


def test_drawings_are_deterministic_and_complete():
    s = load("rk4").stability
    svg, tikz = region_svg(s), region_tikz(s)
    assert svg == region_svg(load("rk4").stability) and tikz == region_tikz(s)
    assert svg.startswith("<svg") and svg.endswith("</svg>") and "Re z" in svg and "Im z" in svg
    assert tikz.startswith(r"\begin{tikzpicture}") and tikz.endswith(r"\end{tikzpicture}")
    assert r"\operatorname{Re} z" in tikz


def test_plot_box_holds_the_interval_and_the_poles():
    assert load("rk4").stability.plot_box() == (-3.5, 1.0, -3.5, 3.5)
    x0, x1, y0, y1 = load("gauss2").stability.plot_box()
    poles = load("gauss2").stability.poles()  # 3 ± i√3
    assert all(x0 < p.real < x1 and y0 < p.imag < y1 for p in poles)


@pytest.mark.parametrize(
    "name, present",
    [
        ("rk4", ["**not A-stable**", "24 + 12 x + 4 x^{2} + x^{3} = 0", "-2.785293563405281623529759",
                 "\\tilde R(z) = \\frac{24}{24 - 24 z + 12 z^{2} - 4 z^{3} + z^{4}}",
                 "agrees with $e^{z}$ to order 4"]),
        ("gauss2", ["**A-stable**", "**not L-stable**", "$(-\\infty, 0]$", "**algebraically stable**"]),
        ("radau_iia2", ["**L-stable**", "R(\\infty) = 0"]),
        ("euler", ["$-r = -2$", "\\tilde R(z) = \\frac{1}{1 - z}"]),
        ("heun3", ["With a zero weight there is no partner tableau"]),
    ],
)
def test_stability_section_states_the_exact_verdicts(name, present):
    md = Derivation(name).markdown()
    section = md[md.index("## 9. Linear stability") : md.index("## References")]
    for text in present:
        assert text in section, text

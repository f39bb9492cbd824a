"""`rkgen plot` and rkgen/plot.py: the stability region and the order star.

- the shaded set agrees with |R(z)| <= 1 (and |R(z) e^{-z}| > 1) at sample points, with R computed here
  independently from the tableau, R(z) = 1 + z b^T (I - zA)^{-1} 1, both in the mask and in the drawn polygons;
- the order star has 2(p + 1) boundary crossings on a small circle around the origin (p + 1 sectors of each
  kind; Wanner, Hairer and Norsett 1978);
- the real stability interval is marked where it is; the default box shows it;
- PNG, PDF and SVG files are written, the same bytes each time; an existing different file needs --force;
- a bad box, a bad suffix and a bad tableau are one line and exit status 2.
"""

from __future__ import annotations

import numpy as np
import pytest

import rkgen.plot
from rkgen import RkgenError, load
from rkgen.cli import main as rkgen_main
from rkgen.plot import check_box, default_box, order_star_plot, stability_plot

pytestmark = pytest.mark.skipif(
    not hasattr(load("euler"), "stability"), reason="this rkgen has no stability analysis (rkgen.stability)"
)


def exact_R(name: str, z: np.ndarray) -> np.ndarray:
    """R(z) = 1 + z b^T (I - zA)^{-1} 1 by linear solves, point by point (not rkgen.stability's evaluation)."""
    A, b, _ = (np.array(x, dtype=float) for x in load(name).floats())
    s = len(b)
    out = np.empty(z.shape, dtype=complex)
    for k, zk in np.ndenumerate(z):
        out[k] = 1 + zk * b @ np.linalg.solve(np.eye(s) - zk * A, np.ones(s))
    return out


def _samples(p, rng, n=400):
    """n grid points of the plot inside the box's edges, chosen at random: (row, column) indices and z."""
    i, j = rng.integers(1, len(p.y) - 1, n), rng.integers(1, len(p.x) - 1, n)
    return i, j, p.x[j] + 1j * p.y[i]


def _drawn(p, z):
    """Whether the filled polygons of the plot contain the points z."""
    paths = p.region.get_paths()
    points = np.column_stack([z.real, z.imag])
    return np.any([path.contains_points(points) for path in paths], axis=0)


@pytest.mark.parametrize("name", ["rk4", "gauss2", "radau_iia2", "heun3"])
def test_stability_region_is_where_R_is_at_most_one(name):
    p = stability_plot(name, resolution=161)
    i, j, z = _samples(p, np.random.default_rng(1))
    modulus = np.abs(exact_R(name, z))
    clear = np.abs(modulus - 1) > 1e-2  # away from the boundary, where a grid of this size decides
    assert clear.sum() > 300
    assert np.array_equal(p.mask[i, j][clear], (modulus <= 1)[clear])
    far = np.abs(modulus - 1) > 0.1  # the polygons are interpolated between grid points
    assert np.array_equal(_drawn(p, z)[far], (modulus <= 1)[far])


@pytest.mark.parametrize("name", ["rk4", "radau_iia2"])
def test_order_star_is_where_R_exceeds_the_exponential(name):
    p = order_star_plot(name, resolution=161)
    i, j, z = _samples(p, np.random.default_rng(2))
    value = np.abs(exact_R(name, z) * np.exp(-z))
    clear = np.abs(np.log(value)) > 1e-2
    assert np.array_equal(p.mask[i, j][clear], (value > 1)[clear])
    far = np.abs(np.log(value)) > 0.1
    assert np.array_equal(_drawn(p, z)[far], (value > 1)[far])


@pytest.mark.parametrize("name, order", [("euler", 1), ("heun2", 2), ("rk4", 4), ("gauss2", 4), ("radau_iia2", 3)])
def test_order_star_has_p_plus_one_sectors_at_the_origin(name, order):
    p = order_star_plot(name, box=(-0.5, 0.5, -0.5, 0.5), resolution=401)
    theta = np.linspace(0, 2 * np.pi, 1440, endpoint=False) + 0.01
    inside = np.array([p.contains(0.3 * np.exp(1j * t)) for t in theta])
    assert np.count_nonzero(inside != np.roll(inside, 1)) == 2 * (order + 1)


def test_stability_interval_marked_and_in_the_default_box():
    p = stability_plot("rk4", resolution=201)
    xmin, xmax, ymin, ymax = p.box
    assert xmin < -2.785 and 0 < xmax < 1.5 and ymin == -ymax and 2.83 < ymax < 4  # the region and a margin
    assert all(p.contains(x) for x in (-2.7, -1.0, -0.05)) and not p.contains(-2.9)
    ax = p.figure.axes[0]
    assert ax.get_xlabel() == r"$\mathrm{Re}\,z$" and ax.get_ylabel() == r"$\mathrm{Im}\,z$"
    assert ax.get_aspect() == 1.0
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == [r"$|R(z)| \leq 1$", "stability interval [\N{MINUS SIGN}2.785, 0]"]
    marked = [line for line in ax.get_lines() if line.get_linewidth() > 2]
    assert np.allclose(marked[0].get_xdata(), [-2.785293, 0.0], atol=1e-5)
    unbounded = stability_plot("gauss2", resolution=101)
    labels = [t.get_text() for t in unbounded.figure.axes[0].get_legend().get_texts()]
    assert "stability interval (\N{MINUS SIGN}\N{INFINITY}, 0]" in labels and "poles of $R$" in labels
    assert default_box(load("euler")) == (-2.5, 0.5, -1.5, 1.5)


def test_box_is_used_and_checked():
    p = stability_plot("euler", box=(-3, 1, -2, 2), resolution=81)
    assert p.box == (-3.0, 1.0, -2.0, 2.0) and p.figure.axes[0].get_xlim() == (-3.0, 1.0)
    assert p.x[0] == -3 and p.x[-1] == 1 and p.y[0] == -2 and p.y[-1] == 2
    for bad, message in [
        ((1, -1, 0, 1), "XMIN must be less than XMAX"),
        ((0, 1, 2, 2), "YMIN must be less than YMAX"),
        ((float("nan"), 1, 0, 1), "must be finite"),
        ((0, float("inf"), 0, 1), "must be finite"),
        ((0, 1, 0), "four numbers"),
        ((0, 1e-12, 0, 1), "too close"),
    ]:
        with pytest.raises(RkgenError, match=message):
            check_box(bad)


# -- the command -----------------------------------------------------------------------------------------------
def test_plot_writes_png_pdf_svg(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(rkgen.plot, "RESOLUTION", 101)  # a coarser grid: the files, not the picture, are tested
    assert rkgen_main(["plot", "euler", "--stability"]) == 0
    assert capsys.readouterr().out.strip() == "wrote euler_stability.png"
    assert (tmp_path / "euler_stability.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert rkgen_main(["plot", "euler", "--order-star", "-o", "star.pdf", "--box", "-3", "1", "-2", "2"]) == 0
    assert (tmp_path / "star.pdf").read_bytes().startswith(b"%PDF-")
    assert rkgen_main(["plot", "euler", "--stability", "-o", "region.svg"]) == 0
    svg = (tmp_path / "region.svg").read_text(encoding="utf-8")
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and "<dc:date>" not in svg
    capsys.readouterr()
    # the same bytes again: left as it is; a different picture needs --force
    assert rkgen_main(["plot", "euler", "--stability", "-o", "region.svg"]) == 0
    assert capsys.readouterr().out.strip() == "unchanged region.svg"
    argv = ["plot", "euler", "--stability", "-o", "region.svg", "--box", "-3", "1", "-2", "2"]
    assert rkgen_main(argv) == 2
    assert "region.svg exists and differs; use --force" in capsys.readouterr().err
    assert rkgen_main([*argv, "--force"]) == 0
    assert capsys.readouterr().out.strip() == "overwrote region.svg"
    (tmp_path / "out").mkdir()
    assert rkgen_main(["plot", "euler", "--order-star", "-o", "out"]) == 0
    assert (tmp_path / "out" / "euler_order_star.png").is_file()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["plot", "rk5", "--stability"], "rk5: no such file, and not a built-in tableau"),
        (["plot", "euler", "--stability", "-o", "x.jpg"], "x.jpg: a figure is written as .png, .pdf or .svg"),
        (["plot", "euler", "--stability", "--box", "1", "-1", "0", "1"], "--box: XMIN must be less than XMAX"),
        (["plot", "euler", "--stability", "--box", "0", "1", "nan", "1"], "--box: the numbers must be finite"),
        (["plot", "euler", "--stability", "--box", "0", "1", "2"], "expected 4 arguments"),
        (["plot", "euler", "--stability", "--box", "0", "1", "x", "2"], "invalid float value"),
        (["plot", "euler"], "one of the arguments --stability --order-star is required"),
        (["plot", "euler", "--stability", "--order-star"], "not allowed with argument"),
    ],
)
def test_bad_input_is_one_line_exit_2(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    try:
        code = rkgen_main(argv)
    except SystemExit as exc:  # argparse's own errors, in rkgen's one-line style
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("rkgen: error: ") and err.count("\n") == 1 and message in err
    assert list(tmp_path.iterdir()) == []

"""The stability region and the order star of a tableau as drawings for the derivation: one set of polygons, two
writers (SVG for Markdown and notebooks, TikZ for LaTeX).

The polygons come from :meth:`rkgen.stability.StabilityReport.log_amplification` on a grid of the plot box
(:meth:`~rkgen.stability.StabilityReport.plot_box`), traced by contourpy (matplotlib's contouring engine);
coordinates are rounded so that the text of a drawing is deterministic. The verdicts never come from these
pictures: they are decided exactly in :mod:`rkgen.stability`.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["region_polygons", "region_svg", "region_tikz", "KINDS"]

#: What can be drawn: the stability region {|R(z)| ≤ 1} and the order star {|R(z) e^{-z}| > 1}.
KINDS = ("stability", "order-star")

def _field(report, kind: str, box, n: int):
    x0, x1, y0, y1 = box
    ny = max(3, int(round(n * (y1 - y0) / (x1 - x0))))
    x = np.linspace(x0, x1, n)
    y = np.linspace(y0, y1, ny)
    return x, y, report.log_amplification(x[None, :] + 1j * y[:, None], kind)


def _clean(points, digits: int) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for px, py in points:
        p = (round(float(px), digits) + 0.0, round(float(py), digits) + 0.0)
        if not out or p != out[-1]:
            out.append(p)
    if len(out) > 1 and out[0] == out[-1]:
        out.pop()
    return out


def region_polygons(report, kind: str = "stability", box=None, n: int = 161, digits: int = 2):
    """(filled, lines): the region as closed rings (even-odd filling) and its boundary as polylines, in the
    coordinates of the z-plane, rounded to ``digits`` decimals. ``kind``: ``"stability"`` (|R(z)| ≤ 1) or
    ``"order-star"`` (|R(z)e^{-z}| > 1)."""
    import contourpy

    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    box = box or report.plot_box()
    x, y, value = _field(report, kind, box, n)
    gen = contourpy.contour_generator(x, y, value, fill_type="OuterCode", line_type="Separate")
    lower, upper = (-61.0, 0.0) if kind == "stability" else (0.0, 61.0)  # log|R| ≤ 0, or log|R e^{-z}| > 0
    rings = []
    for points, codes in zip(*gen.filled(lower, upper), strict=True):
        starts = [i for i, c in enumerate(codes) if c == 1] + [len(codes)]
        for a, b in zip(starts, starts[1:], strict=False):
            ring = _clean(points[a:b], digits)
            if len(ring) >= 3:
                rings.append(ring)
    lines = [_clean(line, digits) for line in gen.lines(0.0)]
    return rings, [line for line in lines if len(line) >= 2]


def _ticks(lo: float, hi: float) -> list[int]:
    step = 1 if hi - lo <= 12 else 2 if hi - lo <= 24 else 5
    return [k for k in range(math.ceil(lo), math.floor(hi) + 1) if k % step == 0 and k != 0]


def _minus(k: int) -> str:
    return str(k).replace("-", "\u2212")


def region_svg(report, kind: str = "stability", box=None, width: int = 320) -> str:
    """A complete, deterministic ``<svg>`` element of the region with axes, ticks and labels."""
    box = box or report.plot_box()
    x0, x1, y0, y1 = box
    rings, lines = region_polygons(report, kind, box)
    m_left, m_bottom, m_top, m_right = 34, 30, 22, 12
    s = (width - m_left - m_right) / (x1 - x0)
    height = int(round(s * (y1 - y0))) + m_bottom + m_top

    def X(x):
        return f"{m_left + (x - x0) * s:.1f}"

    def Y(y):
        return f"{m_top + (y1 - y) * s:.1f}"

    def path(ring, close):
        head = f"M{X(ring[0][0])} {Y(ring[0][1])}"
        body = "".join(f"L{X(px)} {Y(py)}" for px, py in ring[1:])
        return head + body + ("Z" if close else "")

    fill = "#c6dbef" if kind == "stability" else "#fdd0a2"
    edge = "#08519c" if kind == "stability" else "#a63603"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="10">',
        f'<rect x="{m_left}" y="{m_top}" width="{(x1 - x0) * s:.1f}" height="{(y1 - y0) * s:.1f}" '
        'fill="white" stroke="#888" stroke-width="0.8"/>',
    ]
    if rings:
        out.append(f'<path d="{"".join(path(r, True) for r in rings)}" fill="{fill}" fill-rule="evenodd"/>')
    for line in lines:
        out.append(f'<path d="{path(line, False)}" fill="none" stroke="{edge}" stroke-width="1.2"/>')
    if x0 < 0 < x1:
        out.append(f'<line x1="{X(0)}" y1="{Y(y0)}" x2="{X(0)}" y2="{Y(y1)}" stroke="#555" stroke-width="0.6"/>')
    if y0 < 0 < y1:
        out.append(f'<line x1="{X(x0)}" y1="{Y(0)}" x2="{X(x1)}" y2="{Y(0)}" stroke="#555" stroke-width="0.6"/>')
    bottom = m_top + (y1 - y0) * s
    for k in _ticks(x0, x1):
        out.append(f'<line x1="{X(k)}" y1="{bottom:.1f}" x2="{X(k)}" y2="{bottom + 3:.1f}" stroke="#555"/>')
        out.append(f'<text x="{X(k)}" y="{bottom + 13:.1f}" text-anchor="middle">{_minus(k)}</text>')
    for k in _ticks(y0, y1):
        out.append(f'<line x1="{m_left - 3}" y1="{Y(k)}" x2="{m_left}" y2="{Y(k)}" stroke="#555"/>')
        out.append(f'<text x="{m_left - 5}" y="{float(Y(k)) + 3.5:.1f}" text-anchor="end">{_minus(k)}</text>')
    out.append(f'<text x="{m_left + (x1 - x0) * s:.1f}" y="{height - 3}" text-anchor="end">Re z</text>')
    out.append(f'<text x="{m_left}" y="{m_top - 8}" text-anchor="middle">Im z</text>')
    out.append("</svg>")
    return "\n".join(out)


def region_tikz(report, kind: str = "stability", box=None, width_cm: float = 7.0) -> str:
    """A complete ``tikzpicture`` of the region with axes, ticks and labels (TikZ's base library only)."""
    box = box or report.plot_box()
    x0, x1, y0, y1 = box
    rings, lines = region_polygons(report, kind, box)
    unit = round(width_cm / (x1 - x0), 4)

    def pts(ring):
        return " -- ".join(f"({px:g},{py:g})" for px, py in ring)

    fill = "blue!15" if kind == "stability" else "orange!30"
    edge = "blue!60!black" if kind == "stability" else "orange!60!black"
    out = [rf"\begin{{tikzpicture}}[x={unit}cm, y={unit}cm, font=\footnotesize]"]
    out.append(rf"\draw[gray] ({x0:g},{y0:g}) rectangle ({x1:g},{y1:g});")
    if rings:
        out.append(rf"\fill[{fill}, even odd rule] " + " ".join(pts(r) + " -- cycle" for r in rings) + ";")
    for line in lines:
        out.append(rf"\draw[{edge}, thick] {pts(line)};")
    if x0 < 0 < x1:
        out.append(rf"\draw[gray] (0,{y0:g}) -- (0,{y1:g});")
    if y0 < 0 < y1:
        out.append(rf"\draw[gray] ({x0:g},0) -- ({x1:g},0);")
    for k in _ticks(x0, x1):
        out.append(rf"\draw ({k},{y0:g}) -- ++(0,-0.1) node[below] {{${k}$}};")
    for k in _ticks(y0, y1):
        out.append(rf"\draw ({x0:g},{k}) -- ++(-0.1,0) node[left] {{${k}$}};")
    out.append(rf"\node[below left] at ({x1:g},{y0:g}) [yshift=-0.9em] {{$\operatorname{{Re}} z$}};")
    out.append(rf"\node[above right] at ({x0:g},{y1:g}) [xshift=-2.2em] {{$\operatorname{{Im}} z$}};")
    out.append(r"\end{tikzpicture}")
    return "\n".join(out)

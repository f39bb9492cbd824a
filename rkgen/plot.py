"""Pictures of a method's linear stability: the stability region and the order star (matplotlib, Agg).

For the test equation y' = λy a step of the method multiplies y by R(z), z = hλ, where R is the stability function
of :mod:`rkgen.stability` (exact; here evaluated from its float coefficients on a grid).  Two sets of the complex
plane tell its story:

- the **stability region** {z : |R(z)| ≤ 1}, where steps do not grow; its part on the negative real axis, the real
  stability interval, is marked, and the method is A-stable when the region holds the left half-plane;
- the **order star** {z : |R(z) e^{-z}| > 1} (Wanner, Hairer and Nørsett 1978), where a step grows more than the
  exact solution; p + 1 of its sectors meet at the origin for a method of order p, and the poles and zeros of R
  (marked) lie in and beside it.

Both are drawn on a ``matplotlib.figure.Figure`` (pyplot and its global state are not used, as in
:mod:`rkgen.train.plots`): the set shaded between the contour lines of the grid, its boundary drawn, the axes
labelled Re z and Im z, equal aspect.  The box is chosen from the method unless given: the boundary of the stability
region (the boundary locus, roots of P(z) − e^{iθ} Q(z)), the poles and zeros, the stability interval, the origin.
A :class:`Plot` keeps the grid and the boolean ``mask`` of the shaded set at its points beside the figure, and
saves itself as PNG, PDF or SVG, byte for byte the same each time (no dates, fixed SVG ids).

>>> from rkgen import load
>>> p = stability_plot(load("euler"), box=(-2.5, 0.5, -1.5, 1.5), resolution=61)
>>> p.box, p.mask.shape
((-2.5, 0.5, -1.5, 1.5), (61, 61))
>>> bool(p.contains(-1.0)), bool(p.contains(0.5j)), bool(p.contains(-2.2))   # |1 + z| <= 1
(True, False, False)
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import RkgenError
from .fileio import check_target, write_bytes_atomic
from .tableau import Tableau, load

__all__ = [
    "Plot",
    "FORMATS",
    "KINDS",
    "check_box",
    "default_box",
    "stability_plot",
    "order_star_plot",
    "plot",
    "figure_bytes",
    "suffix_format",
    "write_plot",
]

#: The file formats a plot is written in, by suffix.
FORMATS = ("png", "pdf", "svg")
#: The two pictures: the stability region and the order star.
KINDS = ("stability", "order-star")
#: Grid points along the longer side of the box.
RESOLUTION = 601

FILL = "#9ecae1"  # the shaded set (light blue)
EDGE = "#08306b"  # its boundary
INTERVAL = "#d55e00"  # the real stability interval (Okabe-Ito vermillion)
MARK = "#000000"
LABEL_SIZE = 10
TICK_SIZE = 9
LEGEND_SIZE = 8.5
TITLE_SIZE = 10.5
PNG_DPI = 200
#: A PNG shown in a notebook: about 500 pixels wide.
SCREEN_DPI = 100
MINUS = "\N{MINUS SIGN}"


@dataclass
class Plot:
    """A drawn picture: the figure, the box, the grid and the shaded set at the grid points.

    ``mask[i, j]`` is whether the point ``x[j] + 1j * y[i]`` belongs to the shaded set (|R| ≤ 1 for the stability
    region, |R e^{-z}| > 1 for the order star); ``region`` is the filled contour set drawn from the same grid."""

    kind: str
    tableau: Tableau
    figure: object
    box: tuple[float, float, float, float]
    x: np.ndarray
    y: np.ndarray
    mask: np.ndarray
    region: object = field(repr=False, default=None)

    def contains(self, z: complex) -> bool:
        """Whether the grid point nearest to ``z`` is in the shaded set."""
        z = complex(z)
        j, i = int(np.argmin(np.abs(self.x - z.real))), int(np.argmin(np.abs(self.y - z.imag)))
        return bool(self.mask[i, j])

    def to_bytes(self, fmt: str, dpi: float = PNG_DPI) -> bytes:
        """The figure as PNG (at ``dpi``), PDF or SVG, the same bytes every time (see :func:`figure_bytes`)."""
        return figure_bytes(self.figure, fmt, dpi)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the figure to ``path`` (.png, .pdf or .svg) atomically; returns the path."""
        path = Path(path)
        write_bytes_atomic(path, self.to_bytes(suffix_format(path)))
        return path

    def _repr_png_(self) -> bytes:  # Jupyter shows a Plot as its PNG
        return self.to_bytes("png", SCREEN_DPI)


def suffix_format(path: str | os.PathLike) -> str:
    """The format of a figure file from its suffix, or a one-line error.

    >>> suffix_format("region.PDF"), suffix_format("x/star.svg")
    ('pdf', 'svg')
    >>> suffix_format("region.jpg")
    Traceback (most recent call last):
    ...
    rkgen.errors.RkgenError: region.jpg: a figure is written as .png, .pdf or .svg
    """
    fmt = Path(path).suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise RkgenError(f"{os.fspath(path)}: a figure is written as .png, .pdf or .svg")
    return fmt


def figure_bytes(fig, fmt: str, dpi: float = PNG_DPI) -> bytes:
    """``fig`` saved as PNG, PDF or SVG into memory, reproducibly: no creation date, SVG ids from a fixed salt."""
    import matplotlib

    if fmt not in FORMATS:
        raise RkgenError(f"unknown figure format {fmt!r}; choose one of {', '.join(FORMATS)}")
    metadata = {"png": {"Software": None}, "pdf": {"CreationDate": None, "Producer": None}, "svg": {"Date": None}}
    buf = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "rkgen", "svg.fonttype": "path", "pdf.fonttype": 42}):
        fig.savefig(buf, format=fmt, dpi=dpi if fmt == "png" else None, metadata=metadata[fmt])
    return buf.getvalue()


# -- the box -----------------------------------------------------------------------------------------------------
def check_box(box) -> tuple[float, float, float, float]:
    """(xmin, xmax, ymin, ymax) as finite floats with xmin < xmax and ymin < ymax, or a one-line error.

    >>> check_box([-3, 1, -2, 2])
    (-3.0, 1.0, -2.0, 2.0)
    >>> check_box([1, -1, -2, 2])
    Traceback (most recent call last):
    ...
    rkgen.errors.RkgenError: --box: XMIN must be less than XMAX (got 1 and -1)
    """
    try:
        values = tuple(float(v) for v in box)
    except (TypeError, ValueError):
        raise RkgenError("--box takes four numbers: XMIN XMAX YMIN YMAX") from None
    if len(values) != 4:
        raise RkgenError(f"--box takes four numbers, XMIN XMAX YMIN YMAX (got {len(values)})")
    if not all(math.isfinite(v) for v in values):
        raise RkgenError("--box: the numbers must be finite")
    xmin, xmax, ymin, ymax = values
    for lo, hi, a, b in ((xmin, xmax, "XMIN", "XMAX"), (ymin, ymax, "YMIN", "YMAX")):
        if not lo < hi:
            raise RkgenError(f"--box: {a} must be less than {b} (got {lo:g} and {hi:g})")
        if hi - lo < 1e-9 * max(1.0, abs(lo), abs(hi)):
            raise RkgenError(f"--box: {a} and {b} are too close to draw between (got {lo:g} and {hi:g})")
    return values


def _left(report) -> float:
    return float(report.interval.left)


def default_box(tableau: Tableau, kind: str = "stability") -> tuple[float, float, float, float]:
    """The window that shows the picture of ``tableau``: :meth:`rkgen.stability.StabilityReport.plot_box` (the
    boundary locus, poles, zeros, the interval and the origin), the same window the derivation draws.

    >>> default_box(load("euler"))
    (-2.5, 0.5, -1.5, 1.5)
    """
    return tableau.stability.plot_box(kind)


# -- the pictures ---------------------------------------------------------------------------------------------------
def _grid(box, resolution: int | None):
    resolution = RESOLUTION if resolution is None else int(resolution)
    xmin, xmax, ymin, ymax = box
    width, height = xmax - xmin, ymax - ymin
    nx = max(int(round(resolution * min(1.0, width / height))), 16)
    ny = max(int(round(resolution * min(1.0, height / width))), 16)
    x, y = np.linspace(xmin, xmax, nx), np.linspace(ymin, ymax, ny)
    return x, y, x[None, :] + 1j * y[:, None]


def _figure(box):
    from matplotlib.figure import Figure

    xmin, xmax, ymin, ymax = box
    aspect = (ymax - ymin) / (xmax - xmin)
    width = 5.0
    height = float(np.clip((width - 0.9) * aspect, 2.0, 5.6)) + 1.0  # the axes, and the title and labels
    fig = Figure(figsize=(width, height), layout="constrained")
    ax = fig.add_subplot()
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(ymin, ymax)
    ax.set_aspect("equal")
    ax.axhline(0.0, color="0.55", lw=0.6, zorder=1)
    ax.axvline(0.0, color="0.55", lw=0.6, zorder=1)
    ax.set_xlabel(r"$\mathrm{Re}\,z$", fontsize=LABEL_SIZE)
    ax.set_ylabel(r"$\mathrm{Im}\,z$", fontsize=LABEL_SIZE)
    ax.tick_params(labelsize=TICK_SIZE)
    return fig, ax


def _shade(ax, X, Y, values, level: float, below: bool):
    """Shade where ``values`` ≤ level (``below``) or > level, and draw the level line; the filled contour set."""
    lo, hi = -61.0, 61.0
    levels = [lo, level] if below else [level, hi]
    region = ax.contourf(X, Y, values, levels=levels, colors=[FILL], zorder=0)
    ax.contour(X, Y, values, levels=[level], colors=[EDGE], linewidths=1.1, zorder=2)
    return region


def _inside(points, box) -> list[complex]:
    xmin, xmax, ymin, ymax = box
    return [complex(v) for v in points if xmin <= v.real <= xmax and ymin <= v.imag <= ymax]


def _mark(ax, points: list[complex], marker: str, face: str, label: str):
    """Mark ``points`` (poles ×, zeros ○); the legend's handle."""
    from matplotlib.lines import Line2D

    style = dict(ls="none", marker=marker, ms=6, mew=1.3, color=MARK, markerfacecolor=face)
    ax.plot([v.real for v in points], [v.imag for v in points], zorder=4, **style)
    return Line2D([], [], label=label, **style)


def _title(tableau: Tableau, what: str) -> str:
    name = tableau.name if len(tableau.name) <= 40 else tableau.name[:39] + "\N{HORIZONTAL ELLIPSIS}"
    return f"{name.replace('$', chr(92) + '$')}: {what}"


def _number(x: float) -> str:
    return f"{x:.4g}".replace("-", MINUS)


def stability_plot(tableau: Tableau | str, box=None, resolution: int | None = None) -> Plot:
    """The stability region {z : |R(z)| ≤ 1} of a tableau, shaded, with its boundary and real stability interval."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    t = tableau if isinstance(tableau, Tableau) else load(tableau)
    report = t.stability
    box = default_box(t, "stability") if box is None else check_box(box)
    x, y, Z = _grid(box, resolution)
    values = report.log_amplification(Z, "stability")
    fig, ax = _figure(box)
    X, Y = np.meshgrid(x, y)
    region = _shade(ax, X, Y, values, 0.0, below=True)
    handles = [Patch(facecolor=FILL, edgecolor=EDGE, label=r"$|R(z)| \leq 1$")]
    left = _left(report)
    xmin, xmax = box[0], box[1]
    if left < 0 and xmin < 0 and xmax > max(left, xmin):
        a, b = max(left, xmin), min(0.0, xmax)
        shown = f"[{_number(left)}, 0]" if math.isfinite(left) else f"({MINUS}\N{INFINITY}, 0]"
        ax.plot([a, b], [0.0, 0.0], color=INTERVAL, lw=2.6, solid_capstyle="butt", zorder=3)
        ends = [v for v in (left, 0.0) if xmin <= v <= xmax]
        ax.plot(ends, [0.0] * len(ends), ls="none", marker="|", ms=9, mew=1.6, color=INTERVAL, zorder=3)
        handles.append(Line2D([], [], color=INTERVAL, lw=2.6, label=f"stability interval {shown}"))
    poles = _inside(report.poles(), box)
    if poles:
        handles.append(_mark(ax, poles, "x", MARK, "poles of $R$"))
    notes = [w for w, flag in (("A-stable", report.a_stable), ("L-stable", report.l_stable)) if flag]
    what = "stability region" + (f" ({', '.join(notes)})" if notes else "")
    ax.set_title(_title(t, what), fontsize=TITLE_SIZE)
    ax.legend(handles=handles, loc="upper left", fontsize=LEGEND_SIZE, framealpha=0.9)
    return Plot("stability", t, fig, box, x, y, values <= 0.0, region)


def order_star_plot(tableau: Tableau | str, box=None, resolution: int | None = None) -> Plot:
    """The order star {z : |R(z) e^{-z}| > 1} of a tableau, shaded, with the poles (×) and zeros (○) of R."""
    from matplotlib.patches import Patch

    t = tableau if isinstance(tableau, Tableau) else load(tableau)
    report = t.stability
    box = default_box(t, "order-star") if box is None else check_box(box)
    x, y, Z = _grid(box, resolution)
    values = report.log_amplification(Z, "order-star")  # log|R(z) e^{-z}|
    fig, ax = _figure(box)
    X, Y = np.meshgrid(x, y)
    region = _shade(ax, X, Y, values, 0.0, below=False)
    handles = [Patch(facecolor=FILL, edgecolor=EDGE, label=r"$|R(z)\,e^{-z}| > 1$")]
    for roots, marker, face, label in (
        (report.poles(), "x", MARK, "poles of $R$"),
        (report.zeros(), "o", "white", "zeros of $R$"),
    ):
        inside = _inside(roots, box)
        if inside:
            handles.append(_mark(ax, inside, marker, face, label))
    ax.set_title(_title(t, "order star"), fontsize=TITLE_SIZE)
    ax.legend(handles=handles, loc="upper left", fontsize=LEGEND_SIZE, framealpha=0.9)
    return Plot("order-star", t, fig, box, x, y, values > 0.0, region)


def plot(tableau: Tableau | str, kind: str = "stability", box=None, resolution: int | None = None) -> Plot:
    """The picture ``kind`` (``"stability"`` or ``"order-star"``) of a tableau."""
    if kind == "stability":
        return stability_plot(tableau, box, resolution)
    if kind == "order-star":
        return order_star_plot(tableau, box, resolution)
    raise RkgenError(f"unknown plot {kind!r}; choose one of {', '.join(KINDS)}")


def write_plot(p: Plot, target: str | os.PathLike, force: bool = False) -> str:
    """Write ``p`` to ``target`` (its suffix gives the format): "wrote", "unchanged" (the file holds these bytes
    already) or "overwrote" (with ``force``); an existing different file without ``force`` is an error."""
    target = Path(target)
    data = p.to_bytes(suffix_format(target))
    if check_target(target) is None:
        write_bytes_atomic(target, data)
        return "wrote"
    try:
        if target.read_bytes() == data:
            return "unchanged"
    except OSError:
        pass
    if not force:
        raise RkgenError(f"{target} exists and differs; use --force to overwrite it")
    write_bytes_atomic(target, data)
    return "overwrote"

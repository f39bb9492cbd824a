"""``rkgen compare-adjoints``: the two roads to the gradient, measured for one tableau (:mod:`rkgen.compare`).

rkgen/cli.py hooks it in as a subcommand through ``add_arguments(parser)`` and ``run(args)``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from rkgen.errors import RkgenError

DESCRIPTION = """\
Compare four gradients of one small random network whose N layers share their parameters
theta = (K, beta), f(y) = tanh(K y + beta), step h = T/N, cost J = sum W * y_N:

  (a) the exact gradient of the discrete J (the backward stages: the symplectic partner's gradient);
  (b) "optimise, then discretise": the continuous adjoint lambda' = -f_y^T lambda integrated backwards
      with the same tableau, y recomputed backwards from y_N (the neural-ODE adjoint);
  (c) the partner form with the misprinted conditions (19) (a_ij untransposed);
  (d) central finite differences of the discrete J (at the smallest N);

and (a) against the continuous gradient (5-stage Gauss, order 10, on a fine grid). For each N the
table shows the max-norm of the gradient differences relative to the continuous gradient's; the
orders q (error ~ N^-q) are least-squares slopes in log-log over the points above rounding, beside
what theory predicts (Hager 2000; Sanz-Serna, SIAM Review 58(1), 2016) and why.

examples:
  rkgen compare-adjoints rk4                        table and slopes
  rkgen compare-adjoints midpoint -o midpoint.pdf   and the log-log plot (.png, .pdf or .svg)
  rkgen compare-adjoints euler --layers 8 16 32 64 --final-time 2 --seed 3 --json
"""

FIGURE_SUFFIXES = (".png", ".pdf", ".svg")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("tableau", metavar="TABLEAU", help="a JSON file or a built-in name (see 'rkgen list')")
    parser.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write the log-log plot here: .png, .pdf or .svg (replaced atomically)",
    )
    parser.add_argument(
        "--layers",
        type=int,
        nargs="+",
        metavar="N",
        help="the layer counts (at least two; default 4 8 16 32 64 128)",
    )
    parser.add_argument("--final-time", type=float, metavar="T", help="the final time T: h = T/N (default 1)")
    parser.add_argument("--seed", type=int, metavar="S", help="the seed of the random network (default 1806)")
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object (the data, the fitted and predicted orders)"
    )


def _sci(x: float | None) -> str:
    return "-" if x is None else f"{x:.2e}"


def format_table(r) -> str:
    """The errors per N, then the fitted orders beside theory's, as text."""
    from rkgen.compare import FIT_POINTS, KEYS, LABELS

    lines = [
        f"compare-adjoints {r.tableau} ({r.structure}, order {r.order}): {r.samples} samples of width {r.width}, "
        f"T = {r.final_time:g}, seed {r.seed}, f(y) = tanh(K y + beta) with K, beta shared by the layers",
        "errors: max |difference| over the gradient in (y0, K, beta), relative to max |continuous gradient| "
        f"= {r.scale:.3g}",
        "",
    ]
    widths = [max(len(LABELS[k]), 10) for k in KEYS]
    lines.append(f"{'N':>6}  " + "  ".join(f"{LABELS[k]:>{w}}" for k, w in zip(KEYS, widths, strict=True)))
    for row, N in enumerate(r.layers):
        cells = [f"{_sci(r.errors[k][row]):>{w}}" for k, w in zip(KEYS, widths, strict=True)]
        lines.append(f"{N:>6}  " + "  ".join(cells))
    lines.append("")
    lines.append(
        f"orders q (error ~ N^-q; least squares in log-log over the {FIT_POINTS} largest N with errors above the "
        "floor):"
    )
    for k in KEYS:
        fit, th, ok = r.fits[k], r.theory[k], r.agrees(k)
        if not th.defined:
            measured = "-"
        elif th.coincides:
            top = max((e for e in r.errors[k] if e is not None), default=0.0)
            measured = "identical (0)" if top == 0 else f"largest {top:.1e} (floor {r.floors[k]:.0e})"
        elif fit.order is None:
            measured = f"not measurable ({fit.points} point{'' if fit.points == 1 else 's'} above {r.floors[k]:.0e})"
        else:
            measured = f"{fit.order:.2f} ({fit.points} points)"
        verdict = {True: "agrees", False: "DIFFERS", None: ""}[ok]
        if r.approaching(k):
            local = ", ".join(f"{x:.2f}" for x in r.local_orders(k))
            verdict = f"approaching (orders between neighbouring N: {local})"
        if th.coincides:
            expected = "coincide"
        elif not th.defined:
            expected = "undefined"
        else:
            expected = ("at least " if th.at_least else "") + str(th.order)
        lines.append(f"  {LABELS[k]}: measured {measured}; theory {expected}  {verdict}".rstrip())
        lines.append(f"      {th.reason}")
    if r.fd_error is not None:
        lines.append(
            f"(d) central differences (step {r.fd_step:.0e}) at N = {r.fd_layers}: max |(d) - (a)| = "
            f"{r.fd_error:.1e} relative: (a) is the exact gradient of the discrete J"
        )
    lines.append(f"the continuous reference's own error (against half its steps): {r.reference_error:.1e} relative")
    return "\n".join(lines)


def figure(r):
    """The log-log plot: the errors of (b) and (c) against (a), and of (a) against the continuous gradient, over
    N, each labelled with its fitted order and theory's; the rounding floor shaded."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    from rkgen.compare import KEYS, LABELS
    from rkgen.train import plots

    fig = Figure(figsize=(5.6, 5.0), layout="constrained")
    ax = fig.add_subplot()
    styles = {"b": ("#0072B2", "o", "-"), "c": ("#D55E00", "s", "--"), "a": ("#009E73", "^", "-.")}
    handles = []
    n = list(r.layers)
    for k in KEYS:
        color, marker, ls = styles[k]
        th, fit = r.theory[k], r.fits[k]
        if th.coincides:
            zero = all(e == 0 for e in r.errors[k])
            tail = "identical to (a): differences 0" if zero else "at rounding: coincide (theory)"
        elif not th.defined:
            tail = "undefined (a zero weight)"
        else:
            measured = "n/a" if fit.order is None else f"{fit.order:.2f}"
            tail = f"order {measured} (theory {'>= ' if th.at_least else ''}{th.order})"
        pts = [(x, e) for x, e in zip(n, r.errors[k], strict=True) if e is not None and e > 0]
        if pts:
            ax.plot(*zip(*pts, strict=True), ls=ls, marker=marker, color=color, markersize=4.5, lw=1.3)
        handles.append(Line2D([], [], ls=ls, marker=marker, color=color, markersize=4.5, label=f"{LABELS[k]}: {tail}"))
        if fit.order is not None and not th.coincides:  # the fitted line, over the fitted points
            used = [(x, e) for x, e in pts if e > r.floors[k]][-fit.points :]
            x0, e0 = used[-1]
            xs = [used[0][0], x0]
            ax.plot(xs, [e0 * (x / x0) ** -fit.order for x in xs], ":", color=color, lw=0.9)
    floor = r.floors["b"]
    ax.axhspan(1e-17, floor, color="#999999", alpha=0.15, lw=0)
    handles.append(Line2D([], [], color="#999999", alpha=0.4, lw=6, label=f"rounding (below {floor:.0e})"))
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(n, [str(x) for x in n])
    ax.minorticks_off()
    ys = [e for k in KEYS for e in r.errors[k] if e is not None and e > 0] + [floor]
    ax.set_ylim(max(1e-17, min(ys) / 10), max(ys) * 10)
    ax.set_xlabel(f"layers $N$ (step $h = T/N$, $T = {r.final_time:g}$)")
    ax.set_ylabel(r"relative error $\|g - g_{\mathrm{ref}}\|_\infty / \|g_{\mathrm{cont}}\|_\infty$")
    ax.grid(True, which="major", alpha=0.3)
    handles.append(Line2D([], [], ls=":", color="#555555", lw=0.9, label="least-squares fit"))
    fig.legend(handles=handles, fontsize=plots.LEGEND_SIZE - 0.5, loc="outside lower center", ncols=1, frameon=False)
    plots._style(ax, f"two roads to the gradient: {r.tableau} (order {r.order})")
    return fig


def run(args: argparse.Namespace) -> int:
    from rkgen.compare import DEFAULT_LAYERS, DEFAULT_SEED, DEFAULT_TIME, compare

    out = Path(args.output) if args.output else None
    if out is not None and out.suffix.lower() not in FIGURE_SUFFIXES:
        raise RkgenError(f"-o {args.output}: the plot is written as .png, .pdf or .svg; name the file so")
    final_time = DEFAULT_TIME if args.final_time is None else args.final_time
    if not math.isfinite(final_time):
        raise RkgenError("--final-time must be a number in (0, 100]")
    result = compare(
        args.tableau,
        layers=args.layers or DEFAULT_LAYERS,
        final_time=final_time,
        seed=DEFAULT_SEED if args.seed is None else args.seed,
    )
    if out is not None:
        from rkgen.fileio import save_figure

        save_figure(figure(result), out, dpi=150 if out.suffix.lower() == ".png" else None)
    if args.json:
        data = result.to_dict()
        if out is not None:
            data["plot"] = str(out)
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        print(format_table(result))
        if out is not None:
            print(f"wrote {out}")
    return 0


def main(argv=None) -> int:
    from rkgen.train.cli import standalone

    return standalone("rkgen compare-adjoints", DESCRIPTION, add_arguments, run, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

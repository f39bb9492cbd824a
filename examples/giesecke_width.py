"""Giesecke and Kröner (004), Figs. 3 and 4: RK4Net of width 2 (a neural ODE in the input plane)
against width 3 (one added dimension, an augmented neural ODE) on donut2d and squares.

Setting of 004's code (configs/experiments/width.json, NN.py): donut_2D and squares with 1500
training and 1500 validation points; RK4Net with 100 layers of the fixed step h = 0.05 (T = 5);
width 2 and 3 with the inputs padded with zeros (fill_zeros: true in this config; rkgen --augment
zeros); tanh; softmax with cross-entropy; Adam at learning rate 1e-3 with mini-batches of 5; 80
epochs; four repetitions. 004 shows pictures and no accuracies; it finds the accuracy at width 2
"always limited" and improved "significantly" at width 3. rkgen runs all epochs (004's code stops
early when the validation cost rises; the epoch where it would stop is reported).

    python examples/giesecke_width.py           # 2 sets x 2 widths x 4 repetitions x 80 epochs (about 8 min)
    python examples/giesecke_width.py --quick   # 1 repetition, 500/500 points, 20 epochs (about 1 min)

Figures: fig3_donut2d and fig4_squares, one row per width: the trajectories of 50 validation points
through the layers (small dot: start, large dot: end), their final features with the linear
classifier, and the prediction on the input plane. Verdicts: width 3 ahead of width 2 by more than
the tolerance, two standard errors of the mean paired difference (a repetition's seed draws the same
data for both widths) and at least 1 point; and width 3 reaching its final accuracy (within 1 point) in fewer epochs.
"""

from __future__ import annotations

import time

import _common
import _giesecke as g
import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from mpl_toolkits.mplot3d.art3d import Line3DCollection

from rkgen.train import plots

SETS = (("donut2d", "fig3"), ("squares", "fig4"))
WIDTHS = (2, 3)


def main(argv=None) -> int:
    p = _common.parser(__doc__, "one repetition, 500/500 points, 20 epochs")
    p.add_argument("--repetitions", type=int, help="repetitions (default 4, quick 1)")
    p.add_argument("--epochs", type=int, help="epochs (default 80, quick 20)")
    p.add_argument("--samples", type=int, help="training and validation points each (default 1500, quick 500)")
    p.add_argument("--layers", type=int, default=100, help="layers (default 100)")
    args = p.parse_args(argv)
    reps = args.repetitions or (1 if args.quick else 4)
    epochs = args.epochs or (20 if args.quick else 80)
    samples = args.samples or (500 if args.quick else 1500)
    out = _common.out_dir("giesecke-width", args.out)
    results = _common.Results(out / "results.csv", ["set", "width", "repetition", *g.COLUMNS, "reached", "status"])
    t0 = time.perf_counter()
    keep = {}
    for rep in range(reps):
        for name, _ in SETS:
            for width in WIDTHS:
                print(f"RK4Net, {name}, width {width}, repetition {rep + 1}/{reps}", flush=True)
                res, row = g.run(
                    "RK4Net",
                    args.seed + rep,
                    out / f"{name}-w{width}-rep{rep + 1}",
                    args.progress,
                    dataset=name,
                    samples=samples,
                    test_samples=samples,
                    layers=args.layers,
                    width=width,
                    epochs=epochs,
                    augment="zeros",
                )
                h = res.history
                reached = g.reached_epoch(h["epoch"], h["test_accuracy"])
                results.add(set=name, width=width, repetition=rep + 1, **row, reached=reached, status=res.status)
                if rep == 0:
                    keep[(name, width)] = res
    figures(out, keep, args.seed)
    setting = dict(reps=reps, epochs=epochs, samples=samples, layers=args.layers)
    _common.report(out, summary(results.rows, setting, time.perf_counter() - t0))
    return 0


def draw_trajectories(ax, states, c, n_classes):
    """Feature trajectories (layers, points, 2 or 3 coordinates): a thin line per point (one line
    collection), a small dot where it starts, a large dot where it ends."""
    cols = plots.class_colors(n_classes)
    three = states.shape[2] == 3
    paths = np.transpose(states, (1, 0, 2))  # (points, layers, coordinates)
    colors = [cols[k] for k in c]
    if three:
        ax.add_collection3d(Line3DCollection(paths, colors=colors, linewidths=0.6, alpha=0.7))
    else:
        ax.add_collection(LineCollection(paths, colors=colors, linewidths=0.6, alpha=0.7))
    for j, size in ((0, 4), (-1, 22)):
        pts = [states[j, :, m] for m in range(states.shape[2])]
        ax.scatter(*pts, s=size, c=colors, edgecolors="k" if j else "none", linewidths=0.3, zorder=3)
    ax.autoscale()
    names = ("$y_1$", "$y_2$", "$y_3$")
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    if three:
        lo, hi = paths.reshape(-1, 3).min(axis=0), paths.reshape(-1, 3).max(axis=0)
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
        ax.set_zlim(lo[2], hi[2])
        ax.set_zlabel(names[2])


def figures(out, keep, seed):
    rng = np.random.default_rng(seed)
    for name, fig_name in SETS:
        runs = [(w, keep[(name, w)]) for w in WIDTHS if (name, w) in keep]
        if not runs:
            continue
        fig = Figure(figsize=(13, 4.2 * len(runs)), layout="constrained")
        for i, (w, r) in enumerate(runs):
            ds = r.dataset
            pick = rng.choice(len(ds.x_test), size=min(50, len(ds.x_test)), replace=False)
            states = r.model.states(r.flat, ds.x_test[pick])
            ax = fig.add_subplot(len(runs), 3, 3 * i + 1, projection="3d" if w == 3 else None)
            draw_trajectories(ax, states, ds.c_test[pick], ds.n_classes)
            ax.set_title(f"width {w}: trajectories of 50 points", fontsize=10)
            y = r.model.forward(r.flat, ds.x_test).y_final
            if w == 3:
                plots.draw_features_3d(
                    fig.add_subplot(len(runs), 3, 3 * i + 2, projection="3d"),
                    y,
                    ds.c_test,
                    ds.n_classes,
                    title=f"width {w}: features $y_N$",
                )
            else:
                plots.draw_features(
                    fig.add_subplot(len(runs), 3, 3 * i + 2),
                    r.model,
                    r.flat,
                    y,
                    ds.c_test,
                    title=f"width {w}: features $y_N$, classifier",
                    colorbar=False,
                )
            plots.draw_prediction(
                fig.add_subplot(len(runs), 3, 3 * i + 3),
                r.model,
                r.flat,
                ds,
                title=f"width {w}: prediction ({100 * r.final('test_accuracy'):.1f}% validation)",
                colorbar=False,
            )
        plots.class_legend(fig, 2, loc="outside lower center", ncol=2)
        fig.suptitle(
            f"004 {fig_name.replace('fig', 'Fig. ')}: {name}, RK4Net, L = {runs[0][1].model.N}, "
            "validation points (prediction: training points)"
        )
        plots.save(fig, out / f"{fig_name}_{name}")


def summary(rows, s, total) -> str:
    lines = [
        f"004 Figs. 3-4: RK4Net, L = {s['layers']} (h = 0.05), inputs padded with zeros, tanh, cross-entropy, "
        f"Adam lr 1e-3 batch 5, {s['epochs']} epochs, {s['samples']}/{s['samples']} points, {s['reps']} "
        f"repetition(s); {total:.0f} s in all",
        "",
        "accuracy %, train / validation (mean over repetitions); 004 gives pictures, no numbers; reached: the "
        "first epoch at which the validation accuracy comes within 1 point of its final value, per repetition",
    ]
    body, checks = [], []
    for name, _ in SETS:
        for w in WIDTHS:
            m = dict(set=name, width=w)
            stops = g.values_of(rows, "stop_004", **m)
            body.append(
                [
                    name,
                    w,
                    f"{100 * g.mean_of(rows, 'train_accuracy', **m):.2f} / "
                    f"{100 * g.mean_of(rows, 'test_accuracy', **m):.2f}",
                    " ".join(f"{100 * v:.1f}" for v in g.values_of(rows, "test_accuracy", **m)),
                    " ".join(str(int(x)) for x in stops),
                    f"{100 * g.mean_of(rows, 'test_accuracy_004stop', **m):.2f}",
                    " ".join(str(int(x)) for x in g.values_of(rows, "reached", **m)),
                    f"{g.mean_of(rows, 'seconds_per_epoch', **m):.2f}",
                ]
            )
        a2 = np.array([100 * v for v in g.values_of(rows, "test_accuracy", set=name, width=2)])
        a3 = np.array([100 * v for v in g.values_of(rows, "test_accuracy", set=name, width=3)])
        # paired by repetition (the same seed draws the same data for both widths): the mean difference
        # against two standard errors of it, at least 1 point
        d = a3 - a2
        tol = max(1.0, 2.0 * float(d.std(ddof=1)) / np.sqrt(len(d))) if len(d) > 1 else 1.0
        checks.append(
            [
                f"{name}: width 3 better than width 2 (paired, by more than {tol:.1f} points)",
                f"{a2.mean():.1f}% -> {a3.mean():.1f}% ({d.mean():+.1f}; {int((d > 0).sum())} of {len(d)} pairs)",
                "agrees" if d.mean() > tol else "close" if d.mean() > 0 else "differs",
            ]
        )
        e2, e3 = (g.mean_of(rows, "reached", set=name, width=w) for w in WIDTHS)
        checks.append(
            [
                f"{name}: width 3 simpler to learn (reaches its final accuracy in fewer epochs)",
                f"epoch {e2:.0f} -> {e3:.0f}",
                "agrees" if e3 < e2 else "differs",
            ]
        )
    head = ["set", "width", "acc train / val", "val per rep.", "004 stop", "val at stop", "reached", "s/epoch"]
    lines.append(_common.table(head, body))
    lines += ["", "004's findings beside rkgen's:", _common.table(["004 reports", "rkgen", ""], checks)]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())

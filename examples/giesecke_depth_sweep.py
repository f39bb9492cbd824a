"""Giesecke and Kröner (004), Tables 1 and 2: a depth sweep on spiral, StandardNet against RK4Net;
with --width 3, the remark of its section 4.2 on a width of 3.

Setting of 004's code (configs/experiments/depth.json, NN.py, optimization.py): spiral with 1500
training and 1500 validation points; the inputs enter the width 16 through a fixed random bias-free
linear map (fill_zeros: false; rkgen --augment random, the default here; --augment zeros pads with
zeros instead); tanh; softmax with cross-entropy on two outputs; Adam at learning rate 1e-3 with
mini-batches of 5; 40 epochs; four repetitions; RK4Net takes the fixed step h = 0.05 per layer (so
T = 0.05 L grows with the depth). 004's code stops early when the validation cost rises (by more
than 0.05 over five epochs); rkgen runs all 40 epochs and reports also the values at the epoch where
004's rule would have stopped.

    python examples/giesecke_depth_sweep.py            # depths 1 3 5 10 20 40 100, 4 repetitions (11 min)
    python examples/giesecke_depth_sweep.py --quick    # depths 1 5 20, 1 repetition, 10 epochs (about 1 min)
    python examples/giesecke_depth_sweep.py --width 3  # 004 section 4.2 on width 3 (no table in 004)

Each run is written as soon as it ends (results.csv and its run folder). Figures: depth (mean
accuracy against depth, train solid, validation dashed, 004's dotted), features_L20 (PCA of y_N,
004 Fig. 5). Verdicts: rkgen's mean beside 004's with a tolerance of two standard errors of the
difference (from the spread of rkgen's repetitions), at least 1 point of accuracy and 0.1 of cost x
10; agrees within it, close within twice, differs beyond.
"""

from __future__ import annotations

import time

import _common
import _giesecke as g
from matplotlib.figure import Figure

from rkgen.train import plots

DEPTHS = (1, 3, 5, 10, 20, 40, 100)
# 004 Table 1 (accuracy %, mean of four repetitions) and Table 2 (cost x 1e-1): train, validation
PAPER_ACC = {
    "StandardNet": (
        (92.73, 92.87, 98.12, 97.52, 67.62, 51.08, 50.67),
        (91.88, 92.50, 98.10, 97.45, 66.87, 48.92, 49.33),
    ),
    "RK4Net": (
        (75.60, 91.42, 97.90, 99.77, 99.93, 99.73, 99.95),
        (75.12, 90.68, 97.33, 99.47, 99.70, 99.50, 99.75),
    ),
}
PAPER_COST = {
    "StandardNet": (
        (2.23, 1.38, 0.66, 0.77, 6.09, 6.93, 6.93),
        (2.33, 1.53, 0.67, 0.77, 6.13, 6.94, 6.93),
    ),
    "RK4Net": (
        (4.32, 2.68, 0.98, 0.16, 0.04, 0.10, 0.01),
        (4.39, 2.69, 1.06, 0.28, 0.13, 0.12, 0.12),
    ),
}
NETS = ("StandardNet", "RK4Net")
ACC_FLOOR, COST_FLOOR = 1.0, 0.1  # least tolerances: accuracy points, cost x 10


def main(argv=None) -> int:
    p = _common.parser(__doc__, "depths 1 5 20 (width 3: 5 20 40), one repetition, 10 epochs")
    p.add_argument("--depths", type=int, nargs="+", help="depths to run (default: 004's)")
    p.add_argument("--repetitions", type=int, help="repetitions (default 4, quick 1)")
    p.add_argument("--epochs", type=int, help="epochs (default 40, quick 10)")
    p.add_argument("--width", type=int, default=16, help="network width d_hat (default 16, 004's Tables 1-2)")
    p.add_argument(
        "--augment",
        choices=("random", "zeros"),
        default="random",
        help="how the inputs enter the width: 004's fixed random map (default) or zero padding",
    )
    p.add_argument("--samples", type=int, default=1500, help="training and validation points each (default 1500)")
    args = p.parse_args(argv)
    quick_depths = (1, 5, 20) if args.width == 16 else (5, 20, 40)
    depths = args.depths or (quick_depths if args.quick else DEPTHS)
    reps = args.repetitions or (1 if args.quick else 4)
    epochs = args.epochs or (10 if args.quick else 40)
    out = _common.out_dir("giesecke-depth-sweep", args.out)
    results = _common.Results(out / "results.csv", ["net", "depth", "repetition", *g.COLUMNS, "status"])
    t0 = time.perf_counter()
    keep = {}
    for rep in range(reps):
        for depth in depths:
            for name in NETS:
                print(f"{name}, depth {depth}, repetition {rep + 1}/{reps}", flush=True)
                res, row = g.run(
                    name,
                    args.seed + rep,
                    out / f"{name}-L{depth}-rep{rep + 1}",
                    args.progress,
                    dataset="spiral",
                    samples=args.samples,
                    test_samples=args.samples,
                    layers=depth,
                    width=args.width,
                    epochs=epochs,
                    augment=args.augment,
                )
                results.add(net=name, depth=depth, repetition=rep + 1, **row, status=res.status)
                if depth == 20 and rep == 0:
                    keep[name] = res
    figures(out, results.rows, depths, keep, args.width)
    setting = dict(width=args.width, augment=args.augment, reps=reps, epochs=epochs, samples=args.samples)
    _common.report(out, summary(results.rows, depths, setting, time.perf_counter() - t0))
    return 0


def figures(out, rows, depths, keep, width):
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.add_subplot()
    for name in NETS:
        line = ax.plot(
            depths,
            [100 * g.mean_of(rows, "train_accuracy", net=name, depth=d) for d in depths],
            "o-",
            label=f"{name} (rkgen)",
        )[0]
        ax.plot(
            depths,
            [100 * g.mean_of(rows, "test_accuracy", net=name, depth=d) for d in depths],
            "o--",
            color=line.get_color(),
        )
        if width == 16:
            known = [d for d in depths if d in DEPTHS]
            paper = [PAPER_ACC[name][0][DEPTHS.index(d)] for d in known]
            ax.plot(known, paper, "x:", color=line.get_color(), label=f"{name} (004 Table 1)")
    ax.set_xscale("log")
    ax.set_xticks(depths, [str(d) for d in depths])
    ax.minorticks_off()
    ax.set_xlabel("depth L")
    ax.set_ylabel("accuracy (%)")
    ax.legend()
    ax.set_title(f"spiral, width {width}: train solid, validation dashed")
    plots.save(fig, out / "depth")
    if keep:
        fig = Figure(figsize=(4.2 * len(keep), 4), layout="constrained")
        for k, (name, r) in enumerate(keep.items()):
            y = r.model.forward(r.flat, r.dataset.x_train).y_final
            plots.draw_features_3d(
                fig.add_subplot(1, len(keep), k + 1, projection="3d"),
                y,
                r.dataset.c_train,
                2,
                title=f"{name}, L = 20" + (" (PCA)" if y.shape[1] > 3 else ""),
            )
        plots.save(fig, out / "features_L20")


def _pair(rows, name, d, a, b, scale, suffix=""):
    return (
        f"{scale * g.mean_of(rows, a + suffix, net=name, depth=d):.2f} / "
        f"{scale * g.mean_of(rows, b + suffix, net=name, depth=d):.2f}"
    )


def _verdict(rows, name, d, keys, paper, scale, floor):
    """Worst verdict of train and validation (keys) against 004's (paper: train, validation)."""
    got = []
    for key, ref in zip(keys, paper, strict=True):
        vals = [scale * v for v in g.values_of(rows, key, net=name, depth=d)]
        got.append(g.judge(vals, ref, floor))
    tol = max(t[2] for t in got)
    return g.worst(*(t[3] for t in got)), tol


def summary(rows, depths, s, total) -> str:
    lines = [
        f"{'004 Table 1/2' if s['width'] == 16 else '004 section 4.2 (no table)'}: spiral, width {s['width']}, "
        f"inputs {s['augment']} "
        f"({'a fixed random map, as 004' if s['augment'] == 'random' else 'padded with zeros'}), "
        f"{s['samples']}/{s['samples']} points, Adam lr 1e-3 batch 5, {s['epochs']} epochs, {s['reps']} "
        f"repetition(s); {total:.0f} s in all",
    ]
    if s["width"] == 16:
        lines += table_rows(rows, depths)
    else:
        lines += width_rows(rows, depths)
    lines += ["", early_stop_rows(rows, depths)]
    lines += ["", "004's findings beside rkgen's:"]
    lines.append(findings(rows, depths, s["width"]))
    return "\n".join(lines)


def table_rows(rows, depths):
    lines = [
        "",
        "Table 1, accuracy %, train / validation (mean over repetitions), 004's beside; verdict: worst of train "
        f"and validation, tolerance 2 standard errors of the difference, at least {ACC_FLOOR:g} point",
    ]
    body, cbody = [], []
    for name in NETS:
        for d in depths:
            sec = g.mean_of(rows, "seconds_per_epoch", net=name, depth=d)
            if d in DEPTHS:
                i = DEPTHS.index(d)
                pa = (PAPER_ACC[name][0][i], PAPER_ACC[name][1][i])
                pc = (PAPER_COST[name][0][i], PAPER_COST[name][1][i])
                va, ta = _verdict(rows, name, d, ("train_accuracy", "test_accuracy"), pa, 100, ACC_FLOOR)
                vc, tc = _verdict(rows, name, d, ("train_loss", "test_loss"), pc, 10, COST_FLOOR)
                paper_a, paper_c = f"{pa[0]:.2f} / {pa[1]:.2f}", f"{pc[0]:.2f} / {pc[1]:.2f}"
                tol_a, tol_c = f"{ta:.2f}", f"{tc:.2f}"
            else:
                paper_a = paper_c = tol_a = tol_c = va = vc = "-"
            body.append(
                [
                    name,
                    d,
                    _pair(rows, name, d, "train_accuracy", "test_accuracy", 100),
                    paper_a,
                    tol_a,
                    va,
                    f"{sec:.2f}",
                ]
            )
            cbody.append([name, d, _pair(rows, name, d, "train_loss", "test_loss", 10), paper_c, tol_c, vc])
    lines.append(_common.table(["net", "L", "rkgen acc", "004 acc", "tol", "verdict", "s/epoch"], body))
    lines += [
        "",
        f"Table 2, cost x 10 (cross-entropy), train / validation, 004's beside; tolerance at least {COST_FLOOR:g}",
    ]
    lines.append(_common.table(["net", "L", "rkgen cost x10", "004 cost x10", "tol", "verdict"], cbody))
    n = sum(1 for r in body if r[5] != "-")
    agree = sum(1 for r in body if r[5] == "agrees")
    cagree = sum(1 for r in cbody if r[5] == "agrees")
    lines.append(f"\nrows that agree: accuracy {agree} of {n}, cost {cagree} of {n}")
    return lines


def width_rows(rows, depths):
    body = []
    for name in NETS:
        for d in depths:
            body.append(
                [
                    name,
                    d,
                    _pair(rows, name, d, "train_accuracy", "test_accuracy", 100),
                    _pair(rows, name, d, "train_loss", "test_loss", 10),
                    f"{g.mean_of(rows, 'seconds_per_epoch', net=name, depth=d):.2f}",
                ]
            )
    return ["", "accuracy %, train / validation (mean over repetitions); 004 gives no table for this width"] + [
        _common.table(["net", "L", "rkgen acc", "rkgen cost x10", "s/epoch"], body)
    ]


def early_stop_rows(rows, depths):
    """The values at the epoch where 004's rule would have stopped, beside the last epoch's."""
    body = []
    for name in NETS:
        for d in depths:
            stops = g.values_of(rows, "stop_004", net=name, depth=d)
            body.append(
                [
                    name,
                    d,
                    " ".join(str(int(x)) for x in stops),
                    _pair(rows, name, d, "train_accuracy", "test_accuracy", 100),
                    _pair(rows, name, d, "train_accuracy", "test_accuracy", 100, "_004stop"),
                ]
            )
    head = ["net", "L", "004 stop epoch per rep.", "acc, all epochs", "acc at 004's stop"]
    return "004's early stopping (validation cost up by > 0.05 over five epochs) applied to rkgen's runs:\n" + (
        _common.table(head, body)
    )


def findings(rows, depths, width) -> str:
    checks = []

    def acc(name, d, key="test_accuracy"):
        return g.mean_of(rows, key, net=name, depth=d)

    if width == 16:
        deep_rk = [d for d in depths if d >= 10]
        if deep_rk:
            a = min(acc("RK4Net", d, "train_accuracy") for d in deep_rk)
            checks.append(
                [
                    "RK4Net at depth >= 10 reaches about 99% training accuracy",
                    f"lowest {100 * a:.1f}%",
                    "agrees" if a >= 0.98 else "differs",
                ]
            )
        deep_sn = [d for d in depths if d >= 40]
        if deep_sn:
            a = max(acc("StandardNet", d, "train_accuracy") for d in deep_sn)
            checks.append(
                [
                    "StandardNet at depth >= 40 falls to chance (about 50%)",
                    f"highest {100 * a:.1f}%",
                    "agrees" if a <= 0.6 else "differs",
                ]
            )
        if 1 in depths and len(depths) > 1:
            sn, rk = acc("StandardNet", 1), acc("RK4Net", 1)
            checks.append(
                [
                    "shallow (L = 1): StandardNet ahead of RK4Net (004: 91.9 vs 75.1)",
                    f"{100 * sn:.1f}% vs {100 * rk:.1f}%",
                    "agrees" if sn > rk + 0.05 else "differs",
                ]
            )
    else:
        sn_best = max(acc("StandardNet", d) for d in depths)
        checks.append(
            [
                f"StandardNet never exceeds 80% (width {width})",
                f"best {100 * sn_best:.1f}%",
                "agrees" if sn_best <= 0.80 else "close" if sn_best <= 0.85 else "differs",
            ]
        )
        deep = max(depths)
        if deep >= 40:
            a = acc("StandardNet", deep)
            checks.append(
                [
                    f"StandardNet degrades (depth {deep} near chance)",
                    f"{100 * a:.1f}%",
                    "agrees" if a <= 0.6 else "differs",
                ]
            )
        big = [d for d in depths if d >= 40]
        if big:
            a = min(acc("RK4Net", d) for d in big)
            checks.append(
                [
                    "RK4Net nearly perfect at depth >= 40",
                    f"lowest {100 * a:.1f}%",
                    "agrees" if a >= 0.97 else "close" if a >= 0.95 else "differs",
                ]
            )
        small = [d for d in depths if d < 40]
        if small:
            a = max(acc("RK4Net", d) for d in small)
            checks.append(
                [
                    "RK4Net requires 40 or more layers (below 97% at depth < 40)",
                    f"best below 40: {100 * a:.1f}%",
                    "agrees" if a < 0.97 else "differs",
                ]
            )
    return _common.table(["004 reports", "rkgen", ""], checks) if checks else "(none of 004's depths was run)"


if __name__ == "__main__":
    raise SystemExit(main())

"""Giesecke and Kröner (004), Tables 1 and 2: a depth sweep on spiral, StandardNet against RK4Net.

Setting of 004 and its published code: spiral with 1500 training and 1500 validation points, inputs
padded with zeros to width 16, tanh, softmax with cross-entropy on two outputs, Adam at learning
rate 1e-3 with mini-batches of 5, 40 epochs, four repetitions; RK4Net takes a fixed step h = 0.05
per layer (so T = 0.05 L grows with the depth). The published code stops early when the validation
cost rises; rkgen runs all 40 epochs.

    python examples/giesecke_depth_sweep.py            # depths 1 3 5 10 20 40 100, 4 repetitions (11 min)
    python examples/giesecke_depth_sweep.py --quick    # depths 1 5 20, 1 repetition, 10 epochs (about 1 min)

Each run is written as soon as it ends (results.csv and its run folder). Figures: depth (mean
accuracy against depth, train solid, validation dashed), features_L20 (PCA of y_N, 004 Fig. 5).
"""

from __future__ import annotations

import time

import _common
import numpy as np
from matplotlib.figure import Figure

from rkgen.train import plots, train

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
NETS = (("StandardNet", dict(model="net")), ("RK4Net", dict(model="rk", tableau="rk4", step=0.05)))


def main(argv=None) -> int:
    p = _common.parser(__doc__, "depths 1 5 20, one repetition, 10 epochs")
    p.add_argument("--depths", type=int, nargs="+", help="depths to run (default: 004's)")
    p.add_argument("--repetitions", type=int, help="repetitions (default 4, quick 1)")
    p.add_argument("--epochs", type=int, help="epochs (default 40, quick 10)")
    args = p.parse_args(argv)
    depths = args.depths or ((1, 5, 20) if args.quick else DEPTHS)
    reps = args.repetitions or (1 if args.quick else 4)
    epochs = args.epochs or (10 if args.quick else 40)
    out = _common.out_dir("giesecke-depth-sweep", args.out)
    results = _common.Results(
        out / "results.csv",
        [
            "net",
            "depth",
            "repetition",
            "train_accuracy",
            "test_accuracy",
            "train_loss",
            "test_loss",
            "seconds",
            "seconds_per_epoch",
            "status",
        ],
    )
    t0 = time.perf_counter()
    keep = {}
    for rep in range(reps):
        for depth in depths:
            for name, kw in NETS:
                print(f"{name}, depth {depth}, repetition {rep + 1}/{reps}", flush=True)
                res = train(
                    dataset="spiral",
                    samples=1500,
                    test_samples=1500,
                    layers=depth,
                    width=16,
                    activation="tanh",
                    loss="cross-entropy",
                    optimizer="adam",
                    lr=1e-3,
                    batch_size=5,
                    epochs=epochs,
                    seed=args.seed + rep,
                    out=str(out / f"{name}-L{depth}-rep{rep + 1}"),
                    progress=args.progress,
                    plots=False,
                    **kw,
                )
                results.add(
                    net=name,
                    depth=depth,
                    repetition=rep + 1,
                    train_accuracy=res.final("train_accuracy"),
                    test_accuracy=res.final("test_accuracy"),
                    train_loss=res.final("train_loss"),
                    test_loss=res.final("test_loss"),
                    seconds=res.seconds,
                    seconds_per_epoch=res.seconds / max(1, res.epoch),
                    status=res.status,
                )
                if depth == 20 and rep == 0:
                    keep[name] = res
    figures(out, results.rows, depths, keep)
    _common.report(out, summary(results.rows, depths, reps, epochs, time.perf_counter() - t0))
    return 0


def _mean(rows, name, depth, key):
    v = [r[key] for r in rows if r["net"] == name and r["depth"] == depth]
    return float(np.mean(v)) if v else float("nan")


def figures(out, rows, depths, keep):
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.add_subplot()
    for name, _ in NETS:
        line = ax.plot(
            depths,
            [100 * _mean(rows, name, d, "train_accuracy") for d in depths],
            "o-",
            label=f"{name} (rkgen)",
        )[0]
        ax.plot(
            depths,
            [100 * _mean(rows, name, d, "test_accuracy") for d in depths],
            "o--",
            color=line.get_color(),
        )
        paper = [PAPER_ACC[name][0][DEPTHS.index(d)] for d in depths if d in DEPTHS]
        ax.plot(
            [d for d in depths if d in DEPTHS],
            paper,
            "x:",
            color=line.get_color(),
            label=f"{name} (004 Table 1)",
        )
    ax.set_xscale("log")
    ax.set_xlabel("depth L")
    ax.set_ylabel("accuracy (%)")
    ax.legend()
    ax.set_title("spiral, width 16: train solid, validation dashed")
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
                title=f"{name}, L = 20 (PCA)",
            )
        plots.save(fig, out / "features_L20")


def summary(rows, depths, reps, epochs, total) -> str:
    lines = [
        f"004 Table 1/2: spiral, width 16, Adam lr 1e-3 batch 5, {epochs} epochs, {reps} "
        f"repetition(s); {total:.0f} s in all",
        "",
        "accuracy %, train / validation (mean over repetitions); 004's beside",
    ]
    body = []
    for name, _ in NETS:
        for d in depths:
            ours = (
                f"{100 * _mean(rows, name, d, 'train_accuracy'):.2f} / "
                f"{100 * _mean(rows, name, d, 'test_accuracy'):.2f}"
            )
            cost = (
                f"{10 * _mean(rows, name, d, 'train_loss'):.2f} / "
                f"{10 * _mean(rows, name, d, 'test_loss'):.2f}"
            )
            if d in DEPTHS:
                i = DEPTHS.index(d)
                paper = f"{PAPER_ACC[name][0][i]:.2f} / {PAPER_ACC[name][1][i]:.2f}"
                pcost = f"{PAPER_COST[name][0][i]:.2f} / {PAPER_COST[name][1][i]:.2f}"
            else:
                paper = pcost = "-"
            sec = _mean(rows, name, d, "seconds_per_epoch")
            body.append([name, d, ours, paper, cost, pcost, f"{sec:.2f}"])
    lines.append(
        _common.table(
            ["net", "L", "rkgen acc", "004 acc", "rkgen cost x10", "004 cost x10", "s/epoch"], body
        )
    )
    lines += ["", "The paper's findings beside ours:"]
    checks = []
    deep_rk = [d for d in depths if d >= 10]
    if deep_rk:
        acc = min(_mean(rows, "RK4Net", d, "train_accuracy") for d in deep_rk)
        checks.append(
            [
                "RK4Net at depth >= 10 reaches about 99% training accuracy",
                f"lowest {100 * acc:.1f}%",
                "agree" if acc >= 0.98 else "differ",
            ]
        )
    deep_sn = [d for d in depths if d >= 40]
    if deep_sn:
        acc = max(_mean(rows, "StandardNet", d, "train_accuracy") for d in deep_sn)
        checks.append(
            [
                "StandardNet at depth >= 40 falls to chance (about 50%)",
                f"highest {100 * acc:.1f}%",
                "agree" if acc <= 0.6 else "differ",
            ]
        )
    if 5 in depths:
        sn, rk = (_mean(rows, n, 5, "test_accuracy") for n in ("StandardNet", "RK4Net"))
        checks.append(
            [
                "shallow (L = 5): both near 98%",
                f"{100 * sn:.1f}% / {100 * rk:.1f}%",
                "agree" if min(sn, rk) >= 0.95 else "differ",
            ]
        )
    if checks:
        lines.append(_common.table(["004 reports", "rkgen", ""], checks))
    else:
        lines.append("(004's findings concern depths 5, >= 10 and >= 40; none of them was run)")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())

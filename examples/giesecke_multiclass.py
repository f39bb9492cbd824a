"""Giesecke and Kröner (004), Table 3 and Figs. 9-12: StandardNet, EulerNet and RK4Net on the
multiclass donut and squares sets in 2D and 3D.

Setting of 004's code (configs/experiments/StandardNet.json and RKNets.json, NN.py): donut3d-2c,
donut3d-3c, donut2d-6c, donut3d-6c, squares2d-4c, squares3d-4c with 1500 training and 1500
validation points; width 16, the inputs entering through a fixed random bias-free linear map
(fill_zeros: false; rkgen --augment random); StandardNet with 5 layers, EulerNet and RK4Net with
100 layers of the fixed step h = 0.05 (T = 5); tanh; softmax with cross-entropy (also on the
2-class set); Adam at learning rate 1e-3 with mini-batches of 5; 40 epochs; four repetitions. 004's
code stops early when the validation cost rises; rkgen runs all epochs and reports also the values
at the epoch where 004's rule would have stopped.

Accuracy: 004's code of March 2021 counted matching entries of the one-hot vectors (accuracy.py,
replaced in September 2021), which for K classes is e = 1 - 2 (1 - a) / K of the per-sample accuracy
a. Table 3's accuracies are per entry. This example prints both: rkgen's per-sample accuracy and its
per-entry accuracy computed from the predictions as 004's code did, and 004's number converted to
per sample; the verdicts compare per-sample accuracies.

    python examples/giesecke_multiclass.py           # 6 sets x 3 networks x 4 repetitions x 40 epochs (about 20 min)
    python examples/giesecke_multiclass.py --quick   # 1 repetition, 500/500 points, 10 epochs (about 1 min)

Figures: fig9_donut2d-6c and fig10_squares2d-4c (final features, PCA 3D and 2D, and the prediction,
one row per network), fig11_donut3d-6c and fig12_squares3d-4c (validation accuracy and cost over the
epochs, mean and standard deviation over the repetitions). Verdicts: rkgen's mean beside 004's with
a tolerance of two standard errors of the difference (from the spread of rkgen's repetitions), at
least 1 point of accuracy and 0.1 of cost x 10; agrees within it, close within twice, differs beyond.
"""

from __future__ import annotations

import time

import _common
import _giesecke as g
import numpy as np
from matplotlib.figure import Figure

from rkgen.train import plots

#: (data set, classes) in 004's order
SETS = (
    ("donut3d-2c", 2),
    ("donut3d-3c", 3),
    ("donut2d-6c", 6),
    ("donut3d-6c", 6),
    ("squares2d-4c", 4),
    ("squares3d-4c", 4),
)
LAYERS = {"StandardNet": 5, "EulerNet": 100, "RK4Net": 100}
NETS = tuple(LAYERS)
# 004 Table 3: validation accuracy (%, per entry of the one-hot vectors) and cost (x 1e-1), mean of four
PAPER = {
    "StandardNet": ((92.37, 1.71), (91.83, 2.85), (91.71, 5.60), (91.00, 5.86), (97.06, 1.57), (94.84, 3.03)),
    "EulerNet": ((92.20, 1.84), (91.88, 2.75), (91.62, 5.56), (91.60, 5.67), (96.68, 1.66), (94.74, 2.71)),
    "RK4Net": ((92.73, 1.72), (91.42, 2.95), (91.64, 5.59), (91.63, 5.73), (96.60, 1.64), (94.68, 2.81)),
}
ACC_FLOOR, COST_FLOOR = 1.0, 0.1
FIG_FEATURES = {"donut2d-6c": "fig9", "squares2d-4c": "fig10"}
#: EulerNet and RK4Net share data and initial parameters (same seed) and often overlap: dashed under dotted
STYLE = {"StandardNet": "-", "EulerNet": "--", "RK4Net": ":"}
FIG_HISTORY = {"donut3d-6c": "fig11", "squares3d-4c": "fig12"}


def main(argv=None) -> int:
    p = _common.parser(__doc__, "one repetition, 500/500 points, 10 epochs")
    p.add_argument("--sets", nargs="+", choices=[s for s, _ in SETS], help="data sets (default: 004's six)")
    p.add_argument("--repetitions", type=int, help="repetitions (default 4, quick 1)")
    p.add_argument("--epochs", type=int, help="epochs (default 40, quick 10)")
    p.add_argument("--samples", type=int, help="training and validation points each (default 1500, quick 500)")
    p.add_argument("--layers", type=int, nargs=2, metavar=("STANDARD", "RK"), help="depths (default 5 100)")
    args = p.parse_args(argv)
    sets = [s for s in SETS if not args.sets or s[0] in args.sets]
    reps = args.repetitions or (1 if args.quick else 4)
    epochs = args.epochs or (10 if args.quick else 40)
    samples = args.samples or (500 if args.quick else 1500)
    layers = dict(LAYERS)
    if args.layers:
        layers = {"StandardNet": args.layers[0], "EulerNet": args.layers[1], "RK4Net": args.layers[1]}
    out = _common.out_dir("giesecke-multiclass", args.out)
    columns = ["set", "classes", "net", "layers", "repetition", *g.COLUMNS]
    columns[6:6] = ["test_entry_accuracy", "train_entry_accuracy"]
    results = _common.Results(out / "results.csv", [*columns, "status"])
    t0 = time.perf_counter()
    keep, hist = {}, {}
    for rep in range(reps):
        for name, k in sets:
            for net in NETS:
                print(f"{net}, {name}, repetition {rep + 1}/{reps}", flush=True)
                res, row = g.run(
                    net,
                    args.seed + rep,
                    out / f"{name}-{net}-rep{rep + 1}",
                    args.progress,
                    dataset=name,
                    samples=samples,
                    test_samples=samples,
                    layers=layers[net],
                    width=16,
                    epochs=epochs,
                )
                ds = res.dataset
                entry = {
                    "test_entry_accuracy": g.entry_accuracy_of(res.model, res.flat, ds.x_test, ds.c_test),
                    "train_entry_accuracy": g.entry_accuracy_of(res.model, res.flat, ds.x_train, ds.c_train),
                }
                results.add(
                    set=name,
                    classes=k,
                    net=net,
                    layers=layers[net],
                    repetition=rep + 1,
                    **entry,
                    **row,
                    status=res.status,
                )
                hist.setdefault((name, net), []).append(
                    (np.array(res.history["epoch"]), res.history["test_accuracy"], res.history["test_loss"])
                )
                if rep == 0 and name in FIG_FEATURES:
                    keep[(name, net)] = res
    figures(out, keep, hist, sets)
    setting = dict(reps=reps, epochs=epochs, samples=samples, layers=layers)
    _common.report(out, summary(results.rows, sets, setting, time.perf_counter() - t0))
    return 0


def figures(out, keep, hist, sets):
    names = [s for s, _ in sets]
    for name, fig_name in FIG_FEATURES.items():
        runs = [(net, keep[(name, net)]) for net in NETS if (name, net) in keep]
        if not runs:
            continue
        fig = Figure(figsize=(13, 4 * len(runs)), layout="constrained")
        for i, (net, r) in enumerate(runs):
            ds = r.dataset
            y = r.model.forward(r.flat, ds.x_test).y_final
            plots.draw_features_3d(
                fig.add_subplot(len(runs), 3, 3 * i + 1, projection="3d"),
                y,
                ds.c_test,
                ds.n_classes,
                title=f"{net}, L = {r.model.N}: $y_N$ (PCA 3D)",
            )
            plots.draw_features(
                fig.add_subplot(len(runs), 3, 3 * i + 2),
                r.model,
                r.flat,
                y,
                ds.c_test,
                title=f"{net}: $y_N$ (PCA 2D), classifier",
                colorbar=False,
            )
            plots.draw_prediction(
                fig.add_subplot(len(runs), 3, 3 * i + 3),
                r.model,
                r.flat,
                ds,
                title=f"{net}: prediction",
                colorbar=False,
            )
        plots.class_legend(
            fig, runs[0][1].dataset.n_classes, loc="outside lower center", ncol=runs[0][1].dataset.n_classes
        )
        fig.suptitle(
            f"004 {fig_name.replace('fig', 'Fig. ')}: {name}, width 16 "
            "(features: validation points; prediction: training points)"
        )
        plots.save(fig, out / f"{fig_name}_{name}")
    for name, fig_name in FIG_HISTORY.items():
        if name not in names:
            continue
        fig = Figure(figsize=(10, 3.8), layout="constrained")
        a_acc, a_cost = fig.subplots(1, 2)
        for net in NETS:
            runs = hist.get((name, net), [])
            if not runs:
                continue
            n = min(len(e) for e, _, _ in runs)
            ep = runs[0][0][:n]
            for ax, j, scale in ((a_acc, 1, 100.0), (a_cost, 2, 1.0)):
                v = scale * np.array([r[j][:n] for r in runs])
                m, s = v.mean(axis=0), v.std(axis=0)
                line = ax.plot(ep, m, STYLE[net], label=net)[0]
                ax.fill_between(ep, m - s, m + s, color=line.get_color(), alpha=0.2)
        a_acc.set_ylabel("validation accuracy (%, per sample)")
        a_cost.set_ylabel("validation cost (cross-entropy)")
        for ax in (a_acc, a_cost):
            ax.set_xlabel("epoch")
            ax.grid(True, alpha=0.3)
            ax.legend()
        fig.suptitle(f"004 {fig_name.replace('fig', 'Fig. ')}: {name}, mean and standard deviation over repetitions")
        plots.save(fig, out / f"{fig_name}_{name}")


def summary(rows, sets, s, total) -> str:
    lines = [
        f"004 Table 3: width 16, random embedding, StandardNet L = {s['layers']['StandardNet']}, EulerNet/RK4Net "
        f"L = {s['layers']['RK4Net']} (h = 0.05), tanh, cross-entropy, Adam lr 1e-3 batch 5, {s['epochs']} epochs, "
        f"{s['samples']}/{s['samples']} points, {s['reps']} repetition(s); {total:.0f} s in all",
        "",
        "validation accuracy %: rkgen per sample (a) and per entry (e, counted as 004's code of 2021 counts); "
        "004's Table 3 (per entry) and converted to per sample, a = 1 - K (1 - e) / 2; "
        f"verdict on a, tolerance 2 standard errors of the difference, at least {ACC_FLOOR:g} point",
    ]
    body, cbody, err = [], [], 0.0
    for i, (name, k) in enumerate(sets):
        j = [n for n, _ in SETS].index(name)
        for net in NETS:
            m = dict(set=name, net=net)
            a = [100 * v for v in g.values_of(rows, "test_accuracy", **m)]
            e = g.mean_of(rows, "test_entry_accuracy", **m)
            err = max(
                err,
                *(
                    abs(x - float(g.entry_accuracy(y / 100, k)))
                    for x, y in zip(g.values_of(rows, "test_entry_accuracy", **m), a, strict=True)
                ),
            )
            pe, pc = PAPER[net][j]
            pa = 100 * float(g.sample_accuracy(pe / 100, k))
            mean, _, tol, verdict = g.judge(a, pa, ACC_FLOOR)
            body.append(
                [
                    name if net == NETS[0] else "",
                    net,
                    f"{mean:.2f}",
                    f"{100 * e:.2f}",
                    f"{pe:.2f}",
                    f"{pa:.2f}",
                    f"{tol:.2f}",
                    verdict,
                ]
            )
            c = [10 * v for v in g.values_of(rows, "test_loss", **m)]
            cmean, _, ctol, cverdict = g.judge(c, pc, COST_FLOOR)
            stops = g.values_of(rows, "stop_004", **m)
            a_stop = 100 * g.mean_of(rows, "test_accuracy_004stop", **m)
            cbody.append(
                [
                    name if net == NETS[0] else "",
                    net,
                    f"{cmean:.2f}",
                    f"{pc:.2f}",
                    f"{ctol:.2f}",
                    cverdict,
                    " ".join(str(int(x)) for x in stops),
                    f"{a_stop:.2f}",
                    f"{g.mean_of(rows, 'seconds_per_epoch', **m):.2f}",
                ]
            )
        del i
    head = ["set", "net", "rkgen a", "rkgen e", "004 e", "004 as a", "tol", "verdict"]
    lines.append(_common.table(head, body))
    lines.append(f"(rkgen's e from the predictions equals 1 - 2 (1 - a) / K to {err:.1e})")
    lines += [
        "",
        f"validation cost x 10, 004's beside (tolerance at least {COST_FLOOR:g}); epoch where 004's "
        "early stopping would end each repetition, and rkgen's accuracy a there",
    ]
    lines.append(
        _common.table(["set", "net", "rkgen", "004", "tol", "verdict", "004 stop", "a at stop", "s/epoch"], cbody)
    )
    n = len(body)
    lines.append(
        f"\nrows that agree: accuracy {sum(r[7] == 'agrees' for r in body)} of {n}, "
        f"cost {sum(r[5] == 'agrees' for r in cbody)} of {n}"
    )
    lines += ["", "004's findings beside rkgen's:", findings(rows, sets)]
    return "\n".join(lines)


def findings(rows, sets) -> str:
    names = [s for s, _ in sets]
    checks = []
    spread = {}
    for name in names:
        accs = [g.mean_of(rows, "test_accuracy", set=name, net=n) for n in NETS]
        spread[name] = 100 * (max(accs) - min(accs))
    worst = max(spread, key=spread.get)
    checks.append(
        [
            "StandardNet does as well as EulerNet and RK4Net (per set, the three within 2 points)",
            f"widest {spread[worst]:.1f} points ({worst})",
            "agrees" if spread[worst] <= 2.0 else "differs",
        ]
    )
    pairs = [("donut3d-2c", "donut3d-3c"), ("donut2d-6c", "donut3d-6c"), ("squares2d-4c", "squares3d-4c")]
    for easy, hard in pairs:
        if easy in names and hard in names:
            a = [100 * np.mean([g.mean_of(rows, "test_accuracy", set=s, net=n) for n in NETS]) for s in (easy, hard)]
            c = [10 * np.mean([g.mean_of(rows, "test_loss", set=s, net=n) for n in NETS]) for s in (easy, hard)]
            ok = a[1] < a[0] and c[1] > c[0]
            checks.append(
                [
                    f"{hard} harder than {easy} (lower accuracy, higher cost)",
                    f"a {a[0]:.1f} -> {a[1]:.1f}, cost {c[0]:.2f} -> {c[1]:.2f}",
                    "agrees" if ok else "differs",
                ]
            )
    return _common.table(["004 reports", "rkgen (mean of the three networks)", ""], checks)


if __name__ == "__main__":
    raise SystemExit(main())

"""Plots of a training run (matplotlib, PNG and PDF), after 000 and 004.

Figures are made with ``matplotlib.figure.Figure`` and saved through the Agg (PNG) and PDF canvases;
pyplot and its global state are never touched, so this works headless and from threads. Every extent
comes from the data. The ``draw_*`` functions draw into a given Axes, so examples can compose their
own figures.

- data:        the training points coloured by class (000 Fig. 1);
- prediction:  the classifier's probability over the input plane, data on top (000 Fig. 2 top rows;
               2D inputs only);
- features:    the transformed features y_N with the linear classifier's decision as background (000
               Fig. 2 bottom rows); PCA to 2D and 3D when d_hat > 3, 3D when d_hat = 3 (004 Fig. 9,
               10);
- layers:      snapshots of the features layer by layer (000 Fig. 3, 10-12);
- history:     loss and accuracy against iterations, train solid, test dashed (000 Fig. 6, 7, 13);
- steps:       the step size of every layer (000 Fig. 8).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

BINARY_COLORS = ("#1f4e9e", "#c0282d")  # class 0 blue, class 1 red, as in 000
MULTI_COLORS = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#ff7f0e",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
CHUNK = 4096


def class_colors(n_classes: int):
    return BINARY_COLORS if n_classes == 2 else MULTI_COLORS * (1 + n_classes // len(MULTI_COLORS))


def save(fig: Figure, path, formats=("png", "pdf")) -> list[Path]:
    """Save fig as path.png and path.pdf (path without suffix); returns the files written."""
    path = Path(path)
    out = []
    for fmt in formats:
        p = path.with_suffix("." + fmt)
        fig.savefig(p, dpi=130 if fmt == "png" else None)
        out.append(p)
        # the layout (in inches and points, the same for every format) is computed once; the other
        # formats reuse it (constrained layout is about a third of a save)
        fig.set_layout_engine("none")
    return out


def extent(points: np.ndarray, margin: float = 0.1):
    """(xmin, xmax, ymin, ymax) of 2D points, widened by a margin of their span."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    lo, hi = lo - margin * span, hi + margin * span
    return float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])


def pca(y: np.ndarray, k: int):
    """Mean, principal directions (k, d) and coordinates (m, k) of y."""
    mean = y.mean(axis=0)
    _, _, vt = np.linalg.svd(y - mean, full_matrices=False)
    comps = vt[:k]
    if comps.shape[0] < k:  # fewer directions than asked: pad with zeros
        comps = np.vstack([comps, np.zeros((k - comps.shape[0], y.shape[1]))])
    return mean, comps, (y - mean) @ comps.T


def _chunked(fn, pts):
    return np.concatenate([fn(pts[i : i + CHUNK]) for i in range(0, len(pts), CHUNK)])


def _background(ax, probs_fn, ext, n_classes, resolution=160):
    """Paint the class probabilities of probs_fn over the rectangle ext."""
    gx = np.linspace(ext[0], ext[1], resolution)
    gy = np.linspace(ext[2], ext[3], resolution)
    X, Y = np.meshgrid(gx, gy)
    pts = np.column_stack([X.ravel(), Y.ravel()])
    with np.errstate(all="ignore"):
        P = _chunked(probs_fn, pts)
    if n_classes == 2:
        img = P[:, 1].reshape(X.shape)
        ax.imshow(
            img,
            origin="lower",
            extent=ext,
            cmap="RdBu_r",
            vmin=0.0,
            vmax=1.0,
            aspect="auto",
            alpha=0.75,
            interpolation="bilinear",
        )
    else:
        cols = np.array([to_rgb(c) for c in class_colors(n_classes)[:n_classes]])
        k = P.argmax(axis=1)
        conf = P.max(axis=1)[:, None]
        rgb = 1.0 - 0.6 * conf * (1.0 - cols[k])
        ax.imshow(
            rgb.reshape(X.shape + (3,)),
            origin="lower",
            extent=ext,
            aspect="auto",
            interpolation="nearest",
        )
    ax.set_xlim(ext[0], ext[1])
    ax.set_ylim(ext[2], ext[3])


def draw_points(ax, pts, c, n_classes, size=6, **kw):
    cols = class_colors(n_classes)
    for k in range(n_classes):
        sel = c == k
        if np.any(sel):
            if pts.shape[1] >= 3 and hasattr(ax, "zaxis"):
                ax.scatter(
                    pts[sel, 0],
                    pts[sel, 1],
                    pts[sel, 2],
                    s=size,
                    color=cols[k],
                    edgecolors="none",
                    **kw,
                )
            else:
                ax.scatter(pts[sel, 0], pts[sel, 1], s=size, color=cols[k], edgecolors="none", **kw)


def draw_dataset(ax, dataset, title=None):
    x = dataset.x_train
    if x.shape[1] == 1:
        x = np.column_stack([x[:, 0], np.zeros(len(x))])
    elif x.shape[1] > 3 or (x.shape[1] == 3 and not hasattr(ax, "zaxis")):
        x = pca(x, 2)[2]
    draw_points(ax, x, dataset.c_train, dataset.n_classes)
    ax.set_title(title or dataset.name)
    if not hasattr(ax, "zaxis"):
        ax.set_aspect("equal", adjustable="datalim")


def draw_prediction(ax, model, flat, dataset, title=None):
    """The classifier's probability over the input plane with the training points on top."""
    x = np.concatenate([dataset.x_train, dataset.x_test])
    ext = extent(x, 0.05)
    _background(ax, lambda p: model.predict_proba(flat, p), ext, dataset.n_classes)
    draw_points(ax, dataset.x_train, dataset.c_train, dataset.n_classes, size=5)
    ax.set_title(title or "prediction")


def draw_features(ax, model, flat, y, c, title=None):
    """Features y (m, d_hat) with the linear classifier as background (exact when d_hat = 2; on the
    plane of the first two principal components otherwise)."""
    n = model.n_classes
    if y.shape[1] == 2:
        ext = extent(y, 0.1)
        _background(ax, lambda p: model.classify_features(flat, p), ext, n)
        draw_points(ax, y, c, n, size=5)
    else:
        mean, comps, z = pca(y, 2)
        ext = extent(z, 0.1)
        _background(ax, lambda p: model.classify_features(flat, mean + p @ comps), ext, n)
        draw_points(ax, z, c, n, size=5)
        ax.set_xlabel("PC 1")
        ax.set_ylabel("PC 2")
    ax.set_title(title or "features y_N")


def draw_features_3d(ax, y, c, n_classes, title=None):
    z = y if y.shape[1] == 3 else pca(y, 3)[2]
    draw_points(ax, z, c, n_classes, size=4)
    ax.set_title(title or ("features y_N" if y.shape[1] == 3 else "features y_N (PCA 3D)"))


def draw_history(ax_loss, ax_acc, history, label=None, color=None, xkey="iteration"):
    """Loss (log scale) and accuracy; train solid, test dashed."""
    x = history[xkey]
    line = ax_loss.plot(x, history["train_loss"], "-", color=color, label=label)[0]
    color = line.get_color()
    ax_loss.plot(x, history["test_loss"], "--", color=color)
    ax_acc.plot(x, 100 * np.asarray(history["train_accuracy"]), "-", color=color, label=label)
    ax_acc.plot(x, 100 * np.asarray(history["test_accuracy"]), "--", color=color)
    if np.all(np.asarray(history["train_loss"]) > 0):
        ax_loss.set_yscale("log")
    for ax in (ax_loss, ax_acc):
        ax.set_xlabel(xkey)
        ax.grid(True, alpha=0.3)
    ax_loss.set_ylabel("loss")
    ax_acc.set_ylabel("accuracy (%)")


def draw_steps(ax, h, label=None, offset=0.0, width=0.8, color=None):
    j = np.arange(1, len(h) + 1)
    ax.bar(j + offset, h, width=width, label=label, color=color)
    ax.axhline(0.0, color="k", lw=0.6)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("layer")
    ax.set_ylabel("step h")


def layer_choice(n_layers: int, count: int = 4) -> list[int]:
    """Layers to show, first and last included: 0, N/3, 2N/3, N for four (000: 0, 5, 10, 15 of
    15)."""
    count = min(count, n_layers + 1)
    return sorted({int(round(k * n_layers / (count - 1))) for k in range(count)})


def draw_layers(fig, model, flat, x, c, layers=None, title=None):
    """A row of snapshots of the features through the network."""
    states = model.states(flat, x)
    layers = layers or layer_choice(model.N)
    axes = fig.subplots(1, len(layers), squeeze=False)[0]
    n = model.n_classes
    for ax, j in zip(axes, layers, strict=True):
        y = states[j]
        if y.shape[1] == 2:
            ext = extent(states[layers[-1]], 0.1)
            ext = _union(ext, extent(y, 0.1))
            _background(ax, lambda p: model.classify_features(flat, p), ext, n)
            draw_points(ax, y, c, n, size=4)
        else:
            draw_points(ax, pca(y, 2)[2], c, n, size=4)
        ax.set_title(f"layer {j}" + (" (PCA)" if y.shape[1] > 2 else ""))
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title)
    return axes


def _union(a, b):
    return min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3])


# -- the figures of one run ---------------------------------------------------------------------


def run_plots(result, out_dir=None) -> list[Path]:
    """Write every plot that applies to a finished run into its folder; returns the files."""
    out_dir = Path(out_dir or result.run_dir)
    model, flat, ds = result.model, result.flat, result.dataset
    title = f"{model.name} on {ds.name}"
    files = []

    fig = Figure(figsize=(4.2, 4), layout="constrained")
    ax = fig.add_subplot(projection="3d" if ds.dim == 3 else None)
    draw_dataset(ax, ds)
    files += save(fig, out_dir / "data")

    if ds.dim == 2:
        fig = Figure(figsize=(4.2, 4), layout="constrained")
        draw_prediction(fig.add_subplot(), model, flat, ds, title=f"prediction, {title}")
        files += save(fig, out_dir / "prediction")

    y = model.forward(flat, ds.x_train).y_final
    if model.d >= 3:
        fig = Figure(figsize=(8.4, 4), layout="constrained")
        draw_features_3d(fig.add_subplot(1, 2, 1, projection="3d"), y, ds.c_train, ds.n_classes)
        draw_features(fig.add_subplot(1, 2, 2), model, flat, y, ds.c_train)
    else:
        fig = Figure(figsize=(4.2, 4), layout="constrained")
        draw_features(fig.add_subplot(), model, flat, y, ds.c_train)
    fig.suptitle(title)
    files += save(fig, out_dir / "features")

    fig = Figure(figsize=(3.2 * len(layer_choice(model.N)), 3.3), layout="constrained")
    draw_layers(fig, model, flat, ds.x_train, ds.c_train, title=title)
    files += save(fig, out_dir / "layers")

    if len(result.history["iteration"]):
        fig = Figure(figsize=(9, 3.6), layout="constrained")
        a1, a2 = fig.subplots(1, 2)
        draw_history(
            a1,
            a2,
            result.history,
            xkey="epoch" if result.config.optimizer == "adam" else "iteration",
        )
        fig.suptitle(f"{title} (train solid, test dashed)")
        files += save(fig, out_dir / "history")

    if "h" in result.params:
        fig = Figure(figsize=(5, 3.2), layout="constrained")
        draw_steps(fig.add_subplot(), result.params["h"])
        fig.suptitle(f"steps, {title}")
        files += save(fig, out_dir / "steps")
    return files

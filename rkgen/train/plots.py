"""Plots of a training run (matplotlib, PNG and PDF), after 000 and 004.

Figures are made with ``matplotlib.figure.Figure`` and saved through the Agg (PNG) and PDF canvases;
pyplot and its global state are never touched (font sizes are given per artist, not through
rcParams), so this works headless and from threads. Every extent comes from the data. The ``draw_*``
functions draw into a given Axes, so examples can compose their own figures; the ``*_figure``
functions build the figures of one run (``run_figures`` all of them, ``run_plots`` saves them).

- data:        the training points coloured by class (000 Fig. 1);
- prediction:  the classifier's probability over the input plane, data on top (000 Fig. 2 top rows;
               2D inputs only);
- features:    the transformed features y_N with the linear classifier's decision as background (000
               Fig. 2 bottom rows); PCA to 2D and 3D when d_hat > 3, 3D when d_hat = 3 (004 Fig. 9,
               10);
- layers:      snapshots of the features layer by layer (000 Fig. 3, 10-12);
- history:     loss and accuracy against iterations, train solid, test dashed (000 Fig. 6, 7, 13);
- steps:       the step size of every layer (000 Fig. 8); in the continuous parameter layout also the
               stage evaluation times t_j + c_i h_j and the node times on a time axis.

Every panel has axis labels, every probability background a colorbar, every scatter of classes a
legend (class names from the data set when it has them), every figure a title naming the model, the
tableau and the data set. Colours: blue and red for two classes (as in 000, with the diverging RdBu
background), the Okabe-Ito palette for more, with a marker shape per class as well.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.colors import ListedColormap, to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, MaxNLocator, MultipleLocator

from rkgen.fileio import save_figure

BINARY_COLORS = ("#1f4e9e", "#c0282d")  # class 0 blue, class 1 red, as in 000
# Okabe & Ito (2008), colour-blind safe; yellow and black last (yellow is faint on white)
MULTI_COLORS = (
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#009E73",  # bluish green
    "#E69F00",  # orange
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#000000",  # black
    "#F0E442",  # yellow
)
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
LINE_COLOR = "#0072B2"
CHUNK = 4096

# font sizes in points, given per artist (see the module docstring)
TITLE_SIZE = 11
PANEL_TITLE_SIZE = 10
LABEL_SIZE = 9.5
TICK_SIZE = 8.5
LEGEND_SIZE = 8.5

MODEL_LABELS = {
    "rk": "RK network",
    "odenet": "ODENet",
    "odenet-simplex": "ODENet+simplex",
    "net": "Net",
}


def class_colors(n_classes: int):
    return BINARY_COLORS if n_classes == 2 else MULTI_COLORS * (1 + n_classes // len(MULTI_COLORS))


def class_markers(n_classes: int):
    return ("o", "o") if n_classes == 2 else MARKERS * (1 + n_classes // len(MARKERS))


def class_labels(n_classes: int, names=()) -> list[str]:
    """The data set's class names when it has one per class, else "class 0", "class 1", ..."""
    names = tuple(str(n) for n in (names or ()))
    if len(names) == n_classes:
        return list(names)
    return [f"class {k}" for k in range(n_classes)]


def model_label(model) -> str:
    """ "RK network (rk4)", "ODENet+simplex (euler)", "Net": the model and its tableau."""
    label = MODEL_LABELS.get(model.kind, model.kind)
    if model.network is not None:
        label += f" ({getattr(model.network, 'NAME', '?')})"
    return label


def run_title(model, dataset) -> str:
    """ "RK network (rk4), spiral, N = 10" (and the width when the inputs are padded, and the parameter
    layout unless it is the shared one)."""
    title = f"{model_label(model)}, {dataset.name}, N = {model.N}"
    if model.d > model.in_dim:
        title += rf", $\hat{{d}}$ = {model.d}"
    layout = getattr(model, "params", "shared")
    if layout != "shared":
        title += f", {layout} parameters"
    return title


def save(fig: Figure, path, formats=("png", "pdf")) -> list[Path]:
    """Save fig as path.png and path.pdf (path without suffix); returns the files written."""
    path = Path(path)
    out = []
    for fmt in formats:
        p = path.with_suffix("." + fmt)
        save_figure(fig, p, dpi=150 if fmt == "png" else None)  # atomic; only ever a regular file
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


def _tint(conf, cols):
    """The background colour of a class colour at probability conf (white at 0, 60% at 1)."""
    return 1.0 - 0.6 * conf * (1.0 - cols)


def _background(ax, probs_fn, ext, n_classes, resolution=160):
    """Paint the class probabilities of probs_fn over the rectangle ext; returns the image.

    Two classes: P(class 1) on the diverging RdBu scale. More: the predicted class's colour, the
    stronger the more probable; the image carries a grey scale from 1/K to 1 (the tint of black) for
    its colorbar."""
    gx = np.linspace(ext[0], ext[1], resolution)
    gy = np.linspace(ext[2], ext[3], resolution)
    X, Y = np.meshgrid(gx, gy)
    pts = np.column_stack([X.ravel(), Y.ravel()])
    with np.errstate(all="ignore"):
        P = _chunked(probs_fn, pts)
    if n_classes == 2:
        img = P[:, 1].reshape(X.shape)
        im = ax.imshow(
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
        im = ax.imshow(
            _tint(conf, cols[k]).reshape(X.shape + (3,)),
            origin="lower",
            extent=ext,
            aspect="auto",
            interpolation="nearest",
        )
        # an RGB image ignores its colour map; the colorbar reads it (grey, as the tint of black)
        grey = _tint(np.linspace(0.0, 1.0, 256)[:, None], np.zeros(3))
        im.set_cmap(ListedColormap(grey))
        im.set_clim(1.0 / n_classes, 1.0)
    ax.set_xlim(ext[0], ext[1])
    ax.set_ylim(ext[2], ext[3])
    return im


def probability_colorbar(fig, im, ax, n_classes, names=(), **kw):
    """A labelled colorbar for a probability background ``im`` beside ``ax`` (an Axes or a list).

    Two classes: "P(<class 1>)" from 0 to 1. More: the probability of the predicted class from 1/K
    to 1 as the strength of the tint (grey here; the hue of the background is the class)."""
    kw = {"shrink": 0.9, "pad": 0.02, "aspect": 25, **kw}
    cb = fig.colorbar(im, ax=ax, **kw)
    if n_classes == 2:
        cb.set_label(f"P({class_labels(2, names)[1]})", fontsize=LABEL_SIZE)
    else:
        cb.set_label("probability of the predicted class\n(hue: the class)", fontsize=LABEL_SIZE)
    cb.ax.tick_params(labelsize=TICK_SIZE)
    return cb


def class_legend(target, n_classes, names=(), **kw):
    """A legend with one entry per class (colour and marker as in draw_points) on an Axes or a
    Figure (``loc="outside ..."`` places a figure's legend beside its axes)."""
    cols, marks = class_colors(n_classes), class_markers(n_classes)
    handles = [
        Line2D([], [], ls="", marker=marks[k], color=cols[k], markersize=6, label=lab)
        for k, lab in enumerate(class_labels(n_classes, names))
    ]
    kw = {"fontsize": LEGEND_SIZE, "frameon": False, "handletextpad": 0.3, "columnspacing": 1.0, **kw}
    return target.legend(handles=handles, **kw)


def _style(ax, title=None):
    """Tick and label sizes of one panel (and its title, if given)."""
    if title is not None:
        ax.set_title(title, fontsize=PANEL_TITLE_SIZE)
    ax.tick_params(labelsize=TICK_SIZE)
    axes = [ax.xaxis, ax.yaxis] + ([ax.zaxis] if hasattr(ax, "zaxis") else [])
    for a in axes:
        a.label.set_fontsize(LABEL_SIZE)


def _labels(ax, names):
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    if hasattr(ax, "zaxis"):
        if len(names) > 2:
            ax.set_zlabel(names[2])
        for a in (ax.xaxis, ax.yaxis, ax.zaxis):
            a.set_major_locator(MaxNLocator(nbins=4))
        ax.set_box_aspect(None, zoom=0.85)  # the z label inside the panel, not on its neighbour


def _coord_names(symbol, n, sub=""):
    """["$x_1$", "$x_2$", ...] (sub: a subscript before the index, e.g. "N," for $y_{N,1}$)."""
    return [rf"${symbol}_{{{sub}{i}}}$" for i in range(1, n + 1)]


def _pc_names(of, n):
    return [f"PC {i} of {of}" for i in range(1, n + 1)]


def point_size(m: int, base: float = 5.0) -> float:
    """Marker area for m points: base for 1000 points or more, up to about 2.3 base for few."""
    return base * float(np.clip(1000.0 / max(m, 1), 1.0, 3.0)) ** 0.75


def draw_points(ax, pts, c, n_classes, size=None, **kw):
    """The points by class (colour and marker per class); size: marker area, by default from the
    number of points (point_size)."""
    cols, marks = class_colors(n_classes), class_markers(n_classes)
    size = point_size(len(pts), 6.0) if size is None else size
    kw = {"edgecolors": "white", "linewidths": 0.2, **kw}
    for k in range(n_classes):
        sel = c == k
        if np.any(sel):
            if pts.shape[1] >= 3 and hasattr(ax, "zaxis"):
                ax.scatter(pts[sel, 0], pts[sel, 1], pts[sel, 2], s=size, color=cols[k], marker=marks[k], **kw)
            else:
                ax.scatter(pts[sel, 0], pts[sel, 1], s=size, color=cols[k], marker=marks[k], **kw)


def draw_dataset(ax, dataset, title=None, legend=False):
    """The training points by class; legend=True adds the class legend to ax."""
    x = dataset.x_train
    names = _coord_names("x", min(x.shape[1], 3))
    if x.shape[1] == 1:
        x = np.column_stack([x[:, 0], np.zeros(len(x))])
        names = [r"$x_1$", "(1D data)"]
        ax.set_yticks([])
    elif x.shape[1] > 3 or (x.shape[1] == 3 and not hasattr(ax, "zaxis")):
        k = 3 if hasattr(ax, "zaxis") else 2
        x = pca(x, k)[2]
        names = _pc_names("x", k)
    draw_points(ax, x, dataset.c_train, dataset.n_classes)
    _labels(ax, names)
    _style(ax, title or dataset.name)
    if not hasattr(ax, "zaxis"):
        ax.set_aspect("equal", adjustable="datalim")
    if legend:
        class_legend(ax, dataset.n_classes, dataset.class_names, loc="best", markerscale=1.2)


def draw_prediction(ax, model, flat, dataset, title=None, colorbar=True):
    """The classifier's probability over the input plane with the training points on top (and its
    colorbar beside ax, unless colorbar=False); returns the background image."""
    x = np.concatenate([dataset.x_train, dataset.x_test])
    ext = extent(x, 0.05)
    im = _background(ax, lambda p: model.predict_proba(flat, p), ext, dataset.n_classes)
    draw_points(ax, dataset.x_train, dataset.c_train, dataset.n_classes, size=point_size(len(dataset.x_train)))
    _labels(ax, _coord_names("x", 2))
    _style(ax, title or "prediction")
    if colorbar:
        probability_colorbar(ax.figure, im, ax, dataset.n_classes, dataset.class_names)
    return im


def draw_features(ax, model, flat, y, c, title=None, colorbar=True, names=()):
    """Features y (m, d_hat) with the linear classifier as background (exact when d_hat = 2; on the
    plane of the first two principal components otherwise), its colorbar beside ax unless
    colorbar=False; names: the class names. Returns the background image."""
    n = model.n_classes
    if y.shape[1] == 2:
        ext = extent(y, 0.1)
        im = _background(ax, lambda p: model.classify_features(flat, p), ext, n)
        draw_points(ax, y, c, n, size=point_size(len(y)))
        _labels(ax, _coord_names("y", 2, "N,"))
    else:
        mean, comps, z = pca(y, 2)
        ext = extent(z, 0.1)
        im = _background(ax, lambda p: model.classify_features(flat, mean + p @ comps), ext, n)
        draw_points(ax, z, c, n, size=point_size(len(z)))
        _labels(ax, _pc_names("$y_N$", 2))
    _style(ax, title or r"features $y_N$")
    if colorbar:
        probability_colorbar(ax.figure, im, ax, n, names)
    return im


def draw_features_3d(ax, y, c, n_classes, title=None):
    z = y if y.shape[1] == 3 else pca(y, 3)[2]
    draw_points(ax, z, c, n_classes, size=point_size(len(z), 4.0))
    _labels(ax, _coord_names("y", 3, "N,") if y.shape[1] == 3 else _pc_names("$y_N$", 3))
    _style(ax, title or (r"features $y_N$" if y.shape[1] == 3 else r"features $y_N$ (PCA 3D)"))


def draw_history(ax_loss, ax_acc, history, label=None, color=None, xkey="iteration", loss_name="loss"):
    """Loss (log scale) and accuracy; train solid, test dashed."""
    x = history[xkey]
    line = ax_loss.plot(x, history["train_loss"], "-", color=color, label=label)[0]
    color = line.get_color()
    ax_loss.plot(x, history["test_loss"], "--", color=color)
    ax_acc.plot(x, 100 * np.asarray(history["train_accuracy"]), "-", color=color, label=label)
    ax_acc.plot(x, 100 * np.asarray(history["test_accuracy"]), "--", color=color)
    losses = np.asarray(history["train_loss"], dtype=float)
    if np.all(losses > 0) and losses.max() >= 10.0 * losses.min():  # log scale over a decade or more
        ax_loss.set_yscale("log")
    for ax in (ax_loss, ax_acc):
        ax.set_xlabel(xkey)
        ax.grid(True, alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        _style(ax)
    ax_loss.set_ylabel(loss_name)
    ax_acc.set_ylabel("accuracy (%)")


def layer_ticks(ax, n_layers: int, axis="x"):
    """Integer ticks for layers 1..n_layers: every layer up to 12, else layer 1 and round steps
    (at most about 9 labels, so 100 layers stay readable) with a minor tick per layer up to 100."""
    a = ax.xaxis if axis == "x" else ax.yaxis
    if n_layers <= 12:
        major = list(range(1, n_layers + 1))
    else:
        vals = MaxNLocator(nbins=8, integer=True, steps=[1, 2, 5, 10]).tick_values(1, n_layers)
        major = [1] + [int(t) for t in vals if 1 + n_layers / 20 <= t <= n_layers]
        if n_layers <= 100:
            a.set_minor_locator(MultipleLocator(1))
    a.set_major_locator(FixedLocator(major))
    (ax.set_xlim if axis == "x" else ax.set_ylim)(0.3, n_layers + 0.7)


def draw_steps(ax, h, label=None, offset=0.0, width=0.8, color=None):
    j = np.arange(1, len(h) + 1)
    ax.bar(j + offset, h, width=width, label=label, color=color or LINE_COLOR)
    ax.axhline(0.0, color="k", lw=0.6)
    layer_ticks(ax, len(h))
    ax.set_xlabel(r"layer $j$")
    ax.set_ylabel(r"step $h_j$")
    ax.grid(True, axis="y", alpha=0.3)
    _style(ax)


def layer_choice(n_layers: int, count: int = 4) -> list[int]:
    """Layers to show, first and last included: 0, N/3, 2N/3, N for four (000: 0, 5, 10, 15 of
    15)."""
    count = min(count, n_layers + 1)
    return sorted({int(round(k * n_layers / (count - 1))) for k in range(count)})


def draw_layers(fig, model, flat, x, c, layers=None, title=None, colorbar=True, names=()):
    """A row of snapshots of the features through the network (fig: a Figure or SubFigure), with
    one colorbar for the row's classifier backgrounds unless colorbar=False; names: the class
    names. Returns the axes."""
    states = model.states(flat, x)
    layers = layers or layer_choice(model.N)
    axes = fig.subplots(1, len(layers), squeeze=False)[0]
    n = model.n_classes
    im = None
    for ax, j in zip(axes, layers, strict=True):
        y = states[j]
        if y.shape[1] == 2:
            ext = extent(states[layers[-1]], 0.1)
            ext = _union(ext, extent(y, 0.1))
            im = _background(ax, lambda p: model.classify_features(flat, p), ext, n)
            draw_points(ax, y, c, n, size=point_size(len(y), 4.0))
            _labels(ax, _coord_names("y", 2, f"{j},"))
        else:
            draw_points(ax, pca(y, 2)[2], c, n, size=point_size(len(y), 4.0))
            _labels(ax, _pc_names(f"$y_{{{j}}}$", 2))
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
        ax.yaxis.set_major_locator(MaxNLocator(nbins=4))
        _style(ax, f"layer {j}" + (" (PCA)" if y.shape[1] > 2 else ""))
    if colorbar and im is not None:
        probability_colorbar(fig, im, list(axes), n, names, shrink=0.95)
    if title:
        fig.suptitle(title, fontsize=TITLE_SIZE)
    return axes


def _union(a, b):
    return min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3])


# -- the figures of one run ---------------------------------------------------------------------


def _legend_below(fig, ds):
    ncol = ds.n_classes if ds.n_classes <= 4 else (ds.n_classes + 1) // 2
    class_legend(fig, ds.n_classes, ds.class_names, loc="outside lower center", ncol=ncol)


def data_figure(result) -> Figure:
    ds = result.dataset
    fig = Figure(figsize=(4.4, 4.4), layout="constrained")
    ax = fig.add_subplot(projection="3d" if ds.dim == 3 else None)
    draw_dataset(ax, ds, title=f"training data ({len(ds.x_train)} points)")
    _legend_below(fig, ds)
    fig.suptitle(run_title(result.model, ds), fontsize=TITLE_SIZE)
    return fig


def prediction_figure(result) -> Figure | None:
    """None unless the inputs are 2D."""
    ds = result.dataset
    if ds.dim != 2:
        return None
    fig = Figure(figsize=(4.8, 4.6), layout="constrained")
    draw_prediction(fig.add_subplot(), result.model, result.flat, ds, title="prediction on the input plane")
    _legend_below(fig, ds)
    fig.suptitle(run_title(result.model, ds), fontsize=TITLE_SIZE)
    return fig


def features_figure(result) -> Figure:
    model, flat, ds = result.model, result.flat, result.dataset
    y = model.forward(flat, ds.x_train).y_final
    if model.d >= 3:
        fig = Figure(figsize=(9.2, 4.4), layout="constrained")
        draw_features_3d(fig.add_subplot(1, 2, 1, projection="3d"), y, ds.c_train, ds.n_classes)
        draw_features(
            fig.add_subplot(1, 2, 2),
            model,
            flat,
            y,
            ds.c_train,
            title=r"features $y_N$ (PCA), linear classifier",
            names=ds.class_names,
        )
    else:
        fig = Figure(figsize=(4.8, 4.6), layout="constrained")
        draw_features(
            fig.add_subplot(),
            model,
            flat,
            y,
            ds.c_train,
            title=r"features $y_N$, linear classifier",
            names=ds.class_names,
        )
    _legend_below(fig, ds)
    fig.suptitle(run_title(model, ds), fontsize=TITLE_SIZE)
    return fig


def layers_figure(result) -> Figure:
    model, ds = result.model, result.dataset
    layers = layer_choice(model.N)
    fig = Figure(figsize=(2.7 * len(layers) + 0.9, 3.6), layout="constrained")
    draw_layers(
        fig, model, result.flat, ds.x_train, ds.c_train, layers=layers, title=run_title(model, ds), names=ds.class_names
    )
    _legend_below(fig, ds)
    return fig


def history_figure(result) -> Figure | None:
    """None when the run has no evaluation yet."""
    if not len(result.history["iteration"]):
        return None
    fig = Figure(figsize=(8, 3.4), layout="constrained")
    a1, a2 = fig.subplots(1, 2)
    xkey = "epoch" if result.config.optimizer == "adam" else "iteration"
    draw_history(a1, a2, result.history, color=LINE_COLOR, xkey=xkey, loss_name=f"loss ({result.model.loss})")
    _style(a1, "loss")
    _style(a2, "accuracy")
    a2.legend(
        handles=[
            Line2D([], [], color=LINE_COLOR, ls="-", label="train"),
            Line2D([], [], color=LINE_COLOR, ls="--", label="test"),
        ],
        fontsize=LEGEND_SIZE,
        loc="lower right",
    )
    fig.suptitle(run_title(result.model, result.dataset), fontsize=TITLE_SIZE)
    return fig


def draw_times(ax, times, nodes, n_layers=None):
    """The stage evaluation times t_j + c_i h_j (points at height j, layer j) and the node times
    tau_k (vertical lines, and ticks on the time axis) of the continuous layout on one time axis."""
    times = np.asarray(times, dtype=float)
    N = times.shape[0] if n_layers is None else n_layers
    for k, tau in enumerate(nodes):
        ax.axvline(tau, color="#999999", lw=0.7, ls=":", zorder=1, label=r"node times $\tau_k$" if k == 0 else None)
    ax.plot(
        np.asarray(nodes),
        np.full(len(nodes), 0.3),
        ls="",
        marker="^",
        color="#555555",
        markersize=4,
        clip_on=False,
        zorder=3,
    )
    j = np.repeat(np.arange(1, N + 1), times.shape[1])
    ax.plot(
        times.ravel(),
        j,
        ls="",
        marker="|",
        markersize=7,
        mew=1.2,
        color=LINE_COLOR,
        zorder=2,
        label=r"stage times $t_j + c_i h_j$",
    )
    layer_ticks(ax, N, axis="y")
    ax.set_xlabel(r"time $t$")
    ax.set_ylabel(r"layer $j$")
    _style(ax)


def steps_figure(result) -> Figure | None:
    """None for models without steps (Net). In the continuous parameter layout a second panel shows
    where the layers evaluate their parameters: the stage times t_j + c_i h_j and the node times."""
    if "h" not in result.params:
        return None
    model = result.model
    continuous = getattr(model, "params", "shared") == "continuous"
    if continuous:
        fig = Figure(figsize=(5.6, 3.4 + 0.1 * min(model.N, 30) + 1.4), layout="constrained")
        ax, ax_t = fig.subplots(2, 1, height_ratios=(1.0, 1.2))
    else:
        fig = Figure(figsize=(5.2, 3.4), layout="constrained")
        ax = fig.add_subplot()
    h = result.params["h"]
    draw_steps(ax, h, label="fixed" if model.kind == "rk" else "learned")
    total = f"{float(np.sum(h)):.3g}"
    if model.kind == "rk":
        title = rf"fixed steps $h_j = T/N$, $T$ = {total}"
    else:
        title = rf"learned steps, $\Sigma_j h_j$ = {total}"
        ax.axhline(model.step0, color="#D55E00", ls="--", lw=1.0, label=r"initial $h_j = T/N$")
    _style(ax, title)
    if continuous:
        draw_times(ax_t, model.stage_times(h), model.nodes)
        _style(ax_t, "where the layers evaluate the parameters (continuous layout)")
    if model.kind != "rk" or continuous:
        fig.legend(fontsize=LEGEND_SIZE, loc="outside lower center", ncol=2, frameon=False)
    fig.suptitle(run_title(model, result.dataset), fontsize=TITLE_SIZE)
    return fig


def run_figures(result) -> dict[str, Figure]:
    """The figures of a finished run that apply to it, by file stem."""
    makers = {
        "data": data_figure,
        "prediction": prediction_figure,
        "features": features_figure,
        "layers": layers_figure,
        "history": history_figure,
        "steps": steps_figure,
    }
    figs = {name: make(result) for name, make in makers.items()}
    return {name: fig for name, fig in figs.items() if fig is not None}


def run_plots(result, out_dir=None) -> list[Path]:
    """Write every plot that applies to a finished run into its folder; returns the files."""
    out_dir = Path(out_dir or result.run_dir)
    files = []
    for name, fig in run_figures(result).items():
        files += save(fig, out_dir / name)
    return files

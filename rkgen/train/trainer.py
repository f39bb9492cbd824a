"""The training loop (downstream of the chain): one function, ``train``, for the API and the CLI.

A run writes into its folder, as it goes:

- config.json   the resolved configuration (every default filled in; ``params``, the parameter
  layout), the network's tableau, versions, and in the continuous layout its fixed node times
  (``layout``: ``params``, ``nodes``, the shapes of K and beta);
- dataset.npz   the exact training and test points (so a resume or a plot never redraws them);
- history.csv   one row per evaluation: iteration, epoch, loss and accuracy on train and test,
  seconds, and the step control (backtracking's L, or the learning rate), appended and flushed;
- params.npz    the learned parameters K, beta, h, W, mu (and the flat vector; in the continuous
  parameter layout also the node times ``nodes``), replaced atomically;
- state.npz     what an exact resume needs: parameters, optimiser state, shuffle position, RNG
  state;
- summary.json  status (completed / interrupted / diverged / stalled), the message, final metrics;
- plots         PNG and PDF (see rkgen.train.plots).

Ctrl-C sets a flag; the loop stops at the next iteration boundary, saves, and can be resumed; the
resumed run gives the same numbers as one that was never interrupted. A non-finite cost or gradient,
or an implicit solve that does not converge, stops the run with a message and keeps the last good
parameters (backtracking instead rejects such a trial step and shortens the step, as Algorithm 2
does).
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from rkgen.errors import RkgenError, count
from rkgen.train import memory, runs
from rkgen.train.config import TrainConfig, short
from rkgen.train.datasets import Dataset, builtin_dim, check_source, is_builtin, make_dataset
from rkgen.train.models import Model, SolveFailure, resolve_network
from rkgen.train.optimizers import ARMIJO_GROWTH, ARMIJO_MAX_STEP, Adam, armijo_accepts, sufficient_decrease
from rkgen.train.progress import Progress


@dataclass
class TrainResult:
    status: str
    message: str
    history: dict
    params: dict
    flat: np.ndarray
    model: Model
    dataset: Dataset
    config: TrainConfig
    run_dir: Path | None
    seconds: float
    iteration: int
    epoch: int
    compile_seconds: float = 0.0
    compiled: bool = False
    signal: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("completed", "stalled")

    def final(self, key: str) -> float:
        return float(self.history[key][-1]) if len(self.history[key]) else float("nan")


def summary_line(res: TrainResult) -> str:
    """The result in a line (and the run folder, the network module and any message on lines of their own): what
    `rkgen train` prints at the end, also when a signal stops it while the network compiles."""
    cfg = res.config
    what = res.model.name
    steps = count(res.iteration, "iteration") if cfg.optimizer != "adam" else count(res.epoch, "epoch")
    extra = ""
    if res.model.network is not None and (res.compile_seconds > 0.0 or res.compiled):
        how = "compiling the network (first use)" if res.compiled else "loading the compiled network"
        extra = f" (+ {res.compile_seconds:.1f} s {how})"
    text = (
        f"{res.status}: {what} on {res.dataset.name}, {steps} in {res.seconds:.1f} s{extra}; "
        f"loss {res.final('train_loss'):.4g} (test {res.final('test_loss'):.4g}), accuracy "
        f"{100 * res.final('train_accuracy'):.1f}% (test {100 * res.final('test_accuracy'):.1f}%)"
    )
    if "h" in res.params and cfg.model != "rk":
        text += f", {int((res.params['h'] != 0).sum())} of {count(len(res.params['h']), 'step')} nonzero"
    if res.run_dir is not None:
        text += f"\n  -> {Path(res.run_dir).resolve()}"
    module = getattr(res.model.network, "__file__", None)
    if module:
        text += f"\n  network module: {module}"
    if res.message and (res.status != "completed" or res.signal):
        text += f"\n  {res.message}"
    return text


class Interrupted(KeyboardInterrupt):
    """A signal that stops the run at once (a second Ctrl-C or SIGTERM, SIGTERM while the network
    compiles, any signal while the plots are drawn); ``signum`` says which."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


class _StopFlag:
    """Ctrl-C (SIGINT) or SIGTERM (``timeout``, batch schedulers, ``docker stop``) asks the loop to
    stop at the next iteration boundary, which saves a checkpoint, the summary and the plots; a
    second signal stops at once (Interrupted). ``signum`` is the signal that asked.

    ``mode`` says what the run is doing: "loop" (as above), "warm-up" (the network compiles, in
    numba, for up to a minute; the checkpoint is already on disk; a first Ctrl-C lets the compile
    finish into numba's cache, a second raises Interrupted; SIGTERM, whose sender may follow it
    with SIGKILL, calls ``on_term``, which writes the summary and ends the process with status 143
    as SIGTERM's default action would: an exception cannot safely cross numba's compiler, whose
    LLVM callbacks swallow it and leave the compile half done) or "plots" (training is over: any
    signal stops the drawing at once)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum = None
        self.mode = "loop"
        self.on_term = None
        self._old = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    def _handler(self, signum, frame):
        if self.mode == "warm-up" and signum == signal.SIGTERM and self.on_term is not None:
            self.signum = self.signum or signum
            self.on_term(signum)  # writes the summary and ends the process (see the class)
        at_once = self.requested or self.mode == "plots"
        if self.signum is None:
            self.signum = signum
        if at_once:
            raise Interrupted(signum)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._old[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old = {}


def build_model(cfg: TrainConfig, dataset: Dataset, network=None, check_memory=True, nodes=None) -> Model:
    """The model of a configuration, after checking that the run fits in memory (unless ``check_memory`` is
    False: a model to evaluate, not to train). ``nodes``: the recorded node times of a continuous layout."""
    net = None
    if cfg.model != "net":
        net = resolve_network(network if network is not None else cfg.tableau)
    width = cfg.width or dataset.dim
    if check_memory:
        est = memory.estimate(
            layers=cfg.layers,
            width=width,
            stages=int(getattr(net, "STAGES", 1)),
            samples=len(dataset.x_train),
            test_samples=len(dataset.x_test),
            dim=dataset.dim,
            classes=dataset.n_classes,
            structure=getattr(net, "STRUCTURE", "explicit"),
            net=net is None,
            threads=_threads(cfg),
            tape_samples=cfg.batch_size if cfg.optimizer == "adam" else None,
            params=cfg.params,
            word=np.dtype(cfg.dtype).itemsize,
            stage_values=net._tape_inputs(cfg.field) if hasattr(net, "_tape_inputs") else None,
        )
        memory.check(
            est, f"this run ({count(cfg.layers, 'layer')}, width {width}, {count(len(dataset.x_train), 'point')})"
        )
    return Model(
        cfg.model,
        cfg.layers,
        width,
        dataset.dim,
        dataset.n_classes,
        network=net,
        field=cfg.field,
        activation=cfg.activation,
        loss=cfg.loss,
        final_time=cfg.final_time,
        step=cfg.step,
        fix_classifier=cfg.fix_classifier,
        params=cfg.params,
        nodes=nodes,
        augment=cfg.augment,
        reduction=cfg.reduction,
        dtype=cfg.dtype,
    )


def layout_info(model: Model) -> dict:
    """config.json's record of the parameter layout: its name, the shapes of K and beta and, in
    the continuous layout, the node times (floats as JSON writes them: they read back exactly)."""
    info = {
        "params": model.params,
        "K": list(model.layout["K"][2]),
        "beta": list(model.layout["beta"][2]),
    }
    if model.nodes is not None:
        info["nodes"] = model.nodes.tolist()
    return info


def saved_arrays(model: Model, u: np.ndarray) -> dict:
    """params.npz: the flat vector, its named views and, in the continuous layout, the node times."""
    arrays = {"flat": u, **model.views(u)}
    if model.nodes is not None:
        arrays["nodes"] = model.nodes
    return arrays


def _threads(cfg: TrainConfig) -> int:
    if cfg.threads is not None:
        return cfg.threads
    import numba

    return numba.get_num_threads()


@contextmanager
def thread_limit(threads: int | None):
    """Run the kernels on ``threads`` threads: numba's parallel regions and the BLAS behind numpy
    (through threadpoolctl). None leaves both as they are (numba: every core)."""
    if threads is None:
        yield
        return
    import numba
    from threadpoolctl import threadpool_limits

    most = numba.config.NUMBA_NUM_THREADS
    if threads > most:
        raise RkgenError(
            f"--threads {threads} exceeds the {most} threads numba started with (the machine's "
            "cores, or NUMBA_NUM_THREADS)"
        )
    before = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads, user_api="blas"):
            yield
    finally:
        numba.set_num_threads(before)


def _seeds(seed):
    data, init, shuffle = np.random.SeedSequence(seed).spawn(3)
    return np.random.default_rng(data), np.random.default_rng(init), np.random.default_rng(shuffle)


def _network_info(model: Model) -> dict | None:
    net = model.network
    if net is None:
        return None
    info = {
        "name": getattr(net, "NAME", None),
        "structure": getattr(net, "STRUCTURE", None),
        "order": getattr(net, "ORDER", None),
        "stages": getattr(net, "STAGES", None),
        "module": getattr(net, "__file__", None),
    }
    for k in ("A", "B", "C"):
        if hasattr(net, k):
            info[k] = np.asarray(getattr(net, k), dtype=float).tolist()
    return info


def _versions() -> dict:
    import numpy

    v = {"python": platform.python_version(), "numpy": numpy.__version__}
    try:
        from importlib.metadata import version

        v["rkgen"] = version("rkgen")
    except Exception:  # not installed: running from a checkout
        v["rkgen"] = "source"
    return v


def train(config: TrainConfig | None = None, *, network=None, resume=None, interrupt_at=None, **options) -> TrainResult:
    """Train a model; see TrainConfig for the options (``rkgen.train(tableau="rk4",
    dataset="spiral")``).

    network: a network module (or module-like object) to use instead of loading ``tableau``.
    resume: a run folder to continue; only ``iterations``/``epochs`` (to extend), ``plots`` and
    ``progress`` may be given with it. ``out=False`` trains without writing any file.
    interrupt_at: stop as if Ctrl-C were pressed when this many iterations are done (for tests).
    """
    with _StopFlag() as stop:
        if resume is not None:
            cfg_threads = options.get("threads")
            with thread_limit(cfg_threads):
                return _resume(Path(resume), network, interrupt_at, options, stop)
        if config is None:
            config = TrainConfig()
        if options:
            config = TrainConfig.from_dict({**config.to_dict(), **options})
        cfg = config.resolved()
        with thread_limit(cfg.threads):
            return _start(config, cfg, network, interrupt_at, stop)


def _start(config, cfg, network, interrupt_at, stop) -> TrainResult:
    write = config.out is not False
    _check_data_options(cfg)
    if network is None and cfg.tableau is not None and os.path.isfile(cfg.tableau):
        # a file wins over a built-in name (rkgen.tableau.load); config.json holds where it is, not
        # where it was typed from, so a resume from another folder loads the same file
        cfg.tableau = os.path.abspath(cfg.tableau)
    data_rng, init_rng, shuffle_rng = _seeds(cfg.seed)
    dataset = make_dataset(
        cfg.dataset,
        data_rng,
        cfg.samples,
        cfg.test_samples,
        label_column=cfg.label_column,
        test_fraction=cfg.test_fraction,
    )
    if cfg.data_scale != 1.0:
        dataset = _scaled(dataset, cfg.data_scale)
    if is_builtin(cfg.dataset):  # config.json: the sizes drawn, the defaults filled in
        cfg.samples, cfg.test_samples = len(dataset.x_train), len(dataset.x_test)
    if cfg.width is None:
        cfg.width = dataset.dim
    model = build_model(cfg, dataset, network)
    flat = model.init_params(init_rng, cfg.init_scale, cfg.init)
    model.project(flat)
    run_dir = None
    if write:
        run_dir = runs.create_run_dir(cfg.out, cfg.dataset, cfg.tableau, cfg.model)
        cfg.out = str(run_dir)
        runs.write_json(
            run_dir / "config.json",
            {
                "config": cfg.to_dict(),
                "network": _network_info(model),
                "versions": _versions(),
                "dataset": {
                    "name": dataset.name,
                    "train": len(dataset.x_train),
                    "test": len(dataset.x_test),
                    "dim": dataset.dim,
                    "classes": dataset.n_classes,
                },
                "loss": model.loss,
                "parameters": int(model.trainable.sum()),
                "layout": layout_info(model),
            },
        )
        runs.save_npz(run_dir / "dataset.npz", **dataset.arrays())
    state = {
        "iteration": 0,
        "epoch": 0,
        "batch": 0,
        "seconds": 0.0,
        "L": cfg.lr if cfg.optimizer == "gd-armijo" else cfg.lipschitz,  # the step control
        "shuffle_rng": shuffle_rng.bit_generator.state,
    }
    return _run(cfg, model, dataset, flat, state, {}, run_dir, shuffle_rng, interrupt_at, stop, fresh=True)


def _scaled(dataset: Dataset, scale: float) -> Dataset:
    """The data set with every point multiplied by scale; a point that overflows is refused."""
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        x, xt = dataset.x_train * scale, dataset.x_test * scale
    for name, a in (("training", x), ("test", xt)):
        bad = ~np.all(np.isfinite(a), axis=1)
        if bad.any():
            big = float(np.max(np.abs(dataset.x_train if name == "training" else dataset.x_test)))
            raise RkgenError(
                f"--data-scale {scale:g} makes {count(int(bad.sum()), name + ' point')} infinite (the largest "
                f"coordinate is {big:.3g}); choose a scale below {np.finfo(float).max / big:.3g}"
            )
    return replace(dataset, x_train=x, x_test=xt)


def _check_data_options(cfg: TrainConfig) -> None:
    """Refuse what a data set would ignore, and built-in data sets too large to draw."""
    builtin = is_builtin(cfg.dataset)
    if not builtin:
        check_source(cfg.dataset)  # an unknown name is that first, whatever else was given
        for name in ("samples", "test_samples"):
            if getattr(cfg, name) is not None:
                raise RkgenError(
                    f"--{name.replace('_', '-')} applies to the built-in data sets; a file's rows "
                    "are all used (split by --test-fraction unless it has a test set)"
                )
        return
    m = cfg.samples or 0
    mt = cfg.test_samples or m
    est = memory.estimate(
        layers=0,
        width=0,
        stages=0,
        samples=m,
        test_samples=mt,
        dim=builtin_dim(cfg.dataset),
        classes=0,
    )
    memory.check(est, f"the data set ({m} + {count(mt, 'point')})")


def _resume(run_dir: Path, network, interrupt_at, options, stop) -> TrainResult:
    allowed = {"iterations", "epochs", "plots", "progress", "threads", "tableau"}
    bad = {k for k, v in options.items() if v is not None} - allowed
    if bad:
        names = ", ".join("--" + k.replace("_", "-") for k in sorted(bad))
        raise RkgenError(
            "--resume continues a run with its saved configuration; only --iterations/--epochs (to "
            f"extend it), --tableau (a moved tableau file), --no-plots, --progress and --threads may be "
            f"given, not {names}"
        )
    for k in ("iterations", "epochs"):  # the user's own options, checked as such
        if options.get(k) is not None:
            TrainConfig(optimizer="adam" if k == "epochs" else "gd", **{k: options[k]}).resolved()
    if not run_dir.is_dir():
        if run_dir.exists():
            raise RkgenError(f"{run_dir} is not a folder, so not a run folder to resume")
        raise RkgenError(f"{run_dir}: no such folder")
    run_dir = run_dir.resolve()
    for name in ("config.json", "state.npz", "dataset.npz"):
        if not (run_dir / name).is_file():
            raise RkgenError(f"{run_dir} is not a resumable run folder (no {name})")
    conf = run_dir / "config.json"
    saved = runs.read_json(conf)
    if not isinstance(saved, dict) or not isinstance(saved.get("config"), dict):
        raise RkgenError(f"{conf}: not a run's configuration (no 'config' object)")
    try:
        cfg = TrainConfig.from_dict(saved["config"])
        cfg.resolved(saved=True)  # its own values first, named as config.json names them
    except RkgenError as e:
        raise RkgenError(f"{conf}: {_keys(str(e))}") from None
    for k in ("iterations", "epochs"):
        if options.get(k) is not None:
            if getattr(cfg, k) is None:
                raise RkgenError(f"this run uses {cfg.optimizer}; --{k} does not apply to it")
            setattr(cfg, k, int(options[k]))
    for k in ("plots", "progress", "threads"):
        if options.get(k) is not None:
            setattr(cfg, k, options[k])
    spec = options.get("tableau")
    if spec is not None:
        if cfg.model == "net":
            raise RkgenError(f"{run_dir} is a plain net run; it has no tableau, so --tableau does not apply")
        if network is None and os.path.isfile(spec):
            spec = os.path.abspath(spec)
        cfg.tableau = spec
    elif network is None and cfg.tableau is not None and _looks_like_file(cfg.tableau):
        if not os.path.isfile(cfg.tableau):
            raise RkgenError(
                f"{run_dir}: the run's tableau file {short(cfg.tableau)} (config.json) is not there any "
                "more; if it moved, give its new place with --tableau"
            )
        cfg.tableau = os.path.abspath(cfg.tableau)  # (older runs saved it as typed; checked below)
    cfg = cfg.resolved(saved=True)
    dataset = runs.read_dataset(run_dir / "dataset.npz")
    arrays = runs.read_npz(run_dir / "state.npz")
    try:
        meta = json.loads(str(arrays.pop("meta")))
        flat = np.array(arrays.pop("flat"), dtype=cfg.dtype)  # a float32 run resumes in float32
        for key in ("iteration", "epoch", "batch", "seconds", "L", "shuffle_rng"):
            meta[key]  # noqa: B018 - every key a resume reads
        done, epochs_done = int(meta["iteration"]), int(meta["epoch"])
    except (KeyError, ValueError, TypeError) as e:
        raise RkgenError(f"{run_dir / 'state.npz'}: not a run's state ({type(e).__name__}: {e})") from None
    if cfg.optimizer == "adam" and cfg.epochs < epochs_done:
        raise RkgenError(f"the run already has {count(epochs_done, 'epoch')}; --epochs must be at least that")
    if cfg.optimizer != "adam" and cfg.iterations < done:
        raise RkgenError(f"the run already has {count(done, 'iteration')}; --iterations must be at least that")
    if done > 0 and not (run_dir / "history.csv").is_file():
        raise RkgenError(
            f"{run_dir} is not a resumable run folder (no history.csv, though the run is at iteration {done})"
        )
    model = build_model(cfg, dataset, network)
    info = saved.get("network")
    if model.network is not None and isinstance(info, dict):
        runs.check_same_tableau(run_dir, model.network, info, cfg.tableau if network is None else network)
    if flat.shape != (model.size,):
        raise RkgenError(f"{run_dir}/state.npz does not match the model of its config.json")
    layout = saved.get("layout")
    recorded = layout.get("nodes") if isinstance(layout, dict) else None
    if model.nodes is not None and recorded is not None and recorded != model.nodes.tolist():
        raise RkgenError(f"{run_dir / 'config.json'}: its node times are not the grid of its configuration")
    shuffle_rng = np.random.default_rng()
    shuffle_rng.bit_generator.state = meta["shuffle_rng"]
    runs.write_json(run_dir / "config.json", {**saved, "config": cfg.to_dict()})
    return _run(cfg, model, dataset, flat, meta, arrays, run_dir, shuffle_rng, interrupt_at, stop, fresh=False)


def _looks_like_file(spec: str) -> bool:
    return spec.endswith((".json", ".py")) or "/" in spec or "\\" in spec


def _keys(message: str) -> str:
    """A configuration message in config.json's words: its keys (layers), not the options (--layers)
    the user never gave."""
    return re.sub(r"--([a-z][a-z-]*)", lambda m: m.group(1).replace("-", "_"), message)


def _run(cfg, model, dataset, flat, state, opt_arrays, run_dir, shuffle_rng, interrupt_at, stop, fresh):
    x, c = dataset.x_train.astype(model.dtype, copy=False), dataset.c_train  # the data in the model's dtype, once
    xt, ct = dataset.x_test.astype(model.dtype, copy=False), dataset.c_test
    history_rows = []
    writer = None
    if run_dir is not None:
        writer = runs.HistoryWriter(run_dir / "history.csv", truncate_after=None if fresh else state["iteration"])
        if not fresh:
            history_rows = [
                {k: float(v) for k, v in r.items()} for r in runs.read_history_rows(run_dir / "history.csv")
            ]
    adam_opt = Adam(model.size, cfg.lr, dtype=model.dtype) if cfg.optimizer == "adam" else None
    if adam_opt is not None and not fresh:
        adam_opt.load(opt_arrays, state)
    n = len(x)
    batches = max(1, math.ceil(n / cfg.batch_size)) if adam_opt else 1
    total = cfg.epochs * batches if adam_opt else cfg.iterations
    perm = opt_arrays.get("perm") if not fresh else None
    st = dict(state)
    grad = np.zeros(model.size, model.dtype)
    work = np.empty(model.size, model.dtype)
    prev = flat.copy()
    status, message = "completed", ""
    seconds0 = float(st["seconds"])
    t_start = time.perf_counter()
    ckpt_time = [t_start]
    show = cfg.progress if cfg.progress is not None else None
    bar = Progress(total, "it", enabled=show)
    first_record = not history_rows  # a new run, or one stopped before its first evaluation

    def elapsed():
        return seconds0 + time.perf_counter() - t_start

    def evaluate(u, train_fw=None):
        fw = train_fw if train_fw is not None else model.forward(u, x, c, keep_tape=False)
        fwt = model.forward(u, xt, ct, keep_tape=False)
        return fw.cost, fw.correct / len(x), fwt.cost, fwt.correct / len(xt)

    def record(u, train_fw=None):
        tl, ta, vl, va = evaluate(u, train_fw)
        row = {
            "iteration": st["iteration"],
            "epoch": st["epoch"],
            "train_loss": tl,
            "train_accuracy": ta,
            "test_loss": vl,
            "test_accuracy": va,
            "seconds": elapsed(),
            "step_control": st["L"] if cfg.optimizer in ("gd-backtracking", "gd-armijo") else cfg.lr,
        }
        history_rows.append(row)
        if writer is not None:
            writer.append(row)
        bar.metrics(tl, ta, vl, va)
        if time.perf_counter() - ckpt_time[0] >= cfg.checkpoint_seconds:
            checkpoint(u)
        return tl

    def checkpoint(u):
        if run_dir is None:
            return
        st["seconds"] = elapsed()
        st["shuffle_rng"] = shuffle_rng.bit_generator.state
        arrays = {"flat": u}
        if adam_opt is not None:
            a, meta = adam_opt.state()
            arrays.update(a)
            st.update(meta)
        if perm is not None and st["batch"] > 0:
            arrays["perm"] = perm
        runs.save_npz(run_dir / "params.npz", **saved_arrays(model, u))
        runs.save_npz(run_dir / "state.npz", meta=np.array(json.dumps(st)), **arrays)
        ckpt_time[0] = time.perf_counter()

    def _result(status, message, seconds, compile_seconds, compiled):
        hist = {
            k: np.array([r[k] for r in history_rows], dtype=np.int64 if k in ("iteration", "epoch") else float)
            for k in runs.HISTORY_COLUMNS
        }
        return TrainResult(
            status,
            message,
            hist,
            {k: v.copy() for k, v in model.views(u).items()},
            u.copy(),
            model,
            dataset,
            cfg,
            run_dir,
            seconds,
            st["iteration"],
            st["epoch"],
            compile_seconds,
            compiled,
            stop.name,
        )

    u = flat
    if fresh:
        checkpoint(u)  # every run folder can be resumed, even one killed while compiling
    compile_seconds, compiled = 0.0, False
    early = None  # why the run stopped before its loop began
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if model.network is not None and not stop.requested:
            bar.status(_compile_note(model))
            t_warm, misses = time.perf_counter(), _misses(model)

            def exit_now(signum):
                """SIGTERM while numba compiles: the summary, then exit as SIGTERM's default would."""
                try:
                    bar.close()
                    res = _result(
                        "interrupted",
                        _stopped(stop, f"at iteration {st['iteration']}, while the network was compiling"),
                        seconds0,
                        time.perf_counter() - t_warm,
                        _misses(model) > misses,
                    )
                    if run_dir is not None:
                        _write_summary(res)
                    print(summary_line(res), flush=True)
                    sys.stderr.flush()
                finally:
                    os._exit(128 + signum)

            stop.mode, stop.on_term = "warm-up", exit_now
            try:
                compile_seconds, compiled = _warm_up(model, u, x, c, xt, grad, cfg, adam_opt)
            except Interrupted:  # a second Ctrl-C
                compile_seconds, compiled = time.perf_counter() - t_warm, _misses(model) > misses
                early = "while the network was compiling"
            finally:
                stop.mode, stop.on_term = "loop", None
            bar.status(None)
        elif model.network is not None:
            early = "before training began (while the network was loading)"
        t_start = time.perf_counter()
        bar.start(st["iteration"])
        try:
            if early is not None:  # the network is not touched again: the loop would compile it
                status, message = "interrupted", _stopped(stop, f"at iteration {st['iteration']}, {early}")
            elif adam_opt is None:
                status, message, u = _full_batch(
                    cfg,
                    model,
                    u,
                    x,
                    c,
                    grad,
                    work,
                    st,
                    total,
                    first_record,
                    stop,
                    interrupt_at,
                    record,
                    bar,
                )
            else:
                status, message, u, perm = _minibatch(
                    cfg,
                    model,
                    u,
                    x,
                    c,
                    grad,
                    prev,
                    adam_opt,
                    shuffle_rng,
                    perm,
                    batches,
                    st,
                    total,
                    first_record,
                    stop,
                    interrupt_at,
                    record,
                    bar,
                )
        finally:
            bar.close()

    seconds = seconds0 if early is not None else elapsed()  # the loop's time; a run stopped before it books none
    checkpoint(u)
    if writer is not None:
        writer.close()
    result = _result(status, message, seconds, compile_seconds, compiled)
    if run_dir is not None:
        _write_summary(result)
        if stop.requested and status != "interrupted":  # a signal after the loop had ended
            result.signal = stop.name
            if cfg.plots:
                result.message += f"; the plots were skipped ({stop.name} after training had finished)"
            _write_summary(result)
        elif cfg.plots and early is None:
            _plots(result, stop)
    return result


def _plots(result: TrainResult, stop: _StopFlag) -> None:
    """Draw the run's plots; a signal meanwhile stops the drawing at once (the results are saved)."""
    from rkgen.train import plots

    stop.mode = "plots"
    try:
        plots.run_plots(result)
    except Interrupted as e:
        stop.mode = "done"
        result.signal = result.signal or e.name
        result.message += f"; the plots were cut short by {e.name}"
        _write_summary(result)
    except Exception as e:  # a plot must never cost the results
        result.message += f" (plots failed: {type(e).__name__}: {e})"
        _write_summary(result)
    finally:
        stop.mode = "done"


def _stopped(stop, where: str) -> str:
    by = f" by {stop.name}" if stop.requested else ""
    return f"stopped{by} {where}; resume with --resume"


def _dispatchers(module):
    from numba.core.registry import CPUDispatcher

    return [v for v in vars(module).values() if isinstance(v, CPUDispatcher)]


def _compile_note(model) -> str:
    net = model.network
    name = getattr(net, "NAME", "the")
    if any(d.signatures for d in _dispatchers(net)):
        return f"preparing the {name} network"
    return f"compiling the {name} network (numba, on first use about 15-40 s; later runs load it from the cache)"


def _warm_up(model, u, x, c, xt, grad, cfg, adam):
    """Compile (or load from numba's cache) every kernel the run calls, by calling each once on the
    shapes the run uses, and time it apart from training. Returns (seconds, whether anything was
    compiled rather than loaded)."""
    misses = _misses(model)
    t0 = time.perf_counter()
    try:
        batch = x[: cfg.batch_size] if adam is not None else x
        scratch = np.empty_like(grad)
        model.loss_and_grad(u, batch, c[: len(batch)], scratch)
        model.forward(u, x, keep_tape=False)
        model.forward(u, xt, keep_tape=False)
    except SolveFailure:
        pass  # the loop reports it, with the iteration
    seconds = time.perf_counter() - t0
    return seconds, _misses(model) > misses


def _misses(model) -> int:
    """How often the network's kernels missed numba's on-disk cache (and so were compiled)."""
    return sum(sum(d.stats.cache_misses.values()) for d in _dispatchers(model.network))


def _write_summary(res: TrainResult):
    steps = res.params.get("h")
    data = {
        "status": res.status,
        "message": res.message,
        "iteration": res.iteration,
        "epoch": res.epoch,
        "seconds": res.seconds,
        "compile_seconds": res.compile_seconds,
        "signal": res.signal or None,
        "final": {k: res.final(k) for k in ("train_loss", "train_accuracy", "test_loss", "test_accuracy")},
    }
    if steps is not None:
        data["steps"] = steps.tolist()
        data["nonzero_steps"] = int(np.count_nonzero(steps))
    runs.write_json(res.run_dir / "summary.json", data)


def _finite(fw, grad=None):
    from rkgen.train._kernels import all_finite  # numba on first use

    if not math.isfinite(fw.cost):
        return False
    return grad is None or all_finite(grad)


def _trial(model, u, grad, step, work, x, c):
    """The trial point work = P(u - step g) of a line search and its forward pass on (x, c); None when an
    implicit stage solve fails there (the search then shortens the step)."""
    np.multiply(grad, -step, out=work)
    work += u
    model.project(work)
    try:
        return model.forward(work, x, c)
    except SolveFailure:
        return None


def _full_batch(cfg, model, u, x, c, grad, work, st, total, first_record, stop, interrupt_at, record, bar):
    """gd, gd-backtracking and gd-armijo (000 Algorithms 1 and 2, section 5.3) on the whole training
    set. The state's "L" is backtracking's L, or gd-armijo's last accepted step alpha."""
    try:
        fw = model.loss_and_grad(u, x, c, grad)
    except SolveFailure as e:
        return "diverged", f"the initial parameters fail: {e}", u
    if not _finite(fw, grad):
        return "diverged", "the cost or gradient at the initial parameters is not finite", u
    if first_record:
        try:
            record(u, fw)
        except SolveFailure as e:
            return "diverged", f"evaluating the test set at the initial parameters: {e}", u
    backtracking = cfg.optimizer == "gd-backtracking"
    armijo = cfg.optimizer == "gd-armijo"
    while st["iteration"] < total:
        if stop.requested or (interrupt_at is not None and st["iteration"] >= interrupt_at):
            return "interrupted", _stopped(stop, f"at iteration {st['iteration']}"), u
        if backtracking:
            L = st["L"]
            accepted = None
            for _ in range(cfg.max_trials):
                trial = _trial(model, u, grad, 1.0 / L, work, x, c)
                if trial is not None and armijo_accepts(trial.cost, fw.cost, grad, work - u, L):
                    accepted = trial
                    break
                L *= cfg.rho_up
            if accepted is None:
                st["L"] = L
                return (
                    "stalled",
                    f"backtracking found no decrease in {cfg.max_trials} trials at "
                    f"iteration {st['iteration']} (a stationary point, or rounding)",
                    u,
                )
            st["L"] = L * cfg.rho_down
            u, work = work, u
            fw = accepted
        elif armijo:
            alpha = min(ARMIJO_MAX_STEP, ARMIJO_GROWTH * st["L"])
            accepted = None
            for _ in range(cfg.max_trials):
                trial = _trial(model, u, grad, alpha, work, x, c)
                if trial is not None and sufficient_decrease(trial.cost, fw.cost, grad, work - u):
                    accepted = trial
                    break
                alpha *= 0.5
            if accepted is None:
                return (
                    "stalled",
                    f"the Armijo search found no sufficient decrease in {cfg.max_trials} halvings at "
                    f"iteration {st['iteration']} (a stationary point, or rounding)",
                    u,
                )
            st["L"] = alpha
            u, work = work, u
            fw = accepted
        else:
            np.multiply(grad, -cfg.lr, out=work)
            work += u
            model.project(work)
            try:
                trial = model.forward(work, x, c)
            except SolveFailure as e:
                return (
                    "diverged",
                    f"iteration {st['iteration'] + 1}: {e}; kept the last good parameters",
                    u,
                )
            if not np.isfinite(trial.cost):
                return (
                    "diverged",
                    (
                        f"the cost became non-finite at iteration {st['iteration'] + 1}"
                        f" (learning rate {cfg.lr} too large?); kept the last good "
                        "parameters"
                    ),
                    u,
                )
            u, work = work, u
            fw = trial
        model.backward(u, fw, grad)
        st["iteration"] += 1
        if not _finite(fw, grad):  # the cost is finite here: the step was accepted
            return "diverged", f"the gradient became non-finite at iteration {st['iteration']}", u
        if st["iteration"] % cfg.eval_every == 0 or st["iteration"] == total:
            try:
                record(u, fw)
            except SolveFailure as e:
                return "diverged", f"evaluating the test set at iteration {st['iteration']}: {e}", u
        bar.update(st["iteration"], fw.cost)
    return "completed", count(total, "iteration"), u


def _minibatch(
    cfg,
    model,
    u,
    x,
    c,
    grad,
    prev,
    adam,
    shuffle_rng,
    perm,
    batches,
    st,
    total,
    first_record,
    stop,
    interrupt_at,
    record,
    bar,
):
    """Adam with mini-batches of a seeded shuffle, one evaluation every eval_every epochs."""
    n = len(x)
    B = cfg.batch_size
    if first_record:
        try:
            cost = record(u)
        except SolveFailure as e:
            return "diverged", f"the initial parameters fail: {e}", u, perm
        if not np.isfinite(cost):
            return "diverged", "the cost at the initial parameters is not finite", u, perm
    have_prev = False
    drawn = st["batch"] > 0  # a run resumed within an epoch has that epoch's order (perm)
    while st["epoch"] < cfg.epochs:
        while st["batch"] < batches:
            if stop.requested or (interrupt_at is not None and st["iteration"] >= interrupt_at):
                return (
                    "interrupted",
                    _stopped(stop, f"at iteration {st['iteration']} (epoch {st['epoch']})"),
                    u,
                    perm,
                )
            if not drawn:  # after the stop check: a run stopped between epochs saves the RNG before the draw
                perm = shuffle_rng.permutation(n)
                drawn = True
            idx = perm[st["batch"] * B : (st["batch"] + 1) * B]
            try:
                fw = model.loss_and_grad(u, x[idx], c[idx], grad)
                ok = _finite(fw, grad)
                why = "the cost or gradient became non-finite"
            except SolveFailure as e:
                ok, why = False, str(e)
            if not ok:
                if have_prev:
                    u[...] = prev
                return (
                    "diverged",
                    f"{why} at iteration {st['iteration'] + 1}; kept the last good parameters",
                    u,
                    perm,
                )
            have_prev = True
            adam.step(u, grad, before=prev)  # prev: u before the step, written in the step's own pass
            model.project(u)
            st["batch"] += 1
            st["iteration"] += 1
            bar.update(st["iteration"], fw.cost)
        st["epoch"] += 1
        st["batch"] = 0
        drawn = False
        if st["epoch"] % cfg.eval_every == 0 or st["epoch"] == cfg.epochs:
            try:
                cost = record(u)
            except SolveFailure as e:
                cost, why = float("nan"), str(e)
            else:
                why = "the cost became non-finite"
            if not np.isfinite(cost):
                u[...] = prev
                return (
                    "diverged",
                    f"{why} at epoch {st['epoch']}; kept the last good parameters",
                    u,
                    perm,
                )
    return "completed", count(cfg.epochs, "epoch"), u, perm

"""Sweeps: a grid of training runs from one TOML spec, on a local process pool or a Dask cluster, resumable.

A spec names a base configuration (any option of ``rkgen train``) and what varies::

    [base]                      # every run starts from these options
    dataset = "spiral"
    optimizer = "adam"
    epochs = 40

    [[runs]]                    # optional: an explicit list; each entry is merged over base
    label = "StandardNet"       # optional: the entry's name in run names and tables
    model = "net"
    [[runs]]
    label = "RK4Net"
    model = "rk"
    tableau = "rk4"

    [grid]                      # optional: a full grid, crossed with every entry of runs
    layers = [1, 3, 5]
    seed = [1, 2, 3, 4]
    data = [                    # an axis of option sets: each value sets several options (label: its name)
        { label = "spiral", dataset = "spiral", epochs = 40 },
        { label = "donut", dataset = "donut2d", epochs = 20 },
    ]

    [summary]                   # optional
    repeat = "seed"             # the axis averaged over (mean +- std); default "seed" when it varies
    x = "layers"                # a numeric axis to plot the metrics against
    metrics = ["train_accuracy", "test_accuracy", "train_loss", "test_loss"]

    [sweep]                     # optional
    threads = 1                 # threads of every run (numba and BLAS); the default is 1

Each run is an ordinary run folder under the sweep folder, named from its axis values
(``label-RK4Net_layers-3_seed-2``); two runs with the same name are refused. The sweep folder holds
``sweep.toml`` (the resolved spec: every run with its full configuration), ``results.csv`` (one row per run that
ended, appended as runs end) and ``summary.md`` with its figures.

Determinism: every run's numbers depend only on its configuration, never on the executor, the number of
workers or the order in which runs end: each run has its own seed streams, and its thread count is part of its
configuration (``[sweep] threads``; the parallel sums of a pass are split by the thread count).

Executors: a local pool of worker processes (``workers``; by default as many as fit the machine's cores at
``threads`` each), or a Dask distributed cluster (``dask="tcp://host:8786"``, or ``dask="local:N"`` for a
LocalCluster of N worker processes on this machine). Dask workers write their run folders themselves: on a
cluster of several machines the sweep folder must be on a file system that every worker sees at the same path.

Resume and faults: running the same spec into the same folder again skips the runs that ended and resumes the
interrupted ones from their checkpoints (``rkgen train --resume``). A run that diverges or fails is recorded with
its message and does not stop the sweep. Ctrl-C or SIGTERM stops the sweep: no new run starts, the running ones
stop at their next iteration and save, and every row of results.csv is whole. A worker killed mid-run (kill -9,
a lost Dask worker) leaves its run unfinished; it is listed as such, and the next invocation resumes it.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import logging
import math
import os
import re
import signal
import threading
import time
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

from rkgen.errors import RkgenError
from rkgen.fileio import open_append, write_text_atomic
from rkgen.train.config import TrainConfig

#: the options a spec may not set: the sweep names and creates the run folders and drives them quietly
RESERVED = ("out", "progress", "threads")
#: the sections a spec may have
SECTIONS = ("base", "grid", "runs", "summary", "sweep")
#: statuses of a run that has ended (the trainer's, plus "failed": an error before or outside training)
ENDED = ("completed", "stalled", "diverged", "failed")
METRICS = ("train_accuracy", "test_accuracy", "train_loss", "test_loss")
COLUMNS = ("run", "status", "iteration", "epoch", "seconds", *METRICS, "message")
RESULTS = "results.csv"
SPEC = "sweep.toml"
SUMMARY = "summary.md"


# ---------------------------------------------------------------------------------------------------------------
# the spec
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Run:
    name: str
    axes: dict  # the values that vary, by axis name ("label" for a labelled entry of runs)
    options: dict  # the run's options as given (base + entry + grid point), before defaults


@dataclass
class Sweep:
    source: str  # the spec file
    base: dict
    axes: list  # axis names in the order of the run names
    runs: list
    threads: int = 1
    repeat: str | None = None
    x: str | None = None
    metrics: tuple = METRICS


_OPTIONS = {f.name for f in fields(TrainConfig)}


def _option_key(path, section, key) -> str:
    """The option's field name (``final-time`` and ``final_time`` both name final_time); refuses what is not one."""
    name = key.replace("-", "_")
    if name in RESERVED:
        why = {
            "out": "the sweep names every run's folder",
            "progress": "runs in a sweep report when they end",
            "threads": "set it once for every run in [sweep] threads",
        }[name]
        raise RkgenError(f"{path}: {section}.{key}: cannot be set in a sweep ({why})")
    if name not in _OPTIONS:
        raise RkgenError(f"{path}: {section}.{key}: unknown option; see 'rkgen train --help' for the options")
    return name


def _kind(value) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return type(value).__name__


def _scalar(path, where, value):
    if isinstance(value, (dict, list)):
        what = "table" if isinstance(value, dict) else "list"
        raise RkgenError(f"{path}: {where}: expected a single value, not a {what}")
    if isinstance(value, float) and not math.isfinite(value):
        raise RkgenError(f"{path}: {where}: {value} is not a finite number")
    return value


def _slug(value) -> str:
    if isinstance(value, float):
        text = repr(value)
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = Path(str(value)).stem if ("/" in str(value) or str(value).endswith(".json")) else str(value)
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", text).strip("-.") or "x"


def load_spec(path) -> Sweep:
    """Read and check a spec; every run's configuration is resolved (defaults, checks) before anything starts.

    Errors are one line: the file, the entry, what is wrong."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RkgenError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise RkgenError(f"{path}: is a folder, not a sweep spec") from None
    except UnicodeDecodeError:
        raise RkgenError(f"{path}: not a text file (UTF-8)") from None
    except tomllib.TOMLDecodeError as exc:
        raise RkgenError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise RkgenError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return parse_spec(data, str(path))


def parse_spec(data: dict, path: str = "spec") -> Sweep:
    for key in data:
        if key not in SECTIONS:
            raise RkgenError(f"{path}: unknown section [{key}]; a spec has {', '.join(SECTIONS)}")
    base = {}
    for key, value in _table(path, data, "base").items():
        base[_option_key(path, "base", key)] = _scalar(path, f"base.{key}", value)

    entries = data.get("runs", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise RkgenError(f"{path}: runs: expected a list of tables ([[runs]] entries)")
    if "runs" in data and not entries:
        raise RkgenError(f"{path}: runs: the list is empty")
    explicit = []
    for i, entry in enumerate(entries, 1):
        label = entry.get("label")
        if label is not None and (not isinstance(label, str) or not label.strip()):
            raise RkgenError(f"{path}: runs[{i}].label: expected a non-empty string")
        opts = {}
        for key, value in entry.items():
            if key != "label":
                opts[_option_key(path, f"runs[{i}]", key)] = _scalar(path, f"runs[{i}].{key}", value)
        if not opts and label is None:
            raise RkgenError(f"{path}: runs[{i}]: the entry is empty")
        explicit.append((label, opts))

    grid = {}  # axis name -> [(its value in run names and tables, the options it sets)]
    for key, values in _table(path, data, "grid").items():
        if not isinstance(values, list):
            raise RkgenError(f"{path}: grid.{key}: expected a list of values, not {_kind(values)} {values!r}")
        if not values:
            raise RkgenError(f"{path}: grid.{key}: the axis is empty")
        if all(isinstance(v, dict) for v in values):  # an axis of option sets, e.g. a data set with its iterations
            if re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", key) is None:
                raise RkgenError(f"{path}: grid.{key}: an axis name is letters, digits, - and _")
            axis = []
            for i, entry in enumerate(values, 1):
                opts = {
                    _option_key(path, f"grid.{key}[{i}]", k): _scalar(path, f"grid.{key}[{i}].{k}", v)
                    for k, v in entry.items()
                    if k != "label"
                }
                if not opts:
                    raise RkgenError(f"{path}: grid.{key}[{i}]: sets no option")
                label = entry.get("label", "-".join(_slug(v) for v in opts.values()))
                if not isinstance(label, str) or not label.strip():
                    raise RkgenError(f"{path}: grid.{key}[{i}].label: expected a non-empty string")
                axis.append((label, opts))
            grid[key.replace("-", "_")] = axis
            continue
        name = _option_key(path, "grid", key)
        kinds = {_kind(_scalar(path, f"grid.{key}", v)) for v in values}
        if len(kinds) > 1:
            raise RkgenError(f"{path}: grid.{key}: mixes {' and '.join(sorted(kinds))} values; give one type")
        grid[name] = [(v, {name: v}) for v in values]
    if not explicit and not grid:
        raise RkgenError(f"{path}: nothing to run: give [grid] axes, [[runs]] entries, or both")

    # the axes of the run names: a label, else the keys the entries set; then the grid's
    axes = []
    if any(label is not None for label, _ in explicit):
        if not all(label is not None for label, _ in explicit):
            raise RkgenError(f"{path}: runs: label some entries but not all; label every entry or none")
        axes.append("label")
    elif explicit:
        for _, opts in explicit:
            axes += [k for k in opts if k not in axes]
    axes += [k for k in grid if k not in axes]
    setters = {}
    for where, keys in [("runs", {k for _, opts in explicit for k in opts})] + [
        (f"grid.{axis}", {k for _, opts in values for k in opts}) for axis, values in grid.items()
    ]:
        for k in sorted(keys):
            if k in setters:
                raise RkgenError(f"{path}: {k} is set both in {setters[k]} and in {where}; set it in one place")
            setters[k] = where

    sweep_opts = _table(path, data, "sweep")
    threads = sweep_opts.get("threads", 1)
    for key in sweep_opts:
        if key != "threads":
            raise RkgenError(f"{path}: sweep.{key}: unknown; [sweep] has threads")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise RkgenError(f"{path}: sweep.threads: expected a positive integer, not {threads!r}")

    runs, seen = [], {}
    for label, opts in explicit or [(None, {})]:
        for point in itertools.product(*grid.values()):
            options = {**base, **opts}
            values = {"label": label} if label is not None else {k: opts[k] for k in opts}
            for axis, (value, chosen) in zip(grid, point, strict=True):
                options.update(chosen)
                values[axis] = value
            values = {k: values.get(k) for k in axes}
            name = "_".join(f"{k.replace('_', '-')}-{_slug(values[k])}" for k in axes)
            if name in seen:
                raise RkgenError(
                    f"{path}: duplicate run name {name!r} (runs {seen[name]} and {len(runs) + 1} have the same "
                    "axis values); make the entries differ, or label them"
                )
            seen[name] = len(runs) + 1
            try:
                TrainConfig.from_dict({**options, "threads": threads}).resolved()
            except RkgenError as exc:
                raise RkgenError(f"{path}: run {name}: {exc}") from None
            except TypeError as exc:
                raise RkgenError(f"{path}: run {name}: {exc}") from None
            runs.append(Run(name, values, options))

    summary = _table(path, data, "summary")
    for key in summary:
        if key not in ("repeat", "x", "metrics"):
            raise RkgenError(f"{path}: summary.{key}: unknown; [summary] has repeat, x, metrics")
    repeat = summary.get("repeat", "seed" if "seed" in axes else None)
    if repeat is not None:
        repeat = repeat.replace("-", "_") if isinstance(repeat, str) else repeat
        if repeat not in axes:
            raise RkgenError(f"{path}: summary.repeat: {repeat!r} is not an axis of this sweep ({', '.join(axes)})")
    x = summary.get("x")
    if x is not None:
        x = x.replace("-", "_") if isinstance(x, str) else x
        if x not in axes or x == repeat:
            raise RkgenError(f"{path}: summary.x: {x!r} is not an axis of this sweep other than the repeat axis")
        if any(not isinstance(r.axes[x], (int, float)) or isinstance(r.axes[x], bool) for r in runs):
            raise RkgenError(f"{path}: summary.x: the axis {x!r} is not numeric")
    metrics = summary.get("metrics", list(METRICS))
    if not isinstance(metrics, list) or not metrics or any(m not in METRICS for m in metrics):
        raise RkgenError(f"{path}: summary.metrics: expected a list of {', '.join(METRICS)}")
    return Sweep(path, base, axes, runs, threads, repeat, x, tuple(metrics))


def _table(path, data, key) -> dict:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise RkgenError(f"{path}: {key}: expected a table [{key}]")
    return value


# ---------------------------------------------------------------------------------------------------------------
# the sweep folder
# ---------------------------------------------------------------------------------------------------------------


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON's escapes are TOML's basic-string escapes
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def resolved_toml(sweep: Sweep) -> str:
    """sweep.toml: the spec resolved, every run with its full configuration (defaults filled in)."""
    out = [
        f"# resolved from {Path(sweep.source).name} by rkgen sweep: {len(sweep.runs)} runs",
        "",
        "[sweep]",
        f"threads = {sweep.threads}",
        f"axes = {_toml_value(sweep.axes)}",
    ]
    if sweep.repeat:
        out.append(f"repeat = {_toml_value(sweep.repeat)}")
    if sweep.x:
        out.append(f"x = {_toml_value(sweep.x)}")
    out.append(f"metrics = {_toml_value(list(sweep.metrics))}")
    for run in sweep.runs:
        cfg = run_config(run, sweep.threads)
        out += ["", "[[runs]]", f"name = {_toml_value(run.name)}"]
        for k, v in cfg.items():
            if v is not None and k not in ("out", "progress"):
                out.append(f"{k} = {_toml_value(v)}")
    return "\n".join(out) + "\n"


def run_config(run: Run, threads: int) -> dict:
    """The run's full configuration (TrainConfig.resolved) as a dict."""
    return TrainConfig.from_dict({**run.options, "threads": threads}).resolved().to_dict()


def _summary_json(run_dir: Path) -> dict | None:
    try:
        return json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def run_state(run_dir: Path) -> str:
    """"new" (no folder), "ended" (a summary with an ended status), or "resume" (a checkpoint to continue)."""
    if not run_dir.exists():
        return "new"
    info = _summary_json(run_dir)
    if info is not None and info.get("status") in ENDED:
        return "ended"
    if (run_dir / "state.npz").exists() and (run_dir / "config.json").exists():
        return "resume"
    return "stale"  # created but killed before its first checkpoint: started again


def _row(run: Run, info: dict) -> dict:
    final = info.get("final") or {}
    return {
        "run": run.name,
        **{k: run.axes[k] for k in run.axes},
        "status": info.get("status", ""),
        "iteration": info.get("iteration", ""),
        "epoch": info.get("epoch", ""),
        "seconds": info.get("seconds", ""),
        **{m: final.get(m, "") for m in METRICS},
        "message": " ".join(str(info.get("message") or "").split()),
    }


def _csv_line(columns, row) -> str:
    buf = io.StringIO()
    csv.DictWriter(buf, columns, lineterminator="\n", extrasaction="ignore").writerow(
        {k: (repr(v) if isinstance(v, float) else v) for k, v in row.items()}
    )
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------------------------
# one run (in a worker process, a Dask worker, or this process)
# ---------------------------------------------------------------------------------------------------------------


def run_one(options: dict, threads: int, run_dir: str, resume: bool) -> dict:
    """Train one run into run_dir (resume: continue its checkpoint); returns its summary.json as a dict, or a
    "failed" record with the error's one line. Never raises for a run's own failure."""
    from rkgen.train.trainer import Interrupted, train

    try:
        if resume:
            res = train(resume=run_dir, progress=False, threads=threads)
        else:
            if Path(run_dir).exists():  # a folder left without a checkpoint: nothing in it to keep
                _clear_stale(Path(run_dir))
            res = train(**options, out=run_dir, progress=False, threads=threads)
    except Interrupted as exc:
        return {"status": "interrupted", "message": f"stopped at once by {exc.name}"}
    except RkgenError as exc:
        info = {"status": "failed", "message": str(exc)}
        _write_failure(Path(run_dir), info)
        return info
    except Exception as exc:  # noqa: BLE001 - a bug in one run must not end the sweep; its message is kept
        info = {"status": "failed", "message": f"{type(exc).__name__}: {exc}"}
        _write_failure(Path(run_dir), info)
        return info
    info = _summary_json(Path(res.run_dir)) if res.run_dir is not None else None
    return info or {"status": res.status, "message": res.message}


def _clear_stale(run_dir: Path) -> None:
    """Remove what a run killed before its first checkpoint left: regular files rkgen writes, then the folder."""
    for p in run_dir.iterdir():
        if p.is_file() and not p.is_symlink():
            p.unlink()
    try:
        run_dir.rmdir()
    except OSError as exc:
        raise RkgenError(f"{run_dir}: cannot start the run again here: {exc.strerror or exc}") from None


def _write_failure(run_dir: Path, info: dict) -> None:
    """A failed run's summary.json, so that the next invocation counts it as ended."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(run_dir / "summary.json", json.dumps(info, indent=2) + "\n")
    except (OSError, RkgenError):
        pass  # the result row still carries the message


def _worker_start() -> None:
    """A pool worker's start. Its threads are the run's own (``threads``: the trainer sets numba's and the BLAS
    thread counts for the run); numba's thread pool itself is left as numba starts it, since changing
    NUMBA_NUM_THREADS after numba has read it makes its next compile fail."""
    # an idle worker ignores Ctrl-C (the terminal sends it to every process of the sweep); during a run the
    # trainer's own handlers take SIGINT and SIGTERM: the run stops at its next iteration and saves
    signal.signal(signal.SIGINT, signal.SIG_IGN)


# ---------------------------------------------------------------------------------------------------------------
# executors
# ---------------------------------------------------------------------------------------------------------------


class _Stop:
    """Ctrl-C or SIGTERM asks the sweep to stop: no new run starts; the running ones are told to stop."""

    def __init__(self):
        self.signum = None
        self._old = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handler)
        return self

    def _handler(self, signum, frame):
        self.signum = self.signum or signum

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _serial(tasks, threads, stop, done):
    """Every run in this process, one after another (workers=1)."""
    for run, options, run_dir, resume in tasks:
        if stop.signum:
            return
        info = run_one(options, threads, run_dir, resume)  # the trainer takes the signals while it runs
        done(run, info)
        if info.get("status") == "interrupted":
            stop.signum = stop.signum or signal.SIGINT


def _pool(tasks, threads, workers, stop, done):
    """A pool of ``workers`` processes (spawned, so that none inherits numba's or OpenMP's threads), at most one
    run in flight per worker: a worker killed mid-run breaks the pool, and the runs then in flight are the ones
    left unfinished; the pool is started again for the rest."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    queue = list(tasks)
    context = multiprocessing.get_context("spawn")
    while queue and not stop.signum:
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_start) as ex:
            flying = {}
            broken = False
            told = False
            while (queue or flying) and not broken:
                while queue and len(flying) < workers and not stop.signum:
                    run, options, run_dir, resume = queue.pop(0)
                    flying[ex.submit(run_one, options, threads, run_dir, resume)] = run
                if not flying:
                    break
                finished, _ = wait(flying, timeout=0.2, return_when=FIRST_COMPLETED)
                if stop.signum and not told:
                    told = True
                    for proc in list(getattr(ex, "_processes", {}).values()):
                        try:
                            os.kill(proc.pid, signal.SIGTERM)  # the trainer stops at its next iteration, saved
                        except OSError:
                            pass
                for fut in finished:
                    run = flying.pop(fut)
                    try:
                        info = fut.result()
                    except BrokenProcessPool:
                        broken = True
                        info = {"status": "unfinished", "message": "its worker process ended abruptly (killed?)"}
                    done(run, info)
            if broken:
                for run in flying.values():
                    done(run, {"status": "unfinished", "message": "its worker process ended abruptly (killed?)"})


def _dask(tasks, threads, address, stop, done):
    """The runs as tasks on a Dask distributed cluster: an existing one (its scheduler's address), or a
    LocalCluster of N worker processes (address "local:N"), one thread each."""
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise RkgenError('--dask needs Dask\'s distributed scheduler: pip install "rkgen[dask]"') from None
    cluster = None
    if address.startswith("local:"):
        n = address.split(":", 1)[1]
        if not n.isdigit() or int(n) < 1:
            raise RkgenError(f"--dask {address}: local:N needs a positive number of workers")
        import dask

        # A run was 15-20% slower in a Dask worker than in a plain process. Two of Dask's defaults cost time in
        # the trainer's many small steps: the nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536 (alone, it
        # made a run 20-30% slower in a plain process), and each worker samples its threads' stacks every 10 ms
        # (its statistical profiler). The workers of our own cluster keep glibc's default and run unprofiled.
        environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
        environ.pop("MALLOC_TRIM_THRESHOLD_", None)
        settings = {"distributed.nanny.pre-spawn-environ": environ, "distributed.worker.profile.enabled": False}
        with dask.config.set(settings):
            cluster = LocalCluster(
                n_workers=int(n), threads_per_worker=1, processes=True, dashboard_address=None,
                silence_logs=logging.ERROR,
            )
        address = cluster
    try:
        client = Client(address, timeout="30s")
    except OSError as exc:
        if cluster is not None:
            cluster.close()
        raise RkgenError(f"--dask {address}: cannot reach the scheduler: {exc}") from None
    try:
        futures = {}
        for run, options, run_dir, resume in tasks:
            fut = client.submit(run_one, options, threads, run_dir, resume, key=f"rkgen-{run.name}-{os.getpid()}",
                                pure=False)
            futures[fut] = run
        pending = set(futures)
        for fut in as_completed(futures):
            pending.discard(fut)
            run = futures[fut]
            try:
                info = fut.result()
            except Exception as exc:  # noqa: BLE001 - KilledWorker and the like: the run did not end
                info = {"status": "unfinished", "message": f"{type(exc).__name__}: {exc}"}
            done(run, info)
            if stop.signum:
                for f in pending:
                    f.cancel()
                for f in pending:
                    done(futures[f], {"status": "unfinished", "message": "the sweep was stopped"})
                break
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


# ---------------------------------------------------------------------------------------------------------------
# the sweep
# ---------------------------------------------------------------------------------------------------------------


def compile_networks(sweep: Sweep, runs) -> float:
    """Load (render, compile) every network module the runs need, once, before they fan out: a worker then
    loads it from numba's cache instead of compiling it again. Returns the seconds it took."""
    import numpy as np

    from rkgen.train.models import resolve_network
    from rkgen.train.trainer import thread_limit

    t0 = time.perf_counter()
    seen = set()
    for run in runs:
        cfg = run_config(run, sweep.threads)
        if cfg["model"] == "net" or cfg["tableau"] in seen:
            continue
        seen.add(cfg["tableau"])
        net = resolve_network(cfg["tableau"])
        rng = np.random.default_rng(0)
        d, m, n = 2, 8, 2
        with thread_limit(sweep.threads):
            y, tape = net.forward(rng.standard_normal((m, d)), 0.1 * rng.standard_normal((n, d, d)),
                                  np.zeros((n, d)), np.full(n, 0.1))
            net.backward(tape, y)
    return time.perf_counter() - t0


def run_sweep(spec, out=None, workers=None, dask=None, dry_run=False, report=print, precompile=True,
              processes=None) -> dict:
    """Run (or continue) a sweep; returns counts by status and the seconds taken (``seconds``, of which
    ``compile_seconds`` before the runs started). ``spec``: a path or a :class:`Sweep`. precompile=False leaves
    every worker to compile the networks itself (for measuring what compiling once saves). processes=True runs
    the runs in worker processes even for ``workers=1`` (by default one worker is this process)."""
    sweep = spec if isinstance(spec, Sweep) else load_spec(spec)
    folder = Path(out) if out is not None else Path("sweeps") / Path(sweep.source).stem
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise RkgenError(f"--workers must be a positive integer, not {workers!r}")
    if workers is not None and dask is not None:
        raise RkgenError("give --workers (a local pool) or --dask (a Dask cluster), not both")
    text = resolved_toml(sweep)
    if (folder / SPEC).exists():
        if (folder / SPEC).read_text(encoding="utf-8").split("\n", 1)[1] != text.split("\n", 1)[1]:
            raise RkgenError(
                f"{folder}: holds a sweep of another spec (its {SPEC} differs); choose another --out, or remove it"
            )
    elif folder.exists() and any(folder.iterdir()):
        raise RkgenError(f"{folder}: exists, is not empty and holds no sweep; choose another --out")
    states = {run.name: run_state(folder / run.name) for run in sweep.runs}
    todo = [run for run in sweep.runs if states[run.name] != "ended"]
    workers = workers or max(1, _cores() // sweep.threads)
    pooled = workers > 1 or processes
    where = f"Dask ({dask})" if dask else f"{workers} worker process(es)" if pooled else "this process"
    report(
        f"sweep {sweep.source}: {len(sweep.runs)} runs, {len(sweep.runs) - len(todo)} ended before, "
        f"{sum(states[r.name] == 'resume' for r in todo)} to resume, "
        f"{sum(states[r.name] != 'resume' for r in todo)} to start; {where}, {sweep.threads} thread(s) per run"
        f"\n  -> {folder.resolve()}"
    )
    if dry_run:
        for run in sweep.runs:
            report(f"  {run.name}: {states[run.name]}")
        return {"planned": len(todo)}
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(folder / SPEC, text)
    columns = ["run", *sweep.axes, *COLUMNS[1:]]
    ended = {}
    for run in sweep.runs:
        if states[run.name] == "ended":
            ended[run.name] = _row(run, _summary_json(folder / run.name))
    write_text_atomic(folder / RESULTS, "".join([_csv_line(columns, dict(zip(columns, columns, strict=True)))]
                                                 + [_csv_line(columns, ended[r.name]) for r in sweep.runs
                                                    if r.name in ended]))
    counts = {}
    t_start = time.perf_counter()
    compile_seconds = compile_networks(sweep, todo) if todo and precompile else 0.0
    if todo and compile_seconds >= 0.5:
        report(f"  networks compiled or loaded once before the runs: {compile_seconds:.1f} s")
    unfinished = {}
    t0 = time.perf_counter()
    with open_append(folder / RESULTS) as results, _Stop() as stop:

        def done(run, info):
            status = info.get("status", "failed")
            counts[status] = counts.get(status, 0) + 1
            if status in ENDED:
                row = _row(run, info)
                ended[run.name] = row
                results.write(_csv_line(columns, row))
                results.flush()
            else:
                unfinished[run.name] = info
            n = len(ended) + len(unfinished) - (len(sweep.runs) - len(todo))
            acc = (info.get("final") or {}).get("test_accuracy")
            tail = f", test accuracy {100 * acc:.1f}%" if isinstance(acc, float) and status in ENDED else ""
            msg = f" ({info['message']})" if status not in ("completed",) and info.get("message") else ""
            report(f"[{n}/{len(todo)}] {run.name}: {status}{tail}{msg}")

        tasks = [
            (run, run.options, str(folder / run.name), states[run.name] == "resume") for run in todo
        ]
        if dask:
            _dask(tasks, sweep.threads, dask, stop, done)
        elif workers == 1 and not processes:
            _serial(tasks, sweep.threads, stop, done)
        else:
            _pool(tasks, sweep.threads, workers, stop, done)
        signum = stop.signum
    left = [r for r in sweep.runs if r.name not in ended]
    if left:  # listed as unfinished; the next invocation resumes them
        with open_append(folder / RESULTS) as results:
            for run in left:
                info = unfinished.get(run.name, {"status": "unfinished", "message": "not started"})
                results.write(_csv_line(columns, _row(run, {**info, "status": "unfinished"})))
    write_summary(folder, sweep, [ended.get(r.name) for r in sweep.runs], time.perf_counter() - t0)
    report(
        f"sweep: {len(ended)} of {len(sweep.runs)} runs ended"
        + (f", {len(left)} unfinished (run the same command again to continue them)" if left else "")
        + f"; {folder / SUMMARY}"
    )
    return {
        "ended": len(ended), "unfinished": len(left), "signal": signum, **counts,
        "seconds": time.perf_counter() - t_start, "compile_seconds": compile_seconds,
    }


# ---------------------------------------------------------------------------------------------------------------
# summary.md and its figures
# ---------------------------------------------------------------------------------------------------------------


def _mean_std(values):
    vals = [float(v) for v in values if v not in ("", None) and math.isfinite(float(v))]
    if not vals:
        return math.nan, math.nan, 0
    mean = sum(vals) / len(vals)
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
    return mean, std, len(vals)


def _fmt(metric, mean, std, n):
    if n == 0:
        return "–"
    scale = 100.0 if "accuracy" in metric else 1.0
    digits = 2 if "accuracy" in metric else 4
    text = f"{scale * mean:.{digits}f}"
    return text + (f" ± {scale * std:.{digits}f}" if n > 1 else "")


def write_summary(folder: Path, sweep: Sweep, rows, seconds: float) -> None:
    """summary.md: mean +- std (sample standard deviation) over the repeat axis for every other combination of
    axes, with n, the runs that ended and the figures."""
    group_axes = [a for a in sweep.axes if a != sweep.repeat]
    groups = {}
    for run, row in zip(sweep.runs, rows, strict=True):
        key = tuple(run.axes[a] for a in group_axes)
        groups.setdefault(key, []).append(row)
    over = f" over {sweep.repeat}" if sweep.repeat else ""
    lines = [
        f"# Sweep {Path(sweep.source).name}",
        "",
        f"{len(sweep.runs)} runs, {sum(r is not None for r in rows)} ended; {sweep.threads} thread(s) per run; "
        f"this invocation took {seconds:.1f} s. Accuracies in %, mean ± sample standard deviation{over}; "
        "n counts the runs that ended.",
        "",
        "| " + " | ".join([*group_axes, *sweep.metrics, "n"]) + " |",
        "|" + "---|" * (len(group_axes) + len(sweep.metrics) + 1),
    ]
    for key, members in groups.items():
        ok = [r for r in members if r is not None]
        cells = [str(v) for v in key]
        n = 0
        for m in sweep.metrics:
            mean, std, n = _mean_std(r[m] for r in ok)
            cells.append(_fmt(m, mean, std, n))
        lines.append("| " + " | ".join([*cells, f"{len(ok)}/{len(members)}"]) + " |")
    bad = [(run.name, row) for run, row in zip(sweep.runs, rows, strict=True) if row and row["status"] != "completed"]
    if bad:
        lines += ["", "Runs that did not complete:", ""]
        lines += [f"- {name}: {row['status']}: {row['message']}" for name, row in bad]
    missing = [run.name for run, row in zip(sweep.runs, rows, strict=True) if row is None]
    if missing:
        lines += ["", f"Unfinished ({len(missing)}; run the sweep again to continue them): " + ", ".join(missing)]
    if sweep.x:
        names = _figures(folder, sweep, rows, group_axes)
        lines += ["", *[f"![{n}]({n}.png)" for n in names]]
    write_text_atomic(folder / SUMMARY, "\n".join(lines) + "\n")


def _figures(folder: Path, sweep: Sweep, rows, group_axes) -> list:
    """One figure per metric: the metric against the x axis, mean with a +-std band, one curve per combination of
    the other axes."""
    from matplotlib.figure import Figure

    from rkgen.train import plots

    curves = [a for a in group_axes if a != sweep.x]
    names = []
    for metric in sweep.metrics:
        fig = Figure(figsize=(6, 4), layout="constrained")
        ax = fig.add_subplot()
        by_curve = {}
        for run, row in zip(sweep.runs, rows, strict=True):
            if row is not None:
                key = tuple(run.axes[a] for a in curves)
                by_curve.setdefault(key, {}).setdefault(run.axes[sweep.x], []).append(row[metric])
        scale = 100.0 if "accuracy" in metric else 1.0
        for key, points in by_curve.items():
            xs = sorted(points)
            stats = [_mean_std(points[x]) for x in xs]
            mean = [scale * s[0] for s in stats]
            std = [scale * s[1] for s in stats]
            label = ", ".join(f"{a}={v}" for a, v in zip(curves, key, strict=True)) or metric
            line = ax.plot(xs, mean, "o-", label=label)[0]
            ax.fill_between(xs, [m - s for m, s in zip(mean, std, strict=True)],
                            [m + s for m, s in zip(mean, std, strict=True)], color=line.get_color(), alpha=0.2)
        xs_all = sorted({run.axes[sweep.x] for run in sweep.runs})
        if len(xs_all) > 2 and min(xs_all) > 0 and max(xs_all) / min(xs_all) >= 20:
            ax.set_xscale("log")
        ax.set_xlabel(sweep.x.replace("_", " "))
        ax.set_ylabel(metric.replace("_", " ") + (" (%)" if "accuracy" in metric else ""))
        if sweep.repeat:
            ax.set_title(f"mean ± std over {sweep.repeat}", fontsize=10)
        if by_curve:
            ax.legend(fontsize=8)
        plots.save(fig, folder / metric)
        names.append(metric)
    return names

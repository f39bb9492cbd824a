"""The trainer's configuration (downstream of the chain): every option, its default, its checks.

A bad option becomes one clear line. The resolved configuration (defaults filled in) is what a run folder's config.json
holds."""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass

from rkgen.errors import RkgenError
from rkgen.train.datasets import is_builtin
from rkgen.train.models import ACTIVATIONS, AUGMENTS, DTYPES, FIELDS, INITS, KINDS, PARAMS, REDUCTIONS
from rkgen.train.optimizers import DEFAULT_LR, OPTIMIZERS

DEFAULT_TABLEAU = "rk4"

#: options given as real numbers; each must be finite (nan and inf are refused by name)
FLOAT_OPTIONS = (
    "final_time",
    "step",
    "init_scale",
    "data_scale",
    "test_fraction",
    "lr",
    "lipschitz",
    "rho_up",
    "rho_down",
    "checkpoint_seconds",
)


#: the defaults of the options that apply only to some runs: they are None in a TrainConfig until
#: resolved() fills them in where they apply, so that an option given where it does not apply is
#: refused (given = not None) instead of silently ignored
DEFAULTS = {
    "field": "resnet",
    "label_column": -1,
    "test_fraction": 0.5,
    "batch_size": 5,
    "lipschitz": 1.0,
    "rho_up": 2.0,
    "rho_down": 0.9,
    "max_trials": 60,
}

#: the longest value a message repeats whole
SHORT = 40


def short(value) -> str:
    """repr(value), cut to about SHORT characters with an ellipsis: a message names a value, it
    does not repeat a page of it."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) > SHORT:
        text = text[: SHORT - 1] + "\u2026"
    return repr(text) if isinstance(value, str) else text


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _choice(flag: str, value, allowed) -> None:
    if value not in allowed:
        raise RkgenError(f"unknown {flag[2:]} {short(value)}; choose one of {', '.join(allowed)}")


def _at_least(flag: str, value, low: int, why: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise RkgenError(f"{flag} must be an integer, not {short(value)}")
    if value < low:
        text = "non-negative" if low == 0 else "positive" if low == 1 else f"at least {low}"
        raise RkgenError(f"{flag} must be {text}, not {value}" + (f" {why}" if why else ""))


@dataclass
class TrainConfig:
    tableau: str | None = None  # rk4 for the Runge-Kutta models; Net has none
    model: str = "rk"
    dataset: str = "spiral"
    samples: int | None = None
    test_samples: int | None = None
    label_column: int | None = None  # -1 for a file; a built-in set has no columns
    test_fraction: float | None = None  # 0.5 for a file; a built-in set draws its test set
    data_scale: float = 1.0
    layers: int = 10
    width: int | None = None
    field: str | None = None  # resnet
    activation: str = "tanh"
    params: str = "shared"
    loss: str = "auto"
    reduction: str = "mean"
    augment: str = "zeros"
    final_time: float | None = None
    step: float | None = None
    fix_classifier: bool = False
    init_scale: float = 1.0
    init: str = "uniform"
    optimizer: str = "gd-backtracking"
    iterations: int | None = None
    epochs: int | None = None
    lr: float | None = None
    batch_size: int | None = None  # 5 for adam
    lipschitz: float | None = None  # 1, 2, 0.9 and 60 for gd-backtracking
    rho_up: float | None = None
    rho_down: float | None = None
    max_trials: int | None = None
    seed: int = 1
    eval_every: int | None = None
    checkpoint_seconds: float = 10.0
    out: str | None = None
    plots: bool = True
    progress: bool | None = None
    threads: int | None = None
    dtype: str = "float64"  # float32: data, parameters, network, loss gradient and optimiser state in float32

    def resolved(self, saved: bool = False) -> TrainConfig:
        """A copy with every default filled in and every option checked.

        An option that does not apply to the run (``lipschitz`` with adam, ``field`` with the plain
        net, ``test_fraction`` with a built-in data set, ...) is refused when it was given, and is
        None in the result. saved=True resolves a run folder's config.json, which older versions of
        rkgen wrote with every such value filled in: there they are cleared, not refused."""
        c = dataclasses.replace(self)
        _choice("--model", c.model, KINDS)
        _choice("--optimizer", c.optimizer, OPTIMIZERS)
        if c.field is not None:
            _choice("--field", c.field, FIELDS)
        _choice("--activation", c.activation, ACTIVATIONS)
        _choice("--loss", c.loss, ("auto", "squared", "cross-entropy"))
        _choice("--params", c.params, PARAMS)
        _choice("--augment", c.augment, AUGMENTS)
        _choice("--reduction", c.reduction, REDUCTIONS)
        _choice("--init", c.init, INITS)
        _choice("--dtype", c.dtype, DTYPES)
        for name in FLOAT_OPTIONS:
            value = getattr(c, name)
            if value is not None and (
                isinstance(value, bool) or not (isinstance(value, (int, float)) and math.isfinite(value))
            ):
                raise RkgenError(f"{_flag(name)} must be a finite number, not {short(value)}")
        if c.out == "":
            raise RkgenError("--out is empty; give the run folder's name, or leave --out out for a new one under runs/")
        if not isinstance(c.dataset, str) or not c.dataset:
            raise RkgenError(f"--dataset must name a data set or a file, not {short(c.dataset)}")
        if c.tableau is not None and not isinstance(c.tableau, str):
            raise RkgenError(f"--tableau must be a name or a file, not {short(c.tableau)}")
        self._applies(c, saved)
        if c.model == "net":
            if c.tableau is not None:
                raise RkgenError(
                    f"--tableau does not apply to --model net (the plain y <- sigma(K y + beta)); "
                    f"drop --tableau {c.tableau}, or choose --model rk, odenet or odenet-simplex"
                )
            if c.final_time is not None or c.step is not None:
                raise RkgenError("--final-time and --step do not apply to --model net")
            if c.params != "shared":
                raise RkgenError(
                    f"--params {c.params} applies to the Runge-Kutta models (rk, odenet, odenet-simplex); "
                    "--model net has one (K_j, beta_j) per layer (--params shared)"
                )
        elif c.tableau is None:
            c.tableau = DEFAULT_TABLEAU
        elif not c.tableau:
            raise RkgenError(f"--model {c.model} needs --tableau")
        if c.final_time is not None and c.step is not None:
            raise RkgenError("give either --final-time or --step, not both")
        if c.model != "net" and c.step is None and c.final_time is None:
            c.final_time = 5.0
        if c.final_time is not None and not c.final_time > 0.0:
            raise RkgenError(f"--final-time must be positive, not {c.final_time:g}")
        if c.step is not None and not c.step > 0.0:
            raise RkgenError(f"--step must be positive, not {c.step:g}")
        _at_least("--layers", c.layers, 1)
        if c.width is not None:
            _at_least("--width", c.width, 1)
        _at_least("--seed", c.seed, 0, "(numpy's seeds are non-negative integers)")
        if c.seed >= 2**128:
            raise RkgenError("--seed must be below 2**128")
        if c.optimizer == "adam":
            if c.iterations is not None:
                raise RkgenError("--iterations applies to gd, gd-backtracking and gd-armijo; adam counts --epochs")
            c.epochs = 40 if c.epochs is None else c.epochs
            _at_least("--epochs", c.epochs, 0)
            _at_least("--batch-size", c.batch_size, 1)
        else:
            if c.epochs is not None:
                raise RkgenError(f"--epochs applies to adam; {c.optimizer} counts --iterations")
            c.iterations = 1000 if c.iterations is None else c.iterations
            _at_least("--iterations", c.iterations, 0)
        if c.optimizer == "gd-backtracking":
            if c.lr is not None:
                raise RkgenError("gd-backtracking chooses its own steps (1/L); set --lipschitz, not --lr")
            if not (c.rho_up > 1.0 and 0.0 < c.rho_down <= 1.0 and c.lipschitz > 0.0):
                raise RkgenError("backtracking needs --rho-up > 1, 0 < --rho-down <= 1, --lipschitz > 0")
            _at_least("--max-trials", c.max_trials, 1)
        else:
            if c.optimizer == "gd-armijo":
                _at_least("--max-trials", c.max_trials, 1)
            c.lr = DEFAULT_LR[c.optimizer] if c.lr is None else c.lr
            if not c.lr > 0:
                raise RkgenError("--lr must be positive")
        if c.eval_every is None:
            c.eval_every = 1 if c.optimizer == "adam" else 10
        _at_least("--eval-every", c.eval_every, 1)
        if not c.data_scale > 0.0:
            raise RkgenError("--data-scale must be a positive finite number")
        if not c.init_scale >= 0.0:
            raise RkgenError("--init-scale must be a non-negative finite number")
        if not c.checkpoint_seconds >= 0.0:
            raise RkgenError("--checkpoint-seconds must be a non-negative number")
        if c.test_fraction is not None and not 0.0 < c.test_fraction < 1.0:
            raise RkgenError(
                f"--test-fraction must lie strictly between 0 and 1 (a share of the rows), not {c.test_fraction:g}"
            )
        if c.label_column is not None and (
            isinstance(c.label_column, bool) or not isinstance(c.label_column, numbers.Integral)
        ):
            raise RkgenError(f"--label-column must be an integer, not {short(c.label_column)}")
        if c.samples is not None:
            _at_least("--samples", c.samples, 2)
        if c.test_samples is not None:
            _at_least("--test-samples", c.test_samples, 1)
        if c.threads is not None:
            _at_least("--threads", c.threads, 1)
        return c

    @staticmethod
    def _applies(c: TrainConfig, saved: bool) -> None:
        """Fill in the defaults of DEFAULTS where they apply; refuse (or, saved, clear) the others."""
        applies = {
            "field": c.model != "net",
            "label_column": not is_builtin(c.dataset),
            "test_fraction": not is_builtin(c.dataset),
            "batch_size": c.optimizer == "adam",
            "lipschitz": c.optimizer == "gd-backtracking",
            "rho_up": c.optimizer == "gd-backtracking",
            "rho_down": c.optimizer == "gd-backtracking",
            "max_trials": c.optimizer in ("gd-backtracking", "gd-armijo"),
        }
        why = {
            "field": "the plain net y <- sigma(K y + beta) has no vector field",
            "label_column": f"the built-in data set {c.dataset} has no columns",
            "test_fraction": f"the built-in data set {c.dataset} draws its own test set (--test-samples)",
            "batch_size": f"{c.optimizer} uses the whole training set",
        }
        for name, default in DEFAULTS.items():
            value = getattr(c, name)
            if applies[name]:
                setattr(c, name, default if value is None else value)
                continue
            # The net is built with a field all the same (it is ignored): the stored value is the
            # default, and that value given again (a resolved configuration) is no change.
            keep = DEFAULTS["field"] if name == "field" else None
            if value is not None and value != keep and not saved:
                owner = "gd-backtracking and gd-armijo" if name == "max_trials" else "gd-backtracking"
                reason = why.get(name, f"it is an option of {owner}, not of {c.optimizer}")
                raise RkgenError(f"{_flag(name)} does not apply here: {reason}; drop {_flag(name)} {value}")
            setattr(c, name, keep)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise RkgenError(f"unknown configuration keys: {', '.join(sorted(unknown))}")
        return cls(**d)

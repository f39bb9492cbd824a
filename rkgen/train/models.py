"""The models the trainer fits: Runge-Kutta networks from any generated module, and the plain Net.

Parameters live in one flat vector (so optimisers and checkpoints see one array), float64 or float32
(``dtype``: the data, the parameters, the network's arithmetic, the logits and the loss gradient); named
views into it give K and beta, the steps h (N,) for the RK models, and the classifier W (K, d),
mu (K,). The parameter layout (``params``) decides the shapes of K and beta:

- ``shared``: K (N, d, d), beta (N, d), one set per layer, shared by its stages;
- ``stage``: K (N, s, d, d), beta (N, s, d), one set per stage i of layer j (s stages);
- ``continuous``: K (N+1, d, d), beta (N+1, d), the values at the node times tau_j = j T/N (fixed
  at the initial grid), interpolated piecewise linearly at the stage times t_j + c_i h_j. Learned
  steps move the stage times, and their gradient includes that motion.

The plain Net has one set per layer (shared) only.

Kinds:

- ``rk``: a Runge-Kutta network with fixed equal steps h = T/N (ResNet when the tableau is Euler;
  RK4Net of 004 with the tableau rk4 and --step 0.05).
- ``odenet``: the steps h_j are learned as well (000 eq. 33-39: h_j = dt alpha_j).
- ``odenet-simplex``: learned steps, projected after every update onto {h >= 0, sum h = T} (000 eq.
  40).
- ``net``: the feed-forward baseline y_{j+1} = sigma(K_j y_j + beta_j) (000 eq. 4-5; StandardNet of
  004), with its own forward and backward pass here.

Inputs of width d are padded with zeros to the network width d_hat >= d (004's feature
augmentation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rkgen.errors import RkgenError, SolveFailure
from rkgen.train import losses

KINDS = ("rk", "odenet", "odenet-simplex", "net")
PARAMS = ("shared", "stage", "continuous")
FIELDS = ("resnet", "stable")
ACTIVATIONS = ("tanh", "relu", "softplus", "sigmoid")
#: how inputs enter the width-d_hat space: zero padding, or a fixed random linear map (004's default)
AUGMENTS = ("zeros", "random")
#: the cost over the samples: their mean (1/m sum) or their sum (000 section 5.3)
REDUCTIONS = ("mean", "sum")
#: initialisation schemes (Model.init_params)
INITS = ("uniform", "normal", "normal-bias")
#: the floating-point types a model computes in (float32: the generated module runs in float32, see its contract)
DTYPES = ("float64", "float32")


def _load(spec):
    """Load a generated network module (built-in tableau name, JSON tableau path or *_net.py
    path)."""
    try:
        from rkgen.codegen import load_network
    except ImportError as e:  # pragma: no cover - depends on the rest of the package
        raise RkgenError(f"cannot load network {spec!r}: rkgen.codegen is not available ({e})") from None
    return load_network(spec)


def resolve_network(spec):
    """A network module from a spec string, or the module-like object itself."""
    if hasattr(spec, "forward") and hasattr(spec, "backward"):
        return spec
    return _load(str(spec))


def simplex_projection(v: np.ndarray, total: float = 1.0) -> np.ndarray:
    """Euclidean projection of v onto {x >= 0, sum x = total} (sort-based; Duchi et al. 2008).

    The result is x = max(v - theta, 0) with the threshold theta chosen so that the sum is total.
    """
    v = np.asarray(v, dtype=float)
    if total <= 0.0:
        raise ValueError("the simplex needs a positive total")
    u = np.sort(v)[::-1]
    css = np.cumsum(u) - total
    k = np.arange(1, len(u) + 1)
    rho = np.nonzero(u - css / k > 0.0)[0][-1]
    theta = css[rho] / (rho + 1.0)
    return np.maximum(v - theta, 0.0)


def _activation(name, z):
    """(σ(z), σ'(z)) for the plain Net: the one numpy definition of rkgen.reference."""
    if name not in ACTIVATIONS:
        raise RkgenError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")
    from rkgen.reference import activation

    return activation(name, z)


@dataclass
class Forward:
    """What one forward pass leaves for the backward pass and for reporting."""

    logits: np.ndarray
    y_final: np.ndarray
    tape: object
    cost: float = float("nan")
    correct: int = 0
    dlogits: np.ndarray | None = None


class Model:
    """A network plus the affine classifier, its loss and a flat parameter layout."""

    def __init__(
        self,
        kind,
        n_layers,
        width,
        in_dim,
        n_classes,
        *,
        network=None,
        field="resnet",
        activation="tanh",
        loss="auto",
        final_time=1.0,
        step=None,
        fix_classifier=False,
        params="shared",
        nodes=None,
        augment="zeros",
        reduction="mean",
        dtype="float64",
    ):
        if kind not in KINDS:
            raise RkgenError(f"unknown model {kind!r}; choose one of {', '.join(KINDS)}")
        if n_layers < 1:
            raise RkgenError("the number of layers must be at least 1")
        if augment not in AUGMENTS:
            raise RkgenError(f"unknown augment {augment!r}; choose one of {', '.join(AUGMENTS)}")
        if reduction not in REDUCTIONS:
            raise RkgenError(f"unknown reduction {reduction!r}; choose one of {', '.join(REDUCTIONS)}")
        if width < in_dim and augment == "zeros":
            raise RkgenError(
                f"the width ({width}) must be at least the input dimension ({in_dim}); "
                "inputs are padded with zeros, never cut (--augment random maps them into any width)"
            )
        if field not in FIELDS:
            raise RkgenError(f"unknown field {field!r}; choose one of {', '.join(FIELDS)}")
        if activation not in ACTIVATIONS:
            raise RkgenError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
        if params not in PARAMS:
            raise RkgenError(f"unknown params {params!r}; choose one of {', '.join(PARAMS)}")
        if str(dtype) not in DTYPES:
            raise RkgenError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
        if kind == "net" and params != "shared":
            raise RkgenError(
                f"--params {params} applies to the Runge-Kutta models (rk, odenet, odenet-simplex); "
                "--model net has one (K_j, beta_j) per layer (--params shared)"
            )
        if nodes is not None and params != "continuous":
            raise RkgenError("node times apply to the continuous parameter layout only")
        if loss == "auto":
            loss = "squared" if n_classes == 2 else "cross-entropy"
        if loss not in losses.LOSSES:
            raise RkgenError(f"unknown loss {loss!r}; choose one of auto, {', '.join(losses.LOSSES)}")
        if loss == "squared" and n_classes != 2:
            raise RkgenError(
                f"the squared loss is for two classes; this data set has {n_classes}, use --loss cross-entropy"
            )
        self.kind = kind
        self.N = int(n_layers)
        self.d = int(width)
        self.in_dim = int(in_dim)
        self.n_classes = int(n_classes)
        self.loss = loss
        self.n_out = 1 if loss == "squared" else self.n_classes
        self.field = field
        self.activation = activation
        self.fix_classifier = bool(fix_classifier)
        self.params = params
        self.augment = augment
        self.reduction = reduction
        self.dtype = np.dtype(str(dtype))
        self.nodes = None
        if kind == "net":
            self.network = None
            self.final_time = None
            self.step0 = None
        else:
            if network is None:
                raise RkgenError(f"model {kind!r} needs a network (a tableau)")
            self.network = resolve_network(network)
            if field not in getattr(self.network, "FIELDS", FIELDS):
                raise RkgenError(f"network {self.network.NAME!r} has no field {field!r}")
            if activation not in getattr(self.network, "ACTIVATIONS", ACTIVATIONS):
                raise RkgenError(f"network {self.network.NAME!r} has no activation {activation!r}")
            if step is not None:
                self.step0 = float(step)
                self.final_time = self.step0 * self.N
            else:
                self.final_time = float(final_time)
                self.step0 = self.final_time / self.N
            if kind == "odenet-simplex" and not self.final_time > 0.0:
                raise RkgenError("odenet-simplex needs a positive final time T (sum of the steps)")
            if params != "shared" and params not in getattr(self.network, "PARAMS", ("shared",)):
                raise RkgenError(
                    f"the module of network {self.network.NAME!r} knows only the shared parameter layout "
                    f"(written by an older rkgen?); regenerate it with 'rkgen generate' for --params {params}"
                )
            if params == "continuous":
                self.nodes = self._node_times(nodes)
        shapes = [("K", self._k_shape()), ("beta", self._k_shape()[:-1])]
        if kind != "net":
            shapes.append(("h", (self.N,)))
        shapes += [("W", (self.n_out, self.d)), ("mu", (self.n_out,))]
        if augment == "random":  # last, so that the other blocks keep their places
            shapes.append(("E", (self.d, self.in_dim)))
        self.layout = {}
        off = 0
        for name, shape in shapes:
            n = int(np.prod(shape))
            self.layout[name] = (off, off + n, shape)
            off += n
        self.size = off
        self.trainable = np.ones(self.size, dtype=bool)
        if kind == "rk":
            self._mask("h")
        if self.fix_classifier:
            self._mask("W")
            self._mask("mu")
        if augment == "random":
            self._mask("E")  # a fixed random embedding: never trained
        self.trainable.flags.writeable = False  # fixed at construction; backward zeroes these indices
        self._fixed = np.flatnonzero(~self.trainable)
        self._views = []  # (flat, its views) for the last few vectors (the trainer alternates two)

    def _node_times(self, nodes) -> np.ndarray:
        """The node times of the continuous layout: the initial grid tau_j = j T/N (tau_N = T
        exactly), or the increasing times given (read-only)."""
        if nodes is None:
            if not self.final_time > 0.0:
                raise RkgenError("the continuous parameter layout needs a positive final time T")
            tau = np.linspace(0.0, self.final_time, self.N + 1)
        else:
            tau = np.array(nodes, dtype=float)
            if tau.ndim != 1 or len(tau) < 2 or not np.all(np.isfinite(tau)) or not np.all(np.diff(tau) > 0.0):
                raise RkgenError("the node times must be at least two finite, increasing times")
        tau.flags.writeable = False
        return tau

    def _k_shape(self) -> tuple:
        if self.params == "stage":
            return (self.N, self.stages, self.d, self.d)
        if self.params == "continuous":
            return (len(self.nodes), self.d, self.d)
        return (self.N, self.d, self.d)

    @property
    def stages(self) -> int:
        """s, the stages of a layer (1 for the plain Net)."""
        return 1 if self.network is None else int(self.network.STAGES)

    def stage_nodes(self) -> np.ndarray:
        """The c_i of the network's tableau."""
        c = getattr(self.network, "C", None)
        if c is None:
            c = np.asarray(self.network.A, dtype=float).sum(axis=1)
        return np.asarray(c, dtype=float)

    def stage_times(self, h) -> np.ndarray:
        """The times t_j + c_i h_j (N, s) at which layer j evaluates its stage i, t_j = h_0 + ... +
        h_(j-1): where the continuous layout interpolates its parameters."""
        h = np.asarray(h, dtype=float)
        t = np.concatenate([[0.0], np.cumsum(h)[:-1]])
        return t[:, None] + self.stage_nodes()[None, :] * h[:, None]

    def _layout_options(self) -> dict:
        """The keyword arguments of the network's forward for this layout (none for shared, so that
        modules older than the layouts still serve it)."""
        if self.params == "shared":
            return {}
        if self.params == "continuous":
            return {"params": "continuous", "nodes": self.nodes}
        return {"params": self.params}

    def _mask(self, name):
        a, b, _ = self.layout[name]
        self.trainable[a:b] = False

    @property
    def name(self) -> str:
        return "net" if self.network is None else f"{self.kind}-{self.network.NAME}"

    def views(self, flat: np.ndarray) -> dict:
        """Named views into a flat vector (writes through). The views of the last four vectors are
        kept: the trainer asks for them several times per iteration."""
        for f, v in self._views:
            if f is flat:
                return v
        v = {k: flat[a:b].reshape(shape) for k, (a, b, shape) in self.layout.items()}
        self._views = [(flat, v)] + self._views[:3]
        return v

    def init_params(self, rng: np.random.Generator, scale: float = 1.0, init: str = "uniform") -> np.ndarray:
        """The initial parameters (the steps start equal, h_j = T/N, in every scheme):

        - ``uniform``: K, beta, W, mu uniform on [-a, a], a = scale/sqrt(d_hat) (PyTorch's default for
          linear layers, 004's setting);
        - ``normal``: K and W entries N(0, scale^2), beta = 0, mu = 0 (000 section 5.2, as its
          authors' code starts);
        - ``normal-bias``: K, beta and W entries N(0, scale^2), mu uniform on [0, 1] (000 section 5.3).

        With ``augment="random"`` the fixed embedding E (d_hat x d) is drawn last, uniform on
        [-1/sqrt(d), 1/sqrt(d)] (004's untrained bias-free input layer, PyTorch's default)."""
        if init not in INITS:
            raise RkgenError(f"unknown init {init!r}; choose one of {', '.join(INITS)}")
        flat = np.empty(self.size, self.dtype)  # drawn in float64 and rounded: a float32 run starts where a
        v = self.views(flat)  # float64 run of the same seed starts, to float32 rounding
        if init == "uniform":
            a = scale / np.sqrt(self.d)
            for k in ("K", "beta", "W", "mu"):
                v[k][...] = rng.uniform(-a, a, size=v[k].shape)
        else:
            v["K"][...] = scale * rng.standard_normal(v["K"].shape)
            v["beta"][...] = scale * rng.standard_normal(v["beta"].shape) if init == "normal-bias" else 0.0
            v["W"][...] = scale * rng.standard_normal(v["W"].shape)
            v["mu"][...] = rng.uniform(0.0, 1.0, size=v["mu"].shape) if init == "normal-bias" else 0.0
        if "h" in v:
            v["h"][...] = self.step0
        if "E" in v:
            a = 1.0 / np.sqrt(self.in_dim)
            v["E"][...] = rng.uniform(-a, a, size=v["E"].shape)
        return flat

    def project(self, flat: np.ndarray) -> None:
        """Apply the constraint of the model in place (the simplex for odenet-simplex)."""
        if self.kind == "odenet-simplex":
            a, b, _ = self.layout["h"]
            flat[a:b] = simplex_projection(flat[a:b], self.final_time)

    def pad(self, x: np.ndarray, flat: np.ndarray | None = None) -> np.ndarray:
        """The input points in the width-d_hat space: padded with zeros, or (augment="random", the
        parameters ``flat`` given) mapped by the fixed embedding, y0 = x E^T."""
        if self.augment == "random":
            if flat is None:
                raise ValueError("the random embedding needs the parameters (pad(x, flat))")
            return np.ascontiguousarray(np.asarray(x, dtype=self.dtype) @ self.views(flat)["E"].T)
        if x.shape[1] == self.d:
            return np.ascontiguousarray(x, dtype=self.dtype)
        y0 = np.zeros((x.shape[0], self.d), self.dtype)
        y0[:, : x.shape[1]] = x
        return y0

    # -- forward and backward ----------------------------------------------------------------------

    def forward(self, flat, x, c=None, keep_states=False, keep_tape=True) -> Forward:
        """Propagate x, apply the classifier and, when labels c are given, the cost.

        keep_tape=False: evaluation only (the generated kernels then keep no stage values)."""
        v = self.views(flat)
        y0 = self.pad(x, flat)
        if self.network is None:
            yN, tape = self._net_forward(y0, v["K"], v["beta"], keep_states)
        else:
            options = self._layout_options()
            yN, tape = self.network.forward(
                y0,
                v["K"],
                v["beta"],
                v["h"],
                field=self.field,
                activation=self.activation,
                keep_states=keep_states,
                **({} if keep_tape else {"keep_tape": False}),
                **options,
            )
            if tape.failures:
                raise SolveFailure(
                    f"{tape.failures} implicit stage solve(s) did not converge "
                    f"(largest iteration count {tape.iterations})"
                )
        if c is None:
            return Forward(yN @ v["W"].T + v["mu"], yN, tape)
        logits, cost, dlogits, correct = losses.classify(self.loss, yN, v["W"], v["mu"], c)
        if self.reduction == "sum":  # the losses average over the samples; "sum" undoes it
            cost *= len(logits)
            dlogits *= len(logits)
        return Forward(logits, yN, tape, cost, correct, dlogits)

    def backward(self, flat, fw: Forward, grad: np.ndarray) -> None:
        """Write the gradient of fw's cost with respect to all parameters into grad (zero where
        fixed)."""
        from rkgen.train._kernels import head_backward  # numba on first use

        v = self.views(flat)
        g = self.views(grad)
        y = np.ascontiguousarray(fw.y_final)
        p = np.empty(y.shape, y.dtype)
        head_backward(fw.dlogits, y, v["W"], g["W"], g["mu"], p)  # the classifier's gradients, and p = dJ/dy_N
        if self.network is None:
            self._net_backward(fw.tape, p, v["K"], g["K"], g["beta"])
        else:
            _, dK, dbeta, dh = self.network.backward(fw.tape, p)
            g["K"][...] = dK
            g["beta"][...] = dbeta
            g["h"][...] = dh
        if self._fixed.size:
            grad[self._fixed] = 0.0

    def loss_and_grad(self, flat, x, c, grad) -> Forward:
        fw = self.forward(flat, x, c)
        self.backward(flat, fw, grad)
        return fw

    def states(self, flat, x) -> np.ndarray:
        """The features at every layer, shape (N+1, m, d_hat)."""
        return self.forward(flat, x, keep_states=True, keep_tape=False).tape.states  # no tape: states only

    def predict_proba(self, flat, x) -> np.ndarray:
        return losses.probabilities(self.loss, self.forward(flat, x, keep_tape=False).logits)

    def probabilities(self, flat, x) -> tuple[np.ndarray, np.ndarray]:
        """Class probabilities (m, n_classes) and predicted classes (m,) of inputs x (m, in_dim),
        from one evaluation pass (the forward pass above; SolveFailure when an implicit stage
        solve does not converge).

        The classes follow the rule by which the trainer counts a prediction correct, so that
        they reproduce its accuracy exactly: for the squared loss class 1 iff the sigmoid
        hypothesis, computed as the loss kernel computes it, exceeds 1/2; for cross-entropy the
        first largest logit."""
        z = self.forward(flat, x, keep_tape=False).logits
        proba = losses.probabilities(self.loss, z)
        if self.loss == "squared":
            e = np.exp(-np.abs(z[:, 0]))
            hyp = np.where(z[:, 0] >= 0.0, 1.0 / (1.0 + e), e / (1.0 + e))
            classes = (hyp > 0.5).astype(np.int64)
        else:
            classes = np.argmax(z, axis=1).astype(np.int64)
        return proba, classes

    def classify_features(self, flat, y) -> np.ndarray:
        """Class probabilities of the linear classifier applied to features y (m, d_hat)."""
        v = self.views(flat)
        return losses.probabilities(self.loss, y @ v["W"].T + v["mu"])

    # -- the plain Net -----------------------------------------------------------------------------

    def _net_forward(self, y0, K, beta, keep_states):
        N = self.N
        ys = np.empty((N + 1,) + y0.shape, y0.dtype)
        ds = np.empty((N,) + y0.shape, y0.dtype)
        ys[0] = y0
        for j in range(N):
            ys[j + 1], ds[j] = _activation(self.activation, ys[j] @ K[j].T + beta[j])
        tape = _NetTape(ys if keep_states else None, ys, ds)
        return ys[N], tape

    def _net_backward(self, tape, p, K, dK, dbeta):
        for j in range(self.N - 1, -1, -1):
            g = p * tape.dsig[j]
            dK[j] = g.T @ tape.ys[j]
            dbeta[j] = g.sum(axis=0)
            p = g @ K[j]


@dataclass
class _NetTape:
    states: np.ndarray | None
    ys: np.ndarray
    dsig: np.ndarray
    failures: int = 0
    iterations: int = 0

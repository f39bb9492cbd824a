"""The two roads to the gradient: the partner's exact discrete gradient against the continuous adjoint, measured.

A small seeded network on [0, T]: N layers of step h = T/N with the *same* parameters θ = (K, β) in every layer,
so that the network is one ODE y' = f(y) = tanh(K y + β) discretised and its gradient has a continuous limit.  The
cost is J = Σ W ⊙ y_N (so p_N = W); the gradient with respect to θ (and y_0) is the sum of the per-layer gradients.
Four gradients of the same network are compared, as N grows at fixed T:

(a) **discretise, then optimise**: the exact gradient of the discrete J_h, from the backward stages of
    :func:`rkgen.adjoint.layer_equations` evaluated by :class:`rkgen.reference.Network` -- the partner's gradient
    (section 6 of the derivation; Hager 2000, Sanz-Serna 2016);
(b) **optimise, then discretise** without the partner: the continuous adjoint λ' = −f_yᵀλ, dJ/dθ = ∫ λᵀ f_θ dt,
    integrated backwards from T to 0 with the *same* tableau.  y(t) is recomputed as the neural-ODE adjoint does
    (Chen et al. 2018; torchdiffeq's ``odeint_adjoint``): the augmented system (y, λ, g) with y' = f(y),
    λ' = −f_yᵀλ, g' = −f_θᵀλ runs backwards with step −h from (y_N, W, 0), y_N the network's output; the stages of
    an implicit tableau are solved to rounding (Newton for the y-stages, then one linear solve for the λ-stages:
    the stage system is block triangular, since λ does not enter the y equation).  The forward stages are not
    stored: a memory-light road, the one an "adjoint method" ODE library takes;
(c) the misprinted conditions (19) of the seed papers (a_ij untransposed): the partner form with the "partner"
    those conditions define (:func:`rkgen.derive.check.misprinted_weights`);
(d) central finite differences of the discrete J_h;

and (a) against the continuous gradient dJ/dθ itself, computed to near rounding by the 5-stage Gauss method (order
10) on a fine grid, the same construction as (b) (for a symmetric symplectic method (b) *is* the exact discrete
gradient, see below), with its own error estimated from a grid of half as many steps.

Errors are the max-norm of the gradient difference over every entry of (y_0, K, β), divided by the max-norm of the
continuous gradient (relative).  Orders q (error ∝ h^q ∝ N^-q) are least-squares slopes in log-log over the (at
most four) largest N whose errors are above a rounding floor.

What theory predicts (:func:`predictions`, decided exactly on the tableau):

- (a) − continuous: the method's order p.  J_h(θ) = J(θ) + C(θ) h^p + O(h^{p+1}) with C smooth in θ, so
  dJ_h/dθ = dJ/dθ + O(h^p): the exact discrete gradient inherits the order of the method [Hager 2000; Sanz-Serna
  2016].
- (b) − (a): read forwards, the step −h of (A, b) is the *adjoint method* (A*, b) with A* = 𝟙bᵀ − A
  (Φ*_h = Φ_{−h}⁻¹), applied to y and λ alike: (b) is the partitioned pair (A*, A*) on a trajectory through y_N,
  (a) the pair (A, Ã) with the true partner Ã.  The order of the difference is read off the trees (below).  It
  coincides to rounding when the method is symmetric (A* is A with its stages permuted: the step −h retraces the
  forward stages) and symplectic (Ã = A): implicit midpoint, Gauss [Sanz-Serna 2016].  Generically it is p,
  but p + 1 when the principal error terms agree (heun2, Lobatto IIIC: the measurement confirms it).
- (c) − (a): coincides when the misprinted conditions define the true partner (A symmetric: euler, midpoint);
  undefined when some b_i = 0; otherwise the pair (A, Ã') against (A, Ã), read off the trees.

The trees.  A partitioned pair (A, Ã) with weights b applied to (y' = f(y), λ' = −f_yᵀλ) has a B-series over
the y-trees (weights bᵀΦ(t), Φ from A) and over the bicoloured trees whose λ-vertices form a path from the root (λ
enters linearly, and not at all into y), each λ-vertex carrying a forest of y-trees, with elementary weight
bᵀ(u_1 ⊙ Ã(u_2 ⊙ Ã(⋯ u_k))), u the componentwise product of AΦ(t) over its y-trees.  Two pairs whose weights
first differ at a tree of order n differ by O(h^n) per step, O(h^{n-1}) after N = T/h steps (also with y_N rather
than y_0 given, as in (b)): predicted order n − 1, for a generic f.  :func:`weights_first_differ` decides n
exactly.

>>> r = compare("rk4", layers=(8, 16, 32), fd_layers=None)
>>> {k: round(r.fits[k].order) for k in ("b", "c", "a")}
{'b': 4, 'c': 1, 'a': 4}
>>> {k: r.theory[k].order for k in ("b", "c", "a")}
{'b': 4, 'c': 1, 'a': 4}
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from .errors import RkgenError
from .tableau import Tableau, load

__all__ = [
    "DEFAULT_LAYERS",
    "DEFAULT_SEED",
    "DEFAULT_TIME",
    "KEYS",
    "LABELS",
    "Comparison",
    "Fit",
    "Instance",
    "Prediction",
    "adjoint_gradient",
    "adjoint_matrix",
    "compare",
    "continuous_gradient",
    "discrete_gradient",
    "finite_differences",
    "fit_order",
    "gauss_legendre",
    "instance",
    "is_symmetric",
    "predictions",
    "weights_first_differ",
]

DEFAULT_LAYERS = (4, 8, 16, 32, 64, 128)
DEFAULT_TIME = 1.0
DEFAULT_SEED = 1806
#: samples and width of the random network
SAMPLES, WIDTH = 3, 3
#: central differences: the step in every entry
FD_STEP = 1e-5
#: relative errors at or below this are rounding (the gradients are sums over up to a few hundred layers)
ROUNDING_FLOOR = 1e-11
#: the continuous reference: Gauss-Legendre with this many stages (order 10), this many steps per unit of time
REFERENCE_STAGES = 5
REFERENCE_STEPS = 32
#: the fit uses the errors of at most this many of the largest N above the floor
FIT_POINTS = 4
#: a measured order agrees with theory when within this distance (the tests ask ±0.1 of euler, rk4, midpoint)
SLOPE_TOLERANCE = 0.15
#: Newton on the stage equations stops once a step is below NEWTON_TOL · (1 + max |Y|), as rkgen.reference does
NEWTON_TOL = 1e-15
NEWTON_MAX_ITER = 60
#: largest layer count accepted (a sweep of N up to this is a few seconds for an explicit tableau)
MAX_LAYERS = 4096

#: the comparisons, in the order tables show them
KEYS = ("b", "c", "a")
LABELS = {
    "b": "(b) optimise then discretise - (a)",
    "c": "(c) misprinted (19) - (a)",
    "a": "(a) discrete - continuous",
}


# --------------------------------------------------------------------------------------------------
# the instance
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instance:
    """m samples y_0 (m, d), the shared parameters K (d, d) and β (d,), and the cost weights W (m, d)."""

    y0: np.ndarray
    K: np.ndarray
    beta: np.ndarray
    W: np.ndarray


def instance(seed: int = DEFAULT_SEED, samples: int = SAMPLES, width: int = WIDTH) -> Instance:
    """Standard normal draws from ``default_rng(seed)``, in the order y_0, K, β, W (K scaled by 1/√d, so that the
    field's Lipschitz constant stays near 1 whatever the width).

    >>> inst = instance(1)
    >>> inst.y0.shape, inst.K.shape, inst.beta.shape, inst.W.shape
    ((3, 3), (3, 3), (3,), (3, 3))
    """
    rng = np.random.default_rng(seed)
    y0 = rng.normal(size=(samples, width))
    K = rng.normal(size=(width, width)) / math.sqrt(width)
    beta = rng.normal(size=width)
    W = rng.normal(size=(samples, width))
    return Instance(y0, K, beta, W)


def _flat(dy0, dK, dbeta) -> np.ndarray:
    """The gradient as one vector: y_0, then K, then β."""
    return np.concatenate([np.ravel(dy0), np.ravel(dK), np.ravel(dbeta)])


# --------------------------------------------------------------------------------------------------
# (a), (c), (d): the network of rkgen.reference, with θ repeated in every layer
# --------------------------------------------------------------------------------------------------


def _layers(inst: Instance, N: int, T: float):
    return np.repeat(inst.K[None], N, axis=0), np.repeat(inst.beta[None], N, axis=0), np.full(N, T / N)


def _forward(net, inst: Instance, N: int, T: float, keep_tape: bool = True):
    K, beta, h = _layers(inst, N, T)
    yN, tape = net.forward(inst.y0, K, beta, h, "resnet", "tanh", keep_tape=keep_tape)
    if tape.failures or not np.all(np.isfinite(yN)):
        raise RkgenError(
            f"{net.name}: the stage equations did not converge with N = {N} layers on [0, {T:g}]; "
            "use more layers or a shorter --final-time"
        )
    return yN, tape


def discrete_gradient(net, inst: Instance, N: int, T: float, weights=None) -> np.ndarray:
    """(a) the exact gradient of J_h by the backward stages (ξ form), or, with ``weights`` (rows of (k, w_ik)),
    the partner form with those weights ((c) with the misprinted ones); summed over the layers."""
    return _from_tape(net, _forward(net, inst, N, T)[1], inst.W, weights)


def _from_tape(net, tape, W, weights=None) -> np.ndarray:
    if weights is None:
        dy0, dK, dbeta, _ = net.backward(tape, W)
    else:
        dy0, dK, dbeta, _ = net.backward(tape, W, form="p", weights=weights)
    return _flat(dy0, dK.sum(axis=0), dbeta.sum(axis=0))


def finite_differences(net, inst: Instance, N: int, T: float, step: float = FD_STEP) -> np.ndarray:
    """(d) central differences of J_h = Σ W ⊙ y_N in every entry of y_0, K and β (K, β shared by the layers)."""
    base = [inst.y0, inst.K, inst.beta]
    out = []
    for index, x in enumerate(base):
        g = np.zeros_like(x)
        for pos in np.ndindex(x.shape):
            values = []
            for sign in (1.0, -1.0):
                args = [v.copy() for v in base]
                args[index][pos] += sign * step
                yN, _ = _forward(net, Instance(*args, inst.W), N, T, keep_tape=False)
                values.append(float(np.sum(inst.W * yN)))
            g[pos] = (values[0] - values[1]) / (2 * step)
        out.append(g)
    return _flat(*out)


# --------------------------------------------------------------------------------------------------
# (b) and the continuous reference: the augmented system integrated backwards (plain numpy)
# --------------------------------------------------------------------------------------------------


def _field(Y, K, beta):
    """f = tanh(K y + β) at every row of Y (..., d), and σ' = 1 − f²."""
    F = np.tanh(Y @ K.T + beta)
    return F, 1.0 - F * F


def _stages(A: np.ndarray, explicit: bool, y, K, beta, step: float, where: str) -> np.ndarray:
    """The stages Y (s, m, d) of Y_i = y + step Σ_l a_il f(Y_l): in turn when explicit, else by Newton's method on
    the s·d system of every sample (Jacobian I − step (A ⊗ I) diag(J_l)), to rounding."""
    s = A.shape[0]
    m, d = y.shape
    if explicit:
        Y = np.empty((s, m, d))
        F = np.empty((s, m, d))
        for i in range(s):
            Y[i] = y + step * np.tensordot(A[i, :i], F[:i], axes=1)
            F[i] = _field(Y[i], K, beta)[0]
        return Y
    Y = np.repeat(y[None], s, axis=0)
    eye = np.eye(s * d)
    previous = math.inf
    for _ in range(NEWTON_MAX_ITER):
        F, ds = _field(Y, K, beta)
        R = y + step * np.einsum("il,lmd->imd", A, F) - Y
        J = ds[..., :, None] * K  # (s, m, d, d): diag(σ') K
        M = eye - step * np.einsum("il,lmab->mialb", A, J).reshape(m, s * d, s * d)
        rhs = R.transpose(1, 0, 2).reshape(m, s * d, 1)
        delta = np.linalg.solve(M, rhs).reshape(m, s, d).transpose(1, 0, 2)
        Y = Y + delta
        size = float(np.max(np.abs(delta)))
        tol = NEWTON_TOL * (1.0 + float(np.max(np.abs(Y))))
        if size <= tol or (size <= 1e3 * tol and size >= previous):  # converged, or stalled at rounding
            return Y
        if not math.isfinite(size):
            break
        previous = size
    raise RkgenError(
        f"{where}: Newton's method on the stage equations did not converge; use more layers or a shorter --final-time"
    )


def _is_explicit(A: np.ndarray) -> bool:
    return not np.any(np.triu(A))


def _backward_sweep(A, b, yN, W, K, beta, h: float, N: int, where: str):
    """(λ_0, ∂J/∂K, ∂J/∂β): N steps of −h of the augmented system (y, λ, g) from (y_N, W, 0), with the tableau
    (A, b).  A step: the y-stages Y_i = y − h Σ a_il f(Y_l); the λ-stages Λ_i = λ + h Σ_l a_il J_lᵀ Λ_l (one
    linear solve); λ ← λ + h Σ b_i J_iᵀ Λ_i, g ← g + h Σ b_i f_θ(Y_i)ᵀ Λ_i, y ← y − h Σ b_i f(Y_i)."""
    A, b = np.asarray(A, dtype=float), np.asarray(b, dtype=float)
    explicit = _is_explicit(A)
    s = len(b)
    m, d = yN.shape
    eye = np.eye(s * d)
    y, lam = np.array(yN, dtype=float), np.array(W, dtype=float)
    gK, gb = np.zeros((d, d)), np.zeros(d)
    for _ in range(N):
        Y = _stages(A, explicit, y, K, beta, -h, where)
        F, ds = _field(Y, K, beta)
        Jt = np.swapaxes(ds[..., :, None] * K, -1, -2)  # (s, m, d, d): J_lᵀ
        M = eye - h * np.einsum("il,lmab->mialb", A, Jt).reshape(m, s * d, s * d)
        L = np.linalg.solve(M, np.tile(lam, (1, s))[..., None]).reshape(m, s, d).transpose(1, 0, 2)
        G = ds * L  # σ' ⊙ Λ_i: f_βᵀ Λ_i; f_Kᵀ Λ_i = (σ' ⊙ Λ_i) Y_iᵀ
        lam = lam + h * np.einsum("i,imab,imb->ma", b, Jt, L)
        gK = gK + h * np.einsum("i,ima,imb->ab", b, G, Y)
        gb = gb + h * np.einsum("i,ima->a", b, G)
        y = y - h * np.einsum("i,imd->md", b, F)
    return lam, gK, gb


def adjoint_gradient(A, b, yN, inst: Instance, N: int, T: float, where: str = "the backward sweep") -> np.ndarray:
    """(b) the continuous adjoint integrated backwards with the tableau (A, b) from (y_N, W, 0) (neural-ODE
    adjoint): the gradient with respect to (y_0, K, β) as one vector."""
    return _flat(*_backward_sweep(A, b, yN, inst.W, inst.K, inst.beta, T / N, N, where))


def _forward_sweep(A, b, y0, K, beta, h: float, N: int, where: str):
    """y_N after N steps of h with the tableau (A, b)."""
    A, b = np.asarray(A, dtype=float), np.asarray(b, dtype=float)
    explicit = _is_explicit(A)
    y = np.array(y0, dtype=float)
    for _ in range(N):
        Y = _stages(A, explicit, y, K, beta, h, where)
        y = y + h * np.einsum("i,imd->md", b, _field(Y, K, beta)[0])
    return y


@cache
def gauss_legendre(s: int):
    """(A, b) of the s-stage Gauss-Legendre method as float arrays, each entry the rounding of a 40-digit value
    (nodes: the roots of the shifted Legendre polynomial; b and A from the simplifying assumptions B(s), C(s)).

    >>> A, b = gauss_legendre(1)
    >>> A.tolist(), b.tolist()
    ([[0.5]], [1.0])
    """
    import mpmath

    with mpmath.workdps(40):
        # shifted Legendre P_s(2x − 1) = Σ_k (−1)^{s+k} C(s, k) C(s+k, k) x^k
        coeffs = [(-1) ** (s + k) * math.comb(s, k) * math.comb(s + k, k) for k in range(s, -1, -1)]
        c = sorted(mpmath.re(r) for r in mpmath.polyroots(coeffs, maxsteps=200, extraprec=80))
        V = mpmath.matrix([[c[j] ** k for j in range(s)] for k in range(s)])  # V[k, j] = c_j^k
        b = mpmath.lu_solve(V, mpmath.matrix([mpmath.mpf(1) / (k + 1) for k in range(s)]))
        A = [mpmath.lu_solve(V, mpmath.matrix([c[i] ** (k + 1) / (k + 1) for k in range(s)])) for i in range(s)]
        return (
            np.array([[float(A[i][j]) for j in range(s)] for i in range(s)]),
            np.array([float(b[j]) for j in range(s)]),
        )


def continuous_gradient(inst: Instance, T: float, steps: int | None = None) -> tuple[np.ndarray, float]:
    """(dJ/d(y_0, K, β) of the ODE, an estimate of its error relative to its max-norm): the 5-stage Gauss method
    forward and its augmented adjoint backward (a symmetric symplectic method, so this is also its exact discrete
    gradient: error O(h^10)), with ``steps`` steps (default REFERENCE_STEPS per unit of time, at least 16); the
    error estimate is the difference from half as many steps."""
    A, b = gauss_legendre(REFERENCE_STAGES)
    N = steps or max(16, 2 * math.ceil(REFERENCE_STEPS * T / 2))

    def run(n):
        yN = _forward_sweep(A, b, inst.y0, inst.K, inst.beta, T / n, n, "the continuous reference")
        return adjoint_gradient(A, b, yN, inst, n, T, "the continuous reference")

    fine, coarse = run(N), run(N // 2)
    scale = float(np.max(np.abs(fine)))
    return fine, float(np.max(np.abs(fine - coarse))) / scale


# --------------------------------------------------------------------------------------------------
# theory, exactly
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prediction:
    """What theory predicts for one comparison: an order q (error ∝ h^q), or that the two coincide to rounding,
    or that the comparison is undefined; ``kind`` names the argument, ``reason`` says it in one line."""

    kind: str  # "order" | "retrace" | "pair" | "generic" | "same partner" | "undefined"
    order: int | None
    reason: str
    at_least: bool = False

    @property
    def coincides(self) -> bool:
        return self.kind in ("retrace", "same partner")

    @property
    def defined(self) -> bool:
        return self.kind != "undefined"


def _permutations(t: Tableau) -> list[list[int]]:
    """Candidate stage pairings i ↔ σ(i) for symmetry: the reversal, and c_i + c_σ(i) = 1 when that is a
    permutation."""
    F = t.number_field
    s = t.stages
    _, _, c = t.exact
    out = [list(range(s - 1, -1, -1))]
    pairing = []
    for i in range(s):
        partners = [j for j in range(s) if F.sub(F.add(c[i], c[j]), F.one).is_zero()]
        if len(partners) != 1:
            return out
        pairing.append(partners[0])
    if sorted(pairing) == list(range(s)) and pairing != out[0]:
        out.append(pairing)
    return out


def is_symmetric(t: Tableau) -> bool:
    """Whether the method is symmetric (its own adjoint): a_{σ(i)σ(j)} + a_ij = b_j and b_σ(i) = b_i for a stage
    permutation σ (the reversal, or the pairing of c_i with 1 − c_i), decided exactly.  Then the step −h from
    y_{n+1} retraces the forward step: its stages are the forward stages, permuted by σ.

    >>> [is_symmetric(load(n)) for n in ("euler", "midpoint", "trapezoid", "gauss2", "rk4", "radau_iia2")]
    [False, True, True, True, False, False]
    """
    F = t.number_field
    A, b, _ = t.exact
    s = t.stages
    for sigma in _permutations(t):
        if all(F.sub(b[sigma[i]], b[i]).is_zero() for i in range(s)) and all(
            F.sub(F.add(A[sigma[i]][sigma[j]], A[i][j]), b[j]).is_zero() for i in range(s) for j in range(s)
        ):
            return True
    return False


def _forests(total: int, largest: int | None = None) -> list[tuple[int, ...]]:
    """Multisets of y-trees (non-increasing tree indices) whose orders sum to ``total``."""
    from .trees import trees_up_to

    if total == 0:
        return [()]
    trees = trees_up_to(total)
    out = []
    for t in reversed(trees):
        if (largest is None or t.index <= largest) and t.order <= total:
            out.extend((t.index,) + rest for rest in _forests(total - t.order, t.index))
    return out


@cache
def _spines(n: int) -> tuple:
    """The adjoint's trees of order n: (forest of y-trees at the root λ-vertex, the λ-subtree below or None)."""
    out = []
    for a in range(n):
        rest = n - 1 - a
        for forest in _forests(a):
            if rest == 0:
                out.append((forest, None))
            else:
                out.extend((forest, child) for child in _spines(rest))
    return tuple(out)


class _Weights:
    """Elementary weights of one partitioned pair (A, Ã) with weights b on (y' = f(y), λ' = −f_yᵀλ), exactly
    (field elements), memoised: bᵀΦ(t) of the y-trees and bᵀ(u_1 ⊙ Ã(u_2 ⊙ ⋯)) of the adjoint's trees."""

    def __init__(self, t: Tableau, A, Abar):
        self.F = t.number_field
        self.b = t.exact[1]
        self.A, self.Abar = A, Abar
        self.s = t.stages
        self._phi: dict[int, list] = {}
        self._aphi: dict[int, list] = {}
        self._vec: dict[tuple, list] = {}

    def _matvec(self, M, v) -> list:
        F = self.F
        return [F.reduce(sum((F.mul(M[i][j], v[j]) for j in range(self.s)), F.zero)) for i in range(self.s)]

    def _dot_b(self, v):
        F = self.F
        return F.reduce(sum((F.mul(bi, x) for bi, x in zip(self.b, v, strict=True)), F.zero))

    def phi(self, index: int) -> list:
        """Φ(t) of the y-tree with this index: Φ(τ) = 1, Φ([t_1 … t_k]) = Π (A Φ(t_k))."""
        from .trees import tree

        if index not in self._phi:
            phi = [self.F.one] * self.s
            for child in tree(index).children:
                phi = [self.F.mul(x, y) for x, y in zip(phi, self.aphi(child), strict=True)]
            self._phi[index] = phi
        return self._phi[index]

    def aphi(self, index: int) -> list:
        if index not in self._aphi:
            self._aphi[index] = self._matvec(self.A, self.phi(index))
        return self._aphi[index]

    def vector(self, spine) -> list:
        if spine not in self._vec:
            forest, child = spine
            v = [self.F.one] * self.s if child is None else self._matvec(self.Abar, self.vector(child))
            for index in forest:
                v = [self.F.mul(x, y) for x, y in zip(v, self.aphi(index), strict=True)]
            self._vec[spine] = v
        return self._vec[spine]

    def y_weight(self, index: int):
        return self._dot_b(self.phi(index))

    def weight(self, spine):
        return self._dot_b(self.vector(spine))


def adjoint_matrix(t: Tableau) -> list[list]:
    """A* = 𝟙bᵀ − A (field elements): the step −h of (A, b) read forwards, y_0 ↦ y_1, is the Runge-Kutta method
    (A*, b), the adjoint method Φ*_h = Φ_{−h}⁻¹; and on (y, λ) the backward sweep (b) is the pair (A*, A*)."""
    F = t.number_field
    A, b, _ = t.exact
    return [[F.sub(b[j], A[i][j]) for j in range(t.stages)] for i in range(t.stages)]


def weights_first_differ(t: Tableau, first, second, max_order: int) -> int | None:
    """The smallest order n ≤ max_order of a tree whose elementary weights differ for the two partitioned pairs
    ``first`` = (A_1, Ã_1) and ``second`` = (A_2, Ã_2) (weights b of ``t``), or None: the y-trees (weights
    bᵀΦ(t) with A_k) and the adjoint's trees (λ-vertices on a path from the root, each with a forest of y-trees).

    >>> rk4 = load("rk4")
    >>> from rkgen.derive.check import partner_entries
    >>> A = rk4.exact[0]
    >>> weights_first_differ(rk4, (A, partner_entries(rk4)), (A, partner_entries(rk4, misprint=True)), 6)
    2
    >>> weights_first_differ(rk4, (A, partner_entries(rk4)), (adjoint_matrix(rk4),) * 2, 6)
    5
    """
    from .trees import trees_of_order

    one, two = _Weights(t, *first), _Weights(t, *second)
    F = t.number_field
    for n in range(1, max_order + 1):
        if any(not F.sub(one.y_weight(x.index), two.y_weight(x.index)).is_zero() for x in trees_of_order(n)):
            return n
        if any(not F.sub(one.weight(spine), two.weight(spine)).is_zero() for spine in _spines(n)):
            return n
    return None


def _difference_order(t: Tableau, first, second, what: str) -> Prediction:
    p = t.order
    cap = min(p + 3, 9)
    n = weights_first_differ(t, first, second, cap)
    if n is None:
        return Prediction("pair", cap, f"{what}: the tree weights agree up to order {cap}, so at least h^{cap}", True)
    return Prediction("pair", n - 1, f"{what}: the tree weights first differ at order {n}, so h^{n - 1}")


@cache
def _predictions(t: Tableau) -> dict[str, Prediction]:
    from .derive.check import partner_entries

    p = t.order
    F = t.number_field
    A = t.exact[0]
    s = t.stages
    partner = None if t.zero_weights else partner_entries(t)
    out = {
        "a": Prediction(
            "order",
            p,
            f"J_h = J + C h^{p} + O(h^{p + 1}) smoothly in θ, so dJ_h/dθ = dJ/dθ + O(h^{p}) [Hager; SS]",
        )
    }
    if is_symmetric(t) and t.is_symplectic:
        out["b"] = Prediction(
            "retrace",
            None,
            "coincide to rounding: a symmetric method retraces the forward stages with step -h, "
            "and a symplectic one is its own partner [SS]",
        )
    elif partner is not None:
        star = adjoint_matrix(t)
        out["b"] = _difference_order(t, (A, partner), (star, star), "(b) is the pair (A*, A*), A* = 1b^T - A")
    else:
        out["b"] = Prediction(
            "generic",
            p,
            f"both roads converge at order {p}, with different error constants in general (a zero weight: no "
            "partner pair to compare)",
        )
    if partner is None:
        out["c"] = Prediction("undefined", None, "undefined: a weight b_i is zero, so (19) defines no partner")
    else:
        wrong = partner_entries(t, misprint=True)
        if all(F.sub(wrong[i][j], partner[i][j]).is_zero() for i in range(s) for j in range(s)):
            out["c"] = Prediction(
                "same partner", None, "coincide to rounding: the misprinted conditions give the true partner here"
            )
        else:
            out["c"] = _difference_order(t, (A, partner), (A, wrong), "the misprinted pair (A, Ã')")
    return out


def predictions(spec: Tableau | str) -> dict[str, Prediction]:
    """The predictions for "b", "c" and "a" (see the module's docstring), decided exactly.

    >>> {k: v.order for k, v in predictions("euler").items()}
    {'a': 1, 'b': 1, 'c': None}
    >>> predictions("midpoint")["b"].coincides, predictions("midpoint")["c"].coincides
    (True, True)
    """
    return _predictions(spec if isinstance(spec, Tableau) else load(spec))


# --------------------------------------------------------------------------------------------------
# the experiment
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fit:
    """A least-squares order q of error ∝ N^-q over ``points`` points above the floor (None with fewer than 2)."""

    order: float | None
    points: int


def fit_order(layers, errors, floor: float, last: int = FIT_POINTS) -> Fit:
    """The order q of errors ∝ N^-q, least squares in log-log over the ``last`` largest N whose errors are above
    ``floor`` (the asymptotic end: at the smallest N the next term of the error still shows).

    >>> fit_order([4, 8, 16], [1e-2, 2.5e-3, 6.25e-4], 1e-11)
    Fit(order=2.0, points=3)
    >>> fit_order([4, 8, 16, 32, 64], [1.0, 1e-2, 2.5e-3, 6.25e-4, 1e-12], 1e-11, last=3)
    Fit(order=2.0, points=3)
    """
    pts = [(n, e) for n, e in sorted(zip(layers, errors, strict=True)) if e is not None and e > floor][-last:]
    if len(pts) < 2 or len({n for n, _ in pts}) < 2:
        return Fit(None, len(pts))
    x = np.log([n for n, _ in pts])
    y = np.log([e for _, e in pts])
    slope = float(np.polyfit(x, y, 1)[0])
    return Fit(round(-slope, 12), len(pts))


@dataclass(frozen=True)
class Comparison:
    """The data of :func:`compare`: relative errors per N for each comparison in :data:`KEYS`, the fitted orders,
    the floors they were fitted above, theory's predictions, and the finite-difference check."""

    tableau: str
    order: int
    structure: str
    layers: tuple[int, ...]
    final_time: float
    seed: int
    samples: int
    width: int
    scale: float  # max-norm of the continuous gradient (the errors' denominator)
    errors: dict[str, tuple[float | None, ...]]
    fits: dict[str, Fit]
    floors: dict[str, float]
    theory: dict[str, Prediction]
    reference_error: float
    fd_layers: int | None = None
    fd_error: float | None = None
    fd_step: float = FD_STEP
    gradients: dict = field(default_factory=dict, repr=False)

    def agrees(self, key: str) -> bool | None:
        """Whether the measurement agrees with theory: errors at rounding where theory says "coincide", the order
        within :data:`SLOPE_TOLERANCE` otherwise; None when undefined or not measurable."""
        th, fit = self.theory[key], self.fits[key]
        if not th.defined:
            return None
        if th.coincides:
            return all(e is not None and e <= self.floors[key] for e in self.errors[key])
        if fit.order is None:
            return None
        if th.at_least:
            return fit.order >= th.order - SLOPE_TOLERANCE
        return abs(fit.order - th.order) <= SLOPE_TOLERANCE

    def local_orders(self, key: str) -> list[float]:
        """The orders between neighbouring N, −log(e_2/e_1)/log(N_2/N_1), over the errors above the floor."""
        pts = [(n, e) for n, e in zip(self.layers, self.errors[key], strict=True) if e is not None]
        pts = [(n, e) for n, e in pts if e > self.floors[key]]
        return [-math.log(e2 / e1) / math.log(n2 / n1) for (n1, e1), (n2, e2) in zip(pts, pts[1:], strict=False)]

    def approaching(self, key: str) -> bool:
        """Whether a measured order off theory's is still on its way there: the local orders move towards the
        predicted one at every step (the next term of the error still shows at these N)."""
        th, local = self.theory[key], self.local_orders(key)
        if self.agrees(key) is not False or th.order is None or len(local) < 2:
            return False
        gaps = [abs(x - th.order) for x in local]
        return all(g2 < g1 for g1, g2 in zip(gaps, gaps[1:], strict=False))

    def to_dict(self) -> dict:
        """JSON-ready data (errors relative; orders as in error ∝ N^-q)."""
        return {
            "tableau": self.tableau,
            "order": self.order,
            "structure": self.structure,
            "final_time": self.final_time,
            "seed": self.seed,
            "samples": self.samples,
            "width": self.width,
            "error_measure": "max-norm of the gradient difference over (y0, K, beta), relative to the max-norm of "
            "the continuous gradient",
            "continuous_gradient_max": self.scale,
            "reference_error": self.reference_error,
            "layers": list(self.layers),
            "errors": {k: list(self.errors[k]) for k in KEYS},
            "comparisons": {
                k: {
                    "label": LABELS[k],
                    "measured_order": self.fits[k].order,
                    "points_fitted": self.fits[k].points,
                    "floor": self.floors[k],
                    "theory_order": self.theory[k].order,
                    "theory_at_least": self.theory[k].at_least,
                    "theory_coincides": self.theory[k].coincides,
                    "theory_defined": self.theory[k].defined,
                    "theory_reason": self.theory[k].reason,
                    "agrees": self.agrees(k),
                    "local_orders": self.local_orders(k),
                    "approaching": self.approaching(k),
                }
                for k in KEYS
            },
            "finite_differences": {"layers": self.fd_layers, "step": self.fd_step, "error": self.fd_error},
        }


def _check_inputs(layers, final_time: float, seed: int) -> tuple[int, ...]:
    layers = tuple(int(n) for n in layers)
    if len(layers) < 2:
        raise RkgenError("--layers needs at least two layer counts to fit a slope")
    if any(n < 1 or n > MAX_LAYERS for n in layers):
        raise RkgenError(f"--layers must be between 1 and {MAX_LAYERS}")
    if len(set(layers)) != len(layers):
        raise RkgenError("--layers must not repeat a layer count")
    if not (isinstance(final_time, (int, float)) and math.isfinite(final_time) and 0 < final_time <= 100):
        raise RkgenError("--final-time must be a number in (0, 100]")
    if seed < 0:
        raise RkgenError("--seed must be a nonnegative integer")
    return tuple(sorted(layers))


def compare(
    spec: Tableau | str,
    layers=DEFAULT_LAYERS,
    final_time: float = DEFAULT_TIME,
    seed: int = DEFAULT_SEED,
    fd_layers: int | None | str = "first",
    equations=None,
    reference_steps: int | None = None,
) -> Comparison:
    """Run the experiment for a tableau (a Tableau, a built-in name or a JSON path) over the layer counts
    ``layers`` at final time ``final_time``: see the module's docstring.  ``fd_layers``: the N at which (d) is
    computed ("first": the smallest; None: not at all); ``equations``: the tableau's LayerEquations, if at hand."""
    from .reference import Network

    t = spec if isinstance(spec, Tableau) else load(spec)
    layers = _check_inputs(layers, final_time, seed)
    T = float(final_time)
    net = Network(equations if equations is not None else t)
    inst = instance(seed)
    theory = predictions(t)
    misprint = None
    if theory["c"].defined:
        from .derive.check import misprinted_weights

        misprint = misprinted_weights(t)
    cont, ref_error = continuous_gradient(inst, T, reference_steps)
    scale = float(np.max(np.abs(cont)))
    errors: dict[str, list] = {k: [] for k in KEYS}
    gradients: dict = {"continuous": cont}
    for N in layers:
        yN, tape = _forward(net, inst, N, T)
        a = _from_tape(net, tape, inst.W)
        c = _from_tape(net, tape, inst.W, misprint) if misprint is not None else None
        b = adjoint_gradient(net.A, net.b, yN, inst, N, T, f"{t.name}, N = {N}")
        gradients[N] = {"a": a, "b": b, "c": c}
        errors["a"].append(float(np.max(np.abs(a - cont))) / scale)
        errors["b"].append(float(np.max(np.abs(b - a))) / scale)
        errors["c"].append(None if c is None else float(np.max(np.abs(c - a))) / scale)
    floors = {"b": ROUNDING_FLOOR, "c": ROUNDING_FLOOR, "a": max(ROUNDING_FLOOR, 100 * ref_error)}
    fits = {k: fit_order(layers, errors[k], floors[k]) for k in KEYS}
    fd_n = layers[0] if fd_layers == "first" else fd_layers
    fd_error = None
    if fd_n is not None:
        a = gradients[fd_n]["a"] if fd_n in gradients else discrete_gradient(net, inst, fd_n, T)
        d = finite_differences(net, inst, fd_n, T)
        gradients.setdefault(fd_n, {})["d"] = d
        fd_error = float(np.max(np.abs(d - a))) / scale
    return Comparison(
        tableau=t.name,
        order=t.order,
        structure=t.structure,
        layers=layers,
        final_time=T,
        seed=seed,
        samples=inst.y0.shape[0],
        width=inst.y0.shape[1],
        scale=scale,
        errors={k: tuple(v) for k, v in errors.items()},
        fits=fits,
        floors=floors,
        theory=theory,
        reference_error=ref_error,
        fd_layers=fd_n,
        fd_error=fd_error,
        gradients=gradients,
    )

"""Optimisers on the flat parameter vector; their state goes into checkpoints for an exact resume.

- ``gd-backtracking`` (000 Algorithm 2): u~ = P(u - g/L); accept when J(u~) <= J(u) + <g, u~ - u> +
  L/2 |u~ - u|^2, then L <- rho_down L; else L <- rho_up L and retry. P is the model's projection
  (identity, or the simplex for odenet-simplex); with it the accepted steps are projected gradient
  steps and every accepted step lowers the cost.
- ``gd-armijo`` (000 section 5.3, as its authors' code runs it): u~ = P(u - alpha g); accept when
  J(u~) <= J(u) + 0.4 <g, u~ - u> (without P: J(u) - 0.4 alpha |g|^2), else alpha <- alpha/2 and
  retry. The first trial of an iteration is min(10, 2 alpha_previous); alpha starts at --lr (0.05).
- ``gd`` (000 Algorithm 1): u <- P(u - lr g).
- ``adam`` (004, Kingma and Ba): mini-batches of a seeded shuffle, lr 1e-3, betas (0.9, 0.999), eps
  1e-8, with bias correction; then P.
"""

from __future__ import annotations

import numpy as np

OPTIMIZERS = ("gd-backtracking", "gd-armijo", "gd", "adam")
DEFAULT_LR = {"gd": 0.1, "adam": 1e-3, "gd-armijo": 0.05}
#: gd-armijo's constants (000's authors' code): sufficient decrease, growth of the first trial, its cap
ARMIJO_DECREASE, ARMIJO_GROWTH, ARMIJO_MAX_STEP = 0.4, 2.0, 10.0


class Adam:
    """Adam on a flat vector, updating in place in one compiled pass (:func:`rkgen.train._kernels.adam_update`)."""

    def __init__(self, size, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, dtype=np.float64):
        self.lr, self.beta1, self.beta2, self.eps = float(lr), beta1, beta2, eps
        self.m = np.zeros(size, dtype)  # the moments in the parameters' dtype
        self.v = np.zeros(size, dtype)
        self.t = 0

    def step(self, u: np.ndarray, g: np.ndarray, before: np.ndarray | None = None) -> None:
        """One step on u in place; ``before`` (u's shape), when given, receives u as it was before the step."""
        from rkgen.train._kernels import adam_update  # numba on first use

        self.t += 1
        b1, b2, t = self.beta1, self.beta2, self.m.dtype.type  # the constants in the moments' dtype
        c1 = 1.0 - b1**self.t
        c2 = 1.0 - b2**self.t
        adam_update(u, g, self.m, self.v, t(b1), t(1.0 - b1), t(b2), t(1.0 - b2), t(np.sqrt(c2)), t(self.eps),
                    t(self.lr / c1), u if before is None else before, before is not None)

    def state(self) -> dict:
        return {"adam_m": self.m, "adam_v": self.v}, {"adam_t": self.t}

    def load(self, arrays, meta) -> None:
        self.m[...] = arrays["adam_m"]
        self.v[...] = arrays["adam_v"]
        self.t = int(meta["adam_t"])


def sufficient_decrease(phi_new, phi, g, d) -> bool:
    """gd-armijo's acceptance test for the step d = u~ - u: J(u~) <= J(u) + 0.4 <g, d>."""
    return bool(np.isfinite(phi_new) and phi_new <= phi + ARMIJO_DECREASE * float(g @ d))


def armijo_accepts(phi_new, phi, g, d, L) -> bool:
    """The acceptance test of 000 Algorithm 2 for the step d = u~ - u."""
    return bool(np.isfinite(phi_new) and phi_new <= phi + float(g @ d) + 0.5 * L * float(d @ d))

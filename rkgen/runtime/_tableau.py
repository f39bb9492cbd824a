"""The names a generated module defines for its tableau, which the runtime uses: the printer's side of the contract.

This module is a stand-in so that the runtime modules can be linted and imported as ordinary Python; the renderer
drops every ``from ._tableau import ...`` line and the generated module supplies the real definitions, printed from
:mod:`rkgen.adjoint` by :mod:`rkgen.codegen.printer`.  None of these stand-ins is ever compiled.
"""

NAME = "stand-in"
STAGES = 1
STRUCTURE = "explicit"  # "explicit", "diagonally implicit" or "fully implicit"
C = (0.0,)  # the stage nodes c_i (an np.array in a module)


def _layer_forward(K, beta, kj, hj, y, Y, S, F, Z, ws, field, act, d, nb, nw):
    """One layer on a block of samples (columns; the first nb are real, up to nw are zero padding).

    Stage i uses the parameter rows K[kj[i]], beta[kj[i]] (see :mod:`rkgen.runtime.params`).  Writes the stage
    values Y[i] and S[i] = sigma(K_i Y_i + beta_i) (and the stable field's F[i]), then updates y in place to
    y + h sum_i b_i F_i.  ``ws`` is the work tuple of :func:`rkgen.runtime.driver._workspace`.
    Returns (failed stage solves, most Newton iterations); (0, 0) for an explicit tableau.
    """
    raise NotImplementedError


def _layer_backward(K, kj, hj, P, Y, S, D, eta, mu, G, U, dK, dbeta, ws, field, d, nb, nw):
    """The adjoint of one layer on a block: eta_i and mu_i for every stage, each stage's gradient added into the
    rows dK[kj[i]] and dbeta[kj[i]] of its parameters.

    D[i] holds sigma' at stage i.  Returns the layer's dJ/dh_j.
    """
    raise NotImplementedError


def _newton_residual(y, Ys, Fs, hj, r, d):
    """Fully implicit tableaux: r = y + h (A kron I) F - Y, the stage residual of one sample (length s d)."""
    raise NotImplementedError


def _newton_jacobian(Js, hj, M, d):
    """Fully implicit tableaux: M = I - h (A kron I) blockdiag(J_l), the Newton matrix of one sample."""
    raise NotImplementedError


def _adjoint_system(P, Js, hj, M, r, q, d):
    """Fully implicit tableaux: M = I - h (A^T kron I) blockdiag(J_k^T), r = b kron p for sample q."""
    raise NotImplementedError

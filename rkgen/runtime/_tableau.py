"""The names a generated module defines for its tableau, which the runtime uses: the printer's side of the contract.

This module is a stand-in so that the runtime modules can be linted and imported as ordinary Python; the renderer
drops every ``from ._tableau import ...`` line and the generated module supplies the real definitions, printed from
:mod:`rkgen.adjoint` by :mod:`rkgen.codegen.printer`.  None of these stand-ins is ever compiled.
"""

NAME = "stand-in"
STAGES = 1
STRUCTURE = "explicit"  # "explicit", "diagonally implicit" or "fully implicit"
C = (0.0,)  # the stage nodes c_i (an np.array in a module)


def _layer_forward(K, beta, kj, hj, y, Y, X, S, F, Z, ws, field, act, d, nb, nw):
    """One layer on a block of samples (columns; the first nb are real, up to nw are zero padding).

    Stage i uses the parameter rows K[kj[i]], beta[kj[i]] (see :mod:`rkgen.runtime.params`).  Writes the stage
    values Y[i] and S[i] = sigma(K_i Y_i + beta_i) (and the stable field's F[i]), then updates y in place to
    y + h sum_i b_i F_i.  Where the tape keeps only the layer's input (Y of one row, an explicit tableau's resnet
    field: :func:`rkgen.runtime.api._tape_inputs`), Y[0] = y and the later Y_i go to the work array X (s, d, bs).
    ``ws`` is the work tuple of :func:`rkgen.runtime.driver._workspace`.
    Returns (failed stage solves, most Newton iterations); (0, 0) for an explicit tableau.
    """
    raise NotImplementedError


def _layer_backward(K, kj, hj, P, Y, X, S, D, eta, mu, G, U, dK, dbeta, ws, field, slope, d, nb, nw):
    """The adjoint of one layer on a block: eta_i and mu_i for every stage, each stage's gradient added into the
    rows dK[kj[i]] and dbeta[kj[i]] of its parameters.  A tape of the layer's input only (Y of one row) has the
    later stage values formed again in X, by the forward pass's expression.

    sigma' at stage i is 1 - S[i]^2 (slope 0: an explicit tableau's tanh stages) or D[i] (slope 1; see
    :func:`rkgen.runtime.products._adjoint_stage`).  Returns the layer's dJ/dh_j.
    """
    raise NotImplementedError


def _newton_residual(y, Y, F, hj, R, d, nw):
    """Fully implicit tableaux: R = y + h (A kron I) F - Y, the stage residuals of a block (R[i] that of stage i,
    (d, nw) like y)."""
    raise NotImplementedError


def _newton_jacobian(J, hj, M, d, nw):
    """Fully implicit tableaux: M[:, :, q] = I - h (A kron I) blockdiag(J_l[:, :, q]), the Newton matrix of each
    of nw samples (J (s, d, d, nw), M (s d, s d, nw))."""
    raise NotImplementedError


def _adjoint_system(P, J, hj, M, R, d, nw):
    """Fully implicit tableaux: M[:, :, q] = I - h (A^T kron I) blockdiag(J_k[:, :, q]) with J_k holding J_k^T,
    and R[:, q] = b kron p[:, q], for each of nw samples."""
    raise NotImplementedError


def _adjoint_fixed_point(P, G, hj, E, d, nw):
    """Fully implicit tableaux: E_i = b_i p + h sum_k a_ki G_k on a block (G_k = J_k^T eta_k), one sweep of the
    fixed-point iteration of the adjoint system (wide layers)."""
    raise NotImplementedError

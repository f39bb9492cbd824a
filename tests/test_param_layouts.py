"""Parameter layouts of the generated modules: forward values and exact gradients.

``forward(..., params=...)`` takes the parameters per layer ("shared": K (N, d, d), beta (N, d)),
per stage ("stage": K (N, s, d, d), beta (N, s, d)) or as nodal values at node times, linear in
time between them ("continuous": K (M+1, d, d), beta (M+1, d) at M+1 node times, M = N for the
default nodes (0, cumsum(h)); stage i of layer j evaluated at t_j + c_i h_j); ``backward``
returns dK and dbeta in that layout and dh including the motion of the stage times. The oracle
is the independent numpy implementation tests/reference.py (its own map from nodal values to
stage sets, :func:`reference.continuous_stage_parameters`, and complex steps through it), checked
here against itself first.

For the compiled modules (conftest.COMPILED):

- every module and layout (stage; continuous with the default nodes, the layer boundaries; and
  with explicit nodes off every stage time, some stage times beyond the end nodes): y_N against
  the reference, the gradient (y0, K, beta, h) against the reference's complex-step gradient
  (exact to rounding on both sides); fields, activations and widths rotate over the cases; and
  node counts M != N (fewer nodes than layers, several nodes in one layer, unused nodes);
- central differences on a few cases per layout (h too where that is meaningful);
- a dot test and a Taylor test per layout for rk4, gauss2 and sdirk2;
- the layouts against each other: stage sets all equal to the layer's set, and nodal values
  constant in time, give the shared layout; Euler's stage on a node uses that node alone;
- the parallel path (a batch large enough to be split over threads) against the reference;
- wide layers (d >= the module's WIDE: the stage products go through BLAS), every compiled module,
  the three layouts and both fields: y_N against the reference, and each of the four gradients
  along a random direction against one complex step through the reference; the shared layout's
  gradient entry by entry against rkgen.reference's adjoint; and the parallel path at that width;
- the shapes each layout asks for, and no layers at all.

Two derivatives of the continuous layout deserve a word. The node times are constants of the
map: a change of h moves the stage times, not the nodes, and backward's dh is the derivative with
the nodes held. forward(nodes=None) takes the nodes from h, so differences of forward in h must
pass the nodes explicitly. And where a stage time sits on a node (c_i = 0 or 1 with the default
nodes), the interpolant has a kink there: the map is differentiable only one-sidedly in h, the
module takes the segment that starts at the node (the derivative from the right), and a central
difference is the mean of the two sides, not that derivative. Central differences in h are
therefore taken only with the stage times off the nodes.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import reference as ref
from nojit_check import FD_STEP, RELU_MARGIN, central_gradient, relative_error, tableau_floats

from conftest import COMPILED
from rkgen import load

FIELDS = ref.FIELDS
ACTIVATIONS = ref.ACTIVATIONS

M, N = 5, 3  # samples and layers of the small instances; width d = 2 or 3 (rotating)
FORWARD_TOL = 1e-13
EXACT_TOL = 1e-12  # two gradients that are both exact to rounding
FD_TOL = 1e-7

STAGE_STEPS = (0.35, 0.0, -0.25)  # a zero and a negative step (stage layout)
CONT_STEPS = (0.3, 0.25, 0.35)  # increasing default nodes (0, 0.3, 0.55, 0.9)
# explicit nodes: off every stage time of every compiled tableau by > 1e-2 with CONT_STEPS, and
# inside (0, 0.9), so the first stages of layer 0 and the last ones of layer 2 lie beyond the end
# nodes (the end segments extended)
OFF_NODES = (0.05, 0.27, 0.52, 0.8)
OFF_NODES_4 = (0.03, 0.445, 0.695, 1.025, 1.17)  # the same for four layers (steps 0.3, 0.25, 0.35, 0.3)
NODE_MARGIN = 1e-3  # smallest |stage time - node| allowed where differences in h are taken

LAYOUTS = ("stage", "continuous", "continuous-nodes")


def stage_nodes(name):
    """c of a built-in tableau, from rkgen's exact tableau (not from the module)."""
    return np.array(load(name).floats()[2], dtype=float)


def stage_times(c, h):
    """t_ji = h_0 + ... + h_(j-1) + c_i h_j, shape (N, s)."""
    start = np.concatenate(([0.0], np.cumsum(h)[:-1]))
    return start[:, None] + np.outer(h, c)


def node_margin(c, h, nodes):
    return float(np.min(np.abs(stage_times(c, h)[:, :, None] - np.asarray(nodes)[None, None, :])))


class Problem:
    """One instance in one layout: the module's arguments and the reference's view of them."""

    def __init__(self, name, layout, field, activation, m=M, d=2, layers=N, seed=0, scale=0.6, steps=None, nodes=None):
        self.name, self.layout, self.field, self.activation = name, layout, field, activation
        self.A, self.b = tableau_floats(name)
        self.c = stage_nodes(name)
        s = len(self.b)
        continuous = layout.startswith("continuous")
        if steps is None:
            steps = CONT_STEPS if continuous else STAGE_STEPS
            steps = (steps * layers)[:layers]
        self.params = "continuous" if continuous else layout
        self.nodes = None if nodes is None else np.array(nodes, dtype=float)
        if layout == "continuous-nodes" and nodes is None:
            self.nodes = np.array({N: OFF_NODES, 4: OFF_NODES_4}[layers])
        nodal = layers + 1 if self.nodes is None else len(self.nodes)
        shape = {"shared": (layers,), "stage": (layers, s), "continuous": (nodal,)}[self.params]
        for k in range(seed, seed + 500):
            rng = np.random.default_rng(k)
            self.y0 = rng.normal(size=(m, d))
            self.K = scale * rng.normal(size=shape + (d, d))
            self.beta = 0.5 * rng.normal(size=shape + (d,))
            self.W = rng.normal(size=(m, d))
            self.h = np.array(steps, dtype=float)
            if activation != "relu" or self.relu_margin() > RELU_MARGIN:
                break
        else:
            raise AssertionError("no seed keeps relu away from its kink")

    # the reference's view ------------------------------------------------------------------------

    @property
    def fixed_nodes(self):
        """The node times as constants (the default ones: the layer boundaries of h)."""
        if self.nodes is not None:
            return self.nodes
        return np.concatenate(([0.0], np.cumsum(self.h)))

    def stage_sets(self, K=None, beta=None, h=None):
        """Parameters in a layout the reference runs directly (shared or stage)."""
        K = self.K if K is None else K
        beta = self.beta if beta is None else beta
        h = self.h if h is None else h
        if self.params != "continuous":
            return K, beta
        return ref.continuous_stage_parameters(self.c, self.fixed_nodes, h, K, beta)

    def reference_forward(self):
        return ref.rk_forward(self.A, self.b, self.y0, *self.stage_sets(), self.h, self.field, self.activation)

    def complex_step(self, **options):
        args = (self.A, self.b, self.y0, self.K, self.beta, self.h, self.W, self.field, self.activation)
        if self.params == "continuous":
            return ref.complex_step_gradient(*args, params="continuous", c=self.c, nodes=self.nodes, **options)
        return ref.complex_step_gradient(*args, **options)

    def relu_margin(self):
        K, beta = self.stage_sets()
        _, stages = ref.rk_forward(self.A, self.b, self.y0, K, beta, self.h, self.field, "relu", return_stages=True)
        if K.ndim == 3:
            return min(float(np.abs(Y @ K[j].T + beta[j]).min()) for j, (_, Y) in enumerate(stages))
        return min(
            float(np.abs(Y[i] @ K[j, i].T + beta[j, i]).min()) for j, (_, Y) in enumerate(stages) for i in range(len(Y))
        )

    # the module ----------------------------------------------------------------------------------

    @property
    def x(self):
        return (self.y0, self.K, self.beta, self.h)

    def forward(self, net, x=None, nodes="fixed", **options):
        """y_N and the tape; ``nodes="fixed"``: the problem's nodes (None: the module's default)."""
        y0, K, beta, h = self.x if x is None else x
        nodes = self.nodes if isinstance(nodes, str) else nodes
        return net.forward(
            y0, K, beta, h, field=self.field, activation=self.activation, params=self.params, nodes=nodes, **options
        )

    def loss(self, net, x, nodes="fixed"):
        return float(np.sum(self.W * self.forward(net, x, nodes=nodes)[0]))

    def gradient(self, net):
        yN, tape = self.forward(net)
        assert tape.failures == 0
        return yN, net.backward(tape, self.W)


def forward_error(got, want):
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))


def rotation(k):
    """(field, activation, width) of case k: every (field, activation) pair every 8 cases."""
    return FIELDS[k % 2], ACTIVATIONS[(k // 2) % 4], (2, 3)[(k // 3) % 2]


# --------------------------------------------------------------------------------------------------
# 0. the oracle itself (no module)
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["rk4", "heun3", "gauss2", "sdirk2"])
def test_reference_stage_layout_reverse_matches_complex_step(name):
    """The reference's two gradients in the stage layout (hand reverse: line by line for explicit
    tableaux, implicit function theorem otherwise), and its shared layout = stage layout with
    every stage's set equal to the layer's."""
    for k, field in enumerate(FIELDS):
        P = Problem(name, "stage", field, ACTIVATIONS[2 * k + 1], m=3, d=2)
        args = (P.A, P.b, P.y0, P.K, P.beta, P.h, P.W, field, P.activation)
        cs = ref.complex_step_gradient(*args)
        assert relative_error(ref.hand_reverse_gradient(*args), cs) <= EXACT_TOL
        assert relative_error(ref.complex_step_gradient(*args, y0_by_columns=True), cs) <= EXACT_TOL
        if not ref.is_explicit(P.A):
            assert relative_error(ref.hand_reverse_gradient(*args, method="ift"), cs) <= EXACT_TOL
    s = len(P.b)
    K1, b1 = P.K[:, 0], P.beta[:, 0]
    Ks, bs = np.repeat(K1[:, None], s, axis=1), np.repeat(b1[:, None], s, axis=1)
    shared = (P.A, P.b, P.y0, K1, b1, P.h)
    staged = (P.A, P.b, P.y0, Ks, bs, P.h)
    np.testing.assert_array_equal(ref.rk_forward(*shared), ref.rk_forward(*staged))
    g1, gs = ref.hand_reverse_gradient(*shared, P.W), ref.hand_reverse_gradient(*staged, P.W)
    assert relative_error(g1, (gs[0], gs[1].sum(axis=1), gs[2].sum(axis=1), gs[3])) <= 1e-15


def test_reference_continuous_map():
    """continuous_stage_parameters: the piecewise-linear interpolant (np.interp inside the
    nodes, straight lines beyond them), exact node values on nodes, and one-sided complex steps."""
    rng = np.random.default_rng(3)
    nodes = np.array([0.0, 0.4, 0.5, 1.2])
    P = rng.normal(size=(4, 2, 2))
    beta = rng.normal(size=(4, 2))
    c = np.array([0.0, 0.3, 1.0])
    h = np.array([0.4, 0.1, 0.5])  # layer boundaries 0, 0.4, 0.5, 1.0: c = 0 lands on nodes
    Ks, bs = ref.continuous_stage_parameters(c, nodes, h, P, beta)
    t = stage_times(c, h)
    for a in range(2):
        np.testing.assert_allclose(bs[..., a], np.interp(t, nodes, beta[:, a]), rtol=0, atol=1e-15)
        for e in range(2):
            np.testing.assert_allclose(Ks[..., a, e], np.interp(t, nodes, P[:, a, e]), rtol=0, atol=1e-15)
    for j in range(3):  # stage 0 of layer j sits on node j: its value exactly
        np.testing.assert_array_equal(Ks[j, 0], P[j])
    # beyond the ends: the end segments extended
    Ks, _ = ref.continuous_stage_parameters(np.array([0.5]), nodes, np.array([-0.2, 1.6, 0.2]), P, beta)
    np.testing.assert_allclose(Ks[0, 0], P[0] - 0.1 / 0.4 * (P[1] - P[0]), rtol=1e-14)
    np.testing.assert_allclose(Ks[2, 0], P[2] + (1.5 - 0.5) / 0.7 * (P[3] - P[2]), rtol=1e-14)
    # constant in time: the constant, exactly
    Kc = np.repeat(P[:1], 4, axis=0)
    np.testing.assert_array_equal(
        ref.continuous_stage_parameters(c, nodes, h, Kc, beta)[0], np.broadcast_to(P[0], (3, 3, 2, 2))
    )
    # a complex step in h_0 moves every later stage time by 1: stage 0 of layer 1 sits on node 1
    # (t = 0.4) and takes the segment [0.4, 0.5), so the derivative is that segment's slope (the
    # right one), not the mean of the two sides
    hc = h.astype(complex)
    hc[0] += 1e-30j
    Ks, _ = ref.continuous_stage_parameters(c, nodes, hc, P, beta)
    np.testing.assert_allclose(Ks[1, 0].imag / 1e-30, (P[2] - P[1]) / 0.1, rtol=1e-14)
    np.testing.assert_array_equal(Ks[1, 0].real, P[1])
    np.testing.assert_allclose(Ks[0, 1].imag / 1e-30, 0.3 * (P[1] - P[0]) / 0.4, rtol=1e-14)


def test_off_nodes_are_off_the_stage_times_and_inside_them():
    """OFF_NODES (OFF_NODES_4) with CONT_STEPS (and a fourth step): every compiled tableau's stage
    times stay > 1e-2 from the nodes, and some lie before the first node and after the last (the
    extended end segments)."""
    for nodes, steps in ((OFF_NODES, CONT_STEPS), (OFF_NODES_4, CONT_STEPS + CONT_STEPS[:1])):
        times = np.concatenate([stage_times(stage_nodes(name), steps).ravel() for name in COMPILED])
        assert np.min(np.abs(times[:, None] - np.array(nodes)[None, :])) > 1e-2
        assert times.min() < nodes[0] and times.max() > nodes[-1]


@pytest.mark.numba
@pytest.mark.parametrize("net", COMPILED, indirect=True)
def test_module_stage_nodes_are_the_tableaus(net):
    """The oracle takes c from rkgen's tableau; the module's C must be the same numbers."""
    np.testing.assert_allclose(np.asarray(net.C), stage_nodes(net.NAME), rtol=0, atol=1e-16)


# --------------------------------------------------------------------------------------------------
# 1. every module and layout against the reference (forward; complex-step gradient)
# --------------------------------------------------------------------------------------------------

CASES = [(name, layout) for name in COMPILED for layout in LAYOUTS]


@pytest.mark.numba
@pytest.mark.parametrize(("net", "layout"), CASES, indirect=["net"], ids=["-".join(c) for c in CASES])
def test_forward_and_gradient_match_reference(net, layout):
    k = CASES.index((net.NAME, layout))
    field, activation, d = rotation(k)
    P = Problem(net.NAME, layout, field, activation, d=d, seed=k)
    if layout == "continuous-nodes":
        assert node_margin(P.c, P.h, P.nodes) > 1e-2
    yN, grad = P.gradient(net)
    assert forward_error(yN, P.reference_forward()) <= FORWARD_TOL
    want = P.complex_step()
    for got, w in zip(grad, want, strict=True):
        assert got.shape == w.shape
    err = relative_error(grad, want)
    assert err <= EXACT_TOL, f"{field}/{activation}, d = {d}: gradient differs from complex step by {err:.2e}"
    assert np.any(grad[3] != 0)


# --------------------------------------------------------------------------------------------------
# 2. central differences
# --------------------------------------------------------------------------------------------------

FD_CASES = [
    ("rk4", "stage", "stable", "relu"),
    ("gauss2", "stage", "resnet", "tanh"),
    ("kutta3", "continuous", "stable", "sigmoid"),
    ("radau_iia2", "continuous", "resnet", "softplus"),
    ("rk4", "continuous-nodes", "resnet", "relu"),
    ("sdirk2", "continuous-nodes", "stable", "tanh"),
    ("heun3", "continuous-nodes", "stable", "softplus"),
]


@pytest.mark.numba
@pytest.mark.parametrize(
    ("net", "layout", "field", "activation"), FD_CASES, indirect=["net"], ids=["-".join(c) for c in FD_CASES]
)
def test_gradient_matches_central_differences(net, layout, field, activation):
    """Every entry of (y0, K, beta, h) by central differences of the module's forward pass.

    With the default nodes (layout "continuous"), forward(nodes=None) would move the nodes with h,
    and kutta3's and radau_iia2's stages with c_i = 0 or 1 sit on nodes, where the interpolant
    has a kink: there a central difference in h is the mean of the two one-sided derivatives,
    not the one backward gives. So h is differenced with the default nodes held as constants and
    only in the layout with nodes off the stage times; y0, K and beta are differenced in every
    layout (a stage on a node uses fixed weights)."""
    P = Problem(net.NAME, layout, field, activation, d=2, seed=40)
    _, grad = P.gradient(net)
    fixed = P.fixed_nodes
    fd = central_gradient(lambda x: P.loss(net, x, nodes=fixed), P.x)
    if layout == "continuous":
        assert node_margin(P.c, P.h, fixed) == 0.0  # stages on nodes: no central difference in h
        err = relative_error(grad[:3], fd[:3])
    else:
        if layout == "continuous-nodes":
            assert node_margin(P.c, P.h, P.nodes) > NODE_MARGIN > 100 * len(P.h) * FD_STEP
        err = relative_error(grad, fd)
    assert err <= FD_TOL, f"relative error {err:.2e} against central differences"


@pytest.mark.numba
@pytest.mark.parametrize("net", ["midpoint", "gauss2"], indirect=True)
def test_central_differences_in_h_with_nodes_at_the_layer_boundaries(net):
    """Nodes at the layer boundaries, held fixed, and stage times strictly inside the layers
    (0 < c_i < 1): the interpolant is smooth at every stage time, so the central difference in h
    is the derivative, and it includes the motion of the stage times."""
    P = Problem(net.NAME, "continuous", "resnet", "tanh", d=2, seed=41)
    assert node_margin(P.c, P.h, P.fixed_nodes) > 0.05
    _, grad = P.gradient(net)
    fd = central_gradient(lambda x: P.loss(net, x, nodes=P.fixed_nodes), P.x)
    assert relative_error(grad, fd) <= FD_TOL
    # the motion of the stage times is not negligible here: without it dh would be off
    _, tape = net.forward(P.y0, P.stage_sets()[0], P.stage_sets()[1], P.h, params="stage")
    frozen = net.backward(tape, P.W)[3]
    assert np.max(np.abs(frozen - fd[3])) > 1e3 * FD_TOL * np.max(np.abs(fd[3]))


# node times not tied to the layers: fewer nodes (one segment, both ends extended), more nodes than
# layers (several in one layer, one beyond every stage time), with a zero and a negative step
FREE_NODES = [
    ("rk4", (0.12, 0.19), STAGE_STEPS),
    ("gauss2", (-0.05, 0.07, 0.13, 0.22, 0.31, 0.5), STAGE_STEPS),
    ("sdirk2", (0.02, 0.4, 2.0, 3.0, 3.5), CONT_STEPS),
    ("heun3", (0.01, 0.12, 0.21, 0.33, 0.47, 0.61, 0.74, 0.86, 0.93), CONT_STEPS),
]


@pytest.mark.numba
@pytest.mark.parametrize(
    ("net", "nodes", "steps"), FREE_NODES, indirect=["net"], ids=[f"{c[0]}-M{len(c[1]) - 1}" for c in FREE_NODES]
)
def test_any_number_of_nodes(net, nodes, steps):
    """M + 1 nodal values at M + 1 node times for N = 3 layers, M != N: y_N and the gradient against
    the reference (complex steps), central differences in every entry (the stage times are off the
    nodes), and nodes whose segments hold no stage time get no gradient."""
    k = [c[0] for c in FREE_NODES].index(net.NAME)
    field, activation, d = rotation(k + 5)
    P = Problem(net.NAME, "continuous", field, activation, d=d, seed=120 + k, steps=steps, nodes=nodes)
    assert P.K.shape[0] == len(nodes) != N + 1
    assert node_margin(P.c, P.h, P.nodes) > NODE_MARGIN
    yN, grad = P.gradient(net)
    assert forward_error(yN, P.reference_forward()) <= FORWARD_TOL
    assert relative_error(grad, P.complex_step()) <= EXACT_TOL
    assert relative_error(grad, central_gradient(lambda x: P.loss(net, x), P.x)) <= FD_TOL
    times = stage_times(P.c, P.h).ravel()
    nodes = np.array(nodes)
    seg = [max(0, min(len(nodes) - 2, int(np.sum(nodes[1:-1] <= t)))) for t in times]
    unused = sorted(set(range(len(nodes))) - set(seg) - {q + 1 for q in seg})
    for q in unused:
        assert not grad[1][q].any() and not grad[2][q].any()
    if net.NAME == "sdirk2":
        assert unused == [3, 4]


@pytest.mark.numba
def test_one_sided_derivative_at_a_node(net_euler):
    """Euler with the nodes at the layer boundaries: the stage of layer j sits on node j. backward's
    dJ/dh_k (k < j moves that stage time) is the derivative from the right (the segment that
    starts at the node), which a forward difference approaches and a central difference does not:
    the central difference is the mean of the two sides."""
    P = Problem("euler", "continuous", "stable", "tanh", d=2, seed=42)
    _, (_, _, _, dh) = P.gradient(net_euler)
    nodes = P.fixed_nodes

    def J(h):
        return P.loss(net_euler, (P.y0, P.K, P.beta, h), nodes=nodes)

    e = 1e-7
    for k in range(N - 1):  # h_k moves the stage of layer k + 1 (and later ones) off their nodes
        up, down = P.h.copy(), P.h.copy()
        up[k] += e
        down[k] -= e
        right, left = (J(up) - J(P.h)) / e, (J(P.h) - J(down)) / e
        central = (J(up) - J(down)) / (2 * e)
        assert abs(right - dh[k]) <= 1e-6 * abs(dh[k])
        assert abs(left - right) > 1e-3 * abs(dh[k])  # a real kink
        assert abs(central - dh[k]) > 1e-4 * abs(dh[k])
    assert abs(P.complex_step()[3][0] - dh[0]) <= EXACT_TOL * abs(dh[0])


# --------------------------------------------------------------------------------------------------
# 3. dot test and Taylor test
# --------------------------------------------------------------------------------------------------

SMOOTH_LAYOUTS = ("stage", "continuous-nodes")  # continuous: nodes off the stage times


def _direction(P, seed):
    """A random direction over all parameters; its step part kept small enough that no stage
    time reaches a node for e <= 1e-2 (the map is smooth along the whole path)."""
    rng = np.random.default_rng(seed)
    v = [rng.normal(size=np.shape(a)) for a in P.x]
    if P.params == "continuous":
        v[3] *= 0.1
        moves = 1e-2 * np.max(np.abs(stage_times(P.c, v[3]) - stage_times(P.c, np.zeros_like(v[3]))))
        assert moves < 0.5 * node_margin(P.c, P.h, P.nodes)
    return v


@pytest.mark.numba
@pytest.mark.parametrize("net", ["rk4", "gauss2", "sdirk2"], indirect=True)
@pytest.mark.parametrize("layout", SMOOTH_LAYOUTS)
def test_dot_product(net, layout):
    """<backward(p), v> against the directional derivative of J = <p, y_N> along v (all of y0, K,
    beta and h at once): by central differences of the module, and exactly by one complex step
    through the reference."""
    k = SMOOTH_LAYOUTS.index(layout) + 2 * ("rk4", "gauss2", "sdirk2").index(net.NAME)
    field, activation, _ = rotation(k + 1)
    P = Problem(net.NAME, layout, field, activation, d=3, seed=50 + k)
    v = _direction(P, 60 + k)
    _, grad = P.gradient(net)
    gv = sum(float(np.sum(g * w)) for g, w in zip(grad, v, strict=True))
    scale = sum(float(np.sum(np.abs(g * w))) for g, w in zip(grad, v, strict=True))
    e = 1e-6
    up = P.loss(net, [a + e * w for a, w in zip(P.x, v, strict=True)])
    down = P.loss(net, [a - e * w for a, w in zip(P.x, v, strict=True)])
    assert abs((up - down) / (2 * e) - gv) <= 1e-8 * scale
    eps = 1e-30
    y0, K, beta, h = (np.asarray(a, dtype=complex) + 1j * eps * w for a, w in zip(P.x, v, strict=True))
    Jv = np.sum(P.W * ref.rk_forward(P.A, P.b, y0, *P.stage_sets(K, beta, h), h, field, activation)).imag / eps
    assert abs(Jv - gv) <= EXACT_TOL * scale


@pytest.mark.numba
@pytest.mark.parametrize("net", ["rk4", "gauss2", "sdirk2"], indirect=True)
@pytest.mark.parametrize("layout", SMOOTH_LAYOUTS)
def test_taylor_remainder_decays_quadratically(net, layout):
    """|J(x + e v) - J(x)| falls as e and |J(x + e v) - J(x) - e <g, v>| as e^2, e = 1e-2 .. 1e-4."""
    P = Problem(net.NAME, layout, "stable", "softplus", d=2, seed=70)
    v = _direction(P, 71)
    J0 = P.loss(net, P.x)
    _, grad = P.gradient(net)
    gv = sum(float(np.sum(g * w)) for g, w in zip(grad, v, strict=True))
    eps = 1e-2 * 10.0 ** (-np.arange(9) / 4)  # 1e-2 .. 1e-4
    r0, r1 = [], []
    for e in eps:
        Je = P.loss(net, [a + e * w for a, w in zip(P.x, v, strict=True)])
        r0.append(abs(Je - J0))
        r1.append(abs(Je - J0 - e * gv))
    slope0 = np.diff(np.log(r0)) / np.diff(np.log(eps))
    slope1 = np.diff(np.log(r1)) / np.diff(np.log(eps))
    fit = np.polyfit(np.log(eps), np.log(r1), 1)[0]
    # J(x + e v) - J(x) = e <g, v> + O(e^2): slope 1 once the linear term dominates (where <g, v>
    # is small, the e^2 term bends the first slopes: gauss2's stage case starts at 0.67)
    assert np.all(np.abs(slope0[-3:] - 1) < 0.02), slope0
    assert np.all(np.abs(slope1 - 2) < 0.2), slope1
    assert abs(fit - 2) < 0.05, fit


# --------------------------------------------------------------------------------------------------
# 4. the layouts against each other
# --------------------------------------------------------------------------------------------------


@pytest.mark.numba
@pytest.mark.parametrize("net", COMPILED, indirect=True)
def test_stage_layout_with_equal_sets_is_shared(net):
    """Every stage of layer j given layer j's set: y_N exactly the shared one, dK and dbeta summed
    over the stages the shared gradient, dy0 and dh the same."""
    field, activation, d = rotation(COMPILED.index(net.NAME))
    P = Problem(net.NAME, "shared", field, activation, d=d, seed=80)
    s = net.STAGES
    Ks, bs = np.repeat(P.K[:, None], s, axis=1), np.repeat(P.beta[:, None], s, axis=1)
    y1, t1 = net.forward(P.y0, P.K, P.beta, P.h, field=field, activation=activation)
    ys, ts = net.forward(P.y0, Ks, bs, P.h, field=field, activation=activation, params="stage")
    np.testing.assert_array_equal(ys, y1)
    g1 = net.backward(t1, P.W)
    gs = net.backward(ts, P.W)
    assert gs[1].shape == Ks.shape and gs[2].shape == bs.shape
    assert relative_error((gs[0], gs[1].sum(axis=1), gs[2].sum(axis=1), gs[3]), g1) <= 1e-14


@pytest.mark.numba
@pytest.mark.parametrize("net", COMPILED, indirect=True)
@pytest.mark.parametrize("nodes", ["default", "off"])
def test_continuous_layout_constant_in_time_is_shared(net, nodes):
    """Nodal values all equal to one set (K, beta): every stage uses that set (up to the rounding
    of the interpolation weights), so y_N is the shared layout's with (K, beta) in every layer;
    dK and dbeta summed over the nodes are the shared gradient summed over the layers (the
    gradient of the common set), dh gets nothing from the motion of the stage times (the slope
    is zero), and dy0 is the same."""
    field, activation, d = rotation(COMPILED.index(net.NAME) + 3)
    P = Problem(net.NAME, "continuous-nodes" if nodes == "off" else "continuous", field, activation, d=d, seed=90)
    Kn, bn = np.repeat(P.K[:1], N + 1, axis=0), np.repeat(P.beta[:1], N + 1, axis=0)
    y1, t1 = net.forward(P.y0, Kn[:N], bn[:N], P.h, field=field, activation=activation)
    yc, tc = P.forward(net, (P.y0, Kn, bn, P.h))
    assert forward_error(yc, y1) <= 1e-15
    g1, gc = net.backward(t1, P.W), net.backward(tc, P.W)
    assert gc[1].shape == Kn.shape and gc[2].shape == bn.shape
    want = (g1[0], g1[1].sum(axis=0), g1[2].sum(axis=0), g1[3])
    assert relative_error((gc[0], gc[1].sum(axis=0), gc[2].sum(axis=0), gc[3]), want) <= 1e-14


@pytest.mark.numba
def test_euler_stage_uses_its_node_exactly(net_euler):
    """Nodes at the layer boundaries and c = 0: the stage of layer j sits on node j (weight 0 on
    node j + 1), so y_N is bit-for-bit the shared layout with K_j = nodal K_j, the nodal gradient
    of nodes 0..N-1 is the shared one exactly and node N gets none. dh differs from the shared
    one by the motion of the stage times (the slope of the segment that starts at each node)."""
    P = Problem("euler", "continuous", "resnet", "sigmoid", d=3, seed=100)
    assert node_margin(P.c, P.h, P.fixed_nodes) == 0.0
    y1, t1 = net_euler.forward(P.y0, P.K[:N], P.beta[:N], P.h, activation="sigmoid")
    yc, tc = P.forward(net_euler)
    np.testing.assert_array_equal(yc, y1)
    g1, gc = net_euler.backward(t1, P.W), net_euler.backward(tc, P.W)
    np.testing.assert_array_equal(gc[0], g1[0])
    np.testing.assert_array_equal(gc[1][:N], g1[1])
    np.testing.assert_array_equal(gc[2][:N], g1[2])
    assert not gc[1][N].any() and not gc[2][N].any()
    # dh_k = shared dh_k + sum over later layers j of (slope of segment j) . (stage gradient)
    slope_K, slope_b = np.diff(P.K, axis=0) / P.h[:, None, None], np.diff(P.beta, axis=0) / P.h[:, None]
    moving = [float(np.sum(slope_K[j] * g1[1][j]) + np.sum(slope_b[j] * g1[2][j])) for j in range(N)]
    want = g1[3] + np.array([sum(moving[k + 1 :]) for k in range(N)])
    assert relative_error([gc[3]], [want]) <= 1e-14
    assert relative_error(gc, P.complex_step()) <= EXACT_TOL


@pytest.mark.numba
@pytest.mark.parametrize("layout", ["shared", "stage", "continuous"])
def test_no_layers_in_every_layout(net_rk4, layout):
    """No layer (h empty): the identity, dJ/dy0 = p, zero parameter gradients in the caller's layout."""
    rng = np.random.default_rng(130)
    d, s = 2, net_rk4.STAGES
    y0, W = rng.normal(size=(3, d)), rng.normal(size=(3, d))
    shape = {"shared": (0,), "stage": (0, s), "continuous": (3,)}[layout]
    K, beta = rng.normal(size=shape + (d, d)), rng.normal(size=shape + (d,))
    nodes = [0.0, 0.5, 1.0] if layout == "continuous" else None
    yN, tape = net_rk4.forward(y0, K, beta, np.zeros(0), params=layout, nodes=nodes)
    np.testing.assert_array_equal(yN, y0)
    dy0, dK, dbeta, dh = net_rk4.backward(tape, W)
    np.testing.assert_array_equal(dy0, W)
    assert dK.shape == K.shape and dbeta.shape == beta.shape and dh.shape == (0,)
    assert not dK.any() and not dbeta.any()


# --------------------------------------------------------------------------------------------------
# 5. the parallel path
# --------------------------------------------------------------------------------------------------


# batches above the module's work threshold with d = 2, N = 4 (fully implicit tableaux weigh 15 times
# more per sample, see rkgen/runtime/layout.py _work)
PARALLEL = [("rk4", 4000), ("gauss2", 600)]


@pytest.mark.numba
@pytest.mark.parametrize("layout", ["stage", "continuous-nodes"])
@pytest.mark.parametrize(("net", "m"), PARALLEL, indirect=["net"], ids=[c[0] for c in PARALLEL])
def test_parallel_path_matches_reference(net, m, layout, monkeypatch):
    """A batch large enough to be split over threads: both kernels run in parallel, and y_N and the
    gradient agree with the reference (complex steps; y0 a column at a time, the samples being
    independent)."""
    import numba

    threads = numba.get_num_threads()
    if threads < 2:
        pytest.skip("numba runs one thread: no parallel path")
    d, layers = 2, 4
    assert net._parallel(m, d, layers, threads) and net._layout(m, d, layers)[2] is not None
    calls = []
    for kernel in ("_forward_parallel", "_backward_parallel"):
        real = getattr(net, kernel)

        def wrapper(*args, _real=real, _kernel=kernel):
            calls.append(_kernel)
            return _real(*args)

        monkeypatch.setattr(net, kernel, wrapper)
    P = Problem(net.NAME, layout, "stable", "tanh", m=m, d=d, layers=layers, seed=110)
    if P.params == "continuous":
        assert node_margin(P.c, P.h, P.nodes) > 1e-2
    yN, grad = P.gradient(net)
    assert calls == ["_forward_parallel", "_backward_parallel"]
    assert forward_error(yN, P.reference_forward()) <= FORWARD_TOL
    assert relative_error(grad, P.complex_step(y0_by_columns=True)) <= EXACT_TOL


# --------------------------------------------------------------------------------------------------
# 5b. wide layers: the BLAS path
# --------------------------------------------------------------------------------------------------

WIDE_LAYOUTS = ("shared", "stage", "continuous-nodes")  # continuous: nodes off the stage times
WIDE_CASES = [(name, layout, field) for name in COMPILED for layout in WIDE_LAYOUTS for field in FIELDS]
SMOOTH = ("tanh", "sigmoid", "softplus")  # complex steps need an analytic activation


def wide_problem(net, layout, field, k, m=11, layers=N):
    """An instance at the width net.WIDE + 1 (above the threshold, not a multiple of 8), K ~ N(0, 1/d)."""
    d = net.WIDE + 1
    return Problem(
        net.NAME, layout, field, SMOOTH[k % 3], m=m, d=d, layers=layers, seed=300 + k, scale=1 / np.sqrt(d)
    )


def check_against_reference(P, net, seed):
    """y_N against the reference; each gradient along a random direction against one complex step."""
    yN, grad = P.gradient(net)
    assert forward_error(yN, P.reference_forward()) <= FORWARD_TOL
    v = _direction(P, seed)
    eps = 1e-30
    for a in range(4):  # y0, K, beta, h, one at a time
        x = [np.asarray(x, dtype=complex) for x in P.x]
        x[a] = x[a] + 1j * eps * v[a]
        y0, K, beta, h = x
        yc = ref.rk_forward(P.A, P.b, y0, *P.stage_sets(K, beta, h), h, P.field, P.activation)
        Jv = float(np.sum(P.W * yc).imag / eps)
        gv = float(np.sum(grad[a] * v[a]))
        scale = float(np.sum(np.abs(grad[a] * v[a])))
        assert abs(Jv - gv) <= EXACT_TOL * scale, f"gradient {a}: {gv!r} against {Jv!r}"
    return grad


@pytest.mark.numba
@pytest.mark.parametrize(
    ("net", "layout", "field"), WIDE_CASES, indirect=["net"], ids=["-".join(c) for c in WIDE_CASES]
)
def test_wide_layers_match_reference(net, layout, field):
    k = WIDE_CASES.index((net.NAME, layout, field))
    P = wide_problem(net, layout, field, k)
    assert P.y0.shape[1] >= net.WIDE
    grad = check_against_reference(P, net, 400 + k)
    if layout == "shared":  # entry by entry: the package's numpy network and its hand-written adjoint
        from rkgen.reference import Network

        reference = Network(net.NAME)
        _, tape = reference.forward(*P.x, field=field, activation=P.activation)
        for got, want in zip(grad, reference.backward(tape, P.W), strict=True):
            assert float(np.max(np.abs(got - want))) <= EXACT_TOL * float(np.max(np.abs(want)))


LONG_CASES = [("rk4", "shared", "resnet"), ("gauss2", "stage", "stable"), ("sdirk2", "continuous-nodes", "resnet")]


@pytest.mark.numba
@pytest.mark.parametrize(
    ("net", "layout", "field"), LONG_CASES, indirect=["net"], ids=["-".join(c) for c in LONG_CASES]
)
def test_long_batches_at_long_width_multiply_through_blas(net, layout, field):
    """From LONG_WIDTH on, a batch long enough to fill blocks of LONG_BLOCK samples (on every thread) multiplies
    through BLAS, a short one keeps the loops (the layout decides, once per call: products._wide); both are exact.
    An explicit, a fully implicit (fixed point, then Newton per sample) and a DIRK tableau."""
    k = LONG_CASES.index((net.NAME, layout, field))
    d = net.LONG_WIDTH
    assert d < net.WIDE
    for m, wide in ((4 * net.LONG_BLOCK + 9, True), (11, False)):
        P = Problem(net.NAME, layout, field, SMOOTH[k % 3], m=m, d=d, layers=N, seed=320 + k, scale=1 / np.sqrt(d))
        bs, _, _ = net._layout(m, d, N)
        assert net._is_wide(d, bs) is wide, (m, bs)
        check_against_reference(P, net, 420 + k)


WIDE_PARALLEL = [("rk4", "shared"), ("gauss2", "stage"), ("sdirk2", "continuous-nodes")]


@pytest.mark.numba
@pytest.mark.parametrize(("net", "layout"), WIDE_PARALLEL, indirect=["net"], ids=["-".join(c) for c in WIDE_PARALLEL])
def test_wide_parallel_path_matches_reference(net, layout, monkeypatch):
    """Wide layers over threads (one block per thread, BLAS on one thread inside), a last block with padding
    columns: y_N and the gradients against the reference."""
    import numba

    threads = numba.get_num_threads()
    if threads < 2:
        pytest.skip("numba runs one thread: no parallel path")
    k = WIDE_PARALLEL.index((net.NAME, layout))
    P = wide_problem(net, layout, "stable" if k % 2 else "resnet", k, m=301)
    m, d = P.y0.shape
    bs, nblocks, bounds = net._layout(m, d, N)
    assert bounds is not None and nblocks * bs > m
    calls = []
    for kernel in ("_forward_parallel", "_backward_parallel"):
        real = getattr(net, kernel)

        def wrapper(*args, _real=real, _kernel=kernel):
            calls.append(_kernel)
            return _real(*args)

        monkeypatch.setattr(net, kernel, wrapper)
    check_against_reference(P, net, 500 + k)
    assert calls == ["_forward_parallel", "_backward_parallel"]


# --------------------------------------------------------------------------------------------------
# 6. shapes
# --------------------------------------------------------------------------------------------------


def _raises(net, message, y0, K, beta, h, **options):
    with pytest.raises(ValueError, match=re.escape(message)):
        net.forward(y0, K, beta, h, **options)


@pytest.mark.numba
def test_bad_shapes_name_the_expected_shape(net_rk4):
    m, d, s = 3, 2, net_rk4.STAGES
    y0, h = np.zeros((m, d)), np.full(N, 0.1)

    def z(*shape):
        return np.zeros(shape)

    # shared
    _raises(net_rk4, "K must have shape (N, 2, 2) for params='shared'", y0, z(N, s, d, d), z(N, d), h)
    _raises(net_rk4, "beta must have shape (3, 2)", y0, z(N, d, d), z(N, s, d), h)
    _raises(net_rk4, "h has shape (4,), expected (3,)", y0, z(N, d, d), z(N, d), np.full(N + 1, 0.1))
    # stage
    stage = {"params": "stage"}
    _raises(net_rk4, "K must have shape (N, 4, 2, 2) for params='stage'", y0, z(N, d, d), z(N, s, d), h, **stage)
    _raises(net_rk4, "K must have shape (N, 4, 2, 2)", y0, z(N, s, d, d + 1), z(N, s, d), h, **stage)
    _raises(net_rk4, "K must have shape (N, 4, 2, 2)", y0, z(N, s + 1, d, d), z(N, s + 1, d), h, **stage)
    _raises(net_rk4, "beta must have shape (3, 4, 2)", y0, z(N, s, d, d), z(N, d), h, **stage)
    _raises(net_rk4, "h has shape (2,), expected (3,)", y0, z(N, s, d, d), z(N, s, d), h[:2], **stage)
    # continuous
    cont = {"params": "continuous"}
    # (M+1 nodal values at M+1 node times, for any M >= 1; M = N when the nodes default to the
    # layer boundaries)
    _raises(net_rk4, "K must have shape (M+1, 2, 2) with M >= 1", y0, z(N + 1, s, d, d), z(N + 1, d), h, **cont)
    _raises(net_rk4, "K must have shape (M+1, 2, 2) with M >= 1", y0, z(1, d, d), z(1, d), h, nodes=[0.0], **cont)
    _raises(net_rk4, "beta must have shape (4, 2)", y0, z(N + 1, d, d), z(N, d), h, **cont)
    _raises(net_rk4, "beta must have shape (6, 2)", y0, z(6, d, d), z(N + 1, d), h, nodes=np.arange(6.0), **cont)
    _raises(
        net_rk4,
        "4 nodal values for 4 steps: give their times",
        y0,
        z(N + 1, d, d),
        z(N + 1, d),
        np.full(4, 0.1),
        **cont,
    )
    _raises(net_rk4, "3 nodal values for 3 steps: give their times", y0, z(N, d, d), z(N, d), h, **cont)
    args = (y0, z(N + 1, d, d), z(N + 1, d), h)
    for nodes in (np.arange(N), np.arange(N + 2), np.array([0.0, 0.2, 0.2, 0.3]), np.array([0, 0.1, np.nan, 1])):
        _raises(net_rk4, "nodes must be 4 increasing finite times", *args, nodes=nodes, **cont)
    _raises(
        net_rk4, "nodes must be 2 increasing finite times", y0, z(2, d, d), z(2, d), h, nodes=[0.0, 0.5, 1.0], **cont
    )
    # the default nodes (0, cumsum(h)) must increase too: a zero step has no default nodes
    _raises(net_rk4, "need positive steps", *args[:3], np.array([0.1, 0.0, 0.2]), **cont)
    net_rk4.forward(*args[:3], np.array([0.1, 0.0, 0.2]), nodes=np.arange(N + 1.0), **cont)  # explicit: fine
    # the layout's name
    _raises(
        net_rk4, "params must be one of ('shared', 'stage', 'continuous')", y0, z(N, d, d), z(N, d), h, params="layer"
    )

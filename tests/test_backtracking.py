"""The Lipschitz estimate L of gd-backtracking (000 Algorithm 2; rkgen/train/trainer.py).

Each iteration starts from the current L: every rejected trial step multiplies it by rho_up, and
after the accepted one it is multiplied by rho_down. So after one iteration from L0 with k rejected
trials first, L = L0 rho_up^k rho_down. The history records L in ``step_control``: the first row is
iteration 0 (the initial parameters, L0), then one row per iteration.

The model is the plain network (``model="net"``, no tableau, nothing compiled) on a few points.
"""

from __future__ import annotations

import numpy as np
import pytest

import rkgen.train.trainer as trainer_mod
from rkgen.train import train

RHO_UP, RHO_DOWN = 3.0, 0.7  # neither the defaults nor reciprocal
SMALL = dict(
    model="net",
    dataset="donut1d",
    samples=40,
    layers=2,
    optimizer="gd-backtracking",
    rho_up=RHO_UP,
    rho_down=RHO_DOWN,
    eval_every=1,
    out=False,
    plots=False,
    progress=False,
)


@pytest.fixture
def trials(monkeypatch):
    """The outcomes of the Armijo test, in order (the test itself unchanged)."""
    seen = []
    real = trainer_mod.armijo_accepts

    def spy(*args):
        ok = real(*args)
        seen.append(ok)
        return ok

    monkeypatch.setattr(trainer_mod, "armijo_accepts", spy)
    return seen


def scripted(monkeypatch, outcomes):
    """Make the Armijo test answer ``outcomes`` in turn (True: accept), whatever the costs."""
    answers = iter(outcomes)
    calls = []

    def fixed(*args):
        calls.append(args[-1])  # the L of the trial
        return next(answers)

    monkeypatch.setattr(trainer_mod, "armijo_accepts", fixed)
    return calls


def expected(L0, rejected):
    L = L0
    for _ in range(rejected):
        L *= RHO_UP
    return L * RHO_DOWN


def test_first_trial_accepted(trials):
    L0 = 1000.0  # a short step: the Armijo test holds at once
    res = train(iterations=1, lipschitz=L0, **SMALL)
    assert res.status == "completed"
    assert trials == [True]
    assert res.history["iteration"].tolist() == [0, 1]
    assert res.history["step_control"][0] == L0
    assert res.history["step_control"][1] == pytest.approx(L0 * RHO_DOWN, rel=1e-14)
    assert res.history["train_loss"][1] < res.history["train_loss"][0]


def test_rejected_trials_raise_l_before_the_accepted_one(trials):
    L0 = 1e-3  # a far too long step: rejected until L has grown
    res = train(iterations=1, lipschitz=L0, **SMALL)
    assert res.status == "completed"
    k = len(trials) - 1
    assert k >= 2 and trials == [False] * k + [True]
    assert res.history["step_control"][0] == L0
    assert res.history["step_control"][1] == pytest.approx(expected(L0, k), rel=1e-14)
    assert res.history["train_loss"][1] < res.history["train_loss"][0]


@pytest.mark.parametrize("k", [0, 1, 4])
def test_k_rejections_then_acceptance(monkeypatch, k):
    L0 = 2.5
    calls = scripted(monkeypatch, [False] * k + [True])
    res = train(iterations=1, lipschitz=L0, **SMALL)
    assert res.status == "completed"
    # the trials are tried with L0, L0 rho_up, ..., L0 rho_up^k
    assert calls == pytest.approx([L0 * RHO_UP**i for i in range(k + 1)], rel=1e-14)
    assert res.history["step_control"].tolist() == pytest.approx([L0, expected(L0, k)], rel=1e-14)


def test_each_iteration_starts_from_the_current_l(monkeypatch):
    L0 = 2.5
    # iteration 1: one rejection; iteration 2: none; iteration 3: two rejections
    calls = scripted(monkeypatch, [False, True, True, False, False, True])
    res = train(iterations=3, lipschitz=L0, **SMALL)
    assert res.status == "completed"
    L1 = expected(L0, 1)
    L2 = expected(L1, 0)
    L3 = expected(L2, 2)
    assert calls == pytest.approx([L0, L0 * RHO_UP, L1, L2, L2 * RHO_UP, L2 * RHO_UP**2], rel=1e-14)
    assert res.history["iteration"].tolist() == [0, 1, 2, 3]
    assert res.history["step_control"].tolist() == pytest.approx([L0, L1, L2, L3], rel=1e-14)


def test_no_acceptance_stalls_and_keeps_the_parameters(monkeypatch):
    L0 = 2.5
    calls = scripted(monkeypatch, [False] * 3)
    res = train(iterations=1, lipschitz=L0, max_trials=3, **SMALL)
    assert res.status == "stalled" and "3 trials" in res.message
    assert calls == pytest.approx([L0, L0 * RHO_UP, L0 * RHO_UP**2], rel=1e-14)
    assert res.history["iteration"].tolist() == [0]
    assert np.all(np.isfinite(res.history["train_loss"]))

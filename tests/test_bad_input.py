"""Every public entry point refuses bad input with an error naming the argument (issue: reliability).

One table for the Python API (wrong types, out-of-range values, non-invertible or non-separable
``g(w)``, non-callables, unsafe expressions) and one for the command lines (unknown ids, bad
flags: one line on stderr, exit 2). Module tests keep their own finer cases."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

import theory
from conftest import run_guarded
from numerics import bias, optim
from numerics.integrate import integrate
from numerics.losses import ExponentialLoss, LinearRegression, SeparableQuadratic
from numerics.sign import simulate_sign_flow
from numerics.simulate import (simulate_mirror_flow, simulate_parameter_flow, simulate_scalar_flow,
                               simulate_two_branch_flow)

W = torch.full((1, 1, 2), 0.5, dtype=torch.float64)
SQ = SeparableQuadratic(1.0)
X0 = torch.full((1, 1), 0.2, dtype=torch.float64)


def _params():
    return torch.nn.Linear(2, 1).parameters()


API = [
    # theory: wrong types, ranges, unknown choices, user expressions
    (lambda: theory.escape_time(3, "1.5", 0.1), TypeError, "q"),
    (lambda: theory.escape_time(3, 1.5, None), TypeError, "alpha"),
    (lambda: theory.escape_time(3, 1.5, 0.1, -1.0), ValueError, "y"),
    (lambda: theory.escape_time(0, 1.5, 0.1), ValueError, "L"),
    (lambda: theory.escape_class("3", 1.5), TypeError, "L"),
    (lambda: theory.mirror_potential(3, 2.5), ValueError, "q"),
    (lambda: theory.mirror_potential(2.5, 1.5), TypeError, "L"),
    (lambda: theory.coercivity(3, 1.5, -0.5), ValueError, "lam"),
    (lambda: theory.equilibrium(2, 1.0, -0.1, 1.0), ValueError, "nu"),
    (lambda: theory.equilibrium(2, 1.0, "0.1", 1.0), TypeError, "nu"),
    (lambda: theory.equilibrium(2, 1.0, 0.1, 1.0, decay="both"), ValueError, "decay"),
    (lambda: theory.escape_or_collapse(3, 2.0, 0.3, 1.0, -0.1), ValueError, "alpha"),
    (lambda: theory.step_count(3, 1e-3, method="adam"), ValueError, "method"),
    (lambda: theory.largest_stable_step(0), ValueError, "L"),
    (lambda: theory.reparam.scalar("cos(w)"), ValueError, "not monotone"),
    (lambda: theory.reparam.scalar("w*v"), ValueError, "g: unknown name 'v'"),
    (lambda: theory.reparam.scalar("__import__('os').system('true')"), ValueError, "g"),
    (lambda: theory.reparam.scalar("w.__class__"), ValueError, "g"),
    (lambda: theory.reparam.scalar(3), TypeError, "g"),
    (lambda: theory.reparam.scalar("tanh(w)", params={"b": 2}), ValueError, "params: 'b' does not appear in g"),
    # simulators
    (lambda: simulate_parameter_flow(W, "1.5", SQ, 1.0), TypeError, "q"),
    (lambda: simulate_parameter_flow(W, 2.5, SQ, 1.0), ValueError, "q"),
    (lambda: simulate_parameter_flow(W, float("nan"), SQ, 1.0), ValueError, "q"),
    (lambda: simulate_parameter_flow(W, 1.5, "quadratic", 1.0), TypeError, "loss"),
    (lambda: simulate_parameter_flow(W, 1.5, SQ, "1"), TypeError, "t_end"),
    (lambda: simulate_parameter_flow(W, 1.5, SQ, float("inf")), ValueError, "t_end"),
    (lambda: simulate_parameter_flow("w", 1.5, SQ, 1.0), TypeError, "w0"),
    (lambda: simulate_parameter_flow(torch.ones(2, 3), 1.5, SQ, 1.0), ValueError, "w0"),
    (lambda: simulate_parameter_flow(W, 1.5, SQ, 1.0, extras=[3]), TypeError, "extras"),
    (lambda: simulate_parameter_flow(W, 1.5, SQ, 1.0, decay="both", nu=0.1), ValueError, "decay"),
    (lambda: simulate_parameter_flow(W, 1.5, SQ, 1.0, decay="coupled", nu=-1.0), ValueError, "nu"),
    (lambda: simulate_parameter_flow(W, 1.5, SQ, 1.0, decay="coupled", nu="x"), TypeError, "nu"),
    (lambda: simulate_parameter_flow(W, 1.5, SQ, 1.0, decay="coupled", nu=0.5, schedule=3), TypeError,
     "schedule"),
    (lambda: simulate_parameter_flow(W, 1.5, SQ, 1.0, rtol=0.0), ValueError, "rtol"),
    (lambda: simulate_parameter_flow(W, 1.5, SQ, 1.0, max_steps=0), ValueError, "max_steps"),
    (lambda: simulate_parameter_flow(W, 1.5, SQ, 1.0, max_step=-1.0), ValueError, "max_step"),
    (lambda: simulate_parameter_flow(W, 1.5, SQ, 1.0, device="tpu"), ValueError, "device"),
    (lambda: simulate_mirror_flow(X0, 1.5, SQ, 3, 1.0), TypeError, "hess"),
    (lambda: simulate_mirror_flow(torch.ones(3), 1.5, SQ, lambda x, p: x, 1.0), ValueError, "x0"),
    (lambda: simulate_scalar_flow(X0, 1.5, SQ, "sinh(w)", None, 1.0), TypeError, "g"),
    (lambda: simulate_two_branch_flow(W, torch.ones(1, 2, 2), 1.5, SQ, 1.0), ValueError, "u0"),
    (lambda: simulate_sign_flow(W, ExponentialLoss(torch.ones(1, 1), [1.0]), 1.0), ValueError, "loss"),
    (lambda: simulate_sign_flow(W, SQ, -1.0), ValueError, "t_end"),
    (lambda: integrate(None, 0.0, torch.ones(3), 1.0), ValueError, "y0"),
    # losses
    (lambda: SeparableQuadratic("a"), TypeError, "y"),
    (lambda: SeparableQuadratic(float("nan")), ValueError, "y"),
    (lambda: LinearRegression(torch.ones(3), torch.ones(3)), ValueError, "X"),
    (lambda: LinearRegression(torch.ones(3, 2), torch.ones(4)), ValueError, "y"),
    (lambda: ExponentialLoss(torch.ones(2, 2), [1.0, 0.5]), ValueError, "labels"),
    # optimizers and building blocks
    (lambda: optim.SteepestDescent(_params(), lr=-1.0), ValueError, "lr"),
    (lambda: optim.SteepestDescent(_params(), lr=0.1, q=3.0), ValueError, "q"),
    (lambda: optim.SteepestDescent(_params(), lr=0.1, q="1"), TypeError, "q"),
    (lambda: optim.SteepestDescent(_params(), lr=0.1, weight_decay=-1.0), ValueError, "weight_decay"),
    (lambda: optim.SteepestDescent(_params(), lr=0.1, decoupled="yes"), TypeError, "decoupled"),
    (lambda: optim.SignDescent(_params(), lr="0.1"), TypeError, "lr"),
    (lambda: optim.scale_by_steepest(0.5), ValueError, "q"),
    (lambda: optim.add_decayed_weights(-0.1), ValueError, "weight_decay"),
    (lambda: optim.scale_by_schedule(3), TypeError, "schedule"),
    # implicit-bias solvers
    (lambda: bias.Balanced(0, 2.0, np.ones(2)), ValueError, "L"),
    (lambda: bias.Balanced(2, 2.0, np.zeros(2)), ValueError, "x0"),
    (lambda: bias.bregman_point(bias.Balanced(2, 2.0, np.full(3, 0.1)), np.ones((2, 4)), np.ones(2)),
     ValueError, "X"),
    (lambda: bias.one_sample_point(bias.Balanced(2, 1.5, np.full(3, 0.1)), np.ones(3), "a"), TypeError, "y"),
    (lambda: bias.max_margin(np.ones((2, 2)), 0.5), ValueError, "r"),
]


@pytest.mark.parametrize("call, exc, name", API, ids=[f"api{i}-{n}" for i, (_, _, n) in enumerate(API)])
def test_api_refuses_bad_input_naming_the_argument(call, exc, name):
    with pytest.raises(exc, match=name):
        call()


LR3 = LinearRegression(torch.ones(4, 3, dtype=torch.float64), torch.ones(4, dtype=torch.float64))   # n = 3
X02 = torch.full((1, 2), 0.2, dtype=torch.float64)
SUM = lambda x, g, p: x.sum(1)                    # noqa: E731  (B,), not (B, k)

SHAPES = [
    # one row per public entry point: a bad shape raises "<arg> must have shape ..., got ..."
    (lambda: simulate_parameter_flow(W, 1.5, LR3, 1.0), "w0"),
    (lambda: simulate_parameter_flow(W[:0], 1.5, SQ, 1.0), "w0"),
    (lambda: simulate_mirror_flow(X02[:, :0], 1.5, SQ, lambda x, p: x, 1.0), "x0"),
    (lambda: simulate_sign_flow(W[:0], SQ, 1.0), "w0"),
    (lambda: simulate_parameter_flow(W, 1.5, SQ, torch.ones(3)), "t_end"),
    (lambda: simulate_scalar_flow(X02, 1.5, LR3, torch.sinh, torch.cosh, 1.0), "w0"),
    (lambda: simulate_scalar_flow(X02, 1.5, SQ, lambda w: w[:, :1], torch.cosh, 1.0), "g"),
    (lambda: simulate_mirror_flow(X02, 1.5, LR3, lambda x, p: x, 1.0), "x0"),
    (lambda: simulate_mirror_flow(X02, 1.5, SQ, lambda x, p: x.sum(1), 1.0), "hess"),
    (lambda: simulate_mirror_flow(X02, 1.5, SQ, lambda x, p: x, 1.0, extras=[SUM]), "extras"),
    (lambda: simulate_parameter_flow(W, 1.5, SQ, 1.0, extras=[SUM]), "extras"),
    (lambda: simulate_two_branch_flow(W, W, 1.5, LR3, 1.0), "u0"),
    (lambda: simulate_sign_flow(W, LR3, 1.0), "w0"),
    (lambda: simulate_sign_flow(W, SQ, 1.0, t_eval=torch.full((2, 2, 2), 0.5)), "t_eval"),
    (lambda: integrate(None, 0.0, torch.ones(2, 3, dtype=torch.float64), torch.ones(3)), "t_end"),
    (lambda: simulate_parameter_flow(W, 1.5, SeparableQuadratic(torch.ones(3, 1)), 1.0), "y"),
    (lambda: LinearRegression(torch.ones(3), torch.ones(3)), "X"),
    (lambda: LinearRegression(torch.ones(3, 2), torch.ones(4)), "y"),
    (lambda: ExponentialLoss(torch.ones(3, 2), torch.ones(2)), "labels"),
    (lambda: optim.apply_updates([torch.ones(3)], [torch.ones(1)]), r"updates\[0\]"),
    (lambda: optim.add_decayed_weights(0.1).update([torch.ones(3)], None, [torch.ones(2)]), r"params\[0\]"),
    (lambda: bias.bregman_point(bias.Balanced(2, 2.0, np.full(3, 0.1)), np.ones((2, 3)), np.ones(3)), "y"),
]


@pytest.mark.parametrize("call, name", SHAPES, ids=[f"shape{i}-{n}" for i, (_, n) in enumerate(SHAPES)])
def test_bad_shape_names_the_argument_and_the_shape(call, name):
    with pytest.raises(ValueError, match=rf"^{name} must (have shape|be a function .* of shape)"):
        call()


CLI = [
    ("verify.all", "--only", "XYZ-9"),
    ("verify.all", "--device", "tpu"),
    ("verify.all", "--precision", "slow"),
    ("theory", "escape-time", "--L", "3", "--q", "2.5", "--alpha", "0.1"),
    ("theory", "potential", "--L", "0", "--q", "1.5"),
    ("theory", "nonsense"),
    ("verify.bench", "--device", "tpu"),
    ("verify.precision", "--points", "0"),
    ("verify.experiments", "--q", "2.5"),
    ("verify.experiments", "--seeds", "0"),
    ("docs.build", "--only", "XYZ"),
    ("verify.bench", "--budget", "-1"),
    ("verify.bench", "--only", "nonsense"),
    ("verify.experiments", "--wall", "0"),
    ("docs.build", "--results", "/no/such/results.json"),
    ("verify.all", "--json", "/"),
    ("verify.precision", "--seed", "-1"),
    ("verify.paper", "/proc/no/such/folder", "--quick", "--only", "escape"),
    ("verify.paper", "--workers", "0"),
    ("verify.all", "--only", "BAL-1", "--seed", str(2**64)),
    ("docs.build", "--tex-only", "--only", "MIR", "--seed", "-1"),
]


@pytest.mark.parametrize("args", CLI, ids=[" ".join(a) for a in CLI])
def test_cli_refuses_bad_input_in_one_line(args):
    p = run_guarded([sys.executable, "-m", *args])
    assert p.returncode == 2, p.stdout + p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr

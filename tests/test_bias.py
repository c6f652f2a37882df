"""Implicit bias (IB-1..3): derivations, inverse mirror maps, KKT and IB-2 solves, LP margins,
the exponential loss and the two-branch flow (Hypothesis where the claim is a property)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from numerics import bias as NB
from numerics._generated import numpy_kernels as K
from numerics._generated import torch_kernels as TK
from numerics.losses import ExponentialLoss, LinearRegression, SeparableQuadratic
from numerics.simulate import simulate_mirror_flow, simulate_parameter_flow, simulate_two_branch_flow
from theory import bias as TB

qs = st.floats(1.0, 2.0)
seeds = st.integers(0, 2**31 - 1)


# --- theory ------------------------------------------------------------------------------

@pytest.mark.parametrize("build", [TB.bregman_kkt, TB.balanced_dual_map, TB.hyperbolic_dual_map,
                                   TB.two_branch_dual_map, TB.one_sample_bias, TB.margin_geometry])
def test_derivations_record_only_real_steps(build):
    out = build()
    der = out[0] if isinstance(out, tuple) else out
    assert der.steps and der.theorem.startswith("IB-")
    assert all(st_.expr not in (sp.true, sp.false) for st_ in der.steps), str(der)


def test_margin_exponent_is_p_over_L():
    assert TB.margin_exponent(2, 2) == 1.0 == TB.margin_exponent(3, 1.5)      # m = 1: l_1
    assert TB.margin_exponent(1, 2) == 2.0                                    # GF on x = w: l_2
    assert math.isinf(TB.margin_exponent(4, 1))                               # sign descent: l_inf
    for L, q in ((2, 1.25), (5, 1.75)):
        assert NB.margin_exponent(L, q) == pytest.approx(TB.margin_exponent(L, q), rel=1e-15)
        assert TB.margin_exponent(L, q) == pytest.approx(q / (q - 1) / L, rel=1e-15)


@pytest.mark.parametrize("args, name", [((0, 2), "L"), ((2, 2.5), "q"), ((2, 0.5), "q")])
def test_margin_exponent_rejects_bad_input(args, name):
    for fn in (TB.margin_exponent, NB.margin_exponent):
        with pytest.raises(ValueError, match=name):
            fn(*args)


def test_reciprocal_exponents_are_parenthesized_in_kernels():
    """``a**(1/b)`` must not print as ``a**1/b`` (the printer's ``1/...`` form)."""
    from theory.printer import KernelPrinter

    a, b = sp.symbols("a b", positive=True)
    code = KernelPrinter("numpy", {a: "a", b: "b"}).doprint_expr(a ** (1 / (b + 1)) + (1 / b) ** a)
    assert eval(code, {"a": 2.0, "b": 3.0}) == pytest.approx(2.0**0.25 + (1 / 3) ** 2, rel=1e-15)


# --- inverse mirror maps -------------------------------------------------------------------

@given(st.integers(1, 8), qs, st.floats(-5, 2).map(lambda e: 10.0**e))
def test_balanced_dual_map_inverts_the_potential(L, q, x):
    """The generated (R')^-1 undoes the generated R' (two independent kernels)."""
    theta = K.mir1_grad(np.float64(x), np.float64(L), np.float64(q))
    back = K.ib1_dual_mir1(theta, np.float64(L), np.float64(q))
    # conditioning: d log x / d theta = 1/(x R''(x)); theta carries a rounding of |theta| eps
    slack = 64 * np.finfo(float).eps * (1 + abs(theta) / (x * K.mir1_hess(x, L, q)))
    assert abs(back - x) <= slack * x


@settings(max_examples=15)
@given(st.integers(1, 4), qs, st.floats(0.2, 1.5), st.floats(-0.9, 0.9))
def test_two_branch_dual_map_matches_the_implicit_potential(L, q, alpha, u):
    """x = psi(G(a) + d) - psi(G(a) - d) is inverted by the generated implicit MIR-1b R'."""
    geo = NB.TwoBranch(L, q, alpha, 1)
    # stay where both branches are positive (the implicit potential ends where one reaches 0)
    Ga = float(K.mir1_grad(np.float64(alpha**L), np.float64(L), np.float64(q)))
    lim = min(Ga - geo.branch.lo, geo.branch.hi - Ga, 2.0)
    delta = np.array([u * lim])
    x = geo.primal(delta)
    back = TK.twobranch_grad(torch.tensor(x, dtype=torch.float64), L, q,
                             torch.tensor(alpha, dtype=torch.float64)).numpy()
    assert abs(back[0] - delta[0]) <= 1e-11 * max(1.0, abs(delta[0]))


def test_balanced_map_clamps_at_the_saddle_and_keeps_the_orthant():
    geo = NB.Balanced(2, 1.5, np.array([0.3, -0.3]))
    x = geo.primal(np.array([-100.0, 100.0]))          # duals pushed far past R'(0) = 0
    assert np.array_equal(x, [0.0, 0.0]) and np.array_equal(geo.slope(np.array([-100.0, 100.0])), [0, 0])
    barrier = NB.Balanced(3, 2.0, np.array([0.5]))     # m > 1: R' < 1/(L|beta|) = 1 on x > 0
    assert np.isinf(barrier.primal(np.array([5.0])))[0] and 0 < barrier.primal(np.array([-50.0]))[0] < 1e-5


def test_imbalanced_inverse_by_root_solve_matches_the_closed_form_limit():
    c, x0 = np.array([0.7, -0.2]), np.array([0.4, -1.1])
    delta = np.array([0.3, -0.8])
    for q in (1.5, 2.0):
        geo = NB.Imbalanced(q, c, x0)
        x = geo.primal(delta)
        assert np.allclose(K.mir2_grad(x, q, np.abs(c)) - K.mir2_grad(x0, q, np.abs(c)), delta, rtol=0, atol=1e-14)


# --- IB-1: the Bregman program ---------------------------------------------------------------

def _problem(seed, N, n):
    r = np.random.default_rng(seed)
    return r, r.standard_normal((N, n))


@given(seeds, st.integers(1, 4), st.sampled_from([2.0, 1.5, 1.25]), st.floats(0.2, 1.5))
def test_bregman_point_satisfies_kkt_and_is_optimal(seed, L, q, alpha):
    """KKT residual at rounding level, and no feasible direction lowers D_R(x, x0)."""
    r, X = _problem(seed, 3, 7)
    s = np.where(r.random(7) < 0.5, -1.0, 1.0)
    x0 = s * alpha**L
    geo = NB.Balanced(L, q, x0)
    y = X @ (x0 + s * np.abs(r.standard_normal(7)))
    sol = NB.bregman_point(geo, X, y)
    assert sol.feasibility <= 1e-14 and sol.stationarity <= 1e-12, sol
    assert L == 1 or np.all(sol.x * s >= 0)                  # L >= 2: the orthant of x0

    def D(x):
        return float(np.sum(K.mir1_value(x, L, q) - K.mir1_value(x0, L, q)
                            - K.mir1_grad(x0, L, q) * (x - x0)))
    null = np.linalg.svd(X)[2][3:]
    for v in null:
        eps = 1e-3 * np.abs(sol.x).max()
        for e in (eps, -eps):
            xv = sol.x + e * v
            if np.all(xv * s > 0):
                assert D(xv) >= D(sol.x) - 1e-12 * abs(D(sol.x))


def test_euclidean_bregman_point_is_the_least_squares_correction():
    r, X = _problem(3, 4, 9)
    x0, y = r.standard_normal(9), r.standard_normal(4)
    sol = NB.bregman_point(NB.Balanced(1, 2.0, x0), X, y)
    ls = x0 + X.T @ np.linalg.solve(X @ X.T, y - X @ x0)
    assert np.allclose(sol.x, ls, rtol=0, atol=1e-13)


def test_bregman_point_matches_a_gradient_flow_run():
    """IB-1 end to end on the hyperbolic-entropy (two-branch, L = 2) geometry."""
    r, X = _problem(5, 2, 5)
    y = X @ r.standard_normal(5)
    sol = NB.bregman_point(NB.TwoBranch(2, 2.0, 0.5, 5), X, y)
    w0 = torch.full((1, 5, 2), 0.5, dtype=torch.float64)
    res = simulate_two_branch_flow(w0, w0, 2.0, LinearRegression(X, y), 30.0, rtol=1e-12, atol=1e-14)
    assert res.ok() and np.abs(res.x[0].numpy() - sol.x).max() <= 1e-8 * np.abs(sol.x).max()


def test_bregman_point_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"X must have shape \(N, 3\)"):
        NB.bregman_point(NB.Balanced(2, 2.0, np.ones(3)), np.ones((2, 4)), np.ones(2))
    with pytest.raises(ValueError, match="x0"):
        NB.Balanced(2, 2.0, np.array([0.0, 1.0]))


# --- IB-2: one sample ----------------------------------------------------------------------

@given(seeds, st.integers(1, 4), st.floats(1.05, 2.0), st.floats(0.05, 4), st.floats(0.2, 1.0))
def test_one_sample_root_moves_every_dual_along_phi_q(seed, L, q, scale, alpha):
    r = np.random.default_rng(seed)
    z = r.standard_normal(6)
    geo = NB.Balanced(L, q, np.full(6, alpha**L))
    y = scale * (z @ np.abs(r.standard_normal(6)))       # reachable in the positive orthant
    x, mu = NB.one_sample_point(geo, z, y)
    assert abs(z @ x - y) <= 1e-12 * (np.abs(z) @ np.abs(x) + abs(y))
    d = K.phi(z, q)
    free = x != 0
    dual = K.mir1_grad(x, L, q) - geo.theta0
    assert np.allclose(dual[free], mu * d[free], rtol=1e-10, atol=1e-12)
    assert np.all(geo.theta0[~free] + mu * d[~free] <= 0)          # clamped: the dual passed R'(0)


def test_one_sample_limit_of_a_simulated_flow():
    z, y = np.array([0.8, -1.3, 0.4, 0.2]), 2.5
    w0 = torch.full((1, 4, 2), 0.3, dtype=torch.float64)
    res = simulate_parameter_flow(w0, 1.5, LinearRegression(z[None], [y]), 40.0, rtol=1e-12, atol=1e-14)
    x, _ = NB.one_sample_point(NB.Balanced(2, 1.5, np.full(4, 0.09)), z, y)
    naive = NB.bregman_point(NB.Balanced(2, 1.5, np.full(4, 0.09)), z[None], np.array([y])).x
    sim = res.x[0].numpy()
    assert res.ok() and np.abs(sim - x).max() <= 1e-9 * np.abs(x).max()
    assert np.abs(sim - naive).max() > 1e-3 * np.abs(x).max()         # the Bregman point is not it


# --- IB-3: margins -------------------------------------------------------------------------

def _separable(seed, N, n):
    r = np.random.default_rng(seed)
    Z = r.standard_normal((N, n))
    teacher = r.standard_normal(n) * (r.random(n) < 0.4)
    teacher[0] = 1.0
    labels = np.sign(Z @ teacher)
    labels[labels == 0] = 1.0
    return Z, labels, labels[:, None] * Z


@given(seeds, st.sampled_from([1.0, math.inf]))
def test_lp_margin_is_attained_and_not_beaten(seed, r):
    Z, labels, A = _separable(seed, 10, 6)
    opt, x = NB.max_margin(A, r)
    assert opt > 0 and NB.quasi_norm(x, r) <= 1 + 1e-9
    assert NB.normalized_margin(x, A, r) == pytest.approx(opt, rel=1e-7)
    rng = np.random.default_rng(seed + 1)
    for cand in rng.standard_normal((200, 6)):
        assert NB.normalized_margin(cand, A, r) <= opt * (1 + 1e-9)
    assert NB.normalized_margin(3.7 * x, A, r) == pytest.approx(opt, rel=1e-7)     # scale invariant


def test_max_margin_is_an_lp_only_for_l1_and_linf():
    with pytest.raises(ValueError, match="r = 1 or r = inf"):
        NB.max_margin(np.eye(2), 2.0)


def test_quasi_norm_below_one_and_at_infinity():
    x = np.array([[3.0, -4.0], [1.0, 1.0]])
    assert np.allclose(NB.quasi_norm(x, 2.0), [5.0, math.sqrt(2)])
    assert np.allclose(NB.quasi_norm(x, math.inf), [4.0, 1.0])
    assert NB.quasi_norm(np.array([1.0, 1.0]), 0.5) == pytest.approx(4.0)


def test_exponential_loss_gradient_and_input_checks():
    Z, labels, _ = _separable(0, 5, 3)
    loss = ExponentialLoss(Z, labels)
    x = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    p = loss.params(2, "cpu")
    auto = torch.autograd.grad(loss.value(x, p).sum(), x)[0]
    assert torch.allclose(loss.grad(x.detach(), p), auto, rtol=1e-13, atol=0)
    assert not loss.has_minimizer and LinearRegression(Z, labels).has_minimizer
    with pytest.raises(ValueError, match="labels"):
        ExponentialLoss(Z, labels * 2)
    with pytest.raises(ValueError, match="labels"):
        ExponentialLoss(Z, labels[:-1])


def test_exponential_loss_flow_is_not_frozen_at_small_gradients():
    """No stationary point: q < 2 flows keep growing x (the at-rest freeze must not fire)."""
    Z, labels, A = _separable(1, 8, 4)
    w0 = torch.full((1, 4, 3), 0.1, dtype=torch.float64)          # q = 1.5, L = 3: m = 1, no saddle
    res = simulate_two_branch_flow(w0, w0, 1.5, ExponentialLoss(Z, labels), 1e7, rtol=1e-10, atol=1e-12,
                                   t_eval=torch.tensor([1e5, 1e7], dtype=torch.float64))
    assert res.ok() and not bool(res.solution.switching["frozen"].any())
    x = res.solution.ys[0].reshape(2, 8, 3).prod(-1)
    norms = (x[:, :4] - x[:, 4:]).abs().sum(-1)
    assert float(norms[1]) > float(norms[0])


# --- the two-branch flow ----------------------------------------------------------------------

def test_two_branch_flow_is_the_mirror_flow_of_its_potential():
    L, q, alpha = 3, 1.5, 0.6
    w0 = torch.full((2, 1, L), alpha, dtype=torch.float64)
    y = torch.tensor([[0.4], [-0.7]], dtype=torch.float64)
    tb = simulate_two_branch_flow(w0, w0, q, SeparableQuadratic(y), 0.3, rtol=1e-12, atol=1e-14)
    x0 = torch.full((2, 1), 1e-300, dtype=torch.float64) * torch.sign(y)      # x0 = 0, moving toward y
    a = torch.tensor(alpha, dtype=torch.float64)
    mir = simulate_mirror_flow(x0, q, SeparableQuadratic(y), lambda x, p: TK.twobranch_hess(x, L, q, a),
                               0.3, rtol=1e-12, atol=1e-14)
    assert tb.ok() and mir.ok()
    torch.testing.assert_close(tb.x, mir.x, rtol=1e-9, atol=1e-12)
    assert tb.w.shape == (2, 2, L)


def test_two_branch_flow_rejects_mismatched_branches():
    with pytest.raises(ValueError, match="u0 and v0"):
        simulate_two_branch_flow(torch.ones(1, 2, 2), torch.ones(1, 3, 2), 2.0, SeparableQuadratic([1.0, 1.0]), 1.0)

"""The Rodas5 stepper: tableau self-checks, order, a classic stiff problem against scipy's
Radau, L-stability, the flow Jacobians, the method rule, and coupled q < 2 flows against an
independent scipy reference."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from numerics import forward
from numerics.flows import BalancedReduction, DeepDiagonalFlow, MirrorFlow
from numerics.geometry import phi
from numerics.integrate import ODESystem, Params, integrate
from numerics.integrate.linsolve import DiagonalPlusLowRank
from numerics.integrate.rosenbrock import RODAS5
from numerics.losses import LinearRegression, SeparableQuadratic
from numerics.simulate import default_method, simulate_parameter_flow

F64 = torch.float64


class Nonlinear(ODESystem):
    """``y1' = -y1^2 + cos(t) y2``, ``y2' = -y2 + sin(t) y1`` (non-autonomous, smooth)."""

    def rhs(self, t, y, p, mode):
        return torch.stack([-y[:, 0] ** 2 + torch.cos(t) * y[:, 1], -y[:, 1] + torch.sin(t) * y[:, 0]], 1)

    def jacobian(self, t, y, p, mode):
        J = torch.zeros(len(y), 2, 2, dtype=y.dtype)
        J[:, 0, 0], J[:, 0, 1], J[:, 1, 0], J[:, 1, 1] = -2 * y[:, 0], torch.cos(t), torch.sin(t), -1
        return J


def _nonlinear_reference(T):
    return solve_ivp(lambda t, y: [-y[0] ** 2 + np.cos(t) * y[1], -y[1] + np.sin(t) * y[0]], (0, T), [1.0, 0.5],
                     method="DOP853", rtol=1e-13, atol=1e-15, dense_output=True)


def test_tableau_checks_its_order_conditions_and_l_stability():
    alpha, Gam, b, b_hat = RODAS5.standard_form()
    assert np.abs(RODAS5.order_defects(b)).max() < 1e-12
    assert abs(RODAS5.stability_at_infinity(b)) < 1e-12
    C = RODAS5.C.copy()
    C[3, 1] *= 1.001                                  # a mistyped coefficient fails at construction
    with pytest.raises(ValueError, match="order condition|row sums"):
        dataclasses.replace(RODAS5, C=C)


def test_order_of_convergence_is_five_and_dense_output_four():
    """Fixed steps, log-log slopes: solution within [4.6, 5.4]; the interpolant inside a step
    has a local error O(h^5), i.e. order >= 4 (slope >= 4.5)."""
    ref = _nonlinear_reference(2.0)
    y0 = torch.tensor([[1.0, 0.5]], dtype=F64)
    hs, errs, dense_errs = [], [], []
    for N in (10, 20, 40, 80):
        sol = integrate(Nonlinear(), 0.0, y0, 2.0, method="rodas5", adaptive=False, h0=2.0 / N, dense=True)
        tm = 1.0 - 0.7 * 2.0 / N                      # inside a step
        hs.append(2.0 / N)
        errs.append(np.abs(sol.y[0].numpy() - ref.y[:, -1]).max())
        dense_errs.append(np.abs(sol.dense(torch.tensor([[tm]], dtype=F64))[0, 0].numpy() - ref.sol(tm)).max())
    slope = np.polyfit(np.log(hs), np.log(errs), 1)[0]
    dslope = np.polyfit(np.log(hs), np.log(dense_errs), 1)[0]
    assert 4.6 <= slope <= 5.4, slope
    assert dslope >= 4.5, dslope


class VanDerPol(ODESystem):
    autonomous = True

    def __init__(self, mu):
        self.mu = mu

    def rhs(self, t, y, p, mode):
        return torch.stack([y[:, 1], self.mu * (1 - y[:, 0] ** 2) * y[:, 1] - y[:, 0]], 1)

    def jacobian(self, t, y, p, mode):
        J = torch.zeros(len(y), 2, 2, dtype=y.dtype)
        J[:, 0, 1] = 1
        J[:, 1, 0] = -2 * self.mu * y[:, 0] * y[:, 1] - 1
        J[:, 1, 1] = self.mu * (1 - y[:, 0] ** 2)
        return J


def test_van_der_pol_mu_1000_matches_scipy_radau():
    """The classic stiff problem over one relaxation period, against scipy's Radau at rtol 1e-12;
    judged by scipy's scaled error ``|y - y*| / (atol + rtol |y*|)`` at the requested tolerance."""
    mu, T, rtol, atol = 1000.0, 1500.0, 1e-8, 1e-10
    ref = solve_ivp(lambda t, y: [y[1], mu * (1 - y[0] ** 2) * y[1] - y[0]], (0, T), [2.0, 0.0], method="Radau",
                    rtol=1e-12, atol=1e-14, jac=lambda t, y: [[0, 1], [-2 * mu * y[0] * y[1] - 1, mu * (1 - y[0] ** 2)]])
    sol = integrate(VanDerPol(mu), 0.0, torch.tensor([[2.0, 0.0]], dtype=F64), T, rtol=rtol, atol=atol,
                    method="rodas5", max_steps=5000)
    assert int(sol.status[0]) == 0
    scaled = np.abs(sol.y[0].numpy() - ref.y[:, -1]) / (atol + rtol * np.abs(ref.y[:, -1]))
    assert scaled.max() < 100, scaled               # global error: a few hundred steps of local errors
    assert int(sol.n_steps[0]) < 2000               # an explicit method needs ~mu * T steps


class Prothero(ODESystem):
    """``y' = -1e6 (y - cos t)``: solution ``cos t + O(1e-6)`` after a 1e-6 transient."""

    def rhs(self, t, y, p, mode):
        return -1e6 * (y - torch.cos(t)[:, None])

    def jacobian(self, t, y, p, mode):
        return torch.full((len(y), 1, 1), -1e6, dtype=y.dtype)


def test_l_stability_on_a_very_stiff_linear_problem():
    """Steps far beyond 1e-6 (the explicit stability limit) with the error at the tolerance."""
    sol = integrate(Prothero(), 0.0, torch.tensor([[0.0]], dtype=F64), 10.0, method="rodas5", rtol=1e-8, atol=1e-10)
    exact = math.cos(10.0) + 1e-6 * math.sin(10.0)     # to O(1e-12)
    assert int(sol.status[0]) == 0 and int(sol.n_steps[0]) < 500
    assert abs(float(sol.y[0, 0]) - exact) < 1e-8


def _regression(k, N, seed):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(N, k, generator=g, dtype=F64)
    truth = torch.zeros(k, dtype=F64)
    truth[:3] = torch.tensor([1.0, -0.7, 0.5], dtype=F64)
    return X, X @ truth, g


@pytest.mark.parametrize("kind, samples", [("parameter", 4), ("mirror", 4), ("mirror", 8)])
def test_flow_jacobians_match_forward_differentiation(kind, samples):
    """The assembled SymPy-kernel Jacobians equal torch's forward-mode Jacobian of the field; a
    mirror flow on fewer samples than coordinates hands it over factored (diagonal plus low rank)."""
    X, y, g = _regression(6, samples, 1)
    loss = LinearRegression(X, y)
    w0 = 0.2 + 0.3 * torch.rand(3, 6, 3, generator=g, dtype=F64)
    if kind == "parameter":
        system, state = DeepDiagonalFlow(loss, 6, 3), w0.reshape(3, -1)
    else:
        system = MirrorFlow(loss, 6, lambda x, p: x.abs() ** -1.0 / 3)
        state = w0.prod(-1)
    p = {"q": torch.tensor([1.3, 1.5, 1.8], dtype=F64), "y": y.expand(3, -1)}
    frozen = {"frozen": torch.zeros(3, 6, dtype=torch.bool)}
    J = system.jacobian(None, state, Params(p, frozen), None)
    assert isinstance(J, DiagonalPlusLowRank) == (kind == "mirror" and samples < 6)
    J = J.dense() if isinstance(J, DiagonalPlusLowRank) else J
    row = lambda d: {k: v[None] for k, v in d.items()}   # noqa: E731
    ref = torch.func.vmap(forward.jacfwd(lambda s, pp, ss: system.rhs(None, s[None], Params(row(pp), row(ss)),
                                                                          None)[0]))(state, p, frozen)
    assert torch.allclose(J, ref, rtol=1e-10, atol=1e-12)


def test_default_method_rule():
    X, y, _ = _regression(6, 4, 0)
    coupled, separable = DeepDiagonalFlow(LinearRegression(X, y), 6, 2), DeepDiagonalFlow(SeparableQuadratic(1.0), 1, 2)
    q = lambda *v: torch.tensor(v, dtype=F64)   # noqa: E731
    assert default_method(coupled, q(1.75)) == "rodas5"
    assert default_method(coupled, q(1.8, 1.9)) == "rodas5"
    assert default_method(coupled, q(1.5)) == "dop853"
    assert default_method(coupled, q(1.75, 1.25)) == "dop853"
    assert default_method(coupled, q(2.0)) == "dop853"
    assert default_method(coupled, q(1.0)) == "dop853"
    assert default_method(separable, q(1.5)) == "dop853"
    assert default_method(DeepDiagonalFlow(LinearRegression(X, y), 6, 2, extras=(lambda x, g, p: x,)), q(1.5)) == "dop853"
    reduced = BalancedReduction(LinearRegression(X, y), 6, 2)      # mirror coordinates: stiff from q = 1.5
    assert default_method(reduced, q(1.5)) == default_method(reduced, q(1.6, 1.9)) == "rodas5"
    assert default_method(reduced, q(1.25)) == default_method(reduced, q(1.5, 1.25)) == "dop853"
    assert default_method(reduced, q(1.0)) == default_method(reduced, q(2.0)) == "dop853"
    assert default_method(BalancedReduction(SeparableQuadratic(1.0), 1, 2), q(1.5)) == "dop853"


def _scipy_parameter_flow(X, y, w0, q, T):
    """The parameter flow ``dw_ik/dt = -phi_q(d_i f prod_{j != k} w_ij)`` by scipy's LSODA at rtol 1e-12."""
    Xn, yn, N = X.numpy(), y.numpy(), X.shape[0]
    n, L = w0.shape

    def f(t, wf):
        w = wf.reshape(n, L)
        g = (Xn @ w.prod(-1) - yn) @ Xn / N
        r = np.stack([np.prod(np.delete(w, k, axis=1), axis=1) for k in range(L)], 1)
        z = g[:, None] * r
        return (-np.sign(z) * np.abs(z) ** (q - 1)).ravel()
    sol = solve_ivp(f, (0, T), w0.numpy().ravel(), method="LSODA", rtol=1e-12, atol=1e-14)
    assert sol.success
    return sol.y[:, -1].reshape(n, L).prod(-1)


def _hovering_instance():
    """An 8-coordinate regression (5 samples, L = 3, unbalanced start: the parameter flow in 24
    factors) on which gradient components hover near 0 from t ~ 1."""
    X, y, g = _regression(8, 5, 3)
    return X, y, 0.2 + 0.2 * torch.rand(1, 8, 3, generator=g, dtype=F64)


@pytest.mark.parametrize("q, T", [(1.25, 1.0), (1.5, 1.5), (1.75, 2.0)])
def test_coupled_flows_agree_with_scipy_lsoda(q, T):
    """Default method (Rodas5) at rtol 1e-11: final x within 1e-8 relative of scipy's LSODA at
    rtol 1e-12 (the global error of a non-Lipschitz flow exceeds the local tolerance: at the
    default rtol 1e-10, 2.1e-8 at q = 1.25). Each end time includes the start of the hovering
    phase; longer runs are limited by the reference: LSODA slows down there (minutes at q = 1.5,
    t = 3), and at q = 1.25 so does Rodas5 (README, known limits)."""
    X, y, w0 = _hovering_instance()
    res = simulate_parameter_flow(w0, q, LinearRegression(X, y), T, max_steps=3000, rtol=1e-11, atol=1e-13)
    assert res.ok()
    ref = _scipy_parameter_flow(X, y, w0[0], q, T)
    err = np.abs(res.x[0].numpy() - ref).max() / np.abs(ref).max()
    assert err <= 1e-8, err


def test_hovering_gradient_components_do_not_collapse_the_steps():
    """Issue 12, part 2: at q = 1.5 gradient components hover near 0 from t ~ 1.2 on this
    instance. Located as switching surfaces, every step's error crossed them and every step was
    cut there, and the explicit integrator needed 1129 steps and 189 rejections (t = 3 in 117 s on
    a loaded machine). The field is continuous there, so they are not switches any more: DOP853
    takes 464 + 162, Rodas5 358 + 56, within the budget of 900 that the old rule exceeded."""
    X, y, w0 = _hovering_instance()
    for method in ("dop853", "rodas5"):
        res = simulate_parameter_flow(w0, 1.5, LinearRegression(X, y), 3.0, max_steps=900, method=method)
        assert res.ok(), (method, res.solution.failures(), float(res.t[0]))


class _Trailing(ODESystem):
    """``x' = -phi_q(x - eps t)``: ``x`` trails its target at ``g = x - eps t -> g* =
    -eps^(1/(q-1))`` (``x = eps t + g*`` is an exact solution, attracting), a component
    hovering near 0 at the relaxation rate ``(q-1)|g*|^(q-2)``."""

    def __init__(self, q, eps):
        self.q, self.eps = q, eps

    def rhs(self, t, y, p, mode):
        return -phi(y - self.eps * t[:, None], self.q)

    def jacobian(self, t, y, p, mode):
        g = (y - self.eps * t[:, None]).abs().clamp_min(1e-300)
        return (-(self.q - 1) * g ** (self.q - 2))[:, :, None]


@pytest.mark.parametrize("q", [1.75, pytest.param(1.25, marks=pytest.mark.xfail(
    strict=True, reason="README Known limits: Rodas5 linearizes once per step; from |g| >> |g*| that "
                        "overshoots to about -(2-q)/(q-1) g, which grows for q < 1.5 (stops at t = 0.8)"))])
def test_rodas5_follows_a_component_hovering_near_zero(q):
    """From ``x = 0.5`` the trailing component of :class:`_Trailing` falls onto its hovering
    value ``g* = -eps^(1/(q-1))``; at ``t = 20`` the transient has decayed and ``x = eps t + g*``.
    Measured at ``q = 1.75``: 257 steps, relative error 9e-11 (``rtol = 1e-10``; 1e-9 allows the
    global accumulation). scipy's Radau, which iterates its stage equations, needs 341-562 steps
    at ``q = 1.25`` and 1.5 (rtol 1e-10)."""
    eps, T = 1e-3, 20.0
    sol = integrate(_Trailing(q, eps), 0.0, torch.full((1, 1), 0.5, dtype=F64), T, rtol=1e-10, atol=1e-13,
                    method="rodas5", max_steps=2000)
    assert bool(sol.success.all()), (float(sol.t[0]), sol.failures())
    exact = eps * T - eps ** (1 / (q - 1))
    assert abs(float(sol.y[0, 0]) - exact) <= 1e-9 * exact


class _DenseHessianRegression(LinearRegression):
    """The same loss without its factored Hessian: the Jacobian goes to the dense LU."""

    def hess_factor(self, x, p):
        return None


@pytest.mark.parametrize("loss_type", [LinearRegression, _DenseHessianRegression])
def test_reduced_flow_with_factored_jacobian_agrees_with_scipy(loss_type):
    """A balanced start at q = 1.5 is integrated by Rodas5 in its mirror coordinates; with 5 samples
    on 8 coordinates its Jacobian is diagonal plus rank 5 and solved by Woodbury. Either solve, the
    final x is within 1e-8 relative of scipy's LSODA on the factors at rtol 1e-12 (the bar of
    :func:`test_coupled_flows_agree_with_scipy_lsoda`)."""
    X, y, _ = _regression(8, 5, 3)
    w0 = torch.full((1, 8, 3), 0.3, dtype=F64)
    loss = loss_type(X, y)
    res = simulate_parameter_flow(w0, 1.5, loss, 1.5, max_steps=3000, rtol=1e-11, atol=1e-13)
    assert res.ok() and isinstance(res.system, BalancedReduction)
    assert default_method(res.system, torch.tensor(1.5, dtype=F64)) == "rodas5"
    ref = _scipy_parameter_flow(X, y, w0[0], 1.5, 1.5)
    err = np.abs(res.x[0].numpy() - ref).max() / np.abs(ref).max()
    assert err <= 1e-8, err

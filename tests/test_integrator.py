"""The batched DOP853: order, accuracy against known solutions, events, budgets."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from numerics.integrate import mpref
from numerics.integrate import EVENT, NONFINITE, STEP_BUDGET, SUCCESS, WALL_BUDGET, Event, ODESystem, integrate


class Oscillator(ODESystem):
    """y'' = -omega^2 y with per-trajectory omega: exact solution cos/sin."""

    def rhs(self, t, y, p, mode):
        w = p["omega"][:, None]
        return torch.stack([y[:, 1], -(w[:, 0] ** 2) * y[:, 0]], 1)


def _osc(B=3):
    omega = torch.linspace(0.5, 2.0, B, dtype=torch.float64)
    y0 = torch.stack([torch.ones(B, dtype=torch.float64), torch.zeros(B, dtype=torch.float64)], 1)
    return omega, y0


def test_order_of_convergence_is_eight():
    """Error vs fixed step on a log-log fit: slope within [7.5, 8.5] (DOP853 is 8th order)."""
    omega, y0 = _osc(1)
    errs, hs = [], [2.0, 1.0, 0.5, 0.25]     # errors from 1e-7 down to 1e-14, above round-off
    for h in hs:
        sol = integrate(Oscillator(), 0.0, y0, 4.0, {"omega": omega}, h0=h, adaptive=False)
        errs.append(abs(float(sol.y[0, 0]) - math.cos(float(omega[0]) * 4.0)))
    slope = np.polyfit(np.log(hs), np.log(errs), 1)[0]
    assert 7.5 <= slope <= 8.5, slope


@pytest.mark.parametrize("rtol", [1e-6, 1e-9, 1e-12])
def test_adaptive_error_follows_the_requested_tolerance(rtol):
    omega, y0 = _osc(5)
    sol = integrate(Oscillator(), 0.0, y0, 10.0, {"omega": omega}, rtol=rtol, atol=rtol * 1e-2)
    exact = torch.cos(omega * 10.0)
    err = float((sol.y[:, 0] - exact).abs().max())
    assert (sol.status == SUCCESS).all()
    assert err <= 100 * rtol


def test_dense_output_and_t_eval_agree_with_exact():
    omega, y0 = _osc(4)
    te = torch.linspace(0, 6, 25, dtype=torch.float64)
    sol = integrate(Oscillator(), 0.0, y0, 6.0, {"omega": omega}, rtol=1e-11, atol=1e-13, t_eval=te, dense=True)
    exact = torch.cos(omega[:, None] * te[None, :])
    assert float((sol.ys[..., 0] - exact).abs().max()) < 1e-9
    mid = torch.tensor([1.234, 2.5, 3.7, 5.9], dtype=torch.float64)
    assert float((sol.dense(mid)[:, 0] - torch.cos(omega * mid)).abs().max()) < 1e-9
    assert sol.dense.nbytes() > 0


def test_terminal_event_is_located_to_machine_precision():
    omega, y0 = _osc(3)
    ev = Event(lambda t, y, p: y[:, 0], terminal=True, direction=-1)
    sol = integrate(Oscillator(), 0.0, y0, 10.0, {"omega": omega}, rtol=1e-12, atol=1e-14, events=[ev])
    assert (sol.status == EVENT).all()
    np.testing.assert_allclose(sol.t_events[0][:, 0].numpy(), (math.pi / 2 / omega).numpy(), rtol=1e-12)


def test_per_trajectory_horizons():
    omega, y0 = _osc(3)
    t_end = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    sol = integrate(Oscillator(), 0.0, y0, t_end, {"omega": omega}, rtol=1e-12)
    np.testing.assert_allclose(sol.t.numpy(), t_end.numpy())
    np.testing.assert_allclose(sol.y[:, 0].numpy(), torch.cos(omega * t_end).numpy(), rtol=1e-10)


def test_step_budget_reports_instead_of_hanging():
    omega, y0 = _osc(2)
    sol = integrate(Oscillator(), 0.0, y0, 1e6, {"omega": omega}, rtol=1e-12, max_steps=50)
    assert (sol.status == STEP_BUDGET).all()
    assert sol.failures() == {"step budget exhausted": 2}


def test_wall_budget_reports_instead_of_hanging():
    omega, y0 = _osc(2)
    sol = integrate(Oscillator(), 0.0, y0, 1e9, {"omega": omega}, rtol=1e-13, max_wall=0.2)
    assert (sol.status == WALL_BUDGET).all()


class Blowup(ODESystem):
    def rhs(self, t, y, p, mode):
        return y * y


def test_finite_time_blowup_is_a_reported_failure():
    sol = integrate(Blowup(), 0.0, torch.ones(1, 1, dtype=torch.float64), 2.0)
    assert int(sol.status[0]) < 0
    assert abs(float(sol.t[0]) - 1.0) < 1e-9     # stopped at the blow-up time t = 1


def test_invalid_arguments():
    omega, y0 = _osc(1)
    with pytest.raises(ValueError, match="rtol"):
        integrate(Oscillator(), 0.0, y0, 1.0, {"omega": omega}, rtol=0)
    with pytest.raises(ValueError, match="y0"):
        integrate(Oscillator(), 0.0, y0[0], 1.0, {"omega": omega})
    with pytest.raises(ValueError, match="t_end"):
        integrate(Oscillator(), 1.0, y0, 0.0, {"omega": omega})


def test_mpmath_reference_agrees_with_dop853():
    """q = 1.5, L = 3 reference problem before arrival, against Taylor series at 30 digits."""
    from numerics.flows import simulate_parameter_flow
    from numerics.losses import SeparableQuadratic

    w0 = [0.3, 0.35, 0.4]
    ref = mpref.solve(mpref.deep_diagonal_field(1.5, 1.0), 0, w0, [1.0])[0]
    res = simulate_parameter_flow(torch.tensor([[w0]], dtype=torch.float64), 1.5, SeparableQuadratic(1.0), 1.0,
                                  rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(res.w[0, 0].numpy(), [float(v) for v in ref], rtol=1e-11)


class PolynomialPath(ODESystem):
    """``x' = L x^(1 - 1/L)`` from ``a^L``: the solution ``(a + t)^L`` is a polynomial, on which the
    embedded error estimate of DOP853 is blind (it accepts steps far too long)."""

    autonomous = True
    L = 6

    def rhs(self, t, y, p, mode):
        return self.L * y.abs() ** (1 - 1 / self.L)


def test_max_step_caps_steps_where_the_error_estimate_is_blind():
    a, T = 0.5, 0.48
    y0 = torch.full((2, 1), a ** 6, dtype=torch.float64)
    free = integrate(PolynomialPath(), 0.0, y0, T, rtol=1e-12, atol=1e-14)
    capped = integrate(PolynomialPath(), 0.0, y0, T, rtol=1e-12, atol=1e-14,
                       max_step=torch.tensor([T / 64, T / 32], dtype=torch.float64))
    exact = (a + T) ** 6
    assert float((free.y / exact - 1).abs().max()) > 1e-10          # the blind estimate, uncapped
    assert float((capped.y / exact - 1).abs().max()) < 1e-13
    assert capped.n_steps.tolist()[0] >= 64 and capped.n_steps.tolist()[1] >= 32


class SqrtArrival(ODESystem):
    """``u' = -sign(u) sqrt|u|`` (the ``q = 1.5`` field): ``u = (sqrt(u0) - t/2)^2`` reaches 0 at
    ``t = 2 sqrt(u0)`` tangentially and stops there."""

    autonomous = True

    def rhs(self, t, y, p, mode):
        sign = torch.sign(y) if mode is None else mode
        return -sign * y.abs().sqrt() * (~p["stop"])[:, None]

    def switches(self, t, y, p):
        return y * (~p["stop"])[:, None]

    def on_switch(self, t, y, p, hit):
        return {"stop": p["stop"] | hit[:, 0]}, torch.where(hit, torch.zeros_like(y), y)


def test_predictive_control_does_not_alternate_on_the_approach_to_an_arrival():
    """Near the arrival the error of a fixed step grows ~40x per step; the plain rule then
    rejects every other step (about 30 rejections per trajectory here), Gustafsson's
    predictive cap follows the trend (at most 6)."""
    B = 20
    u0 = torch.linspace(0.5, 2.0, B, dtype=torch.float64)[:, None]
    sol = integrate(SqrtArrival(), 0.0, u0, 3.0, {"stop": torch.zeros(B, dtype=torch.bool)},
                    rtol=1e-10, atol=1e-12)
    assert (sol.status == SUCCESS).all() and bool(sol.params["stop"].all())
    assert bool((sol.n_rejected <= 0.2 * sol.n_steps).all()), sol.n_rejected.tolist()

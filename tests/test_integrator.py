"""The batched DOP853: order, accuracy against known solutions, events, budgets."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from numerics.integrate import mpref
from numerics.integrate.events import locate
from numerics.integrate import (EVENT, NONFINITE, STEP_BUDGET, SUCCESS, WALL_BUDGET, Controller, Event, ODESystem,
                                integrate)


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
    """A budget of 0 s is spent before the first step ends, on any machine (a positive budget
    would race the step budget and make the verdict depend on the machine's speed)."""
    omega, y0 = _osc(2)
    sol = integrate(Oscillator(), 0.0, y0, 1e9, {"omega": omega}, rtol=1e-13, max_wall=0.0)
    assert (sol.status == WALL_BUDGET).all() and int(sol.n_steps.max()) <= 1


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
    with pytest.raises(ValueError, match="t_end"):       # both directions in one call
        integrate(Oscillator(), 1.0, y0.expand(2, 2), torch.tensor([0.0, 2.0]), {"omega": omega.expand(2)})


def test_mpmath_reference_agrees_with_dop853():
    """q = 1.5, L = 3 reference problem before arrival, against Taylor series at 30 digits."""
    from numerics.simulate import simulate_parameter_flow
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
        return -sign * y.abs().sqrt() * (~p.switching["stop"])[:, None]

    def switches(self, t, y, p):
        return y * (~p.switching["stop"])[:, None]

    def on_switch(self, t, y, p, hit):
        return {"stop": p.switching["stop"] | hit[:, 0]}, torch.where(hit, torch.zeros_like(y), y)


def test_predictive_control_does_not_alternate_on_the_approach_to_an_arrival():
    """Near the arrival the error of a fixed step grows ~40x per step; the plain rule then
    rejects every other step (about 30 rejections per trajectory here), Gustafsson's
    predictive cap follows the trend (at most 6)."""
    B = 20
    u0 = torch.linspace(0.5, 2.0, B, dtype=torch.float64)[:, None]
    sol = integrate(SqrtArrival(), 0.0, u0, 3.0, switching={"stop": torch.zeros(B, dtype=torch.bool)},
                    rtol=1e-10, atol=1e-12)
    assert (sol.status == SUCCESS).all() and bool(sol.switching["stop"].all())
    assert bool((sol.n_rejected <= 0.2 * sol.n_steps).all()), sol.n_rejected.tolist()


def test_gustafsson_cap_is_a_controller_choice():
    """The same arrival without the predictive cap: the plain rule alternates (many rejections)."""
    B = 20
    u0 = torch.linspace(0.5, 2.0, B, dtype=torch.float64)[:, None]
    kw = dict(switching={"stop": torch.zeros(B, dtype=torch.bool)}, rtol=1e-10, atol=1e-12)
    capped = integrate(SqrtArrival(), 0.0, u0, 3.0, controller=Controller(gustafsson=True), **kw)
    plain = integrate(SqrtArrival(), 0.0, u0, 3.0, controller=Controller(gustafsson=False), **kw)
    assert (plain.status == SUCCESS).all() and (capped.status == SUCCESS).all()
    assert int(plain.n_rejected.sum()) > 2 * int(capped.n_rejected.sum()), (plain.n_rejected, capped.n_rejected)


# -- defects found by the peer suite (issue 12, part 5) ------------------------------------------------

class Decay(ODESystem):
    """``y' = -y / tau``: ``y = y0 exp(-(t - t0) / tau)``."""

    def __init__(self, tau=1.0):
        self.tau = tau

    def rhs(self, t, y, p, mode):
        return -y / self.tau


def test_dense_output_is_exact_on_steps_cut_by_an_event():
    """A non-terminal event cuts a step; the dense output there is the step's own interpolant
    (it was evaluated with the cut length, an error of ~0.1)."""
    y0 = torch.ones(3, 1, dtype=torch.float64)
    ev = Event(lambda t, y, p: y[:, 0] - 0.3, terminal=False)
    sol = integrate(Decay(), 0.0, y0, 4.0, rtol=1e-10, atol=1e-12, events=[ev], dense=True)
    # located to the accuracy of the solution: |dt| ~ (atol + rtol y) / |y'| at y = 0.3
    assert abs(float(sol.t_events[0][0, 0]) - math.log(1 / 0.3)) < 10 * (1e-12 + 1e-10 * 0.3) / 0.3
    tt = torch.linspace(0, 4, 401, dtype=torch.float64).expand(3, -1)
    err = (sol.dense(tt)[..., 0] - torch.exp(-tt)).abs() / (1e-12 + 1e-10 * torch.exp(-tt))
    assert float(err.max()) < 5, float(err.max())


def test_dense_output_is_exact_at_an_arrival():
    """Steps cut at a switch (the arrival of ``u' = -sqrt|u|``): dense output against
    ``(sqrt(u0) - t/2)^2`` before the arrival and 0 after."""
    B = 4
    u0 = torch.linspace(0.5, 2.0, B, dtype=torch.float64)[:, None]
    sol = integrate(SqrtArrival(), 0.0, u0, 3.0, switching={"stop": torch.zeros(B, dtype=torch.bool)}, rtol=1e-10,
                    atol=1e-12, dense=True)
    tt = torch.linspace(0, 3, 301, dtype=torch.float64).expand(B, -1)
    exact = (u0.sqrt() - tt / 2).clamp_min(0) ** 2
    err = (sol.dense(tt)[..., 0] - exact).abs() / (1e-12 + 1e-10 * exact)
    assert float(err.max()) < 5, float(err.max())


class Bang(ODESystem):
    """``y' = -sign(y)`` stopping at 0 (a switch): ``y = y0 - t`` until ``t = y0``, then 0."""

    autonomous = True

    def rhs(self, t, y, p, mode):
        sign = torch.sign(y) if mode is None else mode
        return -sign * (~p.switching["stop"])[:, None]

    def switches(self, t, y, p):
        return y * (~p.switching["stop"])[:, None]

    def on_switch(self, t, y, p, hit):
        return {"stop": p.switching["stop"] | hit[:, 0]}, torch.where(hit, torch.zeros_like(y), y)


def test_dense_output_is_exact_on_steps_cut_by_a_switch():
    y0 = torch.tensor([[0.7], [1.3]], dtype=torch.float64)
    sol = integrate(Bang(), 0.0, y0, 2.0, switching={"stop": torch.zeros(2, dtype=torch.bool)}, rtol=1e-8,
                    atol=1e-10, dense=True)
    assert (sol.status == SUCCESS).all() and bool(sol.switching["stop"].all())
    tt = torch.linspace(0, 2, 201, dtype=torch.float64).expand(2, -1)
    assert float((sol.dense(tt)[..., 0] - (y0 - tt).clamp_min(0)).abs().max()) < 1e-10


def test_a_row_without_steps_reads_its_own_state():
    y0 = torch.tensor([[1.0], [2.0]], dtype=torch.float64)
    sol = integrate(Decay(), 0.0, y0, torch.tensor([0.0, 1.0], dtype=torch.float64), dense=True)
    assert int(sol.n_steps[0]) == 0
    out = sol.dense(torch.tensor([0.0, 0.5], dtype=torch.float64))
    assert float(out[0, 0]) == 1.0 and abs(float(out[1, 0]) - 2 * math.exp(-0.5)) < 1e-9
    none = integrate(Decay(), 0.0, y0, 0.0, dense=True)           # no steps at all
    assert torch.equal(none.dense(torch.zeros(2, dtype=torch.float64)), y0)


class NaNField(ODESystem):
    def rhs(self, t, y, p, mode):
        return torch.full_like(y, math.nan)


def test_a_field_nan_at_the_start_is_nonfinite_at_once():
    sol = integrate(NaNField(), 0.0, torch.ones(2, 3, dtype=torch.float64), 1.0, max_steps=1000)
    assert (sol.status == NONFINITE).all(), sol.failures()
    assert int((sol.n_steps + sol.n_rejected).max()) == 0


def test_a_problem_on_a_tiny_time_scale_runs():
    """``tau = 1e-15`` to ten time constants: the underflow test is relative to the spacing of
    floats at t (as scipy, which succeeds here)."""
    tau, rtol, atol = 1e-15, 1e-8, 1e-12
    sol = integrate(Decay(tau), 0.0, torch.ones(1, 1, dtype=torch.float64), 10 * tau, rtol=rtol, atol=atol)
    assert (sol.status == SUCCESS).all(), sol.failures()
    assert abs(float(sol.y[0, 0]) - math.exp(-10)) / (atol + rtol * math.exp(-10)) < 5


@pytest.mark.parametrize("kw, name", [
    (dict(h0=0.0), "h0"), (dict(h0=-0.1), "h0"), (dict(h0=math.nan), "h0"), (dict(h0=math.inf), "h0"),
    (dict(t_eval=torch.tensor([0.5, 1.5], dtype=torch.float64)), "t_eval"),
    (dict(t_eval=torch.tensor([-0.1, 0.5], dtype=torch.float64)), "t_eval"),
])
def test_invalid_steps_and_output_times_are_refused(kw, name):
    with pytest.raises(ValueError, match=name):
        integrate(Decay(), 0.0, torch.ones(2, 1, dtype=torch.float64), 1.0, **kw)


def test_complex_y0_is_refused():
    with pytest.raises(ValueError, match="y0"):
        integrate(Decay(), 0.0, torch.ones(2, 1, dtype=torch.complex128), 1.0)


class Kepler(ODESystem):
    """The two-body problem ``r'' = -r / |r|^3`` (only +, *, / and sqrt: row-independent)."""

    autonomous = True

    def rhs(self, t, y, p, mode):
        r2 = y[:, 0] * y[:, 0] + y[:, 1] * y[:, 1]
        inv = 1 / (r2 * torch.sqrt(r2))
        return torch.stack([y[:, 2], y[:, 3], -y[:, 0] * inv, -y[:, 1] * inv], 1)


def _kepler_starts(e):
    """Perihelion starts of orbits with eccentricities ``e`` (period 2 pi)."""
    z = torch.zeros_like(e)
    return torch.stack([1 - e, z, z, ((1 + e) / (1 - e)).sqrt()], 1)


class Riccati(ODESystem):
    """``y' = t - y^2`` (a scalar state: the stage sums of a BLAS contraction round per batch)."""

    def rhs(self, t, y, p, mode):
        return t[:, None] - y * y


def test_a_scalar_row_alone_and_inside_a_batch_is_bit_identical():
    y0 = torch.rand(1001, 1, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    batch = integrate(Riccati(), 0.0, y0, 3.0, rtol=1e-10, atol=1e-12)
    for r in (3, 517, 1000):
        alone = integrate(Riccati(), 0.0, y0[r:r + 1], 3.0, rtol=1e-10, atol=1e-12)
        assert int(alone.n_steps[0]) == int(batch.n_steps[r]) and torch.equal(alone.y[0], batch.y[r])


@pytest.mark.parametrize("features", ["plain", "events"])
def test_a_row_alone_and_inside_a_batch_is_bit_identical(features):
    g = torch.Generator().manual_seed(3)
    e = torch.rand(1001, generator=g, dtype=torch.float64) * 0.6
    y0 = _kepler_starts(e)
    kw = dict(rtol=1e-8, atol=1e-10)
    if features == "events":
        kw.update(events=[Event(lambda t, y, p: y[:, 1] - 0.2, terminal=False)],
                  t_eval=torch.linspace(0, 2, 9, dtype=torch.float64))
    batch = integrate(Kepler(), 0.0, y0, 2.0, **kw)
    for r in (517, 1000):
        alone = integrate(Kepler(), 0.0, y0[r:r + 1], 2.0, **kw)
        assert int(alone.n_steps[0]) == int(batch.n_steps[r]) and int(alone.n_rejected[0]) == int(batch.n_rejected[r])
        assert torch.equal(alone.y[0], batch.y[r]) and float(alone.t[0]) == float(batch.t[r])
        if features == "events":
            assert torch.equal(alone.ys[0], batch.ys[r])
            assert torch.equal(alone.t_events[0][0], batch.t_events[0][r])


def test_non_terminal_events_log_every_crossing():
    omega, y0 = _osc(3)
    ev = Event(lambda t, y, p: y[:, 0], terminal=False, direction=0)
    sol = integrate(Oscillator(), 0.0, y0, 10.0, {"omega": omega}, rtol=1e-12, atol=1e-14, events=[ev])
    log = sol.event_log[0]
    for r in range(3):
        w = float(omega[r])
        expect = [(math.pi / 2 + k * math.pi) / w for k in range(10) if (math.pi / 2 + k * math.pi) / w <= 10]
        got = log.t[log.row == r].tolist()
        np.testing.assert_allclose(got, expect, rtol=1e-11)
        assert torch.equal(log.y[log.row == r][:, 0].abs() < 1e-10, torch.ones(len(expect), dtype=torch.bool))
    assert torch.equal(sol.t_events[0][:, 0], torch.stack([log.t[log.row == r][0] for r in range(3)]))


def test_backward_integration_with_events_and_dense_output():
    """From ``t0 = 8`` back to 0 on ``y = cos(omega t)``: final state, every crossing of ``y = 0``
    (downward in the integration's order of time), ``t_eval`` and the dense output."""
    omega, _ = _osc(3)
    T = 8.0
    y0 = torch.stack([torch.cos(omega * T), -omega * torch.sin(omega * T)], 1)
    te = torch.linspace(T, 0, 17, dtype=torch.float64)
    ev = Event(lambda t, y, p: y[:, 0], terminal=False, direction=-1)
    sol = integrate(Oscillator(), T, y0, 0.0, {"omega": omega}, rtol=1e-11, atol=1e-13, events=[ev], t_eval=te,
                    dense=True)
    assert (sol.status == SUCCESS).all() and bool((sol.t == 0).all())
    np.testing.assert_allclose(sol.y[:, 0].numpy(), 1.0, atol=1e-9)
    np.testing.assert_allclose(sol.ys[..., 0].numpy(), torch.cos(omega[:, None] * te).numpy(), atol=1e-9)
    tt = torch.linspace(0, T, 81, dtype=torch.float64).expand(3, -1)
    np.testing.assert_allclose(sol.dense(tt)[..., 0].numpy(), torch.cos(omega[:, None] * tt).numpy(), atol=1e-9)
    log = sol.event_log[0]
    for r in range(3):       # y decreases through 0 in backward time where cos increases in t: t = (3/2 + 2k) pi / w
        w = float(omega[r])
        expect = sorted([(1.5 + 2 * k) * math.pi / w for k in range(5) if (1.5 + 2 * k) * math.pi / w <= T],
                        reverse=True)
        np.testing.assert_allclose(log.t[log.row == r].tolist(), expect, rtol=1e-10)


@pytest.mark.parametrize("points", [1, 3, 15])
def test_locate_brackets_the_first_time_to_adjacent_floats(points):
    """``events.locate`` ends with no float strictly inside the bracket, whatever its points per
    pass (bisection included): the located time is the first float where the predicate holds."""
    g = torch.Generator().manual_seed(points)
    lo = torch.rand(6, generator=g, dtype=torch.float64) * 10
    hi = lo + torch.rand(6, generator=g, dtype=torch.float64) * 1e3
    c = lo + (hi - lo) * torch.rand(6, generator=g, dtype=torch.float64)
    t, at = locate(lambda tt: (tt >= c[:, None])[..., None], lo, hi, torch.ones(6, 1, dtype=torch.bool), points=points)
    assert bool((t >= c).all()) and bool(at.all())
    assert torch.equal(torch.nextafter(t, torch.full_like(t, -math.inf)) < c, torch.ones(6, dtype=torch.bool))

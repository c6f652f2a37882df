"""The exact q = 1 integrator: polynomial events, ESC-1 at q = 1, agreement with the smooth
integrator, sliding on regressions without chattering or hanging, budgets, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import theory
from numerics.integrate import STEP_BUDGET, SUCCESS, Event
from numerics.losses import LinearRegression, Loss, SeparableQuadratic
from numerics.polynomials import earliest_downcrossing, first_downcrossing, product_polynomial, real_roots
from numerics.sign import simulate_sign_flow
from numerics.simulate import simulate_parameter_flow
from verify.common import hitting_event


@settings(max_examples=20)
@given(st.lists(st.floats(-2, 2), min_size=2, max_size=6), st.floats(0.5, 5))
def test_polynomial_roots_and_first_downcrossing(coeffs, T):
    """Every simple real root in (0, T] is a candidate; the first downcrossing is the first
    sign change from + to - found by a dense scan."""
    c = np.array(coeffs, dtype=float)
    if abs(c[-1]) < 1e-3:
        c[-1] = 1.0
    Tt = np.array([T])
    cand = real_roots(c[None], Tt)[0]
    for r in np.roots(c[::-1]):
        if abs(r.imag) < 1e-12 and 1e-6 < r.real < T - 1e-6 and abs(np.polyval(np.polyder(c[::-1]), r.real)) > 1e-3:
            assert np.abs(cand - r.real).min() < 1e-8
    ts = np.linspace(0, T, 20001)
    vals = (c[None, :] * ts[:, None] ** np.arange(len(c))).sum(1)
    down = np.flatnonzero((vals[:-1] > 0) & (vals[1:] <= 0))
    tc = float(first_downcrossing(c[None], Tt)[0][0])
    if len(down) and abs(vals[down[0]]) > 1e-6:
        assert abs(tc - ts[down[0] + 1]) <= T / 20000 + 1e-12
    elif not len(down):
        assert tc == float("inf") or abs((c * tc ** np.arange(len(c))).sum()) < 1e-9
    t_early, j = earliest_downcrossing(np.stack([c, c[::-1] if c[0] > 0 else -c]), T)
    assert t_early <= tc and (j == 0 or t_early < tc or tc == float("inf"))


def test_product_polynomial_and_first_downcrossing():
    w = torch.tensor([[0.5, -0.2, 0.3]], dtype=torch.float64)
    v = torch.tensor([[1.0, 1.0, -1.0]], dtype=torch.float64)
    c = product_polynomial(w, v)                     # (0.5 + t)(t - 0.2)(0.3 - t)
    t = torch.tensor([0.7], dtype=torch.float64)
    assert abs(float((c * t ** torch.arange(4)).sum()) - 1.2 * 0.5 * -0.4) < 1e-15
    tc, lo, hi = first_downcrossing(-c.numpy(), np.array([1.0]))   # -x: + until t = 0.2
    assert abs(float(tc[0]) - 0.2) < 1e-14 and float(lo[0]) < 0.2 < float(hi[0])
    t_exact, j = earliest_downcrossing(np.concatenate([-c.numpy(), np.array([[1.0, -10.0, 0.0, 0.0]])]), 1.0)
    assert j == 1 and t_exact == 0.1                 # bisected to adjacent floats: 1 - 10 t <= 0 first at 0.1


@pytest.mark.parametrize("L", [1, 2, 3, 4, 6])
def test_escape_time_matches_esc1_at_q_one(L):
    alphas = torch.tensor([0.3, 0.1, 0.01], dtype=torch.float64)
    res = simulate_sign_flow(alphas.reshape(-1, 1, 1).expand(-1, 1, L), SeparableQuadratic(1.0), 3.0,
                             events=[hitting_event([0.5], L, direction=1, terminal=True)])
    t_hit = res.solution.t_events[0][:, 0]
    pred = torch.tensor([theory.escape_time(L, 1.0, float(a), 1.0, 0.5) for a in alphas], dtype=torch.float64)
    assert float(((t_hit - pred).abs() / pred).max()) <= 1e-12
    assert int(res.solution.n_steps.max()) <= 2                       # one event per run


@settings(max_examples=8)
@given(st.integers(1, 4), st.integers(0, 2**31 - 1))
def test_exact_matches_smooth_integrator(L, seed):
    """Separable problems with mixed signs (factors crossing zero, arrival and sliding)."""
    g = torch.Generator().manual_seed(seed)
    w0 = (0.2 + 0.8 * torch.rand(2, 3, L, generator=g, dtype=torch.float64)) * \
        torch.where(torch.rand(2, 3, L, generator=g) < 0.3, -1.0, 1.0).double()
    loss = SeparableQuadratic(3 * torch.rand(2, 3, generator=g, dtype=torch.float64) - 1.5)
    te = torch.linspace(0.2, 2.0, 10, dtype=torch.float64)
    exact = simulate_sign_flow(w0, loss, 2.0, t_eval=te)
    smooth = simulate_parameter_flow(w0, 1.0, loss, 2.0, rtol=1e-12, atol=1e-14, t_eval=te)
    assert exact.ok() and smooth.ok()
    torch.testing.assert_close(exact.solution.ys, smooth.solution.ys, rtol=1e-9, atol=1e-11)


def _regression(n, N, seed):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(N, n, generator=g, dtype=torch.float64)
    x_true = torch.zeros(n, dtype=torch.float64)
    x_true[:3] = torch.tensor([1.0, -0.5, 0.7], dtype=torch.float64)
    return LinearRegression(X, X @ x_true)


@settings(max_examples=8)
@given(st.integers(1, 3), st.integers(3, 8), st.integers(0, 2**31 - 1))
def test_sliding_never_chatters_or_hangs(L, n, seed):
    """Underdetermined regressions: several gradient components vanish together; the run ends
    (status >= 0) with few events, the loss never increases and ends at interpolation."""
    loss = _regression(n, 2, seed)
    te = torch.linspace(0.1, 3.0, 30, dtype=torch.float64)
    res = simulate_sign_flow(torch.full((1, n, L), 0.4, dtype=torch.float64), loss, 3.0, t_eval=te, max_events=2000)
    assert res.ok(), res.solution.failures()
    assert int(res.solution.n_steps[0]) < 2000
    f = loss.value(res.solution.ys[0].reshape(30, n, L).prod(-1), {"y": loss.y.expand(30, -1)})
    assert bool((f[1:] <= f[:-1] + 1e-12).all())


def test_fifty_coordinate_regression_through_its_sliding_phase():
    """The exact integrator on a 50-coordinate regression (L = 2) through coordinates entering
    and leaving sliding (closed form between events, no ODE steps), within an event budget:
    it ends, the loss never increases."""
    loss = _regression(50, 20, 1)
    te = torch.linspace(0.02, 0.4, 20, dtype=torch.float64)
    res = simulate_sign_flow(torch.full((1, 50, 2), 0.3, dtype=torch.float64), loss, 0.4, t_eval=te, max_events=1000)
    assert res.ok(), res.solution.failures()
    assert res.solution.nfev == 0
    assert int(res.solution.switching["slide"].sum()) >= 5 and int(res.solution.n_steps[0]) < 1000
    f = loss.value(res.solution.ys[0].reshape(20, 50, 2).prod(-1), {"y": loss.y.expand(20, -1)})
    assert bool((f[1:] <= f[:-1] + 1e-12).all())


def test_regression_exact_agrees_with_smooth_through_sliding():
    loss = _regression(8, 4, 2)
    w0 = torch.full((1, 8, 2), 0.3, dtype=torch.float64)
    exact = simulate_sign_flow(w0, loss, 1.5, max_events=1000)
    smooth = simulate_parameter_flow(w0, 1.0, loss, 1.5, decay="decoupled", nu=0.0, rtol=1e-12, atol=1e-14,
                                     max_steps=200_000)
    assert exact.ok() and smooth.ok() and bool(exact.solution.switching["slide"].any())
    torch.testing.assert_close(exact.w, smooth.w, rtol=0, atol=1e-9)


def test_event_budget_reports_instead_of_hanging():
    res = simulate_sign_flow(torch.tensor([[[0.3, 0.5, -0.4]]], dtype=torch.float64), SeparableQuadratic(1.0),
                             3.0, max_events=1)
    assert int(res.solution.status[0]) == STEP_BUDGET
    res = simulate_sign_flow(torch.tensor([[[0.3, 0.5, -0.4]]], dtype=torch.float64), SeparableQuadratic(1.0), 3.0)
    assert int(res.solution.status[0]) == SUCCESS


class _Cubic(Loss):
    separable = True

    def grad(self, x, p):
        return x**3


@pytest.mark.parametrize("kwargs, exc, name", [
    (dict(loss=_Cubic()), ValueError, "quadratic"),
    (dict(w0=torch.ones(2, 3)), ValueError, "w0"),
    (dict(t_end=-1.0), ValueError, "t_end"),
    (dict(max_events=0), ValueError, "max_events"),
    (dict(rtol=0.0), ValueError, "rtol"),
])
def test_bad_input(kwargs, exc, name):
    args = dict(w0=torch.full((1, 1, 2), 0.5, dtype=torch.float64), loss=SeparableQuadratic(1.0), t_end=1.0)
    args.update(kwargs)
    with pytest.raises(exc, match=name):
        simulate_sign_flow(**args)


def test_non_terminal_events_are_located_on_the_exact_path_and_logged():
    """``L = 1`` from ``w = 0`` towards targets 1 and 0.5: ``w(t) = t`` until the target, so
    ``cos(8 pi w)`` changes sign at ``t = 1/16 + k/8`` before it. Every firing of a
    non-terminal event is located there (not at the end of the exact step, the arrival) and
    logged; the run goes on to the end."""
    loss = SeparableQuadratic(torch.tensor([[1.0], [0.5]], dtype=torch.float64))
    wave = Event(lambda t, y, p: torch.cos(8 * np.pi * y[:, 0]), terminal=False)
    level = Event(lambda t, y, p: y[:, 0] - 0.3, terminal=False)
    res = simulate_sign_flow(torch.zeros((2, 1, 1), dtype=torch.float64), loss, 2.0, events=[wave, level])
    assert res.ok() and bool((res.solution.t == 2.0).all())
    for row, target in enumerate((1.0, 0.5)):
        k = np.arange(8)
        expected = (1 / 16 + k / 8)[1 / 16 + k / 8 < target]
        np.testing.assert_allclose(res.solution.event_times(0, row).numpy(), expected, rtol=0, atol=1e-14)
        np.testing.assert_allclose(res.solution.event_times(1, row).numpy(), [0.3], rtol=0, atol=1e-14)
    np.testing.assert_allclose(res.solution.t_events[0][:, 0].numpy(), [1 / 16, 1 / 16], rtol=0, atol=1e-14)


def test_a_non_terminal_event_on_a_coupled_loss_agrees_with_the_filippov_flow():
    """The time the loss halves, a non-terminal event, on the exact sign flow (closed-form
    path through sliding) and on the Filippov field of DOP853 at rtol 1e-12."""
    loss = _regression(8, 4, 2)
    w0 = torch.full((1, 8, 2), 0.3, dtype=torch.float64)
    f0 = float(loss.value(w0.prod(-1), loss.params(1, "cpu")))
    half = Event(lambda t, y, p: loss.value(y.reshape(-1, 8, 2).prod(-1), p) - 0.5 * f0, terminal=False)
    exact = simulate_sign_flow(w0, loss, 1.5, events=[half], max_events=1000)
    smooth = simulate_parameter_flow(w0, 1.0, loss, 1.5, decay="decoupled", nu=0.0, rtol=1e-12, atol=1e-14,
                                     events=[half], max_steps=200_000)
    assert exact.ok() and smooth.ok() and int(exact.solution.status[0]) == SUCCESS
    assert abs(float(exact.solution.t_events[0][0, 0] - smooth.solution.t_events[0][0, 0])) <= 1e-8
    t_exact, t_smooth = exact.solution.event_times(0, 0), smooth.solution.event_times(0, 0)
    assert len(t_exact) == len(t_smooth) == 1
    assert abs(float(t_exact[0] - t_smooth[0])) <= 1e-8

"""The exact q = 1 flow on coupled quadratic losses (balanced factors): the incremental Cholesky
of the sliding set, agreement with the Filippov DOP853 flow through entering and leaving
sliding, stationarity of the final state, outputs, events and budgets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from numerics.cholesky import IncrementalCholesky
from numerics.flows import BranchLoss
from numerics.integrate import EVENT, STEP_BUDGET, SUCCESS, WALL_BUDGET, Event
from numerics.losses import LinearRegression, Loss, SeparableQuadratic
from numerics.sign import simulate_sign_flow
from numerics.sign_coupled import balanced
from numerics.simulate import simulate_parameter_flow


@settings(max_examples=20)
@given(st.integers(0, 2**31 - 1), st.integers(2, 12))
def test_incremental_cholesky_matches_the_submatrix(seed, m):
    """Random insertions and removals: R^T R = H_SS and solves agree with a dense solve."""
    r = np.random.default_rng(seed)
    A = r.standard_normal((m + 3, m))
    H = A.T @ A
    ch = IncrementalCholesky(H)
    inside = []
    for _ in range(3 * m):
        out = [j for j in range(m) if j not in inside]
        if out and (not inside or r.random() < 0.6):
            j = int(r.choice(out))
            assert ch.insert(j)
            inside.append(j)
        else:
            j = int(r.choice(inside))
            ch.remove(j)
            inside.remove(j)
        assert ch.index == inside
        sub = H[np.ix_(inside, inside)]
        if inside:
            np.testing.assert_allclose(ch.R.T @ ch.R, sub, rtol=0, atol=1e-12 * np.abs(H).max())
            assert np.allclose(np.tril(ch.R, -1), 0)
            b = r.standard_normal(len(inside))
            np.testing.assert_allclose(ch.solve(b), np.linalg.solve(sub, b), rtol=1e-9, atol=1e-9)


def test_incremental_cholesky_refuses_a_singular_insertion():
    H = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 2.0]])
    ch = IncrementalCholesky(H)
    assert ch.insert(0) and not ch.insert(1) and ch.index == [0] and ch.insert(2)


def _regression(n, N, seed, truth=(1.0, -0.5, 0.7)):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(N, n, generator=g, dtype=torch.float64)
    x_true = torch.zeros(n, dtype=torch.float64)
    x_true[: len(truth)] = torch.tensor(truth, dtype=torch.float64)
    return LinearRegression(X, X @ x_true)


def _stationarity(res, loss):
    """Per row: the largest ``|d_i f|`` over coordinates not on the saddle ``w_i = 0`` (there
    every ``dF/dw_ik`` has a zero factor, at ``L >= 2``), relative to ``max |grad f(x0)|``."""
    g = loss.grad(res.x, res.solution.params)
    saddle = (res.w == 0).sum(-1) >= 2
    return (g.abs() * ~saddle).amax(1) / res.solution.params["g_scale"]


# The reference instance: 10 coordinates, 6 samples, L = 3, sign-mixed balanced start, to t = 1.2:
# coordinates enter sliding, leave it (|mu| reaches 1), factors reach 0 (the saddle).
def _instance():
    loss = _regression(10, 6, 3, truth=(1.2, -0.8, 0.6, 0.3))
    signs = torch.tensor([1, -1, 1, 1, -1, 1, -1, 1, 1, -1], dtype=torch.float64)
    size = torch.tensor([0.6, 0.1, 0.6, 0.5, 0.1, 0.6, 0.15, 0.6, 0.5, 0.08], dtype=torch.float64)
    w0 = (size * signs)[None, :, None].expand(1, 10, 3).clone()
    w0[0, :, 1] *= torch.tensor([1, 1, -1, 1, 1, -1, 1, 1, -1, 1], dtype=torch.float64)
    return loss, w0


def test_exact_coupled_flow_agrees_with_filippov_dop853():
    """At 1e-8: the exact flow (closed form between events, no ODE: nfev = 0) and the Filippov
    DOP853 flow of numerics.decay.DecayFlow (nu = 0, rtol 1e-12), outputs included."""
    loss, w0 = _instance()
    te = torch.linspace(0.1, 1.2, 12, dtype=torch.float64)
    exact = simulate_sign_flow(w0, loss, 1.2, t_eval=te, max_events=10_000)
    smooth = simulate_parameter_flow(w0, 1.0, loss, 1.2, decay="decoupled", nu=0.0, rtol=1e-12, atol=1e-14,
                                     t_eval=te, max_steps=200_000)
    assert exact.ok() and smooth.ok() and exact.solution.nfev == 0
    assert bool(exact.solution.switching["slide"].any())
    assert float((exact.solution.ys - smooth.solution.ys).abs().max()) <= 1e-8
    assert float((exact.w - smooth.w).abs().max()) <= 1e-8


def test_final_state_is_stationary():
    """Run to t = 30: every coordinate off the saddle has |d_i f| <= 1e-9 max|grad f(x0)|
    (the stationarity band, 1e3 rtol) and the state no longer moves."""
    loss, w0 = _instance()
    res = simulate_sign_flow(w0, loss, 30.0, max_events=10_000)
    later = simulate_sign_flow(w0, loss, 40.0, max_events=10_000)
    assert res.ok() and float(_stationarity(res, loss)[0]) <= 1e-9
    assert float((later.w - res.w).abs().max()) <= 1e-12


@pytest.mark.parametrize("seed", [4, 5])
def test_paper_like_regression_descends_to_stationarity(seed):
    """An 80-coordinate, 30-sample regression (L = 3, balanced start 0.05): to t = 50 with few
    events per coordinate, the loss never increasing on the way (a missed crossing would move a
    coordinate uphill), ending stationary."""
    loss = _regression(80, 30, seed, truth=(1.0, -0.5, 0.7, 1.3, -1.1))
    te = torch.cat([torch.linspace(0.01, 2.0, 400, dtype=torch.float64), torch.tensor([50.0], dtype=torch.float64)])
    res = simulate_sign_flow(torch.full((1, 80, 3), 0.05, dtype=torch.float64), loss, 50.0, t_eval=te,
                             max_events=5_000)
    assert res.ok() and res.solution.nfev == 0 and int(res.solution.n_steps.max()) < 2000
    f = loss.value(res.solution.ys[0].reshape(-1, 80, 3).prod(-1), {"y": loss.y.expand(len(te), -1)})
    assert bool((f[1:] <= f[:-1] + 1e-13 * f[0]).all())
    assert float(_stationarity(res, loss).max()) <= 1e-9


def test_user_events_on_the_exact_path():
    """A terminal event on the loss value is located on the closed-form path (the loss there
    equals the level to rounding) and matches the DOP853 run's event time."""
    loss, w0 = _instance()
    level = 0.5 * float(loss.value(w0.prod(-1), loss.params(1, "cpu")))
    ev = Event(lambda t, y, p: loss.value(y.reshape(-1, 10, 3).prod(-1), p) - level, terminal=True, direction=-1)
    exact = simulate_sign_flow(w0, loss, 1.2, events=[ev])
    smooth = simulate_parameter_flow(w0, 1.0, loss, 1.2, decay="decoupled", nu=0.0, rtol=1e-12, atol=1e-14,
                                     events=[ev])
    t_e = exact.solution.t_events[0][0, 0]
    assert int(exact.solution.status[0]) == EVENT and torch.isfinite(t_e)
    assert abs(float(t_e - smooth.solution.t_events[0][0, 0])) <= 1e-8
    assert abs(float(loss.value(exact.x, exact.solution.params)[0]) - level) <= 1e-12 * level


def test_budgets_end_with_status_codes():
    loss, w0 = _instance()
    assert int(simulate_sign_flow(w0, loss, 1.2, max_events=3).solution.status[0]) == STEP_BUDGET
    assert int(simulate_sign_flow(w0, loss, 1.2, max_wall=0.0).solution.status[0]) == WALL_BUDGET
    assert int(simulate_sign_flow(w0, loss, 1.2).solution.status[0]) == SUCCESS


def test_balanced_detection():
    assert balanced(np.array([[0.3, -0.3, 0.3], [0.0, 0.0, 0.0]]))
    assert not balanced(np.array([[0.3, 0.31, 0.3]]))


def test_two_branch_pairs_share_one_surface():
    """x = A - B (both branches balanced at the same start): a coordinate's two branch surfaces
    are one (d_B f = -d_A f), its sliding branches share the motion equally (the minimum-norm
    multipliers); exact (no ODE), and in agreement with the Filippov DOP853 flow."""
    base = _regression(4, 3, 5, truth=(1.0, -0.6))
    loss = BranchLoss(base, 4)
    w0 = torch.full((1, 8, 2), 0.5, dtype=torch.float64)
    exact = simulate_sign_flow(w0, loss, 1.0, max_events=1000)
    smooth = simulate_parameter_flow(w0, 1.0, loss, 1.0, decay="decoupled", nu=0.0, rtol=1e-12, atol=1e-14,
                                     max_steps=200_000)
    assert exact.ok() and smooth.ok() and exact.solution.nfev == 0
    assert float((exact.w - smooth.w).abs().max()) <= 1e-8


class _RankOne(Loss):
    """``f = (x_0 + 2 x_1 - 1)^2 / 2 + (x_2 - 0.5)^2 / 2``: ``d_1 f = 2 d_0 f``, one surface that
    the pair reaches together, with a singular ``H_SS`` (not a ±1 class)."""
    quadratic = True

    def value(self, x, p):
        return 0.5 * (x[:, 0] + 2 * x[:, 1] - 1) ** 2 + 0.5 * (x[:, 2] - 0.5) ** 2

    def grad(self, x, p):
        r = x[:, 0] + 2 * x[:, 1] - 1
        return torch.stack([r, 2 * r, x[:, 2] - 0.5], 1)


def test_singular_sliding_set_hands_over_to_the_filippov_ode():
    w0 = torch.full((1, 3, 2), 0.3, dtype=torch.float64)
    exact = simulate_sign_flow(w0, _RankOne(), 1.0, max_events=1000)
    smooth = simulate_parameter_flow(w0, 1.0, _RankOne(), 1.0, decay="decoupled", nu=0.0, rtol=1e-12, atol=1e-14,
                                     max_steps=200_000)
    assert exact.ok() and smooth.ok() and exact.solution.nfev > 0           # the ODE took over
    assert float((exact.w - smooth.w).abs().max()) <= 1e-8


@pytest.mark.slow
def test_paper_size_regression_to_t_50():
    """The paper's size: 300 coordinates, 100 Gaussian samples, L = 3, balanced start 0.05, 8
    trajectories (5-sparse truths) to t = 50 with the default call of ``simulate_parameter_flow``
    (the exact sign flow): every one succeeds within its event budget
    (a few hundred events each) and ends stationary."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(100, 300, generator=g, dtype=torch.float64)
    Y = []
    for _ in range(8):
        x_true = torch.zeros(300, dtype=torch.float64)
        support = torch.randperm(300, generator=g)[:5]
        x_true[support] = torch.sign(torch.randn(5, generator=g, dtype=torch.float64)) * \
            (0.5 + torch.rand(5, generator=g, dtype=torch.float64))
        Y.append(X @ x_true)
    loss = LinearRegression(X, torch.stack(Y))
    res = simulate_parameter_flow(torch.full((8, 300, 3), 0.05, dtype=torch.float64), 1.0, loss, 50.0,
                                  rtol=1e-12, atol=1e-14, max_steps=5_000)       # the default call: exact
    assert res.ok() and res.solution.nfev == 0 and int(res.solution.n_steps.max()) < 2000
    assert float(_stationarity(res, loss).max()) <= 1e-9


def test_default_call_at_q1_on_a_coupled_quadratic_loss_is_the_exact_sign_flow():
    """``simulate_parameter_flow`` at ``q = 1`` (no decay) on a coupled quadratic loss runs the
    exact event-to-event flow by default (the same events and state as ``simulate_sign_flow``,
    no field evaluations); ``max_steps`` is its event budget; ``method="dop853"`` keeps the
    Filippov field on the integrator."""
    loss = _regression(6, 4, 2)
    w0 = torch.full((2, 6, 2), 0.4, dtype=torch.float64)
    exact = simulate_sign_flow(w0, loss, 1.2, rtol=1e-12, atol=1e-14)
    default = simulate_parameter_flow(w0, 1.0, loss, 1.2, rtol=1e-12, atol=1e-14)
    assert default.ok() and default.solution.nfev == 0
    assert torch.equal(default.w, exact.w) and torch.equal(default.solution.n_steps, exact.solution.n_steps)
    short = simulate_parameter_flow(w0, 1.0, loss, 1.2, max_steps=1)
    assert (short.solution.status == STEP_BUDGET).all() and (short.solution.n_steps == 1).all()
    driver = simulate_parameter_flow(w0, 1.0, loss, 1e-3, method="dop853")
    assert driver.solution.nfev > 0


def test_method_sign_on_a_separable_loss_and_its_refusals():
    """``method="sign"`` forces the exact flow (also on a separable loss, where the default is
    DOP853) and refuses what it cannot do: ``q != 1``, decay, extras, dense output."""
    loss = SeparableQuadratic(torch.tensor([1.0, -0.5], dtype=torch.float64))
    w0 = torch.full((1, 2, 2), 0.3, dtype=torch.float64)
    forced = simulate_parameter_flow(w0, 1.0, loss, 2.0, method="sign")
    assert torch.equal(forced.w, simulate_sign_flow(w0, loss, 2.0, rtol=1e-10, atol=1e-12).w)
    assert simulate_parameter_flow(w0, 1.0, loss, 2.0).solution.nfev > 0
    for bad in ({"q": 1.5}, {"decay": "decoupled", "nu": 0.1}, {"extras": [lambda x, g, p: x]}, {"dense": True}):
        kw = {"q": 1.0, **bad}
        with pytest.raises(ValueError, match="method='sign'"):
            simulate_parameter_flow(w0, kw.pop("q"), loss, 1.0, method="sign", **kw)

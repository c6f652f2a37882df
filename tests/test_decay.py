"""Flows with weight decay: balance laws, equilibria, Filippov sliding at q = 1, bad input."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, reject, settings
from hypothesis import strategies as st

import theory
from numerics._generated import torch_kernels as K
from numerics.filippov import Groups, equivalent_control, surface_rate
from numerics.geometry import exclusive_prod
from numerics.integrate import STEP_BUDGET
from numerics.losses import LinearRegression, SeparableQuadratic
from numerics.sign import simulate_sign_flow
from numerics.simulate import simulate_parameter_flow, simulate_two_branch_flow

SCHEDULES = {"constant": (None, lambda t: t),
             "harmonic": (lambda t: 1 / (1 + t), lambda t: math.log1p(t)),
             "cosine": (lambda t: 0.5 * (1 + torch.cos(math.pi * t / 4)),
                        lambda t: 0.5 * t + 2 / math.pi * math.sin(math.pi * t / 4))}


def _imbalance(w, q):
    return K.bal1_invariant(w[..., 1:], w[..., :1], q)


@settings(max_examples=12)
@given(st.floats(1.0, 2.0), st.integers(2, 5), st.floats(0.1, 1.0), st.sampled_from(sorted(SCHEDULES)),
       st.booleans(), st.integers(0, 2**31 - 1))
def test_decoupled_imbalance_decays_at_rate_q_nu(guarded, q, L, nu, sched, coupled_loss, seed):
    """BAL-2 on random imbalanced starts, separable or regression losses, any schedule."""
    g = torch.Generator().manual_seed(seed)
    w0 = (0.3 + 0.7 * torch.rand(1, 3, L, generator=g, dtype=torch.float64)) * \
        torch.where(torch.rand(1, 3, L, generator=g) < 0.3, -1.0, 1.0).double()
    if coupled_loss:
        loss = LinearRegression(torch.randn(2, 3, generator=g, dtype=torch.float64),
                                torch.randn(2, generator=g, dtype=torch.float64))
    else:
        loss = SeparableQuadratic(2 * torch.rand(3, generator=g, dtype=torch.float64) - 1)
    schedule, integral = SCHEDULES[sched]
    T = 0.6
    res = guarded(simulate_parameter_flow, w0, q, loss, T, decay="decoupled", nu=nu, schedule=schedule,
                  rtol=1e-11, atol=1e-13, max_steps=2000)   # examples need <= 423 steps
    if int(res.solution.status[0]) == STEP_BUDGET:
        reject()       # the known limit pinned below (a strict xfail): no verdict on BAL-2 from it
    assert res.ok(), res.solution.failures()
    pred = _imbalance(w0, q) * math.exp(-q * nu * integral(T))
    scale = (w0.abs() ** q).amax()
    assert float((_imbalance(res.w, q) - pred).abs().max() / scale) < 1e-8


@pytest.mark.xfail(strict=True, reason="README Known limits: an equilibrium next to a non-Lipschitz surface "
                   "(decoupled decay, q near 1) takes DOP853 > 32,000 steps (> 120 s) before t = 0.6")
def test_decoupled_decay_near_q_one_finishes_within_its_step_budget():
    """q = 1.136, L = 2, nu(t) = 0.1/(1 + t), separable target, seed 5450 (an example of the test
    above; the others need <= 167 steps): coordinate 2 approaches its equilibrium
    |d_2 f w_2k| = (nu |w_2k|)^(1/(q-1)) ~ 1e-9, next to d_2 f = 0 where phi_q has slope
    ~ |z|^(q-2): stiff, and decay flows have no derived Jacobian for Rodas5."""
    g = torch.Generator().manual_seed(5450)
    w0 = (0.3 + 0.7 * torch.rand(1, 3, 2, generator=g, dtype=torch.float64)) * \
        torch.where(torch.rand(1, 3, 2, generator=g) < 0.3, -1.0, 1.0).double()
    loss = SeparableQuadratic(2 * torch.rand(3, generator=g, dtype=torch.float64) - 1)
    res = simulate_parameter_flow(w0, 1.1360716761780447, loss, 0.6, decay="decoupled", nu=0.1,
                                  schedule=SCHEDULES["harmonic"][0], rtol=1e-11, atol=1e-13, max_steps=2000)
    assert res.ok(), res.solution.failures()


def test_coupled_and_decoupled_coincide_at_q_2():
    w0 = torch.tensor([[[0.3, 0.7, 0.5], [0.9, 0.2, 0.4]]], dtype=torch.float64)
    runs = [simulate_parameter_flow(w0, 2.0, SeparableQuadratic([1.0, -0.5]), 2.0, decay=d, nu=0.3,
                                    rtol=1e-12, atol=1e-14) for d in ("decoupled", "coupled")]
    torch.testing.assert_close(runs[0].w, runs[1].w, rtol=1e-10, atol=1e-12)


def test_coupled_sign_flow_keeps_differences_while_the_condition_holds():
    """BAL-3 at q = 1: |w_k| - |w_j| frozen (|x d| >> nu w^2 on this window)."""
    w0 = torch.tensor([[[0.3, 0.6]]], dtype=torch.float64)
    te = torch.linspace(0.05, 0.5, 10, dtype=torch.float64)
    res = simulate_parameter_flow(w0, 1.0, SeparableQuadratic(4.0), 0.5, decay="coupled", nu=0.3,
                                  rtol=1e-12, atol=1e-14, t_eval=te)
    ws = res.solution.ys.reshape(10, 2)
    assert float((ws[:, 1] - ws[:, 0] - 0.3).abs().max()) < 1e-12


@pytest.mark.parametrize("L, q, nu, y, decay", [
    (2, 1.0, 0.8, 0.5, "decoupled"),     # x* = y, sliding with decay
    (2, 1.0, 0.8, 2.0, "decoupled"),     # the box |w_k| = 1/nu
    (3, 1.0, 0.5, 1.0, "decoupled"),
    (2, 1.0, 0.5, 2.0, "coupled"),       # soft threshold y - nu, sliding on z_ik = 0
    (1, 1.0, 0.3, 1.0, "coupled"),       # y / (1 + nu)
    (2, 1.5, 0.5, 2.0, "coupled"),       # finite-time arrival, frozen at rest
    (3, 1.5, 0.3, 1.0, "decoupled"),     # m = 1: y - nu^2
])
def test_long_run_equilibria(guarded, L, q, nu, y, decay):
    x_star = theory.equilibrium(L, q, nu, y, decay)
    w0 = torch.full((1, 1, L), ((x_star + y) / 2) ** (1 / L), dtype=torch.float64)
    res = guarded(simulate_parameter_flow, w0, q, SeparableQuadratic(y), 80.0, decay=decay, nu=nu, rtol=1e-12,
                  atol=1e-14, max_steps=500)     # the 7 cases need <= 102 steps
    assert res.ok()
    assert abs(float(res.x[0, 0]) - x_star) <= 1e-8 * x_star
    if decay == "decoupled" and q == 1 and y > nu ** -L:
        torch.testing.assert_close(res.w.abs(), torch.full_like(res.w, 1 / nu), rtol=1e-10, atol=0)


def test_sliding_tracks_a_moving_equilibrium_with_a_schedule():
    """q = 1, coupled, L = 2: after arrival the flow slides on z = 0 with nu(t) changing, so
    x(t) = y - nu(t) (the equivalent control uses nu'(t))."""
    sched = lambda t: 1 / (1 + 0.5 * t)                                              # noqa: E731
    te = torch.linspace(1.0, 4.0, 7, dtype=torch.float64)
    res = simulate_parameter_flow(torch.full((1, 1, 2), 0.5, dtype=torch.float64), 1.0, SeparableQuadratic(2.0),
                                  4.0, decay="coupled", nu=0.6, schedule=sched, rtol=1e-12, atol=1e-14, t_eval=te)
    assert res.ok()
    x = res.solution.ys.reshape(7, 2).prod(-1)
    torch.testing.assert_close(x, 2.0 - 0.6 * sched(te), rtol=1e-9, atol=0)


@pytest.mark.parametrize("alpha, expect", [(0.05, "collapse"), (0.8, "escape")])
def test_coupled_depth_three_collapses_in_finite_time(alpha, expect):
    L, q, nu, y = 3, 1.5, 0.3, 1.0
    assert theory.escape_or_collapse(L, q, nu, y, alpha, "coupled") == expect
    res = simulate_parameter_flow(torch.full((1, 1, L), alpha, dtype=torch.float64), q, SeparableQuadratic(y),
                                  30.0, decay="coupled", nu=nu, rtol=1e-12, atol=1e-14)
    t_rest = float(res.solution.switching["t_slide"][0, 0])
    if expect == "collapse":
        assert abs(float(res.x[0, 0])) < 1e-30 and math.isfinite(t_rest)
    else:
        assert abs(float(res.x[0, 0]) - theory.equilibrium(L, q, nu, y, "coupled")) < 1e-8


def test_coupled_decay_freezes_the_coordinates_it_pulls_onto_the_saddle():
    """Coupled decay, ``1 < q < 2``, a regression: the decay pulls coordinates off the support
    onto the saddle ``x_i = 0`` in finite time (``|w| ~ (t* - t)^(2/(2-q))``, then 0). The
    factors are switching functions there: the arrival is located and the coordinate frozen
    at exactly 0. Before, a Rosenbrock step did not land on the arrival: the factors hovered
    at the size of ``atol``, some passed through 0 with opposite signs (breaking the balance
    the flow keeps) and the steps collapsed (2,345 accepted steps to t = 2.9)."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(8, 5, generator=g, dtype=torch.float64)
    loss = LinearRegression(X, X @ torch.tensor([1.0, -0.8, 0.5, 0, 0], dtype=torch.float64))
    w0 = torch.full((1, 5, 2), 0.1, dtype=torch.float64)
    res = simulate_two_branch_flow(w0, w0, 1.5, loss, 3.0, decay="coupled", nu=2e-2, rtol=1e-9, atol=1e-12,
                                   max_steps=1000)       # 322 steps
    assert res.ok()
    w, frozen = res.w[0], res.solution.switching["frozen"][0]
    assert bool(frozen.any()) and bool((w[frozen] == 0).all())
    assert bool(torch.isfinite(res.solution.switching["t_slide"][0][frozen]).all())
    # a balanced start stays balanced: equal factors, never of opposite signs
    torch.testing.assert_close(w[:, 0], w[:, 1], rtol=1e-12, atol=0)


@pytest.mark.parametrize("decay", ["decoupled", "coupled"])
def test_regression_with_decay_slides_without_chattering(guarded, decay):
    """An overdetermined regression (several gradient components vanish together at its
    regularized minimizer): the q = 1 flow slides there and ends at rest, without chattering;
    without decay the sign flow is a descent."""
    g = torch.Generator().manual_seed(3)
    X = torch.randn(10, 5, generator=g, dtype=torch.float64)
    loss = LinearRegression(X, X @ torch.tensor([1.0, 0, 0, -0.5, 0.2], dtype=torch.float64)
                            + 0.1 * torch.randn(10, generator=g, dtype=torch.float64))
    w0 = torch.full((2, 5, 2), 0.3, dtype=torch.float64)
    te = torch.linspace(0.1, 4.0, 40, dtype=torch.float64)
    nu = torch.tensor([0.0, 0.2], dtype=torch.float64)
    res = [guarded(simulate_parameter_flow, w0[:1], 1.0, loss, 4.0, decay=decay, nu=v, rtol=1e-10, atol=1e-12,
                   t_eval=te, max_steps=100) for v in nu]      # no chattering: 16 steps suffice
    for r in res:
        assert r.ok()
        assert bool(r.solution.switching["slide"].any())
    x = res[0].solution.ys.reshape(40, 5, 2).prod(-1)
    f = loss.value(x, {"y": loss.y.expand(40, -1)})
    assert bool((f[1:] <= f[:-1] + 1e-12).all())


@pytest.mark.parametrize("kwargs, name", [
    (dict(decay="l2"), "decay"),
    (dict(nu=0.5), "decay"),
    (dict(decay="coupled", nu=-1.0), "nu"),
    (dict(decay="coupled", nu=torch.ones(3, dtype=torch.float64)), "nu"),
])
def test_bad_decay_input_names_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        simulate_parameter_flow(torch.full((2, 1, 2), 0.5, dtype=torch.float64), 1.5, SeparableQuadratic(1.0),
                                1.0, **kwargs)


def test_schedule_must_be_callable():
    with pytest.raises(TypeError, match="schedule"):
        simulate_parameter_flow(torch.full((1, 1, 2), 0.5, dtype=torch.float64), 1.5, SeparableQuadratic(1.0),
                                1.0, decay="coupled", nu=0.1, schedule=0.5)


@pytest.mark.cuda
def test_decay_flows_on_cuda_match_cpu():
    w0 = 0.3 + 0.1 * torch.rand(16, 1, 3, dtype=torch.float64)
    q = torch.linspace(1.0, 2.0, 16, dtype=torch.float64)
    for decay in ("decoupled", "coupled"):
        cpu = simulate_parameter_flow(w0, q, SeparableQuadratic(1.0), 3.0, decay=decay, nu=0.3, rtol=1e-12, atol=1e-14)
        gpu = simulate_parameter_flow(w0, q, SeparableQuadratic(1.0), 3.0, decay=decay, nu=0.3, rtol=1e-12,
                                      atol=1e-14, device="cuda")
        torch.testing.assert_close(gpu.x.cpu(), cpu.x, rtol=1e-9, atol=1e-12)


def test_a_trajectory_does_not_depend_on_its_batch():
    """q = 1 Filippov sliding on a 50-coordinate regression: trajectory 6 run alone and next to
    trajectory 0 agree (before the exit-tie rule, a sliding surface whose exit fired could be
    re-admitted on a rounding-level |mu| < 1 and the two runs differed by 2e-3)."""
    from verify.bench import regression_problem

    X, y, w0 = regression_problem(10)
    loss = LinearRegression(X, y)
    kw = dict(decay="decoupled", nu=0.0, rtol=1e-12, atol=1e-14)
    pair = simulate_parameter_flow(w0[[0, 6]], 1.0, loss, 0.5, **kw)
    alone = simulate_parameter_flow(w0[6:7], 1.0, loss, 0.5, **kw)
    assert pair.ok() and alone.ok()
    assert float((pair.x[1] - alone.x[0]).abs().max() / alone.x.abs().max()) < 1e-10


def test_a_surface_just_left_is_not_readmitted_off_its_surface():
    """q = 1 regression, trajectory 2: at t = 0.48123 coordinate 46 leaves sliding (moving off
    at rate 1.6e-2); the next event, 1.5e-6 later, found it 2.3e-8 off, inside the band
    1e3 rtol |grad f(x0)|, and re-admitted it, so it slid 2.3e-8 off its surface: x differed
    from the exact flow by 1.8e-7 at rtol 1e-10. A surface within the band now counts as
    reached only while the field carries the state towards it."""
    from verify.bench import regression_problem

    X, y, w0 = regression_problem(10)
    loss = LinearRegression(X, y)
    smooth = simulate_parameter_flow(w0[2:3], 1.0, loss, 0.5, decay="decoupled", nu=0.0, rtol=1e-10, atol=1e-12)
    exact = simulate_sign_flow(w0[2:3], loss, 0.5)
    assert smooth.ok() and exact.ok()
    # the exact flow integrates its sliding phases at rtol 1e-12; allow a global error of 100 rtol
    assert float((smooth.x - exact.x).abs().max() / exact.x.abs().max()) < 100 * 1e-10


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_equivalent_control_on_a_rank_deficient_consistent_system_is_the_minimum_norm_one(seed):
    """Duplicate sliding surfaces not folded into groups (the opposite gradients ``d_i f`` and
    ``-d_i f`` of a coordinate's two branches under decoupled decay) make ``M_AA`` singular with a
    consistent right-hand side. An LU solve then returns
    bounded multipliers whose null-space part is rounding noise times 1/pivot (found: the sliding
    field of a ``verify.experiments`` batch changed by 2.7e-6 under a 1e-14 perturbation, and
    its steps collapsed); the multipliers must be the minimum-norm ones of the column-equilibrated
    system instead (:func:`numerics.filippov.equivalent_control`)."""
    g = torch.Generator().manual_seed(seed)
    K = 5
    Q = torch.linalg.qr(torch.randn(K, K, generator=g, dtype=torch.float64))[0]
    lam = torch.cat([0.5 + torch.rand(K - 1, generator=g, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)])
    M = (Q * lam) @ Q.T                                      # rank K - 1, rounding keeps it off exact 0
    c0 = M @ (0.3 * torch.randn(K, generator=g, dtype=torch.float64))   # consistent
    active = torch.ones(1, K, dtype=torch.bool)
    mu = equivalent_control(M[None], c0[None], active, torch.zeros(1, K, dtype=torch.float64))[0]
    scale = M.abs().amax(0)                                  # the column equilibration of the solve
    expected = (torch.linalg.pinv(M / scale, rtol=1e-10) @ c0) / scale
    assert float((mu - expected).abs().max()) <= 1e-9 * float(expected.abs().max())


def test_balanced_coupled_sliding_shares_one_multiplier_per_coordinate():
    """Coupled decay, q = 1, the two-branch model from a balanced start: where a coordinate's
    u-branch slides (``d_i f = -nu``) its v-branch sits at 0 with ``-d_i f = nu``, and the two
    surfaces ``z_vk = nu (v_k1 + v_k2)`` of its factors coincide: the per-factor ``M_AA`` is
    singular, the integrator's stage perturbations split the factors' multipliers and the steps
    collapsed (the old rule spent 253 steps to reach t = 0.53 here; the experiments' L = 2
    coupled batches stopped on their budget). Equal factors share one multiplier
    (:meth:`numerics.decay.DecayFlow.groups`): the run finishes within a step budget, the
    balance is kept to the last bit, and the end state satisfies the Filippov conditions."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(2, 4, generator=g, dtype=torch.float64)
    loss = LinearRegression(X, X @ torch.tensor([1.0, -0.8, 0, 0], dtype=torch.float64))
    w0 = torch.full((1, 4, 2), 0.1, dtype=torch.float64)
    rtol = 1e-9
    res = simulate_two_branch_flow(w0, w0, 1.0, loss, 5.0, decay="coupled", nu=1e-3, rtol=rtol, atol=1e-12,
                                   max_steps=100)
    assert res.ok()
    flow, w, t = res.system, res.w, res.t
    assert bool((w[..., 0].abs() == w[..., 1].abs()).all())
    p = flow.initialize(torch.cat([w0, w0], 1).reshape(1, -1), res.solution.params)     # z_scale
    p = p.with_switching(res.solution.switching)
    x = w.prod(-1)
    grad, r, nu = flow.loss.grad(x, p), exclusive_prod(w), flow.nu(t, p)
    slide, side = p.switching["slide"], p.switching["side"]
    z = flow.surfaces(w, grad, r, nu)
    M, c0 = flow.control(t, w, x, grad, r, nu, p)
    # the degenerate case is reached: per factor, the sliding system is singular
    s = torch.linalg.svdvals(M[0][slide[0]][:, slide[0]])
    assert float(s[-1]) <= 1e-12 * float(s[0])
    mu = equivalent_control(M, c0, slide, side, flow.groups(w))
    rate = surface_rate(M, c0, torch.where(slide, mu, side))
    scale = float((M.abs() @ torch.where(slide, mu, side).abs()[..., None]).max())
    assert float(z[slide].abs().max()) <= 100 * rtol * float(p["z_scale"].max())    # on the surfaces
    assert float(rate[slide].abs().max()) <= 1e-12 * scale                         # the field is tangent
    assert float(mu[slide].abs().max()) <= 1                                       # a convex combination
    shared = mu.reshape(1, 8, 2)
    assert bool((shared[..., 0].abs() == shared[..., 1].abs()).all())              # one multiplier per coordinate


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_groups_fold_is_the_galerkin_projection_on_the_shares(seed):
    """:class:`numerics.filippov.Groups` folds ``(M, c0)`` to ``(P^T M P, P^T c0)`` with
    ``P_kg = s_k`` for ``k`` in group ``g`` (groups numbered by their leaders, padded to the
    most groups of a row), and unfolds ``v`` to ``P v``."""
    g = torch.Generator().manual_seed(seed)
    B, K = 3, 6
    lead = torch.randint(0, K, (B, K), generator=g)
    lead = torch.minimum(lead, torch.arange(K))                  # a leader precedes its members
    for _ in range(K):
        lead = lead.gather(1, lead)                              # ... and leads itself
    share = torch.where(torch.rand(B, K, generator=g) < 0.5, -1.0, 1.0).double()
    share = torch.where(lead == torch.arange(K), 1.0, share)
    leaders = [sorted(set(row)) for row in lead.tolist()]
    G = max(map(len, leaders))
    P = torch.zeros(B, K, G, dtype=torch.float64)
    for b in range(B):
        for k in range(K):
            P[b, k, leaders[b].index(int(lead[b, k]))] = share[b, k]
    M = torch.randn(B, K, K, generator=g, dtype=torch.float64)
    c0 = torch.randn(B, K, generator=g, dtype=torch.float64)
    groups = Groups(lead, share)
    Mf, cf = groups.fold(M, c0)
    torch.testing.assert_close(Mf, P.mT @ M @ P, rtol=1e-14, atol=1e-14)
    torch.testing.assert_close(cf, (P.mT @ c0[..., None])[..., 0], rtol=1e-14, atol=1e-14)
    v = torch.randn(B, G, generator=g, dtype=torch.float64)
    torch.testing.assert_close(groups.unfold(v), (P @ v[..., None])[..., 0], rtol=0, atol=0)
    torch.testing.assert_close(groups.leaders(c0), (P.mT.abs() @ (c0 * (lead == torch.arange(K)))[..., None])[..., 0])

"""Simulated flows: conservation, arrival at the minimizer, sliding, bad input, devices."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import theory
from numerics._generated import torch_kernels as K
from numerics.losses import LinearRegression, SeparableQuadratic
from numerics.simulate import simulate_mirror_flow, simulate_parameter_flow


@settings(max_examples=15)
@given(st.floats(1.0, 2.0), st.integers(2, 8), st.floats(0.05, 1.5), st.floats(0.0, 0.6),
       st.integers(0, 2**31 - 1))
def test_imbalance_is_conserved_along_simulated_paths(q, L, alpha, imbalance, seed):
    """BAL-1 on random starts w_k = alpha (1 + imbalance * u_k), mixed target signs."""
    g = torch.Generator().manual_seed(seed)
    u = 2 * torch.rand(2, 2, L, generator=g, dtype=torch.float64) - 1
    w0 = alpha * (1 + imbalance * u)
    y = 3 * torch.rand(2, 2, generator=g, dtype=torch.float64) - 1
    res = simulate_parameter_flow(w0, q, SeparableQuadratic(y), 0.5, rtol=1e-10, atol=1e-12,
                                  max_steps=20_000)
    assert res.ok(), res.solution.failures()
    inv0 = K.bal1_invariant(w0[..., 1:], w0[..., :1], q)
    inv1 = K.bal1_invariant(res.w[..., 1:], res.w[..., :1], q)
    scale = (w0.abs() ** q).amax()
    assert float((inv1 - inv0).abs().max() / scale) < 1e-8


@pytest.mark.parametrize("q", [1.5, 1.0, 1.25])
def test_flow_integrates_past_arrival_and_stays_at_the_minimizer(guarded, q):
    """The q < 2 flow reaches y in finite time and must not hang or chatter there."""
    L, alpha = 3, 0.5
    w0 = torch.full((1, 1, L), alpha, dtype=torch.float64)
    t_arr = theory.arrival_time(L, q, alpha, 1.0)
    res = guarded(simulate_parameter_flow, w0, q, SeparableQuadratic(1.0), 3.0, rtol=1e-12, atol=1e-14,
                  max_steps=300)      # no chattering at the minimizer: <= 60 steps (accepted + rejected)
    assert res.ok() and float(res.t[0]) == 3.0
    assert abs(float(res.x[0, 0]) - 1.0) < 1e-10
    assert bool(res.solution.switching["frozen"].all())
    # near arrival d|g|^(2-q)/dt = -3(2-q) (g = x - 1, w ~ 1), so a global error E on g moves the
    # located crossing by E^(2-q) / (3(2-q)): for q > 1 the arrival time is conditioned like
    # rtol^(2-q). E = 100 rtol allows the local tolerance of each of up to 100 steps to add up.
    dt = (100 * 1e-12) ** (2 - q) / (3 * (2 - q))
    assert abs(float(res.solution.switching["t_slide"][0, 0]) - t_arr) < dt


def test_parameter_flow_matches_mirror_flow():
    L, q = 3, 1.5
    w0 = torch.full((2, 1, L), 0.4, dtype=torch.float64)
    par = simulate_parameter_flow(w0, q, SeparableQuadratic(1.0), 0.5, rtol=1e-12, atol=1e-14)
    mir = simulate_mirror_flow(w0.prod(-1), q, SeparableQuadratic(1.0), lambda x, p: K.mir1_hess(x, L, q),
                               0.5, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(par.x, mir.x, rtol=1e-10, atol=0)


def test_regression_loss_runs_with_q_between_one_and_two():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(5, 8, generator=g, dtype=torch.float64)
    y = X @ torch.tensor([1.0, 0, 0, -0.5, 0, 0, 0, 0], dtype=torch.float64)
    w0 = torch.full((2, 8, 2), 0.3, dtype=torch.float64)
    res = simulate_parameter_flow(w0, torch.tensor([1.5, 2.0], dtype=torch.float64), LinearRegression(X, y), 5.0)
    assert res.ok()
    p = {"y": y.expand(2, -1)}
    assert bool((LinearRegression(X, y).value(res.x, p) < LinearRegression(X, y).value(w0.prod(-1), p)).all())


@pytest.mark.parametrize("kwargs, name", [
    (dict(q=2.5), "q"),
    (dict(q=0.5), "q"),
    (dict(t_end=-1.0), "t_end"),
    (dict(rtol=0.0), "rtol"),
    (dict(w0=torch.ones(2, 3)), "w0"),
    (dict(w0=torch.full((1, 1, 2), float("nan"))), "w0"),
    (dict(device="tpu"), "device"),
])
def test_bad_input_names_the_argument(kwargs, name):
    args = dict(w0=torch.full((1, 1, 2), 0.5, dtype=torch.float64), q=1.5,
                loss=SeparableQuadratic(1.0), t_end=1.0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        simulate_parameter_flow(**args)


def test_cuda_unavailable_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ValueError, match="CUDA is not available"):
        simulate_parameter_flow(torch.full((1, 1, 2), 0.5), 1.5, SeparableQuadratic(1.0), 1.0, device="cuda")


@pytest.mark.cuda
def test_cuda_matches_cpu():
    w0 = 0.3 + 0.1 * torch.rand(64, 1, 3, dtype=torch.float64)
    q = torch.linspace(1.0, 2.0, 64, dtype=torch.float64)
    cpu = simulate_parameter_flow(w0, q, SeparableQuadratic(1.0), 3.0, rtol=1e-12, atol=1e-14)
    gpu = simulate_parameter_flow(w0, q, SeparableQuadratic(1.0), 3.0, rtol=1e-12, atol=1e-14, device="cuda")
    torch.testing.assert_close(gpu.x.cpu(), cpu.x, rtol=1e-10, atol=1e-12)

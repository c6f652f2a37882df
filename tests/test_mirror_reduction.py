"""The MIR-1 reduction: a balanced, undecayed deep diagonal flow integrated in its n mirror
coordinates equals the parameter flow in its nL factors; when the reduction is used."""

from __future__ import annotations

import pytest
import torch

from numerics.flows import balanced_start
from numerics.integrate import EVENT, Event
from numerics.losses import LinearRegression, SeparableQuadratic
from numerics.simulate import ReducedResult, simulate_parameter_flow

F64 = torch.float64


def _problem(seed=0, k=10, N=6):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(N, k, generator=g, dtype=F64)
    truth = torch.zeros(k, dtype=F64)
    truth[:3] = torch.tensor([1.0, -0.8, 0.5], dtype=F64)
    return LinearRegression(X, X @ truth)


@pytest.mark.parametrize("q", [1.5, 2.0])
def test_reduced_flow_matches_the_parameter_flow(q):
    """Signed balanced start (factor signs -, +, - on some coordinates), L = 3: final x of both
    integrations agree to 1e-8 relative at rtol 1e-12 each (at rtol 1e-10 the global error of the
    non-Lipschitz q = 1.5 flow is 3e-7), and so do the factors, through the map
    ``w = sign |x|^(1/3)`` that the reduced result applies: ``|dw| <= |dx| / (3 |x|^(2/3))``.
    (A flat 1e-8 of max|w| on the factors is stricter than the x bar implies where |x| is small:
    Rodas5's error at rtol 1e-12 varies from 4e-9 to 2.3e-8 of max|w| with rtol in [0.8, 1.2]e-12,
    with either linear solve.)"""
    loss = _problem()
    signs = torch.ones(2, 10, 3, dtype=F64)
    signs[:, 1::3, 0] = -1
    signs[1, ::4, 2] = -1
    w0 = 0.3 * signs
    tol = dict(rtol=1e-12, atol=1e-14)
    red = simulate_parameter_flow(w0, q, loss, 2.0, reduce=True, **tol)
    full = simulate_parameter_flow(w0, q, loss, 2.0, reduce=False, method="dop853", **tol)
    assert isinstance(red, ReducedResult) and red.ok() and full.ok()
    assert red.state.shape == (2, 10) and red.w.shape == (2, 10, 3)
    scale = float(full.x.abs().max())
    assert float((red.x - full.x).abs().max()) <= 1e-8 * scale
    bound = 1e-8 * scale / (3 * full.x.abs() ** (2 / 3))
    assert bool(((red.w - full.w).abs() <= bound[..., None]).all())


def test_when_the_reduction_is_used():
    loss = _problem()
    w0 = torch.full((1, 10, 3), 0.3, dtype=F64)
    unbalanced = w0.clone()
    unbalanced[0, 0, 0] = 0.31
    assert bool(balanced_start(w0).all()) and not bool(balanced_start(unbalanced).any())
    short = dict(t_end=0.1)
    assert isinstance(simulate_parameter_flow(w0, 1.8, loss, **short), ReducedResult)        # stiff, exact
    assert isinstance(simulate_parameter_flow(w0, 1.5, loss, **short), ReducedResult)        # every 1 < q < 2
    assert not isinstance(simulate_parameter_flow(w0, 2.0, loss, **short), ReducedResult)    # not stiff
    assert not isinstance(simulate_parameter_flow(unbalanced, 1.8, loss, **short), ReducedResult)
    assert not isinstance(simulate_parameter_flow(w0, 1.8, loss, decay="decoupled", nu=0.1, **short), ReducedResult)
    assert not isinstance(simulate_parameter_flow(w0, 1.8, loss, dense=True, **short), ReducedResult)
    assert not isinstance(simulate_parameter_flow(w0, 1.8, loss, reduce=False, **short), ReducedResult)
    sep = torch.full((1, 1, 3), 0.3, dtype=F64)
    assert not isinstance(simulate_parameter_flow(sep, 1.5, SeparableQuadratic(1.0), **short), ReducedResult)
    with pytest.raises(ValueError, match="balanced"):
        simulate_parameter_flow(unbalanced, 1.5, loss, reduce=True, **short)


def test_depth_one_reduction_crosses_zero_like_the_parameter_flow():
    """L = 1 has no saddle at x_i = 0 (x = w): on a one-sample regression whose limit has
    coordinates of the other sign than the start (IB-2's problem), the reduced flow must not stop
    them at 0. Before the fix it did (error 1.47 relative); both integrations at rtol 1e-12."""
    g = torch.Generator().manual_seed(42)
    z = torch.randn(1, 6, generator=g, dtype=F64)
    loss = LinearRegression(z, torch.tensor([3.0], dtype=F64))
    w0 = torch.full((1, 6, 1), 0.3, dtype=F64)
    tol = dict(rtol=1e-12, atol=1e-14, max_steps=50_000)
    red = simulate_parameter_flow(w0, 1.5, loss, 60.0, reduce=True, **tol)
    full = simulate_parameter_flow(w0, 1.5, loss, 60.0, reduce=False, **tol)
    assert red.ok() and full.ok()
    assert bool((full.x < 0).any())                       # the case: some coordinates change sign
    assert float((red.x - full.x).abs().max()) <= 1e-8 * float(full.x.abs().max())
    assert torch.equal(red.w[..., 0], red.x)


def test_events_see_the_factors_under_the_reduction():
    """An event written for the parameter flow's state (flattened factors ``(B, nL)``) fires at the
    same time when the flow is integrated in mirror coordinates: its function reads the factors
    reconstructed from ``x``. Both at rtol 1e-12; the crossing is located to 1e-8."""
    loss = _problem()
    w0 = torch.full((2, 10, 3), 0.3, dtype=F64)
    w0[1] *= 0.5

    def loss_below(t, state, p):                 # f(prod_k w_k) falls below 20 % of its start
        x = state.reshape(state.shape[0], 10, 3).prod(-1)
        return loss.value(x, p) - 0.2 * p["f0"]
    tol = dict(rtol=1e-12, atol=1e-14, events=[Event(loss_below, terminal=True, direction=-1)],
               params={"f0": loss.value(w0.prod(-1), loss.params(2, "cpu"))})
    red = simulate_parameter_flow(w0, 1.5, loss, 50.0, **tol)
    full = simulate_parameter_flow(w0, 1.5, loss, 50.0, reduce=False, **tol)
    assert isinstance(red, ReducedResult) and not isinstance(full, ReducedResult)
    assert bool((red.solution.status == EVENT).all()) and bool((full.solution.status == EVENT).all())
    assert float((red.t - full.t).abs().max()) <= 1e-8 * float(full.t.max())
    assert float((red.w - full.w).abs().max()) <= 1e-7 * float(full.w.abs().max())

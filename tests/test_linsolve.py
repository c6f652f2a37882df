"""The linear solves of the Rosenbrock step (:mod:`numerics.integrate.linsolve`): the Woodbury
solve of a diagonal-plus-low-rank Jacobian against the dense LU of the same matrix, its fallback
where the diagonal is unsafe, and the exponential loss's factored Hessian."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from numerics.integrate.linsolve import DiagonalPlusLowRank, dense_solver, solver, woodbury_solver
from numerics.flows import BranchLoss
from numerics.losses import ExponentialLoss, LinearRegression

F64 = torch.float64


def _random(seed, B=3, n=9, r=4, d_scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return DiagonalPlusLowRank(d_scale * torch.randn(B, n, generator=g, dtype=F64),
                               torch.rand(B, n, generator=g, dtype=F64) * 10,
                               torch.randn(n, r, generator=g, dtype=F64),
                               torch.rand(B, r, generator=g, dtype=F64)), torch.randn(B, n, generator=g, dtype=F64)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), log_shift=st.floats(0.5, 8.0), negate=st.booleans())
def test_woodbury_equals_the_dense_lu(seed, log_shift, negate):
    """Both solve ``(shift I - J) k = v``; for the flows' sign (``-1``, ``a, c >= 0``) with a safe
    diagonal the small matrix has eigenvalues >= 1 and the two agree to rounding (1e-10 relative
    leaves 1e5 ulp for the condition of ``W``, at most ``1 + |J| / shift``)."""
    J, v = _random(seed)
    J = -J if negate else J
    shift = torch.full((3,), 10.0 ** log_shift, dtype=F64)
    solve = woodbury_solver(J, shift)
    expected = dense_solver(J.dense(), shift)(v)
    if solve is None:                                  # unsafe diagonal: the caller falls back
        assert bool((shift[:, None] - J.d < 0.5 * shift[:, None]).any())
        return
    k = solve(v)
    assert float((k - expected).abs().max() / expected.abs().max()) <= 1e-10
    W = -J.dense()
    W.diagonal(dim1=-2, dim2=-1).add_(shift[:, None])
    assert float((W @ k[..., None])[..., 0].sub(v).abs().max() / v.abs().max()) <= 1e-10


def test_unsafe_diagonal_falls_back_to_the_dense_solve():
    J, v = _random(1, d_scale=50.0)
    shift = torch.full((3,), 20.0, dtype=F64)           # some d_i > 10 = shift / 2
    assert woodbury_solver(J, shift) is None
    assert torch.equal(solver(J, shift)(v), dense_solver(J.dense(), shift)(v))


def test_exponential_loss_hessian_factor_matches_its_hessian():
    g = torch.Generator().manual_seed(3)
    Z = torch.randn(5, 8, generator=g, dtype=F64)
    labels = torch.tensor([1.0, -1.0, 1.0, 1.0, -1.0], dtype=F64)
    loss = ExponentialLoss(Z, labels)
    x = torch.randn(2, 8, generator=g, dtype=F64)
    p = loss.params(2, "cpu")
    U, c = loss.hess_factor(x, p)
    assert torch.allclose((U * c[:, None, :]) @ U.T, loss.hess(x, p), rtol=1e-13, atol=1e-15)


def test_branch_loss_hessian_factor_matches_its_hessian():
    g = torch.Generator().manual_seed(4)
    base = LinearRegression(torch.randn(3, 5, generator=g, dtype=F64), torch.randn(3, generator=g, dtype=F64))
    loss = BranchLoss(base, 5)
    ab = torch.randn(2, 10, generator=g, dtype=F64)
    p = loss.params(2, "cpu")
    U, c = loss.hess_factor(ab, p)
    assert U.shape == (10, 3)
    assert torch.allclose((U * c[:, None, :]) @ U.T, loss.hess(ab, p), rtol=1e-13, atol=1e-15)

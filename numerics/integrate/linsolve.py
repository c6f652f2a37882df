"""The linear solves of an implicit or Rosenbrock step: ``(shift I - J) k = r`` for a batch.

A Jacobian is either a dense ``(B, n, n)`` tensor (one batched LU, ``n^3/3`` flops per row) or a
:class:`DiagonalPlusLowRank` ``J = diag(d) + s diag(a) U diag(c) U^T`` with a shared ``U`` of shape
``(n, r)``, which is what a mirror flow on a loss with a rank-``r`` Hessian ``H = U diag(c) U^T``
has (``dx_i/dt = -phi_q(g_i) M(x_i)``: ``J = -diag(phi_q(g) M') - diag(phi_q'(g) M) H``; linear
regression on ``N`` samples has ``U = X^T``, ``r = N``). With ``D = diag(shift - d)``,
``A = diag(a)``, ``C = diag(c)`` the Woodbury identity gives

    ``(D - s A U C U^T)^{-1} v = u + s D^{-1} A U C S^{-1} U^T u``,  ``u = D^{-1} v``,
    ``S = I_r - s U^T D^{-1} A U C``:

one ``(B r, n) x (n, r)`` GEMM to form ``S`` and an ``r x r`` LU instead of an ``n x n`` one; each
solve is two products with the shared ``U``. For ``s = -1`` and ``a, c >= 0``, ``D > 0`` the matrix
``S`` is similar to ``I + C^(1/2) U^T A D^{-1} U C^(1/2)``, whose eigenvalues are ``>= 1``: the
small solve is well conditioned. The identity divides by ``D``; a step whose diagonal is not
safely positive (some ``shift - d_i < shift / 2``: an unstable diagonal rate comparable to
``1/h``) is solved densely instead, so that no cancellation against a near-singular ``D``
enters the stages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

SAFE_DIAGONAL = 0.5    # the Woodbury path needs shift - d_i >= SAFE_DIAGONAL * shift for every i


@dataclass(frozen=True)
class DiagonalPlusLowRank:
    """``J = diag(d) + sign diag(a) U diag(c) U^T``: ``d``, ``a`` ``(B, n)``, ``U`` ``(n, r)``, ``c`` ``(B, r)``."""

    d: torch.Tensor
    a: torch.Tensor
    U: torch.Tensor
    c: torch.Tensor
    sign: float = -1.0

    def __neg__(self) -> "DiagonalPlusLowRank":
        return DiagonalPlusLowRank(-self.d, self.a, self.U, self.c, -self.sign)

    def dense(self) -> torch.Tensor:
        """The ``(B, n, n)`` matrix."""
        J = self.sign * self.a[..., None] * ((self.U * self.c[:, None, :]) @ self.U.T)
        J.diagonal(dim1=-2, dim2=-1).add_(self.d)
        return J


Solve = Callable[[torch.Tensor], torch.Tensor]


def dense_solver(J: torch.Tensor, shift: torch.Tensor) -> Solve:
    """``r -> (diag(shift) - J)^{-1} r`` by one batched LU (``shift`` ``(B,)``)."""
    W = -J
    W.diagonal(dim1=-2, dim2=-1).add_(shift[:, None])
    lu, piv = torch.linalg.lu_factor_ex(W)[:2]
    return lambda r: torch.linalg.lu_solve(lu, piv, r[..., None])[..., 0]


def woodbury_solver(J: DiagonalPlusLowRank, shift: torch.Tensor) -> Solve | None:
    """The Woodbury solve of the module docstring, or ``None`` where its diagonal is not safe."""
    D = shift[:, None] - J.d
    if not bool((D >= SAFE_DIAGONAL * shift[:, None]).all()):
        return None
    w = J.a / D                                          # diag(D^{-1} A)
    S = -J.sign * ((J.U.T * w[:, None, :]) @ J.U) * J.c[:, None, :]
    S.diagonal(dim1=-2, dim2=-1).add_(1.0)
    lu, piv = torch.linalg.lu_factor_ex(S)[:2]

    def solve(v):
        u = v / D
        z = torch.linalg.lu_solve(lu, piv, (u @ J.U)[..., None])[..., 0]
        return u + J.sign * w * ((J.c * z) @ J.U.T)
    return solve


def solver(J, shift: torch.Tensor) -> Solve:
    """``r -> (diag(shift) - J)^{-1} r`` for a dense or :class:`DiagonalPlusLowRank` ``J``."""
    if isinstance(J, DiagonalPlusLowRank):
        return woodbury_solver(J, shift) or dense_solver(J.dense(), shift)
    return dense_solver(J, shift)

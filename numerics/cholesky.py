"""Cholesky factor of a principal submatrix ``H_SS`` under insertion and removal of one index.

``R`` is upper triangular with ``R^T R = H_SS`` for the indices ``S`` in insertion order.

* insert ``j`` (appended last): ``r = R^{-T} H_Sj``, ``rho = sqrt(H_jj - |r|^2)``, and ``R``
  gains the column ``(r, rho)``: ``O(m^2)``;
* remove the index in position ``p``: deleting row and column ``p`` leaves the trailing block
  ``R_33`` with ``R_33'^T R_33' = R_33^T R_33 + r r^T`` (``r = R[p, p+1:]``), a rank-one
  update by Givens rotations: ``O(m^2)``.

No refactorization: a sliding set that gains or loses one coordinate per event costs
``O(|S|^2)`` per event. An insertion whose pivot ``rho^2`` falls below ``SINGULAR`` times
``H_jj`` is refused (the enlarged ``H_SS`` is numerically singular).
"""

from __future__ import annotations

import numpy as np
from scipy.linalg.lapack import dtrtrs

SINGULAR = 1e-10     # relative pivot rho^2 / H_jj below which an insertion is refused


def _solve(R, b, trans):
    """``R^{-1} b`` (``trans = 0``) or ``R^{-T} b`` (``trans = 1``) for upper triangular ``R``."""
    x, info = dtrtrs(R, b, lower=0, trans=trans)
    if info != 0:
        raise np.linalg.LinAlgError(f"singular triangular factor (info {info})")
    return x


def rank_one_update(R, x):
    """In place: ``R`` upper triangular with ``R^T R + x x^T`` (``x`` is overwritten)."""
    for k in range(R.shape[0]):
        r = np.hypot(R[k, k], x[k])
        c, s = r / R[k, k], x[k] / R[k, k]
        R[k, k] = r
        R[k, k + 1:] = (R[k, k + 1:] + s * x[k + 1:]) / c
        x[k + 1:] = c * x[k + 1:] - s * R[k, k + 1:]


class IncrementalCholesky:
    """``R^T R = H[S][:, S]`` for a growing and shrinking index list ``S`` (see the module)."""

    def __init__(self, H):
        self.H = H
        self.index: list[int] = []
        self.R = np.zeros((0, 0))

    def __len__(self):
        return len(self.index)

    def insert(self, j: int) -> bool:
        """Append ``j``; ``False`` (and no change) when ``H_SS`` would become singular."""
        m = len(self.index)
        r = _solve(self.R, self.H[self.index, j], 1) if m else np.zeros(0)
        rho2 = self.H[j, j] - r @ r
        if not rho2 > SINGULAR * abs(self.H[j, j]):
            return False
        R = np.zeros((m + 1, m + 1))
        R[:m, :m], R[:m, m], R[m, m] = self.R, r, np.sqrt(rho2)
        self.R = R
        self.index.append(j)
        return True

    def remove(self, j: int) -> None:
        p = self.index.index(j)
        R = np.delete(np.delete(self.R, p, 0), p, 1)
        x = self.R[p, p + 1:].copy()
        if len(x):
            tail = R[p:, p:]
            rank_one_update(tail, x)
            R[p:, p:] = tail
        self.R = R
        del self.index[p]

    def solve(self, b):
        """``H_SS^{-1} b`` for ``b`` ``(m,)`` or ``(m, k)``."""
        if not self.index:
            return np.zeros_like(b)
        return _solve(self.R, _solve(self.R, b, 1), 0)


__all__ = ["IncrementalCholesky", "rank_one_update", "SINGULAR"]

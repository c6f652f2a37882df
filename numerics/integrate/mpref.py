"""An mpmath reference integrator for small cases (arbitrary precision, Taylor series).

``mpmath.odefun`` integrates ``y' = F(t, y)`` by Taylor series of adaptive degree at the
working precision; it is slow (seconds per trajectory) and only valid where the field is
smooth along the path (before a switching surface is reached), which is what the tests
use it for: an independent, high-precision yardstick for the batched DOP853.
"""

from __future__ import annotations

import mpmath


def mp_phi(z, q):
    """``phi_q(z) = sign(z) |z|^(q-1)`` in mpmath."""
    return mpmath.sign(z) * abs(z) ** (q - 1)


def deep_diagonal_field(q, y):
    """``dw_k/dt = -phi_q((x - y) prod_{j != k} w_j)`` for one coordinate (reference loss)."""
    q, y = mpmath.mpf(q), mpmath.mpf(y)

    def F(t, w):
        out = []
        for k in range(len(w)):
            others = mpmath.fprod(w[:k] + w[k + 1:])
            x = others * w[k]
            out.append(-mp_phi((x - y) * others, q))
        return out
    return F


def solve(F, t0, y0, times, dps: int = 30):
    """States at ``times`` (list) of ``y' = F(t, y)`` from ``y0`` at ``t0``, as mpf lists."""
    with mpmath.workdps(dps):
        sol = mpmath.odefun(F, mpmath.mpf(t0), [mpmath.mpf(v) for v in y0])
        return [list(sol(mpmath.mpf(t))) for t in times]

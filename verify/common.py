"""Simulation helpers shared by the checks: starts, reference runs, tolerances.

Tolerances are set from the integrator's requested accuracy: simulations run at
``RTOL = 1e-12`` (``ATOL = 1e-14``), and a quantity accumulated over a run is trusted to
``1e3 * RTOL = 1e-9`` relative (global error <= number of steps x local error, with
hundreds of steps).
"""

from __future__ import annotations

import torch

from numerics.integrate import Event
from numerics.losses import SeparableQuadratic
from numerics.simulate import simulate_parameter_flow

RTOL, ATOL = 1e-12, 1e-14
RTOL_TIGHT = 1e-13          # conserved quantities: drift <= steps x local error
GLOBAL = 1e3 * RTOL           # trusted relative accuracy of accumulated quantities


def balanced_start(alpha, n: int, L: int, device="cpu") -> torch.Tensor:
    """``w_ik(0) = alpha`` for every factor: shape ``(B, n, L)``."""
    a = torch.as_tensor(alpha, dtype=torch.float64, device=device).reshape(-1, 1, 1)
    return a.expand(-1, n, L).clone()


def reference_runs(q, L: int, alpha, y: float, t_end, *, ctx, events=(), **kw):
    """Balanced reference problem ``f = (x - y)^2/2`` for a batch of ``(q, alpha)``."""
    w0 = balanced_start(alpha, 1, L, ctx.device)
    return simulate_parameter_flow(w0, q, SeparableQuadratic(y), t_end, device=ctx.device,
                                   events=events, rtol=RTOL, atol=ATOL, **kw)


def hitting_event(levels, L: int, direction: int = 0, terminal: bool = False):
    """Events ``x = level`` for each of ``levels`` (one component each), ``n = 1``."""
    lv = torch.as_tensor(levels, dtype=torch.float64)

    def fn(t, y, p):
        return y[:, :L].prod(-1, keepdim=True) - lv.to(y.device)
    return Event(fn, terminal=terminal, direction=direction, name="hitting")


def fmt(v: float, digits: int = 6) -> str:
    return f"{v:.{digits}g}"

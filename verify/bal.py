"""BAL: balance laws along simulated parameter-space flows."""

from __future__ import annotations

import torch

from numerics._generated import torch_kernels as K
from numerics.flows import simulate_parameter_flow
from numerics.losses import SeparableQuadratic

from .common import ATOL, RTOL_TIGHT, fmt
from .harness import check

DRIFT_TOL = 1e-11


@check("BAL-1", "Without decay |w_k|^q - |w_j|^q is conserved for any loss (mixed signs, factors "
       "crossing zero, sliding at the minimizer)",
       tolerance="1e-11 relative to max_k |w_k(0)|^q: a conserved quantity drifts by the local errors "
                 "of the steps, each <= rtol 1e-13 of the state, over ~100 steps",
       mutation="invariant evaluated with exponent q + 0.5")
def bal1(ctx):
    gen = ctx.generator(1)
    worst = (0.0, None)
    qs = (1.0, 1.2, 1.5, 1.8, 2.0)
    for L in ((2, 3, 4, 6) if ctx.full else (2, 3, 4)):
        reps = 4
        qv = torch.tensor(qs, dtype=torch.float64).repeat_interleave(reps)
        B = len(qv)
        w0 = (0.2 + 0.8 * torch.rand(B, 3, L, generator=gen, dtype=torch.float64))
        w0 = w0 * torch.where(torch.rand(B, 3, L, generator=gen) < 0.3, -1.0, 1.0).double()
        y = 4 * torch.rand(B, 3, generator=gen, dtype=torch.float64) - 2
        t_eval = torch.linspace(0.25, 2.0, 8, dtype=torch.float64)
        res = simulate_parameter_flow(w0, qv, SeparableQuadratic(y), 2.0, device=ctx.device,
                                      rtol=RTOL_TIGHT, atol=ATOL, t_eval=t_eval).raise_on_failure()
        ws = res.solution.ys.reshape(B, len(t_eval), 3, L).cpu()
        qe = qv[:, None, None] + (0.5 if ctx.mutate else 0.0)
        inv0 = K.bal1_invariant(w0[..., 1:], w0[..., :1], qe)
        invt = K.bal1_invariant(ws[..., 1:], ws[..., :1], qe[..., None])
        scale = (w0.abs() ** qv[:, None, None]).amax((1, 2))
        drift = ((invt - inv0[:, None]).abs().amax((1, 2, 3)) / scale)
        i = int(drift.argmax())
        if not float(drift[i]) <= worst[0]:
            worst = (float(drift[i]), dict(L=L, q=float(qv[i])))
        if not bool(torch.isfinite(drift).all()):
            worst = (float("inf"), dict(L=L))
    return dict(prediction="drift 0", measured=f"drift {fmt(worst[0], 3)}", error=worst[0],
                tolerance=DRIFT_TOL, params=dict(worst_case=worst[1], qs=qs))

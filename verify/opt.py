"""OPT: the discrete optimizers of :mod:`numerics.optim` on ``nn.Module`` models, against the
flows they discretize (OPT-1) and against PyTorch's Adam/AdamW (OPT-2)."""

from __future__ import annotations

import math

import numpy as np
import torch

from numerics.geometry import phi
from numerics.losses import SeparableQuadratic
from numerics.optim import SignDescent, SteepestDescent
from numerics.simulate import simulate_parameter_flow

from .common import ATOL, RTOL, fmt
from .harness import check


class DeepDiagonal(torch.nn.Module):
    """``x_i = prod_k w_ik`` as a module: one parameter ``w`` of shape ``(n, L)``."""

    def __init__(self, w0):
        super().__init__()
        self.w = torch.nn.Parameter(torch.as_tensor(w0, dtype=torch.float64).clone())

    def forward(self):
        return self.w.prod(-1)


# (q, decay, nu): decay None is nu = 0; q = 1 only with decoupled decay (sign descent without
# decay, or with coupled decay, follows its flow exactly between sign changes: no O(eta) term)
OPT1_CASES = ((1.0, "decoupled", 0.5), (1.5, "decoupled", 0.5), (2.0, "decoupled", 0.5),
              (1.5, "coupled", 0.5), (2.0, "coupled", 0.5), (1.5, None, 0.0))
W0 = ((0.4, 0.6), (0.5, 0.3))
TARGET = (1.0, 0.8)


def _flow_endpoints(T, ctx):
    """``w(T)`` of the flow for every case (rtol 1e-12), ``(cases, n, L)``."""
    out = torch.empty(len(OPT1_CASES), 2, 2, dtype=torch.float64)
    for decay in ("decoupled", "coupled"):
        idx = [i for i, c in enumerate(OPT1_CASES) if (c[1] or "decoupled") == decay]
        qv = torch.tensor([OPT1_CASES[i][0] for i in idx], dtype=torch.float64)
        nuv = torch.tensor([OPT1_CASES[i][2] for i in idx], dtype=torch.float64)
        w0 = torch.tensor(W0, dtype=torch.float64).expand(len(idx), -1, -1)
        res = simulate_parameter_flow(w0, qv, SeparableQuadratic(TARGET), T, device=ctx.device, decay=decay,
                                      nu=nuv, rtol=RTOL, atol=ATOL, max_wall=60).raise_on_failure()
        out[idx] = res.w.cpu()
    return out


def _discrete(T, N, mutate):
    """``w`` after ``N`` steps of :class:`SteepestDescent` (``lr = T/N``), one parameter group
    per case; mutated: the decay applied without the learning-rate factor."""
    models = [DeepDiagonal(W0) for _ in OPT1_CASES]
    loss = SeparableQuadratic(TARGET)
    p = loss.params(1, "cpu")
    eta = T / N
    groups = [dict(params=m.parameters(), q=q, weight_decay=0.0 if mutate else nu, decoupled=decay != "coupled")
              for m, (q, decay, nu) in zip(models, OPT1_CASES)]
    opt = SteepestDescent(groups, lr=eta)
    for _ in range(N):
        opt.zero_grad()
        sum(loss.value(m()[None], p)[0] for m in models).backward()
        if mutate:                        # w <- w - eta phi_q(g) - nu w
            with torch.no_grad():
                for m, (q, _, nu) in zip(models, OPT1_CASES):
                    m.w -= nu * m.w
        opt.step()
    return torch.stack([m.w.detach() for m in models])


@check("OPT-1", "Discrete steepest descent (SteepestDescent, PyTorch decay convention, both decay "
       "forms) converges to its flow with error O(eta): fitted order within 0.9..1.1",
       tolerance="0.1 on the fitted log-log slope (error vs eta over eta = T/30 .. T/240, away from "
                 "switching surfaces, flow reference at rtol 1e-12)",
       mutation="the decay applied without the learning-rate factor (w <- w - eta phi_q(g) - nu w)")
def opt1(ctx):
    T, Ns = 0.3, (30, 60, 120, 240)
    ref = _flow_endpoints(T, ctx)
    errs = np.array([(_discrete(T, N, ctx.mutate) - ref).abs().amax((1, 2)).numpy() for N in Ns])
    etas = np.array([T / N for N in Ns])
    slopes = [float(np.polyfit(np.log(etas), np.log(errs[:, i]), 1)[0]) for i in range(len(OPT1_CASES))]
    dev = [abs(s - 1) if math.isfinite(s) else math.inf for s in slopes]
    i = int(np.argmax(dev))
    q, decay, nu = OPT1_CASES[i]
    return dict(prediction="order 1", measured=f"order {fmt(slopes[i], 4)}", error=dev[i], tolerance=0.1,
                params=dict(worst_case=dict(q=q, decay=decay, nu=nu), slopes=slopes, T=T, steps=Ns,
                            errors=errs.tolist()))


def _mlp():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2)).double()


@check("OPT-2", "PyTorch Adam/AdamW with beta1 = beta2 = 0 = sign descent (Adam's weight_decay: "
       "coupled; AdamW's: decoupled) step for step, up to the eps term lr eps / (|z| + eps)",
       tolerance="1e-6 relative to the predicted eps deviation (evaluated with Adam's own z, so "
                 "only rounding remains: ~steps x 1e-16 |w| against deviations >= 1e-10); every "
                 "step must also have the same signs",
       mutation="Adam with its default momentum beta1 = 0.9 (beta2 = 0)")
def opt2(ctx):
    gen = torch.Generator().manual_seed(7)
    X = torch.randn(32, 3, generator=gen, dtype=torch.float64)
    Y = torch.randn(32, 2, generator=gen, dtype=torch.float64)
    lr, eps, steps = 1e-3, 1e-8, 25
    worst, flips = (0.0, None), 0
    for name, wd, decoupled in (("Adam", 0.0, False), ("Adam", 0.1, False), ("AdamW", 0.1, True)):
        ours, theirs = _mlp(), _mlp()
        opt_ours = SignDescent(ours.parameters(), lr=lr, weight_decay=wd, decoupled=decoupled)
        cls = torch.optim.AdamW if decoupled else torch.optim.Adam
        opt_theirs = cls(theirs.parameters(), lr=lr, betas=(0.9 if ctx.mutate else 0.0, 0.0), eps=eps,
                         weight_decay=wd)
        pred = [torch.zeros_like(w) for w in ours.parameters()]
        for _ in range(steps):
            for model, opt in ((ours, opt_ours), (theirs, opt_theirs)):
                opt.zero_grad()
                ((model(X) - Y) ** 2).mean().backward()
            with torch.no_grad():   # Adam - ours = lr sign(z) eps/(|z| + eps) per step, z Adam's own
                for d, wa, wo in zip(pred, theirs.parameters(), ours.parameters()):
                    z = wa.grad + (0.0 if decoupled else wd) * wa
                    if not bool((phi(z, 1.0) == phi(wo.grad + (0.0 if decoupled else wd) * wo, 1.0)).all()):
                        flips += 1
                    d.mul_(1 - lr * wd if decoupled else 1.0).add_(lr * phi(z, 1.0) * eps / (z.abs() + eps))
            opt_ours.step()
            opt_theirs.step()
            meas = [a.detach() - b.detach() for a, b in zip(theirs.parameters(), ours.parameters())]
            scale = max(float(d.abs().max()) for d in pred)
            e = max(float((m - d).abs().max()) for m, d in zip(meas, pred)) / scale
            if not e <= worst[0]:
                worst = (e, dict(optimizer=name, weight_decay=wd, predicted=scale,
                                 measured=max(float(m.abs().max()) for m in meas)))
    case = worst[1]
    return dict(prediction=f"|dw|={fmt(case['predicted'], 6)}", measured=f"|dw|={fmt(case['measured'], 6)}",
                error=worst[0] if flips == 0 else math.inf, tolerance=1e-6,
                params=dict(worst_case=case, lr=lr, eps=eps, steps=steps, sign_disagreements=flips),
                note="" if flips == 0 else f"{flips} steps where Adam's and our signs differ")


__all__ = ["opt1", "opt2", "DeepDiagonal"]

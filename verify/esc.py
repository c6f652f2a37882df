"""ESC: saddle escape on the reference problem, predicted vs simulated."""

from __future__ import annotations

import math

import torch

import theory
from numerics._generated import torch_kernels as K
from numerics.losses import SeparableQuadratic
from numerics.simulate import simulate_parameter_flow

from .common import ATOL, GLOBAL, RTOL, balanced_start, fmt, hitting_event
from .harness import check, rel_err

Y, X1 = 1.0, 0.5


def escape_times(L, qs, alphas, ctx, target=X1):
    """Simulated times for the balanced flow from ``alpha`` to reach ``x = target``."""
    qs = torch.as_tensor(qs, dtype=torch.float64)
    alphas = torch.as_tensor(alphas, dtype=torch.float64)
    horizon = torch.tensor([2 * theory.escape_time(L, float(q), float(a), Y, target) + 1
                            for q, a in zip(qs, alphas)], dtype=torch.float64)
    w0 = balanced_start(alphas, 1, L, ctx.device)
    res = simulate_parameter_flow(w0, qs.to(ctx.device), SeparableQuadratic(Y), horizon.to(ctx.device),
                                  device=ctx.device, rtol=RTOL, atol=ATOL,
                                  events=[hitting_event([target], L, direction=1, terminal=True)])
    res.raise_on_failure()
    return res.solution.t_events[0][:, 0].cpu()


@check("ESC-1", "Escape time of the balanced flow = closed-form incomplete beta integral",
       tolerance="1e-9 relative: 1e3 x the integrator rtol 1e-12 (event located on the "
                 "7th-order dense output to machine precision)",
       mutation="closed form evaluated from the start alpha * 1.01")
def esc1(ctx):
    Ls = (1, 2, 3, 4, 5, 6) if ctx.full else (1, 2, 3, 4)
    qs = (1.0, 1.25, 4 / 3, 1.5, 1.75, 2.0)
    alphas = (0.3, 0.1, 0.03) if ctx.full else (0.3, 0.1)
    worst, series = (0.0, None), []
    for L in Ls:
        grid = [(q, a) for q in qs for a in alphas if a**L < X1]
        sim = escape_times(L, [g[0] for g in grid], [g[1] for g in grid], ctx)
        series += [dict(L=L, q=q, alpha=a, T=float(s)) for (q, a), s in zip(grid, sim)]
        scale = 1.01 if ctx.mutate else 1.0
        pred = torch.tensor([theory.escape_time(L, q, a * scale, Y, X1) for q, a in grid], dtype=torch.float64)
        for (q, a), s, p in zip(grid, sim, pred):
            e = rel_err(s, p)
            if not e <= worst[0]:
                worst = (e, (L, q, a, float(p), float(s)))
    L, q, a, p, s = worst[1]
    return dict(prediction=f"T={fmt(p, 12)}", measured=f"T={fmt(s, 12)}", error=worst[0],
                tolerance=GLOBAL, params=dict(worst_case=dict(L=L, q=q, alpha=a), Ls=Ls, qs=qs,
                                              alphas=alphas, y=Y, target=X1), series=dict(cases=series))


ESC2_GRID = ((1.0, 2), (1.0, 3), (1.0, 4), (1.25, 3), (1.5, 2), (1.5, 3), (1.5, 4), (4 / 3, 4),
             (2.0, 1), (2.0, 2), (2.0, 3), (2.0, 4))


@check("ESC-2", "Asymptotic class of T(alpha): fitted exponent L*beta = L - q(L-1) "
       "(bounded > 0, logarithmic = 0, polynomial < 0)",
       tolerance="1e-3 x max(1, |exponent|): the per-decade increments of T scale exactly like "
                 "alpha^(L beta) up to O(x0/y) <= 1e-4 and ~1e-8 relative integrator error",
       mutation="predicted exponent + 0.1 x max(1, |exponent|)")
def esc2(ctx):
    worst = (0.0, None)
    grid = ESC2_GRID + (((1.0, 6), (2.0, 5), (1.75, 3)) if ctx.full else ())
    for q, L in grid:
        alphas = (1e-4, 1e-5, 1e-6) if L == 1 else (1e-2, 1e-3, 1e-4)
        T = escape_times(L, [q] * 3, alphas, ctx)
        d1, d2 = T[1] - T[0], T[2] - T[1]
        fitted = float(torch.log(d2 / d1) / math.log(alphas[2] / alphas[1]))
        cls, pred = theory.escape_class(L, q)
        if ctx.mutate:
            pred = pred + 0.1 * max(1.0, abs(pred))
        err = abs(fitted - pred) / max(1.0, abs(pred))
        if not err <= worst[0]:
            worst = (err, (q, L, cls, pred, fitted))
    q, L, cls, pred, fitted = worst[1]
    return dict(prediction=f"{cls}, exponent {fmt(pred)}", measured=f"exponent {fmt(fitted)}",
                error=worst[0], tolerance=1e-3,
                params=dict(worst_case=dict(q=q, L=L), grid=grid, target=X1, y=Y))


@check("ESC-3", "Coercivity at the saddle: from (0, lambda, ..., lambda) x leaves at rate "
       "lambda^(q(L-1)) phi_q(y); for lambda < 1 smaller q leaves faster",
       tolerance="1e-7 relative: initial rate from two hitting times (x = 1e-8, 2e-8) by an exact "
                 "quadratic fit; the cubic remainder is O(t^2) ~ 1e-12 and event times are "
                 "accurate to the integrator rtol 1e-12 relative to t ~ 1e-8",
       mutation="predicted rate lambda^(q L) instead of lambda^(q(L-1))")
def esc3(ctx):
    Ls, qs, lams = (2, 3, 4), (1.0, 1.5, 2.0), (0.5, 0.8)
    delta = 1e-8
    worst, order_ok = (0.0, None), True
    for L in Ls:
        grid = [(q, lam) for q in qs for lam in lams]
        w0 = torch.tensor([[[0.0] + [lam] * (L - 1)] for _, lam in grid], dtype=torch.float64)
        qv = torch.tensor([g[0] for g in grid], dtype=torch.float64)
        ev = hitting_event([delta, 2 * delta, 0.1], L, direction=1)
        res = simulate_parameter_flow(w0, qv, SeparableQuadratic(Y), 50.0, device=ctx.device,
                                      rtol=RTOL, atol=1e-20, events=[ev],
                                      t_eval=None).raise_on_failure()
        te = res.solution.t_events[0].cpu()
        t1, t2 = te[:, 0], te[:, 1]
        # x = v t + a t^2 through (t1, delta), (t2, 2 delta)
        v = (delta * t2**2 - 2 * delta * t1**2) / (t1 * t2**2 - t2 * t1**2)
        coercive = [lam ** (q * L) if ctx.mutate else float(K.esc3_coercivity(lam, L, q))
                    for q, lam in grid]
        pred = torch.tensor([c * float(K.phi(torch.tensor(Y, dtype=torch.float64), q)) for c, (q, _) in zip(coercive, grid)], dtype=torch.float64)
        for (q, lam), vv, pp in zip(grid, v, pred):
            e = rel_err(vv, pp)
            if not e <= worst[0]:
                worst = (e, (L, q, lam, float(pp), float(vv)))
        for lam in lams:      # escape to x = 0.1 is slower for larger q when lambda < 1
            times = [float(te[i, 2]) for i, g in enumerate(grid) if g[1] == lam]
            order_ok &= all(a < b for a, b in zip(times, times[1:]))
    L, q, lam, p, v = worst[1]
    err = worst[0] if order_ok else math.inf
    return dict(prediction=f"rate={fmt(p, 10)}", measured=f"rate={fmt(v, 10)}", error=err,
                tolerance=1e-7, note="" if order_ok else "ordering in q violated",
                params=dict(worst_case=dict(L=L, q=q, lam=lam), ordering_holds=order_ok))


def _count_steps(L, alphas, eta, step, target=X1, max_steps=200_000):
    """Steps of ``w <- w + step(w)`` from ``w_k = alpha`` (all ``L`` factors, batched) until
    ``x >= target`` on ``f = (x - y)^2/2``; ``step(w, g)`` gets the gradient ``dF/dw``."""
    w = balanced_start(torch.as_tensor(alphas, dtype=torch.float64), 1, L)[:, 0, :]
    count = torch.zeros(len(alphas), dtype=torch.int64)
    done = torch.zeros(len(alphas), dtype=torch.bool)
    for n in range(1, max_steps + 1):
        x = w.prod(-1)
        g = (x - Y)[:, None] * (x[:, None] / w)
        w = torch.where(done[:, None], w, w + step(g, eta))
        new = ~done & (w.prod(-1) >= target)
        count[new], done = n, done | new
        if bool(done.all()):
            return count
    raise RuntimeError(f"{int((~done).sum())} runs did not reach x = {target} in {max_steps} steps")


ESC4_ALPHAS = {2: (1e-2, 1e-3, 1e-4), 3: (1e-1, 1e-2, 1e-3), 4: (0.3, 0.1, 0.03), 5: (0.3, 0.2, 0.1)}
ETA_SIGN = 0.01


@check("ESC-4", "Discrete steps as a function of alpha: GD at its largest stable step 2/lambda_max "
       "needs T_GF(alpha)/eta + log(f(a1)/f(a0))/2 steps (growing like alpha^-(L-2)); SignGD needs "
       "exactly ceil((x1^(1/L) - alpha)/eta), bounded in alpha",
       tolerance="1.5 steps: the integer count lies up to 1 step above the continuous estimate, and "
                 "the O(eta) remainder of the first-order modified equation is < 0.5 step here",
       mutation="GD predicted bounded in alpha like SignGD (the estimate of the largest alpha for all)")
def esc4(ctx):
    worst, table = (0.0, None), []
    for L in ((2, 3, 4, 5) if ctx.full else (2, 3, 4)):
        alphas = ESC4_ALPHAS[L]
        eta = float(K.esc4_gd_step(torch.tensor(Y, dtype=torch.float64), L))
        n_gd = _count_steps(L, alphas, eta, lambda g, e: -e * g)
        n_sign = _count_steps(L, alphas, ETA_SIGN, lambda g, e: -e * torch.sign(g))
        pred_gd = [theory.step_count(L, alphas[0] if ctx.mutate else a, "gd", Y, X1, eta) for a in alphas]
        pred_sign = [theory.step_count(L, a, "sign", Y, X1, ETA_SIGN) for a in alphas]
        for a, ng, pg, ns, ps in zip(alphas, n_gd.tolist(), pred_gd, n_sign.tolist(), pred_sign):
            table.append(dict(L=L, alpha=a, eta_gd=eta, gd=ng, gd_pred=round(pg, 3), sign=ns, sign_pred=ps))
            e = max(abs(ng - pg), abs(ns - ps))
            if not e <= worst[0]:
                worst = (e, table[-1])
    big = {r["L"]: r for r in table if r["alpha"] == ESC4_ALPHAS[r["L"]][-1]}
    case = worst[1]
    return dict(prediction=f"GD {fmt(case['gd_pred'], 8)}, sign {case['sign_pred']:g}",
                measured=f"GD {case['gd']}, sign {case['sign']}", error=worst[0], tolerance=1.5,
                params=dict(worst_case=case, table=table, eta_sign=ETA_SIGN, target=X1, y=Y),
                note="smallest alpha: " + ", ".join(f"L={L}: GD {r['gd']} vs SignGD {r['sign']}"
                                                    for L, r in big.items()))

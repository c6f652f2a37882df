"""DEC: weight decay on the reference problem, predicted (theory, generated kernels) vs
simulated (parameter-space flows with decay)."""

from __future__ import annotations


import torch

import theory
from numerics._generated import torch_kernels as K
from numerics.losses import SeparableQuadratic
from numerics.simulate import simulate_parameter_flow

from .common import ATOL, GLOBAL, RTOL, balanced_start, fmt
from .harness import check, rel_err

Y = 1.0


def _dual_terms(L, decay, nu, mutate):
    """Extras: ``int phi_q(d) + nu h'(x)`` (decoupled) or ``int phi_q(d + nu x^(2/L-1))``
    (coupled), the right-hand sides of DEC-1 (``h`` of depth ``L + 1`` when mutated)."""
    Lh = L + 1 if mutate else L

    def terms(x, g, p):
        q = p["q"][:, None]
        if decay == "decoupled":
            return K.phi(g, q) + nu * K.dec1_h_grad(x, Lh, q)
        return K.phi(g + nu * x ** (2 / Lh - 1), q)
    return terms


@check("DEC-1", "Decay in the mirror picture (balanced start): decoupled d/dt R'(x) = -phi_q(f') - "
       "nu x^(1-m) (regularizer h = x^(2-m)/(2-m)); coupled d/dt R'(x) = -phi_q(f' + nu x^(2/L-1))",
       tolerance="1e-9 relative: 1e3 x the integrator rtol 1e-12 (dual change vs integrated right-hand "
                 "side, worst over the grid)",
       mutation="regularizer (and coupled decay term) of depth L + 1 instead of L")
def dec1(ctx):
    Ls = (1, 2, 3, 4, 5) if ctx.full else (1, 2, 3, 4)
    qs = (1.0, 1.25, 1.5, 1.75, 2.0) if ctx.full else (1.0, 1.5, 2.0)
    nu, alpha, T = 0.5, 0.3, 0.15                 # short horizon: no surface is reached
    worst = (0.0, None)
    for L in Ls:
        for decay in ("decoupled", "coupled"):
            qv = torch.tensor(qs, dtype=torch.float64)
            w0 = balanced_start(torch.full((len(qs),), alpha, dtype=torch.float64), 1, L, ctx.device)
            res = simulate_parameter_flow(w0, qv.to(ctx.device), SeparableQuadratic(Y), T, device=ctx.device,
                                          decay=decay, nu=nu, extras=[_dual_terms(L, decay, nu, ctx.mutate)],
                                          rtol=RTOL, atol=ATOL, max_wall=60).raise_on_failure()
            x0, x1 = w0.prod(-1).cpu(), res.x.cpu()
            if not bool(torch.isnan(res.solution.switching["t_slide"]).all()):
                raise AssertionError("a run reached a sliding surface or rest point: shorten the horizon")
            dual = K.mir1_grad(x1, L, qv[:, None]) - K.mir1_grad(x0, L, qv[:, None])
            integral = -res.extras.cpu()
            e = rel_err(integral, dual)
            if not e <= worst[0]:
                i = int(((integral - dual).abs() / dual.abs()).flatten().argmax())
                worst = (e, (dict(L=L, q=qs[i], decay=decay), float(dual.flatten()[i]), float(integral.flatten()[i])))
    case, d, m = worst[1]
    return dict(prediction=f"dR'={fmt(d, 12)}", measured=f"-int rhs={fmt(m, 12)}", error=worst[0],
                tolerance=GLOBAL, params=dict(worst_case=case, Ls=Ls, qs=qs, nu=nu, alpha=alpha, T=T))


DEC2_TOL = 1e-8
HORIZON = 60.0


def _predicted_equilibria(L, grid, decay, mutate):
    """Generated closed forms: box ``min(y, nu^-L)`` (decoupled, q = 1), else the largest root
    (``dec2_decoupled``/``dec2_coupled``); under the mutation the other decay's."""
    form = {"decoupled": "coupled", "coupled": "decoupled"}[decay] if mutate else decay
    out = []
    for q, nu, y in grid:
        t = lambda v: torch.tensor(v, dtype=torch.float64)            # noqa: E731
        if theory.equilibrium(L, q, nu, y, form) == 0:                # only the saddle (mutated form)
            out.append(0.0)
        elif form == "decoupled" and q == 1:
            out.append(float(K.dec2_box(t(y), t(nu), L)))
        elif form == "decoupled":
            out.append(float(K.dec2_decoupled(t(y), t(nu), L, t(q))))
        else:
            out.append(float(K.dec2_coupled(t(y), t(nu), L)))
    return torch.tensor(out, dtype=torch.float64)


@check("DEC-2", "Long-run equilibria vs closed forms, both decays: decoupled q = 1 x* = min(y, nu^-L) "
       "with |w_k| = 1/nu when y > nu^-L; otherwise the largest root of d f + c x^(-gamma) = 0 "
       "(generated solves; coupled L = 2: y - nu)",
       tolerance="1e-8 relative: the long-run state is converged to << 1e-9 (horizon >= 40 decay "
                 "times or finite-time arrival) and accurate to ~1e3 x rtol 1e-12",
       mutation="equilibrium of the other decay form (coupled <-> decoupled)")
def dec2(ctx):
    Ls = (1, 2, 3, 4) if ctx.full else (1, 2, 3)
    qs = (1.0, 1.25, 1.5, 2.0) if ctx.full else (1.0, 1.5, 2.0)
    # (nu, y): a small and a large decay; (0.8, 2) puts q = 1 decoupled on the box (y > nu^-L)
    nu_y = ((0.3, 0.5), (0.8, 0.5), (0.3, 2.0), (0.8, 2.0)) if ctx.full else ((0.3, 0.5), (0.8, 2.0))
    worst, box_err, n_box, series = (0.0, None), 0.0, 0, []
    for L in Ls:
        for decay in ("decoupled", "coupled"):
            eq = {(q, nu, y): theory.equilibrium(L, q, nu, y, decay) for q in qs for nu, y in nu_y}
            grid = [k for k, v in eq.items() if v > 0]
            qv = torch.tensor([g[0] for g in grid], dtype=torch.float64)
            nuv = torch.tensor([g[1] for g in grid], dtype=torch.float64)
            yv = torch.tensor([g[2] for g in grid], dtype=torch.float64)
            # start between the stable equilibrium and y (where it is the attractor; at x* = y on it)
            x0 = torch.tensor([(eq[g] + g[2]) / 2 for g in grid], dtype=torch.float64)
            w0 = balanced_start(x0 ** (1 / L), 1, L, ctx.device)
            res = simulate_parameter_flow(w0, qv.to(ctx.device), SeparableQuadratic(yv[:, None]), HORIZON,
                                          device=ctx.device, decay=decay, nu=nuv.to(ctx.device), rtol=RTOL,
                                          atol=ATOL, max_wall=60).raise_on_failure()
            x = res.x[:, 0].cpu()
            pred = _predicted_equilibria(L, grid, decay, ctx.mutate)
            errs = (x - pred).abs() / torch.maximum(pred.abs(), x.abs()).clamp_min(1e-300)
            series += [dict(L=L, decay=decay, q=q, nu=nu, y=y, x=float(xe)) for (q, nu, y), xe in zip(grid, x)]
            box = torch.tensor([decay == "decoupled" and q == 1 and y > nu ** -L for q, nu, y in grid])
            if bool(box.any()):
                wk = res.w[:, 0, :].cpu().abs()[box]
                box_err = max(box_err, rel_err(wk, (1 / nuv[box])[:, None].expand_as(wk)))
                n_box += int(box.sum())
            i = int(errs.argmax())
            if not float(errs[i]) <= worst[0]:
                worst = (float(errs[i]), dict(L=L, decay=decay, q=grid[i][0], nu=grid[i][1], y=grid[i][2],
                                              pred=float(pred[i]), sim=float(x[i])))
    case = worst[1]
    err = max(worst[0], box_err)
    return dict(prediction=f"x*={fmt(case['pred'], 12)}", measured=f"x(T)={fmt(case['sim'], 12)}",
                error=err, tolerance=DEC2_TOL,
                params=dict(worst_case=case, box_factor_error=box_err, box_cases=n_box, Ls=Ls, qs=qs,
                            nu_y=nu_y, horizon=HORIZON), series=dict(cases=series),
                note=f"|w_k| = 1/nu on the box: relative error {box_err:.2g} over {n_box} runs")


# (L, q, nu, y, alpha, decay): the DEC-3 grid: L = 3 coupled collapse at every q and its escape from
# above the unstable root, L = 2 coupled around y = nu, SignGF decoupled escape from tiny alpha,
# decoupled m < 1 / m = 1 (both sides of y^(q-1) = nu) / m > 1
DEC3_GRID = (
    (3, 1.0, 0.3, 1.0, 0.05, "coupled"), (3, 1.5, 0.3, 1.0, 0.05, "coupled"), (3, 2.0, 0.3, 1.0, 0.05, "coupled"),
    (3, 1.5, 0.3, 1.0, 0.8, "coupled"), (3, 2.0, 0.3, 1.0, 0.8, "coupled"),
    (2, 1.0, 0.5, 1.0, 0.05, "coupled"), (2, 1.0, 1.5, 1.0, 0.05, "coupled"), (2, 2.0, 1.5, 1.0, 0.3, "coupled"),
    (3, 1.0, 0.8, 1.0, 0.001, "decoupled"), (4, 1.0, 0.8, 1.0, 0.01, "decoupled"),
    (3, 1.25, 0.3, 1.0, 0.01, "decoupled"), (2, 2.0, 0.5, 1.0, 0.05, "decoupled"),
    (2, 2.0, 1.5, 1.0, 0.3, "decoupled"), (3, 1.5, 0.8, 1.0, 0.1, "decoupled"),
    (3, 1.5, 1.2, 1.0, 0.1, "decoupled"), (3, 2.0, 0.3, 1.0, 0.05, "decoupled"),
)


def _predict_dec3(case, mutate):
    L, q, nu, y, alpha, decay = case
    if mutate:
        decay = {"decoupled": "coupled", "coupled": "decoupled"}[decay]
    return theory.escape_or_collapse(L, q, nu, y, alpha, decay)


@check("DEC-3", "Escape vs collapse from small alpha: decoupled escapes iff m < 1 (m = 1: iff "
       "y^(q-1) > nu), so SignGF + decoupled always escapes; coupled L = 2 iff y > nu; coupled L >= 3 "
       "collapses from alpha below the unstable root, in finite time when q < 2",
       tolerance="0 misclassified runs: escape = x(T) above half the predicted equilibrium, collapse "
                 "= x(T) < x0/100 (and, coupled with q < 2, the saddle reached at a finite time)",
       mutation="the prediction of the other decay form (coupled <-> decoupled)")
def dec3(ctx):
    T = 30.0
    wrong, rows = [], []
    by_L = {}
    for case in DEC3_GRID:
        by_L.setdefault(case[0], []).append(case)
    for L, cases in by_L.items():
        for decay in ("decoupled", "coupled"):
            sel = [c for c in cases if c[5] == decay]
            if not sel:
                continue
            qv = torch.tensor([c[1] for c in sel], dtype=torch.float64)
            nuv = torch.tensor([c[2] for c in sel], dtype=torch.float64)
            yv = torch.tensor([c[3] for c in sel], dtype=torch.float64)
            w0 = balanced_start(torch.tensor([c[4] for c in sel], dtype=torch.float64), 1, L, ctx.device)
            res = simulate_parameter_flow(w0, qv.to(ctx.device), SeparableQuadratic(yv[:, None]), T,
                                          device=ctx.device, decay=decay, nu=nuv.to(ctx.device), rtol=RTOL,
                                          atol=ATOL, max_wall=60).raise_on_failure()
            x = res.x[:, 0].cpu()
            t_slide = res.solution.switching["t_slide"][:, 0].cpu()
            for k, c in enumerate(sel):
                x0, xs = c[4] ** L, theory.equilibrium(*c[:4], c[5])
                finite = bool(torch.isfinite(t_slide[k]))
                if xs > 0 and float(x[k]) > xs / 2:
                    seen = "escape"
                elif float(x[k]) < x0 / 100 and (finite or c[5] == "decoupled" or c[1] == 2):
                    seen = "collapse"
                else:
                    seen = "undecided"
                pred = _predict_dec3(c, ctx.mutate)
                rows.append(dict(L=L, q=c[1], nu=c[2], y=c[3], alpha=c[4], decay=c[5], predicted=pred,
                                 observed=seen, x_T=float(x[k]), t_collapse=float(t_slide[k])))
                if seen != pred:
                    wrong.append(rows[-1])
    collapses = sum(r["predicted"] == "collapse" for r in rows)
    return dict(prediction=f"{len(rows) - collapses} escape, {collapses} collapse",
                measured=f"{len(wrong)} misclassified", error=float(len(wrong)), tolerance=0.0,
                params=dict(runs=rows, horizon=T),
                note="; ".join(f"{w['decay']} L={w['L']} q={w['q']}: {w['observed']}" for w in wrong[:3]))


__all__ = ["dec1", "dec2", "dec3", "DEC3_GRID"]

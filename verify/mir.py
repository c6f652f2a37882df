"""MIR: steepest mirror flows, predicted (generated kernels of the derived potentials)
vs simulated (parameter-space flows)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

import theory
from numerics._generated import torch_kernels as K
from numerics.losses import SeparableQuadratic
from numerics.simulate import simulate_mirror_flow, simulate_parameter_flow, simulate_scalar_flow
from theory.legendre import local_exponent
from theory.models import MODELS, ScalarModel

from .common import ATOL, GLOBAL, RTOL, balanced_start, fmt, hitting_event
from .harness import check, rel_err

Y = 1.0


def phi_integral(x, g, p):
    """Quadrature state: ``int_0^t phi_q(d_i f) dt`` per coordinate."""
    return K.phi(g, p["q"][:, None])


def _dual_and_path(w0, qv, hess, grad, t_end, ctx, times=4, params=None):
    """Simulate the parameter flow (with ``int phi``) and the mirror ODE from the same x0.

    Returns (max relative error between the two x-paths, max relative error of the
    closed-form ``R'(x(T)) - R'(x(0))`` against ``-int phi``, the worst values, and the
    measured series: the output times ``(B, times)`` and there ``x`` of both flows and
    ``-int phi``, each ``(B, times, n)``).
    The mirror ODE's steps are capped at ``T/64``: at ``q = 1`` its solution ``(alpha + t)^L``
    is a polynomial on which DOP853's error estimate is blind (uncapped: 4e-9 at rtol 1e-12)."""
    B = w0.shape[0]
    t_eval = torch.linspace(0, 1, times + 1, dtype=torch.float64)[1:][None, :] * t_end[:, None]
    par = simulate_parameter_flow(w0, qv, SeparableQuadratic(Y), t_end, device=ctx.device,
                                  extras=[phi_integral], rtol=RTOL, atol=ATOL,
                                  t_eval=t_eval).raise_on_failure()
    x0 = w0.prod(-1)
    mir = simulate_mirror_flow(x0, qv, SeparableQuadratic(Y), hess, t_end, device=ctx.device,
                               rtol=RTOL, atol=ATOL, t_eval=t_eval, params=params,
                               max_step=t_end / 64).raise_on_failure()
    n, L = w0.shape[1], w0.shape[2]
    xs_par = par.solution.ys[..., : n * L].reshape(B, times, n, L).prod(-1)
    xs_mir = mir.solution.ys[..., :n]
    path_err = rel_err(xs_mir, xs_par)
    dual = grad(par.x, qv[:, None]) - grad(x0, qv[:, None])
    integral = -par.extras
    paths = (t_eval, xs_par, xs_mir, -par.solution.ys[..., n * L: n * L + n])
    return path_err, rel_err(dual, integral), (dual, integral), paths


def _report(worst_path, worst_dual, grid, name):
    """Worst of the two errors; the dual's worst case is shown (the path error in the note)."""
    case = worst_dual[1]
    return dict(prediction=f"dR'={fmt(case[1], 12)}", measured=f"-int phi={fmt(case[2], 12)}",
                error=max(worst_path[0], worst_dual[0]), tolerance=GLOBAL,
                params=dict(path_error=worst_path[0], dual_error=worst_dual[0], grid=grid,
                            worst_case=case[0], worst_path_case=worst_path[1]),
                note=f"{name}: x-path error {worst_path[0]:.2g}, dual error {worst_dual[0]:.2g}")


@check("MIR-1", "Balanced deep diagonal = steepest mirror flow with R'' = x^-m/L; closed-form R' "
       "(power, or log at m = 1) integrates d/dt R'(x) = -phi_q(f')",
       tolerance="1e-9 relative: 1e3 x the integrator rtol 1e-12 (x-path and dual, worst over grid)",
       mutation="potential of depth L + 1 instead of L")
def mir1(ctx):
    Ls = (1, 2, 3, 4, 5, 6) if ctx.full else (1, 2, 3, 4)
    qs = (1.0, 1.25, 4 / 3, 1.5, 1.75, 2.0) if ctx.full else (1.0, 1.25, 1.5, 2.0)
    alphas = (0.5, 0.2)
    worst_path, worst_dual, series = (0.0, None), (0.0, None), []
    for L in Ls:
        grid = [(q, a) for q in qs for a in alphas if a**L < 0.8]
        qv = torch.tensor([g[0] for g in grid], dtype=torch.float64)
        al = torch.tensor([g[1] for g in grid], dtype=torch.float64)
        t_end = torch.tensor([theory.escape_time(L, q, a, Y, 0.9) for q, a in grid], dtype=torch.float64)
        Lp = L + 1 if ctx.mutate else L
        pe, de, (dual, integ), (t, xp, xm, mi) = _dual_and_path(
            balanced_start(al, 1, L), qv, lambda x, p, Lp=Lp: K.mir1_hess(x, Lp, p["q"][:, None]),
            lambda x, q, Lp=Lp: K.mir1_grad(x, Lp, q), t_end, ctx)
        series += [dict(L=L, q=q, alpha=a, t=t[i].tolist(), x=xp[i, :, 0].tolist(), x_mirror=xm[i, :, 0].tolist(),
                        minus_int_phi=mi[i, :, 0].tolist()) for i, (q, a) in enumerate(grid)]
        if not pe <= worst_path[0]:
            worst_path = (pe, dict(L=L))
        if worst_dual[1] is None or not de <= worst_dual[0]:
            i = int(((dual - integ).abs() / integ.abs()).flatten().argmax())
            worst_dual = (de, (dict(L=L, q=grid[i][0], alpha=grid[i][1]), float(dual.flatten()[i]),
                               float(integ.flatten()[i])))
    return dict(_report(worst_path, worst_dual, dict(Ls=Ls, qs=qs, alphas=alphas), "MIR-1"),
                series=dict(target=0.9, y=Y, cases=series))


@check("MIR-2", "Lambda-balanced L = 2 (|u|^q - |v|^q = c): R'' = (c^2 + 4x^q)^(-1/2), "
       "R' = (x/|c|) 2F1(1/2, 1/q; 1 + 1/q; -4x^q/c^2)",
       tolerance="1e-9 relative: 1e3 x the integrator rtol 1e-12",
       mutation="imbalance ignored (balanced MIR-1 potential of depth 2)")
def mir2(ctx):
    qs = (1.0, 1.25, 1.5, 1.75, 2.0) if ctx.full else (1.0, 1.5, 2.0)
    starts = ((0.6, 0.3), (0.2, 0.5), (1.0, 0.1))
    grid = [(q, u, v) for q in qs for u, v in starts]
    qv = torch.tensor([g[0] for g in grid], dtype=torch.float64)
    w0 = torch.tensor([[[u, v]] for _, u, v in grid], dtype=torch.float64)
    c = (w0[..., 0].abs() ** qv[:, None] - w0[..., 1].abs() ** qv[:, None]).abs()
    t_end = torch.tensor([0.8 * theory.escape_time(2, q, math.sqrt(u * v), Y, 0.9) for q, u, v in grid],
                         dtype=torch.float64)
    if ctx.mutate:
        hess = lambda x, p: K.mir1_hess(x, 2, p["q"][:, None])                     # noqa: E731
        grad = lambda x, q: K.mir1_grad(x, 2, q)                                   # noqa: E731
    else:
        hess = lambda x, p: K.mir2_hess(x, p["q"][:, None], p["c"])                # noqa: E731
        grad = lambda x, q: K.mir2_grad(x, q, c)                                   # noqa: E731
    pe, de, (dual, integ), _ = _dual_and_path(w0, qv, hess, grad, t_end, ctx, params={"c": c})
    i = int(((dual - integ).abs() / integ.abs()).flatten().argmax())
    case = (dict(q=grid[i][0], u=grid[i][1], v=grid[i][2]), float(dual.flatten()[i]), float(integ.flatten()[i]))
    return _report((pe, case[0]), (de, case), dict(qs=qs, starts=starts), "MIR-2")


@check("MIR-3", "Lambda-balanced, any L (|w_k|^q = s + c_k): 1/R'' = x^q sum_k 1/(s + c_k) with the "
       "generated root solve for s; the mirror ODE reproduces the parameter-flow path",
       tolerance="1e-9 relative: 1e3 x the integrator rtol 1e-12 (root solved to 4 ulp)",
       mutation="imbalance dropped (c_k = 0: the balanced potential)")
def mir3(ctx):
    gen = ctx.generator(3)
    Ls = (2, 3, 4, 5) if ctx.full else (2, 3, 4)
    qs = (1.0, 1.5, 2.0)
    worst = (0.0, None)
    for L in Ls:
        qv = torch.tensor(qs, dtype=torch.float64).repeat_interleave(3)
        w0 = 0.2 + 0.5 * torch.rand(len(qv), 1, L, generator=gen, dtype=torch.float64)
        ck = w0[:, 0, :].abs() ** qv[:, None]
        dk = torch.zeros_like(ck) if ctx.mutate else ck
        x0 = w0.prod(-1)
        t_end = torch.full((len(qv),), 0.5, dtype=torch.float64)
        t_eval = torch.tensor([0.125, 0.25, 0.375, 0.5], dtype=torch.float64)
        par = simulate_parameter_flow(w0, qv, SeparableQuadratic(Y), t_end, device=ctx.device, rtol=RTOL,
                                      atol=ATOL, t_eval=t_eval).raise_on_failure()
        mir = simulate_mirror_flow(x0, qv, SeparableQuadratic(Y), lambda x, p: K.mir3_hess(
            x, p["q"][:, None], p["dk"][:, None, :]), t_end, device=ctx.device, rtol=RTOL, atol=ATOL,
            t_eval=t_eval, params={"dk": dk}).raise_on_failure()
        xs_par = par.solution.ys.reshape(len(qv), 4, 1, L).prod(-1)
        e = rel_err(mir.solution.ys[..., :1], xs_par)
        if not e <= worst[0]:
            worst = (e, dict(L=L))
    return dict(prediction="mirror ODE x(t)", measured="parameter flow x(t)", error=worst[0],
                tolerance=GLOBAL, params=dict(worst_case=worst[1], Ls=Ls, qs=qs))


MIR4_GRID = ((1.0, 2), (1.0, 4), (2.0, 1), (2.0, 2), (2.0, 3), (1.5, 2), (1.5, 3), (4 / 3, 4), (1.25, 4))


@check("MIR-4", "R' at the saddle is finite iff m < 1, logarithmic iff m = 1, a barrier iff m > 1 "
       "(R'' ~ x^-mu; SymPy's mu vs the per-decade growth of hitting times towards x = 0)",
       tolerance="1e-3 absolute on mu: the hitting-time ratio per decade is 10^(mu-1) up to "
                 "O(x) <= 1e-4 corrections and ~1e-7 relative integrator error",
       mutation="mu computed for depth L + 1")
def mir4(ctx):
    worst = (0.0, None)
    levels = (1e-3, 1e-4, 1e-5, 1e-6)
    for q, L in MIR4_GRID:
        pot = theory.mirror_potential(L + 1 if ctx.mutate else L, q)
        mu_pred, cls = float(local_exponent(pot)), pot.legendre_class()
        alpha = 0.5 ** (1 / L)
        res = simulate_parameter_flow(balanced_start([alpha], 1, L), q, SeparableQuadratic(-Y), 1e9,
                                      device=ctx.device, rtol=RTOL, atol=1e-30,
                                      events=[hitting_event(levels, L, direction=-1),
                                              hitting_event([levels[-1] / 2], L, -1, terminal=True)])
        res.raise_on_failure()
        t = res.solution.t_events[0][0].cpu()
        dT = t[1:] - t[:-1]
        mu = 1 + math.log10(float(dT[-1] / dT[-2]))
        measured_cls = "finite" if mu < 1 - 1e-3 else "logarithmic" if mu <= 1 + 1e-3 else "barrier"
        err = abs(mu - mu_pred) if measured_cls == cls else math.inf
        if not err <= worst[0]:
            worst = (err, (q, L, mu_pred, cls, mu, measured_cls))
    q, L, mp_, cls, mu, mcls = worst[1]
    return dict(prediction=f"{cls} (mu={fmt(mp_)})", measured=f"{mcls} (mu={fmt(mu)})", error=worst[0],
                tolerance=1e-3, params=dict(worst_case=dict(q=q, L=L), grid=MIR4_GRID, levels=levels))


@dataclass
class ModelFlow:
    """One scalar model's flow from ``w(0) = start`` on ``f = (x - 1)^2/2`` for each ``q``:
    ``x(T)`` of the parameter flow and of the mirror ODE with the derived ``R''``, and the
    closed-form ``R'(x(T)) - R'(x(0))`` against the simulated ``-int phi_q(f')`` (``None`` for
    implicit potentials, which have no ``R'``)."""

    model: ScalarModel
    qs: tuple
    x: torch.Tensor
    x_mirror: torch.Tensor
    dual: torch.Tensor | None
    minus_int_phi: torch.Tensor

    @property
    def path_error(self) -> float:
        return rel_err(self.x_mirror, self.x)

    @property
    def dual_error(self) -> float:
        return 0.0 if self.dual is None else rel_err(self.dual, self.minus_int_phi)

    def __str__(self) -> str:
        dual = "no closed R'" if self.dual is None else f"{self.dual_error:.2g}"
        return (f"x = {self.model.g}, q in {self.qs}: prediction vs simulation, relative error "
                f"x(T) {self.path_error:.2g}, R'(x(T)) - R'(x(0)) {dual}")


def _model_kernels(model: ScalarModel) -> dict:
    """The committed kernels of a registered model, else kernels compiled in memory."""
    if MODELS.get(model.name) is model:
        return {k: getattr(K, f"mir5_{model.name}_{k}", None) for k in ("hess", "grad", "g", "dg")}
    return model.compile("torch")


def simulate_model(model: ScalarModel, qs=(1.0, 1.5, 2.0), t_end=0.6, params=None, device="cpu",
                   q_factor=1.0) -> ModelFlow:
    """Simulate ``model`` (parameter values ``params``, default its verification values) and
    its mirror ODE to ``t_end`` at rtol 1e-12; ``q_factor`` scales the exponent of ``R'``
    (MIR-5's mutation)."""
    kern = _model_kernels(model)
    extra = tuple(params if params is not None else (p.verify for p in model.params))
    qv = torch.tensor(qs, dtype=torch.float64)
    w0 = torch.full((len(qs), 1), model.start, dtype=torch.float64)
    gw = lambda w: kern["g"](w, *extra)                                              # noqa: E731
    dgw = lambda w: kern["dg"](w, *extra)                                            # noqa: E731
    res = simulate_scalar_flow(w0, qv, SeparableQuadratic(Y), gw, dgw, t_end, device=device,
                               extras=[phi_integral], rtol=RTOL, atol=ATOL).raise_on_failure()
    x0 = gw(w0)
    mir = simulate_mirror_flow(x0, qv, SeparableQuadratic(Y), lambda x, p: kern["hess"](
        x, p["q"][:, None], *extra), t_end, device=device, rtol=RTOL, atol=ATOL).raise_on_failure()
    qq = qv[:, None] * q_factor
    dual = None if kern["grad"] is None else kern["grad"](res.x, qq, *extra) - kern["grad"](x0, qq, *extra)
    return ModelFlow(model, tuple(qs), res.x, mir.x, dual, -res.extras)


@check("MIR-5", "Scalar reparameterizations x = g(w): R'' = |g'(g^-1(x))|^-q, derived by SymPy "
       f"({', '.join(m.label for m in MODELS.values())}); closed-form R' integrates d/dt R' = -phi_q(f')",
       tolerance="1e-9 relative: 1e3 x the integrator rtol 1e-12",
       mutation="R' evaluated at exponent 1.1 q")
def mir5(ctx):
    qs = (1.0, 1.25, 1.5, 2.0) if ctx.full else (1.0, 1.5, 2.0)
    worst = (0.0, None)
    for name, model in MODELS.items():
        flow = simulate_model(model, qs, device=ctx.device, q_factor=1.1 if ctx.mutate else 1.0)
        e = max(flow.dual_error, flow.path_error)
        if not e <= worst[0]:
            dual = flow.dual if flow.dual is not None else flow.minus_int_phi
            i = int(((dual - flow.minus_int_phi).abs() / flow.minus_int_phi.abs()).flatten().argmax())
            worst = (e, (name, qs[i], float(dual.flatten()[i]), float(flow.minus_int_phi.flatten()[i]),
                         flow.path_error))
    name, q, d, m, ep = worst[1]
    return dict(prediction=f"dR'={fmt(d, 12)}", measured=f"-int phi={fmt(m, 12)}", error=worst[0],
                tolerance=GLOBAL, params=dict(worst_case=dict(g=name, q=q), path_error=ep, qs=qs))


def _energy_extras(L):
    def rate(x, g, p):
        q = p["q"][:, None]
        return torch.stack([K.mir6_rate(x, g, L, q).sum(1), g.square().sum(1)], 1)
    return rate


@check("MIR-6", "Energy identity f(x0) - f(xT) = int sum |d_i f|^q / R''(x_i) dt, and the rate bound "
       "int ||grad f||^2 dt <= B^(2-q) (f(x0) - inf f) / mu",
       tolerance="1e-9 relative on the identity (1e3 x rtol 1e-12); the bound must hold (ratio <= 1)",
       mutation="dissipation computed with exponent 0.9 q")
def mir6(ctx):
    targets = torch.tensor([1.0, 0.5, 2.0], dtype=torch.float64)
    worst, bound_ratio = (0.0, None), 0.0
    for L in (2, 3):
        qs = (1.0, 1.25, 1.5, 2.0)
        qv = torch.tensor(qs, dtype=torch.float64)
        w0 = balanced_start(torch.full((len(qs),), 0.3, dtype=torch.float64), 3, L)
        loss = SeparableQuadratic(targets)
        extras = [_energy_extras(L)] if not ctx.mutate else [lambda x, g, p, L=L: torch.stack(
            [K.mir6_rate(x, g, L, 0.9 * p["q"][:, None]).sum(1), g.square().sum(1)], 1)]
        res = simulate_parameter_flow(w0, qv, loss, 3.0, device=ctx.device, extras=extras, rtol=RTOL,
                                      atol=ATOL).raise_on_failure()
        x0 = w0.prod(-1)
        p = loss.params(len(qs), "cpu")
        drop = loss.value(x0, p) - loss.value(res.x, p)
        e = rel_err(res.extras[:, 0], drop)
        if not e <= worst[0]:
            worst = (e, (L, float(drop[0]), float(res.extras[0, 0])))
        B = (x0 - targets).abs().max(1).values                      # |d_i f| decreases along the flow
        mu = L * x0.min(1).values ** (qv * (L - 1) / L)             # 1/R'' = L x^m is smallest at x0
        bound = B ** (2 - qv) * loss.value(x0, p) / mu
        bound_ratio = max(bound_ratio, float((res.extras[:, 1] / bound).max()))
    L, d, r = worst[1]
    err = worst[0] if bound_ratio <= 1 else math.inf
    return dict(prediction=f"f0-fT={fmt(d, 12)}", measured=f"int rate={fmt(r, 12)}", error=err,
                tolerance=GLOBAL, params=dict(worst_case=dict(L=L), bound_ratio=bound_ratio),
                note=f"rate bound: int|grad f|^2 / bound = {bound_ratio:.3g}")

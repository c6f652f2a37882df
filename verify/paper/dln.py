"""Deep diagonal network regression at the paper's size: ``k = 300`` coordinates, ``n = 100``
samples, depth ``L = 3``, ``x_i = prod_k w_ik`` from ``w_ik = alpha``.

Data (per seed): ``X`` with i.i.d. ``N(0, 1)`` entries, a 5-sparse non-negative teacher with
unit entries, ``y = X x*``; loss ``f(x) = ||X x - y||^2 / (2 n)``. The *plateau* ends at the
first time (flows) or step (optimizers) with ``f <= PLATEAU_FRACTION * f(x_0)``.

* Flows ``q in {1.5, 2}``: :func:`numerics.simulate.simulate_parameter_flow` (DOP853), ``q = 1``:
  the exact event-driven :func:`numerics.sign.simulate_sign_flow`; every ``alpha`` of a task is
  one batch, read on a log-spaced time grid (the plateau time is the first grid point past the
  threshold, a 3.5 % resolution); each task has a wall budget and reports ``budget`` rather
  than a number when it runs out. A flow stops once escaped, at the first time with
  ``f <= STOP_FRACTION min f(x_0)`` (status ``escaped``, a terminal event): the plateau does not
  need the slow approach to the interpolating solution that follows (stiff for every ``q``, and
  non-Lipschitz for ``q < 2`` wherever a gradient component crosses 0).
* Optimizers (one batched run over every ``alpha``; the loss is a sum over the batch, so each
  row steps exactly as alone): ``gd`` (learning rate given), ``sign`` (sign descent,
  :class:`numerics.optim.SignDescent`), ``adam`` (``torch.optim.Adam``).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from numerics import optim
from numerics.integrate import Event, Status
from numerics.losses import LinearRegression

K, N, DEPTH, SPARSITY = 300, 100, 3, 5
PLATEAU_FRACTION = 0.5
STOP_FRACTION = 0.05
GRID_POINTS = 200
STATUS = {Status.SUCCESS: "t_end", Status.EVENT: "escaped", Status.STEP_BUDGET: "steps", Status.WALL_BUDGET: "budget",
          Status.STEP_UNDERFLOW: "underflow", Status.NONFINITE: "nonfinite"}


def problem(seed: int):
    r = np.random.default_rng(500 + seed)
    X = r.standard_normal((N, K))
    x_star = np.zeros(K)
    x_star[r.choice(K, SPARSITY, replace=False)] = 1.0
    return X, X @ x_star


def _losses(x, X, y):
    """``f`` of a batch of models ``x (..., K)``."""
    r = x @ X.T - y
    return (r**2).sum(-1) / (2 * N)


def _plateau(times, losses, f0):
    """First time at which the loss is at most ``PLATEAU_FRACTION f0`` (NaN if never)."""
    hit = np.flatnonzero(losses <= PLATEAU_FRACTION * f0)
    return float(times[hit[0]]) if hit.size else math.nan


def _escaped(X, y, alphas):
    """Terminal event: ``f(x) - STOP_FRACTION min_alpha f(x_0)`` falls through 0."""
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    level = STOP_FRACTION * min(float(_losses(np.full(K, a**DEPTH), X, y)) for a in alphas)

    def fn(t, w, p):
        return _losses(w[:, : K * DEPTH].reshape(-1, K, DEPTH).prod(-1), Xt, yt) - level
    return Event(fn, terminal=True, direction=-1, name="escaped")


def flow(seed: int, q: float, alphas, t_end: float, wall: float) -> dict:
    """The steepest flow of exponent ``q`` from every ``alpha`` (one batch)."""
    from numerics.simulate import simulate_parameter_flow
    from numerics.sign import simulate_sign_flow

    torch.set_num_threads(1)
    X, y = problem(seed)
    w0 = torch.stack([torch.full((K, DEPTH), a, dtype=torch.float64) for a in alphas])
    grid = np.concatenate([[0.0], np.geomspace(1e-2, t_end, GRID_POINTS)])
    loss = LinearRegression(X, y)
    events = [_escaped(X, y, alphas)]
    if q == 1.0:
        res = simulate_sign_flow(w0, loss, t_end, t_eval=grid, max_wall=wall, events=events)
    else:
        res = simulate_parameter_flow(w0, q, loss, t_end, t_eval=grid, max_wall=wall, max_steps=10**6,
                                      events=events)
    ys = res.solution.ys.reshape(len(alphas), len(grid), K, DEPTH).prod(-1).numpy()
    f = _losses(ys, X, y)
    status = res.solution.status.tolist()
    rows, curves = [], []
    for i, a in enumerate(alphas):
        f0 = float(_losses(np.full(K, a**DEPTH), X, y))
        ok = np.isfinite(f[i])
        t_p = _plateau(grid[ok], f[i][ok], f0)
        rows.append(dict(method=f"flow q={q:g}", q=q, lr=math.nan, alpha=a, status=STATUS.get(status[i], str(status[i])),
                         plateau=t_p, escaped=int(not math.isnan(t_p)), final_loss=float(f[i][ok][-1]),
                         t_reached=float(grid[ok][-1]), wall=round(res.solution.wall, 2)))
        curves += [dict(series=f"flow q={q:g} alpha={a:g}", x=float(t), y=float(v))
                   for t, v in zip(grid[ok][1:], f[i][ok][1:])]
    return dict(rows=rows, curves=curves)


def optimizer(seed: int, name: str, lr: float, alphas, steps: int) -> dict:
    """A discrete optimizer from every ``alpha`` (one batch) for ``steps`` steps."""
    torch.set_num_threads(1)
    X, y = (torch.as_tensor(a, dtype=torch.float64) for a in problem(seed))
    w = torch.stack([torch.full((K, DEPTH), a, dtype=torch.float64) for a in alphas]).requires_grad_()
    opt = {"gd": lambda: torch.optim.SGD([w], lr=lr), "sign": lambda: optim.SignDescent([w], lr=lr),
           "adam": lambda: torch.optim.Adam([w], lr=lr)}[name]()
    marks = set(np.unique(np.geomspace(1, steps, GRID_POINTS).astype(int)).tolist()) | {0}
    f0 = _losses(w.detach().prod(-1), X, y).numpy()
    plateau = np.full(len(alphas), math.nan)
    curve_pts = []
    for step in range(steps + 1):
        opt.zero_grad()
        f = _losses(w.prod(-1), X, y)
        fv = f.detach().numpy()
        new = np.isnan(plateau) & (fv <= PLATEAU_FRACTION * f0)
        plateau[new] = step
        if step in marks:
            curve_pts.append((step, fv.copy()))
        if step == steps or not np.isfinite(fv).any():
            break
        f.sum().backward()
        opt.step()
    method = f"{name} lr={lr:g}"
    rows = [dict(method=method, q={"gd": 2.0, "sign": 1.0, "adam": 1.0}[name], lr=lr, alpha=a,
                 status="diverged" if not np.isfinite(fv[i]) else "steps", plateau=plateau[i],
                 escaped=int(not np.isnan(plateau[i])), final_loss=float(fv[i]), t_reached=float(step),
                 wall=math.nan) for i, a in enumerate(alphas)]
    curves = [dict(series=f"{method} alpha={a:g}", x=s, y=float(v[i]))
              for i, a in enumerate(alphas) for s, v in curve_pts if s > 0 and np.isfinite(v[i])]
    return dict(rows=rows, curves=curves)


__all__ = ["problem", "flow", "optimizer", "PLATEAU_FRACTION", "K", "N", "DEPTH"]

"""Sparse classification with the exponential loss: ``k = 80`` features, a 3-sparse teacher.

Data (per seed): ``N_TRAIN`` training and ``N_TEST`` test points with i.i.d. ``N(0, 1)``
features, labels ``sign(<z, x*>)`` of a teacher with 3 entries ``+-1``. Model: the two-branch
deep diagonal network ``x = prod_k u_k - prod_k v_k`` from ``u = v = alpha`` (``x_0 = 0``),
trained by discrete steepest descent ``w <- w - lr phi_q(grad)`` (:func:`numerics.optim.steepest`,
``q = 1``: sign descent) on ``f(x) = (1/N) sum_n exp(-y_n <z_n, x>)``.

IB-3: the normalized margin ``gamma_r(x) = min_n y_n <z_n, x> / ||x||_r`` grows toward the
maximum margin in the algorithm's geometry, ``r = p/L`` with ``p = q/(q-1)`` (``r = inf`` at
``q = 1``). The optimum ``1 / min{||x||_r : y_n <z_n, x> >= 1}`` is a linear program for
``r in {1, inf}`` and a smooth convex program (SLSQP) for ``1 < r < inf``; for ``r < 1``
(a quasi-norm) the program is not convex and no optimum is reported.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.optimize import linprog, minimize

from numerics import optim

K, N_TRAIN, N_TEST, SUPPORT = 80, 40, 2000, 3
CURVE_POINTS = 40


def problem(seed: int):
    r = np.random.default_rng(900 + seed)
    teacher = np.zeros(K)
    teacher[r.choice(K, SUPPORT, replace=False)] = r.choice([-1.0, 1.0], SUPPORT)
    Z, Zt = r.standard_normal((N_TRAIN, K)), r.standard_normal((N_TEST, K))
    return Z, np.sign(Z @ teacher), teacher, Zt, np.sign(Zt @ teacher)


def geometry(q: float, L: int) -> float:
    """``r = p / L`` with ``1/p + 1/q = 1`` (``inf`` at ``q = 1``)."""
    return math.inf if q == 1 else q / (q - 1) / L


def norm(x, r: float) -> float:
    return float(np.abs(x).max() if math.isinf(r) else (np.abs(x) ** r).sum() ** (1 / r))


def margin(x, Z, labels, r: float) -> float:
    n = norm(x, r)
    return float((labels * (Z @ x)).min() / n) if n > 0 else math.nan


def max_margin(Z, labels, r: float) -> float:
    """``1 / min{||x||_r : y_n <z_n, x> >= 1}`` (NaN for ``r < 1``)."""
    A = -(labels[:, None] * Z)
    n, k = Z.shape
    if r == 1 or math.isinf(r):          # LP in (x+, x-) or (x, t)
        if r == 1:
            res = linprog(np.ones(2 * k), A_ub=np.hstack([A, -A]), b_ub=-np.ones(n), bounds=(0, None))
        else:
            c = np.r_[np.zeros(k), 1.0]
            box = np.vstack([np.hstack([np.eye(k), -np.ones((k, 1))]), np.hstack([-np.eye(k), -np.ones((k, 1))])])
            res = linprog(c, A_ub=np.vstack([np.hstack([A, np.zeros((n, 1))]), box]),
                          b_ub=np.r_[-np.ones(n), np.zeros(2 * k)], bounds=(None, None))
        return 1.0 / res.fun if res.status == 0 else math.nan
    if r < 1:
        return math.nan
    x0 = np.linalg.lstsq(Z, labels, rcond=None)[0]
    x0 /= (labels * (Z @ x0)).min()
    res = minimize(lambda x: (np.abs(x) ** r).sum(), x0, jac=lambda x: r * np.sign(x) * np.abs(x) ** (r - 1),
                   constraints=[dict(type="ineq", fun=lambda x: labels * (Z @ x) - 1, jac=lambda x: labels[:, None] * Z)],
                   method="SLSQP", options=dict(maxiter=500, ftol=1e-12))
    return 1.0 / norm(res.x, r) if res.success else math.nan


def run(seed: int, q: float, L: int, alpha: float, lr: float, steps: int) -> dict:
    """One training run; rows carry the final measurements, curves the margin over steps."""
    torch.set_num_threads(1)
    Z, labels, teacher, Zt, lt = problem(seed)
    r = geometry(q, L)
    Zl = torch.as_tensor(labels[:, None] * Z, dtype=torch.float64)
    params = [torch.full((K, L), alpha, dtype=torch.float64) for _ in range(2)]
    tx = optim.steepest(lr, q)
    state = tx.init(params)
    marks = set(np.unique(np.geomspace(1, steps, CURVE_POINTS).astype(int)).tolist())
    curves = []
    for step in range(1, steps + 1):
        u, v = (p.clone().requires_grad_() for p in params)
        loss = torch.exp(-(Zl @ (u.prod(-1) - v.prod(-1)))).mean()
        grads = torch.autograd.grad(loss, (u, v))
        updates, state = tx.update(list(grads), state, params)
        params = optim.apply_updates(params, updates)
        if step in marks:
            x = (params[0].prod(-1) - params[1].prod(-1)).numpy()
            curves.append(dict(series="margin", x=step, y=margin(x, Z, labels, r)))
    x = (params[0].prod(-1) - params[1].prod(-1)).numpy()
    top = np.argsort(-np.abs(x))[:SUPPORT]
    opt = max_margin(Z, labels, r)
    gamma = margin(x, Z, labels, r)
    row = dict(r=r, margin=gamma, optimum=opt, ratio=gamma / opt if opt > 0 else math.nan,
               margin_l1=margin(x, Z, labels, 1.0), optimum_l1=max_margin(Z, labels, 1.0),
               support=float(np.isin(top, np.flatnonzero(teacher)).mean()),
               test_accuracy=float(np.mean(np.sign(Zt @ x) == lt)),
               cosine=float(x @ teacher / (np.linalg.norm(x) * np.linalg.norm(teacher) + 1e-300)),
               train_loss=float(np.mean(np.exp(-labels * (Z @ x)))))
    return dict(rows=[row], curves=curves)


__all__ = ["problem", "geometry", "norm", "margin", "max_margin", "run"]

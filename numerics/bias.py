"""Implicit bias (IB-1..3) on the generated kernels: NumPy float64, no SymPy.

A *geometry* is a separable mirror map written in the dual displacement
``delta = R'(x) - R'(x0)``: ``primal(delta)`` is the inverse mirror map derived in
:mod:`theory.bias` (clamped where a coordinate stops at a saddle), ``slope(delta)`` its
derivative ``1/R''(x)``, and ``stationarity(delta)`` the residual of ``R'(x) = R'(x0) + delta``
recomputed with the *forward* kernels ``R'`` (relative to ``max(1, |theta|)``), an independent
check of the inverse.

* :class:`Balanced` (MIR-1), :class:`Imbalanced` (MIR-2, ``L = 2``), :class:`TwoBranch`.
* :func:`bregman_point`   IB-1: ``argmin {D_R(x, x0) : X x = y}`` by damped Newton on the
  multipliers (``x = primal(X^T lambda)``, Jacobian ``X diag(1/R'') X^T``).
* :func:`one_sample_point` IB-2: ``R'(x) = R'(x0) + mu phi_q(z)``, ``mu`` the root of the
  increasing ``<z, x(mu)> - y``.
* :func:`margin_exponent`, :func:`normalized_margin`, :func:`max_margin` IB-3: the ``l_r``
  margin geometry and the optimal margin by a linear program where ``r`` is 1 or ``inf``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog

from . import special, validate
from ._generated import numpy_kernels as K

def _f64(a, name):
    a = np.asarray(a, dtype=np.float64)
    if not np.isfinite(a).all():
        raise ValueError(f"{name} must be finite")
    return a


class Geometry:
    """A separable mirror map in the dual displacement ``delta`` (arrays broadcast over leading axes)."""

    q: float
    x0: np.ndarray

    def primal(self, delta):  # pragma: no cover - interface
        raise NotImplementedError

    def slope(self, delta):  # pragma: no cover - interface
        raise NotImplementedError

    def stationarity(self, delta):  # pragma: no cover - interface
        raise NotImplementedError


class Balanced(Geometry):
    """MIR-1, balanced start ``x0`` (``L`` factors each).

    For ``L >= 2`` the factors keep their signs, so ``x`` stays in the orthant ``s`` of ``x0``
    and ``x = s (R')^-1(s theta)`` with ``s theta`` clamped to the range of ``R'`` on ``x > 0``:
    below ``R'(0) = 0`` (``m < 1``) the coordinate is on the saddle and stays at 0 (IB-2).
    ``L = 1`` is ``x = w`` (``R' = x``): no saddle, the whole line.
    """

    def __init__(self, L, q, x0):
        self.L, self.q = validate.depth(L), validate.exponent_q(q)
        self.x0 = _f64(x0, "x0")
        if self.L >= 2 and (self.x0 == 0).any():
            raise ValueError("x0 must be non-zero for L >= 2 (x = 0 is a saddle)")
        self.sign = np.sign(self.x0)
        self._k = (np.float64(self.L), np.float64(self.q))   # NumPy scalars: 1/beta = inf at m = 1
        self.theta0 = K.mir1_grad(self.x0, *self._k)
        # range (R'(0+), R'(inf)) of R' on x > 0 from the forward kernel itself; the odd kernel
        # gives sign(0) R'(0+) = NaN exactly when R'(0+) = -inf (a barrier, m >= 1)
        with np.errstate(invalid="ignore"):
            ends = K.mir1_grad(np.array([0.0, np.inf]), *self._k)
        self.lo, self.hi = np.where(np.isnan(ends), -np.inf, ends)

    def primal(self, delta):
        theta = self.theta0 + delta
        if self.L == 1:
            return np.sign(theta) * K.ib1_dual_mir1(np.abs(theta), *self._k)
        st = self.sign * theta
        with np.errstate(invalid="ignore"):
            x = K.ib1_dual_mir1(np.clip(st, self.lo, self.hi), *self._k)
        return self.sign * np.where(st >= self.hi, np.inf, x)     # the range of R' ends at x = inf

    def slope(self, delta):
        with np.errstate(divide="ignore", over="ignore"):   # R'' = inf at (or near) 0: slope 0
            return 1 / K.mir1_hess(self.primal(delta), *self._k)

    def stationarity(self, delta):
        """``|R'(x) - theta|`` where ``x != 0``; where ``x`` is clamped at the saddle, how far
        ``s theta`` lies above ``R'(0)`` (the sign condition of the clamp)."""
        x = self.primal(delta)
        theta = self.theta0 + delta
        free = np.abs(K.mir1_grad(x, *self._k) - theta)
        return np.where(x == 0, np.maximum(self.sign * theta - self.lo, 0), free) / np.maximum(1, np.abs(theta))


class Imbalanced(Geometry):
    """MIR-2: ``L = 2`` with ``c_i = |u_i|^q - |v_i|^q != 0`` (``x`` may cross 0). The inverse map
    is the generated hyperbolic closed form at ``q = 2`` and a monotone root solve of the
    generated ``R'`` otherwise."""

    def __init__(self, q, c, x0):
        self.q = validate.exponent_q(q)
        self.x0 = _f64(x0, "x0")
        self.c = np.abs(_f64(c, "c")) + np.zeros_like(self.x0)
        if (self.c == 0).any():
            raise ValueError("c must be non-zero (c = 0 is the balanced potential, MIR-1)")
        self.theta0 = K.mir2_grad(self.x0, self.q, self.c)

    def primal(self, delta):
        theta = self.theta0 + delta
        if self.q == 2.0:
            return K.ib1_dual_mir2(theta, self.c)
        return special.solve_increasing(
            lambda x: (K.mir2_grad(x, self.q, self.c) - theta, K.mir2_hess(x, self.q, self.c)),
            self.x0 + np.zeros_like(theta))

    def slope(self, delta):
        return 1 / K.mir2_hess(self.primal(delta), self.q, self.c)

    def stationarity(self, delta):
        theta = self.theta0 + delta
        return np.abs(K.mir2_grad(self.primal(delta), self.q, self.c) - theta) / np.maximum(1, np.abs(theta))


class TwoBranch(Geometry):
    """``x = A - B``, ``A = prod u``, ``B = prod v`` from ``u = v = alpha`` (``x0 = 0``): each branch
    is a balanced MIR-1 flow from ``a = alpha^L`` with dual ``G(a) + delta`` and ``G(a) - delta``."""

    def __init__(self, L, q, alpha, n):
        a = validate.positive(alpha, "alpha") ** validate.depth(L)
        self.branch = Balanced(L, q, np.full(validate.positive_int(n, "n"), a))
        self.q, self.L, self.alpha = self.branch.q, self.branch.L, float(alpha)
        self.x0 = np.zeros(n)

    def branches(self, delta):
        return self.branch.primal(delta), self.branch.primal(-delta)

    def primal(self, delta):
        A, B = self.branches(delta)
        return A - B

    def slope(self, delta):
        return self.branch.slope(delta) + self.branch.slope(-delta)

    def stationarity(self, delta):
        return np.maximum(self.branch.stationarity(delta), self.branch.stationarity(-delta))


@dataclass
class BregmanPoint:
    """The KKT point of ``argmin {D_R(x, x0) : X x = y}`` and its residuals."""

    x: np.ndarray
    lam: np.ndarray
    feasibility: float     # max |X x - y| / (max|X| max|x| + max|y|)
    stationarity: float    # max of Geometry.stationarity at the solution
    iterations: int

    @property
    def kkt_residual(self) -> float:
        return max(self.feasibility, self.stationarity)


class Infeasible(ArithmeticError):
    """``{X x = y}`` does not meet the domain of the geometry; ``certificate`` is a Farkas vector
    ``lambda`` that proves it (see :func:`farkas_certificate`)."""

    def __init__(self, message, certificate):
        super().__init__(message)
        self.certificate = certificate


def domain(geometry: Geometry):
    """The primal domain as ``(s, closed)``: ``s x >= 0`` (``closed``) or ``s x > 0`` for the sign
    vector ``s`` of a balanced ``L >= 2`` start (factors keep their signs; ``x = 0`` is reachable
    only where ``R'(0+)`` is finite); ``(None, True)`` for the whole space."""
    if isinstance(geometry, Balanced) and geometry.L >= 2:
        return geometry.sign, bool(np.isfinite(geometry.lo))
    return None, True


def farkas_certificate(X, y, s=None, closed=True, tol=1e-9):
    """A ``lambda`` proving ``{X x = y, x in D}`` empty, or ``None`` if none is found.

    * ``D = R^n``: ``X^T lambda = 0``, ``<lambda, y> > 0`` (``y`` off the range of ``X``).
    * ``D = {s x >= 0}``: ``s X^T lambda >= 0``, ``<lambda, y> < 0`` (Farkas' lemma).
    * ``D = {s x > 0}``: ``s X^T lambda >= 0``, ``<lambda, y> <= 0``, not both zero (Motzkin):
      ``0 < <s X^T lambda, s x> = <lambda, y> <= 0`` for any feasible ``x``.

    Found by a linear program (HiGHS) over ``|lambda_i| <= 1``; ``tol`` is relative to the scale
    ``max|X| + max|y|``."""
    X, y = _f64(X, "X"), _f64(y, "y")
    scale = tol * (np.abs(X).max() + np.abs(y).max())
    if s is None:
        lam = y - X @ np.linalg.lstsq(X, y, rcond=None)[0]
        return lam / np.abs(lam).max() if lam @ y > scale * np.abs(lam).max() else None
    A = -(s[:, None] * X.T)                                   # A lambda <= 0: s X^T lambda >= 0
    if closed:
        res = linprog(y, A_ub=A, b_ub=np.zeros(len(s)), bounds=[(-1, 1)] * len(y), method="highs")
        return res.x if res.status == 0 and res.fun < -scale else None
    res = linprog(y + A.sum(0), A_ub=np.vstack([A, y[None]]), b_ub=np.zeros(len(s) + 1),
                  bounds=[(-1, 1)] * len(y), method="highs")
    return res.x if res.status == 0 and res.fun < -scale else None


def _exact_step(g, expand: bool) -> float:
    """The largest bracketed ``t`` below the zero of the increasing ``g`` (``g(0) < 0``), to 0.1%:
    ``1`` if ``g(1) <= 0`` and not ``expand``, else found by doubling and bisection."""
    lo, hi = 0.0, 1.0
    while g(hi) <= 0:
        lo, hi = hi, 2 * hi
        if not expand or hi > 2.0**40:
            return lo
    while hi - lo > 1e-3 * hi and hi > 1e-14:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if g(mid) <= 0 else (lo, mid)
    return lo


def bregman_point(geometry: Geometry, X, y, *, tol: float = 1e-14, maxiter: int = 500) -> BregmanPoint:
    """IB-1: the Bregman projection of ``x0`` onto ``{X x = y}`` in ``geometry``.

    Newton on the convex dual ``phi(lambda) = sum R*(R'(x0) + X^T lambda) - <lambda, y>``: its
    gradient is ``F = X x(lambda) - y`` with ``x(lambda) = primal(X^T lambda)``, its Hessian
    ``H = X diag(1/R'') X^T``. Globalized: the direction is ``d = -(H + mu I)^+ F`` (``mu = 0``,
    pure Newton, after a step of length ``>= 1``; ``mu`` grows with ``|F|`` after a damped or
    failed step, which bends ``d`` towards ``-F`` where ``H`` is flat or singular), and the step is the
    exact line minimum: the zero of the increasing ``g(t) = <d, F(lambda + t d)>``, so ``phi``
    decreases at every step without evaluating ``R*``.
    Stops when ``max|X x - y| / (max|X| max|x| + max|y|) <= tol``. If it ends above ``1e-10``,
    raises :class:`Infeasible` with a Farkas certificate when ``{X x = y}`` misses the domain of
    the geometry (:func:`farkas_certificate`), else ``ArithmeticError``.
    """
    X, y = _f64(X, "X"), _f64(y, "y")
    n = geometry.x0.shape[-1]
    if X.ndim != 2 or X.shape[1] != n:
        raise ValueError(f"X must have shape (N, {n}) (n = {n}, the size of x0), got {X.shape}")
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must have shape ({X.shape[0]},) (one value per row of X), got {y.shape}")
    lam = np.zeros(X.shape[0])
    it, err, mu = 0, math.inf, 0.0
    for it in range(1, maxiter + 1):
        delta = X.T @ lam
        x = geometry.primal(delta)
        F = X @ x - y
        scale = np.abs(X).max() * np.abs(x).max() + np.abs(y).max()
        if not np.isfinite(scale):              # lambda diverges: the dual is unbounded below
            break
        err = float(np.abs(F).max() / scale) if scale > 0 else 0.0    # X = 0, y = 0: x0 solves it
        if err <= tol:
            break
        H = X @ (geometry.slope(delta)[:, None] * X.T)
        d = np.linalg.lstsq(H + mu * np.eye(len(y)), -F, rcond=None)[0]
        Xd, dy = X.T @ d, d @ y

        def g(t):
            with np.errstate(invalid="ignore", over="ignore"):
                v = Xd @ geometry.primal(delta + t * Xd) - dy
            return v if np.isfinite(v) else math.inf      # past the range of R': phi = +inf
        t = _exact_step(g, expand=mu > 0) if g(0.0) < 0 else 0.0
        if t == 1.0 and mu == 0:
            lam = lam + d
            continue
        moved = t > 0 and np.any(t * np.abs(d) > 4 * np.finfo(float).eps * np.abs(lam))
        if moved:
            lam = lam + t * d
        elif mu > 1e12 * (1 + np.abs(H).max()):
            break
        mu = 0.0 if t >= 1.0 else max(10 * mu, float(np.abs(F).max()))
    if not err <= 1e-10:
        s, closed = domain(geometry)
        cert = farkas_certificate(X, y, s, closed)
        if cert is not None:
            if s is None:
                where, proof = "the range of X", f"max|X^T lambda| = {np.abs(X.T @ cert).max():.1e}"
            else:
                where = f"the {'closed' if closed else 'open'} orthant of x0 (where this geometry lives)"
                proof = f"min s X^T lambda = {np.min(s * (X.T @ cert)):.1e}"
            raise Infeasible(f"bregman_point: infeasible: no x in {where} solves X x = y; Farkas "
                             f"certificate lambda = {np.array2string(cert, precision=3)} "
                             f"(<lambda, y> = {cert @ y:.3g}, {proof})", cert)
        raise ArithmeticError(f"bregman_point: the problem is feasible but the dual Newton method "
                              f"stopped at relative feasibility {err:.2e} after {it} iterations; "
                              f"try a larger maxiter (now {maxiter})")
    return BregmanPoint(x, lam, err, float(geometry.stationarity(X.T @ lam).max()), it)


def one_sample_point(geometry: Geometry, z, y: float):
    """IB-2: ``x_inf`` with ``R'(x_inf) = R'(x0) + mu phi_q(z)`` and ``<z, x_inf> = y``.

    ``h(mu) = <z, primal(mu phi_q(z))> - y`` is increasing (slope ``sum |z_i|^q / R''``); its root
    is found by :func:`numerics.special.solve_increasing`. Returns ``(x_inf, mu)``.
    """
    z = _f64(z, "z")
    y = validate.real(y, "y")
    d = K.phi(z, geometry.q)

    def h(mu):
        delta = mu[:, None] * d
        return (geometry.primal(delta) * z).sum(-1) - y, (geometry.slope(delta) * z * d).sum(-1)

    try:
        mu = special.solve_increasing(h, np.zeros(1))
    except ArithmeticError as exc:
        raise ArithmeticError(f"one_sample_point: no root of <z, x(mu)> = y ({exc}); y must be "
                              f"reachable from x0 in this geometry") from None
    return geometry.primal(mu[0] * d), float(mu[0])


# --- IB-3: margins -------------------------------------------------------------------------

def margin_exponent(L, q) -> float:
    """``r = p/L`` of the ``l_r`` margin geometry (generated ``1/r = L(q-1)/q``); ``inf`` at ``q = 1``."""
    inv = float(K.ib3_inverse_exponent(validate.depth(L), validate.exponent_q(q)))
    return math.inf if inv == 0 else 1 / inv


def quasi_norm(x, r: float):
    """``(sum_i |x_i|^r)^(1/r)`` over the last axis (``max |x_i|`` at ``r = inf``)."""
    ax = np.abs(np.asarray(x, dtype=np.float64))
    if math.isinf(r):
        return ax.max(-1)
    return (ax**r).sum(-1) ** (1 / r)


def normalized_margin(x, A, r: float):
    """``min_n <a_n, x> / ||x||_r`` for the signed samples ``a_n = y_n z_n`` (rows of ``A``)."""
    x = np.asarray(x, dtype=np.float64)
    return (x @ _f64(A, "A").T).min(-1) / quasi_norm(x, r)


def max_margin(A, r: float):
    """The optimal margin ``max {min_n <a_n, x> : ||x||_r <= 1}`` and a maximizer, by a linear
    program (HiGHS) for ``r = 1`` (``x = x+ - x-``) or ``r = inf`` (box). Raises ``ValueError``
    for another ``r`` and ``ArithmeticError`` if the solver fails."""
    A = _f64(A, "A")
    N, n = A.shape
    ones = np.ones((N, 1))
    if r == 1:
        c = np.r_[np.zeros(2 * n), -1.0]
        A_ub = np.vstack([np.hstack([-A, A, ones]), np.r_[np.ones(2 * n), 0.0][None]])
        res = linprog(c, A_ub=A_ub, b_ub=np.r_[np.zeros(N), 1.0],
                      bounds=[(0, None)] * (2 * n) + [(None, None)], method="highs")
        sol = None if res.x is None else res.x[:n] - res.x[n:2 * n]
    elif math.isinf(r):
        res = linprog(np.r_[np.zeros(n), -1.0], A_ub=np.hstack([-A, ones]), b_ub=np.zeros(N),
                      bounds=[(-1, 1)] * n + [(None, None)], method="highs")
        sol = None if res.x is None else res.x[:n]
    else:
        raise ValueError(f"the max-margin problem is a linear program only for r = 1 or r = inf, got r = {r}")
    if res.status != 0:
        raise ArithmeticError(f"max_margin: linear program failed ({res.message})")
    return float(-res.fun), sol



def min_l1_interpolant(X, y):
    """``argmin {||x||_1 : X x = y}`` (basis pursuit) by a linear program (HiGHS, ``x = x+ - x-``):
    the ``alpha -> 0`` limit of gradient flow on the two-branch ``L = 2`` model (IB-1)."""
    X, y = _f64(X, "X"), _f64(y, "y")
    n = X.shape[1]
    res = linprog(np.ones(2 * n), A_eq=np.hstack([X, -X]), b_eq=y, bounds=[(0, None)] * (2 * n),
                  method="highs")
    if res.status != 0:
        raise ArithmeticError(f"min_l1_interpolant: linear program failed ({res.message})")
    return res.x[:n] - res.x[n:]

__all__ = ["Balanced", "Imbalanced", "TwoBranch", "BregmanPoint", "Infeasible", "domain",
           "farkas_certificate", "bregman_point", "one_sample_point",
           "margin_exponent", "quasi_norm", "normalized_margin", "max_margin", "min_l1_interpolant"]

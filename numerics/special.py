"""Special functions and helpers that the generated kernels call, for NumPy and torch alike.

Every function takes NumPy arrays, torch tensors (any device, float64) or Python numbers
and returns the type of its array arguments.

* ``betainc(a, b, z0, z1, w0, w1)``: ``int_{z0}^{z1} t^(a-1) (1-t)^(b-1) dt`` for
  ``0 <= z0 <= z1 <= 1`` with complements ``w = 1 - z`` passed in accurately. Split at
  ``1/2``; on ``[z0, 1/2]`` expand ``(1-t)^(b-1) = sum_n (1-b)_n t^n / n!`` and on
  ``[1/2, z1]`` the mirrored series in ``s = 1 - t``. Each term integrates to
  ``[t^(a+n) / (a+n)]``, evaluated as ``hi^e (-expm1(e log(lo/hi))) / e`` so that it is
  exact through ``e = 0`` (the logarithm of the ``m = 1`` cases) and loses nothing to
  cancellation. Both series converge like ``2^-n``; ``TERMS`` terms reach double
  precision for the exponents this package produces (``|a|, |b| <= 2``). Divergent
  integrals return ``+inf``; nothing returns a silent NaN.
* ``boxcox(x, lam) = (x^lam - 1)/lam`` with ``log x`` at ``lam = 0``; ``boxcox1p(z, lam)``
  is ``boxcox(1 + z, lam)`` without the rounding of ``1 + z``.
* ``solve_increasing``: vectorized safeguarded Newton for increasing scalar equations.
* ``integrate``: tanh-sinh quadrature of a vectorized integrand (quadrature fallback).
"""

from __future__ import annotations

import math

import numpy as np

try:  # torch is a dependency, but the NumPy kernels must not need it at import time
    import torch
except ImportError:  # pragma: no cover
    torch = None

TERMS = 64


def _is_torch(*args) -> bool:
    return torch is not None and any(isinstance(a, torch.Tensor) for a in args)


def _xp(*args):
    return torch if _is_torch(*args) else np


def _like(value, *refs):
    """``value`` as an array of the backend (and device) of ``refs``."""
    if _is_torch(*refs):
        ref = next(r for r in refs if isinstance(r, torch.Tensor))
        return torch.as_tensor(value, dtype=torch.float64, device=ref.device)
    return np.asarray(value, dtype=np.float64)


def where(cond, a, b):
    """``where`` that accepts Python bools and numbers as well as arrays/tensors."""
    if isinstance(cond, (bool, np.bool_)) and not _is_torch(a, b):
        return np.asarray(a if cond else b, dtype=np.float64) if not hasattr(a if cond else b, "shape") \
            else (a if cond else b)
    xp = _xp(cond, a, b)
    cond, a, b = _like(cond, cond, a, b) != 0, _like(a, cond, a, b), _like(b, cond, a, b)
    return xp.where(cond, a, b)


def expand_last(v):
    """Append a unit axis so that ``v`` broadcasts against arrays over the last axis."""
    if hasattr(v, "shape") and getattr(v, "ndim", 0) > 0:
        return v[..., None]
    return v


def sum_last(v):
    return v.sum(-1)


def min_last(v):
    return v.min(-1, keepdims=True) if isinstance(v, np.ndarray) else v.amin(-1, keepdim=True)


def boxcox(x, lam):
    """``(x^lam - 1) / lam``, and ``log(x)`` where ``lam == 0``."""
    xp = _xp(x, lam)
    x, lam = _like(x, x, lam), _like(lam, x, lam)
    with np.errstate(divide="ignore"):
        logx = xp.log(x)
    safe = xp.where(lam == 0, xp.ones_like(lam), lam)
    with np.errstate(invalid="ignore", over="ignore"):
        return xp.where(lam == 0, logx, xp.expm1(lam * logx) / safe)


def boxcox1p(z, lam):
    """``((1 + z)^lam - 1) / lam`` (``log1p(z)`` at ``lam = 0``), accurate for small ``z``."""
    xp = _xp(z, lam)
    z, lam = _like(z, z, lam), _like(lam, z, lam)
    l1p = xp.log1p(z)
    safe = xp.where(lam == 0, xp.ones_like(lam), lam)
    with np.errstate(invalid="ignore", over="ignore"):
        return xp.where(lam == 0, l1p, xp.expm1(lam * l1p) / safe)


def _power_integral(e, lo, hi, log_lo, log_hi, xp):
    """``(hi^e - lo^e) / e`` for ``0 <= lo <= hi``, exact through ``e = 0``."""
    diff = log_lo - log_hi                     # <= 0, -inf when lo == 0
    zero_e = e == 0
    safe_e = xp.where(zero_e, xp.ones_like(e), e)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        general = xp.exp(e * log_hi) * (-xp.expm1(e * diff)) / safe_e
        val = xp.where(zero_e, -diff, general)
    return xp.where(hi > lo, val, xp.zeros_like(val))


def _series(a, b, lo, hi, xp):
    """``int_lo^hi t^(a-1) (1-t)^(b-1) dt`` for ``0 <= lo <= hi <= 1/2``."""
    log_hi = xp.log(xp.where(hi > 0, hi, xp.ones_like(hi)))
    with np.errstate(divide="ignore"):
        log_lo = xp.log(lo)
    total = xp.zeros_like(hi + a + b)
    coef = xp.ones_like(total)                 # (1-b)_n / n!
    for n in range(TERMS):
        total = total + coef * _power_integral(a + n, lo, hi, log_lo, log_hi, xp)
        coef = coef * (n + 1 - b) / (n + 1)
    return total


def betainc(a, b, z0, z1, w0=None, w1=None):
    """Generalized incomplete beta ``B_[z0, z1](a, b)``; ``w0, w1`` are ``1 - z0, 1 - z1``."""
    xp = _xp(a, b, z0, z1, w0, w1)
    refs = (a, b, z0, z1, w0, w1)
    z0, z1 = _like(z0, *refs), _like(z1, *refs)
    w0 = 1 - z0 if w0 is None else _like(w0, *refs)
    w1 = 1 - z1 if w1 is None else _like(w1, *refs)
    a, b = _like(a, *refs), _like(b, *refs)
    half = _like(0.5, *refs)
    lower = _series(a, b, xp.minimum(z0, half), xp.minimum(z1, half), xp)
    upper = _series(b, a, xp.minimum(w1, half), xp.minimum(w0, half), xp)
    return lower + upper


def solve_increasing(residual, start, tol: float = 4e-16, maxiter: int = 200):
    """Solve ``F(v) = 0`` for ``F`` increasing, elementwise; ``residual(v) -> (F, F')``.

    A bracket is grown from ``start`` by doubling steps, then safeguarded Newton steps
    (bisection whenever Newton leaves the bracket) run until the bracket or step is below
    ``tol`` relative. Raises ``ArithmeticError`` if a root is not bracketed or not
    converged within ``maxiter`` iterations (never returns an unconverged value).
    """
    xp = _xp(start)
    v = _like(start, start).clone() if _is_torch(start) else np.array(start, dtype=np.float64)
    f, _ = residual(v)
    lo = xp.where(f <= 0, v, xp.full_like(v, -math.inf))
    hi = xp.where(f >= 0, v, xp.full_like(v, math.inf))
    step = xp.ones_like(v)
    for _ in range(maxiter):
        open_lo, open_hi = xp.isinf(lo), xp.isinf(hi)
        if not bool((open_lo | open_hi).any()):
            break
        trial = xp.where(open_hi, v + step, xp.where(open_lo, v - step, v))
        ft, _ = residual(trial)
        lo = xp.where(open_hi & (ft <= 0), trial, lo)
        hi = xp.where(open_hi & (ft >= 0), trial, hi)
        lo = xp.where(open_lo & (ft <= 0), trial, lo)
        hi = xp.where(open_lo & (ft >= 0), trial, hi)
        v = xp.where(open_lo | open_hi, trial, v)
        step = step * 2
    else:
        raise ArithmeticError("solve_increasing: could not bracket the root")
    v = 0.5 * (lo + hi)
    for _ in range(maxiter):
        f, df = residual(v)
        lo = xp.where(f <= 0, v, lo)
        hi = xp.where(f >= 0, v, hi)
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = v - f / df
        ok = (newton > lo) & (newton < hi) & xp.isfinite(newton)
        new = xp.where(ok, newton, 0.5 * (lo + hi))
        scale = 1 + xp.abs(new)
        done = (xp.abs(new - v) <= tol * scale) | (hi - lo <= tol * scale) | (f == 0)
        v = new
        if bool(done.all()):
            return v
    raise ArithmeticError("solve_increasing: Newton iteration did not converge")


# tanh-sinh rule on (-1, 1): nodes tanh(y_k), y_k = pi/2 sinh(k h), weights h pi/2 cosh(kh)/cosh(y_k)^2;
# ``_TS_GAP = 1 - |tanh(y_k)| = exp(-|y_k|)/cosh(y_k)`` keeps the nodes next to the endpoints exact.
_TS_H = 1 / 16
_TS_K = np.arange(-6 * 16, 6 * 16 + 1) * _TS_H
_TS_Y = 0.5 * np.pi * np.sinh(_TS_K)
_TS_GAP = np.exp(-np.abs(_TS_Y)) / np.cosh(_TS_Y)
_TS_KEEP = _TS_GAP > 1e-300
_TS_LEFT = (_TS_K < 0)[_TS_KEEP]
_TS_W = (_TS_H * 0.5 * np.pi * np.cosh(_TS_K) / np.cosh(_TS_Y) ** 2)[_TS_KEEP]
_TS_GAP = _TS_GAP[_TS_KEEP]


def integrate(fun, lo, hi):
    """``int_lo^hi fun(u) du`` elementwise over the shapes of ``lo``/``hi`` (tanh-sinh).

    ``fun`` receives ``u`` with a trailing node axis. Integrable endpoint singularities
    are handled by the double-exponential clustering of the nodes.
    """
    xp = _xp(lo, hi)
    lo, hi = _like(lo, lo, hi), _like(hi, lo, hi)
    weights, gap = _like(_TS_W, lo, hi), _like(_TS_GAP, lo, hi)
    left = _like(_TS_LEFT, lo, hi) != 0
    half = 0.5 * (hi - lo)[..., None]
    u = xp.where(left, lo[..., None] + half * gap, hi[..., None] - half * gap)
    return (fun(u) * weights * half).sum(-1)

"""Polynomials in ascending coefficients ``(..., D+1)``: products, powers, derivatives,
evaluation, and the earliest downcrossing of a batch (companion-matrix eigenvalues checked for
a sign change, then bisected on the polynomial). Used by the exact sign flows
(:mod:`numerics.sign`, :mod:`numerics.sign_coupled`)."""

from __future__ import annotations

import math

import numpy as np
import torch

_IMAG = 1e-7          # roots with |Im| <= _IMAG (|Re| + T) are taken as real candidates


def product_polynomial(w, v):
    """Ascending coefficients of ``prod_k (w_k + v_k t)`` over the last axis: ``(..., L+1)`` (torch)."""
    c = torch.ones_like(w[..., :1])
    for k in range(w.shape[-1]):
        z = torch.zeros_like(c[..., :1])
        c = torch.cat([c * w[..., k:k + 1], z], -1) + torch.cat([z, c * v[..., k:k + 1]], -1)
    return c


def horner(c, t):
    """``sum_d c_d t^d`` for coefficients ``(..., D+1)`` and times broadcasting to ``(...)``
    (torch or numpy)."""
    out = c[..., -1] + 0 * t
    for d in range(c.shape[-1] - 2, -1, -1):
        out = out * t + c[..., d]
    return out


def real_roots(c, T):
    """Candidate real roots in ``(0, T]`` of the polynomials ``c`` ``(P, D+1)`` (ascending,
    numpy), sorted, ``inf`` elsewhere: ``(P, D)``. Eigenvalues of the companion matrix whose
    imaginary part is negligible on the scale of ``T`` count (so a near-double root is not
    lost; callers check for a sign change). Coefficients negligible on ``[0, T]`` are dropped
    (the effective degree varies per polynomial) and the rest padded with roots at 0."""
    c, T = np.asarray(c, dtype=float), np.asarray(T, dtype=float)
    P, D1 = c.shape
    D = D1 - 1
    if D == 0:
        return np.zeros((P, 0))
    mag = np.abs(c) * T[:, None] ** np.arange(D1)
    keep = mag > 1e-14 * mag.max(1, keepdims=True)
    deg = np.where(keep, np.arange(D1), 0).max(1)
    idx = np.arange(D1)[None, :] - (D - deg)[:, None]    # multiply by t^(D - deg): leading coefficient first
    padded = np.where(idx >= 0, np.take_along_axis(c, np.maximum(idx, 0), 1), 0.0)
    lead = np.where(padded[:, D:] == 0, 1.0, padded[:, D:])
    comp = np.zeros((P, D, D))
    comp[:, 1:, :-1] = np.eye(D - 1)
    comp[:, :, -1] = -padded[:, :D] / lead
    roots = np.linalg.eigvals(comp)
    re, im = roots.real, roots.imag
    ok = (np.abs(im) <= _IMAG * (np.abs(re) + T[:, None])) & (re > 0) & (re <= T[:, None]) & (deg > 0)[:, None]
    return np.sort(np.where(ok, re, math.inf), 1)


def first_downcrossing(c, T):
    """Earliest ``t in (0, T]`` where the polynomial ``c`` (numpy ``(P, D+1)``) goes from ``> 0``
    to ``<= 0``, with a bracket ``(lo, hi)`` around it; ``inf`` where there is none. Shapes ``(P,)``."""
    c, T = np.asarray(c, dtype=float), np.asarray(T, dtype=float)
    r = real_roots(c, T)
    inf = np.full(len(c), math.inf)
    if r.shape[1] == 0:
        return inf, inf, inf
    prev = np.concatenate([np.zeros_like(r[:, :1]), r[:, :-1]], 1)
    nxt = np.concatenate([r[:, 1:], np.full_like(r[:, :1], math.inf)], 1)
    fin = np.isfinite(r)
    with np.errstate(invalid="ignore"):             # inf - inf off the finite roots
        lo = 0.5 * (prev + r)
        hi = np.minimum(0.5 * (r + nxt), 2 * r - lo)
    down = fin & (horner(c[:, None, :], np.where(fin, lo, 0.0)) > 0) & \
        (horner(c[:, None, :], np.where(fin, hi, 0.0)) <= 0)
    first = np.where(down, np.arange(r.shape[1]), r.shape[1]).min(1)
    found = first < r.shape[1]
    k = np.minimum(first, r.shape[1] - 1)[:, None]
    pick = lambda a: np.where(found, np.take_along_axis(a, k, 1)[:, 0], inf)     # noqa: E731
    return pick(r), pick(lo), pick(hi)


def polymul(a, b):
    """Product of the polynomials ``a`` ``(P, D1+1)`` and ``b`` ``(P, D2+1)`` (numpy)."""
    out = np.zeros((a.shape[0], a.shape[1] + b.shape[1] - 1))
    for i in range(a.shape[1]):
        out[:, i:i + b.shape[1]] += a[:, i:i + 1] * b
    return out


def polypow(a, k: int):
    """``a^k`` (numpy, ``k >= 0``)."""
    out = np.ones((a.shape[0], 1))
    for _ in range(k):
        out = polymul(out, a)
    return out


def polyder(a):
    """Derivative (numpy); a constant gives the zero polynomial of degree 0."""
    if a.shape[1] == 1:
        return np.zeros_like(a)
    return a[:, 1:] * np.arange(1, a.shape[1])


def bisect_root(c, lo: float, hi: float, iters: int = 200) -> float:
    """The downcrossing of the polynomial ``c`` ``(D+1,)`` in ``(lo, hi]`` (``c(lo) > 0 >= c(hi)``)
    to adjacent floats: the first float where ``c <= 0`` (scalar Horner in Python floats)."""
    cs = [float(v) for v in c[::-1]]

    def value(t):
        out = 0.0
        for v in cs:
            out = out * t + v
        return out
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if not lo < mid < hi:
            break
        if value(mid) <= 0:
            hi = mid
        else:
            lo = mid
    return hi


def root_lower_bound(c):
    """A time before which the polynomials ``c`` ``(P, D+1)`` (numpy) stay ``> 0``: with
    ``c_0 > 0``, ``min_k (c_0 / (D |c_k|))^(1/k)`` (then ``sum_k |c_k| t^k <= c_0``); 0 where
    ``c_0 <= 0``."""
    D = c.shape[1] - 1
    if D == 0:
        return np.where(c[:, 0] > 0, math.inf, 0.0)
    k = np.arange(1, D + 1)
    high = D * np.abs(c[:, 1:])
    ratio = np.where(high > 0, np.maximum(c[:, :1], 0) / np.where(high > 0, high, 1.0), math.inf)
    return np.where(c[:, 0] > 0, (ratio ** (1.0 / k)).min(1), 0.0)


def earliest_downcrossing(c, T: float, chunk: int = 16):
    """The earliest downcrossing in ``(0, T]`` over the polynomials ``c`` ``(P, D+1)`` (numpy):
    ``(time, index)``, or ``(inf, -1)``. Only polynomials whose :func:`root_lower_bound` lies
    before the best time found so far get eigenvalues (``chunk`` at a time, smallest bound
    first); the winner is bisected to adjacent floats."""
    bound = root_lower_bound(c)
    order = np.argsort(bound)
    best, best_j = math.inf, -1
    for s in range(0, len(order), chunk):
        part = order[s:s + chunk]
        part = part[bound[part] < min(best, T)]
        if not len(part):
            break
        r, lo, hi = first_downcrossing(c[part], np.full(len(part), T))
        j = int(np.argmin(r))
        if r[j] < math.inf:
            root = bisect_root(c[part[j]], float(lo[j]), float(hi[j]))
            if root < best:
                best, best_j = root, int(part[j])
    return best, best_j


__all__ = ["product_polynomial", "horner", "real_roots", "first_downcrossing", "polymul", "polypow", "polyder",
           "bisect_root",
           "root_lower_bound", "earliest_downcrossing"]

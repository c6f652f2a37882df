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
    """Ascending coefficients of ``prod_k (w_k + v_k t)`` over the last axis: ``(..., L+1)``."""
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
    """Candidate real roots in ``(0, T]`` of the polynomials ``c`` ``(P, D+1)`` (ascending),
    sorted, ``inf`` elsewhere: ``(P, D)``. Eigenvalues of the companion matrix whose imaginary
    part is negligible on the scale of ``T`` count (so a near-double root is not lost; callers
    check for a sign change). Coefficients negligible on ``[0, T]`` are dropped (the effective
    degree varies per polynomial) and the rest padded with roots at 0."""
    P, D1 = c.shape
    D = D1 - 1
    powers = T[:, None] ** torch.arange(D1, dtype=c.dtype, device=c.device)
    mag = c.abs() * powers
    keep = mag > 1e-14 * mag.amax(1, keepdim=True)
    deg = torch.where(keep, torch.arange(D1, device=c.device), torch.zeros_like(keep, dtype=torch.long)).amax(1)
    shift = D - deg                                   # multiply by t^shift: leading coefficient first
    idx = torch.arange(D1, device=c.device)[None, :] - shift[:, None]
    padded = torch.where(idx >= 0, torch.gather(c, 1, idx.clamp_min(0)), torch.zeros_like(c))
    lead = padded[:, D:].clone()
    lead = torch.where(lead == 0, torch.ones_like(lead), lead)
    comp = torch.zeros(P, D, D, dtype=c.dtype, device=c.device)
    comp[:, 1:, :-1] = torch.eye(D - 1, dtype=c.dtype, device=c.device)
    comp[:, :, -1] = -padded[:, :D] / lead
    roots = torch.linalg.eigvals(comp)
    re, im = roots.real, roots.imag
    ok = (im.abs() <= _IMAG * (re.abs() + T[:, None])) & (re > 0) & (re <= T[:, None]) & (deg > 0)[:, None]
    return torch.where(ok, re, torch.full_like(re, math.inf)).sort(1).values


def first_downcrossing(c, T):
    """Earliest ``t in (0, T]`` where the polynomial ``c`` goes from ``> 0`` to ``<= 0``, with a
    bracket ``(lo, hi)`` around it; ``inf`` where there is none. Shapes ``(P,)``."""
    r = real_roots(c, T)
    prev = torch.cat([torch.zeros_like(r[:, :1]), r[:, :-1]], 1)
    nxt = torch.cat([r[:, 1:], torch.full_like(r[:, :1], math.inf)], 1)
    lo = 0.5 * (prev + r)
    hi = torch.minimum(0.5 * (r + nxt), 2 * r - lo)
    fin = torch.isfinite(r)
    clo = torch.where(fin, lo, torch.zeros_like(lo))
    chi = torch.where(fin, hi, torch.zeros_like(hi))
    down = fin & (horner(c[:, None, :], clo) > 0) & (horner(c[:, None, :], chi) <= 0)
    first = torch.where(down, torch.arange(r.shape[1], device=c.device), r.shape[1]).amin(1)
    found = first < r.shape[1]
    k = first.clamp(max=r.shape[1] - 1)[:, None]
    inf = torch.full_like(T, math.inf)
    pick = lambda a: torch.where(found, a.gather(1, k)[:, 0], inf)     # noqa: E731
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


def bisect_root(c, lo, hi, iters: int = 200):
    """The downcrossing of the polynomial ``c`` ``(D+1,)`` in ``(lo, hi]`` (``c(lo) > 0 >= c(hi)``)
    to adjacent floats: the first float where ``c <= 0``."""
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if not lo < mid < hi:
            break
        if horner(c, mid) <= 0:
            hi = mid
        else:
            lo = mid
    return hi


__all__ = ["product_polynomial", "horner", "real_roots", "first_downcrossing", "polymul", "polypow", "polyder",
           "bisect_root"]

"""Geometry primitives of the deep diagonal steepest flows (a leaf of ``numerics``).

``phi_q(z) = sign(z)|z|^(q-1)`` (the generated kernel, defined once), its mode-frozen form,
and the products ``prod_{j != k} w_j`` of the other factors.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from ._generated import torch_kernels as K


def exclusive_products(ws) -> tuple[list, torch.Tensor]:
    """For factors ``w_1..w_L`` (a sequence of equal-shape tensors): the products
    ``prod_{j != k} w_j`` (a list) and the full product ``x``, by prefix and suffix products
    (no division, so exact where a factor is 0). Taking the factors as views
    ``w.unbind(-1)`` and stacking the results last keeps every tensor of a batched field in
    the integrator's row-major layout (no transposing copies)."""
    L = len(ws)
    if L == 1:
        return [torch.ones_like(ws[0])], ws[0]
    pre = [None, ws[0]]
    for k in range(1, L - 1):
        pre.append(pre[-1] * ws[k])
    suf = [ws[L - 1]]
    for k in range(L - 2, 0, -1):
        suf.append(suf[-1] * ws[k])
    suf = suf[::-1] + [None]
    return [suf[0]] + [pre[k] * suf[k] for k in range(1, L - 1)] + [pre[L - 1]], pre[L - 1] * ws[L - 1]


def exclusive_prod(w: torch.Tensor) -> torch.Tensor:
    """``prod_{j != k} w_j`` over the last axis, without dividing (exact at ``w_k = 0``)."""
    return torch.stack(exclusive_products(w.unbind(-1))[0], -1)


def phi(z, q):
    """The generated ``phi_q``; ``q`` a float or a tensor broadcasting against ``z``.
    Exact shortcuts for uniform ``q = 2`` (identity) and ``q = 1`` (sign)."""
    if isinstance(q, float):
        if q == 2.0:
            return z
        if q == 1.0:
            return torch.sign(z)
    return K.phi(z, q)


class Held(NamedTuple):
    """The signs a frozen mode holds for ``phi_q``'s argument: ``sigma`` (0 where none is
    held), where one is held, and whether one is held everywhere (then the argument's own
    sign is never read). Built once per mode by :func:`hold`, read by every stage of a step."""

    sigma: torch.Tensor
    fixed: torch.Tensor
    everywhere: bool


def hold(sigma: torch.Tensor) -> Held | None:
    """The :class:`Held` signs of ``sigma``; ``None`` where none is held (the plain ``phi_q``)."""
    fixed = sigma != 0
    if not bool(fixed.any()):
        return None
    return Held(sigma, fixed, bool(fixed.all()))


def frozen_phi(z, q, held: Held | None):
    """``phi_q(z)`` with the sign held at ``sigma`` where ``sigma != 0`` (mode freezing)."""
    if held is None:
        return phi(z, q)
    sign = held.sigma if held.everywhere else torch.where(held.fixed, held.sigma, torch.sign(z))
    return sign * phi(z.abs(), q)


__all__ = ["Held", "exclusive_prod", "exclusive_products", "frozen_phi", "hold", "phi"]


def pair_products(w: torch.Tensor) -> torch.Tensor:
    """``prod_{m not in {k, l}} w_m`` as ``(..., L, L)`` (0 on the diagonal), without division:
    row ``k`` is :func:`exclusive_prod` of ``w`` with ``w_k`` replaced by 1 (the same products,
    in the same order, as over the factors other than ``k``)."""
    L = w.shape[-1]
    eye = torch.eye(L, dtype=torch.bool, device=w.device)
    rows = torch.where(eye, torch.ones_like(w)[..., None, :], w[..., None, :])
    return torch.where(eye, torch.zeros_like(rows), exclusive_prod(rows))

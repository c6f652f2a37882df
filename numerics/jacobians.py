"""Jacobians of the steepest flow fields (the chain rule of :mod:`theory.jacobians`).

The scalar pieces are generated kernels: ``phi_q'(z) = (q-1)|z|^(q-2)`` and the MIR-1
mobility ``1/R''(x) = L|x|^m`` with its derivative. ``phi_q'`` is unbounded at ``z = 0`` for
``q < 2``; it is evaluated at ``max(|z|, Z_FLOOR)``, which keeps the entry finite and still far
beyond any ``1/h`` (a stiff stepper then damps that component in one step, as it would the
exact limit). Frozen (sliding or resting) coordinates have zero rows: their field is 0.
"""

from __future__ import annotations

import torch

from ._generated import torch_kernels as K
from .integrate.linsolve import DiagonalPlusLowRank

Z_FLOOR = 1e-150


def steepest_slope(z, q):
    """``phi_q'(z)`` with ``|z|`` floored at :data:`Z_FLOOR`; ``q`` a float or broadcasting tensor."""
    if isinstance(q, float) and q == 2.0:
        return torch.ones_like(z)
    return K.phi_prime(z.abs().clamp_min(Z_FLOOR), q)


def mirror_jacobian(g, H, slope, mobility, mobility_prime, phi_g, active):
    """``d/dx`` of ``dx_i/dt = -phi_q(g_i) mobility(x_i)``, ``g = grad f(x)``, ``H`` its Hessian
    ``(B, n, n)``: ``J = -diag(phi_q'(g) mobility) H - diag(phi_q(g) mobility')``; rows of
    inactive coordinates are 0."""
    zero = torch.zeros_like(g)
    J = H * torch.where(active, -slope * mobility, zero)[..., None]
    J.diagonal(dim1=-2, dim2=-1).sub_(torch.where(active, phi_g * mobility_prime, zero))
    return J


def mirror_jacobian_low_rank(U, c, slope, mobility, mobility_prime, phi_g, active):
    """:func:`mirror_jacobian` for a Hessian ``H = U diag(c) U^T`` (``U`` ``(n, r)``, ``c >= 0``
    ``(B, r)``), kept factored: ``J = diag(-phi_q(g) mobility') - diag(phi_q'(g) mobility) H``,
    the form :mod:`numerics.integrate.linsolve` solves in ``O(n r^2)``."""
    zero = torch.zeros_like(phi_g)
    return DiagonalPlusLowRank(torch.where(active, -phi_g * mobility_prime, zero),
                               torch.where(active, slope * mobility, zero), U, c)


def _product_jacobian(r, pair, g, H):
    """``dz_ik/dw_jl = r_ik H_ij r_jl + [i = j] g_i pair_ikl`` of ``z_ik = g_i r_ik``, ``(B, n, L, n, L)``."""
    n = r.shape[1]
    dz = r[:, :, :, None, None] * H[:, :, None, :, None] * r[:, None, None, :, :]
    idx = torch.arange(n, device=r.device)
    dz[:, idx, :, idx, :] += (g[..., None, None] * pair).transpose(0, 1)
    return dz


def parameter_jacobian(r, pair, g, H, slope, active):
    """``d/dw`` of ``dw_ik/dt = -phi_q(z_ik)``, ``z_ik = g_i r_ik``, ``r`` the exclusive products
    ``(B, n, L)``, ``pair`` the pair products ``prod_{m != k, l} w_im`` ``(B, n, L, L)``:
    ``J = -diag(phi_q'(z)) (r_ik H_ij r_jl + [i = j] g_i pair_ikl)`` as ``(B, nL, nL)``."""
    B, n, L = r.shape
    J = -(slope * active[..., None])[..., None, None] * _product_jacobian(r, pair, g, H)
    return J.reshape(B, n * L, n * L)


def decay_jacobian(r, pair, g, H, slope, active, nu, coupled: bool):
    """``d/dw`` of the weight-decay fields (:func:`theory.jacobians.decay_jacobian`), ``nu`` ``(B,)``,
    ``slope`` the ``phi_q'`` of the field's argument: decoupled ``dw/dt = -phi_q(z) - nu w``,
    ``J = -diag(phi_q'(z)) dz/dw - nu I``; coupled ``dw/dt = -phi_q(z + nu w)``,
    ``J = -diag(phi_q'(z + nu w)) (dz/dw + nu I)``; rows of inactive coordinates are 0."""
    B, n, L = r.shape
    live = (slope * active[..., None]).reshape(B, n * L, 1)
    dz = _product_jacobian(r, pair, g, H).reshape(B, n * L, n * L)
    eye = torch.eye(n * L, dtype=r.dtype, device=r.device) * nu[:, None, None]
    if coupled:
        return -live * (dz + eye)
    return -live * dz - eye * active.repeat_interleave(L, 1)[..., None]

"""Extreme Hessian eigenvalues by Lanczos on Hessian-vector products (torch.autograd).

``hvp(v) = d/de grad F(w + e v) = (d^2 F / dw^2) v`` by double backward, never forming the
Hessian. ``lanczos(hvp, n, k)`` builds the Krylov basis ``v, H v, ..., H^(k-1) v`` with full
reorthogonalization (float64) and returns the eigenvalues of the tridiagonal matrix (Ritz
values): the extreme ones, at both ends, converge first; with ``k = n`` they are the
Hessian's spectrum up to rounding.
"""

from __future__ import annotations

import torch
from scipy.linalg import eigvalsh_tridiagonal


def hessian_vector_product(loss_fn, params):
    """``v (n,) -> H v`` for ``loss_fn()`` in the flattened ``params``."""
    def hvp(v):
        loss = loss_fn()
        grads = torch.autograd.grad(loss, params, create_graph=True)
        flat = torch.cat([g.reshape(-1) for g in grads])
        hv = torch.autograd.grad(flat @ v, params)
        return torch.cat([h.reshape(-1) for h in hv]).detach()
    return hvp


def lanczos(hvp, n: int, k: int, seed: int = 0) -> torch.Tensor:
    """Ritz values (ascending) of ``k`` Lanczos steps on the symmetric operator ``hvp`` of size ``n``."""
    k = min(k, n)
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(n, generator=g, dtype=torch.float64)
    V = torch.zeros(k, n, dtype=torch.float64)
    V[0] = v / v.norm()
    alpha, beta = torch.zeros(k, dtype=torch.float64), torch.zeros(k, dtype=torch.float64)
    m, scale = k, 0.0
    for j in range(k):
        w = hvp(V[j]).to(torch.float64)
        scale = max(scale, float(w.norm()))
        alpha[j] = w @ V[j]
        w = w - V[: j + 1].T @ (V[: j + 1] @ w)
        w = w - V[: j + 1].T @ (V[: j + 1] @ w)          # twice is enough (Kahan-Parlett)
        if j + 1 == k:
            break
        beta[j] = w.norm()
        if not beta[j] > 1e-10 * scale:
            m = j + 1                                     # invariant subspace: exact eigenvalues
            break
        V[j + 1] = w / beta[j]
    if not bool(torch.isfinite(alpha[:m]).all()):
        raise ArithmeticError("Lanczos: the Hessian-vector product is not finite")
    return torch.as_tensor(eigvalsh_tridiagonal(alpha[:m].numpy(), beta[: m - 1].numpy()))


__all__ = ["hessian_vector_product", "lanczos"]

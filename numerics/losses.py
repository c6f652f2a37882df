"""Losses ``f(x)`` on the model coordinates, batched in torch.

A loss gives ``value(x, p)`` (``(B,)``) and ``grad(x, p)`` (``(B, n)``) for states ``x`` of
shape ``(B, n)``; per-trajectory data (targets) live in the parameter dict ``p`` so that the
integrator can compact them with the state. ``separable`` losses have ``d_i f`` depending on
``x_i`` only: their switching surfaces ``{d_i f = 0}`` are attracting and a coordinate that
reaches one slides (stays) there.
"""

from __future__ import annotations

import torch

from .arrays import float64
from .forward import jacfwd


class Loss:
    separable = False
    has_minimizer = True   # False: no stationary point (exponential loss on separable data)
    dim: int | None = None  # the number of coordinates x_i it takes (None: any)

    def value(self, x, p):  # pragma: no cover - interface
        raise NotImplementedError

    def grad(self, x, p):  # pragma: no cover - interface
        raise NotImplementedError

    def params(self, batch: int, device) -> dict:
        """Per-trajectory parameters of the loss, for ``batch`` trajectories."""
        return {}

    quadratic = False      # True: the gradient is affine in x (the Hessian is constant)

    def hess_factor(self, x, p):
        """``(U, c)`` with ``H = U diag(c) U^T``, ``U`` ``(n, r)`` shared and ``c >= 0`` ``(B, r)``,
        for a loss whose Hessian has a known low-rank form (``r`` samples), or ``None``."""
        return None

    def hess(self, x, p):
        """Hessian ``(B, n, n)`` of ``f`` at ``x`` (used by sliding: ``d/dt grad f = H dx/dt``).
        Default: forward-mode differentiation of :meth:`grad` (rows are independent)."""
        return torch.func.vmap(jacfwd(lambda xb, pb: self.grad(xb[None], {
            k: v[None] for k, v in pb.items()})[0]))(x, dict(p))


def check_dimension(loss: Loss, shape, name: str, layout: str) -> None:
    """``ValueError`` unless the start ``name`` of ``shape`` (axes named by ``layout``, e.g.
    ``"batch, n, L"``) has the ``loss.dim`` coordinates the loss takes along its axis ``n``, and no
    empty axis."""
    if 0 in tuple(shape):
        raise ValueError(f"{name} must have shape ({layout}) with no empty axis, got {tuple(shape)}")
    if loss.dim is not None and shape[1] != loss.dim:
        want = layout.replace(" n,", f" {loss.dim},").replace(" n", f" {loss.dim}")
        raise ValueError(f"{name} must have shape ({want}) to match the loss ({type(loss).__name__} takes "
                         f"{loss.dim} coordinates), got {tuple(shape)}")


def _per_trajectory(v, batch, device, name):
    """A target shared by the batch ``(k,)`` or given per trajectory ``(B, k)``, as ``(B, k)``."""
    if v.ndim > 2 or v.ndim == 2 and v.shape[0] != batch:
        raise ValueError(f"{name} must have shape ({v.shape[-1]},) (shared) or ({batch}, {v.shape[-1]}) (one row "
                         f"per trajectory), got {tuple(v.shape)}")
    v = v.to(device)
    return (v if v.ndim == 2 else v.expand(batch, v.shape[-1])).clone()


def _samples(A, b, a_name, b_name):
    """A sample matrix ``A`` (``N x n``) and per-sample values ``b`` (``(N,)`` or ``(B, N)``) as
    float64 tensors, their shapes checked."""
    A, b = float64(A, a_name), float64(b, b_name)
    if A.ndim != 2:
        raise ValueError(f"{a_name} must have shape (N, n) (a matrix), got {tuple(A.shape)}")
    if b.ndim not in (1, 2) or b.shape[-1] != A.shape[0]:
        raise ValueError(f"{b_name} must have shape ({A.shape[0]},) or (B, {A.shape[0]}) (one entry per row of "
                         f"{a_name}), got {tuple(b.shape)}")
    return A, b


class SeparableQuadratic(Loss):
    """``f(x) = sum_i (x_i - y_i)^2 / 2`` (the reference problem at ``n = 1``)."""

    separable = True

    def __init__(self, y):
        self.y = float64(y, "y")
        if self.y.ndim == 0:
            self.y = self.y[None]
        if not bool(torch.isfinite(self.y).all()):
            raise ValueError("y must be finite")
        self.dim = self.y.shape[-1] if self.y.shape[-1] > 1 else None     # one target: any n

    def params(self, batch, device):
        return {"y": _per_trajectory(self.y, batch, device, "y")}

    def value(self, x, p):
        return 0.5 * (x - p["y"]).square().sum(-1)

    def grad(self, x, p):
        return x - p["y"]

    quadratic = True

    def hess(self, x, p):
        return torch.eye(x.shape[-1], dtype=x.dtype, device=x.device).expand(x.shape[0], -1, -1)


class LinearRegression(Loss):
    """``f(x) = ||X x - y||^2 / (2 N)`` with a shared design ``X`` (``N x n``)."""

    def __init__(self, X, y):
        self.X, self.y = _samples(X, y, "X", "y")
        if not (bool(torch.isfinite(self.X).all()) and bool(torch.isfinite(self.y).all())):
            raise ValueError("X and y must be finite")
        self.dim = self.X.shape[1]
        self._H = self.X.T @ self.X / self.X.shape[0]

    def params(self, batch, device):
        return {"y": _per_trajectory(self.y, batch, device, "y")}

    def residual(self, x, p):
        return x @ self.X.to(x.device).T - p["y"]

    def value(self, x, p):
        return 0.5 * self.residual(x, p).square().sum(-1) / self.X.shape[0]

    def grad(self, x, p):
        return self.residual(x, p) @ self.X.to(x.device) / self.X.shape[0]

    quadratic = True

    def hess_factor(self, x, p):
        N = self.X.shape[0]
        return self.X.to(x.device).T, torch.full((x.shape[0], N), 1.0 / N, dtype=x.dtype, device=x.device)

    def hess(self, x, p):
        return self._H.to(x.device).expand(x.shape[0], -1, -1)


class ExponentialLoss(Loss):
    """``f(x) = (1/N) sum_n exp(-y_n <z_n, x>)`` with samples ``Z`` (``N x n``) and labels ``y_n = +-1``.

    On separable data the infimum 0 is not attained (``has_minimizer = False``): ``x`` grows without
    bound and only its direction converges (IB-3). ``margins`` gives ``y_n <z_n, x>``.
    """

    has_minimizer = False

    def __init__(self, Z, labels):
        self.Z, self.labels = _samples(Z, labels, "Z", "labels")
        if not (bool(torch.isfinite(self.Z).all()) and bool((self.labels.abs() == 1).all())):
            raise ValueError("Z must be finite and labels must be +1 or -1")
        self.dim = self.Z.shape[1]

    def params(self, batch, device):
        return {"labels": _per_trajectory(self.labels, batch, device, "labels")}

    def margins(self, x, p):
        return p["labels"] * (x @ self.Z.to(x.device).T)

    def value(self, x, p):
        return torch.exp(-self.margins(x, p)).mean(-1)

    def grad(self, x, p):
        return -(torch.exp(-self.margins(x, p)) * p["labels"]) @ self.Z.to(x.device) / self.Z.shape[0]

    def hess_factor(self, x, p):
        """``H = (1/N) sum_n exp(-m_n) z_n z_n^T`` (``y_n^2 = 1``)."""
        return self.Z.to(x.device).T, torch.exp(-self.margins(x, p)) / self.Z.shape[0]

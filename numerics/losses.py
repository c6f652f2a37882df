"""Losses ``f(x)`` on the model coordinates, batched in torch.

A loss gives ``value(x, p)`` (``(B,)``) and ``grad(x, p)`` (``(B, n)``) for states ``x`` of
shape ``(B, n)``; per-trajectory data (targets) live in the parameter dict ``p`` so that the
integrator can compact them with the state. ``separable`` losses have ``d_i f`` depending on
``x_i`` only: their switching surfaces ``{d_i f = 0}`` are attracting and a coordinate that
reaches one slides (stays) there.
"""

from __future__ import annotations

import torch


class Loss:
    separable = False

    def value(self, x, p):  # pragma: no cover - interface
        raise NotImplementedError

    def grad(self, x, p):  # pragma: no cover - interface
        raise NotImplementedError

    def params(self, batch: int, device) -> dict:
        """Per-trajectory parameters of the loss, for ``batch`` trajectories."""
        return {}


class SeparableQuadratic(Loss):
    """``f(x) = sum_i (x_i - y_i)^2 / 2`` (the reference problem at ``n = 1``)."""

    separable = True

    def __init__(self, y):
        self.y = torch.as_tensor(y, dtype=torch.float64)
        if self.y.ndim == 0:
            self.y = self.y[None]
        if not bool(torch.isfinite(self.y).all()):
            raise ValueError("y must be finite")

    def params(self, batch, device):
        y = self.y.to(device)
        return {"y": (y if y.ndim == 2 else y.expand(batch, y.shape[-1])).clone()}

    def value(self, x, p):
        return 0.5 * (x - p["y"]).square().sum(-1)

    def grad(self, x, p):
        return x - p["y"]


class LinearRegression(Loss):
    """``f(x) = ||X x - y||^2 / (2 N)`` with a shared design ``X`` (``N x n``)."""

    def __init__(self, X, y):
        self.X = torch.as_tensor(X, dtype=torch.float64)
        self.y = torch.as_tensor(y, dtype=torch.float64)
        if self.X.ndim != 2:
            raise ValueError(f"X must be a matrix, got shape {tuple(self.X.shape)}")
        if self.y.shape[-1] != self.X.shape[0]:
            raise ValueError(f"y must have {self.X.shape[0]} entries (rows of X), got {self.y.shape[-1]}")
        if not (bool(torch.isfinite(self.X).all()) and bool(torch.isfinite(self.y).all())):
            raise ValueError("X and y must be finite")

    def params(self, batch, device):
        y = self.y.to(device)
        return {"y": (y if y.ndim == 2 else y.expand(batch, y.shape[-1])).clone()}

    def residual(self, x, p):
        return x @ self.X.to(x.device).T - p["y"]

    def value(self, x, p):
        return 0.5 * self.residual(x, p).square().sum(-1) / self.X.shape[0]

    def grad(self, x, p):
        return self.residual(x, p) @ self.X.to(x.device) / self.X.shape[0]

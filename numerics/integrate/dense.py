"""The continuous solution of every trajectory: per-step interpolants, searched by time."""

from __future__ import annotations

from typing import Callable

import torch


class DenseOutput:
    """Piecewise interpolants of a batch. Step ``j`` of row ``rows[j]`` starts at ``t0[j]`` in
    state ``y0[j]``; its coefficients ``F[:, j]`` were built for a step of length ``h[j]`` and are
    evaluated by the stepper's ``interpolate(F, y0, s)`` at ``s = (t - t0) / h``. A step cut short
    (at an event or a switch) keeps the length its interpolant was built for: it is valid up to
    the cut, where the next step takes over. A row without steps is constant at its state in
    ``y_rest`` (``(batch, n)``). ``direction = -1``: the steps were taken in reversed time ``-t``."""

    def __init__(self, rows, t0, h, y0, F, batch, interpolate: Callable, y_rest, direction: float = 1.0):
        order = torch.argsort(t0, stable=True)
        order = order[torch.argsort(rows[order], stable=True)]
        self.rows, self.t0, self.h, self.y0 = rows[order], t0[order], h[order], y0[order]
        self.F = F[:, order]
        self.interpolate, self.y_rest, self.direction = interpolate, y_rest, direction
        counts = torch.bincount(self.rows, minlength=batch)
        self.offsets = torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])

    def nbytes(self) -> int:
        return sum(v.numel() * v.element_size() for v in (self.rows, self.t0, self.h, self.y0, self.F))

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        """States at times ``t`` of shape ``(B,)`` or ``(B, T)`` -> ``(B, [T,] n)``."""
        squeeze = t.ndim == 1
        t = self.direction * (t[:, None] if squeeze else t)
        rows = torch.arange(t.shape[0], device=t.device)[:, None].expand_as(t)
        lo, hi = self.offsets[rows], self.offsets[rows + 1] - 1
        last = len(self.t0) - 1
        empty = lo > hi                        # rows without steps: their state
        if last < 0:
            y = self.y_rest[rows]
            return y[:, 0] if squeeze else y
        while bool((lo < hi).any()):          # last step with t0 <= t in each row's segment
            mid = (lo + hi + 1) // 2
            go = self.t0[mid.clamp(max=last)] <= t
            lo, hi = torch.where(go, mid, lo), torch.where(go, hi, mid - 1)
        idx = lo.clamp(max=last)
        y = self.interpolate(self.F[:, idx], self.y0[idx], (t - self.t0[idx]) / self.h[idx])
        y = torch.where(empty[..., None], self.y_rest[rows], y)
        return y[:, 0] if squeeze else y

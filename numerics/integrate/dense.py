"""The continuous solution of every trajectory: per-step interpolants, searched by time."""

from __future__ import annotations

from typing import Callable

import torch


class DenseOutput:
    """Piecewise interpolants of a batch. Step ``j`` of row ``rows[j]`` starts at ``t0[j]`` in
    state ``y0[j]`` and has length ``h[j]``; its coefficients ``F[:, j]`` are evaluated by the
    stepper's ``interpolate(F, y0, s)`` at ``s = (t - t0) / h`` in ``[0, 1]``."""

    def __init__(self, rows, t0, h, y0, F, batch, interpolate: Callable):
        order = torch.argsort(t0, stable=True)
        order = order[torch.argsort(rows[order], stable=True)]
        self.rows, self.t0, self.h, self.y0 = rows[order], t0[order], h[order], y0[order]
        self.F = F[:, order]
        self.interpolate = interpolate
        counts = torch.bincount(self.rows, minlength=batch)
        self.offsets = torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])

    def nbytes(self) -> int:
        return sum(v.numel() * v.element_size() for v in (self.rows, self.t0, self.h, self.y0, self.F))

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        """States at times ``t`` of shape ``(B,)`` or ``(B, T)`` -> ``(B, [T,] n)``."""
        squeeze = t.ndim == 1
        t = t[:, None] if squeeze else t
        rows = torch.arange(t.shape[0], device=t.device)[:, None].expand_as(t)
        lo, hi = self.offsets[rows], self.offsets[rows + 1] - 1
        last = len(self.t0) - 1
        while bool((lo < hi).any()):          # last step with t0 <= t in each row's segment
            mid = (lo + hi + 1) // 2
            go = self.t0[mid.clamp(max=last)] <= t
            lo, hi = torch.where(go, mid, lo), torch.where(go, hi, mid - 1)
        idx = lo.clamp(max=last)
        y = self.interpolate(self.F[:, idx], self.y0[idx], (t - self.t0[idx]) / self.h[idx])
        return y[:, 0] if squeeze else y

"""The result of :func:`numerics.integrate.integrate`."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .dense import DenseOutput
from .status import MESSAGES


@dataclass
class Solution:
    t: torch.Tensor                 # (B,) final times
    y: torch.Tensor                 # (B, n) final states
    status: torch.Tensor            # (B,) status codes (see Status, MESSAGES)
    n_steps: torch.Tensor           # (B,) accepted steps
    n_rejected: torch.Tensor        # (B,) rejected steps
    nfev: int                       # right-hand-side evaluations (batched calls)
    params: dict                    # per-trajectory parameters (as given)
    t_events: list = field(default_factory=list)   # per event: (B, k) first firing times (nan)
    y_events: list = field(default_factory=list)   # per event: (B, k, n) states there
    ys: torch.Tensor | None = None  # (B, T, n) states at t_eval (nan where not reached)
    dense: DenseOutput | None = None
    wall: float = 0.0
    event_log: list = field(default_factory=list)  # per event: EventLog of every firing
    switching: dict = field(default_factory=dict)  # final per-trajectory switching state

    @property
    def success(self) -> torch.Tensor:
        return self.status >= 0

    def event_times(self, j: int, row: int) -> torch.Tensor:
        """Every firing time of event ``j`` on trajectory ``row``, in the order of integration."""
        log = self.event_log[j]
        return log.t[log.row == row]

    def failures(self) -> dict[str, int]:
        """Counts of each failure reason (empty when every trajectory succeeded)."""
        return {MESSAGES[int(c)]: int((self.status == c).sum())
                for c in torch.unique(self.status[self.status < 0]).tolist()}

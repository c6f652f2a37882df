"""Event location on a dense output: sign-change tests, the first crossing in a step, and
the multi-point section search that pins a crossing down to adjacent floats.

An event ``fn(t, y, p) -> (B,)`` or ``(B, k)`` fires where a component changes sign; all
searches work on a caller's function of time (the dense output composed with ``fn``), so the
exact sign flow and the Runge-Kutta driver share them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, NamedTuple

import torch

from .rows import take


@dataclass
class Event:
    """A user event ``fn(t, y, p) -> (B,)`` or ``(B, k)``; it fires where a component
    changes sign (``direction`` +1: upward only, -1: downward only, 0: both)."""

    fn: Callable
    terminal: bool = True
    direction: int = 0
    name: str = "event"


class EventLog(NamedTuple):
    """Every firing of one event, sorted by trajectory then time: trajectory ``row`` ``(N,)``,
    ``component`` ``(N,)`` of the event function, time ``t`` ``(N,)`` and state ``y`` ``(N, n)``."""

    row: torch.Tensor
    component: torch.Tensor
    t: torch.Tensor
    y: torch.Tensor

    @staticmethod
    def build(parts, n, dtype, device) -> "EventLog":
        """From ``(row, component, t, y)`` chunks in firing order."""
        if not parts:
            long = torch.zeros(0, dtype=torch.int64, device=device)
            return EventLog(long, long.clone(), torch.zeros(0, dtype=dtype, device=device),
                            torch.zeros(0, n, dtype=dtype, device=device))
        row, comp, t, y = (torch.cat(c) for c in zip(*parts))
        order = torch.argsort(row, stable=True)       # chunks come in time order per row
        return EventLog(row[order], comp[order], t[order], y[order])


class EventRecord:
    """The firings of a run's events: per event the first firing time and state of every
    trajectory and component (``t_events`` ``(B, k)``, ``y_events`` ``(B, k, n)``, nan where
    none) and every firing (:meth:`logs`). Shared by the driver and the exact sign flow."""

    def __init__(self, n_events: int, B: int, n: int, dtype, device):
        self.B, self.n, self.dtype, self.device = B, n, dtype, device
        self.t_first, self.y_first = [None] * n_events, [None] * n_events
        self.parts = [[] for _ in range(n_events)]

    def _allocate(self, j: int, k: int):
        if self.t_first[j] is None:
            self.t_first[j] = torch.full((self.B, k), math.nan, dtype=self.dtype, device=self.device)
            self.y_first[j] = torch.full((self.B, k, self.n), math.nan, dtype=self.dtype, device=self.device)

    def record(self, j: int, rows, fired, t, y):
        """Event ``j`` fired on trajectories ``rows`` ``(R,)`` (distinct) at components ``fired``
        ``(R, k)``, at times ``t`` ``(R,)`` in states ``y`` ``(R, n)``."""
        if not bool(fired.any()):
            return
        self._allocate(j, fired.shape[1])
        first = fired & torch.isnan(self.t_first[j][rows])
        r_i, k_i = first.nonzero(as_tuple=True)
        self.t_first[j][rows[r_i], k_i] = t[r_i]
        self.y_first[j][rows[r_i], k_i] = y[r_i]
        r_i, k_i = fired.nonzero(as_tuple=True)
        self.parts[j].append((rows[r_i], k_i, t[r_i], y[r_i]))

    def fire(self, j: int, event: Event, rows, g_old, g_new, t, y):
        """Record event ``j`` where its values went from ``g_old`` to ``g_new`` through 0 (at
        times ``t``, states ``y``); which of the ``rows`` it stops (a terminal event that fired)."""
        fired = crossed(g_old, g_new, event.direction)
        self.record(j, rows, fired, t, y)
        return fired.any(1) & event.terminal

    def merge(self, rows, t_events, y_events, logs):
        """The firings of a later sub-run over trajectories ``rows`` (its ``Solution.t_events``,
        ``y_events`` and ``event_log``, forward in time, rows local)."""
        for j, (t_j, y_j, log) in enumerate(zip(t_events, y_events, logs)):
            if t_j is None:
                continue
            self._allocate(j, t_j.shape[1])
            new = torch.isnan(self.t_first[j][rows]) & ~torch.isnan(t_j)
            et, ey = self.t_first[j][rows], self.y_first[j][rows]
            et[new], ey[new] = t_j[new], y_j[new]
            self.t_first[j][rows], self.y_first[j][rows] = et, ey
            if len(log.row):
                self.parts[j].append((rows[log.row], log.component, log.t, log.y))

    def logs(self, time_sign: float = 1.0) -> list:
        """Every firing per event as an :class:`EventLog` (times multiplied by ``time_sign``)."""
        out = [EventLog.build(parts, self.n, self.dtype, self.device) for parts in self.parts]
        return [EventLog(g.row, g.component, time_sign * g.t, g.y) for g in out]

    def first_times(self, time_sign: float = 1.0) -> list:
        return [None if v is None else time_sign * v for v in self.t_first]


def repeat_rows(p: dict, R: int, k: int, device) -> dict:
    """The parameters of the first ``R`` rows, each repeated ``k`` times (for :func:`on_grid`)."""
    return take(p, torch.arange(R, device=device).repeat_interleave(k))


def on_grid(fn, tt, y, p_rep):
    """A row-wise ``fn(t, y, p)`` at ``k`` times per row in one batched call: times ``tt``
    ``(R, k)``, states ``y`` ``(R, k, n)``, ``p_rep`` from :func:`repeat_rows` -> ``(R, k, m)``."""
    R, k = tt.shape
    return fn(tt.reshape(-1), y.reshape(R * k, -1), p_rep).reshape(R, k, -1)


def crossed(g0, g1, direction):
    """Where ``g`` went from ``g0`` to ``g1`` through 0 in ``direction`` (0 reached counts)."""
    up = (g0 < 0) & (g1 >= 0)
    down = (g0 > 0) & (g1 <= 0)
    return up if direction > 0 else down if direction < 0 else up | down


def event_values(e: Event, t, y, p):
    """The event function's values as ``(B, k)``."""
    g = e.fn(t, y, p)
    return g[:, None] if g.ndim == 1 else g


def first_crossing(fn, g0, t0, t1, direction, samples: int = 8, points: int = 15):
    """Earliest crossing of ``fn`` (times ``(R, S)`` -> values ``(R, S, k)`` on the dense output)
    in ``(t0, t1]``, or ``inf``.

    ``fn`` is sampled at ``samples`` points so that a pair of crossings inside one step
    (an event function that dips and returns) is not missed; the first bracketing
    sub-interval is then searched (:func:`locate` with ``points``)."""
    frac = torch.arange(1, samples + 1, dtype=t0.dtype, device=t0.device) / samples
    tj = t0[:, None] + (t1 - t0)[:, None] * frac
    gj = fn(tj)
    g_prev = torch.cat([g0[:, None], gj[:, :-1]], 1)
    hits = crossed(g_prev, gj, direction).any(2)
    found = hits.any(1)
    if not bool(found.any()):
        return torch.full_like(t0, math.inf)
    j = hits.int().argmax(1)
    rows = torch.arange(len(t0), device=t0.device)
    lo = torch.where(j > 0, tj[rows, (j - 1).clamp_min(0)], t0)
    g_lo = g_prev[rows, j]
    t_hit, _ = locate(lambda tt: crossed(g_lo[:, None], fn(tt), direction), lo, tj[rows, j], hits[rows, j, None],
                      points=points)
    return torch.where(found, t_hit, torch.full_like(t0, math.inf))


def locate(predicate, lo, hi, at_hi, points: int = 15, passes: int = 64):
    """Earliest ``t`` in ``(lo, hi]`` where the monotone ``predicate`` holds, to adjacent floats,
    and which of its components hold there.

    ``predicate`` maps times ``(R, k)`` to booleans ``(R, k, m)`` (it holds where any component
    does); it is false at ``lo`` and ``at_hi`` (``(R, m)``) at ``hi``. A ``points + 1``-section
    search: each pass evaluates it at ``points`` evenly spaced interior points of every bracket
    in one batched call and keeps the sub-bracket where it first holds (4 bits per pass at 15
    points, against 1 for bisection; ``passes`` bounds the loop, which ends when no float is
    left inside a bracket: 64 passes reach that even by bisection). The components come from
    the very evaluation that set ``hi``: a caller never re-judges the located time on a
    differently rounded evaluation."""
    frac = torch.arange(1, points + 1, dtype=lo.dtype, device=lo.device) / (points + 1)
    rows = torch.arange(len(lo), device=lo.device)
    for _ in range(passes):
        tt = lo[:, None] + (hi - lo)[:, None] * frac
        above, below = tt >= hi[:, None], tt <= lo[:, None]   # rounded onto an end: known values
        if not bool((~above & ~below).any()):
            break
        parts = predicate(tt) & ~below[..., None]
        holds = parts.any(2) | above
        j = torch.where(holds.any(1), holds.int().argmax(1), torch.full_like(rows, points))
        inner = j < points
        jc = j.clamp_max(points - 1)
        lo = torch.where(j > 0, tt[rows, (j - 1).clamp_min(0)], lo)
        at_hi = torch.where((inner & ~above[rows, jc])[:, None], parts[rows, jc], at_hi)
        hi = torch.where(inner, tt[rows, jc], hi)
    return hi, at_hi

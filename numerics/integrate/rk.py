"""Batched adaptive DOP853 in torch with per-trajectory step control, dense output,
events, mode freezing for discontinuous fields, and budgets.

Every trajectory of the batch keeps its own time ``t``, step ``h`` and status; the loop
advances all running trajectories together and drops each one as soon as it finishes, so
a finished, sliding or stiff trajectory never forces small steps on the others.

Discontinuous and non-Lipschitz fields (``sign`` and ``|z|^(q-1)``) are integrated by
*mode freezing*: at the start of each step the system reports its switching functions
(``ODESystem.switches``); during the step the field is evaluated with their signs held
fixed, which makes it smooth inside the step. After the step, a switching function that
changed sign is located on the 7th-order dense output (bisection to machine precision),
the step is cut there, and ``ODESystem.on_switch`` decides what happens on the switching
surface (cross it, or slide on it: Filippov). Nothing is stepped over, nothing chatters.

Error control follows ``scipy.integrate.DOP853`` row by row: the scaled norm with
``scale = atol + rtol * max(|y_old|, |y_new|)`` and ``h_new = h * clip(0.9 err^(-1/8),
0.2, 10)`` (at most 1 after a rejection), capped after an accepted step by Gustafsson's
predictive step ``0.9 h (h / h_acc) (err_acc / err^2)^(1/8)`` (``h_acc``, ``err_acc``: the
previous accepted step), as in Hairer's RADAU5. The cap only acts when the error grows from
step to step, as on the approach to a finite-time arrival (``g ~ (t* - t)^(1/(2-q))``), where
the plain rule alternates accepted and rejected steps. Budgets on steps and wall time end a
run with a status code and a message, never a hang.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from .tableau import DOP853

SUCCESS, EVENT = 0, 1
STEP_BUDGET, WALL_BUDGET, STEP_UNDERFLOW, NONFINITE = -1, -2, -3, -4
MESSAGES = {
    SUCCESS: "reached t_end",
    EVENT: "terminal event",
    STEP_BUDGET: "step budget exhausted",
    WALL_BUDGET: "wall-time budget exhausted",
    STEP_UNDERFLOW: "step size underflow (h < 10 eps |t|)",
    NONFINITE: "non-finite state or field",
}
_RUNNING = 100
SAFETY, MIN_FACTOR, MAX_FACTOR = 0.9, 0.2, 10.0
SECTION_ELEMENTS = 2048


class ODESystem:
    """What the integrator needs from a vector field.

    ``rhs(t, y, p, mode)`` returns ``dy/dt`` (shape ``(B, n)``) for a batch; ``p`` is a dict
    of per-trajectory tensors (leading dim ``B``) that the integrator compacts together
    with the state; ``mode`` is ``None`` or the frozen signs of the switching functions.
    Smooth systems only implement ``rhs``.
    """

    autonomous = False   # True: rhs ignores t (the integrator then skips the stage times)

    def rhs(self, t, y, p, mode):  # pragma: no cover - interface
        raise NotImplementedError

    def switches(self, t, y, p):
        """Switching functions ``(B, k)`` whose signs define the mode, or ``None``.
        Components no longer in use (a coordinate sliding) must be returned as 0."""
        return None

    def on_switch(self, t, y, p, hit):
        """Called with the boolean ``(B, k)`` of switching functions that reached 0 at ``t``;
        returns ``(parameters, state)``, possibly updated: a coordinate put in sliding, a
        state projected onto the surface it slides on."""
        return p, y

    def max_step(self, t, y, p, mode):
        """An upper bound ``(B,)`` on the next step, or ``None``. Mode freezing only sees the
        switching functions at the ends of a step; a field whose frozen continuation is exact
        for any step (piecewise polynomial, e.g. sign descent) bounds its steps by the time to
        the nearest approaching surface so that none is crossed and recrossed unseen."""
        return None



@dataclass
class Event:
    """A user event ``fn(t, y, p) -> (B,)`` or ``(B, k)``; it fires where a component
    changes sign (``direction`` +1: upward only, -1: downward only, 0: both)."""

    fn: Callable
    terminal: bool = True
    direction: int = 0
    name: str = "event"


@dataclass
class Solution:
    t: torch.Tensor                 # (B,) final times
    y: torch.Tensor                 # (B, n) final states
    status: torch.Tensor            # (B,) status codes (see MESSAGES)
    n_steps: torch.Tensor           # (B,) accepted steps
    n_rejected: torch.Tensor        # (B,) rejected steps
    nfev: int                       # right-hand-side evaluations (batched calls)
    params: dict                    # final per-trajectory parameters
    t_events: list = field(default_factory=list)   # per event: (B, k) first firing times (nan)
    y_events: list = field(default_factory=list)   # per event: (B, k, n) states there
    ys: torch.Tensor | None = None  # (B, T, n) states at t_eval (nan where not reached)
    dense: "DenseOutput | None" = None
    wall: float = 0.0

    @property
    def success(self) -> torch.Tensor:
        return self.status >= 0

    def failures(self) -> dict[str, int]:
        """Counts of each failure reason (empty when every trajectory succeeded)."""
        return {MESSAGES[int(c)]: int((self.status == c).sum())
                for c in torch.unique(self.status[self.status < 0]).tolist()}


def _interpolate(F, y0, s):
    """DOP853 dense output: ``F`` (7, ..., n), ``y0`` (..., n), ``s`` in [0, 1] (...)."""
    s = s[..., None]
    y = torch.zeros_like(y0)
    for i in range(F.shape[0]):
        y = (y + F[F.shape[0] - 1 - i]) * (s if i % 2 == 0 else 1 - s)
    return y + y0


class DenseOutput:
    """The continuous solution of every trajectory (7th-order DOP853 interpolants)."""

    def __init__(self, rows, t0, h, y0, F, batch):
        order = torch.argsort(t0, stable=True)
        order = order[torch.argsort(rows[order], stable=True)]
        self.rows, self.t0, self.h, self.y0 = rows[order], t0[order], h[order], y0[order]
        self.F = F[:, order]
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
        y = _interpolate(self.F[:, idx], self.y0[idx], (t - self.t0[idx]) / self.h[idx])
        return y[:, 0] if squeeze else y


def _sub(p, mask):
    return {k: v[mask] for k, v in p.items()}


def _repeat(p, R, k, device):
    """The parameters of ``R`` rows, each repeated ``k`` times (for :func:`_on_grid`)."""
    return _sub(p, torch.arange(R, device=device).repeat_interleave(k))


def _on_grid(fn, tt, y, p_rep):
    """A row-wise ``fn(t, y, p)`` at ``k`` times per row in one batched call: times ``tt``
    ``(R, k)``, states ``y`` ``(R, k, n)``, ``p_rep`` from :func:`_repeat` -> ``(R, k, m)``."""
    R, k = tt.shape
    return fn(tt.reshape(-1), y.reshape(R * k, -1), p_rep).reshape(R, k, -1)


def _crossed(g0, g1, direction):
    up = (g0 < 0) & (g1 >= 0)
    down = (g0 > 0) & (g1 <= 0)
    return up if direction > 0 else down if direction < 0 else up | down


def _event_values(e, t, y, p):
    g = e.fn(t, y, p)
    return g[:, None] if g.ndim == 1 else g


def _first_crossing(fn, g0, t0, t1, direction, samples: int = 8, points: int = 15):
    """Earliest crossing of ``fn`` (times ``(R, S)`` -> values ``(R, S, k)`` on the dense output)
    in ``(t0, t1]``, or ``inf``.

    ``fn`` is sampled at ``samples`` points so that a pair of crossings inside one step
    (an event function that dips and returns) is not missed; the first bracketing
    sub-interval is then searched (:func:`_locate` with ``points``)."""
    frac = torch.arange(1, samples + 1, dtype=t0.dtype, device=t0.device) / samples
    tj = t0[:, None] + (t1 - t0)[:, None] * frac
    gj = fn(tj)
    g_prev = torch.cat([g0[:, None], gj[:, :-1]], 1)
    crossed = _crossed(g_prev, gj, direction).any(2)
    found = crossed.any(1)
    if not bool(found.any()):
        return torch.full_like(t0, math.inf)
    j = crossed.int().argmax(1)
    rows = torch.arange(len(t0), device=t0.device)
    lo = torch.where(j > 0, tj[rows, (j - 1).clamp_min(0)], t0)
    g_lo = g_prev[rows, j]
    t_hit, _ = _locate(lambda tt: _crossed(g_lo[:, None], fn(tt), direction), lo, tj[rows, j], crossed[rows, j, None],
                       points=points)
    return torch.where(found, t_hit, torch.full_like(t0, math.inf))


def _locate(predicate, lo, hi, at_hi, points: int = 15, passes: int = 32):
    """Earliest ``t`` in ``(lo, hi]`` where the monotone ``predicate`` holds, to adjacent floats,
    and which of its components hold there.

    ``predicate`` maps times ``(R, k)`` to booleans ``(R, k, m)`` (it holds where any component
    does); it is false at ``lo`` and ``at_hi`` (``(R, m)``) at ``hi``. A ``points + 1``-section
    search: each pass evaluates it at ``points`` evenly spaced interior points of every bracket
    in one batched call and keeps the sub-bracket where it first holds (4 bits per pass at 15
    points, against 1 for bisection). The components come from the very evaluation that set
    ``hi``: a caller never re-judges the located time on a differently rounded evaluation."""
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


class _Run:
    """One call of :func:`integrate`: the working set of running trajectories and outputs."""

    def __init__(self, system, t0, y0, t_end, params, rtol, atol, events, t_eval, dense,
                 max_steps, max_wall, h0, progress, adaptive=True, max_step=None):
        self.system, self.rtol, self.atol, self.adaptive = system, rtol, atol, adaptive
        self.events, self.dense, self.max_steps, self.max_wall = tuple(events), dense, max_steps, max_wall
        self.progress = progress
        dev, dt = y0.device, torch.float64
        self.dev, self.dt = dev, dt
        B, n = y0.shape
        self.B, self.n = B, n
        tab = DOP853
        self.tab = tab
        self.A = torch.as_tensor(tab.A, dtype=dt, device=dev)
        self.C = torch.as_tensor(tab.c, dtype=dt, device=dev)
        self.Bw = torch.as_tensor(tab.b, dtype=dt, device=dev)
        self.E = torch.stack([torch.as_tensor(tab.e5, dtype=dt, device=dev),
                              torch.as_tensor(tab.e3, dtype=dt, device=dev)])
        self.D = torch.as_tensor(tab.dense, dtype=dt, device=dev)
        self.ones = torch.ones(n, dtype=dt, device=dev)   # row sums as matrix products (fast for small n)
        self.nfev = 0
        t0 = torch.as_tensor(t0, dtype=dt, device=dev).expand(B).clone()
        t_end = torch.as_tensor(t_end, dtype=dt, device=dev).expand(B).clone()
        if bool((t_end < t0).any()):
            raise ValueError("t_end must be >= t0 for every trajectory")
        params = {k: torch.as_tensor(v, device=dev) for k, v in (params or {}).items()}
        # outputs
        self.out_t, self.out_y = t0.clone(), y0.clone()
        self.out_status = torch.full((B,), _RUNNING, dtype=torch.int64, device=dev)
        self.out_steps = torch.zeros(B, dtype=torch.int64, device=dev)
        self.out_rej = torch.zeros(B, dtype=torch.int64, device=dev)
        self.out_params = {k: v.clone() for k, v in params.items()}
        self.ev_t, self.ev_y = [None] * len(self.events), [None] * len(self.events)
        self.t_eval, self.ys = None, None
        if t_eval is not None:
            te = torch.as_tensor(t_eval, dtype=dt, device=dev)
            self.t_eval = te.expand(B, te.shape[-1]).contiguous()
            self.ys = torch.full((B, self.t_eval.shape[1], n), math.nan, dtype=dt, device=dev)
            at0 = self.t_eval == t0[:, None]
            self.ys[at0] = y0[:, None, :].expand_as(self.ys)[at0]
        self.dense_parts = []
        # working set
        mode = self.mode_of(t0, y0, params)
        f0 = self.rhs(t0, y0, params, mode)
        h = self.initial_step(t0, y0, f0, params, mode, t_end - t0) if h0 is None \
            else torch.as_tensor(h0, dtype=dt, device=dev).expand(B).clone()
        self.idx, self.t, self.y, self.f, self.h = torch.arange(B, device=dev), t0, y0, f0, h
        self.t_end, self.p, self.mode = t_end, params, mode
        self.h_max = None if max_step is None else \
            torch.as_tensor(max_step, dtype=dt, device=dev).expand(B).clone()
        self.steps = torch.zeros(B, dtype=torch.int64, device=dev)
        self.rej = torch.zeros(B, dtype=torch.int64, device=dev)
        self.rejected = torch.zeros(B, dtype=torch.bool, device=dev)
        self.h_acc = torch.full((B,), math.nan, dtype=dt, device=dev)     # last accepted step
        self.err_acc = torch.ones(B, dtype=dt, device=dev)               # and its error
        self.gev = [_event_values(e, t0, y0, params) for e in self.events]
        self.simple = mode is None and not self.events and self.ys is None and not dense
        self.finish(t_end <= t0, SUCCESS)

    # -- helpers -----------------------------------------------------------------------
    def rhs(self, t, y, p, mode):
        self.nfev += 1
        return self.system.rhs(t, y, p, mode)

    def mode_of(self, t, y, p):
        sw = self.system.switches(t, y, p)
        return None if sw is None else torch.sign(sw)

    def initial_step(self, t0, y0, f0, p, mode, span):
        """Hairer's starting step, row by row (as ``scipy.integrate._ivp.common``)."""
        scale = self.atol + y0.abs() * self.rtol
        d0 = (y0 / scale).square().mean(1).sqrt()
        d1 = (f0 / scale).square().mean(1).sqrt()
        h0 = torch.where((d0 < 1e-5) | (d1 < 1e-5), torch.full_like(d0, 1e-6),
                         0.01 * d0 / d1.clamp_min(1e-300))
        h0 = torch.minimum(h0, span.clamp_min(1e-300))
        f1 = self.rhs(t0 + h0, y0 + h0[:, None] * f0, p, mode)
        d2 = ((f1 - f0) / scale).square().mean(1).sqrt() / h0
        big = torch.maximum(d1, d2)
        h1 = torch.where(big <= 1e-15, torch.maximum(torch.full_like(h0, 1e-6), h0 * 1e-3),
                         (0.01 / big.clamp_min(1e-300)) ** self.tab.error_exponent)
        return torch.minimum(torch.minimum(100 * h0, h1), span.clamp_min(1e-300))

    def section_points(self, rows: int) -> int:
        """Points per pass of a switch search over ``rows`` rows: up to 15 while a pass evaluates
        at most ``SECTION_ELEMENTS`` state elements, down to 1 (bisection) for large or many
        states, whose switching functions cost per row rather than per call."""
        return max(1, min(15, SECTION_ELEMENTS // (rows * self.n) - 1))

    def keep(self, mask):
        for name in ("idx", "t", "y", "f", "h", "t_end", "h_max", "mode", "steps", "rej", "rejected", "h_acc", "err_acc"):
            v = getattr(self, name)
            if v is not None:
                setattr(self, name, v[mask])
        self.p = _sub(self.p, mask)
        self.gev = [g[mask] for g in self.gev]

    def finish(self, mask, code):
        if not bool(mask.any()):
            return
        rows = self.idx[mask]
        self.out_t[rows], self.out_y[rows] = self.t[mask], self.y[mask]
        self.out_status[rows] = code[mask] if isinstance(code, torch.Tensor) else code
        self.out_steps[rows], self.out_rej[rows] = self.steps[mask], self.rej[mask]
        for k, v in self.p.items():
            self.out_params[k][rows] = v[mask]
        self.keep(~mask)

    # -- one step ----------------------------------------------------------------------
    def step(self, t, y, f, h, p, mode):
        """One DOP853 step of size ``h`` per row: ``(y_new, f_new, K, err, finite)``."""
        s = self.tab.stages
        hb = h[:, None].expand(-1, self.n).contiguous()    # same-shape operands: no broadcasting
        auto = self.system.autonomous
        K = torch.empty((len(self.tab.c), len(t), self.n), dtype=self.dt, device=self.dev)
        K[0] = f
        for i in range(1, s):
            y_i = torch.addcmul(y, torch.tensordot(self.A[i, :i], K[:i], dims=1), hb)
            K[i] = self.rhs(t if auto else t + self.C[i] * h, y_i, p, mode)
        y_new = torch.addcmul(y, torch.tensordot(self.Bw, K[:s], dims=1), hb)
        K[s] = self.rhs(t if auto else t + h, y_new, p, mode)
        scale = self.atol + self.rtol * torch.maximum(y.abs(), y_new.abs())
        e53 = (torch.tensordot(self.E, K[:s + 1], dims=1) / scale).square() @ self.ones
        denom = e53[0] + 0.01 * e53[1]
        err = h.abs() * e53[0] / torch.sqrt(denom * self.n).clamp_min(1e-300)
        finite = torch.isfinite(err) & torch.isfinite((y_new + K[s]) @ self.ones)
        return y_new, K[s], K, err, finite

    def trial(self):
        """A step of every running row, clipped at ``t_end``."""
        h = torch.minimum(self.h, self.t_end - self.t)
        if self.h_max is not None:
            h = torch.minimum(h, self.h_max)
        cap = self.system.max_step(self.t, self.y, self.p, self.mode)
        if cap is not None:
            h = torch.minimum(h, cap)
        return (h,) + self.step(self.t, self.y, self.f, h, self.p, self.mode)

    def control(self, h, err, finite):
        if not self.adaptive:             # fixed steps (order studies): accept every finite step
            self.steps += finite.long()
            self.rej += (~finite).long()
            return finite
        accept = finite & (err <= 1)
        factor = (SAFETY * err.clamp_min(1e-300) ** (-self.tab.error_exponent)).clamp(MIN_FACTOR, MAX_FACTOR)
        # no growth on a rejection or on the step right after one (Hairer's DOP853 control)
        factor = torch.where(accept & ~self.rejected, factor, factor.clamp(max=1.0))
        # Gustafsson's predictive cap, between consecutive accepted steps of the controller's own
        # size (h_acc is nan before the first one and after a step clipped at t_end or a cap:
        # the ratio of a clipped step to its predecessor says nothing about the error trend)
        gus = (SAFETY * (h / self.h_acc) * (self.err_acc / err.clamp_min(1e-300) ** 2) ** self.tab.error_exponent
               ).clamp(MIN_FACTOR, MAX_FACTOR)
        own = h >= self.h
        factor = torch.where(accept & own & (gus < factor), gus, factor)
        self.h_acc = torch.where(accept, torch.where(own, h, torch.full_like(h, math.nan)), self.h_acc)
        self.err_acc = torch.where(accept, err.clamp_min(1e-2), self.err_acc)
        factor = torch.where(finite, factor, torch.full_like(factor, MIN_FACTOR))
        self.rejected = ~accept
        self.h = h * factor
        self.steps += accept.long()
        self.rej += (~accept).long()
        return accept

    def redo_cut(self, a, r, cut, tc, t0r, y0r, f0r, pr, mr):
        """The state at a cut: a fresh step of length ``tc - t0`` (8th order, not the 7th-order
        interpolant). Where that step's own error test fails (the field is non-smooth at the
        surface), the whole step is rejected instead: ``tc`` falls back to ``t0`` and the next
        step is shortened, so the surface is approached with accurate steps.
        Returns ``(tc, states at tc)``."""
        redo = torch.zeros_like(y0r)
        ci = cut.nonzero(as_tuple=True)[0]
        y_r, _, _, err, fin = self.step(t0r[ci], y0r[ci], f0r[ci], tc[ci] - t0r[ci], _sub(pr, ci),
                                        None if mr is None else mr[ci])
        ok = fin & (err <= 1)
        redo[ci] = torch.where(ok[:, None], y_r, y0r[ci])
        if bool(ok.all()):
            return tc, redo
        bad = ci[~ok]
        rows = torch.arange(len(self.idx), device=self.dev)[a][r][bad]
        shrink = (SAFETY * err[~ok].clamp_min(1e-300) ** (-self.tab.error_exponent)).clamp(MIN_FACTOR, 1.0)
        h = self.h.clone()
        h[rows] = (tc[bad] - t0r[bad]) * torch.where(fin[~ok], shrink, torch.full_like(shrink, MIN_FACTOR))
        self.h = h
        self.steps[rows] -= 1
        self.rej[rows] += 1
        self.rejected[rows] = True
        tc = tc.clone()
        tc[bad] = t0r[bad]
        return tc, redo

    def dense_coefficients(self, K, ta, ya, ha, y_new, pa, mode):
        """The 7 DOP853 interpolation coefficients (3 extra stages) for some rows."""
        s, hb = self.tab.stages, ha[:, None]
        for i in range(s + 1, len(self.tab.c)):
            dy = torch.tensordot(self.A[i, :i], K[:i], dims=1) * hb
            K[i] = self.rhs(ta + self.C[i] * ha, ya + dy, pa, mode)
        dyn = y_new - ya
        F = torch.empty((7, len(ta), self.n), dtype=self.dt, device=self.dev)
        F[0] = dyn
        F[1] = hb * K[0] - dyn
        F[2] = 2 * dyn - hb * (K[s] + K[0])
        F[3:] = hb * torch.tensordot(self.D, K, dims=1)
        return F

    def commit(self, accept, h, y_new, f_new, K):
        """Apply the accepted steps: locate switches and events, cut, record, update."""
        a = slice(None) if bool(accept.all()) else accept
        t1 = self.t + h
        if self.simple:
            if isinstance(a, slice):
                self.t, self.y, self.f = t1, y_new, f_new
            else:
                self.t = torch.where(accept, t1, self.t)
                self.y = torch.where(accept[:, None], y_new, self.y)
                self.f = torch.where(accept[:, None], f_new, self.f)
            return None
        ta, ya, ha, t1a, yna, pa = self.t[a], self.y[a], h[a], t1[a], y_new[a], _sub(self.p, a)
        ma = None if self.mode is None else self.mode[a]
        crossed_sw = None
        if ma is not None:
            crossed_sw = (ma != 0) & (self.system.switches(t1a, yna, pa) * ma <= 0)
        g0 = [g[a] for g in self.gev]
        crossed_ev = [_crossed(g, _event_values(e, t1a, yna, pa), e.direction)
                      for e, g in zip(self.events, g0)]
        need = torch.full_like(ta, self.dense, dtype=torch.bool)
        if crossed_sw is not None:
            need |= crossed_sw.any(1)
        for c in crossed_ev:
            need |= c.any(1)
        if self.ys is not None:
            te = self.t_eval[self.idx[a]]
            need |= ((te > ta[:, None]) & (te <= t1a[:, None])).any(1)
        t_cut, y_cut = t1a.clone(), yna.clone()
        y_judge = y_cut.clone()
        hit = None if crossed_sw is None else torch.zeros_like(crossed_sw)
        if bool(need.any()):
            r = need
            F = self.dense_coefficients(K[:, a][:, r], ta[r], ya[r], ha[r], yna[r], _sub(pa, r),
                                        None if ma is None else ma[r])
            t0r, h0r, y0r, pr = ta[r], ha[r], ya[r], _sub(pa, r)

            def state_at(tt):
                return _interpolate(F, y0r, (tt - t0r) / h0r)

            repeated = {}        # the rows' parameters repeated k times, per k

            def at_points(fn, tt):
                """``fn(t, y, p)`` on the dense output at times ``tt`` (``(R, k)``) -> ``(R, k, m)``."""
                R, k = tt.shape
                if k not in repeated:
                    repeated[k] = _repeat(pr, R, k, self.dev)
                y = _interpolate(F[:, :, None], y0r[:, None], (tt - t0r[:, None]) / h0r[:, None])
                return _on_grid(fn, tt, y, repeated[k])

            tc = t1a[r]
            t_sw, at_sw = tc, None
            points = self.section_points(len(t0r))
            if crossed_sw is not None and bool(crossed_sw[r].any()):
                cs, mr = crossed_sw[r], ma[r]
                t_sw, at_sw = _locate(lambda tt: (at_points(self.system.switches, tt) * mr[:, None] <= 0) & cs[:, None],
                                      t0r.clone(), t0r + h0r, cs, points=points)
                tc = torch.where(cs.any(1), torch.minimum(tc, t_sw), tc)
            for e, g in zip(self.events, g0):
                t_hit = _first_crossing(lambda tt, e=e: at_points(lambda *a: _event_values(e, *a), tt),
                                        g[r], t0r, tc, e.direction, points=points)
                tc = torch.minimum(tc, t_hit)
            cut = tc < t1a[r]
            if bool(cut.any()):
                tc, redo = self.redo_cut(a, r, cut, tc, t0r, y0r, K[0, a][r], pr, None if ma is None else ma[r])
            yr = y_cut[r]
            if bool(cut.any()):
                yr[cut] = state_at(tc)[cut]
            y_judge[r] = yr            # surfaces and events reached are judged on the interpolant
            if at_sw is not None:     # the surfaces crossed at the located time (unless an event came first)
                hit[r] = at_sw & ((tc == t_sw) & (tc > t0r))[:, None]
            if bool(cut.any()):
                yr = yr.clone()
                yr[cut] = redo[cut]
            t_cut[r], y_cut[r] = tc, yr
            if self.ys is not None:
                self.record_outputs(self.idx[a][r], t0r, tc, y0r, h0r, F)
            if self.dense:
                self.dense_parts.append((self.idx[a][r], t0r, tc - t0r, y0r, F))
        cut = t_cut < t1a             # the field must be re-evaluated where the step was cut
        terminal = self.record_events(a, g0, t_cut, y_cut, y_judge, pa)
        if hit is not None:
            if bool(hit.any()):
                rh = hit.any(1)
                new, y_sw = self.system.on_switch(t_cut[rh], y_cut[rh], _sub(pa, rh), hit[rh])
                y_cut = y_cut.clone()
                y_cut[rh] = y_sw
                cut = cut | rh
                for k, v in new.items():
                    col = pa[k].clone()
                    col[rh] = v
                    pa[k] = col
                for k, v in pa.items():
                    full = self.p[k].clone()
                    full[a] = v
                    self.p[k] = full
        t_all, y_all = self.t.clone(), self.y.clone()
        t_all[a], y_all[a] = t_cut, y_cut
        self.t, self.y = t_all, y_all
        self.update_mode_and_field(a, f_new, cut, ma)
        term = torch.zeros_like(accept)
        term[a] = terminal
        return term

    def update_mode_and_field(self, a, f_new, cut, ma):
        new_mode = self.mode_of(self.t, self.y, self.p)
        pa = _sub(self.p, a)
        changed = cut.clone()
        if new_mode is not None:
            nm = new_mode[a]
            changed |= (nm != ma).any(1)
        f_acc = f_new[a].clone()
        if bool(changed.any()):
            t_cut, y_cut = self.t[a], self.y[a]
            f_acc[changed] = self.rhs(t_cut[changed], y_cut[changed], _sub(pa, changed),
                                      None if new_mode is None else new_mode[a][changed])
        f_all = self.f.clone()
        f_all[a] = f_acc
        self.f, self.mode = f_all, new_mode

    def record_outputs(self, rows, t0r, tc, y0r, h0r, F):
        te = self.t_eval[rows]
        inside = (te > t0r[:, None]) & (te <= tc[:, None])
        if bool(inside.any()):
            r_i, k_i = inside.nonzero(as_tuple=True)
            self.ys[rows[r_i], k_i] = _interpolate(F[:, r_i], y0r[r_i], (te[r_i, k_i] - t0r[r_i]) / h0r[r_i])

    def record_events(self, a, g0, t_cut, y_cut, y_judge, pa):
        terminal = torch.zeros_like(t_cut, dtype=torch.bool)
        rows = self.idx[a]
        for j, e in enumerate(self.events):
            g_now = _event_values(e, t_cut, y_judge, pa)
            fired = _crossed(g0[j], g_now, e.direction)
            if bool(fired.any()):
                if self.ev_t[j] is None:
                    k = g_now.shape[1]
                    self.ev_t[j] = torch.full((self.B, k), math.nan, dtype=self.dt, device=self.dev)
                    self.ev_y[j] = torch.full((self.B, k, self.n), math.nan, dtype=self.dt, device=self.dev)
                first = fired & torch.isnan(self.ev_t[j][rows])
                r_i, k_i = first.nonzero(as_tuple=True)
                self.ev_t[j][rows[r_i], k_i] = t_cut[r_i]
                self.ev_y[j][rows[r_i], k_i] = y_cut[r_i]
                if e.terminal:
                    terminal |= fired.any(1)
            g_all = self.gev[j].clone()
            g_all[a] = g_now
            self.gev[j] = g_all
        return terminal

    # -- the loop ----------------------------------------------------------------------
    def run(self) -> Solution:
        start = last = time.perf_counter()
        while len(self.idx):
            now = time.perf_counter()
            if self.max_wall is not None and now - start > self.max_wall:
                self.finish(torch.ones_like(self.idx, dtype=torch.bool), WALL_BUDGET)
                break
            if self.progress is not None and now - last > 1.0:
                last = now
                self.progress(self.B - len(self.idx), self.B, float(self.t.min()))
            h, y_new, f_new, K, err, finite = self.trial()
            accept = self.control(h, err, finite)
            underflow = ~accept & (self.h < 10 * torch.finfo(self.dt).eps * self.t.abs().clamp_min(1.0))
            exhausted = (self.steps + self.rej) >= self.max_steps
            term = self.commit(accept, h, y_new, f_new, K) if bool(accept.any()) else None
            reached = accept & (self.t >= self.t_end)
            done = reached | underflow | exhausted
            if term is not None:
                reached &= ~term
                done |= term
            if not bool(done.any()):
                continue
            code = torch.full_like(self.idx, STEP_BUDGET)
            code = torch.where(underflow, torch.where(finite, torch.full_like(code, STEP_UNDERFLOW),
                                                      torch.full_like(code, NONFINITE)), code)
            code = torch.where(reached, torch.full_like(code, SUCCESS), code)
            if term is not None:
                code = torch.where(term, torch.full_like(code, EVENT), code)
            self.finish(done, code)
        if self.progress is not None:
            self.progress(self.B, self.B, float(self.out_t.max()) if self.B else 0.0)
        dense = None
        if self.dense and self.dense_parts:
            rows, t0s, hs, y0s, Fs = zip(*self.dense_parts)
            dense = DenseOutput(torch.cat(rows), torch.cat(t0s), torch.cat(hs), torch.cat(y0s),
                                torch.cat(Fs, dim=1), self.B)
        return Solution(self.out_t, self.out_y, self.out_status, self.out_steps, self.out_rej,
                        self.nfev, self.out_params, self.ev_t, self.ev_y, self.ys, dense,
                        time.perf_counter() - start)


def integrate(system: ODESystem, t0, y0: torch.Tensor, t_end, params: dict | None = None, *,
              rtol: float = 1e-10, atol: float = 1e-12, events=(), t_eval=None, dense: bool = False,
              max_steps: int = 100_000, max_wall: float | None = None, h0=None,
              progress: Callable | None = None, adaptive: bool = True, max_step=None) -> Solution:
    """Integrate a batch of trajectories ``y0`` (``(B, n)``) from ``t0`` to ``t_end``.

    ``t0``/``t_end`` are scalars or ``(B,)`` tensors; ``t_eval`` is ``(T,)`` or ``(B, T)``.
    ``max_steps`` caps the accepted plus rejected steps of each trajectory and
    ``max_wall`` (seconds) the whole call; trajectories stopped by a budget keep their
    last state and get a status code (``Solution.failures()``) instead of a result.
    ``progress(done, total, t_min)`` is called about once a second on long runs.
    ``adaptive=False`` takes fixed steps ``h0`` (for order-of-convergence studies).
    ``max_step`` (number or ``(B,)``) caps every step: the embedded error estimate of DOP853
    can be blind to the true error (e.g. ``x' = L x^(1-1/L)``, whose solution ``(a + t)^L``
    is a polynomial: steps of ``T/4`` pass the test at rtol 1e-12 with a 4e-9 error).
    """
    if not isinstance(y0, torch.Tensor) or y0.ndim != 2:
        raise ValueError(f"y0 must be a tensor of shape (batch, n), got {getattr(y0, 'shape', y0)}")
    if not (rtol > 0 and atol >= 0):
        raise ValueError(f"rtol must be > 0 and atol >= 0, got rtol={rtol}, atol={atol}")
    if max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    if not adaptive and h0 is None:
        raise ValueError("adaptive=False needs a fixed step h0")
    if max_step is not None and not bool((torch.as_tensor(max_step, dtype=torch.float64) > 0).all()):
        raise ValueError(f"max_step must be > 0, got {max_step}")
    return _Run(system, t0, y0.to(torch.float64), t_end, params, rtol, atol, events, t_eval, dense,
                max_steps, max_wall, h0, progress, adaptive, max_step).run()

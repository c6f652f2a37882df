"""Exact sign gradient flow (``q = 1``, no decay) of the deep diagonal model, event to event.

Between events every moving factor has unit speed, ``dw_ik/dt = -u_i s_ik`` with
``u_i = sign(d_i f)`` and ``s_ik = sign(prod_{j != k} w_ij)``, so ``w`` is linear in ``t`` and
``x_i(t) = prod_k (w_ik - u_i s_ik t)`` is a polynomial of degree ``L``; for a quadratic loss
(gradient ``H x - b``) so is every ``d_i f(x(t))``. The next event is the earliest of

* a factor reaching 0 (a linear root), where the signs ``s`` change;
* a gradient component reaching 0: the smallest real root with a sign change of a degree-``L``
  polynomial (companion-matrix eigenvalues, checked for a sign change between neighbouring
  roots, then bisected to machine precision on the product form ``d_i f(prod_k w_ik(t))``);
* a user :class:`~numerics.integrate.Event` (sampled and bisected on the exact path);
* ``t_end``. Output times ``t_eval`` are evaluated exactly on the way.

At a gradient zero the sliding rule of :mod:`numerics.filippov` decides (Filippov, one
multiplier per coordinate shared by its factors, Utkin's equivalent control; the same
:class:`numerics.decay.DecayFlow` object, with ``nu = 0``, applies it). For a separable loss a
sliding coordinate has multiplier 0 and rests, so the motion stays piecewise polynomial.

Coupled losses (regression): when every coordinate's factors start balanced (``|w_ik|`` equal
over ``k``, e.g. the usual ``w = alpha`` start; the flow keeps them so), each trajectory runs on
:class:`numerics.sign_coupled.CoupledSignPath`: sliding coordinates follow
``H_SS x_S = c_S - H_SN x_N(t)`` in closed form with the closed-form multipliers
``mu_i = -x_i' / (L |x_i|^((L-1)/L))``, leaving sliding is a polynomial event, and the sliding
set's Cholesky factor is updated by one insertion or removal per change. Otherwise (factors
not balanced: the multipliers have no closed form in ``t``), and for a trajectory whose
sliding set turns singular away from rest, sliding phases are integrated by the batched
DOP853 on the same ``DecayFlow`` (which applies the same rule when coordinates enter or leave
sliding) until no surface is active, and exact stepping resumes there. Budgets:
``max_events`` per trajectory (exact events plus DOP853 steps) and ``max_wall``; a trajectory
that exhausts one ends with a status code; ``progress(done, total, t_min)`` is called about
once a second.
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Callable

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from .arrays import float64
from .decay import DecayFlow
from .flows import check_loss
from .geometry import exclusive_prod
from .integrate import EVENT, STEP_BUDGET, SUCCESS, WALL_BUDGET, Event, Solution, integrate
from .integrate.events import EventRecord, event_values, first_crossing, on_grid, repeat_rows
from .integrate.rows import put_rows, take
from .losses import check_dimension
from .polynomials import first_downcrossing, product_polynomial
from .sign_coupled import END, FROZEN, NONE, SLIDING, CoupledSignPath, balanced
from .runs import FlowResult, end_times, factors, flow_options, resolve_device, setup_run

_RUNNING = 100


class _SignRun:
    """The state of one :func:`simulate_sign_flow` call (every trajectory of the batch)."""

    def __init__(self, system, y0, p, t_end, events, t_eval, max_events, max_wall, rtol, atol, progress=None):
        self.sys, self.y, self.p = system, y0.clone(), p
        self.progress = progress
        B, dev = y0.shape[0], y0.device
        self.B, self.dev = B, dev
        self.t = torch.zeros(B, dtype=torch.float64, device=dev)
        self.t_end = end_times(t_end, B, dev)
        self.events, self.max_events, self.max_wall = tuple(events), max_events, max_wall
        self.rtol, self.atol = rtol, atol
        self.status = torch.full((B,), _RUNNING, dtype=torch.int64, device=dev)
        self.n_events = torch.zeros(B, dtype=torch.int64, device=dev)
        self.n_rejected = torch.zeros(B, dtype=torch.int64, device=dev)
        self.nfev = 0
        w = system.split(self.y)
        self.fs = torch.sign(w)                     # factor signs (a factor at 0: its direction)
        self.t_eval = None if t_eval is None else float64(t_eval, "t_eval", dev)
        if self.t_eval is not None:
            if self.t_eval.ndim not in (1, 2) or self.t_eval.ndim == 2 and self.t_eval.shape[0] != B:
                raise ValueError(f"t_eval must have shape (T,) or ({B}, T), got {tuple(self.t_eval.shape)}")
            self.t_eval = self.t_eval.expand(B, -1).contiguous()
        self.ys = None if t_eval is None else torch.full((B, self.t_eval.shape[1], y0.shape[1]), math.nan,
                                                         dtype=torch.float64, device=dev)
        if self.ys is not None:
            at0 = self.t_eval == 0
            self.ys[at0] = self.y[:, None, :].expand_as(self.ys)[at0]
        self.fired = EventRecord(len(self.events), B, y0.shape[1], torch.float64, dev)
        self.status[self.t_end <= 0] = SUCCESS

    # -- helpers ---------------------------------------------------------------------------
    def sub(self, idx):
        return take(self.p, idx)

    def put(self, idx, switching):
        """Write the switching state ``switching`` of rows ``idx``."""
        self.p = self.p.with_switching(put_rows(self.p.switching, idx, switching))

    def velocity(self, idx):
        """Factor velocities of rows ``idx`` in an exact phase (sliding coordinates rest)."""
        s = self.sub(idx).switching
        w = self.sys.split(self.y[idx])
        fs = torch.where(self.fs[idx] != 0, self.fs[idx], torch.sign(w))
        u = s["side"] * ~s["slide"] * ~s["frozen"]
        v = -u[..., None] * exclusive_prod(fs)
        fs = torch.where(fs != 0, fs, torch.sign(v))          # a factor at 0 heads where it moves
        return -u[..., None] * exclusive_prod(fs), fs

    def user_events(self, idx, t0, dt, y0, pr, at):
        """The user events on the exact path in ``(t0, t0 + dt]``: ``at(r, tt)`` is the state of
        local rows ``r`` ``(m,)`` at times ``tt`` ``(m,)``. Returns ``dt`` cut at the first
        crossing of any event (each crossing is recorded where it happens) and which rows it cut."""
        stopped = torch.zeros(len(idx), dtype=torch.bool, device=self.dev)
        for e in self.events:
            def on_path(tt, e=e):       # the event on the exact path at times tt (R, k)
                R, k = tt.shape
                y = at(torch.arange(R, device=self.dev).repeat_interleave(k), tt.reshape(-1)).reshape(R, k, -1)
                return on_grid(lambda *a: event_values(e, *a), tt, y, repeat_rows(pr, R, k, self.dev))
            t_hit = first_crossing(on_path, event_values(e, t0, y0, pr), t0, t0 + dt, e.direction)
            early = t_hit < t0 + dt
            dt = torch.where(early, t_hit - t0, dt)
            stopped |= early
        return dt, stopped

    def outputs(self, idx, t0, t1, y0, y1, pr, at):
        """Record the events fired in ``(t0, t1]`` and the ``t_eval`` outputs there; whether a
        terminal event fired, per row."""
        terminal = torch.zeros(len(idx), dtype=torch.bool, device=self.dev)
        for j, e in enumerate(self.events):
            terminal |= self.fired.fire(j, e, idx, event_values(e, t0, y0, pr), event_values(e, t1, y1, pr), t1, y1)
        if self.ys is not None:
            te = self.t_eval[idx]
            inside = (te > t0[:, None]) & (te <= t1[:, None])
            r_i, k_i = inside.nonzero(as_tuple=True)
            if len(r_i):
                self.ys[idx[r_i], k_i] = at(r_i, te[r_i, k_i])
        return terminal

    # -- one exact event per row -------------------------------------------------------------
    def exact_step(self, idx):
        sysm, n, L = self.sys, self.sys.n, self.sys.L
        t0, y0, pr = self.t[idx], self.y[idx], self.sub(idx)
        w = sysm.split(y0)
        v, fs = self.velocity(idx)
        T = self.t_end[idx] - t0
        # factor zeros: w + v t = 0
        tz = torch.where(w * v < 0, -w / torch.where(v == 0, torch.ones_like(v), v), math.inf).reshape(len(idx), -1)
        tz_min, kz = tz.min(1)
        # gradient zeros: u_i d_i f(x(t)) goes from > 0 to <= 0
        x = w.prod(-1)
        g, H = sysm.loss.grad(x, pr), sysm.loss.hess(x, pr)
        xc = product_polynomial(w, v)                                          # (R, n, L+1)
        sc = torch.cat([g[..., None], (H @ xc[..., 1:])], -1)
        u = pr.switching["side"]
        watch = ~pr.switching["slide"] & ~pr.switching["frozen"] & (u != 0)
        ts, lo, hi = (torch.from_numpy(a).to(self.dev) for a in first_downcrossing(
            (u[..., None] * sc).reshape(-1, L + 1).cpu().numpy(), T.repeat_interleave(n).cpu().numpy()))
        ts = torch.where(watch.reshape(-1), ts, math.inf).reshape(len(idx), n)
        ts_min, i_s = ts.min(1)
        lo = lo.reshape(len(idx), n).gather(1, i_s[:, None])[:, 0]
        hi = hi.reshape(len(idx), n).gather(1, i_s[:, None])[:, 0]
        surf = ts_min < torch.minimum(tz_min, T)
        if bool(surf.any()):                         # bisection on the product form
            r_s = surf.nonzero(as_tuple=True)[0]
            lo_s, hi_s, pr_s = lo[r_s], hi[r_s], take(pr, r_s)
            ws, vs, us, ii = w[r_s], v[r_s], u[r_s], i_s[r_s]

            def side_value(tt):
                gg = sysm.loss.grad((ws + vs * tt[:, None, None]).prod(-1), pr_s)
                return us.gather(1, ii[:, None])[:, 0] * gg.gather(1, ii[:, None])[:, 0]
            for _ in range(80):
                mid = 0.5 * (lo_s + hi_s)
                if not bool(((mid > lo_s) & (mid < hi_s)).any()):
                    break
                below = side_value(mid) <= 0
                lo_s, hi_s = torch.where(below, lo_s, mid), torch.where(below, mid, hi_s)
            ts_min = ts_min.clone()
            ts_min[r_s] = hi_s
        dt = torch.minimum(torch.minimum(tz_min, ts_min), T)
        kind = torch.where(dt == T, 0, torch.where(dt == tz_min, 1, 2))        # end, factor, surface
        at = lambda r, tt: (w[r] + v[r] * (tt - t0[r])[:, None, None]).reshape(len(r), -1)  # noqa: E731
        dt, stopped = self.user_events(idx, t0, dt, y0, pr, at)
        kind = torch.where(stopped, 3, kind)
        t1 = t0 + dt
        y1 = at(torch.arange(len(idx), device=self.dev), t1)
        terminal = self.outputs(idx, t0, t1, y0, y1, pr, at)
        hit = torch.zeros(len(idx), sysm.layout.width, dtype=torch.bool, device=self.dev)
        fz = kind == 1
        if bool(fz.any()):                          # the factor lands exactly on 0
            w1 = sysm.split(y1).clone()
            flat = w1.reshape(len(idx), -1)
            flat[fz, kz[fz]] = 0.0
            y1 = flat.reshape(len(idx), -1)
            sysm.layout.block(hit, "factors")[fz, kz[fz]] = True
        sf = kind == 2
        sysm.layout.block(hit, "gradient")[sf, i_s[sf]] = True
        # signs of the factors: of the state, and at 0 the direction of motion (it passes 0)
        fs = torch.where(sysm.split(y1) != 0, torch.sign(sysm.split(y1)), torch.sign(v))
        switching, y1 = sysm.on_switch(t1, y1, pr, hit)
        self.t[idx], self.y[idx], self.fs[idx] = t1, y1, fs
        self.put(idx, switching)
        self.n_events[idx] += 1
        done = (kind == 0) | terminal
        self.status[idx] = torch.where(done, torch.where(terminal, EVENT, SUCCESS), self.status[idx])

    # -- sliding phases of coupled losses -------------------------------------------------------
    def sliding_phase(self, idx, wall_left):
        free = Event(lambda t, y, p: p.switching["slide"].any(1).to(y.dtype) - 0.5, terminal=True, direction=-1,
                     name="free")
        left = int((self.max_events - self.n_events[idx]).min())
        pr = self.sub(idx)
        sol = integrate(self.sys, self.t[idx], self.y[idx], self.t_end[idx], pr.problem, switching=pr.switching,
                        rtol=self.rtol,
                        atol=self.atol, events=self.events + (free,), t_eval=None if self.t_eval is None else
                        self.t_eval[idx].where(self.t_eval[idx] >= self.t[idx][:, None], math.nan),
                        max_steps=max(left, 1), max_wall=wall_left)
        self.nfev += sol.nfev
        self.t[idx], self.y[idx] = sol.t, sol.y
        self.put(idx, sol.switching)
        self.fs[idx] = torch.where(self.sys.split(sol.y) != 0, torch.sign(self.sys.split(sol.y)), self.fs[idx])
        self.n_events[idx] += sol.n_steps + sol.n_rejected
        self.n_rejected[idx] += sol.n_rejected
        if self.ys is not None:
            got = ~torch.isnan(sol.ys)
            part = self.ys[idx]
            part[got] = sol.ys[got]
            self.ys[idx] = part
        m = len(self.events)               # the sub-run's last event is `free`
        self.fired.merge(idx, sol.t_events[:m], sol.y_events[:m], sol.event_log[:m])
        user_stop = torch.zeros(len(idx), dtype=torch.bool, device=self.dev)
        for j, e in enumerate(self.events):
            if e.terminal and sol.t_events[j] is not None:
                user_stop |= (~torch.isnan(sol.t_events[j])).any(1) & (sol.status == EVENT)
        freed = (sol.status == EVENT) & ~user_stop
        self.status[idx] = torch.where(freed, _RUNNING, torch.where(user_stop, EVENT, sol.status))

    def run(self) -> Solution:
        start = last = time.perf_counter()
        while True:
            running = self.status == _RUNNING
            if not bool(running.any()):
                break
            over = running & (self.n_events >= self.max_events)
            self.status[over] = STEP_BUDGET
            now = time.perf_counter()
            if self.max_wall is not None and now - start > self.max_wall:
                self.status[self.status == _RUNNING] = WALL_BUDGET
                break
            if self.progress is not None and now - last > 1.0:
                last = now
                self.progress(int((self.status != _RUNNING).sum()), self.B, float(self.t.min()))
            running = self.status == _RUNNING
            self.advance(running, None if self.max_wall is None else self.max_wall - (now - start))
        self.finish()
        return Solution(self.t, self.y, self.status, self.n_events, self.n_rejected, self.nfev, dict(self.p),
                        self.fired.first_times(), self.fired.y_first, self.ys, None, time.perf_counter() - start,
                        self.fired.logs(), dict(self.p.switching))

    def advance(self, running, wall_left):
        """One exact event on the rows in exact phases, a DOP853 sliding phase on the others."""
        coupled = not self.sys.loss.separable
        sliding = running & self.p.switching["slide"].any(1) if coupled else torch.zeros_like(running)
        exact = running & ~sliding
        if bool(exact.any()):
            self.exact_step(exact.nonzero(as_tuple=True)[0])
        if bool(sliding.any()):
            self.sliding_phase(sliding.nonzero(as_tuple=True)[0], wall_left)

    def finish(self):
        """Final bookkeeping (none here)."""


class _CoupledSignRun(_SignRun):
    """Balanced starts on a coupled quadratic loss: each row on its own
    :class:`numerics.sign_coupled.CoupledSignPath` (closed form between events); a row whose
    sliding set turns singular away from rest continues on the general machinery above."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        w = self.sys.split(self.y)
        x = w.prod(-1)
        H = self.sys.loss.hess(x, self.p).expand(self.B, -1, -1)
        c = (H @ x[..., None])[..., 0] - self.sys.loss.grad(x, self.p)
        band = self.sys.stationary_tol * self.p["g_scale"]
        self.paths = [CoupledSignPath(H[b].cpu().numpy(), c[b].cpu().numpy(), w[b].cpu().numpy(),
                                      float(self.t_end[b]), float(band[b])) for b in range(self.B)]
        self.general = torch.zeros(self.B, dtype=torch.bool, device=self.dev)
        for b in range(self.B):
            self.sync(b)

    def sync(self, b):
        """Row ``b``'s state from its path; a singular one is handed over to the general machinery
        (with its sliding parameters, factor signs and the surfaces it is on)."""
        path = self.paths[b]
        self.y[b] = torch.from_numpy(path.factors()).reshape(-1).to(self.dev)
        if path.singular and not bool(self.general[b]):
            self.general[b] = True
            self.write_switching(b)
            w = self.y[b].reshape(self.fs[b].shape)
            self.fs[b] = torch.where(w != 0, torch.sign(w), self.fs[b])
            rows = torch.tensor([b], device=self.dev)
            hit = torch.zeros(1, self.sys.layout.width, dtype=torch.bool, device=self.dev)
            self.sys.layout.block(hit, "gradient")[0] = torch.from_numpy(np.abs(path.grad()) <= path.band)
            switching, y = self.sys.on_switch(self.t[rows], self.y[rows], self.sub(rows), hit)
            self.y[rows] = y
            self.put(rows, switching)

    def write_switching(self, b):
        """The switching state (``frozen``, ``slide``, ``side``, ``t_slide``) of row ``b`` from its path."""
        path = self.paths[b]
        s = self.p.switching
        now = {"frozen": path.mode == FROZEN, "slide": (path.mode == SLIDING) | path.rested, "side": path.u,
               "t_slide": path.t_slide}
        self.put(b, {key: torch.as_tensor(val, dtype=s[key].dtype, device=self.dev) for key, val in now.items()})

    def finish(self):
        for b in range(self.B):
            if not bool(self.general[b]):
                self.write_switching(b)

    def advance(self, running, wall_left):
        general = running & self.general
        if bool(general.any()):
            super().advance(general, wall_left)
        idx = (running & ~self.general).nonzero(as_tuple=True)[0]
        if len(idx):
            self.coupled_step(idx)

    def coupled_step(self, idx):
        rows = idx.tolist()
        plans = [self.paths[b].plan() for b in rows]
        t0, y0, pr = self.t[idx], self.y[idx], self.sub(idx)
        dt = torch.tensor([pl[0] for pl in plans], dtype=torch.float64, device=self.dev)
        N = self.y.shape[1]

        def at(r, tt):                                  # the exact path of local rows r at times tt
            out = torch.empty(len(r), N, dtype=torch.float64, device=self.dev)
            for k in r.unique().tolist():
                m = r == k
                tau = (tt[m] - t0[k]).cpu().numpy()
                out[m] = torch.from_numpy(self.paths[rows[k]].path(tau)).reshape(len(tau), N).to(self.dev)
            return out
        dt, stopped = self.user_events(idx, t0, dt, y0, pr, at)
        t1 = t0 + dt
        y1 = at(torch.arange(len(rows), device=self.dev), t1)
        terminal = self.outputs(idx, t0, t1, y0, y1, pr, at)
        for k, b in enumerate(rows):
            _, kind, i, side = plans[k]
            self.paths[b].advance(float(dt[k]), NONE if bool(stopped[k]) else kind, i, side)
            self.t[b] = self.paths[b].t
            self.sync(b)
        self.n_events[idx] += 1
        end = torch.tensor([pl[1] == END for pl in plans], device=self.dev) & ~stopped
        done = end | terminal
        self.status[idx] = torch.where(done, torch.where(terminal, EVENT, SUCCESS), self.status[idx])


def simulate_sign_flow(w0, loss, t_end, *, device="cpu", events=(), t_eval=None, rtol=1e-12, atol=1e-14,
                       max_events: int = 100_000, max_wall: float | None = None,
                       progress: Callable | None = None) -> FlowResult:
    """Exact sign gradient flow of ``x_i = prod_k w_ik`` from ``w0`` ``(B, n, L)`` (see module).

    ``loss`` must be quadratic (``loss.quadratic``: an affine gradient); ``rtol``/``atol``
    set the stationarity tolerance of the sliding rule (``1e3 rtol max|grad f(x0)|``) and the
    accuracy of DOP853 sliding phases (unbalanced starts on coupled losses). Returns a
    :class:`numerics.runs.FlowResult` whose ``solution.n_steps`` counts events (plus DOP853
    steps), ``solution.nfev`` the DOP853 field evaluations (0 on the closed-form path), and whose
    ``solution.switching`` hold the final sides, sliding sets, frozen coordinates and ``t_slide``
    (on the closed-form path they are written at the end of the run: user event functions
    see the start's).
    """
    dev = resolve_device(device)
    w0 = factors(w0, dev)
    check_loss(loss)
    check_dimension(loss, w0.shape, "w0", "batch, n, L")
    if not getattr(loss, "quadratic", False):
        raise ValueError("loss must be quadratic (affine gradient, loss.quadratic = True) for exact sign descent")
    if not (rtol > 0 and atol >= 0):
        raise ValueError(f"rtol must be > 0 and atol >= 0, got rtol={rtol}, atol={atol}")
    if max_events < 1:
        raise ValueError(f"max_events must be >= 1, got {max_events}")
    B, n, L = w0.shape
    system = DecayFlow(loss, n, L, "decoupled", saddle_tol=(100 * rtol) ** 0.5, **flow_options(1.0, rtol))
    params = {"w_scale": w0.abs().reshape(B, -1).amax(1).clamp_min(1e-300),
              "nu": torch.zeros(B, dtype=torch.float64, device=dev)}
    y0 = w0.reshape(B, n * L)
    p, _ = setup_run(system, y0, 1.0, loss, device=dev, params=params)
    w = system.split(y0).cpu().numpy()
    fast = not loss.separable and all(balanced(w[b]) for b in range(B))
    with threadpool_limits(1) if fast else contextlib.nullcontext():   # latency-bound small linear algebra
        sol = (_CoupledSignRun if fast else _SignRun)(system, y0, p, t_end, events, t_eval, max_events, max_wall,
                                                       rtol, atol, progress).run()
    return FlowResult(sol, system, n * L)


__all__ = ["simulate_sign_flow"]

"""The integration loop: a batch of trajectories, each with its own time, step and status.

The loop advances all running trajectories together and drops each one as soon as it
finishes (:meth:`BatchState.take` compacts the working set), so a finished, sliding or stiff
trajectory never forces small steps on the others. Each pass: the stepper takes one step per
row (:mod:`.stepper`), the controller accepts or rejects it and proposes the next
(:mod:`.controller`), accepted steps are searched for switches (:mod:`.hybrid`) and events
(:mod:`.events`) on their interpolant, cut there, and recorded (``t_eval``, dense output).
Budgets on steps and wall time end a run with a status code and a message, never a hang.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import torch

from . import hybrid
from .controller import ConstantStep, Controller, ControllerState, initial_step
from .dense import DenseOutput
from .events import Event, EventRecord, crossed, event_values, first_crossing, on_grid, repeat_rows
from .rows import Params, put_rows, take
from .solution import Solution
from .status import RUNNING, Status
from .stepper import STEPPERS
from .system import ODESystem, TimeReversed

SECTION_ELEMENTS = 4096     # state elements per row and pass of a switch or event search (see section_points)


@dataclass
class BatchState:
    """The running rows: their indices into the batch, times, states, fields at those states,
    horizons, step caps, frozen modes, parameters and switching state, step counts, event values,
    controller state."""

    idx: torch.Tensor
    t: torch.Tensor
    y: torch.Tensor
    f: torch.Tensor
    t_end: torch.Tensor
    h_max: torch.Tensor | None
    mode: torch.Tensor | None
    p: Params
    steps: torch.Tensor
    rej: torch.Tensor
    gev: list
    ctrl: ControllerState

    def take(self, mask) -> "BatchState":
        def sel(v):
            return None if v is None else v[mask]
        return BatchState(self.idx[mask], self.t[mask], self.y[mask], self.f[mask], self.t_end[mask],
                          sel(self.h_max), sel(self.mode), take(self.p, mask), self.steps[mask], self.rej[mask],
                          [g[mask] for g in self.gev], self.ctrl.take(mask))


class _Run:
    """One call of :func:`integrate`: the working set of running trajectories and outputs."""

    def __init__(self, system, t0, y0, t_end, params, switching, rtol, atol, events, t_eval, dense,
                 max_steps, max_wall, h0, progress, controller, max_step, method, direction=1.0):
        self.system, self.rtol, self.atol, self.direction = system, rtol, atol, direction
        self.events, self.dense, self.max_steps, self.max_wall = tuple(events), dense, max_steps, max_wall
        self.progress = progress
        dev, dt = y0.device, torch.float64
        self.dev, self.dt = dev, dt
        B, n = y0.shape
        self.B, self.n = B, n
        self.stepper = STEPPERS[method](system, self.rhs, n, rtol, atol, dt, dev)
        self.controller = controller.bind(self.stepper.error_exponent)
        self.nfev = 0
        t0 = torch.as_tensor(t0, dtype=dt, device=dev).expand(B).clone()
        t_end = torch.as_tensor(t_end, dtype=dt, device=dev).expand(B).clone()
        params = Params(*({k: torch.as_tensor(v, device=dev) for k, v in (d or {}).items()}
                          for d in (params, switching)))
        # outputs
        self.out_t, self.out_y = t0.clone(), y0.clone()
        self.out_status = torch.full((B,), RUNNING, dtype=torch.int64, device=dev)
        self.out_steps = torch.zeros(B, dtype=torch.int64, device=dev)
        self.out_rej = torch.zeros(B, dtype=torch.int64, device=dev)
        self.out_params = {k: v.clone() for k, v in params.items()}
        self.out_switching = {k: v.clone() for k, v in params.switching.items()}
        self.fired = EventRecord(len(self.events), B, n, dt, dev)
        self.t_eval, self.ys = None, None
        if t_eval is not None:
            te = torch.as_tensor(t_eval, dtype=dt, device=dev)
            self.t_eval = te.expand(B, te.shape[-1]).contiguous()
            self.ys = torch.full((B, self.t_eval.shape[1], n), math.nan, dtype=dt, device=dev)
            at0 = self.t_eval == t0[:, None]
            self.ys[at0] = y0[:, None, :].expand_as(self.ys)[at0]
        self.dense_parts = []
        # working set
        mode = hybrid.mode_of(system, t0, y0, params)
        f0 = self.rhs(t0, y0, params, mode)
        h = initial_step(self.rhs, t0, y0, f0, params, mode, t_end - t0, rtol, atol, self.stepper.error_exponent) \
            if h0 is None else torch.as_tensor(h0, dtype=dt, device=dev).expand(B).clone()
        h_max = None if max_step is None else torch.as_tensor(max_step, dtype=dt, device=dev).expand(B).clone()
        self.s = BatchState(torch.arange(B, device=dev), t0, y0, f0, t_end, h_max, mode, params,
                            torch.zeros(B, dtype=torch.int64, device=dev), torch.zeros(B, dtype=torch.int64, device=dev),
                            [event_values(e, t0, y0, params) for e in self.events], self.controller.init(h))
        self.simple = mode is None and not self.events and self.ys is None and not dense
        # a non-finite start (state, field or step) stops at once instead of burning the budget
        self.finish(~(torch.isfinite(y0).all(1) & torch.isfinite(f0).all(1) & torch.isfinite(h)), Status.NONFINITE)
        self.finish(self.s.t_end <= self.s.t, Status.SUCCESS)

    # -- helpers -----------------------------------------------------------------------
    def rhs(self, t, y, p, mode):
        self.nfev += 1
        return self.system.rhs(t, y, p, mode)

    def section_points(self) -> int:
        """Points per pass of a switch or event search: up to 15 while a row's pass evaluates at
        most ``SECTION_ELEMENTS`` state elements, down to 1 (bisection) for large states, whose
        switching functions cost per element rather than per call. Below that size a pass costs
        about one call, whatever its points: on the 100-element states of ``verify.bench``'s
        regressions, 15 points instead of the 1 of a 256-element budget took 12 passes per search
        instead of 32 (the sign regression's Filippov phase: 9.1 s -> 7.6 s). It depends on the
        state size only: a row's search, and so its located times, do not depend on the rows
        beside it."""
        return max(1, min(15, SECTION_ELEMENTS // self.n - 1))

    def finish(self, mask, code):
        if not bool(mask.any()):
            return
        s = self.s
        rows = s.idx[mask]
        self.out_t[rows], self.out_y[rows] = s.t[mask], s.y[mask]
        self.out_status[rows] = code[mask] if isinstance(code, torch.Tensor) else code
        self.out_steps[rows], self.out_rej[rows] = s.steps[mask], s.rej[mask]
        for k, v in s.p.switching.items():
            self.out_switching[k][rows] = v[mask]
        self.s = s.take(~mask)

    # -- one step ----------------------------------------------------------------------
    def trial(self):
        """A step of every running row, clipped at ``t_end``."""
        s = self.s
        h = torch.minimum(s.ctrl.h, s.t_end - s.t)
        if s.h_max is not None:
            h = torch.minimum(h, s.h_max)
        cap = self.system.max_step(s.t, s.y, s.p, s.mode)
        if cap is not None:
            h = torch.minimum(h, cap)
        return h, self.stepper.step(s.t, s.y, s.f, h, s.p, s.mode)

    def control(self, h, err, finite):
        s = self.s
        accept, s.ctrl = self.controller.adapt(s.ctrl, h, err, finite)
        s.steps += accept.long()
        s.rej += (~accept).long()
        return accept

    def reject_after_cut(self, rows, failed):
        """Accepted steps whose redo at a cut failed its error test become rejections."""
        _, h, err, fin = failed
        s = self.s
        s.ctrl = self.controller.reject(s.ctrl, rows, h, err, fin)
        s.steps[rows] -= 1
        s.rej[rows] += 1

    def commit(self, accept, h, st):
        """Apply the accepted steps: locate switches and events, cut, record, update."""
        s, stepper = self.s, self.stepper
        y_new, f_new, K = st.y_new, st.f_new, st.stages
        a = slice(None) if bool(accept.all()) else accept
        t1 = s.t + h
        if self.simple:
            if isinstance(a, slice):
                s.t, s.y, s.f = t1, y_new, f_new
            else:
                s.t = torch.where(accept, t1, s.t)
                s.y = torch.where(accept[:, None], y_new, s.y)
                s.f = torch.where(accept[:, None], f_new, s.f)
            return None
        ta, ya, ha, t1a, yna, pa = s.t[a], s.y[a], h[a], t1[a], y_new[a], take(s.p, a)
        ma = None if s.mode is None else s.mode[a]
        crossed_sw = sw1 = None
        if ma is not None:
            crossed_sw, sw1 = hybrid.crossed_switches(self.system, t1a, yna, pa, ma)
        g0 = [g[a] for g in s.gev]
        crossed_ev = [crossed(g, event_values(e, t1a, yna, pa), e.direction)
                      for e, g in zip(self.events, g0)]
        need = torch.full_like(ta, self.dense, dtype=torch.bool)
        if crossed_sw is not None:
            need |= crossed_sw.any(1)
        for c in crossed_ev:
            need |= c.any(1)
        if self.ys is not None:
            te = self.t_eval[s.idx[a]]
            need |= ((te > ta[:, None]) & (te <= t1a[:, None])).any(1)
        t_cut, y_cut = t1a.clone(), yna.clone()
        y_judge = y_cut.clone()
        hit = None if crossed_sw is None else torch.zeros_like(crossed_sw)
        if bool(need.any()):
            r = need
            F = stepper.dense(K[:, a][:, r], ta[r], ya[r], ha[r], yna[r], take(pa, r),
                              None if ma is None else ma[r])
            t0r, h0r, y0r, pr = ta[r], ha[r], ya[r], take(pa, r)
            interpolate = stepper.interpolate

            def state_at(tt):
                return interpolate(F, y0r, (tt - t0r) / h0r)

            repeated = {}        # the rows' parameters repeated k times, per k

            def at_points(fn, tt):
                """``fn(t, y, p)`` on the dense output at times ``tt`` (``(R, k)``) -> ``(R, k, m)``."""
                R, k = tt.shape
                if k not in repeated:
                    repeated[k] = repeat_rows(pr, R, k, self.dev)
                y = interpolate(F[:, :, None], y0r[:, None], (tt - t0r[:, None]) / h0r[:, None])
                return on_grid(fn, tt, y, repeated[k])

            tc = t1a[r]
            t_sw, at_sw = tc, None
            points = self.section_points()
            if crossed_sw is not None and bool(crossed_sw[r].any()):
                cs, mr = crossed_sw[r], ma[r]
                t_sw, at_sw = hybrid.locate_switch(self.system, at_points, t0r, t0r + h0r, cs, mr, points)
                tc = torch.where(cs.any(1), torch.minimum(tc, t_sw), tc)
            for e, g in zip(self.events, g0):
                t_hit = first_crossing(lambda tt, e=e: at_points(lambda *a: event_values(e, *a), tt),
                                       g[r], t0r, tc, e.direction, points=points)
                tc = torch.minimum(tc, t_hit)
            cut = tc < t1a[r]
            if bool(cut.any()):
                tc, redo, failed = hybrid.redo_cut(stepper, cut, tc, t0r, y0r, s.f[a][r], pr,
                                                   None if ma is None else ma[r])
                if failed is not None:
                    self.reject_after_cut(torch.arange(len(s.idx), device=self.dev)[a][r][failed[0]], failed)
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
                self.record_outputs(s.idx[a][r], t0r, tc, y0r, h0r, F)
            if self.dense:            # the interpolant's own length h0r; nothing where the step was undone
                kept = tc > t0r
                self.dense_parts.append((s.idx[a][r][kept], t0r[kept], h0r[kept], y0r[kept], F[:, kept]))
        cut = t_cut < t1a             # the field must be re-evaluated where the step was cut
        terminal = self.record_events(a, g0, t_cut, y_cut, y_judge, pa)
        if hit is not None:
            if bool(hit.any()):
                pa, y_cut, rh = hybrid.apply_switch(self.system, t_cut, y_cut, pa, hit)
                cut = cut | rh
                s.p = s.p.with_switching(put_rows(s.p.switching, a, pa.switching))
        t_all, y_all = s.t.clone(), s.y.clone()
        t_all[a], y_all[a] = t_cut, y_cut
        s.t, s.y = t_all, y_all
        self.update_mode_and_field(a, f_new, cut, ma, sw1)
        term = torch.zeros_like(accept)
        term[a] = terminal
        return term

    def update_mode_and_field(self, a, f_new, cut, ma, sw1):
        """The mode and field of the accepted rows ``a`` at their new states. The mode is the
        signs of the switching functions there: ``sw1``, their values at the step's end, where
        the step was kept whole; evaluated anew where it was cut or a switch applied (``cut``).
        Rejected rows keep both. The field is re-evaluated where the state or the mode changed."""
        s = self.s
        new_mode = s.mode
        pa = take(s.p, a)
        changed = cut.clone()
        if ma is not None:
            nm = torch.sign(sw1)
            if bool(cut.any()):
                nm[cut] = hybrid.mode_of(self.system, s.t[a][cut], s.y[a][cut], take(pa, cut))
            changed |= (nm != ma).any(1)
            new_mode = s.mode.clone()
            new_mode[a] = nm
        f_acc = f_new[a].clone()
        if bool(changed.any()):
            t_cut, y_cut = s.t[a], s.y[a]
            f_acc[changed] = self.rhs(t_cut[changed], y_cut[changed], take(pa, changed),
                                      None if new_mode is None else new_mode[a][changed])
        f_all = s.f.clone()
        f_all[a] = f_acc
        s.f, s.mode = f_all, new_mode

    def record_outputs(self, rows, t0r, tc, y0r, h0r, F):
        te = self.t_eval[rows]
        inside = (te > t0r[:, None]) & (te <= tc[:, None])
        if bool(inside.any()):
            r_i, k_i = inside.nonzero(as_tuple=True)
            self.ys[rows[r_i], k_i] = self.stepper.interpolate(F[:, r_i], y0r[r_i],
                                                               (te[r_i, k_i] - t0r[r_i]) / h0r[r_i])

    def record_events(self, a, g0, t_cut, y_cut, y_judge, pa):
        s = self.s
        terminal = torch.zeros_like(t_cut, dtype=torch.bool)
        rows = s.idx[a]
        for j, e in enumerate(self.events):
            g_now = event_values(e, t_cut, y_judge, pa)
            terminal |= self.fired.fire(j, e, rows, g0[j], g_now, t_cut, y_cut)
            g_all = s.gev[j].clone()
            g_all[a] = g_now
            s.gev[j] = g_all
        return terminal

    # -- the loop ----------------------------------------------------------------------
    def run(self) -> Solution:
        start = last = time.perf_counter()
        while len(self.s.idx):
            now = time.perf_counter()
            if self.max_wall is not None and now - start > self.max_wall:
                self.finish(torch.ones_like(self.s.idx, dtype=torch.bool), Status.WALL_BUDGET)
                break
            if self.progress is not None and now - last > 1.0:
                last = now
                self.progress(self.B - len(self.s.idx), self.B, float(self.direction * self.s.t.min()))
            h, st = self.trial()
            finite = st.finite
            accept = self.control(h, st.err, finite)
            s = self.s
            # relative to the spacing of floats at t (as scipy): a problem on any time scale runs
            min_step = 10 * (torch.nextafter(s.t, torch.full_like(s.t, math.inf)) - s.t)
            underflow = ~accept & ~(s.ctrl.h >= min_step)      # a nan step is an underflow too
            exhausted = (s.steps + s.rej) >= self.max_steps
            term = self.commit(accept, h, st) if bool(accept.any()) else None
            s = self.s
            reached = accept & (s.t >= s.t_end)
            done = reached | underflow | exhausted
            if term is not None:
                reached &= ~term
                done |= term
            if not bool(done.any()):
                continue
            code = torch.full_like(s.idx, Status.STEP_BUDGET)
            code = torch.where(underflow, torch.where(finite, torch.full_like(code, Status.STEP_UNDERFLOW),
                                                      torch.full_like(code, Status.NONFINITE)), code)
            code = torch.where(reached, torch.full_like(code, Status.SUCCESS), code)
            if term is not None:
                code = torch.where(term, torch.full_like(code, Status.EVENT), code)
            self.finish(done, code)
        sign = self.direction
        if self.progress is not None:
            self.progress(self.B, self.B, float(sign * self.out_t.max()) if self.B else 0.0)
        dense = None
        if self.dense:
            empty = torch.zeros((0, 0, self.n), dtype=self.dt, device=self.dev)
            rows, t0s, hs, y0s, Fs = zip(*self.dense_parts) if self.dense_parts else \
                ([self.out_steps[:0]], [self.out_t[:0]], [self.out_t[:0]], [self.out_y[:0]], [empty])
            dense = DenseOutput(torch.cat(rows), torch.cat(t0s), torch.cat(hs), torch.cat(y0s),
                                torch.cat(Fs, dim=1), self.B, self.stepper.interpolate, self.out_y, sign)
        return Solution(sign * self.out_t, self.out_y, self.out_status, self.out_steps, self.out_rej,
                        self.nfev, self.out_params, self.fired.first_times(sign), self.fired.y_first, self.ys,
                        dense, time.perf_counter() - start, self.fired.logs(sign), self.out_switching)


def integrate(system: ODESystem, t0, y0: torch.Tensor, t_end, params: dict | None = None, *,
              switching: dict | None = None, rtol: float = 1e-10, atol: float = 1e-12, events=(), t_eval=None,
              dense: bool = False, max_steps: int = 100_000, max_wall: float | None = None, h0=None,
              progress: Callable | None = None, adaptive: bool = True, max_step=None,
              method: str = "dop853", controller: Controller | None = None) -> Solution:
    """Integrate a batch of trajectories ``y0`` (``(B, n)``) from ``t0`` to ``t_end``.

    ``params`` (the problem's, fixed during the run) and ``switching`` (the starting switching
    state, which ``system.on_switch`` replaces) are dicts of per-trajectory tensors; the field
    sees both as one :class:`~numerics.integrate.rows.Params`, and ``Solution.switching`` holds
    the final switching state. ``t0``/``t_end`` are scalars or ``(B,)`` tensors; ``t_eval`` is
    ``(T,)`` or ``(B, T)`` (a nan entry asks for no output: ``ys`` stays nan there).
    ``max_steps`` caps the accepted plus rejected steps of each trajectory and
    ``max_wall`` (seconds) the whole call; trajectories stopped by a budget keep their
    last state and get a status code (``Solution.failures()``) instead of a result.
    ``progress(done, total, t_min)`` is called about once a second on long runs.
    ``adaptive=False`` takes fixed steps ``h0`` (for order-of-convergence studies).
    ``max_step`` (number or ``(B,)``) caps every step: the embedded error estimate of DOP853
    can be blind to the true error (e.g. ``x' = L x^(1-1/L)``, whose solution ``(a + t)^L``
    is a polynomial: steps of ``T/4`` pass the test at rtol 1e-12 with a 4e-9 error).
    ``method`` names a registered stepper (``STEPPERS``); ``controller`` a step-size controller
    (default :class:`~numerics.integrate.controller.Controller`).
    ``t_end < t0`` integrates backward (every trajectory in the same direction): times, events,
    ``t_eval`` and the dense output are in the original time; an event's ``direction`` refers to
    the order in which its values are met along the integration, as in ``scipy.integrate``.
    A row takes the same steps, bit for bit, alone as inside any batch, provided the field computes
    each row by itself (elementwise arithmetic; a vectorized ``pow``/``exp``/``cos`` or a BLAS
    product ``y @ A.T`` in the field may round a row differently with its position in the batch).
    ``Solution.event_log`` (or ``event_times(j, row)``) holds every firing of each event;
    ``t_events``/``y_events`` keep the first.
    """
    if not isinstance(y0, torch.Tensor) or y0.ndim != 2:
        raise ValueError(f"y0 must be a tensor of shape (batch, n), got {getattr(y0, 'shape', y0)}")
    if y0.is_complex():
        raise ValueError(f"y0 must be real, got dtype {y0.dtype} (integrate real and imaginary parts as separate "
                         "components)")
    if not (rtol > 0 and atol >= 0):
        raise ValueError(f"rtol must be > 0 and atol >= 0, got rtol={rtol}, atol={atol}")
    if max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    if not adaptive and h0 is None:
        raise ValueError("adaptive=False needs a fixed step h0")
    if max_step is not None and not bool((torch.as_tensor(max_step, dtype=torch.float64) > 0).all()):
        raise ValueError(f"max_step must be > 0, got {max_step}")
    if method not in STEPPERS:
        raise ValueError(f"method must be one of {sorted(STEPPERS)}, got {method!r}")
    B, dev = y0.shape[0], y0.device
    t0, t_end = (torch.as_tensor(v, dtype=torch.float64, device=dev) for v in (t0, t_end))
    for name, v in (("t0", t0), ("t_end", t_end)):
        if v.shape not in ((), (1,), (B,)):
            raise ValueError(f"{name} must have shape () or ({B},) (one per trajectory), got {tuple(v.shape)}")
    t0, t_end = t0.expand(B), t_end.expand(B)
    if bool(torch.isnan(t0).any() | torch.isnan(t_end).any()):
        raise ValueError("t0 and t_end must be numbers, got nan")
    forward = bool((t_end >= t0).all())
    if not forward and not bool((t_end <= t0).all()):
        raise ValueError("t_end - t0 must have the same sign for every trajectory (run forward and backward "
                         "trajectories in separate calls)")
    if h0 is not None and not bool((torch.isfinite(h := torch.as_tensor(h0, dtype=torch.float64)) & (h > 0)).all()):
        raise ValueError(f"h0 must be finite and > 0 (a step length, also when integrating backward), got {h0}")
    if t_eval is not None:
        t_eval = torch.as_tensor(t_eval, dtype=torch.float64, device=dev)
        lo, hi = torch.minimum(t0, t_end)[:, None], torch.maximum(t0, t_end)[:, None]
        if t_eval.ndim not in (1, 2) or not bool((torch.isnan(t_eval) | (t_eval >= lo) & (t_eval <= hi)).all()):
            raise ValueError("t_eval must be (T,) or (batch, T) with every time within [t0, t_end] of its trajectory "
                             "(nan: no output there)")
    if controller is None:
        controller = Controller() if adaptive else ConstantStep()
    if not forward:            # backward: integrate the time-reversed system forward in s = -t
        system = TimeReversed(system)
        events = [Event(lambda t, y, p, fn=e.fn: fn(-t, y, p), e.terminal, e.direction, e.name) for e in events]
        t0, t_end = -t0, -t_end
        t_eval = None if t_eval is None else -t_eval
    return _Run(system, t0, y0.to(torch.float64), t_end, params, switching, rtol, atol, events, t_eval, dense,
                max_steps, max_wall, h0, progress, controller, max_step, method, 1.0 if forward else -1.0).run()

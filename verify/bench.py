"""``python -m verify.bench``: the package's integrators against a SciPy ``solve_ivp`` loop and
torchdiffeq, on the same problems, tolerance and starts, in one process.

Problems (deep diagonal ``L = 3``, reference loss ``f = (x - y)^2/2``, ``y = 1``, balanced starts
``w_k = alpha``, ``alpha ~ U[0.3, 0.4]``):

* ``smooth``     ``q = 2`` to ``t = 5``; exact state from inverting the ESC-1 closed form;
* ``arrival``    ``q = 1.5`` to ``t = 3``, past the finite-time arrival at ``x = y``; exact final
                 state ``w_k = y^(1/L)`` and exact arrival time (ESC-1 at ``x1 = y``);
* ``sign``       ``q = 1`` through sliding at the minimizer; same exact answers;
* ``regression`` ``q = 1.5`` linear regression with 50 coordinates (``N = 30`` samples); the
                 reference is the package's own run at ``rtol = 1e-13``; torchdiffeq also runs
                 at a 100x tighter tolerance (its error at the common one is far larger).
* ``sign regression`` ``q = 1`` on the same regression (``L = 2``) through its sliding phase:
                 the exact event-to-event sign integrator (:mod:`numerics.sign`) against the
                 DOP853 Filippov flow (``numerics.decay.DecayFlow``, ``nu = 0``); no closed form,
                 the error column is their difference.

On the ``smooth`` and ``regression`` rows the peer packages of the ``[bench]`` extra get columns,
each replaced by a note when its package is absent: torchode ``Dopri5`` and ``Tsit5`` (one step
size per instance) and diffrax ``Dopri8`` and ``Kvaerno5`` under ``jax.vmap`` + ``jit`` in float64
(in a child process: jax is imported only there, compilation is untimed like every warm-up).

On the ``q = 1`` problems the exact sign integrator gets its own row (``exact sign``); its
``vs ours`` ratio is the DOP853 flow's speed over the exact one's.

For each solver: wall time, trajectories per second, achieved error, and the ratio to the
package. Solvers that cannot finish are stopped by a wall-clock budget and reported so.
Each solver is warmed up once, untimed, before the timed rows; a run shorter than ``FAST``
seconds is repeated twice more and the median of the three times is reported (one rule for
every solver). Timings are measurements, never assertions.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import multiprocessing
import operator
import queue
import resource
import statistics
import sys
import textwrap
import time

import numpy as np
import torch
from scipy.integrate import solve_ivp
from tqdm import tqdm

import theory
from numerics._generated import numpy_kernels as NK
from numerics.cli import Parser, add_device, description, piped, positive
from numerics.flows import DeepDiagonalFlow
from numerics.losses import LinearRegression, SeparableQuadratic
from numerics.sign import simulate_sign_flow
from numerics.runs import resolve_device
from numerics.simulate import default_method, simulate_parameter_flow

L, Y = 3, 1.0
FAST = 1.0          # seconds: shorter runs are repeated (see ``timed``)


class Budget(Exception):
    """Raised inside a right-hand side when a solver exceeds its wall-clock budget."""


def starts(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 0.3 + 0.1 * torch.rand(n, generator=g, dtype=torch.float64)


def exact_x(alpha: np.ndarray, q: float, t: float) -> np.ndarray:
    """x(t) of the balanced flow from ``alpha``: the root of ``T(alpha^L -> x) = t`` (ESC-1),
    by vectorized bisection on the generated kernel (``T`` increases in ``x``) to adjacent floats."""
    lo = np.asarray(alpha, dtype=np.float64) ** L
    x0, hi = lo.copy(), np.full_like(lo, Y * (1 - 1e-15))
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if not np.any((mid > lo) & (mid < hi)):
            break
        below = NK.esc1_time(x0, mid, Y, L, q) < t
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return 0.5 * (lo + hi)


def smooth_field(w, q, xp=np):
    """``dw_k/dt = -phi_q((x - y) x / w_k)``, ``x = prod_k w_k``, for factors ``(..., L)`` in the
    array namespace ``xp`` (numpy, torch or jax.numpy)."""
    x = functools.reduce(operator.mul, [w[..., k] for k in range(w.shape[-1])])[..., None]
    z = (x - Y) * x / w
    return -xp.sign(z) * xp.abs(z) ** (q - 1)


def regression_field(wf, q, X, y, xp=np):
    """The ``L = 2`` regression flow ``dw/dt = -phi_q(grad_w F)`` on flattened factors ``(..., 2 d)``
    (``X``: ``(N, d)`` samples, ``y``: ``(N,)`` targets, ``F = |X x - y|^2 / (2 N)``)."""
    w = wf.reshape(wf.shape[:-1] + (X.shape[1], 2))
    x = w[..., 0] * w[..., 1]
    gr = (x @ X.T - y) @ X / X.shape[0]
    z = gr[..., None] * xp.stack([w[..., 1], w[..., 0]], -1)
    return (-xp.sign(z) * xp.abs(z) ** (q - 1)).reshape(wf.shape)


def _field(q):
    return lambda t, w: smooth_field(w, q)


def run_ours(alpha, q, t_end, device, rtol, atol, **kw):
    w0 = alpha.to(device).reshape(-1, 1, 1).expand(-1, 1, L).contiguous()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    res = simulate_parameter_flow(w0, q, SeparableQuadratic(Y), t_end, device=device, rtol=rtol, atol=atol, **kw)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return res, time.perf_counter() - t0


def timed(run, *args, **kw):
    """``run(*args, **kw)`` returns ``(result, seconds, ...)``: a run under ``FAST`` seconds is
    repeated twice more and the median time reported (a single short run is at the mercy of
    first-touch allocation and scheduling noise)."""
    out = run(*args, **kw)
    if out[1] < FAST:
        times = [out[1]] + [run(*args, **kw)[1] for _ in range(2)]
        out = (out[0], statistics.median(times)) + tuple(out[2:])
    return out


def run_exact_sign(alpha, device):
    w0 = alpha.to(device).reshape(-1, 1, 1).expand(-1, 1, L).contiguous()
    t0 = time.perf_counter()
    return simulate_sign_flow(w0, SeparableQuadratic(Y), 3.0, device=device), time.perf_counter() - t0


def run_scipy(alpha, q, t_end, rtol, atol, budget):
    """A ``solve_ivp`` DOP853 loop; returns (final w per trajectory or None, seconds, finished)."""
    out, start, done = [], time.perf_counter(), 0
    f = _field(q)

    def guarded(t, w):
        if time.perf_counter() - start > budget:
            raise Budget
        return f(t, w)
    for a in alpha.tolist():
        try:
            sol = solve_ivp(guarded, (0, t_end), [a] * L, method="DOP853", rtol=rtol, atol=atol)
            out.append(sol.y[:, -1])
            done += 1
        except Budget:
            break
    return np.array(out), time.perf_counter() - start, done


def on_budget(f, budget):
    """``f(y)`` as a right-hand side ``(t, y)`` that raises :class:`Budget` once ``budget`` seconds
    have passed since this call."""
    start = time.perf_counter()

    def g(t, y):
        if time.perf_counter() - start > budget:
            raise Budget
        return f(y)
    return g


def run_torchdiffeq(alpha, q, t_end, device, rtol, atol, budget):
    try:
        from torchdiffeq import odeint
    except ImportError:
        return None, math.nan, "torchdiffeq not installed (pip install -e .[bench])"
    start = time.perf_counter()
    f = on_budget(lambda w: smooth_field(w, q, torch), budget)
    w0 = alpha.to(device)[:, None].expand(-1, L).contiguous()
    try:
        sol = odeint(f, w0, torch.tensor([0.0, t_end], dtype=torch.float64, device=device), rtol=rtol,
                     atol=atol, method="dopri5")
    except Budget:
        return None, time.perf_counter() - start, f"stopped after the {budget:g} s budget"
    except AssertionError as exc:         # torchdiffeq's own underflow assertion
        return None, time.perf_counter() - start, f"failed: {exc}"
    if device.type == "cuda":
        torch.cuda.synchronize()
    return sol[-1].cpu(), time.perf_counter() - start, ""


# -- peer packages (the [bench] extra): torchode and diffrax -------------------------------------

TORCHODE = ("Dopri5", "Tsit5")
DIFFRAX = ("Dopri8", "Kvaerno5")
COMPILE_BUDGET = 300.0   # seconds for a diffrax child to import jax and compile (untimed)


def missing(*packages) -> str:
    """A note naming the packages that are not installed, or ``""``."""
    absent = [p for p in packages if importlib.util.find_spec(p) is None]
    return f"{', '.join(absent)} not installed (pip install -e .[bench])" if absent else ""


def run_torchode(method, f, y0, t_end, rtol, atol, budget):
    """torchode's ``method`` (``Dopri5`` or ``Tsit5``) with its integral controller, which keeps one
    step size per instance (per row of ``y0``); ``f(y)`` the batched field. Returns
    ``(final states or None, seconds, note)``."""
    import torchode

    start = time.perf_counter()
    term = torchode.ODETerm(on_budget(f, budget))
    solver = torchode.AutoDiffAdjoint(getattr(torchode, method)(term=term),
                                      torchode.IntegralController(atol=atol, rtol=rtol, term=term))
    t_eval = torch.tensor([0.0, t_end], dtype=torch.float64, device=y0.device).expand(len(y0), 2)
    try:
        sol = solver.solve(torchode.InitialValueProblem(y0=y0, t_eval=t_eval))
    except Budget:
        return None, time.perf_counter() - start, f"stopped after the {budget:g} s budget"
    if y0.device.type == "cuda":
        torch.cuda.synchronize()
    sec, failed = time.perf_counter() - start, int((sol.status != 0).sum())
    steps = int(sol.stats["n_steps"].max()) if "n_steps" in sol.stats else -1
    return sol.ys[:, -1].cpu(), sec, (f"{failed} of {len(y0)} failed; " if failed else "") + \
        f"<= {steps} steps per instance"


def _diffrax_serve(jobs, out):
    """A child process's loop: import jax once (float64), then serve diffrax runs from ``jobs``
    until ``None``. Each run is ``jax.jit(jax.vmap(diffeqsolve))`` of ``field(y, *args)``, compiled
    ahead of time (untimed, reported as ``("compiled", s)``), then timed as in :func:`timed`
    (``("done", final states, seconds, all successful, max steps)``)."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import diffrax
    import jax.numpy as jnp

    for solver, field, args, y0, t_end, rtol, atol, max_steps in iter(jobs.get, None):
        try:
            args = tuple(jnp.asarray(a) if isinstance(a, np.ndarray) else a for a in args)
            fn = {"smooth": smooth_field, "regression": regression_field}[field]
            term = diffrax.ODETerm(lambda t, y, _, fn=fn, args=args: fn(y, *args, xp=jnp))
            control = diffrax.PIDController(rtol=rtol, atol=atol)

            def one(y, term=term, control=control, solver=solver, t_end=t_end, max_steps=max_steps):
                sol = diffrax.diffeqsolve(term, getattr(diffrax, solver)(), 0.0, t_end, None, y,
                                          stepsize_controller=control, max_steps=max_steps, throw=False)
                return sol.ys[-1], sol.result == diffrax.RESULTS.successful, sol.stats["num_steps"]
            y0 = jnp.asarray(y0)
            start = time.perf_counter()
            compiled = jax.jit(jax.vmap(one)).lower(y0).compile()
            out.put(("compiled", time.perf_counter() - start))
            times = []
            while len(times) < (1 if times and times[0] >= FAST else 3):
                start = time.perf_counter()
                ys, ok, steps = jax.block_until_ready(compiled(y0))
                times.append(time.perf_counter() - start)
            out.put(("done", np.asarray(ys), statistics.median(times), bool(np.all(ok)), int(np.max(steps))))
        except Exception as exc:  # reported to the parent, which prints it in the note
            out.put(("error", f"{type(exc).__name__}: {exc}"))


def _receive(out, child, timeout):
    """The child's next message within ``timeout`` seconds (``queue.Empty`` past it); an
    ``("error", ...)`` message if the child died without one."""
    end = time.perf_counter() + timeout
    while True:
        try:
            return out.get(timeout=min(1.0, max(end - time.perf_counter(), 0.01)))
        except queue.Empty:
            if not child.is_alive() and out.empty():
                return ("error", f"the diffrax process exited with code {child.exitcode}")
            if time.perf_counter() >= end:
                raise


class DiffraxProcess:
    """diffrax runs in one child process (spawned on first use): jax is imported only there, once,
    and a run past its budget is stopped by ending the child (the next run starts a new one)."""

    def __init__(self):
        self.child = self.jobs = self.out = None

    def run(self, solver, field, args, y0, t_end, rtol, atol, budget, max_steps=1_000_000):
        """diffrax's ``solver`` under ``jax.vmap`` + ``jit`` (x64) on ``field(y, *args)`` from the rows
        of ``y0`` (numpy). Returns ``(final states or None, seconds, note)``."""
        if self.child is None or not self.child.is_alive():
            ctx = multiprocessing.get_context("spawn")
            self.jobs, self.out = ctx.Queue(), ctx.Queue()
            self.child = ctx.Process(target=_diffrax_serve, args=(self.jobs, self.out), daemon=True)
            self.child.start()
        self.jobs.put((solver, field, args, y0, t_end, rtol, atol, max_steps))
        try:
            msg = _receive(self.out, self.child, COMPILE_BUDGET)
            if msg[0] == "compiled":
                msg = _receive(self.out, self.child, budget)
        except queue.Empty:
            self.close()
            return None, budget, f"stopped after the {budget:g} s budget"
        if msg[0] == "error":
            return None, math.nan, f"failed: {msg[1]}"
        _, ys, sec, ok, steps = msg
        return ys, sec, ("" if ok else "not all successful; ") + f"<= {steps} steps per instance (vmap + jit, x64)"

    def close(self):
        if self.child is not None:
            if self.child.is_alive():
                self.child.kill()
            self.child.join()
            self.child = None


DIFFRAX_PROCESS = DiffraxProcess()


def peer_rows(rows, problem, n, torch_field, field, args, y0, t_end, error, devices, rtol, atol, budget):
    """The torchode columns (per device) and the diffrax columns (cpu) of one problem:
    ``torch_field(device)`` the batched torch field ``f(y)`` on a device, ``field(y, *args, xp)``
    the same for jax, ``y0`` ``(n, m)`` (torch),
    ``error(final states)`` the achieved error. A package that is not installed gets a note."""
    note = missing("torchode")
    for dev in devices:
        for method in TORCHODE:
            if note:
                row(rows, problem, f"torchode {method} ({dev.type})", n, math.nan, math.nan, note)
                continue
            ys, sec, msg = timed(run_torchode, method, torch_field(dev), y0.to(dev), t_end, rtol, atol, budget)
            row(rows, problem, f"torchode {method} ({dev.type})", n, sec, error(ys) if ys is not None else math.nan, msg)
    note = missing("jax", "diffrax")
    for solver in DIFFRAX:
        if note:
            row(rows, problem, f"diffrax {solver} (cpu)", n, math.nan, math.nan, note)
            continue
        ys, sec, msg = DIFFRAX_PROCESS.run(solver, field, args, y0.numpy(), t_end, rtol, atol, budget)
        row(rows, problem, f"diffrax {solver} (cpu)", n, sec,
            error(torch.as_tensor(ys)) if ys is not None else math.nan, msg)


def warm_up(devices, rtol, atol):
    """One small untimed run of each solver per device (first-call allocation and dispatch
    costs are then paid by no timed row)."""
    alpha = starts(8, seed=9)
    for dev in devices:
        for q in (2.0, 1.5, 1.0):
            run_ours(alpha, q, 1.0, dev, rtol, atol)
        run_exact_sign(alpha, dev)
        run_torchdiffeq(alpha, 2.0, 1.0, dev, rtol, atol, 5.0)
        if not missing("torchode"):
            for method in TORCHODE:
                run_torchode(method, lambda w: smooth_field(w, 2.0, torch), alpha.to(dev)[:, None].expand(-1, L),
                             1.0, rtol, atol, 5.0)


def rel(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b) / np.abs(b)))


def row(rows, problem, solver, n, seconds, err, note="", block=None):
    """One result; ``block`` is the batch size of the package's row it is compared with
    (default ``n``: a baseline that finished only part of the batch still compares per trajectory
    with the package on the whole batch)."""
    rate = n / seconds if seconds and n else math.nan
    rows.append(dict(problem=problem, solver=solver, n=n, block=n if block is None else block,
                     seconds=seconds, rate=rate, error=err, note=note))
    print(f"  {problem}: {solver}: {seconds:.3f} s", file=sys.stderr, flush=True)


def bench_smooth(rows, ns, devices, rtol, atol, budget, scipy_n):
    for n in ns:
        alpha = starts(n)
        exact = exact_x(alpha.numpy(), 2.0, 5.0)
        for dev in devices:
            res, sec = timed(run_ours, alpha, 2.0, 5.0, dev, rtol, atol)
            row(rows, "smooth q=2", f"steepmirror ({dev.type})", n, sec, rel(res.x[:, 0].cpu(), exact))
            w, sec_t, note = timed(run_torchdiffeq, alpha, 2.0, 5.0, dev, rtol, atol, budget)
            err = rel(w.prod(-1), exact) if w is not None else math.nan
            row(rows, "smooth q=2", f"torchdiffeq dopri5 ({dev.type})", n, sec_t, err, note)
        peer_rows(rows, "smooth q=2", n, lambda dev: (lambda w: smooth_field(w, 2.0, torch)), "smooth", (2.0,),
                  alpha[:, None].expand(-1, L).contiguous(), 5.0, lambda w: rel(w.prod(-1), exact), devices, rtol, atol,
                  budget)
        k = min(n, scipy_n)
        w, sec_s, done = timed(run_scipy, alpha[:k], 2.0, 5.0, rtol, atol, budget)
        row(rows, "smooth q=2", "scipy DOP853 loop", done, sec_s, rel(np.prod(w, 1), exact[:done]) if done else math.nan,
            f"{done} of the first {k}" if done < n else "", block=n)


def bench_arrival(rows, q, name, n, devices, rtol, atol, budget):
    alpha = starts(n, seed=1)
    t_arr = np.array([theory.arrival_time(L, q, a, Y) for a in alpha.tolist()])
    for dev in devices:
        res, sec = timed(run_ours, alpha, q, 3.0, dev, rtol, atol)
        err = float((res.w.cpu() - Y ** (1 / L)).abs().max())
        arr = rel(res.solution.switching["t_slide"][:, 0].cpu(), t_arr)
        steps = int((res.solution.n_steps + res.solution.n_rejected).max())
        row(rows, name, f"steepmirror ({dev.type})", n, sec, err,
            f"arrival time rel. err {arr:.1e}; <= {steps} steps per trajectory")
        if q == 1.0:
            ex, sec_x = timed(run_exact_sign, alpha, dev)
            arr_x = rel(ex.solution.switching["t_slide"][:, 0].cpu(), t_arr)
            row(rows, name, f"exact sign ({dev.type})", n, sec_x, float((ex.w.cpu() - Y ** (1 / L)).abs().max()),
                f"arrival time rel. err {arr_x:.1e}; <= {int(ex.solution.n_steps.max())} events per trajectory")
        w, sec_t, note = timed(run_torchdiffeq, alpha, q, 3.0, dev, rtol, atol, budget)
        err_t = float((w - Y ** (1 / L)).abs().max()) if w is not None else math.nan
        row(rows, name, f"torchdiffeq dopri5 ({dev.type})", n, sec_t, err_t, note)
    k = min(n, 20)
    w, sec_s, done = timed(run_scipy, alpha[:k], q, 3.0, rtol, atol, budget)
    err_s = float(np.abs(w - Y ** (1 / L)).max()) if done else math.nan
    row(rows, name, "scipy DOP853 loop", done, sec_s, err_s, f"{done} of {k} finished within {budget:g} s", block=n)


def regression_problem(n):
    """The 50-coordinate regression (30 samples, 5-sparse truth) and ``n`` starts ``(n, 50, 2)``."""
    g = torch.Generator().manual_seed(2)
    X = torch.randn(30, 50, generator=g, dtype=torch.float64)
    truth = torch.zeros(50, dtype=torch.float64)
    truth[:5] = torch.tensor([1.0, -0.5, 0.8, 0.3, -1.2], dtype=torch.float64)
    y = X @ truth
    w0 = (0.1 + 0.05 * torch.rand(n, 50, 2, generator=g, dtype=torch.float64))
    return X, y, w0


def bench_sign_regression(rows, n, rtol, atol):
    """``q = 1`` through sliding: exact event-to-event integrator vs the DOP853 Filippov flow."""
    X, y, w0 = regression_problem(n)
    loss, name = LinearRegression(X, y), "sign regression q=1 (50 coords)"
    t0 = time.perf_counter()
    smooth = simulate_parameter_flow(w0, 1.0, loss, 0.5, decay="decoupled", nu=0.0, rtol=rtol, atol=atol)
    sec_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    exact = simulate_sign_flow(w0, loss, 0.5)
    sec_x = time.perf_counter() - t0
    diff = float((exact.x - smooth.x).abs().max() / exact.x.abs().max())
    slid = int(exact.solution.switching["slide"].any(-1).sum())
    row(rows, name, "steepmirror (cpu)", n, sec_s, diff,
        f"DOP853 Filippov flow; error = max difference to the exact run; ok {smooth.ok()}")
    row(rows, name, "exact sign (cpu)", n, sec_x, diff,
        f"{slid} of {n} sliding at t = 0.5; <= {int(exact.solution.n_steps.max())} events+steps; ok {exact.ok()}")


def bench_regression(rows, n, devices, rtol, atol, budget):
    X, y, w0 = regression_problem(n)
    loss = LinearRegression(X, y)
    ref = simulate_parameter_flow(w0, 1.5, loss, 2.0, rtol=1e-13, atol=1e-15, method="dop853").x
    for dev in devices:
        for method, label in ((None, ""), ("dop853", " dop853")):
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            res = simulate_parameter_flow(w0.to(dev), 1.5, LinearRegression(X.to(dev), y.to(dev)), 2.0, device=dev,
                                          rtol=rtol, atol=atol, method=method)
            sec = time.perf_counter() - t0
            err = float(((res.x.cpu() - ref).abs().max() / ref.abs().max()))
            row(rows, "regression q=1.5 (50 coords)", f"steepmirror{label} ({dev.type})", n, sec, err,
                (f"default method ({default_method(DeepDiagonalFlow(loss, 50, 2), torch.tensor(1.5))}); "
                 if method is None else "") +
                "error vs the package's DOP853 at rtol 1e-13 (no closed form)")
        try:
            from torchdiffeq import odeint
        except ImportError:
            continue
        Xd, yd = X.to(dev), y.to(dev)
        tighter = f"at rtol {rtol * 1e-2:g}, towards the package's error"
        for tol, note in ((rtol, ""), (rtol * 1e-2, tighter)):
            start = time.perf_counter()
            f = on_budget(lambda wf: regression_field(wf, 1.5, Xd, yd, torch), budget)
            try:
                sol = odeint(f, w0.to(dev).reshape(n, -1), torch.tensor([0.0, 2.0], dtype=torch.float64, device=dev),
                             rtol=tol, atol=atol * tol / rtol)
                xt = sol[-1].reshape(n, 50, 2).prod(-1).cpu()
                row(rows, "regression q=1.5 (50 coords)", f"torchdiffeq dopri5 ({dev.type})", n,
                    time.perf_counter() - start, float((xt - ref).abs().max() / ref.abs().max()), note)
            except Budget:
                row(rows, "regression q=1.5 (50 coords)", f"torchdiffeq dopri5 ({dev.type})", n,
                    time.perf_counter() - start, math.nan, f"stopped after the {budget:g} s budget {note}")
    peer_rows(rows, "regression q=1.5 (50 coords)", n,
              lambda dev: (lambda wf: regression_field(wf, 1.5, X.to(dev), y.to(dev), torch)), "regression",
              (1.5, X.numpy(), y.numpy()), w0.reshape(n, -1), 2.0,
              lambda wf: float((wf.reshape(n, 50, 2).prod(-1) - ref).abs().max() / ref.abs().max()),
              devices, rtol, atol, budget)


def bench_memory(rows, n, device, rtol, atol):
    alpha = starts(n)
    before = torch.cuda.max_memory_allocated() if device.type == "cuda" else 0
    res, sec = run_ours(alpha, 2.0, 5.0, device, rtol, atol, dense=True)
    dense_mb = res.solution.dense.nbytes() / 2**20
    peak = (torch.cuda.max_memory_allocated() - before) / 2**20 if device.type == "cuda" else \
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    row(rows, "dense output", f"steepmirror ({device.type})", n, sec, math.nan,
        f"dense output {dense_mb:.1f} MiB; peak {'GPU' if device.type == 'cuda' else 'process RSS'} {peak:.0f} MiB")


def report(rows) -> str:
    """The table in at most 100 columns: a line per problem, then one per solver; a note that does
    not fit beside its numbers goes on indented lines below them."""
    lines = [f"problem / {'solver':<24} {'n':>7} {'seconds':>9} {'traj/s':>10} {'error':>9} {'vs ours':>8}  note"]
    ours = {}
    for r in rows:
        if r["solver"].startswith("steepmirror"):
            ours[(r["problem"], r["block"], r["solver"].split("(")[1])] = r["rate"]
    for k, r in enumerate(rows):
        dev = r["solver"].split("(")[1] if "(" in r["solver"] else "cpu)"
        base = ours.get((r["problem"], r["block"], dev)) or next(
            (v for (p, n_, d), v in ours.items() if p == r["problem"] and d == "cpu)"), None)
        ratio = "" if r["solver"].startswith("steepmirror") or not base or not math.isfinite(r["rate"]) \
            else f"{base / r['rate']:.2g}x"
        err = f"{r['error']:.1e}" if math.isfinite(r["error"]) else "-"
        if k == 0 or r["problem"] != rows[k - 1]["problem"]:
            lines.append(r["problem"])
        rate = f"{r['rate']:.3g}" if r["rate"] < 100 else f"{r['rate']:.0f}"      # 3 digits below 100/s, never "0"
        cells = (f"  {r['solver']:<31} {r['n']:>7} {r['seconds']:>9.3f} {rate:>10} {err:>9} "
                 f"{ratio:>8}")
        if len(cells) + 2 + len(r["note"]) <= 100:
            lines.append(f"{cells}  {r['note']}".rstrip())
        else:
            lines += [cells.rstrip(), *textwrap.wrap(r["note"], 100, initial_indent=" " * 6,
                                                     subsequent_indent=" " * 6)]
    return "\n".join(lines)


PROBLEMS = ("smooth", "arrival", "sign", "regression", "sign-regression", "memory")


def main(argv=None) -> int:
    p = Parser(prog="python -m verify.bench", description=description(__doc__))
    add_device(p, "cuda adds a GPU column; the CPU column is always measured")
    p.add_argument("--quick", action="store_true", help="small sizes, a smoke run (default off)")
    p.add_argument("--budget", type=positive(float), default=60.0,
                   help="wall-clock budget per baseline run in s, > 0 (default 60; 5 with --quick)")
    p.add_argument("--huge", type=positive(int), default=1_000_000,
                   help="trajectories for the GPU throughput row, > 0 (default 1000000)")
    p.add_argument("--only", nargs="+", metavar="PROBLEM", choices=PROBLEMS,
                   help=f"run only these problems, of {', '.join(PROBLEMS)} (default: all)")
    args = p.parse_args(argv)
    try:
        devices = [resolve_device("cpu")] + ([resolve_device("cuda")] if args.device == "cuda" else [])
    except ValueError as exc:
        print(f"python -m verify.bench: error: {exc}", file=sys.stderr)
        return 2
    rtol, atol = 1e-10, 1e-12
    rows: list = []
    ns = (100,) if args.quick else (1_000, 10_000)
    budget = min(args.budget, 5.0) if args.quick else args.budget
    stages = {
        "warm-up": lambda: warm_up(devices, rtol, atol),
        "smooth": lambda: bench_smooth(rows, ns, devices, rtol, atol, budget,
                                       scipy_n=50 if args.quick else 1_000),
        "arrival": lambda: bench_arrival(rows, 1.5, "arrival q=1.5 (t=3)", 20 if args.quick else 100,
                                         devices, rtol, atol, budget),
        "sign": lambda: bench_arrival(rows, 1.0, "sign q=1 (sliding)", 20 if args.quick else 100,
                                      devices, rtol, atol, budget),
        "regression": lambda: bench_regression(rows, 2 if args.quick else 20, devices, rtol, atol, budget),
        "sign-regression": lambda: bench_sign_regression(rows, 2 if args.quick else 10, rtol, atol),
        "memory": lambda: bench_memory(rows, 1_000 if args.quick else 10_000, devices[-1], rtol, atol),
    }
    if args.only:
        stages = {k: v for k, v in stages.items() if k == "warm-up" or k in args.only}
    with tqdm(stages.items(), desc="benchmarks", unit="problem", file=sys.stderr, leave=False) as bar:
        for name, stage in bar:
            bar.set_postfix_str(name)
            stage()
    if args.device == "cuda" and not args.quick:
        alpha = starts(args.huge, seed=3)
        res, sec = run_ours(alpha, 2.0, 5.0, devices[-1], rtol, atol)
        sub = slice(0, 2000)
        row(rows, "smooth q=2", "steepmirror (cuda)", args.huge, sec,
            rel(res.x[sub, 0].cpu(), exact_x(alpha[sub].numpy(), 2.0, 5.0)), "error on 2,000 of them")
    print(f"rtol={rtol:g} atol={atol:g}; torch {torch.__version__}; threads {torch.get_num_threads()}; "
          f"devices {', '.join(str(d) for d in devices)}"
          + (f" ({torch.cuda.get_device_name()})" if args.device == "cuda" else ""))
    DIFFRAX_PROCESS.close()
    print(report(rows))
    return 0


if __name__ == "__main__":
    sys.exit(piped(main))

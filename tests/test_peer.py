"""The peer suite: the package's integrator on problems nobody here wrote (``peer_problems``),
judged the way scipy judges its own ``solve_ivp``.

The measure is scipy's scaled error ``|y - y*| / (atol + rtol |y*|)`` (RMS over components,
``compute_error`` in scipy's ``test_ivp.py``) and the bar is scipy's: ``< 5``. The tolerance
bounds the *local* error only; over the DETEST horizon ``[0, 20]`` the global error of any
8th-order method accumulates past 5 units on some problems (orbits, Lotka-Volterra, ``A3``),
scipy's DOP853 included. There the bar is scipy's own error on the same problem, tolerance and
points, times 2 (:func:`bar`), with scipy's method of the stepper's kind (DOP853 for DOP853,
Radau for implicit and Rosenbrock steppers): the package must not be worse than scipy by more
than a factor 2; elsewhere it must meet scipy's absolute bar.

Parametrized over problem x stepper (``STEPPERS``: every registered one; a name the integrator
does not know is skipped) x feature: final state, dense output between and at nodes, ``t_eval``,
events, batching. Step counts against scipy are a report (``test_step_counts_report``, ``-s``).
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from numerics.integrate import EVENT, NONFINITE, STEPPERS as REGISTERED, SUCCESS, Event, ODESystem, integrate
from peer_problems import PROBLEMS, reference, scaled_error

STEPPERS = sorted({"dop853", *REGISTERED})   # every registered stepper; more names may be listed

# Cases Rodas5 fails today (issue 12, open): its per-step error control accumulates past scipy's
# bar over the long DETEST runs (A5: 44.9 units at the problem's tolerance, 3.3 at 1/20 of it, so the
# error scales with the tolerance as it should; scipy's Radau estimate is far more cautious). Listed
# from a run, marked strict: a case that starts passing fails here until it is taken off the list.
KNOWN = frozenset((Path(__file__).parent / "peer_rodas5_known.txt").read_text().split())


@pytest.fixture(autouse=True)
def _known_failure(request):
    if request.node.name in KNOWN:
        request.applymarker(pytest.mark.xfail(strict=True, reason="Rodas5 error accumulation (issue 12)"))
SCIPY_PEER = {"dop853": "DOP853"}             # scipy's method of the same kind; Radau for the others
SCIPY_BAR, SCIPY_FACTOR = 5.0, 2.0
DENSE_POINTS = 101
EVAL_POINTS = 11
ROWS = (0, 1, 0)                 # the batch: the problem, a perturbed copy, the problem again

CASES = [pytest.param(pb, st, id=f"{pb.name}-{st}") for pb in PROBLEMS for st in STEPPERS]


def _open(cases, names, reason):
    """``cases`` with the DOP853 cases of ``names`` marked as known failures (strict xfail) for ``reason``."""
    return [pytest.param(*c.values, id=c.id, marks=pytest.mark.xfail(strict=True, reason=reason))
            if c.values[0].name in names and c.values[1] == "dop853" else c for c in cases]
BATCH_DEFECT = ("A3", "C2", "C3")   # rows that stepped differently in a batch than alone (issue 12, part 5)
EVENT_CASES = [pytest.param(pb, st, id=f"{pb.name}-{st}") for pb in PROBLEMS if pb.events for st in STEPPERS]


class PeerSystem(ODESystem):
    """A registry problem as an :class:`ODESystem` (the field evaluated on torch tensors)."""

    def __init__(self, problem):
        self.field = problem.field

    def rhs(self, t, y, p, mode):
        return self.field(t, y, torch)

    def jacobian(self, t, y, p, mode):
        """``d rhs / d y`` ``(B, n, n)`` by autograd (for implicit and Rosenbrock steppers): the
        registry's fields are a user's own, which is where the package uses autograd."""
        return torch.func.vmap(torch.func.jacrev(lambda yy, tt: self.field(tt, yy, torch)))(y, t)


def bar(scipy_error: float) -> float:
    """scipy's bar 5, or twice scipy DOP853's own error where that exceeds it (module docstring)."""
    return max(SCIPY_BAR, SCIPY_FACTOR * scipy_error)


def _solve(problem, stepper, y0, **kw):
    """The package on ``problem`` from the rows ``y0`` (``(B, n)``) with ``stepper``."""
    if stepper not in REGISTERED:
        pytest.skip(f"the integrator does not know the stepper {stepper!r}")
    t0, t1 = problem.t_span
    return integrate(PeerSystem(problem), t0, y0, t1, rtol=problem.rtol, atol=problem.atol, max_steps=20_000,
                     method=stepper, **kw)


def starts(problem) -> torch.Tensor:
    """``(2, n)``: the problem's start and a perturbed copy (``y0 + 1e-3 (1 + |y0|)``)."""
    y0 = torch.tensor(problem.y0, dtype=torch.float64)
    return torch.stack([y0, y0 + 1e-3 * (1 + y0.abs())])


def dense_grid(problem) -> np.ndarray:
    t0, t1 = problem.t_span
    return np.linspace(t0, t1, DENSE_POINTS)


def eval_grid(problem) -> np.ndarray:
    t0, t1 = problem.t_span
    return np.linspace(t0, t1, EVAL_POINTS)


@lru_cache(maxsize=None)
def ours(problem, stepper, rows: tuple = (0,)):
    """The package on the given rows of :func:`starts`, with dense output and ``t_eval`` (cached)."""
    y0 = starts(problem)[list(rows)]
    return _solve(problem, stepper, y0, dense=True, t_eval=torch.as_tensor(eval_grid(problem)))


@lru_cache(maxsize=None)
def expected(problem):
    """Reference states at the end, on the dense grid and on the ``t_eval`` grid."""
    return reference(problem, [problem.t_span[1]])[0], reference(problem, dense_grid(problem)), \
        reference(problem, eval_grid(problem))


def scipy_method(stepper) -> str:
    """scipy's method of the stepper's kind: DOP853 for DOP853, Radau (L-stable, order 5) for
    implicit and Rosenbrock steppers."""
    return SCIPY_PEER.get(stepper, "Radau")


@lru_cache(maxsize=None)
def scipy_run(problem, method: str = "DOP853", with_events: bool = False):
    """scipy's ``method`` at the problem's tolerance: the solution object (dense output, events)."""
    events = []
    for ev in problem.events if with_events else ():
        def g(t, y, ev=ev):
            return float(ev.fn(t, y, np))
        g.direction, g.terminal = ev.direction, ev.terminal
        events.append(g)
    sol = solve_ivp(problem.numpy_field(), problem.t_span, np.array(problem.y0, dtype=np.float64), method=method,
                    rtol=problem.rtol, atol=problem.atol, dense_output=True, events=events or None)
    assert sol.success, sol.message
    return sol


def scipy_final_error(problem, stepper) -> float:
    """The scaled error at the end of scipy's method of the stepper's kind."""
    return float(_err(problem, scipy_run(problem, scipy_method(stepper)).y[:, -1], expected(problem)[0]))


def scipy_dense_error(problem, stepper, times, y_true) -> float:
    """The largest scaled error on the dense output of scipy's method of the stepper's kind, at
    ``times`` (states ``y_true``) and on the dense grid: the interpolation error at one point
    depends on where it falls in a step, so a few points are compared with scipy's worst case
    over many."""
    sol = scipy_run(problem, scipy_method(stepper))
    return max(float(_err(problem, sol.sol(np.asarray(times)).T, y_true).max()),
               float(_err(problem, sol.sol(dense_grid(problem)).T, expected(problem)[1]).max()))


def _err(problem, y, y_true) -> np.ndarray:
    return scaled_error(np.asarray(y), y_true, problem.rtol, problem.atol)


# -- Part A: the registry -------------------------------------------------------------------

@pytest.mark.parametrize("problem,stepper", CASES)
def test_final_state(problem, stepper):
    sol = ours(problem, stepper)
    assert int(sol.status[0]) == SUCCESS, sol.failures()
    err = float(_err(problem, sol.y[0], expected(problem)[0]))
    assert err < bar(scipy_final_error(problem, stepper)), err


@pytest.mark.parametrize("problem,stepper", _open(CASES, {"C2"}, "defect: after integ's dense-output change C2's "
                                                                  "interpolant errs 135 units, scipy DOP853's 48"))
def test_dense_output_between_nodes(problem, stepper):
    sol = ours(problem, stepper)
    y = sol.dense(torch.as_tensor(dense_grid(problem))[None])[0]
    y_true = expected(problem)[1]
    err = _err(problem, y, y_true)
    assert float(err.max()) < bar(scipy_dense_error(problem, stepper, dense_grid(problem), y_true)), err


@pytest.mark.parametrize("problem,stepper", CASES)
def test_dense_output_at_nodes(problem, stepper):
    """At every step boundary the interpolant of the step ending there (left limit, evaluated
    ``1e-12`` of a step before it) meets the state the next step starts from, within one
    tolerance unit, and that state is accurate (the bar of the final state)."""
    dense = ours(problem, stepper).dense
    t0, h = dense.t0[dense.rows == 0], dense.h[dense.rows == 0]
    node = t0[1:]
    left = dense((node - 1e-12 * h[:-1])[None])[0]
    right = dense(node[None])[0]
    jump = _err(problem, left.numpy(), right.numpy())
    assert float(jump.max()) < 1.0, jump
    y_true = reference(problem, node.numpy())
    err = _err(problem, right, y_true)
    assert float(err.max()) < bar(scipy_dense_error(problem, stepper, node.numpy(), y_true)), err


@pytest.mark.parametrize("problem,stepper", CASES)
def test_t_eval(problem, stepper):
    sol = ours(problem, stepper)
    y_true = expected(problem)[2]
    err = _err(problem, sol.ys[0], y_true)
    assert bool(np.isfinite(err).all()) and float(err.max()) < bar(scipy_dense_error(problem, stepper, eval_grid(problem), y_true)), err


@pytest.mark.parametrize("problem,stepper", EVENT_CASES)
def test_events(problem, stepper):
    """Every event fires first where the exact solution crosses (scaled time error, with ``t`` as a
    state of its own, ``t' = 1``), in the state the reference has there; up to the first terminal
    event, which ends the run with status EVENT."""
    evs = [Event(lambda t, y, p, ev=ev: ev.fn(t, y, torch), terminal=ev.terminal, direction=ev.direction,
                 name=ev.name) for ev in problem.events]
    sol = _solve(problem, stepper, starts(problem)[:1], events=evs)
    stop = min([ev.times[0] for ev in problem.events if ev.terminal], default=math.inf)
    assert int(sol.status[0]) == (EVENT if math.isfinite(stop) else SUCCESS), sol.failures()
    scipy_sol = scipy_run(problem, scipy_method(stepper), with_events=True)
    for j, ev in enumerate(problem.events):
        times = [t for t in ev.times if t <= stop]
        fired = sol.t_events[j] is not None and sol.t_events[j].shape[1] and not math.isnan(float(sol.t_events[j][0, 0]))
        if not times:
            assert not fired, (ev.name, sol.t_events[j])
            continue
        assert fired, ev.name
        t_hit, t_true = float(sol.t_events[j][0, 0]), times[0]
        ref_t = float(scipy_sol.t_events[j][0]) if len(scipy_sol.t_events[j]) else math.nan
        err_t = abs(t_hit - t_true) / (problem.atol + problem.rtol * abs(t_true))
        scipy_err_t = abs(ref_t - t_true) / (problem.atol + problem.rtol * abs(t_true))
        assert err_t < bar(scipy_err_t), (ev.name, t_hit, t_true, ref_t)
        err_y = float(_err(problem, sol.y_events[j][0, 0], reference(problem, [t_true])[0]))
        scipy_err_y = float(_err(problem, scipy_sol.y_events[j][0], reference(problem, [t_true])[0]))
        assert err_y < bar(scipy_err_y), (ev.name, err_y)


@pytest.mark.parametrize("problem,stepper", _open(CASES, {"C4"}, "C4's field y @ A.T (a BLAS product) rounds a "
                                                                  "row differently in a batch, so its row steps "
                                                                  "differently than alone (1.0004 units apart); "
                                                                  "computed row by row it steps bit-identically "
                                                                  "(test_a_row_wise_field_steps_bit_identically...)"))
def test_batching(problem, stepper):
    """The problem batched with perturbed copies of itself: each row gives what it gives alone
    (final state and dense output within one tolerance unit) and the unperturbed row meets its bar."""
    batch = ours(problem, stepper, ROWS)
    assert bool((batch.status == SUCCESS).all()), batch.failures()
    grid = torch.as_tensor(dense_grid(problem))[None].expand(len(ROWS), -1)
    in_batch = batch.dense(grid)
    for r, start in enumerate(ROWS):
        alone = ours(problem, stepper, (start,))
        diff = _err(problem, batch.y[r].numpy(), alone.y[0].numpy())
        assert float(diff) < 1.0, (r, diff)
        diff = _err(problem, in_batch[r].numpy(), alone.dense(grid[:1])[0].numpy())
        assert float(diff.max()) < 1.0, (r, diff)
    err = float(_err(problem, batch.y[0], expected(problem)[0]))
    assert err < bar(scipy_final_error(problem, stepper)), err


@pytest.mark.parametrize("stepper", STEPPERS)
def test_step_counts_report(stepper):
    """Accepted steps against scipy's DOP853 on the same problem and tolerance: printed (``-s``) as
    a report. The only assertion is a sanity bound no correct adaptive integrator fails: at most
    10x scipy's steps plus 10."""
    lines = [f"{'problem':<16} {'ours':>7} {'scipy':>7} {'ratio':>6}"]
    for problem in PROBLEMS:
        sol = ours(problem, stepper)
        steps, ref = int(sol.n_steps[0]), len(scipy_run(problem, scipy_method(stepper)).t) - 1
        lines.append(f"{problem.name:<16} {steps:>7} {ref:>7} {steps / ref:>6.2f}")
        assert steps <= 10 * ref + 10, (problem.name, steps, ref)
    print(f"\nstep counts, stepper {stepper}:\n" + "\n".join(lines))


# -- Part B: one test per defect (issue 12, part 5) -------------------------------------------

def _defect(reason):
    return pytest.mark.xfail(strict=True, reason=f"defect: {reason}")


class Decay(ODESystem):
    """``y' = -y / tau`` (``p["tau"]``, default 1): ``y = y0 exp(-t / tau)``."""

    autonomous = True

    def rhs(self, t, y, p, mode):
        return -y / p["tau"][:, None] if "tau" in p else -y


def _column(*values):
    return torch.tensor(values, dtype=torch.float64)[:, None]


def _event_times(sol, j, row) -> np.ndarray:
    """Every firing time of event ``j`` on ``row`` (``Solution.event_log``), sorted."""
    return np.sort(np.asarray(sol.event_times(j, row), dtype=np.float64))


def test_dense_output_across_a_step_cut_by_an_event():
    """``y' = -y`` with a non-terminal event at ``y = 1/2``: the dense output on the cut step and its
    continuation matches ``exp(-t)`` like everywhere else."""
    rtol, atol = 1e-6, 1e-9
    ev = Event(lambda t, y, p: y[:, 0] - 0.5, terminal=False)
    sol = integrate(Decay(), 0.0, _column(1.0), 2.0, rtol=rtol, atol=atol, events=[ev], dense=True)
    assert int(sol.status[0]) == SUCCESS
    t = torch.linspace(0, 2, 401, dtype=torch.float64)
    err = scaled_error(sol.dense(t[None])[0].numpy(), np.exp(-t.numpy())[:, None], rtol, atol)
    assert float(err.max()) < SCIPY_BAR, float(err.max())


@pytest.mark.parametrize("problem,stepper", EVENT_CASES)
def test_dense_output_with_non_terminal_events(problem, stepper):
    """The registry's event problems with their non-terminal events and dense output: the
    interpolant on the dense grid and just before each event (where a step was cut) meets the
    bar of the dense output without events."""
    evs = [Event(lambda t, y, p, ev=ev: ev.fn(t, y, torch), terminal=False, direction=ev.direction)
           for ev in problem.events if not ev.terminal]
    sol = _solve(problem, stepper, starts(problem)[:1], events=evs, dense=True)
    t0, t1 = problem.t_span
    before = [np.linspace(max(t0, t - 1), t, 50) for ev in problem.events if not ev.terminal for t in ev.times]
    times = np.concatenate([dense_grid(problem)] + before)
    y_true = reference(problem, times)
    err = _err(problem, sol.dense(torch.as_tensor(times)[None])[0], y_true)
    assert float(err.max()) < bar(scipy_dense_error(problem, stepper, times, y_true)), err


def test_dense_output_of_a_row_without_steps():
    """Row 0 ends where it starts (no step); its dense output at ``t0`` is its own start."""
    sol = integrate(Decay(), 0.0, _column(3.0, 1.0), torch.tensor([0.0, 1.0], dtype=torch.float64), dense=True)
    assert int(sol.n_steps[0]) == 0
    assert float(sol.dense(torch.zeros(2, dtype=torch.float64))[0, 0]) == 3.0


class NaNField(ODESystem):
    autonomous = True

    def rhs(self, t, y, p, mode):
        return torch.full_like(y, math.nan)


def test_nan_field_at_the_start_is_a_non_finite_status_within_few_steps():
    sol = integrate(NaNField(), 0.0, _column(1.0), 1.0, max_steps=1000)
    assert int(sol.status[0]) == NONFINITE, sol.failures()
    assert int(sol.n_steps[0] + sol.n_rejected[0]) <= 10


def test_a_problem_on_a_1e_14_time_scale_succeeds_like_scipy():
    """``y' = -y / tau``, ``tau = 1e-15``, to ``t = 1e-14`` (ten time constants)."""
    tau, t_end, rtol, atol = 1e-15, 1e-14, 1e-8, 1e-12
    ref = solve_ivp(lambda t, y: -y / tau, (0, t_end), [1.0], method="DOP853", rtol=rtol, atol=atol)
    assert ref.success                     # the peer's bar: scipy's relative underflow test passes
    sol = integrate(Decay(), 0.0, _column(1.0), t_end, {"tau": torch.tensor([tau], dtype=torch.float64)},
                    rtol=rtol, atol=atol)
    assert int(sol.status[0]) == SUCCESS, sol.failures()
    assert float(scaled_error(sol.y[0].numpy(), np.exp([-t_end / tau]), rtol, atol)) < SCIPY_BAR


@pytest.mark.parametrize("h0", [-0.1, 0.0, math.nan])
def test_invalid_h0_is_rejected(h0):
    with pytest.raises(ValueError, match="h0"):
        integrate(Decay(), 0.0, _column(1.0), 1.0, h0=h0, max_steps=100)


def test_complex_y0_is_rejected():
    with pytest.raises((ValueError, TypeError), match="y0"):
        integrate(Decay(), 0.0, torch.tensor([[0.5 + 1j]], dtype=torch.complex128), 1.0)


@pytest.mark.parametrize("t_eval", [[0.5, 1.5], [-0.5, 0.5]])
def test_t_eval_outside_the_interval_is_rejected(t_eval):
    with pytest.raises(ValueError, match="t_eval"):
        integrate(Decay(), 0.0, _column(1.0), 1.0, t_eval=torch.tensor(t_eval, dtype=torch.float64))


@pytest.mark.parametrize("stepper", STEPPERS)
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xfail(
    strict=True, reason="C3's field y @ A.T (a BLAS product) rounds a row differently in a batch of 2 than "
                        "alone (136 of 200 random states), so its steps differ; integrate() promises bitwise "
                        "equal steps for fields that compute each row by themselves")) if n == "C3" else n
    for n in BATCH_DEFECT])
def test_a_row_alone_and_in_a_batch_are_bit_identical(name, stepper):
    """Every stepper combines its stages row by row (Rodas5's former ``tensordot`` over the
    stages stepped A3's rows differently in a batch)."""
    problem = next(pb for pb in PROBLEMS if pb.name == name)
    batch = ours(problem, stepper, ROWS)
    for r, start in enumerate(ROWS):
        alone = ours(problem, stepper, (start,))
        assert int(batch.n_steps[r]) == int(alone.n_steps[0])
        assert torch.equal(batch.y[r], alone.y[0])


@pytest.mark.parametrize("name", ["C3", "C4"])
def test_a_row_wise_field_steps_bit_identically_alone_and_in_a_batch(name):
    """C3 and C4 (``y' = A y``, ``A`` tridiagonal ``(1, -2, 1)``, 10 and 51 components) with their
    field computed row by row (``y_{i-1} - 2 y_i + y_{i+1}``, no BLAS product): each row of the
    batch takes the same steps, final state and ``t_eval`` outputs as alone, as :func:`integrate`
    promises."""
    problem = next(pb for pb in PROBLEMS if pb.name == name)

    class RowWise(PeerSystem):
        def rhs(self, t, y, p, mode):
            padded = torch.nn.functional.pad(y, (1, 1))
            return padded[:, :-2] - 2 * y + padded[:, 2:]

    y0 = starts(problem)[list(ROWS)]
    t0, t1 = problem.t_span
    run = lambda rows: integrate(RowWise(problem), t0, y0[rows], t1, rtol=problem.rtol,  # noqa: E731
                                 atol=problem.atol, t_eval=torch.as_tensor(eval_grid(problem)))
    batch = run(list(range(len(ROWS))))
    assert bool((batch.status == SUCCESS).all())
    for r in range(len(ROWS)):
        alone = run([r])
        assert int(batch.n_steps[r]) == int(alone.n_steps[0]) and int(batch.n_rejected[r]) == int(alone.n_rejected[0])
        assert torch.equal(batch.y[r], alone.y[0]) and torch.equal(batch.ys[r], alone.ys[0])


def test_non_terminal_events_record_every_crossing():
    problem = next(pb for pb in PROBLEMS if pb.name == "D3")
    ev = problem.events[0]
    sol = _solve(problem, "dop853", starts(problem)[:1],
                 events=[Event(lambda t, y, p: ev.fn(t, y, torch), terminal=False, direction=ev.direction)])
    times = _event_times(sol, 0, 0)
    assert len(times) == len(ev.times), times
    err = np.abs(times - np.array(ev.times)) / (problem.atol + problem.rtol * np.array(ev.times))
    theirs = scipy_run(problem, with_events=True).t_events[0]
    theirs = theirs[theirs > problem.t_span[0]]     # scipy also reports the start, where y2 = 0
    assert float(err.max()) < bar(float(np.abs(theirs - ev.times).max()
                                        / (problem.atol + problem.rtol * max(ev.times)))), err


def test_backward_integration_matches_scipy_s_backward_test():
    """scipy's backward test: the rational problem from ``t = 8`` back to ``5`` with its events."""
    problem = next(pb for pb in PROBLEMS if pb.name == "scipy-rational")
    y0 = torch.tensor([[4 / 9, 20 / 81]], dtype=torch.float64)
    evs = [Event(lambda t, y, p, ev=ev: ev.fn(t, y, torch), terminal=False, direction=0) for ev in problem.events[:3:2]]
    sol = integrate(PeerSystem(problem), 8.0, y0, 5.0, rtol=problem.rtol, atol=problem.atol, events=evs)
    assert int(sol.status[0]) == SUCCESS
    assert float(_err(problem, sol.y[0], reference(problem, [5.0])[0])) < SCIPY_BAR
    for j, ev in enumerate(problem.events[:3:2]):
        times = _event_times(sol, j, 0)
        assert len(times) == 1, (ev.name, times)
        assert abs(times[0] - ev.times[0]) / (problem.atol + problem.rtol * ev.times[0]) < SCIPY_BAR, (ev.name, times)

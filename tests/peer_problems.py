"""Problems nobody here wrote, for the peer suite (``tests/test_peer.py``).

* scipy's own ``solve_ivp`` test problems (``scipy/integrate/_ivp/tests/test_ivp.py``): the
  rational and linear systems, ``y' = y (t - 2)`` (its LSODA dense-output problem), each with
  scipy's exact solution and scipy's tolerances, and scipy's events on the rational system;
* the DETEST classes A-E (Hull, Enright, Fellen & Sedgwick, SIAM J. Numer. Anal. 9 (1972) 603-637,
  as listed in diffrax's ``test/test_detest.py``), on ``[0, 20]`` at ``rtol = atol = 1e-8``
  (diffrax's tolerances for solvers of order >= 4).

Every field is written once, generic over the array namespace (``numpy`` for scipy, ``torch`` for
the package): ``field(t, y, xp)`` with the components on the last axis. Exact solutions are the
closed forms where they exist (derived in the docstrings: Bessel, Kepler, Jacobi elliptic,
matrix exponentials); elsewhere the reference is scipy's DOP853 at ``rtol = 1e-13, atol = 1e-15``,
five orders of magnitude below the tolerance being judged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

import numpy as np
import scipy.linalg
import scipy.optimize
import scipy.special
from scipy.integrate import solve_ivp

REF_RTOL, REF_ATOL = 1e-13, 1e-15
DETEST_TOL = 1e-8


def _stack(xp, parts):
    return xp.stack(list(parts), -1)


def _as(xp, a):
    """A constant or time in the namespace ``xp`` (float64)."""
    return np.asarray(a, dtype=np.float64) if xp is np else xp.as_tensor(a, dtype=xp.float64)


def _tcol(t, xp):
    """The time as a column, to broadcast against states ``(..., n)``."""
    return _as(xp, t)[..., None]


@dataclass(frozen=True)
class PeerEvent:
    """An event ``fn(t, y, xp) -> (...)`` (components on the last axis of ``y``) with its exact
    firing times in ``(t0, t1]`` for the given direction (first crossing first)."""

    name: str
    fn: Callable
    direction: int
    times: tuple
    terminal: bool = False


@dataclass(frozen=True)
class Problem:
    """``y' = field(t, y, xp)`` from ``y0`` on ``t_span``, judged at ``rtol``/``atol``;
    ``exact(t)`` maps times ``(T,)`` to states ``(T, n)``, or ``None`` (scipy reference)."""

    name: str
    field: Callable
    y0: tuple
    t_span: tuple
    rtol: float
    atol: float
    exact: Callable | None = None
    events: tuple = field(default=())

    @property
    def n(self) -> int:
        return len(self.y0)

    def numpy_field(self):
        return lambda t, y: self.field(t, y, np)


@lru_cache(maxsize=None)
def _reference_solution(problem: Problem):
    sol = solve_ivp(problem.numpy_field(), problem.t_span, np.array(problem.y0, dtype=np.float64), method="DOP853",
                    rtol=REF_RTOL, atol=REF_ATOL, dense_output=True)
    assert sol.success, sol.message
    return sol.sol


def reference(problem: Problem, times) -> np.ndarray:
    """States ``(T, n)`` at ``times``: the exact solution, or scipy DOP853 at 1e-13/1e-15
    (computed once per problem)."""
    times = np.atleast_1d(np.asarray(times, dtype=np.float64))
    if problem.exact is not None:
        return problem.exact(times)
    return _reference_solution(problem)(times).T


def scaled_error(y, y_true, rtol, atol) -> np.ndarray:
    """scipy's ``compute_error``: ``|y - y*| / (atol + rtol |y*|)``, RMS over the components
    (last axis). NaN stays NaN (and fails every ``< bound`` test)."""
    e = (np.asarray(y) - y_true) / (atol + rtol * np.abs(y_true))
    return np.sqrt(np.mean(e ** 2, axis=-1))


# -- scipy's test_ivp problems ------------------------------------------------------------

def _rational(t, y, xp):
    return _stack(xp, (y[..., 1] / t, y[..., 1] * (y[..., 0] + 2 * y[..., 1] - 1) / (t * (y[..., 0] - 1))))


def _rational_exact(t):
    return np.stack([t / (t + 10), 10 * t / (t + 10) ** 2], -1)


def _rational_event_times(g, direction, lo=5.0, hi=9.0):
    """Roots of ``g`` on the exact rational solution in ``(lo, hi]`` crossing in ``direction``,
    by a fine scan and Brent's method."""
    grid = np.linspace(lo, hi, 3001)
    vals = g(grid, _rational_exact(grid), np)
    times = []
    for a, b, ga, gb in zip(grid[:-1], grid[1:], vals[:-1], vals[1:]):
        if ga * gb < 0 and (direction == 0 or np.sign(gb - ga) == direction):
            times.append(scipy.optimize.brentq(lambda s: g(s, _rational_exact(np.array(s)), np), a, b, xtol=1e-15))
    return tuple(times)


def _ev1(t, y, xp):
    return y[..., 0] - y[..., 1] ** 0.7


def _ev2(t, y, xp):
    return y[..., 1] ** 0.6 - y[..., 0]


def _ev3(t, y, xp):
    return t + 0 * y[..., 0] - 7.4


def _linear(t, y, xp):
    return _stack(xp, (-y[..., 0] - 5 * y[..., 1], y[..., 0] + y[..., 1]))


def _linear_exact(t):
    return np.stack([-5 * np.sin(2 * t), 2 * np.cos(2 * t) + np.sin(2 * t)], -1)


def _lsoda_dense(t, y, xp):
    return y * (_tcol(t, xp) - 2)


def _lsoda_dense_exact(t):
    return np.exp(t ** 2 / 2 - 2 * t + np.log(0.05) - 6)[:, None]


SCIPY = [
    Problem("scipy-rational", _rational, (1 / 3, 2 / 9), (5.0, 9.0), 1e-3, 1e-6, _rational_exact,
            (PeerEvent("rational-1", _ev1, 0, _rational_event_times(_ev1, 0)),
             PeerEvent("rational-2-up", _ev2, 1, _rational_event_times(_ev2, 1)),
             PeerEvent("rational-2", _ev2, 0, _rational_event_times(_ev2, 0)),
             PeerEvent("rational-3", _ev3, 0, (7.4,), terminal=True))),
    Problem("scipy-linear", _linear, (0.0, 2.0), (0.0, 2.0), 1e-3, 1e-6, _linear_exact),
    Problem("scipy-exp-t2", _lsoda_dense, (float(_lsoda_dense_exact(np.zeros(1))[0, 0]),), (0.0, 5.0), 1e-3, 1e-6,
            _lsoda_dense_exact),
]


# -- DETEST class A: single equations -----------------------------------------------------

def _a1(t, y, xp):
    return -y


def _a2(t, y, xp):
    return -0.5 * y ** 3


def _a3(t, y, xp):
    return y * xp.cos(_tcol(t, xp))


def _a4(t, y, xp):
    return 0.25 * y * (1 - 0.05 * y)


def _a5(t, y, xp):
    tt = _tcol(t, xp)
    return (y - tt) / (y + tt)


def _col(f):
    return lambda t: f(np.asarray(t, dtype=np.float64))[:, None]


# -- class B: small systems ------------------------------------------------------------------

def _b1(t, y, xp):
    y1, y2 = y[..., 0], y[..., 1]
    return _stack(xp, (2 * (y1 - y1 * y2), -y2 + y1 * y2))


def _linear_field(A):
    def f(t, y, xp):
        return y @ _as(xp, A).T
    return f


def _linear_exact_of(A, y0):
    """``y(t) = expm(A t) y0`` (scipy's Pade matrix exponential, batched over the times)."""
    y0 = np.asarray(y0, dtype=np.float64)
    return lambda t: scipy.linalg.expm(A * np.atleast_1d(t)[:, None, None]) @ y0


B2 = np.array([[-1.0, 1, 0], [1, -2, 1], [0, 1, -1]])


def _b3(t, y, xp):
    y1, y2 = y[..., 0], y[..., 1]
    return _stack(xp, (-y1, y1 - y2 ** 2, y2 ** 2))


def _b4(t, y, xp):
    y1, y2, y3 = y[..., 0], y[..., 1], y[..., 2]
    r = xp.sqrt(y1 ** 2 + y2 ** 2)
    return _stack(xp, (-y2 - y1 * y3 / r, y1 - y2 * y3 / r, y1 / r))


def _b5(t, y, xp):
    y1, y2, y3 = y[..., 0], y[..., 1], y[..., 2]
    return _stack(xp, (y2 * y3, -y1 * y3, -0.51 * y1 * y2))


def _b5_exact(t):
    """Euler's rigid body: ``(sn, cn, dn)(t | m = 0.51)`` (Jacobi elliptic functions)."""
    sn, cn, dn, _ = scipy.special.ellipj(np.asarray(t, dtype=np.float64), 0.51)
    return np.stack([sn, cn, dn], -1)


# -- class C: moderate systems -------------------------------------------------------------

def _tridiagonal(n, diag, sub, sup):
    return np.diag(np.asarray(diag, dtype=np.float64) * np.ones(n)) + np.diag(sub * np.ones(n - 1), -1) \
        + np.diag(sup * np.ones(n - 1), 1)


C1 = np.diag(-np.r_[np.ones(9), 0.0]) + np.diag(np.ones(9), -1)
C2 = np.diag(-np.r_[np.arange(1.0, 10), 0.0]) + np.diag(np.arange(1.0, 10), -1)
C3 = _tridiagonal(10, -2.0, 1.0, 1.0)
C4 = _tridiagonal(51, -2.0, 1.0, 1.0)


def _unit(n):
    return tuple(1.0 if i == 0 else 0.0 for i in range(n))


C5_MASS = np.array([0.000954786104043, 0.000285583733151, 0.0000437273164546, 0.0000517759138449,
                    0.00000277777777778])
C5_Y0 = (3.42947415189, 6.64145542550, 11.2630437207, -30.1552268759, -21.1238353380,
         3.35386959711, 5.97156957878, 14.6952576794, 1.65699966404, 28.4465098142,
         1.35494901715, 2.18231499728, 6.27960525067, 1.43785752721, 15.3882659679,
         -0.557160570446, -0.415570776342, -0.325325669158, -0.024047625417, -0.176860753121,
         0.505696783289, 0.365682722812, 0.189706021964, -0.287659532608, -0.216393453025,
         0.230578543901, 0.169143213293, 0.087726532278, -0.117219543175, -0.014864789309)


def _c5(t, y, xp):
    """Five outer planets around the sun (positions ``(3, 5)``, then velocities)."""
    k2, m0 = 2.95912208286, 1.00000597682
    m, eye = _as(xp, C5_MASS), _as(xp, np.eye(5))
    shape = y.shape[:-1]
    pos = y[..., :15].reshape(shape + (3, 5))
    r3 = (pos ** 2).sum(-2) ** 1.5                                           # (..., 5)
    diff = pos[..., None, :] - pos[..., :, None]                             # (..., 3, j, k): y_k - y_j
    d3 = (diff ** 2).sum(-3) ** 1.5 + eye                                    # (..., j, k), 1 on the diagonal
    pull = m * (diff / d3[..., None, :, :] - (pos / r3[..., None, :])[..., None, :]) * (1 - eye)
    acc = k2 * (-(m0 + m) * pos / r3[..., None, :] + pull.sum(-1))
    return xp.concatenate([y[..., 15:], acc.reshape(shape + (15,))], -1)


# -- class D: orbit equations ----------------------------------------------------------------

def _orbit(t, y, xp):
    y1, y2 = y[..., 0], y[..., 1]
    r3 = (y1 ** 2 + y2 ** 2) ** 1.5
    return _stack(xp, (y[..., 2], y[..., 3], -y1 / r3, -y2 / r3))


def _kepler_exact(e):
    """The Kepler orbit with ``a = 1``, ``GM = 1`` from perihelion ``(1 - e, 0)``: Kepler's
    equation ``E - e sin E = t`` (Newton to convergence), ``x = cos E - e``,
    ``y = sqrt(1 - e^2) sin E``, ``x' = -sin E / (1 - e cos E)``, ``y' = sqrt(1 - e^2) cos E / (1 - e cos E)``."""
    def exact(t):
        t = np.asarray(t, dtype=np.float64)
        E = t + e * np.sin(t)
        for _ in range(100):
            step = (E - e * np.sin(E) - t) / (1 - e * np.cos(E))
            E = E - step
            if np.all(np.abs(step) <= 1e-16 * np.maximum(1, np.abs(E))):
                break
        s, c, b = np.sin(E), np.cos(E), math.sqrt(1 - e * e)
        return np.stack([c - e, b * s, -s / (1 - e * c), b * c / (1 - e * c)], -1)
    return exact


def _y2(t, y, xp):
    return y[..., 1]


def _orbit_problem(k, e):
    # y2 = b sin E crosses 0 downward at E = pi (t = pi), upward at E = 2 pi (t = 2 pi), ...
    ev = PeerEvent("y2=0", _y2, 0, tuple(j * math.pi for j in range(1, 7)))
    return Problem(f"D{k}", _orbit, (1 - e, 0.0, 0.0, math.sqrt((1 + e) / (1 - e))), (0.0, 20.0),
                   DETEST_TOL, DETEST_TOL, _kepler_exact(e), (ev,))


# -- class E: higher-order equations ---------------------------------------------------------

def _e1(t, y, xp):
    tt = t + 1
    return _stack(xp, (y[..., 1], -(y[..., 1] / tt + y[..., 0] * (1 - 0.25 / tt ** 2))))


def _e1_exact(t):
    """Bessel's equation of order 1/2 in ``x = t + 1``: ``y = J_{1/2}(x) = sqrt(2 / (pi x)) sin x``."""
    x = np.asarray(t, dtype=np.float64) + 1
    c = math.sqrt(2 / math.pi)
    return np.stack([c * np.sin(x) / np.sqrt(x), c * (np.cos(x) / np.sqrt(x) - 0.5 * np.sin(x) / x ** 1.5)], -1)


def _e2(t, y, xp):
    return _stack(xp, (y[..., 1], (1 - y[..., 0] ** 2) * y[..., 1] - y[..., 0]))


def _e3(t, y, xp):
    return _stack(xp, (y[..., 1], y[..., 0] ** 3 / 6 - y[..., 0] + 2 * xp.sin(2.78535 * t)))


def _e4(t, y, xp):
    return _stack(xp, (y[..., 1], 0.032 - 0.4 * y[..., 1] ** 2))


def _e4_exact(t):
    """``y2' = 0.032 - 0.4 y2^2``: ``y2 = a tanh(b t)``, ``a = sqrt(0.08)``, ``b = 0.4 a``;
    ``y1 = 30 + (a / b) log cosh(b t)``."""
    a = math.sqrt(0.08)
    b = 0.4 * a
    t = np.asarray(t, dtype=np.float64)
    return np.stack([30 + a / b * np.log(np.cosh(b * t)), a * np.tanh(b * t)], -1)


def _e5(t, y, xp):
    return _stack(xp, (y[..., 1], xp.sqrt(1 + y[..., 1] ** 2) / (25 - t)))


def _e5_exact(t):
    """``asinh(y2)' = 1 / (25 - t)``: ``y2 = (r - 1/r) / 2``, ``r = 25 / (25 - t)``;
    ``y1 = (25 log r - t + t^2 / 50) / 2``."""
    t = np.asarray(t, dtype=np.float64)
    r = 25 / (25 - t)
    return np.stack([0.5 * (25 * np.log(r) - t + t ** 2 / 50), 0.5 * (r - 1 / r)], -1)


def _detest(name, f, y0, exact=None, events=()):
    return Problem(name, f, tuple(float(v) for v in y0), (0.0, 20.0), DETEST_TOL, DETEST_TOL, exact, events)


_LN2 = PeerEvent("y=1/2", lambda t, y, xp: y[..., 0] - 0.5, -1, (math.log(2),))

DETEST = [
    _detest("A1", _a1, (1.0,), _col(lambda t: np.exp(-t)), (_LN2,)),
    _detest("A2", _a2, (1.0,), _col(lambda t: 1 / np.sqrt(1 + t))),
    _detest("A3", _a3, (1.0,), _col(lambda t: np.exp(np.sin(t))),
            (PeerEvent("y=1", lambda t, y, xp: y[..., 0] - 1, 0, tuple(j * math.pi for j in range(1, 7))),)),
    _detest("A4", _a4, (1.0,), _col(lambda t: 20 / (1 + 19 * np.exp(-t / 4)))),
    _detest("A5", _a5, (4.0,)),
    _detest("B1", _b1, (1.0, 3.0)),
    _detest("B2", _linear_field(B2), (2.0, 0.0, 1.0), _linear_exact_of(B2, (2.0, 0.0, 1.0))),
    _detest("B3", _b3, (1.0, 0.0, 0.0)),
    _detest("B4", _b4, (3.0, 0.0, 0.0)),
    _detest("B5", _b5, (0.0, 1.0, 1.0), _b5_exact),
    _detest("C1", _linear_field(C1), _unit(10), _linear_exact_of(C1, _unit(10))),
    _detest("C2", _linear_field(C2), _unit(10), _linear_exact_of(C2, _unit(10))),
    _detest("C3", _linear_field(C3), _unit(10), _linear_exact_of(C3, _unit(10))),
    _detest("C4", _linear_field(C4), _unit(51), _linear_exact_of(C4, _unit(51))),
    _detest("C5", _c5, C5_Y0),
    *[_orbit_problem(k, e) for k, e in enumerate((0.1, 0.3, 0.5, 0.7, 0.9), start=1)],
    _detest("E1", _e1, (0.6713967071418030, 0.09540051444747446), _e1_exact),
    _detest("E2", _e2, (2.0, 0.0)),
    _detest("E3", _e3, (0.0, 0.0)),
    _detest("E4", _e4, (30.0, 0.0), _e4_exact),
    _detest("E5", _e5, (0.0, 0.0), _e5_exact),
]

PROBLEMS = SCIPY + DETEST

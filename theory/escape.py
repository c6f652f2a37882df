"""ESC: saddle escape on the reference problem ``f(x) = (x - y)^2 / 2``.

* ESC-1  ``T = (1/L) int_{x0}^{x1} x^-m (y - x)^(1-q) dx
          = y^(beta+1-q) B_[x0/y, x1/y](beta, 2-q) / L``   (generalized incomplete beta;
          its ``a = beta = 0`` term is the logarithm of the ``m = 1`` case).
* ESC-2  ``dT / dlog(1/alpha) = x0^beta (y - x0)^(1-q)`` with ``x0 = alpha^L``, so
          ``T`` is bounded (``m < 1``), ``Theta(log 1/alpha)`` (``m = 1``) or
          ``Theta(alpha^(L beta))`` (``m > 1``).
* ESC-3  start ``(0, lambda, ..., lambda)``: ``1/R''(0) = lambda^(q(L-1))``.
"""

from __future__ import annotations

from functools import lru_cache

import sympy as sp

from numerics import validate

from .derivation import Derivation, check_identity
from . import symbols as S
from .special import unpolarify_hyper
from .symbols import L, alpha, beta, d, lam, m, phi, q, x, x0, x1, y

_POINTS = tuple({L: L_, q: q_, y: sp.Rational(3, 2), x0: sp.Rational(1, 5), x1: sp.Rational(2, 3)}
                for L_, q_ in ((2, sp.Rational(3, 2)), (2, 2), (3, sp.Rational(3, 2)), (3, 2),
                               (4, 1), (3, sp.Rational(5, 4))))


@lru_cache(maxsize=None)
def escape_time_closed_form() -> tuple[sp.Expr, sp.Expr, sp.Expr]:
    """ESC-1: ``(xdot, dt/dx, closed form T(x0, x1))``, the closed form checked by
    differentiation against the integrand."""
    xdot = -phi(x - y) * L * x**m
    rate = sp.simplify(xdot.subs(sp.sign(x - y), -1).subs(sp.Abs(x - y), y - x))
    integrand = 1 / rate
    closed = y ** (beta + 1 - q) * sp.betainc(beta, 2 - q, x0 / y, x1 / y) / L
    check_identity(sp.diff(closed, x1) - integrand.subs(x, x1), _POINTS)
    return xdot, integrand, closed


@lru_cache(maxsize=None)
def escape_time_derivation() -> tuple[Derivation, sp.Expr, sp.Expr]:
    """ESC-1 with every step (SymPy's own antiderivative too): (derivation, T, dt/dx)."""
    xdot, integrand, closed = escape_time_closed_form()
    der = Derivation("ESC-1", "Escape time on the reference problem")
    der.add(r"MIR-1 on $f = (x-y)^2/2$, $d = x - y < 0$ below the target: "
            r"$\dot x = -\phi_q(d)/R''(x)$ with", sp.Eq(sp.Symbol(r"\dot x"), xdot))
    der.add(r"For $x_0 < x < y$, time is the integral of $1/\dot x$:",
            sp.Eq(sp.Symbol("T"), sp.Integral(integrand, (x, x0, x1))))
    anti = unpolarify_hyper(sp.integrate(integrand, x))
    der.add(r"SymPy's antiderivative (a Gauss function, any $m \ne 1$):", sp.Eq(sp.Symbol("T'(x)"), anti))
    der.add(r"Substituting $x = y u$: a generalized incomplete beta integral, valid for every "
            r"$m$ (at $\beta = 0$ its leading term is the logarithm of the $m = 1$ case):",
            sp.Eq(sp.Symbol("T"), closed))
    anti22 = sp.integrate(sp.apart(integrand.subs({L: 2, q: 2}), x), x)
    anti22 = anti22.replace(sp.log(x - y), sp.log(y - x))   # same derivative on x < y
    log_case = sp.logcombine(sp.simplify(2 * y * (anti22.subs(x, x1) - anti22.subs(x, x0))),
                             force=True) / (2 * y)
    der.add(r"For example $L = q = 2$ ($m = 1$):", sp.Eq(sp.Symbol("T"), log_case))
    return der, closed, integrand


@lru_cache(maxsize=None)
def escape_class_derivation() -> tuple[Derivation, sp.Expr]:
    """ESC-2: the growth of ``T`` per decade of ``1/alpha``; returns (derivation, rate)."""
    der = Derivation("ESC-2", "Asymptotic class of the escape time")
    _, _, closed = escape_time_closed_form()
    rate = sp.simplify(-alpha * sp.diff(closed.subs(x0, alpha**L), alpha))
    der.add(r"With $x_0 = \alpha^L$, the growth of $T$ per unit of $\log(1/\alpha)$:",
            sp.Eq(sp.Symbol(r"-\alpha\,\partial_\alpha T"), rate))
    lead = sp.limit(sp.powsimp(sp.simplify(rate / alpha ** (L * beta)), force=True), alpha, 0, "+")
    der.add(r"Leading order as $\alpha \to 0$:", sp.Eq(
        sp.Limit(sp.Symbol(r"-\alpha\,\partial_\alpha T") / alpha ** (L * beta), alpha, 0, "+"), lead))
    der.add(r"So $T$ is bounded iff $L\beta > 0$ ($m < 1$), $\Theta(\log 1/\alpha)$ iff $m = 1$, and "
            r"$\Theta(\alpha^{L\beta})$ iff $m > 1$, with exponent", sp.Eq(sp.Symbol(r"L\beta"),
                                                                          sp.expand(L * beta)))
    return der, rate


@lru_cache(maxsize=None)
def coercivity_derivation() -> tuple[Derivation, sp.Expr]:
    """ESC-3: ``1/R''(0)`` for the start ``(0, lambda, ..., lambda)``."""
    der = Derivation("ESC-3", "Coercivity at the saddle")
    wdot_first = -phi(d * lam ** (L - 1))
    der.add(r"At $w = (0, \lambda, \dots, \lambda)$ only the zero factor moves "
            r"($\partial F/\partial w_k = 0$ for $k > 1$):", sp.Eq(sp.Symbol(r"\dot w_1"), wdot_first))
    xdot = sp.simplify(lam ** (L - 1) * wdot_first)
    der.add(r"$\dot x = \lambda^{L-1}\dot w_1$:", sp.Eq(sp.Symbol(r"\dot x"), xdot))
    inv = sp.powsimp(sp.simplify(-xdot / phi(d)), force=True)
    der.add(r"Hence", sp.Eq(1 / sp.Symbol("R''(0)"), inv))
    return der, inv


def _check_problem(L_, q_, alpha_, y_):
    return (validate.depth(L_), validate.exponent_q(q_), validate.positive(alpha_, "alpha"),
            validate.positive(y_, "y"))


def _start(alpha_, L_) -> sp.Float:
    """``x0 = alpha^L`` at 30 digits: the float power underflows to 0 below 1e-308 (``alpha = 0.1``,
    ``L = 400``), where the escape time is finite (and large)."""
    return sp.Float(alpha_, 30) ** L_


def _evaluate(expr, subs) -> float:
    val = sp.N(expr.subs(subs), 30)
    if not val.is_real or not val.is_finite:
        raise ArithmeticError(f"escape time is not finite at {subs}")
    return float(val)


def escape_time(L, q, alpha, y=1.0, target=0.5) -> float:
    """ESC-1: time for the balanced flow from ``w_k = alpha`` to reach ``x = target``.

    Evaluated from the closed form by mpmath at 30 digits and returned as a float (so
    correct to float64 rounding, about 16 digits; ``inf`` where ``T`` exceeds the float64
    range, e.g. ``L = 10^5``). ``target`` must lie strictly between ``x0 = alpha^L`` and ``y``.
    """
    L_, q_, a_, y_ = _check_problem(L, q, alpha, y)
    x0_ = _start(a_, L_)
    t_ = validate.real(target, "target")
    if not x0_ < t_ < y_:
        raise ValueError(f"target must lie strictly between x0 = alpha^L = {sp.N(x0_, 3)} and "
                         f"y = {y_:g}, got {t_:g}")
    closed = escape_time_closed_form()[2]
    return _evaluate(closed, {S.L: L_, S.q: sp.nsimplify(q_), S.y: y_, S.x0: x0_, S.x1: t_})


def arrival_time(L, q, alpha, y=1.0) -> float:
    """Finite arrival time at the minimizer ``x = y`` (``q < 2``; ``q = 2`` never arrives)."""
    L_, q_, a_, y_ = _check_problem(L, q, alpha, y)
    if q_ >= 2:
        raise ValueError("q must be < 2 for a finite arrival time (gradient flow never arrives)")
    x0_ = _start(a_, L_)
    if not x0_ < y_:
        raise ValueError(f"alpha^L = {sp.N(x0_, 3)} must be below y = {y_:g}")
    closed = escape_time_closed_form()[2]
    return _evaluate(closed, {S.L: L_, S.q: sp.nsimplify(q_), S.y: y_, S.x0: x0_, S.x1: y_})


def metric_exponent(L, q):
    """``m = q(L-1)/L`` as an exact rational (``q`` is read as the rational it represents)."""
    return sp.nsimplify(validate.exponent_q(q)) * (validate.depth(L) - 1) / validate.depth(L)


def escape_class(L, q) -> tuple[str, float]:
    """ESC-2: ``("bounded" | "logarithmic" | "polynomial", exponent)``.

    ``exponent = L beta = L - q(L-1)``: ``T`` grows like ``alpha^exponent`` when it is
    negative; ``T = Theta(log 1/alpha)`` when it is 0; bounded when positive.
    """
    L_ = validate.depth(L)
    expo = L_ * (1 - metric_exponent(L_, q))
    cls = "bounded" if expo > 0 else "logarithmic" if expo == 0 else "polynomial"
    return cls, float(expo)


def coercivity(L, q, lam_) -> float:
    """ESC-3: ``1/R''(0) = lambda^(q(L-1))``."""
    L_, q_ = validate.depth(L), validate.exponent_q(q)
    lam_ = validate.positive(lam_, "lam")
    _, inv = coercivity_derivation()
    return _evaluate(inv, {S.L: L_, S.q: sp.nsimplify(q_), S.lam: lam_})


__all__ = ["escape_time", "arrival_time", "escape_class", "coercivity", "metric_exponent",
           "escape_time_closed_form", "escape_time_derivation", "escape_class_derivation", "coercivity_derivation"]

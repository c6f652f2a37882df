"""BAL-2 and BAL-3: how weight decay moves the imbalances ``|w_k|^q - |w_j|^q``.

* BAL-2  decoupled: ``d|w_k|^q/dt = -q phi_q(x d) - q nu |w_k|^q``: differences decay like
         ``exp(-q int nu)``, exactly, for any loss.
* BAL-3  coupled: ``d|w_k|^q/dt = -q phi_q(x d + nu w_k^2)``; at ``q = 1`` the differences
         are frozen while ``|x d| > nu max_k w_k^2``; at ``q = 2`` it is BAL-2.
"""

from __future__ import annotations

from functools import lru_cache

import sympy as sp

from . import symbols as S
from .decay import SAMPLE_POINTS, nu, rk, wk
from .derivation import Derivation, check_identity
from .parse import parse_expression
from .symbols import d, phi, q


def _rate_of_power(wdot) -> sp.Expr:
    return sp.simplify(sp.diff(wk**q, wk) * wdot)


@lru_cache(maxsize=None)
def decoupled_balance() -> Derivation:
    """BAL-2: the imbalance decays like ``exp(-q int_0^t nu)`` under decoupled decay."""
    der = Derivation("BAL-2", "Decoupled decay balances exponentially")
    wdot = -phi(d * rk) - nu * wk
    der.add(r"Decoupled decay, $\partial F/\partial w_k = d\,r_k$, $r_k = \prod_{j\ne k} w_j$:",
            sp.Eq(sp.Symbol(r"\dot w_k"), wdot))
    target = -q * phi(d * wk * rk) - q * nu * wk**q
    check_identity(_rate_of_power(wdot) - target, SAMPLE_POINTS)
    der.add(r"Chain rule, $x = w_k r_k$: only the last term depends on $k$:",
            sp.Eq(sp.Symbol(r"\frac{d}{dt}|w_k|^q"), target))
    s_, t_ = sp.Symbol("s", nonnegative=True), S.t
    nu_t, D0 = sp.Function("nu"), sp.Symbol("D_0", real=True)
    D = D0 * sp.exp(-q * sp.Integral(nu_t(s_), (s_, 0, t_)))
    check_identity(sp.diff(D, t_) + q * nu_t(t_) * D)
    der.add(r"So $D = |w_k|^q - |w_j|^q$ solves $\dot D = -q\,\nu(t) D$ for any loss and schedule:",
            sp.Eq(sp.Symbol("D(t)"), D))
    return der


@lru_cache(maxsize=None)
def coupled_balance() -> Derivation:
    """BAL-3: coupled decay moves each ``|w_k|^q`` by ``-q phi_q(x d + nu w_k^2)``."""
    der = Derivation("BAL-3", "Coupled decay does not balance")
    wdot = -phi(d * rk + nu * wk)
    der.add(r"Coupled decay (L2 inside the step):", sp.Eq(sp.Symbol(r"\dot w_k"), wdot))
    X = sp.Symbol("x", positive=True)
    target = -q * phi(d * X + nu * wk**2)
    check_identity(_rate_of_power(wdot) - target.subs(X, wk * rk), SAMPLE_POINTS)
    der.add(r"Chain rule, $x = w_k r_k$: the decay enters inside $\phi_q$, with $w_k^2$:",
            sp.Eq(sp.Symbol(r"\frac{d}{dt}|w_k|^q"), target))
    wj = sp.Symbol("w_j", positive=True)
    diff2 = target.subs(q, 2) - target.subs(q, 2).subs(wk, wj)
    check_identity(diff2 + 2 * nu * (wk**2 - wj**2), tuple({**pt, X: 2, wj: sp.Rational(1, 3)} for pt in SAMPLE_POINTS))
    der.add(r"At $q = 2$ the difference decays like BAL-2:", sp.Eq(
        sp.Symbol(r"\frac{d}{dt}(w_k^2 - w_j^2)"), -2 * nu * (wk**2 - wj**2)))
    xd = sp.Symbol(r"x d", real=True)
    diff1 = (target - target.subs(wk, wj)).subs(q, 1).subs(d * X, xd)
    der.add(r"At $q = 1$:", sp.Eq(sp.Symbol(r"\frac{d}{dt}(|w_k| - |w_j|)"), diff1))
    for xd_ in (-sp.Rational(3, 2), sp.Rational(3, 2)):       # |x d| = 3/2 > nu max w^2 = 2/3
        assert diff1.subs({xd: xd_, nu: sp.Rational(2, 3), wk: 1, wj: sp.Rational(1, 2)}) == 0
    der.add(r"Both signs equal $\mathrm{sign}(x d)$ while $|x d| > \nu \max_k w_k^2$: the "
            r"differences stay constant (no exponential balancing).",
            sp.Gt(sp.Abs(xd), nu * sp.Symbol(r"\max_k w_k^2")))
    return der


def schedule(text: str) -> tuple[sp.Expr, sp.Expr]:
    """A decay schedule ``s(t)`` from safe text (e.g. ``"1/(1 + t)"``) and ``int_0^t s``,
    both SymPy in ``theory.symbols.t`` (BAL-2 with ``nu(t) = nu s(t)``)."""
    expr = parse_expression(text, {"t": S.t}, name="schedule")
    u = sp.Symbol("u", nonnegative=True)
    integral = sp.simplify(sp.integrate(expr.subs(S.t, u), (u, 0, S.t)))
    if integral.has(sp.Integral):
        raise ValueError(f"schedule: SymPy finds no closed-form integral of {expr}")
    return expr, integral


__all__ = ["coupled_balance", "decoupled_balance", "schedule"]

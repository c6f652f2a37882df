"""Deep diagonal reparameterization ``x = prod_k w_k``: balance law and mirror potentials.

Derivations (all by SymPy, recorded step by step):

* BAL-1   ``d|w_k|^q/dt = -q phi_q(x d f)`` for every factor ``k``.
* MIR-1   balanced start: ``R''(x) = x^-m / L``, ``m = q(L-1)/L``.
* MIR-2   ``L = 2`` with ``|u|^q - |v|^q = c``: ``R''(x) = (c^2 + 4 x^q)^(-1/2)``.
* MIR-3   any ``L`` with ``|w_k|^q = s + c_k``: ``1/R''(x) = x^q sum_k 1/(s + c_k)``.
"""

from __future__ import annotations

from functools import lru_cache

import sympy as sp

from .derivation import Derivation, check_identity
from .kernelspec import RootSpec, SumLast
from .potentials import Potential
from .special import BoxCox, hyper_to_betainc, unpolarify_hyper
from .symbols import L, beta, c, d, m, phi, q, x

_k = sp.Symbol("k", integer=True, positive=True)
# exact points covering m < 1, m = 1 (two ways) and m > 1, for identities SymPy cannot close
_SAMPLES = tuple({L: L_, q: q_, x: sp.Rational(7, 3), c: sp.Rational(3, 5)} for L_, q_ in
                 ((2, sp.Rational(3, 2)), (2, 2), (3, sp.Rational(3, 2)), (4, 2), (1, 1),
                  (2, sp.Rational(4, 3))))
_W = sp.IndexedBase("w", positive=True)


def factor_velocity_law() -> Derivation:
    """BAL-1: the rate of ``|w_k|^q`` is the same for every factor."""
    der = Derivation("BAL-1", "Conservation of |w_k|^q - |w_j|^q")
    wk, rest = sp.symbols("w_k r_k", positive=True)     # w_k and prod_{j != k} w_j
    xx = wk * rest
    der.add(r"Gradient of $F = f(\prod_j w_j)$ in one factor: $\partial F/\partial w_k = d\,r_k$, "
            r"$r_k = \prod_{j\ne k} w_j$.", sp.Eq(sp.Symbol(r"\partial_{w_k} F"), d * rest))
    wdot = -phi(d * rest)
    der.add(r"Steepest flow $\dot w_k = -\phi_q(\partial_{w_k} F)$:",
            sp.Eq(sp.Symbol(r"\dot w_k"), wdot))
    rate = sp.simplify(sp.diff(wk**q, wk) * wdot)
    target = -q * phi(d * xx)
    assert sp.simplify(rate - target) == 0
    der.add(r"Chain rule, with $x = w_k r_k$: the rate depends on $x$ and $d$ only, not on $k$.",
            sp.Eq(sp.Symbol(r"\frac{d}{dt}|w_k|^q"), target))
    der.add(r"Hence every difference is constant in time (no decay, any loss $f$):",
            sp.Eq(sp.Symbol(r"\frac{d}{dt}\left(|w_k|^q - |w_j|^q\right)"), 0))
    return der


@lru_cache(maxsize=None)
def balanced() -> Potential:
    """MIR-1 for symbolic ``L`` and ``q``."""
    der = Derivation("MIR-1", "Balanced deep diagonal potential")
    a = x ** (1 / L)
    der.add(r"Balanced factors $w_k = x^{1/L}$; $\partial F/\partial w_k = d\, x / w_k$.",
            sp.Eq(sp.Symbol(r"\partial_{w_k} F"), d * x / a))
    xdot = sp.simplify(L * (x / a) * (-phi(d * x / a)))
    der.add(r"$\dot x = \sum_k (x/w_k)\,\dot w_k$ with $\dot w_k = -\phi_q(\partial_{w_k}F)$:",
            sp.Eq(sp.Symbol(r"\dot x"), xdot))
    hess = sp.powsimp(sp.simplify(-phi(d) / xdot), force=True)
    assert sp.simplify(hess - x ** (-m) / L) == 0
    der.add(r"Mirror form $\dot x = -\phi_q(d)/R''(x)$ gives", sp.Eq(sp.Symbol("R''(x)"), hess))
    anti = sp.integrate(hess, x)
    der.add(r"SymPy's antiderivative, with the $m = 1$ logarithmic case:",
            sp.Eq(sp.Symbol("R'(x)"), anti))
    grad = sp.Piecewise((x**beta / (L * beta), beta > 0), (BoxCox(x, beta) / L, True))
    check_identity(sp.diff(grad, x) - hess, _SAMPLES)
    der.add(r"Normalized by $R'(0) = 0$ when $m < 1$ and by $R'(1) = 0$ otherwise "
            r"(continuous in $m$ through $m = 1$):", sp.Eq(sp.Symbol("R'(x)"), grad))
    value = sp.Piecewise(
        (x ** (beta + 1) / (L * beta * (beta + 1)), beta > 0),
        ((x * BoxCox(x, beta) - (x - 1)) / (L * (beta + 1)), True),
    )
    check_identity(sp.diff(value, x) - grad, _SAMPLES)
    der.add(r"Integrating once more:", sp.Eq(sp.Symbol("R(x)"), value))
    return Potential("MIR-1", "balanced deep diagonal", hess, grad, value, (L, q),
                     derivation=der, kernel="mir1", m=m)


@lru_cache(maxsize=None)
def lambda_balanced_l2() -> Potential:
    """MIR-2: ``L = 2`` with ``|u|^q - |v|^q = c != 0`` (``c`` stands for ``|c|``)."""
    der = Derivation("MIR-2", "Lambda-balanced potential at L = 2")
    a, b = sp.symbols("a b", positive=True)   # a = |u|^q, b = |v|^q
    der.add(r"Any depth: $\dot x = -\phi_q(d)\, x^q \sum_k |w_k|^{-q}$, so "
            r"$1/R'' = x^q (1/|u|^q + 1/|v|^q)$ with $a = |u|^q,\ b = |v|^q$:",
            sp.Eq(1 / sp.Symbol("R''(x)"), x**q * (1 / a + 1 / b)))
    sol = sp.solve([a - b - c, a * b - x**q], [a, b], dict=True)
    sol = [s_ for s_ in sol if all(v.subs({x: 1, c: 1, q: 2}).is_positive for v in s_.values())][0]
    inv = sp.simplify((x**q * (1 / a + 1 / b)).subs(sol))
    der.add(r"Solving $a - b = c$, $ab = x^q$ for the positive root:", sp.Eq(1 / sp.Symbol("R''(x)"), inv))
    hess = sp.simplify(1 / inv)
    der.add(r"Hence", sp.Eq(sp.Symbol("R''(x)"), hess))
    t_ = sp.Symbol("t", positive=True)
    grad_h = unpolarify_hyper(sp.simplify(sp.integrate(hess.subs(x, t_), (t_, 0, x))))
    der.add(r"$R'(x) = \int_0^x R''$ (SymPy, a Gauss function):", sp.Eq(sp.Symbol("R'(x)"), grad_h))
    grad = hyper_to_betainc(grad_h)
    check_identity(sp.diff(grad, x) - hess, _SAMPLES)
    der.add(r"As an incomplete beta integral (the printable form of the kernels):",
            sp.Eq(sp.Symbol("R'(x)"), grad))
    for qq, name in ((2, "q = 2"), (1, "q = 1")):
        special = sp.simplify(sp.hyperexpand(grad_h.subs(q, qq)))
        der.add(rf"Special case ${name}$:", sp.Eq(sp.Symbol("R'(x)"), special))
    inner = sp.integrate((t_ * hess.subs(x, t_)), (t_, 0, x))
    value = sp.expand(x * grad - hyper_to_betainc(sp.simplify(inner)))
    check_identity(sp.diff(value, x) - grad, _SAMPLES)
    der.add(r"$R(x) = \int_0^x R' = x R'(x) - \int_0^x t R''(t)\,dt$:", sp.Eq(sp.Symbol("R(x)"), value))
    return Potential("MIR-2", "lambda-balanced deep diagonal, L = 2", hess, grad, value, (q, c),
                     derivation=der, kernel="mir2")


@lru_cache(maxsize=None)
def lambda_balanced() -> Potential:
    """MIR-3: any ``L``, ``|w_k|^q = s + c_k``; the root ``s`` is generated as a Newton solve.

    Root variable ``v`` with ``s + c_k = exp(v) + (c_k - min_j c_j)``: the residual
    ``sum_k log(exp(v) + dc_k) - q log x`` is increasing and convex in ``v`` with slope
    in ``[1, L]``, so the solve is globally convergent.
    """
    der = Derivation("MIR-3", "Lambda-balanced potential at any depth")
    xdot = sp.Sum((x / _W[_k]) * (-phi(d * x / _W[_k])), (_k, 1, L))
    inv = sp.simplify(sp.piecewise_fold(-xdot / phi(d)))
    der.add(r"$\dot x = \sum_k (x/w_k)\dot w_k$, $\dot w_k = -\phi_q(d\,x/w_k)$, so", sp.Eq(
        1 / sp.Symbol("R''(x)"), inv))
    ck, dc, v = sp.Symbol("c_k", real=True), sp.Symbol("\\delta_k", nonnegative=True), sp.Symbol("v", real=True)
    s_ = sp.Symbol("s", real=True)
    der.add(r"Lambda-balanced: $|w_k|^q = s + c_k$ with $s$ fixed by the product:",
            sp.Eq(sp.Product(s_ + ck, (_k, 1, L)) ** (1 / q), x))
    residual = SumLast(sp.log(sp.exp(v) + dc)) - q * sp.log(x)
    der.add(r"Root variable $v$ with $s + c_k = e^v + \delta_k$, $\delta_k = c_k - \min_j c_j$ "
            r"(residual increasing and convex in $v$, slope in $[1, L]$):", sp.Eq(residual, 0))
    hess = 1 / (x**q * SumLast(1 / (sp.exp(v) + dc)))
    der.add(r"Hence", sp.Eq(sp.Symbol("R''(x)"), hess))
    root = RootSpec(v, residual, q * sp.log(x), vectors=(dc,))
    return Potential("MIR-3", "lambda-balanced deep diagonal, any L", hess, None, None, (q, dc),
                     derivation=der, root=root, kernel="mir3")


__all__ = ["factor_velocity_law", "balanced", "lambda_balanced_l2", "lambda_balanced"]

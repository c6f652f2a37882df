"""MIR-6 (ours): the energy identity and the rate bound of steepest mirror flows.

Along ``d/dt R'(x_i) = -phi_q(d_i f)``:

    d f / dt = sum_i d_i f * dx_i/dt = -sum_i |d_i f|^q / R''(x_i),

so ``f(x(0)) - f(x(T)) = int_0^T sum_i |d_i f|^q / R''(x_i) dt``. With ``1/R'' >= mu`` and
``|d_i f| <= B``: ``|d_i f|^2 <= B^(2-q) |d_i f|^q``, hence
``int_0^inf ||grad f||^2 dt <= B^(2-q) (f(x_0) - inf f) / mu``.
"""

from __future__ import annotations

from functools import lru_cache

import sympy as sp

from .derivation import Derivation, check_identity
from .deep import balanced
from .symbols import d, phi, q

R2 = sp.Symbol("R''(x_i)", positive=True)


@lru_cache(maxsize=None)
def energy_identity() -> tuple[Derivation, sp.Expr]:
    """Returns the derivation and the dissipation rate of one coordinate (MIR-1 potential)."""
    der = Derivation("MIR-6", "Energy identity and rate")
    xdot = -phi(d) / R2
    der.add(r"Mirror flow in one coordinate:", sp.Eq(sp.Symbol(r"\dot x_i"), xdot))
    rate = sp.simplify(-d * xdot)
    check_identity(rate - sp.Abs(d) ** q / R2, ())
    der.add(r"Chain rule $\dot f = \sum_i d_i f\,\dot x_i$, one term:",
            sp.Eq(sp.Symbol(r"-d_i f\, \dot x_i"), rate))
    der.add(r"Integrating in time gives the identity", sp.Eq(
        sp.Symbol("f(x(0)) - f(x(T))"),
        sp.Integral(sp.Sum(sp.Symbol(r"|d_i f|^q") / R2, (sp.Symbol("i"), 1, sp.Symbol("n"))),
                    (sp.Symbol("t"), 0, sp.Symbol("T")))))
    B, mu = sp.symbols("B mu", positive=True)
    ad = sp.Symbol(r"|d_i f|", positive=True)
    gap = ad**q * (B ** (2 - q) - ad ** (2 - q))
    check_identity(gap - (B ** (2 - q) * ad**q - ad**2), ())
    der.add(r"For $|d_i f| \le B$ and $q \le 2$ the gap below is $\ge 0$ "
            r"($|d_i f|^{2-q} \le B^{2-q}$):", sp.Eq(sp.Symbol(r"B^{2-q}|d_i f|^q - |d_i f|^2"), gap))
    der.add(r"With $1/R'' \ge \mu$, summing and integrating:", sp.Le(
        sp.Symbol(r"\int_0^\infty \|\nabla f\|^2 dt"), B ** (2 - q) * sp.Symbol(r"(f(x_0) - \inf f)") / mu))
    hess = balanced().hess
    return der, (sp.Abs(d) ** q / R2).subs(R2, hess)


__all__ = ["energy_identity"]

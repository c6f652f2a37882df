"""Weight decay on the deep diagonal steepest flow: the setting shared by its theorem families
(BAL-2/3 in :mod:`theory.decay_balance`, DEC-1..3 in :mod:`theory.decay_equilibria`) and the
discrete step counts of ESC-4 (:mod:`theory.steps`).

Decoupled decay (AdamW-like) ``dw/dt = -phi_q(dF/dw) - nu(t) w``; coupled decay (L2 inside
the step) ``dw/dt = -phi_q(dF/dw + nu(t) w)``; ``p = q/(q-1)``, ``m = q(L-1)/L``.

* BAL-2  ``d|w_k|^q/dt = -q phi_q(x d) - q nu |w_k|^q``: differences decay like
         ``exp(-q int nu)``, exactly, for any loss.
* BAL-3  coupled: ``d|w_k|^q/dt = -q phi_q(x d + nu w_k^2)``; at ``q = 1`` the differences
         are frozen while ``|x d| > nu max_k w_k^2``; at ``q = 2`` it is BAL-2.
* DEC-1  balanced, decoupled: ``d/dt R'(x) = -phi_q(d) - nu h'(x)``, ``h = x^(2-m)/(2-m)``;
         coupled: ``d/dt R'(x) = -phi_q(d + nu x^(2/L-1))`` (decay inside ``phi_q``).
* DEC-2  balanced equilibria ``d + c x^(-gamma) = 0``: decoupled ``c = nu^(p-1)``,
         ``gamma = (m-1)/(q-1)``; coupled ``c = nu``, ``gamma = 1 - 2/L``; at ``q = 1``
         decoupled the box ``|w_k| <= 1/nu``, ``x* = min(y, nu^-L)``.
* DEC-3  on ``f = (x-y)^2/2``, ``sign(dx/dt) = -sign(g(x))`` with ``g = x - y + c x^(-gamma)``:
         escape iff ``x0`` lies above the smaller root of ``g`` (``gamma <= 0``: a root exists
         unless ``gamma = 0`` and ``y <= c``).
* ESC-4  GD's largest stable step ``2/(L y^(2(L-1)/L))`` and its step count
         ``T_GF/eta + log(f(a1)/f(a0))/2`` (first-order modified equation, ours); SignGD
         ``ceil((x1^(1/L) - alpha)/eta)`` exactly.
"""

from __future__ import annotations

import sympy as sp

from .symbols import L, d, m, q, x, y

nu = sp.Symbol("nu", positive=True)       # decay strength
eta = sp.Symbol("eta", positive=True)     # step size of a discrete method
p = q / (q - 1)                            # dual exponent (p = inf at q = 1)
DECAYS = ("decoupled", "coupled")
GAMMA = {"decoupled": (m - 1) / (q - 1), "coupled": 1 - 2 / L}
COEFF = {"decoupled": nu ** (p - 1), "coupled": nu}

wk, rk = sp.symbols("w_k r_k", positive=True)     # one factor and the product of the others
# where the derivations of the decay families check their identities
SAMPLE_POINTS = tuple({L: L_, q: q_, x: sp.Rational(7, 5), y: sp.Rational(5, 2), nu: sp.Rational(2, 3),
                       d: sp.Rational(-3, 4), wk: sp.Rational(4, 7), rk: sp.Rational(5, 3)}
                      for L_, q_ in ((2, sp.Rational(3, 2)), (2, 2), (3, sp.Rational(5, 4)), (4, 2),
                                     (3, sp.Rational(3, 2)), (1, sp.Rational(7, 4))))

__all__ = ["COEFF", "DECAYS", "GAMMA", "SAMPLE_POINTS", "eta", "nu", "p", "rk", "wk"]

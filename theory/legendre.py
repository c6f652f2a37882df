"""MIR-4: is the potential a Legendre function at the saddle ``x = 0``?

``R'`` is finite at ``0+`` iff ``R''`` is integrable there. With the local exponent
``mu = -lim_{x->0+} x R'''(x) / R''(x)`` (``R'' ~ x^-mu``): ``mu < 1`` finite, ``mu = 1``
logarithmic, ``mu > 1`` a barrier. For MIR-1 ``mu = m``, so ``R`` is a Bregman function
iff ``m <= 1``: gradient flow only at ``L <= 2``, sign descent at every depth.
Implicit potentials have no closed ``R''``; their exponent is read off at 40 digits from
the root equation at ``x = 1e-30`` and ``1e-32`` (mpmath).
"""

from __future__ import annotations

import mpmath
import sympy as sp

from .symbols import x


def local_exponent(potential) -> sp.Expr:
    """``mu`` with ``R''(x) ~ x^-mu`` at ``0+``."""
    if potential.root is None:
        hess = potential.R2
        return sp.nsimplify(-sp.limit(sp.simplify(x * sp.diff(sp.log(hess), x)), x, 0, "+"))
    return _implicit_exponent(potential)


def _implicit_exponent(potential):
    root = potential.root
    res = sp.lambdify((root.var, x), potential._subs(root.residual), "mpmath")
    hess = sp.lambdify((root.var, x), potential._subs(potential.hess), "mpmath")
    start = sp.lambdify(x, potential._subs(root.start), "mpmath")
    with mpmath.workdps(40):
        vals = []
        for xv in (mpmath.mpf("1e-30"), mpmath.mpf("1e-32")):
            v = mpmath.findroot(lambda vv: res(vv, xv), start(xv))
            vals.append(mpmath.log(hess(v, xv)))
        mu = -(vals[1] - vals[0]) / (mpmath.log(mpmath.mpf("1e-32")) - mpmath.log(mpmath.mpf("1e-30")))
    return sp.nsimplify(float(mu), tolerance=1e-12, rational=True)


def classify(potential) -> str:
    mu = local_exponent(potential)
    return "finite" if mu < 1 else "logarithmic" if mu == 1 else "barrier"


__all__ = ["classify", "local_exponent"]

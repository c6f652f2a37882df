"""Special functions on the SymPy side, and their rewriting into printable forms.

Kernels never contain ``hyper``: every Gauss function that the derivations produce is
of the incomplete-beta family and is rewritten into SymPy's generalized incomplete beta
``betainc(a, b, z0, z1) = integral_{z0}^{z1} t^(a-1) (1-t)^(b-1) dt``, which the numeric
backends evaluate by a convergent two-sided series (``numerics.special.betainc``).
``BoxCox(x, lam) = (x^lam - 1)/lam`` (``log x`` at ``lam = 0``) carries the ``m = 1`` case
continuously in the parameter.
"""

from __future__ import annotations

import sympy as sp


class BoxCox(sp.Function):
    """``(x**lam - 1) / lam``, continuous in ``lam`` with the value ``log(x)`` at 0."""

    nargs = 2

    @classmethod
    def eval(cls, xx, lam):
        if lam.is_zero:
            return sp.log(xx)
        if lam.is_Number and xx.is_Number:
            return (xx**lam - 1) / lam

    def fdiff(self, argindex=1):
        xx, lam = self.args
        if argindex == 1:
            return xx ** (lam - 1)
        raise sp.ArgumentIndexError(self, argindex)

    def _eval_rewrite_as_Piecewise(self, xx, lam, **kwargs):
        return sp.Piecewise(((xx**lam - 1) / lam, sp.Ne(lam, 0)), (sp.log(xx), True))

    def _eval_evalf(self, prec):
        xx, lam = (a.evalf(prec) for a in self.args)
        if not (xx.is_Number and lam.is_Number):
            return None
        if lam == 0:
            return sp.log(xx).evalf(prec)
        return ((xx**lam - 1) / lam).evalf(prec)

    def _latex(self, printer):
        xx, lam = (printer._print(a) for a in self.args)
        return r"\frac{%s^{%s} - 1}{%s}" % (printer.parenthesize(self.args[0], 1000), lam, lam) \
            if not self.args[1].is_zero else r"\log %s" % xx


def unpolarify_hyper(expr):
    """Replace the ``exp_polar`` branch markers SymPy's integrator leaves in ``hyper``
    arguments by ordinary exponentials (the arguments here are real, off the branch cut)."""
    return expr.replace(lambda e: isinstance(e, sp.exp_polar), lambda e: sp.exp(e.args[0]))


def _sign_of(z):
    if z.is_nonpositive:
        return -1
    if z.is_nonnegative:
        return 1
    return 0


def hyper_to_betainc(expr):
    """Rewrite every ``2F1(a, b; b+1; z)`` in ``expr`` as an incomplete beta.

    For ``0 <= z < 1``:  ``2F1(a, b; b+1; z) = b z^-b B_[0,z](b, 1-a)``.
    For ``z <= 0`` (Pfaff, ``w = -z/(1-z)``):  ``2F1(a, b; b+1; z) = b (-z)^-b B_[0,w](b, a-b)``.
    Raises ``NotImplementedError`` for a ``hyper`` outside this family (callers fall back to
    quadrature).
    """
    expr = unpolarify_hyper(expr)

    def rewrite(h):
        (a1, a2), (cc,), z = h.ap, h.bq, h.argument
        if sp.simplify(cc - a2 - 1) == 0:
            a, b = a1, a2
        elif sp.simplify(cc - a1 - 1) == 0:
            a, b = a2, a1
        else:
            raise NotImplementedError(f"no incomplete-beta form for {h}")
        sign = _sign_of(z)
        if sign > 0:
            return b * sp.expand_power_base(z ** (-b), force=True) * sp.betainc(b, 1 - a, 0, z)
        if sign < 0:
            wz = sp.simplify(-z / (1 - z))
            return b * sp.expand_power_base((-z) ** (-b), force=True) * sp.betainc(b, a - b, 0, wz)
        raise NotImplementedError(f"sign of the argument of {h} is unknown")

    hypers = [h for h in expr.atoms(sp.hyper) if len(h.ap) == 2 and len(h.bq) == 1]
    if len(hypers) != len(expr.atoms(sp.hyper)):
        raise NotImplementedError("only 2F1 is rewritten")
    out = expr.xreplace({h: rewrite(h) for h in hypers})
    return sp.powsimp(sp.expand_power_base(out, force=True), force=True)

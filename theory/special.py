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


def asinh_logs(expr):
    """``log(a + sqrt(a^2 + 1)) -> asinh(a)`` wherever ``a = (u - 1/u)/2`` recovers the argument ``u``."""
    def one(e):
        u = e.args[0]
        a = sp.simplify(sp.radsimp((u - 1 / u) / 2))
        return sp.asinh(a) if sp.simplify(sp.radsimp(u - a - sp.sqrt(a**2 + 1))) == 0 else e
    return expr.replace(lambda e: isinstance(e, sp.log) and e.args[0].is_Add, one)


def elementary(expr):
    """Readable form of ``expr``: each ``betainc(a, b, z0, z1)`` with numeric ``a, b`` becomes
    ``F(z1) - F(z0)`` where SymPy finds an elementary antiderivative ``F`` of
    ``t^(a-1) (1-t)^(b-1)`` on ``0 < t < 1`` (``betainc(1/2, -1/2, 0, x^2)/2 = x/sqrt(1 - x^2)``,
    ``betainc(1/2, 0, 0, z)/2 = atanh(sqrt z)``), then integrals done where that is now possible
    and ``log(a + sqrt(a^2 + 1))`` written ``asinh(a)``; the rewrite is kept only if it agrees with
    ``expr`` numerically at a sample point, else ``betainc`` stays. ``BoxCox(x, lam)`` with a
    number ``lam`` is written ``(x**lam - 1)/lam`` (``BoxCox(x, -1/3)/3 = 1 - x**(-1/3)``)."""
    t, half = sp.Symbol("t", positive=True), sp.Rational(1, 2)
    if expr is not None and expr.has(BoxCox):
        expr = sp.expand(expr.replace(lambda e: isinstance(e, BoxCox) and e.args[1].is_Number,
                                      lambda e: (e.args[0] ** e.args[1] - 1) / e.args[1]))

    def one(b):
        a_, b_, z0, z1 = b.args
        if not (a_.is_Number and b_.is_Number):
            return b
        F = sp.integrate(t ** (a_ - 1) * (1 - t) ** (b_ - 1), t, conds="none")
        if isinstance(F, sp.Piecewise):           # the branch that holds on 0 < t < 1
            F = next((e for e, c in F.args if c.subs(t, half) == sp.true), F)
        F = F.replace(lambda e: isinstance(e, sp.log) and bool(e.args[0].subs(t, half) < 0),
                      lambda e: sp.log(-e.args[0]))           # real logs on (0, 1)
        if F.has(sp.Integral, sp.hyper, sp.betainc, sp.meijerg, sp.Piecewise):
            return b
        low = sp.limit(F, t, 0, "+") if z0 == 0 else F.subs(t, z0)
        return F.subs(t, z1) - low if low.is_finite else b

    if expr is None or not expr.has(sp.betainc):
        return expr
    out = expr.replace(lambda e: isinstance(e, sp.betainc), one)
    out = sp.simplify(out.replace(lambda e: isinstance(e, sp.Integral), lambda e: e.doit()))
    out = sp.simplify(asinh_logs(out))
    at = {s_: sp.Rational(1, 3) for s_ in expr.free_symbols}
    a, b = sp.N(expr.subs(at), 20), sp.N(out.subs(at), 20)
    return out if a.is_real and b.is_real and abs(a - b) <= 1e-12 * (1 + abs(a)) else expr

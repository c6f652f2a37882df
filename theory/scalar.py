"""MIR-5: scalar reparameterizations ``x = g(w)``, one parameter per coordinate.

The steepest flow ``dw/dt = -phi_q(f'(g(w)) g'(w))`` gives
``dx/dt = -phi_q(f') |g'(w)|^q``, i.e. the mirror flow with

    R''(x) = |g'(g^-1(x))|^(-q).

Derived on the branch ``w > 0``, where ``g`` must be strictly monotone. ``R'`` and ``R``
are SymPy's closed forms (Gauss functions rewritten as incomplete beta integrals); where
SymPy finds none they stay ``Integral`` objects, which the code generator turns into
quadrature kernels.
"""

from __future__ import annotations

import sympy as sp

from numerics import validate

from .derivation import Derivation, check_identity
from .kernelspec import RootSpec
from .parse import parse_expression
from .potentials import Potential
from .special import hyper_to_betainc
from .symbols import q, w, x

MAX_INVERSE_OPS = 20
W_REAL = sp.Symbol("w", real=True)
_SAMPLE_W = tuple(sp.Rational(n, 7) for n in (1, 3, 7, 12, 40, 150))


class ScalarReparam:
    """``x = g(w)`` with ``g`` a SymPy expression (or safe string) in the symbol ``w``."""

    def __init__(self, g, name: str | None = None, params: dict | None = None):
        params = _parameters(params)
        symbols = {"w": W_REAL, **{str(k): k for k in params}}
        if isinstance(g, str):
            g = parse_expression(g, symbols, name="g")
        elif not isinstance(g, sp.Expr):
            raise TypeError(f"g must be a SymPy expression or a string, got {type(g).__name__}")
        self.g_real = g.subs({sp.Symbol("w", **a): W_REAL for a in ({}, {"positive": True})})
        g = self.g_real.subs(W_REAL, w)
        extra = g.free_symbols - {w} - set(params)
        if w not in g.free_symbols:
            raise ValueError("g must depend on the parameter w")
        if extra:
            raise ValueError(f"g must be a function of the single parameter w (separable, one "
                             f"parameter per coordinate); it also depends on {sorted(map(str, extra))}")
        unused = sorted(str(k) for k in set(params) - g.free_symbols)
        if unused:
            raise ValueError(f"params: {', '.join(map(repr, unused))} does not appear in g = {g}; "
                             f"pass only the constants of g")
        self.g = sp.simplify(g)
        self.params = params
        self.name = name or str(g)
        self.dg = sp.simplify(sp.diff(self.g, w))
        self._check_monotone()

    def _check_monotone(self) -> None:
        dg = self.dg.subs(self.params)
        if dg.is_positive or dg.is_negative:
            return
        values = [sp.N(dg.subs(w, v)) for v in _SAMPLE_W]
        if not all(v.is_real and v.is_finite for v in values):
            raise ValueError(f"g'(w) = {dg} is not finite and real on w > 0; g is not invertible there")
        if not (all(v > 0 for v in values) or all(v < 0 for v in values)):
            raise ValueError(f"g(w) = {self.g} is not monotone on w > 0 (g' changes sign), so it "
                             f"is not invertible and has no mirror potential")

    @property
    def odd(self) -> bool:
        """``g(-w) = -g(w)``: then ``R''`` is even and the potential extends to ``x < 0``."""
        return sp.simplify(self.g_real.subs(W_REAL, -W_REAL) + self.g_real) == 0

    @property
    def dg_real(self) -> sp.Expr:
        """``g'(w)`` for any real ``w`` (the simulated vector field uses it); ``sign(w)`` is
        written ``w/|w|`` so that SymPy cancels it into powers finite at ``w = 0``."""
        raw = sp.diff(self.g_real, W_REAL)
        return sp.simplify(raw.replace(sp.sign, lambda a: a / sp.Abs(a)))

    def inverse(self):
        """``g^-1(x)`` on ``w > 0`` in a short closed form, or ``None`` (then a root solve is
        generated: closed inverses longer than ``MAX_INVERSE_OPS`` are slower and less
        accurate than Newton's method). A solution of ``g(w) = x`` is the inverse if it maps
        ``g(w_k)`` back to ``w_k`` at sample points ``w_k > 0``, i.e. on the range of ``g``
        (``(0, 1)`` for ``tanh``, ``(1, inf)`` for ``exp``)."""
        samples = self.range_samples()

        def inverts(sol):               # exact g(w_k) in, so sp.N raises its working precision
            back = [sp.N(self.bound_sample(sol).subs(x, xk), 30) for _, xk in samples]
            return bool(samples) and all(b.is_real and abs(b - wk) <= 1e-20 * (1 + wk) for (wk, _), b in zip(samples, back))
        sols = [s_ for s_ in sp.solve(sp.Eq(self.g, x), w) if inverts(s_)]
        if len(sols) != 1 or sp.count_ops(sols[0]) > MAX_INVERSE_OPS:
            return None
        return sp.simplify(sols[0])

    def range_samples(self) -> list:
        """``(w_k, g(w_k))`` at sample points ``w_k > 0`` (exact, bound parameters): points of the
        range of ``g``, where an inverse and the sign of ``g'`` are tested."""
        g = self.bound_sample(self.g)
        return [(wk, g.subs(w, wk)) for wk in _SAMPLE_W if sp.N(g.subs(w, wk)).is_finite]

    def bound_sample(self, expr):
        """``expr`` with the parameters bound, and those kept symbolic set to the sample value 2."""
        expr = expr.subs(self.params)
        return expr.subs({s_: 2 for s_ in expr.free_symbols - {w, x}})

    def slope_at_inverse(self, inv):
        """``|g'(g^-1(x))|``, with radicals cancelled (``cosh(asinh x) -> sqrt(1 + x^2)``); the
        absolute value is resolved where ``g'`` has one sign on the range of ``g`` (for ``tanh``,
        ``1 - x^2`` on ``(0, 1)``), so that SymPy can integrate it."""
        e = sp.simplify(sp.expand(sp.radsimp(sp.simplify(self.dg.subs(w, inv).rewrite(sp.exp)))))
        signs = {sp.sign(sp.N(self.bound_sample(e).subs(x, xk), 30)) for _, xk in self.range_samples()}
        return {frozenset({1}): e, frozenset({-1}): -e}.get(frozenset(signs), sp.Abs(e))

    def potential(self, q=None, kernel: str | None = None) -> Potential:
        """The MIR-5 potential; a number ``q`` binds the exponent (``None`` keeps it symbolic)."""
        return self._potential(q, kernel)

    def _potential(self, q_, kernel):
        der = Derivation("MIR-5", f"Scalar reparameterization x = {self.name}")
        der.add(r"The scalar model on the branch $w > 0$:", sp.Eq(sp.Symbol("x"), self.g))
        der.add(r"Its derivative:", sp.Eq(sp.Symbol("g'(w)"), self.dg))
        der.add(r"$\dot w = -\phi_q(f'(x)\,g'(w))$ gives $\dot x = g'(w)\dot w = -\phi_q(f')\,|g'(w)|^q$, "
                r"the mirror flow with", sp.Eq(sp.Symbol("R''(x)"), sp.Abs(sp.Symbol("g'(g^{-1}(x))")) ** (-q)))
        inv = self.inverse()
        args = (q, *self.params)
        if inv is None:
            v = sp.Symbol("v", real=True)
            root = RootSpec(v, self.g.subs(w, sp.exp(v)) - x, sp.log(x))
            hess = sp.Abs(self.dg.subs(w, sp.exp(v))) ** (-q)
            der.add(r"No closed inverse: $w = e^v$ from a generated root solve of", sp.Eq(root.residual, 0))
            return Potential("MIR-5", f"x = {self.name}", hess, None, None, args, self._bind(q_),
                             der, root=root, kernel=kernel, symmetric=self.odd)
        der.add(r"Inverse on $w > 0$:", sp.Eq(sp.Symbol("w"), inv))
        hess = sp.expand_power_base(sp.powsimp(self.slope_at_inverse(inv) ** (-q), force=True),
                                    force=True)
        hess = hess.replace(lambda e: e.is_Pow and e.base.is_Pow and e.base.exp == -1,
                            lambda e: e.base.base ** (-e.exp))      # (1/b)^q -> b^-q, integrable
        der.add(r"Hence", sp.Eq(sp.Symbol("R''(x)"), hess))
        grad = self._primitive(hess, der, "R'(x)")
        value = self._primitive(grad, der, "R(x)", second=hess)
        return Potential("MIR-5", f"x = {self.name}", hess, grad, value, args, self._bind(q_), der,
                         kernel=kernel, symmetric=self.odd)

    def _bind(self, q_):
        bound = dict(self.params)
        if q_ is not None:
            bound[q] = sp.nsimplify(validate.exponent_q(q_), rational=True)
        return bound

    def _primitive(self, expr, der, label, second=None):
        """Closed-form antiderivative in ``x``, or an ``Integral`` (quadrature fallback).

        The fallback for ``R`` integrates ``(x - u) R''(u)`` once instead of nesting."""
        closed = sp.integrate(expr, x)
        if not closed.has(sp.Integral):
            closed = sp.simplify(closed)
            try:
                closed = hyper_to_betainc(closed)
            except NotImplementedError:
                closed = None
        else:
            closed = None
        if closed is not None and not closed.has(sp.meijerg):
            free = (closed.free_symbols | expr.free_symbols) - {x, q}
            check_identity(sp.diff(closed, x) - expr, tuple(
                {**{p: pv for p in free}, q: qq, x: sp.Rational(5, 3)}
                for qq in (1, sp.Rational(3, 2), 2) for pv in (2, 3)))
            der.add("SymPy's antiderivative:", sp.Eq(sp.Symbol(label), closed))
            return closed
        uu = sp.Symbol("u", positive=True)
        if expr.has(sp.Integral):          # R' is itself a quadrature: R = int (x - u) R''(u) du
            integrand, at0 = (x - uu) * second.subs(x, uu), second.subs(x, 0)
        else:
            integrand, at0 = expr.subs(x, uu), expr.subs(x, 0)
        fallback = sp.Integral(integrand, (uu, 0 if at0.is_finite else 1, x))
        der.add("No closed form: generated quadrature", sp.Eq(sp.Symbol(label), fallback))
        return fallback


def _parameters(params) -> dict:
    """``{name or Symbol: number or SymPy expression}`` with every name a real SymPy ``Symbol``."""
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict {{name: number}}, got {type(params).__name__}")
    out = {}
    for k, v in params.items():
        if isinstance(k, str):
            if not k.isidentifier() or k == "w":
                raise ValueError(f"params: {k!r} is not a parameter name (an identifier other than w)")
            k = sp.Symbol(k, real=True)
        elif not isinstance(k, sp.Symbol):
            raise TypeError(f"params: keys must be names or SymPy Symbols, got {type(k).__name__} {k!r}")
        if isinstance(v, sp.Basic) and v.free_symbols:
            out[k] = v                                   # kept symbolic (e.g. {L: L})
        else:
            out[k] = sp.nsimplify(validate.real(v, f"params[{str(k)!r}]"), rational=True)
    return out


def scalar(g, name: str | None = None, params: dict | None = None) -> ScalarReparam:
    """MIR-5 entry point: a scalar reparameterization from a SymPy expression or safe string."""
    return ScalarReparam(g, name=name, params=params)


__all__ = ["ScalarReparam", "scalar"]

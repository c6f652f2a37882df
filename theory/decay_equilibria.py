"""DEC-1..3: weight decay on the balanced deep diagonal, in the mirror picture.

* DEC-1  balanced, decoupled: ``d/dt R'(x) = -phi_q(d) - nu h'(x)``, ``h = x^(2-m)/(2-m)``;
         coupled: ``d/dt R'(x) = -phi_q(d + nu x^(2/L-1))`` (decay inside ``phi_q``).
* DEC-2  balanced equilibria ``d + c x^(-gamma) = 0``: decoupled ``c = nu^(p-1)``,
         ``gamma = (m-1)/(q-1)``; coupled ``c = nu``, ``gamma = 1 - 2/L``; at ``q = 1``
         decoupled the box ``|w_k| <= 1/nu``, ``x* = min(y, nu^-L)``.
* DEC-3  on ``f = (x-y)^2/2``, ``sign(dx/dt) = -sign(g(x))`` with ``g = x - y + c x^(-gamma)``:
         escape iff ``x0`` lies above the smaller root of ``g`` (``gamma <= 0``: a root exists
         unless ``gamma = 0`` and ``y <= c``).

The roots of ``g`` are declared once, as :class:`RootSpec` forms increasing in a root
variable: the generated kernels solve them in float64, :func:`equilibrium` and
:func:`escape_or_collapse` at 30 digits, both by ``RootSpec``'s bracket-and-Newton rule.
"""

from __future__ import annotations

from functools import lru_cache

import mpmath
import sympy as sp

from numerics import validate

from . import symbols as S
from .decay import COEFF, DECAYS, GAMMA, SAMPLE_POINTS, nu, p
from .deep import balanced
from .derivation import Derivation, check_identity
from .kernelspec import KernelSpec, RootSpec, kernel_args
from .symbols import L, d, m, phi, q, x, y

v = sp.Symbol("v", real=True)             # root variable of the generated equilibrium solves


def _phi_of_product(power, u):
    """``phi_q(a^k u) = a^(k(q-1)) phi_q(u)`` for ``a > 0`` (checked), the factor pulled out."""
    a = sp.Symbol("a", positive=True)
    check_identity(phi(a**power * u) - a ** (power * (q - 1)) * phi(u), SAMPLE_POINTS)
    return a ** (power * (q - 1)) * phi(u)


@lru_cache(maxsize=None)
def decay_mirror() -> tuple[Derivation, sp.Expr, sp.Expr]:
    """DEC-1: ``(derivation, h'(x), h(x))`` of the decoupled decay in the mirror picture."""
    der = Derivation("DEC-1", "Decay in the mirror picture")
    a = sp.Symbol("a", positive=True)
    R2 = balanced().hess
    hgrad = x ** (1 - m)
    coupled = -phi(d + nu * x ** (2 / L - 1))
    forms = (("decoupled", d * a ** (L - 1), d, -nu * a, -phi(d) - nu * hgrad),
             ("coupled", d * a ** (L - 1) + nu * a, d + nu * a ** (2 - L), 0, coupled))
    for form, arg, inner, extra, target in forms:
        assert sp.simplify(sp.expand(a ** (L - 1) * inner - arg)) == 0
        pulled = -_phi_of_product(L - 1, inner) + extra        # = -phi_q(arg) + extra
        xdot = L * a ** (L - 1) * pulled
        dual = sp.powsimp(sp.expand((R2 * xdot).subs(a, x ** (1 / L))), force=True)
        check_identity(dual - target, SAMPLE_POINTS)
        der.add(rf"Balanced start, {form} decay: $\dot a = -\phi_q({sp.latex(arg)})"
                rf"{'' if extra == 0 else ' - ' + sp.latex(-extra)}$, $\dot x = L a^{{L-1}}\dot a$ with "
                r"$a = x^{1/L}$ and $\frac{d}{dt}R'(x) = R''(x)\dot x$ (MIR-1's $R''$):",
                sp.Eq(sp.Symbol(r"\frac{d}{dt}R'(x)"), dual))
    der.add(r"Decoupled: a steepest mirror flow plus the gradient of a regularizer $h$:",
            sp.Eq(sp.Symbol(r"\frac{d}{dt}R'(x)"), -phi(d) - nu * hgrad))
    h = x ** (2 - m) / (2 - m)
    check_identity(sp.diff(h, x) - hgrad, SAMPLE_POINTS)
    assert sp.simplify(1 / (2 - m) - L / (L * (2 - q) + q)) == 0
    der.add(r"with (coefficient $L/(L(2-q)+q)$)", sp.Eq(sp.Symbol("h(x)"), h))
    for (L_, q_), label in (((2, 2), "L_1"), ((2, 1), "L_{3/2}")):
        der.add(rf"$L = {L_}, q = {q_}$: ${label}$", sp.Eq(sp.Symbol("h(x)"), sp.simplify(h.subs({L: L_, q: q_}))))
    deep = sp.limit(h.subs(q, 1), L, sp.oo)
    assert deep == x
    der.add(r"$q = 1$, $L \to \infty$: $L_1$", sp.Eq(sp.Symbol("h(x)"), deep))
    der.add(r"Coupled: the decay sits inside $\phi_q$ (a steepest mirror flow of "
            r"$f + \nu\,\frac{L}{2}x^{2/L}$); it is of the additive form only at $q = 2$, where "
            r"$x^{2/L-1} = x^{1-m}$:", sp.Eq(sp.Symbol(r"\frac{d}{dt}R'(x)"), coupled))
    assert sp.simplify((x ** (1 - m)).subs(q, 2) - x ** (2 / L - 1)) == 0
    return der, hgrad, h


def reference_residual(decay: str) -> sp.Expr:
    """``g(x) = x - y + c x^(-gamma)``: balanced stationarity on ``f = (x - y)^2/2``."""
    return x - y + COEFF[decay] * x ** (-GAMMA[decay])


def _root_form(decay: str, which: str = "larger") -> tuple[sp.Expr, RootSpec]:
    """A root of ``g`` as ``x(v)`` with a residual increasing in ``v``. With
    ``x_lo = max(gamma, 0) y/(1 + max(gamma, 0))`` (where ``(y - x) x^gamma`` peaks): the larger
    root ``x = x_lo + (y - x_lo)/(1 + e^-v)`` of ``log c - log(y - x) - gamma log x``; the
    smaller (``gamma > 0``) ``x = x_lo/(1 + e^-v)`` of ``log(y - x) + gamma log x - log c``."""
    gam, logc = GAMMA[decay], sp.expand_log(sp.log(COEFF[decay]), force=True)
    if which == "smaller":
        x_lo = gam * y / (1 + gam)
        xv = x_lo / (1 + sp.exp(-v))
        return xv, RootSpec(v, sp.log(y - xv) + gam * sp.log(xv) - logc, sp.Integer(0))
    gam_plus = sp.Piecewise((gam, gam > 0), (0, True))
    x_lo = gam_plus * y / (1 + gam_plus)
    xv = x_lo + (y - x_lo) / (1 + sp.exp(-v))
    residual = logc - (sp.log(y - x_lo) - sp.log(1 + sp.exp(v))) - gam * sp.log(xv)
    return xv, RootSpec(v, residual, sp.Integer(0))


@lru_cache(maxsize=None)
def equilibria() -> tuple[Derivation, dict]:
    """DEC-2: returns the derivation and ``{decay: (x(v), RootSpec)}``, the generated solves."""
    der = Derivation("DEC-2", "Equilibria with decay")
    z, a = sp.Symbol("z", real=True), sp.Symbol("a", positive=True)
    zstar = -(nu * a) ** (p - 1)
    check_identity(phi(zstar) + nu * a, SAMPLE_POINTS[:1] + tuple({**pt, a: sp.Rational(3, 4)} for pt in SAMPLE_POINTS))
    der.add(r"Decoupled, $q > 1$: $\phi_q(z) = -\nu w$ at rest, so $z = -\phi_p(\nu w)$, "
            r"$p = q/(q-1)$: the stationary points of $F + \frac{\nu^{p-1}}{p}\|w\|_p^p$,",
            sp.Eq(z + nu ** (p - 1) * sp.sign(a) * sp.Abs(a) ** (p - 1), 0))
    der.add(r"Coupled, every $q$: $\phi_q(z + \nu w) = 0$: the stationary points of "
            r"$F + \frac{\nu}{2}\|w\|_2^2$,", sp.Eq(z + nu * a, 0))
    for decay, wterm in (("decoupled", nu ** (p - 1) * a ** (p - 1)), ("coupled", nu * a)):
        bal = sp.powsimp(sp.expand(((d * x / a + wterm) * a / x).subs(a, x ** (1 / L))), force=True)
        target = d + COEFF[decay] * x ** (-GAMMA[decay])
        check_identity(bal - target, SAMPLE_POINTS)
        der.add(rf"Balanced ($z = d\,x/a$, $a = x^{{1/L}}$), {decay}:", sp.Eq(target, 0))
    check_identity(GAMMA["decoupled"] - (1 - p / L), SAMPLE_POINTS)
    der.add(r"Decoupled exponent: $\gamma = 1 - p/L = (m-1)/(q-1)$, negative iff $m < 1$:",
            sp.Eq(sp.Symbol(r"\gamma"), GAMMA["decoupled"]))
    box = sp.Piecewise((y, y <= nu ** (-L)), (nu ** (-L), True))
    der.add(r"Decoupled, $q = 1$ (Filippov: $0 \in -\mathrm{Sign}(z) - \nu w$): $|w_k| \le 1/\nu$, "
            r"$z = 0$ inside the box; on $f = (x-y)^2/2$ the factors stop at $1/\nu$ below $y$:",
            sp.Eq(sp.Symbol("x^*"), box))
    for decay, subs in (("coupled", {L: 1}), ("coupled", {L: 2}), ("decoupled", {q: sp.Rational(3, 2), L: 3}),
                        ("decoupled", {q: sp.Rational(3, 2), L: 2})):
        g = reference_residual(decay).subs(subs)
        roots = [r for r in sp.solve(sp.Eq(g, 0), x) if r.subs({y: 3, nu: sp.Rational(1, 2)}).is_positive]
        desc = ", ".join(f"{k} = {val}" for k, val in subs.items())
        der.add(rf"Reference problem, {decay}, ${desc}$:", sp.Eq(sp.Symbol("x^*"), roots[-1]))
    forms = {}
    for decay in DECAYS:
        xv, root = _root_form(decay)
        der.add(rf"General {decay} case, largest root of $g(x) = x - y + c x^{{-\gamma}}$ "
                r"(generated solve, residual increasing in $v$):", sp.Eq(root.residual, 0))
        forms[decay] = (xv, root)
    return der, forms


@lru_cache(maxsize=None)
def escape_collapse() -> tuple[Derivation, sp.Expr]:
    """DEC-3: the sign law ``sign(dx/dt) = -sign(g(x))`` and the coupled collapse threshold."""
    der = Derivation("DEC-3", "Which decay keeps saddle escape")
    a = sp.Symbol("a", positive=True)
    pts = tuple({**pt, a: sp.Rational(3, 4)} for pt in SAMPLE_POINTS)
    for decay in DECAYS:
        adot = -phi(d * a ** (L - 1)) - nu * a if decay == "decoupled" else -phi(d * a ** (L - 1) + nu * a)
        g = d + COEFF[decay] * (a**L) ** (-GAMMA[decay])
        if decay == "coupled":
            check_identity(adot + phi(a ** (L - 1) * g), pts)
        for pt in pts:       # dot a vanishes where g = 0 and has the sign of -g on either side
            pt = {k: val for k, val in pt.items() if k != d}
            root = (d - g).subs(pt)
            for shift in (0, sp.Rational(1, 10), -sp.Rational(1, 10)):
                val = sp.N(adot.subs(pt).subs(d, root + shift), 30)
                assert abs(val) < 1e-25 if shift == 0 else sp.sign(val) == -sp.sign(shift)
        der.add(rf"{decay.capitalize()}, balanced: $\dot a$ vanishes on the equilibria of DEC-2 and "
                r"has the sign of $-(d + c x^{-\gamma})$ on either side:",
                sp.Eq(sp.Symbol(r"\dot a"), adot))
    gx = reference_residual("decoupled")
    der.add(r"On $f = (x-y)^2/2$: $\mathrm{sign}(\dot x) = -\mathrm{sign}(g(x))$,",
            sp.Eq(sp.Symbol("g(x)"), gx))
    der.add(r"Near the saddle $g \to -y + c x^{-\gamma}$: $\gamma < 0$ ($m < 1$ decoupled, "
            r"$L = 1$ coupled) always escapes; $\gamma = 0$ escapes iff $y > c$ "
            r"($y^{q-1} > \nu$ decoupled at $m = 1$, $y > \nu$ coupled at $L = 2$); $\gamma > 0$ "
            r"collapses from below the smaller root of $g$.", sp.Eq(sp.Symbol(r"\gamma_{coupled}"),
                                                                    GAMMA["coupled"]))
    alpha = S.alpha
    thresh = (nu / y) ** (1 / (L - 2))
    cond = sp.simplify(((y - 0) * alpha ** (L * GAMMA["coupled"])).subs(alpha, thresh))
    assert sp.simplify(cond - nu) == 0
    der.add(r"Coupled, $L \ge 3$: $(y - x_0)x_0^{\gamma} < y\,\alpha^{L-2} \le \nu$ once "
            r"$\alpha \le (\nu/y)^{1/(L-2)}$, so $g(x_0) > 0$ and $x$ falls to 0:",
            sp.Eq(sp.Symbol(r"\alpha_c"), thresh))
    tc = a ** (2 - q) / ((2 - q) * nu ** (q - 1))
    check_identity(sp.diff(tc, a) - 1 / (nu * a) ** (q - 1), SAMPLE_POINTS[:1] + tuple(
        {**pt, a: sp.Rational(3, 4)} for pt in SAMPLE_POINTS if pt[q] != 2))
    der.add(r"Near $a = 0$ the coupled field is $\dot a \approx -(\nu a)^{q-1}$: the factors reach "
            r"0 in finite time when $q < 2$,", sp.Eq(sp.Symbol("t_c"), tc))
    return der, thresh


# ------------------------------------------------------------------------------ public API

def _check(L_, q_, nu_, y_, decay):
    return (validate.depth(L_), validate.exponent_q(q_), validate.nonnegative(nu_, "nu"),
            validate.positive(y_, "y"), validate.choice(decay, DECAYS, "decay"))


@lru_cache(maxsize=None)
def _residual_parts(decay: str):
    """``(L, q, nu, y) -> (gamma, c)`` of ``g(x) = x - y + c x^(-gamma)`` in mpmath."""
    return sp.lambdify([L, q, nu, y], (GAMMA[decay], COEFF[decay]), "mpmath")


@lru_cache(maxsize=None)
def _solvable_form(decay: str, which: str):
    """:func:`_root_form` with ``x(v)`` compiled to mpmath: ``(x(v, L, q, nu, y), RootSpec)``."""
    xv, root = _root_form(decay, which)
    return sp.lambdify([v, L, q, nu, y], xv, "mpmath"), root


def _roots(L_, q_, nu_, y_, decay):
    """``(smaller, larger)`` roots of ``g`` on ``(0, y)`` (``smaller = 0`` when ``gamma <= 0``),
    or ``None`` when ``g > 0`` there (the saddle is the only equilibrium): ``(y - x) x^gamma - c``
    rises to its peak at ``x_lo`` and then falls to ``-c``. Each root is its ``RootSpec`` form
    (:func:`_root_form`) solved at 30 digits."""
    subs = {L: L_, q: sp.Float(q_, 30), nu: sp.Float(nu_, 30), y: sp.Float(y_, 30)}   # exact binary values
    with mpmath.workdps(30):
        args = [mpmath.mpf(sp.Float(subs[s_], 30)._mpf_) for s_ in (L, q, nu, y)]   # no float division
        gam, c = _residual_parts(decay)(*args)
        yy = mpmath.mpf(y_)
        x_lo = gam * yy / (1 + gam) if gam > 0 else yy * mpmath.mpf(10) ** -40
        if (yy - x_lo) * x_lo**gam - c <= 0:
            return None
        roots = [xv(root.solve(subs), *args)
                 for xv, root in (_solvable_form(decay, w_) for w_ in ("larger", "smaller")[:1 + (gam > 0)])]
        return (roots[1] if gam > 0 else mpmath.mpf(0)), roots[0]


def equilibrium(L, q, nu, y, decay="decoupled") -> float:
    """DEC-2: the stable non-zero equilibrium ``x*`` of the balanced flow on ``f = (x - y)^2/2``
    (the point an escaping trajectory converges to), or ``0.0`` when the saddle ``x = 0`` is
    the only equilibrium. Decoupled at ``q = 1``: ``min(y, nu^-L)``. Evaluated at 30 digits."""
    L_, q_, nu_, y_, decay = _check(L, q, nu, y, decay)
    if nu_ == 0:
        return y_
    if decay == "decoupled" and q_ == 1:
        return float(min(y_, mpmath.mpf(nu_) ** -L_))      # nu^-L past the float64 range: y
    roots = _roots(L_, q_, nu_, y_, decay)
    return 0.0 if roots is None else float(mpmath.nstr(roots[1], 30))   # correctly rounded


def escape_or_collapse(L, q, nu, y, alpha, decay="decoupled") -> str:
    """DEC-3: ``"escape"`` (``x`` converges to the non-zero equilibrium) or ``"collapse"``
    (``x -> 0``) for the balanced flow from ``w_k(0) = alpha`` on ``f = (x - y)^2/2``."""
    L_, q_, nu_, y_, decay = _check(L, q, nu, y, decay)
    x0 = mpmath.mpf(validate.positive(alpha, "alpha")) ** L_     # no float under- or overflow
    if nu_ == 0 or decay == "decoupled" and q_ == 1:
        return "escape"
    roots = _roots(L_, q_, nu_, y_, decay)
    return "escape" if roots is not None and x0 > roots[0] else "collapse"


def kernel_specs() -> list:
    """The DEC kernels (a provider of :data:`theory.catalog.PROVIDERS`)."""
    _, hgrad, h = decay_mirror()
    _, forms = equilibria()
    box = sp.Piecewise((y, y <= nu ** (-L)), (nu ** (-L), True))
    return [
        KernelSpec("dec1_h_grad", "DEC-1", "Gradient h'(x) = x^(1-m) of the decoupled-decay regularizer.",
                   hgrad, kernel_args(x, L, q), "odd"),
        KernelSpec("dec1_h", "DEC-1", "The decoupled-decay regularizer h(x) = x^(2-m)/(2-m).",
                   h, kernel_args(x, L, q), "even"),
        KernelSpec("dec2_decoupled", "DEC-2", "Stable non-zero equilibrium x* of the balanced flow on "
                   "(x-y)^2/2 with decoupled decay, 1 < q <= 2 (raises if there is none).",
                   forms["decoupled"][0], kernel_args(y, nu, L, q), root=forms["decoupled"][1]),
        KernelSpec("dec2_coupled", "DEC-2", "Stable non-zero equilibrium x* with coupled decay, any q "
                   "(raises if there is none).", forms["coupled"][0], kernel_args(y, nu, L), root=forms["coupled"][1]),
        KernelSpec("dec2_box", "DEC-2", "Equilibrium x* = min(y, nu^-L) with decoupled decay at q = 1.",
                   box, kernel_args(y, nu, L)),
    ]


__all__ = ["decay_mirror", "equilibria", "equilibrium", "escape_collapse", "escape_or_collapse",
           "kernel_specs", "reference_residual"]

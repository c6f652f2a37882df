"""Weight decay on the deep diagonal steepest flow (BAL-2, BAL-3, DEC-1..3) and the
discrete step counts of ESC-4.

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

from functools import lru_cache

import mpmath
import sympy as sp

from numerics import validate

from . import symbols as S
from .deep import balanced
from .derivation import Derivation, check_identity
from .escape import escape_time, escape_time_closed_form
from .kernelspec import KernelSpec, RootSpec, kernel_args
from .symbols import L, d, m, phi, q, x, y

nu = sp.Symbol("nu", positive=True)       # decay strength
eta = sp.Symbol("eta", positive=True)     # step size of a discrete method
v = sp.Symbol("v", real=True)             # root variable of the generated equilibrium solves
p = q / (q - 1)                            # dual exponent (p = inf at q = 1)
DECAYS = ("decoupled", "coupled")
GAMMA = {"decoupled": (m - 1) / (q - 1), "coupled": 1 - 2 / L}
COEFF = {"decoupled": nu ** (p - 1), "coupled": nu}

_wk, _rk = sp.symbols("w_k r_k", positive=True)     # one factor and the product of the others
_POINTS = tuple({L: L_, q: q_, x: sp.Rational(7, 5), y: sp.Rational(5, 2), nu: sp.Rational(2, 3),
                 d: sp.Rational(-3, 4), _wk: sp.Rational(4, 7), _rk: sp.Rational(5, 3)}
                for L_, q_ in ((2, sp.Rational(3, 2)), (2, 2), (3, sp.Rational(5, 4)), (4, 2),
                               (3, sp.Rational(3, 2)), (1, sp.Rational(7, 4))))


def _rate_of_power(wdot) -> sp.Expr:
    return sp.simplify(sp.diff(_wk**q, _wk) * wdot)


@lru_cache(maxsize=None)
def decoupled_balance() -> Derivation:
    """BAL-2: the imbalance decays like ``exp(-q int_0^t nu)`` under decoupled decay."""
    der = Derivation("BAL-2", "Decoupled decay balances exponentially")
    wdot = -phi(d * _rk) - nu * _wk
    der.add(r"Decoupled decay, $\partial F/\partial w_k = d\,r_k$, $r_k = \prod_{j\ne k} w_j$:",
            sp.Eq(sp.Symbol(r"\dot w_k"), wdot))
    target = -q * phi(d * _wk * _rk) - q * nu * _wk**q
    check_identity(_rate_of_power(wdot) - target, _POINTS)
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
    wdot = -phi(d * _rk + nu * _wk)
    der.add(r"Coupled decay (L2 inside the step):", sp.Eq(sp.Symbol(r"\dot w_k"), wdot))
    X = sp.Symbol("x", positive=True)
    target = -q * phi(d * X + nu * _wk**2)
    check_identity(_rate_of_power(wdot) - target.subs(X, _wk * _rk), _POINTS)
    der.add(r"Chain rule, $x = w_k r_k$: the decay enters inside $\phi_q$, with $w_k^2$:",
            sp.Eq(sp.Symbol(r"\frac{d}{dt}|w_k|^q"), target))
    wj = sp.Symbol("w_j", positive=True)
    diff2 = target.subs(q, 2) - target.subs(q, 2).subs(_wk, wj)
    check_identity(diff2 + 2 * nu * (_wk**2 - wj**2), tuple({**pt, X: 2, wj: sp.Rational(1, 3)} for pt in _POINTS))
    der.add(r"At $q = 2$ the difference decays like BAL-2:", sp.Eq(
        sp.Symbol(r"\frac{d}{dt}(w_k^2 - w_j^2)"), -2 * nu * (_wk**2 - wj**2)))
    xd = sp.Symbol(r"x d", real=True)
    diff1 = (target - target.subs(_wk, wj)).subs(q, 1).subs(d * X, xd)
    der.add(r"At $q = 1$:", sp.Eq(sp.Symbol(r"\frac{d}{dt}(|w_k| - |w_j|)"), diff1))
    for xd_ in (-sp.Rational(3, 2), sp.Rational(3, 2)):       # |x d| = 3/2 > nu max w^2 = 2/3
        assert diff1.subs({xd: xd_, nu: sp.Rational(2, 3), _wk: 1, wj: sp.Rational(1, 2)}) == 0
    der.add(r"Both signs equal $\mathrm{sign}(x d)$ while $|x d| > \nu \max_k w_k^2$: the "
            r"differences stay constant (no exponential balancing).",
            sp.Gt(sp.Abs(xd), nu * sp.Symbol(r"\max_k w_k^2")))
    return der


def _phi_of_product(power, u):
    """``phi_q(a^k u) = a^(k(q-1)) phi_q(u)`` for ``a > 0`` (checked), the factor pulled out."""
    a = sp.Symbol("a", positive=True)
    check_identity(phi(a**power * u) - a ** (power * (q - 1)) * phi(u), _POINTS)
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
        check_identity(dual - target, _POINTS)
        der.add(rf"Balanced start, {form} decay: $\dot a = -\phi_q({sp.latex(arg)})"
                rf"{'' if extra == 0 else ' - ' + sp.latex(-extra)}$, $\dot x = L a^{{L-1}}\dot a$ with "
                r"$a = x^{1/L}$ and $\frac{d}{dt}R'(x) = R''(x)\dot x$ (MIR-1's $R''$):",
                sp.Eq(sp.Symbol(r"\frac{d}{dt}R'(x)"), dual))
    der.add(r"Decoupled: a steepest mirror flow plus the gradient of a regularizer $h$:",
            sp.Eq(sp.Symbol(r"\frac{d}{dt}R'(x)"), -phi(d) - nu * hgrad))
    h = x ** (2 - m) / (2 - m)
    check_identity(sp.diff(h, x) - hgrad, _POINTS)
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


def _root_form(decay: str) -> tuple[sp.Expr, RootSpec]:
    """The largest root of ``g`` as ``x(v) = x_lo + (y - x_lo)/(1 + e^-v)`` with
    ``x_lo = max(gamma, 0) y/(1 + max(gamma, 0))`` (where ``(y - x) x^gamma`` peaks):
    the residual ``log c - log(y - x) - gamma log x`` is increasing in ``v``."""
    gam, logc = GAMMA[decay], sp.expand_log(sp.log(COEFF[decay]), force=True)
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
    check_identity(phi(zstar) + nu * a, _POINTS[:1] + tuple({**pt, a: sp.Rational(3, 4)} for pt in _POINTS))
    der.add(r"Decoupled, $q > 1$: $\phi_q(z) = -\nu w$ at rest, so $z = -\phi_p(\nu w)$, "
            r"$p = q/(q-1)$: the stationary points of $F + \frac{\nu^{p-1}}{p}\|w\|_p^p$,",
            sp.Eq(z + nu ** (p - 1) * sp.sign(a) * sp.Abs(a) ** (p - 1), 0))
    der.add(r"Coupled, every $q$: $\phi_q(z + \nu w) = 0$: the stationary points of "
            r"$F + \frac{\nu}{2}\|w\|_2^2$,", sp.Eq(z + nu * a, 0))
    for decay, wterm in (("decoupled", nu ** (p - 1) * a ** (p - 1)), ("coupled", nu * a)):
        bal = sp.powsimp(sp.expand(((d * x / a + wterm) * a / x).subs(a, x ** (1 / L))), force=True)
        target = d + COEFF[decay] * x ** (-GAMMA[decay])
        check_identity(bal - target, _POINTS)
        der.add(rf"Balanced ($z = d\,x/a$, $a = x^{{1/L}}$), {decay}:", sp.Eq(target, 0))
    check_identity(GAMMA["decoupled"] - (1 - p / L), _POINTS)
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
    pts = tuple({**pt, a: sp.Rational(3, 4)} for pt in _POINTS)
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
    check_identity(sp.diff(tc, a) - 1 / (nu * a) ** (q - 1), _POINTS[:1] + tuple(
        {**pt, a: sp.Rational(3, 4)} for pt in _POINTS if pt[q] != 2))
    der.add(r"Near $a = 0$ the coupled field is $\dot a \approx -(\nu a)^{q-1}$: the factors reach "
            r"0 in finite time when $q < 2$,", sp.Eq(sp.Symbol("t_c"), tc))
    return der, thresh


@lru_cache(maxsize=None)
def discrete_steps() -> tuple[Derivation, sp.Expr, sp.Expr]:
    """ESC-4: ``(derivation, largest stable GD step, first-order step-count correction)``."""
    der = Derivation("ESC-4", "Discrete steps: GD at its largest stable step vs SignGD")
    for L_ in (1, 2, 3, 4):
        ws = sp.symbols(f"w1:{L_ + 1}", positive=True)
        F = (sp.Mul(*ws) - y) ** 2 / 2
        H = sp.hessian(F, ws).subs({w_: y ** sp.Rational(1, L_) for w_ in ws})
        lam = max(H.eigenvals(), key=lambda e: e.subs(y, 2))
        assert sp.simplify(lam - L_ * y ** (2 * (L_ - 1) / sp.Integer(L_))) == 0
    lam_max = L * y ** (2 * (L - 1) / L)
    der.add(r"Hessian of $F = (\prod_k w_k - y)^2/2$ at the balanced solution: $r r^\top$ with "
            r"$r_k = y^{(L-1)/L}$ (checked for $L \le 4$), so", sp.Eq(sp.Symbol(r"\lambda_{max}"), lam_max))
    step = 2 / lam_max
    der.add(r"GD is stable there iff", sp.Le(eta, step))
    a, ff = sp.Symbol("a", positive=True), sp.Function("f")
    f1 = sp.Symbol("f_1")
    mod = ff(a) + eta * f1
    # time-eta map of the modified field up to eta^2 must equal Euler's a + eta f(a)
    flow_map = a + eta * mod + eta**2 / 2 * mod * sp.diff(mod, a)
    f1_sol = sp.solve(sp.expand(flow_map - (a + eta * ff(a))).coeff(eta, 2), f1)[0]
    der.add(r"GD on the balanced factor, $a_{n+1} = a_n + \eta f(a_n)$, $f(a) = (y - a^L)a^{L-1}$, "
            r"is the time-$\eta$ map of $\dot a = f + \eta f_1 + O(\eta^2)$ with (ours)",
            sp.Eq(f1, f1_sol))
    per_step = sp.series(1 / (ff(a) + eta * f1_sol), eta, 0, 2).removeO()
    correction = sp.simplify(sp.expand(per_step).coeff(eta, 1) * eta)
    der.add(r"so the steps from $a_0$ to $a_1$ are $N = \int da/(\eta(f + \eta f_1))$: per unit "
            r"of $a$, to first order in $\eta$, the flow's $1/(\eta f)$ plus",
            sp.Eq(sp.Symbol(r"\frac{1}{\eta(f + \eta f_1)} - \frac{1}{\eta f}"), correction / eta))
    a0, a1 = sp.symbols("a_0 a_1", positive=True)
    fa = (y - a**L) * a ** (L - 1)
    extra = sp.log(fa.subs(a, a1) / fa.subs(a, a0)) / 2
    check_identity(sp.diff(extra, a1) - (correction / eta).subs(ff(a), fa).doit().subs(a, a1),
                   tuple({**pt, a0: sp.Rational(1, 10), a1: sp.Rational(1, 2)} for pt in _POINTS))
    der.add(r"Integrated ($T$ the ESC-1 time at $q = 2$): $N_{GD} \approx T/\eta$ plus",
            sp.Eq(sp.Symbol(r"N_{GD} - T/\eta"), extra))
    closed = escape_time_closed_form()[2]
    tsign = sp.simplify(sp.powsimp(closed.subs(q, 1).rewrite(sp.Integral).doit(), force=True))
    der.add(r"SignGD moves every factor by exactly $\eta$ per step, so with ESC-1 at $q = 1$ "
            r"(bounded as $\alpha \to 0$)", sp.Eq(sp.Symbol(r"N_{sign}"),
                                                  sp.ceiling(sp.Symbol(r"T_{q=1}") / eta)))
    der.add(r"where", sp.Eq(sp.Symbol(r"T_{q=1}"), tsign))
    return der, step, extra


# ------------------------------------------------------------------------------ public API

def schedule(text: str) -> tuple[sp.Expr, sp.Expr]:
    """A decay schedule ``s(t)`` from safe text (e.g. ``"1/(1 + t)"``) and ``int_0^t s``,
    both SymPy in ``theory.symbols.t`` (BAL-2 with ``nu(t) = nu s(t)``)."""
    from .parse import parse_expression

    expr = parse_expression(text, {"t": S.t}, name="schedule")
    u = sp.Symbol("u", nonnegative=True)
    integral = sp.simplify(sp.integrate(expr.subs(S.t, u), (u, 0, S.t)))
    if integral.has(sp.Integral):
        raise ValueError(f"schedule: SymPy finds no closed-form integral of {expr}")
    return expr, integral


def _check(L_, q_, nu_, y_, decay):
    return (validate.depth(L_), validate.exponent_q(q_), validate.nonnegative(nu_, "nu"),
            validate.positive(y_, "y"), validate.choice(decay, DECAYS, "decay"))


def _residual_parts(L_, q_, nu_, y_, decay):
    """``(gamma, c)`` of ``g(x) = x - y + c x^(-gamma)`` as mpmath numbers (30 digits)."""
    subs = {L: L_, q: sp.Float(q_, 30), nu: sp.Float(nu_, 30), y: sp.Float(y_, 30)}   # exact binary values
    return mpmath.mpf(str(sp.N(GAMMA[decay].subs(subs), 30))), mpmath.mpf(str(sp.N(COEFF[decay].subs(subs), 30)))


def _roots(L_, q_, nu_, y_, decay):
    """``(smaller, larger)`` roots of ``g`` on ``(0, y)`` (``smaller = 0`` when ``gamma <= 0``),
    or ``None`` when ``g > 0`` there (the saddle is the only equilibrium). Solved for the zeros
    of ``(y - x) x^gamma - c``, which rises to its peak at ``x_lo`` and then falls to ``-c``."""
    with mpmath.workdps(30):
        gam, c = _residual_parts(L_, q_, nu_, y_, decay)
        yy = mpmath.mpf(y_)

        def h(xx):
            return (yy - xx) * xx**gam - c

        def bisect(lo, hi, rising):          # h monotone on [lo, hi]: 110 halvings in log x
            for _ in range(110):
                mid = mpmath.sqrt(lo * hi)
                if (h(mid) < 0) == rising:
                    lo = mid
                else:
                    hi = mid
            return mpmath.sqrt(lo * hi)

        x_lo = gam * yy / (1 + gam) if gam > 0 else yy * mpmath.mpf(10) ** -40
        if h(x_lo) <= 0:
            return None
        big = bisect(x_lo, yy, rising=False)
        small = bisect(x_lo * mpmath.mpf(10) ** -40, x_lo, rising=True) if gam > 0 else mpmath.mpf(0)
        return small, big


def equilibrium(L, q, nu, y, decay="decoupled") -> float:
    """DEC-2: the stable non-zero equilibrium ``x*`` of the balanced flow on ``f = (x - y)^2/2``
    (the point an escaping trajectory converges to), or ``0.0`` when the saddle ``x = 0`` is
    the only equilibrium. Decoupled at ``q = 1``: ``min(y, nu^-L)``. Evaluated at 30 digits."""
    L_, q_, nu_, y_, decay = _check(L, q, nu, y, decay)
    if nu_ == 0:
        return y_
    if decay == "decoupled" and q_ == 1:
        return float(min(y_, nu_ ** (-L_)))
    roots = _roots(L_, q_, nu_, y_, decay)
    return 0.0 if roots is None else float(roots[1])


def escape_or_collapse(L, q, nu, y, alpha, decay="decoupled") -> str:
    """DEC-3: ``"escape"`` (``x`` converges to the non-zero equilibrium) or ``"collapse"``
    (``x -> 0``) for the balanced flow from ``w_k(0) = alpha`` on ``f = (x - y)^2/2``."""
    L_, q_, nu_, y_, decay = _check(L, q, nu, y, decay)
    x0 = validate.positive(alpha, "alpha") ** L_
    if nu_ == 0 or decay == "decoupled" and q_ == 1:
        return "escape"
    roots = _roots(L_, q_, nu_, y_, decay)
    return "escape" if roots is not None and x0 > roots[0] else "collapse"


def largest_stable_step(L, y=1.0) -> float:
    """ESC-4: ``2 / lambda_max`` of the Hessian at the balanced solution of the reference problem."""
    L_, y_ = validate.depth(L), validate.positive(y, "y")
    return float(sp.N(discrete_steps()[1].subs({S.L: L_, S.y: sp.nsimplify(y_)}), 30))


def step_count(L, alpha, method="gd", y=1.0, target=0.5, eta=None) -> float:
    """ESC-4: steps from ``w_k = alpha`` until ``x >= target`` on the reference problem.

    ``"gd"``: at step ``eta`` (default: the largest stable step), the first-order estimate
    ``T_GF/eta + log(f(a1)/f(a0))/2``; the integer count lies within about one step of it.
    ``"sign"``: SignGD at step ``eta`` (required), exactly ``ceil((target^(1/L) - alpha)/eta)``.
    """
    L_ = validate.depth(L)
    validate.choice(method, ("gd", "sign"), "method")
    if method == "sign":
        if eta is None:
            raise ValueError("eta must be given for method 'sign' (SignGD has no stability limit)")
        eta_ = validate.positive(eta, "eta")
        t_sign = escape_time(L_, 1.0, alpha, y, target)
        return float(mpmath.ceil(mpmath.mpf(t_sign) / eta_))
    eta_ = largest_stable_step(L_, y) if eta is None else validate.positive(eta, "eta")
    T = escape_time(L_, 2.0, alpha, y, target)
    a0, a1 = sp.symbols("a_0 a_1", positive=True)
    extra = discrete_steps()[2].subs({S.L: L_, S.y: sp.nsimplify(validate.positive(y, "y")),
                                      a0: sp.nsimplify(alpha), a1: sp.Float(target, 30) ** sp.Rational(1, L_)})
    return float(mpmath.mpf(T) / eta_ + mpmath.mpf(str(sp.N(extra, 30))))


def kernel_specs() -> list:
    """The DEC/ESC-4 kernels (a provider of :data:`theory.catalog.PROVIDERS`)."""
    _, hgrad, h = decay_mirror()
    _, forms = equilibria()
    _, step, extra = discrete_steps()
    a0, a1 = sp.symbols("a_0 a_1", positive=True)
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
        KernelSpec("esc4_gd_step", "ESC-4", "Largest stable GD step 2/lambda_max at the balanced solution.",
                   step, kernel_args(y, L)),
        KernelSpec("esc4_gd_extra", "ESC-4", "First-order excess of GD steps over T/eta from a0 to a1.",
                   extra, kernel_args(a0, a1, y, L)),
    ]


__all__ = ["kernel_specs", "schedule", "decoupled_balance", "coupled_balance", "decay_mirror", "equilibria", "escape_collapse",
           "discrete_steps", "reference_residual", "equilibrium", "escape_or_collapse",
           "largest_stable_step", "step_count", "nu", "DECAYS"]

"""Implicit bias (IB-1..3): where a steepest mirror flow ends up, derived step by step.

* IB-1  ``q = 2``, underdetermined ``X x = y``: ``d/dt R'(x) = -X^T r / N`` stays in the row
        space of ``X``, so a converging run ends at ``argmin { D_R(x, x0) : X x = y }``, whose KKT
        conditions are ``R'(x) = R'(x0) + X^T lambda``, i.e. ``x = (R')^-1(R'(x0) + X^T lambda)``.
        The inverse mirror maps ``(R')^-1`` are derived here: MIR-1 (closed form for every
        ``L, q``), MIR-2 at ``q = 2`` (``c sinh(2 theta) / 2``) and the two-branch model (the
        difference of two MIR-1 inverse maps; ``2 alpha^2 sinh(2 theta)`` at ``L = q = 2``).
* IB-2  ``q < 2``, one sample ``z``: ``phi_q(z_i r) = phi_q(z_i) phi_q(r)``, so
        ``R'(x_inf) = R'(x0) + mu phi_q(z)`` with ``mu`` fixed by ``<z, x_inf> = y`` (monotone);
        a coordinate whose dual reaches ``R'(0)`` (finite iff ``m < 1``) stops at the saddle 0.
* IB-3  ``phi_q`` is the duality map of ``l_p`` (``p = q/(q-1)``), and the cheapest
        factorization of ``x`` has ``||w||_p^p = L ||x||_{p/L}^{p/L}``: the margin geometry is the
        ``l_{p/L}`` (quasi-)norm, ``l_1`` exactly when ``m = 1``, ``l_inf`` at ``q = 1``.
"""

from __future__ import annotations

from functools import lru_cache

import sympy as sp

from numerics import validate

from . import deep, twobranch
from . import symbols as S
from .derivation import Derivation, check_identity
from .kernelspec import KernelSpec, kernel_args
from .symbols import L, alpha, beta, c, m, phi, q, x

theta = sp.Symbol("theta", real=True)      # a dual coordinate R'(x)
mu = sp.Symbol("mu", real=True)            # IB-2 multiplier
p = sp.Symbol("p", positive=True)          # dual exponent q/(q-1)


@lru_cache(maxsize=None)
def bregman_kkt() -> Derivation:
    """IB-1: the mirror flow at ``q = 2`` integrates to the KKT conditions of the Bregman program."""
    der = Derivation("IB-1", "Gradient flow ends at the Bregman projection")
    N_, n_ = 2, 3
    X = sp.Matrix(N_, n_, lambda i, j: sp.Symbol(f"X_{i + 1}{j + 1}", real=True))
    xs = sp.Matrix([sp.Symbol(f"x_{j + 1}", real=True) for j in range(n_)])
    x0s = sp.Matrix([sp.Symbol(f"x_{{0,{j + 1}}}", real=True) for j in range(n_)])
    ys = sp.Matrix([sp.Symbol(f"y_{i + 1}", real=True) for i in range(N_)])
    lams = sp.Matrix([sp.Symbol(f"lambda_{i + 1}", real=True) for i in range(N_)])
    R, Rp = sp.Function("R"), sp.Function("R'")
    D = sum(R(a) - R(b) - Rp(b) * (a - b) for a, b in zip(xs, x0s))
    der.add(r"Bregman divergence of a separable potential (shown for $N = 2$ samples, $n = 3$):",
            sp.Eq(sp.Symbol("D_R(x, x_0)"), D))
    lag = D - (lams.T * (X * xs - ys))[0]
    grad = sp.Matrix([sp.diff(lag, v) for v in xs]).replace(
        lambda e: isinstance(e, sp.Derivative), lambda e: Rp(e.variables[0]))
    kkt = sp.Matrix([Rp(a) - Rp(b) for a, b in zip(xs, x0s)]) - X.T * lams
    assert sp.simplify(grad - kkt) == sp.zeros(n_, 1)
    der.add(r"Stationarity of $D_R(x, x_0) - \lambda^T(Xx - y)$: $R'(x) = R'(x_0) + X^T\lambda$:",
            sp.Eq(grad, sp.zeros(n_, 1)))
    r = sp.Matrix([sp.Symbol(f"r_{i + 1}", real=True) for i in range(N_)])
    z = sp.Symbol("z", real=True)
    check_identity(phi(z, 2) - z)
    der.add(r"The flow: $\frac{d}{dt}R'(x) = -\phi_2(X^T r)/N = -X^T r/N$ since $\phi_2(z) = z$, so "
            r"$R'(x(t)) - R'(x_0) = X^T\lambda(t)$ with $\lambda(t) = -\int_0^t r/N$; a limit with "
            r"$X x_\infty = y$ satisfies the KKT conditions, and strict convexity makes it the "
            r"unique minimizer:", sp.Eq(sp.Matrix([sp.Symbol(rf"\dot\theta_{j + 1}") for j in range(n_)]),
                                        -X.T * r / sp.Symbol("N")))
    Xc, rc = sp.Matrix([[1, 0, 1], [0, 1, 1]]), sp.Matrix([1, 1])
    g = (Xc.T * rc).applyfunc(lambda v: phi(v, sp.Rational(3, 2)))
    assert g[2] != g[0] + g[1]     # not in the row space {(a, b, a + b)}
    der.add(r"For $q \ne 2$ the dual velocity $\phi_q(X^T r)$ leaves the row space: with "
            r"$X = \begin{pmatrix}1&0&1\\0&1&1\end{pmatrix}$, $r = (1, 1)$, $q = 3/2$ it is",
            sp.Eq(sp.Matrix([[sp.Symbol(rf"\phi_{{3/2}}(X^T r)_{j + 1}") for j in range(n_)]]), g.T))
    return der


def _power_branch(b):
    return (L * b * theta) ** (1 / b)


def _boxcox_branch(b):
    """``L b theta`` stays one product and ``log(1 + L b theta)`` prints as log1p."""
    return sp.exp(sp.log(1 + L * b * theta) / b)


@lru_cache(maxsize=None)
def balanced_dual_map() -> tuple[Derivation, sp.Expr]:
    """The inverse of the MIR-1 ``R'`` on ``x > 0``: ``theta -> x`` (``R'`` normalized as in MIR-1)."""
    der = Derivation("IB-1", "Inverse mirror map of the balanced potential")
    grad = deep.balanced().grad
    der.add(r"MIR-1 (on $x > 0$):", sp.Eq(sp.Symbol("R'(x)"), grad))
    b_ = sp.Symbol("beta", nonzero=True)
    sols = [sp.solve(e - theta, x)[0] for e in (x**b_ / (L * b_), (x**b_ - 1) / (L * b_), sp.log(x) / L)]
    der.add(r"SymPy solves $R'(x) = \theta$ for the power ($m < 1$), Box-Cox ($m > 1$) and logarithmic "
            r"($m = 1$) branches:", sp.Eq(sp.Matrix([x] * 3), sp.Matrix(sols)))
    bp, bn = sp.Symbol("b", positive=True), sp.Symbol("b", negative=True)
    check_identity(sp.powdenest(_power_branch(bp) ** bp, force=True) / (L * bp) - theta)
    check_identity(sp.powdenest(_boxcox_branch(bn) ** bn, force=True) - 1 - L * bn * theta)
    check_identity(sp.log(sp.exp(L * theta)) / L - theta)
    inv = sp.Piecewise((_power_branch(beta), m < 1), (_boxcox_branch(beta), m > 1), (sp.exp(L * theta), True))
    der.add(r"Each branch checked by SymPy; written with $\beta$ unexpanded (no cancellation in "
            r"$L\beta\theta$) and $\log(1 + L\beta\theta)$ as log1p. The range of $R'$ on $x > 0$ is "
            r"$(0, \infty)$ for $m < 1$, $(-\infty, 1/(L|\beta|))$ for $m > 1$ and $\mathbb{R}$ at $m = 1$:",
            sp.Eq(sp.Symbol(r"(R')^{-1}(\theta)"), inv))
    return der, inv


@lru_cache(maxsize=None)
def hyperbolic_dual_map() -> tuple[Derivation, sp.Expr]:
    """MIR-2 at ``q = 2``: ``R' = asinh(2x/c)/2`` (hyperbolic entropy), inverse ``c sinh(2 theta)/2``."""
    der = Derivation("IB-1", "Inverse mirror map of the lambda-balanced L = 2 potential at q = 2")
    hess = deep.lambda_balanced_l2().hess.subs(q, 2)
    grad = sp.integrate(hess, (x, 0, x))
    der.add(r"MIR-2 at $q = 2$: $R'(x) = \int_0^x (c^2 + 4t^2)^{-1/2}\,dt$:", sp.Eq(sp.Symbol("R'(x)"), grad))
    inv = sp.solve(sp.Eq(grad, theta), x)[0]
    check_identity(grad.subs(x, inv) - theta, tuple({theta: t_, c: sp.Rational(3, 5)} for t_ in (
        sp.Rational(-7, 3), sp.Rational(1, 9), 2)))
    der.add(r"Its inverse (odd, defined on all of $\mathbb{R}$):", sp.Eq(sp.Symbol(r"(R')^{-1}(\theta)"), inv))
    return der, inv


@lru_cache(maxsize=None)
def two_branch_dual_map() -> tuple[Derivation, sp.Expr]:
    """Two-branch ``x = A - B`` from ``u = v = alpha``: ``x = psi(G(a) + theta) - psi(G(a) - theta)``."""
    der = Derivation("IB-1", "Inverse mirror map of the two-branch potential")
    _, psi = balanced_dual_map()
    a = alpha**L
    G = deep.balanced().grad
    der.add(r"Each branch is a balanced MIR-1 flow, $G(A) = G(a) + \theta$ and $G(B) = G(a) - \theta$ "
            r"($a = \alpha^L$, $\theta = R'(x)$ of MIR-1b), so with $\psi = G^{-1}$:",
            sp.Eq(sp.Symbol(r"(R')^{-1}(\theta)"), sp.Symbol(r"\psi(G(a) + \theta) - \psi(G(a) - \theta)")))
    at22 = {L: 2, q: 2}
    Ga = G.subs(x, a).subs(at22)
    inv22 = sp.simplify(psi.subs(at22).subs(theta, Ga + theta) - psi.subs(at22).subs(theta, Ga - theta))
    closed = 2 * alpha**2 * sp.sinh(2 * theta)
    check_identity((inv22 - closed).rewrite(sp.exp))
    der.add(r"At $L = q = 2$ ($G = \log/2$) this is the inverse of the hyperbolic entropy:",
            sp.Eq(sp.Symbol(r"(R')^{-1}(\theta)"), closed))
    ent = twobranch.two_branch().derivation.steps[-1].expr.rhs
    check_identity(ent.subs(x, closed) - theta, ({theta: sp.Rational(2, 3), alpha: sp.Rational(1, 3)},
                                                  {theta: sp.Rational(-3, 2), alpha: 2}))
    der.add(r"and MIR-1b's $R'(x) = \operatorname{asinh}(x / (2\alpha^2))/2$ maps it back to $\theta$.",
            sp.Eq(ent.subs(x, closed), theta))
    der.add(r"For $m < 1$ a branch whose dual reaches $G(0) = 0$ stops at its saddle $0$ ($L \ge 2$): "
            r"the branch map is clamped, $\psi(\max(\cdot, 0))$.", sp.Eq(sp.Symbol("B"), 0))
    return der, closed


@lru_cache(maxsize=None)
def one_sample_bias() -> Derivation:
    """IB-2: one sample ``z``: ``R'(x_inf) = R'(x0) + mu phi_q(z)``, ``mu`` fixed by ``<z, x> = y``."""
    der = Derivation("IB-2", "Steepest flows with one sample")
    a, b, z, r = (sp.Symbol(s_, real=True) for s_ in ("a", "b", "z", "r"))
    pts = tuple({a: a_, b: b_, q: q_} for a_, b_, q_ in (
        (sp.Rational(3, 2), sp.Rational(-2, 7), sp.Rational(5, 4)), (-3, -5, sp.Rational(3, 2)),
        (sp.Rational(-1, 3), 4, sp.Rational(7, 4)), (0, 2, sp.Rational(3, 2))))
    check_identity(phi(a * b) - phi(a) * phi(b), pts)
    der.add(r"$\phi_q$ is multiplicative:", sp.Eq(phi(a * b), phi(a) * phi(b)))
    der.add(r"One sample, $f(x) = (\langle z, x\rangle - y)^2/2$, $\nabla f = z\,r$ with "
            r"$r = \langle z, x\rangle - y$, so every dual moves along $\phi_q(z)$:",
            sp.Eq(sp.Symbol(r"\frac{d}{dt}R'(x_i)"), -phi(z) * phi(r)))
    der.add(r"Integrating, with the scalar $\mu(t) = -\int_0^t \phi_q(r)\,ds$:",
            sp.Eq(sp.Symbol(r"R'(x_i(t))"), sp.Symbol(r"R'(x_{0,i})") + mu * phi(z)))
    check_identity(z * phi(z) - sp.Abs(z) ** q, tuple({z: z_, q: q_} for z_, q_ in (
        (sp.Rational(-5, 3), sp.Rational(5, 4)), (sp.Rational(7, 2), sp.Rational(3, 2)), (0, 2))))
    der.add(r"$\dot r = -\phi_q(r)\sum_i |z_i|^q/R''(x_i)$: $r$ keeps its sign and $|r|$ decreases, so "
            r"$\mu$ is monotone; and $\frac{d}{d\mu}\langle z, x\rangle = \sum_i z_i\phi_q(z_i)/R''(x_i)$ "
            r"with", sp.Eq(z * phi(z), sp.Abs(z) ** q))
    der.add(r"so $h(\mu) = \langle z, x(\mu)\rangle - y$ is increasing and $\mu_\infty$ is its unique root. "
            r"For $L \ge 2$ and $m < 1$, $R'(0) = 0$ is finite: a coordinate whose dual reaches it is "
            r"on the saddle and stops (balanced factors reach 0 together), so with $s_i$ the sign "
            r"of $x_{0,i}$", sp.Eq(sp.Symbol(r"x_{\infty,i}"), sp.Symbol(
                r"s_i\,(R')^{-1}\!\left(\max(s_i(R'(x_{0,i}) + \mu\,\phi_q(z_i)),\ 0)\right)")))
    der.add(r"The naive Bregman prediction moves the dual along $z$ instead of $\phi_q(z)$; the two "
            r"agree only at $q = 2$ (or when $|z_i|$ is constant).",
            sp.Eq(sp.Symbol(r"R'(x_{\mathrm{Bregman}})"), sp.Symbol(r"R'(x_0)") + mu * z))
    return der


@lru_cache(maxsize=None)
def margin_geometry() -> tuple[Derivation, sp.Expr]:
    """IB-3: the margin geometry ``l_{p/L}``, returned as the reciprocal exponent ``L/p = L(q-1)/q``
    (``0`` at ``q = 1``: the ``l_inf`` norm)."""
    der = Derivation("IB-3", "Margin geometry of steepest flows on deep diagonal models")
    g = sp.Symbol("g", positive=True)
    pq = q / (q - 1)
    check_identity((g ** (q - 1)) ** pq - g**q, tuple({g: sp.Rational(7, 3), q: q_} for q_ in (
        sp.Rational(5, 4), sp.Rational(3, 2), sp.Rational(7, 4), 2)))
    der.add(r"$\phi_q$ is the duality map of $\ell_p$, $p = q/(q-1)$: "
            r"$\|\phi_q(g)\|_p^p = \|g\|_q^q = \langle g, \phi_q(g)\rangle$, so "
            r"$\dot w = -\phi_q(\nabla F)$ is steepest descent for $\|w\|_p$:",
            sp.Eq(sp.Abs(g) ** ((q - 1) * pq), sp.Abs(g) ** q, evaluate=False))
    ws = sp.symbols("w_1:4", positive=True)
    nu = sp.Symbol("nu", positive=True)
    lag = sum(w_**p for w_ in ws) - nu * (sp.Mul(*ws) - x)
    bal = {w_: x ** sp.Rational(1, 3) for w_ in ws}
    nu_ = sp.solve(sp.diff(lag, ws[0]).subs(bal), nu)[0]
    assert all(sp.simplify(sp.diff(lag, w_).subs(bal).subs(nu, nu_)) == 0 for w_ in ws)
    der.add(r"Among the factorizations $\prod_k w_k = x$ the balanced one is stationary for "
            r"$\sum_k w_k^p$ (Lagrange, shown at $L = 3$), with value $L\,x^{p/L}$:",
            sp.Eq(sp.Symbol(r"\min_{\prod w_k = x} \sum_k w_k^p"), sp.simplify(
                sum(w_**p for w_ in ws).subs(bal))))
    r = p / L
    der.add(r"Hence $\|w\|_p^p = L\,\|x\|_{p/L}^{p/L}$ and the max-margin problem in $w$ is the "
            r"$\ell_{p/L}$ max-margin problem in $x$, with exponent", sp.Eq(sp.Symbol("r"), r.subs(p, pq)))
    q1 = sp.solve(sp.Eq(r.subs(p, pq), 1), q)[0]
    assert sp.simplify(m.subs(q, q1) - 1) == 0
    der.add(r"$r = 1$ ($\ell_1$) exactly when $m = 1$:", sp.Eq(q, q1))
    der.add(r"and $r \to \infty$ ($\ell_\infty$) as $q \to 1^+$:",
            sp.Eq(sp.Limit(r.subs(p, pq), q, 1, "+"), sp.limit(r.subs(p, pq), q, 1, "+")))
    inverse = sp.simplify(1 / r.subs(p, pq))
    der.add(r"The kernel carries the reciprocal (0 at $q = 1$):", sp.Eq(1 / sp.Symbol("r"), inverse))
    return der, inverse


def margin_exponent(L, q) -> float:
    """IB-3: the exponent ``r = p/L`` of the ``l_r`` margin geometry (``inf`` at ``q = 1``)."""
    L_, q_ = validate.depth(L), validate.exponent_q(q)
    inv = float(margin_geometry()[1].subs({S.L: L_, S.q: sp.nsimplify(q_)}))
    return float("inf") if inv == 0 else 1.0 / inv


def kernel_specs():
    """IB kernels for the catalog: the inverse mirror maps and the margin exponent."""
    return [
        KernelSpec("ib1_dual_mir1", "IB-1", "(R')^-1(theta) of the balanced (MIR-1) potential on x > 0.",
                   balanced_dual_map()[1], kernel_args(theta, L, q)),
        KernelSpec("ib1_dual_mir2", "IB-1", "(R')^-1(theta) of the lambda-balanced L = 2 potential at "
                   "q = 2 (hyperbolic entropy).", hyperbolic_dual_map()[1], kernel_args(theta, c), "odd"),
        KernelSpec("ib3_inverse_exponent", "IB-3", "1/r = L(q-1)/q of the l_r margin geometry "
                   "(0 at q = 1: l_inf).", margin_geometry()[1], kernel_args(L, q)),
    ]


__all__ = ["bregman_kkt", "balanced_dual_map", "hyperbolic_dual_map", "two_branch_dual_map",
           "one_sample_bias", "margin_geometry", "margin_exponent"]

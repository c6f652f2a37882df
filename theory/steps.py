"""ESC-4: discrete steps from the saddle, GD at its largest stable step vs SignGD.

GD's largest stable step is ``2/(L y^(2(L-1)/L))`` and its step count
``T_GF/eta + log(f(a1)/f(a0))/2`` (first-order modified equation, ours); SignGD takes
``ceil((x1^(1/L) - alpha)/eta)`` steps exactly.
"""

from __future__ import annotations

from functools import lru_cache

import mpmath
import sympy as sp

from numerics import validate

from . import symbols as S
from .decay import SAMPLE_POINTS, eta
from .derivation import Derivation, check_identity
from .escape import escape_time, escape_time_closed_form
from .kernelspec import KernelSpec, kernel_args
from .symbols import L, q, y


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
                   tuple({**pt, a0: sp.Rational(1, 10), a1: sp.Rational(1, 2)} for pt in SAMPLE_POINTS))
    der.add(r"Integrated ($T$ the ESC-1 time at $q = 2$): $N_{GD} \approx T/\eta$ plus",
            sp.Eq(sp.Symbol(r"N_{GD} - T/\eta"), extra))
    closed = escape_time_closed_form()[2]
    tsign = sp.simplify(sp.powsimp(closed.subs(q, 1).rewrite(sp.Integral).doit(), force=True))
    der.add(r"SignGD moves every factor by exactly $\eta$ per step, so with ESC-1 at $q = 1$ "
            r"(bounded as $\alpha \to 0$)", sp.Eq(sp.Symbol(r"N_{sign}"),
                                                  sp.ceiling(sp.Symbol(r"T_{q=1}") / eta)))
    der.add(r"where", sp.Eq(sp.Symbol(r"T_{q=1}"), tsign))
    return der, step, extra


def largest_stable_step(L, y=1.0) -> float:
    """ESC-4: ``2 / lambda_max`` of the Hessian at the balanced solution of the reference problem."""
    L_, y_ = validate.depth(L), validate.positive(y, "y")
    return float(sp.N(discrete_steps()[1].subs({S.L: L_, S.y: sp.Float(y_, 30)}), 30))


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
    extra = discrete_steps()[2].subs({S.L: L_, S.y: sp.Float(validate.positive(y, "y"), 30),   # exact binary
                                      a0: sp.Float(alpha, 30), a1: sp.Float(target, 30) ** sp.Rational(1, L_)})
    return float(mpmath.mpf(T) / eta_ + mpmath.mpf(str(sp.N(extra, 30))))


def kernel_specs() -> list:
    """The ESC-4 kernels (a provider of :data:`theory.catalog.PROVIDERS`)."""
    _, step, extra = discrete_steps()
    a0, a1 = sp.symbols("a_0 a_1", positive=True)
    return [
        KernelSpec("esc4_gd_step", "ESC-4", "Largest stable GD step 2/lambda_max at the balanced solution.",
                   step, kernel_args(y, L)),
        KernelSpec("esc4_gd_extra", "ESC-4", "First-order excess of GD steps over T/eta from a0 to a1.",
                   extra, kernel_args(a0, a1, y, L)),
    ]


__all__ = ["discrete_steps", "kernel_specs", "largest_stable_step", "step_count"]

"""Two-branch deep diagonal ``x = prod_k u_k - prod_k v_k`` from ``u_k = v_k = alpha``.

Each branch is a balanced deep diagonal (MIR-1) driven by ``+d`` and ``-d``, so with
``G = R'_MIR-1`` (Box-Cox normalized) the branch outputs ``A = prod u``, ``B = prod v``
satisfy ``G(A) + G(B) = 2 G(alpha^L)`` and ``A - B = x``. The potential of ``x`` is

    R'(x) = (G(A) - G(B)) / 2,     1/R''(x) = L (A^m + B^m),

implicit in general (generated root solve in ``v`` with ``min(A, B) = exp(v)``) and the
hyperbolic entropy ``R'(x) = asinh(x / (2 alpha^2)) / 2`` at ``L = 2, q = 2``.
For ``m < 1`` the smaller branch reaches 0 at ``|x| = 2^(1/beta) alpha^L`` (beyond it a
factor changes sign and the potential ends; the root solve then raises).
"""

from __future__ import annotations

from functools import lru_cache

import sympy as sp

from .derivation import Derivation, check_identity
from .kernelspec import RootSpec
from .potentials import Potential
from .special import BoxCox
from .symbols import L, alpha, beta, m, q, x


def _G(z):
    return BoxCox(z, beta) / L


@lru_cache(maxsize=None)
def two_branch() -> Potential:
    der = Derivation("MIR-1b", "Two-branch deep diagonal potential")
    A, B = sp.symbols("A B", positive=True)
    der.add(r"Each branch is a balanced deep diagonal: $\frac{d}{dt}G(A) = -\phi_q(d)$, "
            r"$\frac{d}{dt}G(B) = +\phi_q(d)$ with $G$ the MIR-1 $R'$, so",
            sp.Eq(_G(A) + _G(B), 2 * _G(alpha**L)))
    der.add(r"The dual of $x = A - B$ is $R'(x) = (G(A) - G(B))/2$, and "
            r"$1/R'' = 1/G'(A) + 1/G'(B)$:", sp.Eq(1 / sp.Symbol("R''(x)"), L * (A**m + B**m)))
    v = sp.Symbol("v", real=True)
    small, big = sp.exp(v), x + sp.exp(v)
    residual = _G(big) + _G(small) - 2 * _G(alpha**L)
    der.add(r"Root variable $v$ with $\min(A, B) = e^v$ (residual increasing in $v$; "
            r"$v \le L\log\alpha$):", sp.Eq(residual, 0))
    hess = 1 / (L * (big**m + small**m))
    # (G(A) - G(B))/2 = B^beta BoxCox(A/B, beta) / (2L): no cancellation for small |x|
    grad = sp.exp(beta * v) * BoxCox(1 + x * sp.exp(-v), beta) / (2 * L)
    check_identity(grad - (_G(big) - _G(small)) / 2, tuple(
        {L: L_, q: q_, x: sp.Rational(3, 7), v: sp.Rational(-1, 3)}
        for L_, q_ in ((1, 1), (2, 2), (3, sp.Rational(3, 2)), (4, sp.Rational(5, 4)))))
    root = RootSpec(v, residual, L * sp.log(alpha))
    # L = 2, q = 2: the constraint is A B = alpha^4 and R' closes to the hyperbolic entropy.
    at22 = {L: 2, q: 2}
    Ap = sp.solve([A * B - alpha**4, A - B - x], [A, B], dict=True)
    Ap = [s_ for s_ in Ap if s_[A].subs({x: 1, alpha: 1}).is_positive][0]
    ent = sp.simplify(grad.subs(at22).subs(v, sp.log(Ap[B])))
    closed = sp.asinh(x / (2 * alpha**2)) / 2
    check_identity((ent - closed).rewrite(sp.log), ({x: sp.Rational(7, 3), alpha: sp.Rational(1, 3)},))
    der.add(r"At $L = q = 2$ the constraint is $AB = \alpha^4$ and $R'$ is the hyperbolic entropy:",
            sp.Eq(sp.Symbol("R'(x)"), closed))
    return Potential("MIR-1b", "two-branch deep diagonal", hess, grad, None, (L, q, alpha),
                     derivation=der, root=root, kernel="twobranch", m=m)


__all__ = ["two_branch"]

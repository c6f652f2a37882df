"""Jacobians of the steepest flow fields, for the stiff (Rosenbrock) integrator.

A stiff stepper needs ``J = d(dy/dt)/dy`` of the field it integrates. The fields are built
from two scalar pieces, derived here by SymPy and generated into kernels; the chain rule
that assembles them with a loss's Hessian ``H = d grad f / dx`` is written once in
``numerics/jacobians.py``.

* The steepest map ``phi_q(z) = sign(z)|z|^(q-1)`` has the derivative
  ``phi_q'(z) = (q-1)|z|^(q-2)`` (even in ``z``; unbounded at ``z = 0`` for ``q < 2``:
  the field is non-Lipschitz there, which is what makes coupled ``q < 2`` flows stiff).
* The balanced mirror flow (MIR-1) ``dx/dt = -phi_q(d)/R''(x)`` has the mobility
  ``1/R''(x) = L|x|^m`` and its derivative ``(1/R'')'(x) = L m |x|^(m-1) sign(x)``, so
  ``J = -diag(phi_q'(d) / R''(x)) H - diag(phi_q(d) (1/R'')'(x))``.
* The parameter flow ``dw_ik/dt = -phi_q(z_ik)``, ``z_ik = d_i f(x) r_ik``,
  ``r_ik = prod_{j != k} w_ij``, has ``J = -diag(phi_q'(z)) dz/dw`` with
  ``dz_ik/dw_jl = r_ik H_ij r_jl + [i = j, l != k] d_i f prod_{m != k, l} w_im``.
* With weight decay ``nu`` (DEC, :mod:`numerics.decay`; ``nu`` is constant in ``w``):
  decoupled ``dw/dt = -phi_q(z) - nu w`` has ``J = -diag(phi_q'(z)) dz/dw - nu I``; coupled
  ``dw/dt = -phi_q(z + nu w)`` has ``J = -diag(phi_q'(z + nu w)) (dz/dw + nu I)``
  (:func:`decay_jacobian` checks both on a symbolic instance).
"""

from __future__ import annotations

from functools import lru_cache

import sympy as sp

from .kernelspec import KernelSpec
from .deep import balanced
from .derivation import Derivation
from .symbols import L, m, phi, q, x

_Z = sp.Symbol("z", positive=True)


@lru_cache(maxsize=None)
def steepest_map_derivative() -> tuple[Derivation, sp.Expr]:
    """``phi_q'(z)`` on ``z > 0``; even in ``z`` because ``phi_q`` is odd."""
    der = Derivation("JAC", "Derivative of the steepest map")
    zr = sp.Symbol("z", real=True, nonzero=True)
    odd = sp.simplify(phi(-zr) + phi(zr))
    assert odd == 0
    der.add(r"$\phi_q$ is odd, so $\phi_q'$ is even:", sp.Eq(phi(-zr) + phi(zr), odd))
    dphi = sp.simplify(sp.diff(phi(_Z), _Z))
    assert sp.simplify(dphi - (q - 1) * _Z ** (q - 2)) == 0
    der.add(r"On $z > 0$:", sp.Eq(sp.Symbol(r"\phi_q'(z)"), dphi))
    return der, dphi


@lru_cache(maxsize=None)
def balanced_mobility() -> tuple[Derivation, sp.Expr, sp.Expr]:
    """The MIR-1 mobility ``1/R''(x)`` and its derivative on ``x > 0``."""
    der = Derivation("JAC", "Jacobian of the balanced mirror field")
    mob = sp.powsimp(sp.simplify(1 / balanced().hess), force=True)
    assert sp.simplify(mob - L * x ** m) == 0
    der.add(r"Mobility of MIR-1:", sp.Eq(1 / sp.Symbol("R''(x)"), mob))
    dmob = sp.simplify(sp.diff(mob, x))
    assert sp.simplify(dmob - L * m * x ** (m - 1)) == 0
    der.add(r"Its derivative (odd extension to $x < 0$):", sp.Eq(sp.Symbol(r"(1/R'')'(x)"), dmob))
    der.add(r"Field $\dot x_i = -\phi_q(\partial_i f)/R''(x_i)$, Jacobian:",
            sp.Eq(sp.Symbol(r"J_{ij}"), sp.Symbol(r"-\phi_q'(\partial_i f) H_{ij}/R''(x_i)"
                                                 r" - \delta_{ij}\phi_q(\partial_i f)(1/R'')'(x_i)")))
    return der, mob, dmob


def _decay_instance(n: int = 2, L: int = 2):
    """Factors ``w`` (``n x L``), a quadratic loss ``f = x^T H x / 2 - b^T x`` with symmetric symbolic
    ``H``, its gradient ``g`` at ``x_i = prod_k w_ik``, the exclusive products ``r`` and ``z = g r``."""
    w = sp.Matrix(n, L, lambda i, k: sp.Symbol(f"w_{i + 1}{k + 1}", real=True))
    H = sp.Matrix(n, n, lambda i, j: sp.Symbol(f"H_{min(i, j) + 1}{max(i, j) + 1}", real=True))
    b = sp.Matrix(n, 1, lambda i, _: sp.Symbol(f"b_{i + 1}", real=True))
    xs = sp.Matrix(n, 1, lambda i, _: sp.prod(w.row(i)))
    g = H * xs - b
    r = sp.Matrix(n, L, lambda i, k: sp.prod([w[i, j] for j in range(L) if j != k]))
    pair = lambda i, k, l: sp.prod([w[i, j] for j in range(L) if j not in (k, l)])   # noqa: E731
    return w, H, g, r, pair


@lru_cache(maxsize=None)
def decay_jacobian() -> tuple[Derivation, sp.Expr]:
    """The Jacobians of both decay fields on ``n = L = 2`` with a generic odd map ``Phi`` (the chain
    rule holds for any ``Phi``; the flows take ``Phi' = phi_q'`` of :func:`steepest_map_derivative`)."""
    der = Derivation("JAC", "Jacobians of the weight-decay fields")
    nu = sp.Symbol("nu", positive=True)
    Phi = sp.Function("Phi")
    w, H, g, r, pair = _decay_instance()
    n, L = w.shape
    flat = list(w)                                         # row-major: index i L + k
    dz = sp.Matrix(n * L, n * L, lambda a, c: r[a // L, a % L] * H[a // L, c // L] * r[c // L, c % L]
                   + (g[a // L] * pair(a // L, a % L, c % L) if a // L == c // L and a % L != c % L else 0))
    z = [g[a // L] * r[a // L, a % L] for a in range(n * L)]
    eye = sp.eye(n * L)
    for decay, coupled in (("decoupled", 0), ("coupled", 1)):
        arg = [z[a] + coupled * nu * flat[a] for a in range(n * L)]
        field = sp.Matrix([-Phi(arg[a]) - (1 - coupled) * nu * flat[a] for a in range(n * L)])
        slope = sp.diag(*[sp.Subs(sp.Derivative(Phi(_Z), _Z), _Z, arg[a]).doit() for a in range(n * L)])
        claimed = -slope * (dz + coupled * nu * eye) - (1 - coupled) * nu * eye
        assert (field.jacobian(flat) - claimed).expand() == sp.zeros(n * L, n * L), decay
    der.add(r"Decoupled, $\dot w = -\phi_q(z) - \nu w$:",
            sp.Eq(sp.Symbol("J"), sp.Symbol(r"-\operatorname{diag}(\phi_q'(z))\, \partial z/\partial w - \nu I")))
    claim = sp.Symbol(r"-\operatorname{diag}(\phi_q'(z + \nu w))\,(\partial z/\partial w + \nu I)")
    der.add(r"Coupled, $\dot w = -\phi_q(z + \nu w)$ (checked on $n = L = 2$, any $\phi$):",
            sp.Eq(sp.Symbol("J"), claim))
    return der, claim


def kernel_specs() -> list:
    """The Jacobian pieces (a provider of :data:`theory.catalog.PROVIDERS`)."""
    _, dphi = steepest_map_derivative()
    _, mob, dmob = balanced_mobility()
    return [
        KernelSpec("phi_prime", "JAC", "Derivative phi_q'(z) = (q-1)|z|^(q-2) of the steepest map.",
                   dphi.subs(_Z, x), ((x, "z"), (q, "q")), "even"),
        KernelSpec("mir1_mobility", "JAC", "Mobility 1/R''(x) = L|x|^m of the balanced potential.",
                   mob, ((x, "x"), (L, "L"), (q, "q")), "even"),
        KernelSpec("mir1_mobility_prime", "JAC", "Derivative of the mobility, L m |x|^(m-1) sign(x).",
                   dmob, ((x, "x"), (L, "L"), (q, "q")), "odd"),
    ]


__all__ = ["steepest_map_derivative", "balanced_mobility", "decay_jacobian", "kernel_specs"]

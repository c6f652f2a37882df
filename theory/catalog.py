"""The catalogue of committed kernels: which derived expressions become numeric code.

Each entry is built from the same theory object that the verification compares against,
so a kernel and its prediction cannot describe different models.
"""

from __future__ import annotations

from functools import lru_cache

import sympy as sp

from . import bias, decay_equilibria, escape, jacobians, steps
from .energy import energy_identity
from .geometries import GEOMETRIES
from .kernelspec import KernelSpec, kernel_args
from .models import MODELS
from .symbols import L, alpha, d, lam, phi, q, x, x0, x1, y


def _scalar_specs():
    return [spec for m in MODELS.values() for spec in m.kernel_specs()]


def _geometry_specs():
    z = sp.Symbol("z", real=True)
    wk, wj = sp.Symbol("w_k", real=True), sp.Symbol("w_j", real=True)
    return [
        KernelSpec("phi", "geometry", "The steepest map phi_q(z) = sign(z)|z|^(q-1) (sign(0) = 0).",
                   phi(z), kernel_args(z, q)),
        KernelSpec("bal1_invariant", "BAL-1", "The conserved imbalance |w_k|^q - |w_j|^q.",
                   sp.Abs(wk) ** q - sp.Abs(wj) ** q, kernel_args(wk, wj, q)),
    ]


def _mirror_specs():
    specs = [spec for g in GEOMETRIES.values() for spec in g.kernel_specs()] + _scalar_specs()
    _, rate = energy_identity()
    specs.append(KernelSpec("mir6_rate", "MIR-6", "Dissipation |d|^q / R''(x) of one coordinate "
                            "(MIR-1 potential).", rate, kernel_args(x, d, L, q), "even"))
    return specs


def _escape_specs():
    _, integrand, closed = escape.escape_time_closed_form()
    return [
        KernelSpec("esc1_time", "ESC-1", "Closed-form escape time from x0 to x1 < y (any m).",
                   closed, kernel_args(x0, x1, y, L, q)),
        KernelSpec("esc1_integrand", "ESC-1", "dt/dx along the escape, 1/(L x^m (y-x)^(q-1)).",
                   integrand, kernel_args(x, y, L, q)),
        KernelSpec("esc2_rate", "ESC-2", "-alpha dT/dalpha: growth of T per unit of log(1/alpha).",
                   escape.escape_class_derivation()[1], kernel_args(alpha, y, L, q)),
        KernelSpec("esc3_coercivity", "ESC-3", "1/R''(0) at the start (0, lambda, ..., lambda).",
                   escape.coercivity_derivation()[1], kernel_args(lam, L, q)),
    ]


# Each theorem family contributes a function returning its KernelSpecs; the generated
# modules list them in this order. A new family appends its provider here.
PROVIDERS = [_geometry_specs, _mirror_specs, _escape_specs, decay_equilibria.kernel_specs, steps.kernel_specs,
             bias.kernel_specs, jacobians.kernel_specs]


@lru_cache(maxsize=None)
def kernel_specs() -> tuple[KernelSpec, ...]:
    return tuple(spec for provider in PROVIDERS for spec in provider())


__all__ = ["kernel_specs"]

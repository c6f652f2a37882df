"""The catalogue of committed kernels: which derived expressions become numeric code.

Each entry is built from the same theory object that the verification compares against,
so a kernel and its prediction cannot describe different models.
"""

from __future__ import annotations

from functools import lru_cache

import sympy as sp

from . import bias, decay, deep, escape, jacobians, twobranch
from .codegen import KernelSpec
from .energy import energy_identity
from .scalar import W_REAL, scalar
from .symbols import L, d, q, x

_NAMES = {"\\delta_k": "dk", "x_0": "x0", "x_1": "x1", "lambda": "lam"}


def pyname(sym: sp.Symbol) -> str:
    return _NAMES.get(sym.name, sym.name)


def _args(*syms):
    return tuple((s, pyname(s)) for s in syms)


def potential_spec(potential, which: str, name: str) -> KernelSpec:
    """The kernel of ``R''`` (``which='hess'``), ``R'`` (``'grad'``) or ``R`` (``'value'``)."""
    expr = {"hess": potential.hess, "grad": potential.grad, "value": potential.value}[which]
    if expr is None:
        raise ValueError(f"{potential.theorem} has no closed {which}; it is implicit")
    symmetry = None
    if potential.symmetric:
        symmetry = "odd" if which == "grad" else "even"
    label = {"hess": "R''(x)", "grad": "R'(x)", "value": "R(x)"}[which]
    return KernelSpec(name, potential.theorem, f"{label} of the {potential.title} potential.",
                      expr, _args(x, *potential.args), symmetry, potential.root)


# The MIR-5 examples named in the catalogue: name -> (g as text, its parameters).
SCALAR_EXAMPLES = {
    "square": ("w**2", ()),
    "signpower": ("w*Abs(w)**(L - 1)", (L,)),
    "sinh": ("sinh(w)", ()),
}


@lru_cache(maxsize=None)
def scalar_example(name: str):
    text, params = SCALAR_EXAMPLES[name]
    return scalar(text, name=name, params={p: p for p in params})


def _scalar_specs():
    out = []
    for name in SCALAR_EXAMPLES:
        rep = scalar_example(name)
        pot = rep.potential(kernel=f"mir5_{name}")
        params = tuple(rep.params)
        for which in ("hess", "grad", "value"):
            out.append(potential_spec(pot, which, f"mir5_{name}_{which}"))
        out.append(KernelSpec(f"mir5_{name}_g", "MIR-5", f"The model x = g(w) = {rep.g_real}.",
                              rep.g_real, _args(W_REAL, *params)))
        out.append(KernelSpec(f"mir5_{name}_dg", "MIR-5", "Its derivative g'(w).",
                              rep.dg_real, _args(W_REAL, *params)))
    return out


def _geometry_specs():
    z = sp.Symbol("z", real=True)
    wk, wj = sp.Symbol("w_k", real=True), sp.Symbol("w_j", real=True)
    return [
        KernelSpec("phi", "geometry", "The steepest map phi_q(z) = sign(z)|z|^(q-1) (sign(0) = 0).",
                   sp.sign(z) * sp.Abs(z) ** (q - 1), _args(z, q)),
        KernelSpec("bal1_invariant", "BAL-1", "The conserved imbalance |w_k|^q - |w_j|^q.",
                   sp.Abs(wk) ** q - sp.Abs(wj) ** q, _args(wk, wj, q)),
    ]


def _mirror_specs():
    specs = []
    for fam, pot in (("mir1", deep.balanced()), ("mir2", deep.lambda_balanced_l2())):
        specs += [potential_spec(pot, w_, f"{fam}_{w_}") for w_ in ("hess", "grad", "value")]
    specs.append(potential_spec(deep.lambda_balanced(), "hess", "mir3_hess"))
    tb = twobranch.two_branch()
    specs += [potential_spec(tb, w_, f"twobranch_{w_}") for w_ in ("hess", "grad")]
    specs += _scalar_specs()
    _, rate = energy_identity()
    specs.append(KernelSpec("mir6_rate", "MIR-6", "Dissipation |d|^q / R''(x) of one coordinate "
                            "(MIR-1 potential).", rate, _args(x, d, L, q), "even"))
    return specs


def _escape_specs():
    from .symbols import alpha, lam, x0, x1, y

    _, integrand, closed = escape.escape_time_closed_form()
    return [
        KernelSpec("esc1_time", "ESC-1", "Closed-form escape time from x0 to x1 < y (any m).",
                   closed, _args(x0, x1, y, L, q)),
        KernelSpec("esc1_integrand", "ESC-1", "dt/dx along the escape, 1/(L x^m (y-x)^(q-1)).",
                   integrand, _args(x, y, L, q)),
        KernelSpec("esc2_rate", "ESC-2", "-alpha dT/dalpha: growth of T per unit of log(1/alpha).",
                   escape.escape_class_derivation()[1], _args(alpha, y, L, q)),
        KernelSpec("esc3_coercivity", "ESC-3", "1/R''(0) at the start (0, lambda, ..., lambda).",
                   escape.coercivity_derivation()[1], _args(lam, L, q)),
    ]


# Each theorem family contributes a function returning its KernelSpecs; the generated
# modules list them in this order. A new family appends its provider here.
PROVIDERS = [_geometry_specs, _mirror_specs, _escape_specs, decay.kernel_specs, bias.kernel_specs,
             jacobians.kernel_specs]


@lru_cache(maxsize=None)
def kernel_specs() -> tuple[KernelSpec, ...]:
    return tuple(spec for provider in PROVIDERS for spec in provider())


__all__ = ["kernel_specs", "potential_spec", "pyname", "SCALAR_EXAMPLES", "scalar_example"]

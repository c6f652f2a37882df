"""Kernel specifications: what one generated function computes (the leaf of ``theory``).

A :class:`KernelSpec` names a SymPy expression, its arguments and how it extends to
``x < 0``; a :class:`RootSpec` declares the monotone scalar equation an implicit kernel
solves; :class:`SumLast` sums over the last axis of vector parameters. Derivations build
these, the printer (:mod:`theory.printer`) turns them into code; neither needs the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import mpmath
import sympy as sp

from .symbols import x

_NAMES = {"\\delta_k": "dk", "x_0": "x0", "x_1": "x1", "lambda": "lam"}


class SumLast(sp.Function):
    """Sum of an elementwise expression over the last axis of the vector parameters."""

    nargs = 1

    def _eval_derivative(self, sym):
        return SumLast(sp.diff(self.args[0], sym))

    def _latex(self, printer):
        return r"\sum_{k} %s" % printer.parenthesize(self.args[0], 1000)


@dataclass(frozen=True)
class RootSpec:
    """A root variable ``var`` defined by ``residual(var) = 0``, increasing in ``var``."""

    var: sp.Symbol
    residual: sp.Expr
    start: sp.Expr
    vectors: tuple[sp.Symbol, ...] = ()   # parameters that are arrays over the last axis

    @property
    def slope(self) -> sp.Expr:
        return sp.diff(self.residual, self.var)

    def solve(self, values: dict, modules=("mpmath",), dps: int = 30, maxiter: int = 400):
        """The root (an ``mpf``) with the parameters at ``values`` (``{symbol: number}``), to
        ``dps`` digits, by the rule of the generated kernels (``special.solve_increasing``):
        a bracket grown from ``start`` by doubling steps, then Newton steps, bisection
        whenever Newton leaves the bracket. Raises ``ArithmeticError`` if that fails."""
        syms, modules = tuple(values), tuple(modules)
        try:
            fn, start = _lambdified(self, syms, modules)
        except TypeError:                      # unhashable modules (custom translations)
            fn, start = _lambdified.__wrapped__(self, syms, modules)
        with mpmath.workdps(dps + 10):
            vals = [mpmath.mpf(sp.Float(values[s_], dps + 10)._mpf_) for s_ in syms]
            v = mpmath.mpf(start(*vals))
            lo, hi, step, tol = None, None, mpmath.mpf(1), mpmath.mpf(10) ** -dps
            for _ in range(maxiter):
                lo, hi = (v, hi) if fn(v, *vals)[0] <= 0 else (lo, v)
                if lo is not None and hi is not None:
                    break
                v, step = v + step if hi is None else v - step, 2 * step
            else:
                raise ArithmeticError("RootSpec.solve: could not bracket the root")
            v = (lo + hi) / 2
            for _ in range(maxiter):
                f, df = fn(v, *vals)
                lo, hi = (v, hi) if f <= 0 else (lo, v)
                newton = v - f / df if df > 0 else lo - 1
                v_next = newton if lo < newton < hi else (lo + hi) / 2
                if abs(v_next - v) <= tol * (1 + abs(v)) or hi - lo <= tol * (1 + abs(v)):
                    return +v_next
                v = v_next
        raise ArithmeticError("RootSpec.solve: Newton steps did not converge")


@lru_cache(maxsize=64)
def _lambdified(root: RootSpec, syms: tuple, modules: tuple):
    """``(v, *params) -> (residual, slope)`` and ``params -> start``, compiled once per form."""
    return (sp.lambdify([root.var, *syms], (root.residual, root.slope), list(modules)),
            sp.lambdify(list(syms), root.start, list(modules)))


@dataclass(frozen=True)
class KernelSpec:
    """One generated function: ``name(args...) -> expr``, with its documentation."""

    name: str
    theorem: str
    doc: str
    expr: sp.Expr
    args: tuple[tuple[sp.Symbol, str], ...]
    symmetry: str | None = None          # "even"/"odd" extension from x > 0, or None
    root: RootSpec | None = None

    @property
    def arg_names(self) -> tuple[str, ...]:
        return tuple(n for _, n in self.args)


def pyname(sym: sp.Symbol) -> str:
    """The Python argument name of a SymPy symbol (``x_0 -> x0``, ``lambda -> lam``)."""
    return _NAMES.get(sym.name, sym.name)


def kernel_args(*syms) -> tuple[tuple[sp.Symbol, str], ...]:
    """``KernelSpec.args`` for ``syms``, in order."""
    return tuple((s, pyname(s)) for s in syms)


def potential_spec(potential, which: str, name: str) -> KernelSpec:
    """The kernel of ``R''`` (``which='hess'``), ``R'`` (``'grad'``) or ``R`` (``'value'``)
    of a :class:`theory.potentials.Potential`."""
    expr = {"hess": potential.hess, "grad": potential.grad, "value": potential.value}[which]
    if expr is None:
        raise ValueError(f"{potential.theorem} has no closed {which}; it is implicit")
    symmetry = None
    if potential.symmetric:
        symmetry = "odd" if which == "grad" else "even"
    label = {"hess": "R''(x)", "grad": "R'(x)", "value": "R(x)"}[which]
    return KernelSpec(name, potential.theorem, f"{label} of the {potential.title} potential.",
                      expr, kernel_args(x, *potential.args), symmetry, potential.root)


__all__ = ["KernelSpec", "RootSpec", "SumLast", "kernel_args", "potential_spec", "pyname"]

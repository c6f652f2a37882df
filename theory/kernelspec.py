"""Kernel specifications: what one generated function computes (the leaf of ``theory``).

A :class:`KernelSpec` names a SymPy expression, its arguments and how it extends to
``x < 0``; a :class:`RootSpec` declares the monotone scalar equation an implicit kernel
solves; :class:`SumLast` sums over the last axis of vector parameters. Derivations build
these, the printer (:mod:`theory.printer`) turns them into code; neither needs the other.
"""

from __future__ import annotations

from dataclasses import dataclass

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

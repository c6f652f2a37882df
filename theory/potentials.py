"""Mirror potentials: the derived object ``R`` of a steepest mirror flow.

A ``Potential`` holds ``R''``, ``R'`` and ``R`` on the half-line ``x > 0`` as SymPy
expressions in ``x`` and the family's parameters, the values those parameters are bound
to, and the ``Derivation`` that produced them. The flow it describes is

    d/dt R'(x_i) = -phi_q(d_i f(x)),   i.e.   dx_i/dt = -phi_q(d_i f) / R''(x_i).

Extension to ``x < 0`` is by symmetry: ``R''`` even, ``R'`` odd, ``R`` even.
Normalization (constants do not change the flow or Bregman divergences): ``R'(0) = 0``
where ``R'`` is finite at the saddle, ``R'(1) = 0`` otherwise.
Implicit potentials (MIR-3, two-branch) carry a ``RootSpec``: their expressions are in
``x`` and a root variable fixed by a monotone scalar equation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from .derivation import Derivation
from .kernelspec import RootSpec, SumLast
from .legendre import classify
from .printer import compile_potential
from .special import elementary


@dataclass(frozen=True, eq=False)
class Potential:
    """``R'' / R' / R`` of one geometry, with its parameters and derivation."""

    theorem: str
    title: str
    hess: sp.Expr
    grad: sp.Expr | None
    value: sp.Expr | None
    args: tuple[sp.Symbol, ...]            # kernel parameters after x, in order
    bound: dict = field(default_factory=dict)   # numeric values of (some of) ``args``
    derivation: Derivation | None = None
    root: RootSpec | None = None
    kernel: str | None = None              # family name of the committed kernels
    m: sp.Expr | None = None               # metric exponent, for power-law potentials
    symmetric: bool = True                 # extend to x < 0 (R'' even, R' odd, R even)

    # --- symbolic access -------------------------------------------------------------
    def _subs(self, expr):
        """Substitute the bound values; a vector parameter bound to a tuple expands every
        ``SumLast`` into an explicit sum over its entries."""
        if expr is None:
            return None
        vectors = {k: v for k, v in self.bound.items() if isinstance(v, tuple)}
        scalars = {k: v for k, v in self.bound.items() if k not in vectors}
        if vectors:
            expr = expr.replace(lambda e: isinstance(e, SumLast), lambda e: sp.Add(
                *(e.args[0].subs({k: v[i] for k, v in vectors.items()})
                  for i in range(len(next(iter(vectors.values())))))))
        return expr.subs(scalars)

    @property
    def R2(self) -> sp.Expr:
        """``R''(x)`` with the bound parameters substituted."""
        return self._subs(self.hess)

    @property
    def R1(self) -> sp.Expr | None:
        """``R'(x)`` with the bound parameters substituted (``None`` if only implicit)."""
        return self._subs(self.grad)

    @property
    def R0(self) -> sp.Expr | None:
        """``R(x)`` with the bound parameters substituted."""
        return self._subs(self.value)

    @property
    def metric_exponent(self):
        return None if self.m is None else sp.nsimplify(self._subs(self.m))

    # --- MIR-4 -----------------------------------------------------------------------
    def legendre_class(self) -> str:
        """MIR-4: ``'finite'``, ``'logarithmic'`` or ``'barrier'`` behaviour of ``R'`` at ``0+``.

        Read off the limits SymPy computes for the bound ``R'``: finite limit, or
        ``R'(x)/log(x)`` tending to a finite non-zero constant, or neither.
        """
        return classify(self)

    def is_bregman(self) -> bool:
        """MIR-4: ``R`` is a Bregman (Legendre-type) function near the saddle iff ``m <= 1``."""
        return self.legendre_class() in ("finite", "logarithmic")

    # --- numerics --------------------------------------------------------------------
    def _compiled(self, which: str, backend: str):
        return compile_potential(self, which, backend)

    def numpy(self, which: str = "grad"):
        """A NumPy callable ``x -> R^(k)(x)`` (``which`` in ``hess, grad, value``) with the
        bound parameters applied; unbound parameters stay keyword arguments."""
        return self._compiled(which, "numpy")

    def torch(self, which: str = "grad"):
        """The same as :meth:`numpy`, for float64 torch tensors on any device."""
        return self._compiled(which, "torch")

    # --- printing --------------------------------------------------------------------
    def latex(self) -> str:
        """``R''``, ``R'`` and ``R`` as display LaTeX (bound parameters substituted)."""
        parts = [r"R''(x) = " + sp.latex(self.R2)]
        if self.R1 is not None:
            parts.append(r"R'(x) = " + sp.latex(self.R1))
        if self.R0 is not None:
            parts.append(r"R(x) = " + sp.latex(self.R0))
        if self.root is not None:
            parts.append(sp.latex(sp.Eq(self._subs(self.root.residual), 0)))
        return r" \\ ".join(parts)

    def readable(self) -> str:
        """``R''``, ``R'`` and ``R`` as text, special functions made elementary where SymPy can
        (:func:`theory.special.elementary`): ``x/sqrt(1 - x**2)``, not ``betainc(1/2, -1/2, 0, x**2)/2``.
        A form in a root variable ends with the equation that defines it."""
        forms = [("R''(x)", self.R2), ("R'(x)", self.R1), ("R(x)", self.R0)]
        lines = [f"{label} = {elementary(e)}" for label, e in forms if e is not None]
        if self.root is not None:
            lines.append(f"where {self.root.var} solves {self._subs(self.root.residual)} = 0")
        return "\n".join(lines)

    def __repr__(self) -> str:
        b = ", ".join(f"{k}={v}" for k, v in self.bound.items())
        return f"Potential({self.theorem}: {self.title}; {b})"

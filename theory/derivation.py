"""Derivations as data: ordered SymPy steps that print themselves as LaTeX.

Every derived object of the package carries the ``Derivation`` that produced it, so the
documents (``docs/``) typeset exactly what SymPy computed instead of retyped formulas.
Every ``Derivation`` built in a process is recorded (:func:`built`); ``docs.sources``
finds a family's derivations by evaluating the theory package's derivation functions
(public, callable without arguments, annotated to return a ``Derivation``, a
``Potential`` or a tuple holding one) and the kernel catalog, then reading this record.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp


@dataclass(frozen=True)
class Step:
    """One step: a sentence and the SymPy object (usually an ``Eq``) it produced."""

    text: str
    expr: sp.Basic

    def latex(self) -> str:
        return sp.latex(self.expr)


@dataclass
class Derivation:
    """The steps that lead from the model to a theorem's formula."""

    theorem: str
    title: str
    steps: list[Step] = field(default_factory=list)

    def __post_init__(self):
        _BUILT.append(self)

    def add(self, text: str, expr) -> sp.Basic:
        """Record a step and return its expression, so derivations read top to bottom."""
        self.steps.append(Step(text, sp.sympify(expr)))
        return expr

    def latex(self) -> str:
        """An ``enumerate`` of the steps, each with its display formula."""
        items = "\n".join(
            rf"  \item {st.text}\[ {st.latex()} \]" for st in self.steps
        )
        return f"\\begin{{enumerate}}\n{items}\n\\end{{enumerate}}"

    def __str__(self) -> str:
        lines = [f"{self.theorem}: {self.title}"]
        lines += [f"  {i + 1}. {st.text}: {st.expr}" for i, st in enumerate(self.steps)]
        return "\n".join(lines)


_BUILT: list[Derivation] = []


def built() -> tuple[Derivation, ...]:
    """Every ``Derivation`` constructed so far in this process, in construction order."""
    return tuple(_BUILT)


def check_identity(expr, points=()) -> None:
    """Assert that ``expr`` vanishes identically.

    First symbolically (Piecewise and special forms rewritten); where SymPy cannot close
    it, at each exact parameter point in ``points`` (dicts of substitutions, chosen to
    include the special cases such as ``m = 1``) to 40 digits. A derivation step that
    fails this is a bug in the derivation, so it raises ``AssertionError``.
    """
    from .special import BoxCox

    expr = sp.sympify(expr)
    if sp.simplify(expr.rewrite(BoxCox, sp.Piecewise)) == 0:
        return
    if not points:
        raise AssertionError(f"could not verify the identity {expr} = 0")
    for pt in points:
        val = sp.simplify(expr.subs(pt))
        if val != 0 and abs(sp.N(val, 50)) > sp.Float("1e-40"):
            raise AssertionError(f"identity {expr} = 0 fails at {pt}: {sp.N(val, 20)}")

"""Models: one scalar reparameterization ``x = g(w)`` (MIR-5) is one :class:`ScalarModel`.

A model carries its SymPy definition, its parameters with their domains, its default start
and the parameter values MIR-5 verifies. :func:`register` adds it to :data:`MODELS`, which
the whole pipeline reads: the kernel catalogue (hence ``python -m theory.codegen`` and the
documents), the samplers of ``verify.precision`` and the MIR-5 check. Adding a model is
adding one ``register(ScalarModel(...))`` below. :func:`model` builds the same object at
run time for a user's own ``g``; its kernels are then compiled in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import sympy as sp

from .kernelspec import KernelSpec, kernel_args, potential_spec
from .potentials import Potential
from .printer import compile_function
from .scalar import W_REAL, ScalarReparam, scalar


@dataclass(frozen=True)
class Param:
    """A parameter besides ``w`` (or ``x``): domain ``[lo, hi]``, the value MIR-5 verifies
    (scalar models), integer or real, one number or an array over the last axis."""

    name: str
    lo: float
    hi: float
    verify: float | None = None
    integer: bool = True
    vector: bool = False

    @property
    def symbol(self) -> sp.Symbol:
        return sp.Symbol(self.name, positive=True, **({"integer": True} if self.integer else {}))


@dataclass(frozen=True, eq=False)
class ScalarModel:
    """``x = g(w)``: ``g`` as text in ``w`` and the parameters; kernels ``mir5_<name>_*``."""

    name: str                       # a Python identifier: the kernels' prefix
    g: str                          # e.g. "w*Abs(w)**(L - 1)"
    label: str                      # how MIR-5's claim writes it, e.g. "w|w|^(L-1)"
    start: float                    # w(0) of the simulated flows
    params: tuple[Param, ...] = ()

    @cached_property
    def reparam(self) -> ScalarReparam:
        return scalar(self.g, name=self.name, params={p.symbol: p.symbol for p in self.params})

    @cached_property
    def potential(self) -> Potential:
        """The MIR-5 potential (``q`` symbolic); ``R'``/``R`` are ``None`` if it is implicit."""
        return self.reparam.potential(kernel=f"mir5_{self.name}")

    def kernel_specs(self) -> list[KernelSpec]:
        """``R''``, ``R'``, ``R`` (those in closed or quadrature form), ``g`` and ``g'``."""
        pot, rep, params = self.potential, self.reparam, tuple(p.symbol for p in self.params)
        out = [potential_spec(pot, which, f"mir5_{self.name}_{which}") for which in ("hess", "grad", "value")
               if getattr(pot, which) is not None]
        return out + [KernelSpec(f"mir5_{self.name}_g", "MIR-5", f"The model x = g(w) = {rep.g_real}.",
                                 rep.g_real, kernel_args(W_REAL, *params)),
                      KernelSpec(f"mir5_{self.name}_dg", "MIR-5", "Its derivative g'(w).",
                                 rep.dg_real, kernel_args(W_REAL, *params))]

    def compile(self, backend: str = "torch") -> dict:
        """``{"hess", "grad", "value", "g", "dg"}`` -> kernels compiled in memory (``None``
        where the potential has no such form); arguments as in ``kernel_specs``."""
        specs = {s.name.rpartition("_")[2]: s for s in self.kernel_specs()}
        return {k: compile_function(specs[k], backend) if k in specs else None
                for k in ("hess", "grad", "value", "g", "dg")}


MODELS: dict[str, ScalarModel] = {}


def add_named(registry: dict, item, kind: str):
    """``registry[item.name] = item``; the name must be a new Python identifier."""
    if not item.name.isidentifier() or item.name in registry:
        raise ValueError(f"{kind} name {item.name!r} must be a new Python identifier")
    registry[item.name] = item
    return item


def register(m: ScalarModel) -> ScalarModel:
    """Add ``m`` to :data:`MODELS` (the committed kernels, precision report and MIR-5)."""
    return add_named(MODELS, m, "model")


def model(g: str, name: str = "custom", start: float = 0.5, params: tuple[Param, ...] = ()) -> ScalarModel:
    """A user's own ``x = g(w)`` (text in ``w``), e.g. ``model("w**3 + w")``; not registered."""
    m = ScalarModel(name, g, g, start, params)
    m.reparam      # noqa: B018  (parse and check g now: bad input raises here)
    return m


register(ScalarModel("square", "w**2", "w^2", 0.5))
register(ScalarModel("signpower", "w*Abs(w)**(L - 1)", "w|w|^(L-1)", 0.7, (Param("L", 1, 8, 3),)))
register(ScalarModel("sinh", "sinh(w)", "sinh w", 0.3))

__all__ = ["MODELS", "Param", "ScalarModel", "model", "register"]

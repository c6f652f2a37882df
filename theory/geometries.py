"""Geometries: one mirror potential of a multi-factor model (MIR-1..3, MIR-1b) is one
:class:`GeometryModel`.

A geometry names its SymPy potential (a factory: derived on first use), the kernels it
emits (``<name>_hess``, ``<name>_grad``, ``<name>_value``), its parameters with their
domains and the domain of ``x`` its kernels are checked on. :func:`register` adds it to
:data:`GEOMETRIES`, which the kernel catalogue (hence ``python -m theory.codegen``) and the
samplers of ``verify.precision`` read. Adding a geometry is adding one ``register(...)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Callable

from . import deep, twobranch
from .kernelspec import KernelSpec, potential_spec, pyname
from .models import Param, add_named
from .potentials import Potential

Q = Param("q", 1, 2, integer=False)           # the steepness, a parameter of every geometry


@dataclass(frozen=True, eq=False)
class GeometryModel:
    """A potential ``R(x)`` with parameters ``params`` (the kernel arguments after ``x``, any
    order); ``|x|`` is checked log-uniformly over ``x_range`` times ``x_scale`` (SymPy text in
    the parameters), on both signs where ``signed``."""

    name: str                                  # the kernels' prefix
    factory: Callable[[], Potential]
    kernels: tuple[str, ...]                   # of "hess", "grad", "value"
    params: tuple[Param, ...]
    x_range: tuple[float, float] = (1e-6, 1e3)
    x_scale: str = "1"
    signed: bool = True

    @cached_property
    def potential(self) -> Potential:
        return self.factory()

    def kernel_specs(self) -> list[KernelSpec]:
        """One kernel per entry of ``kernels``; the parameters must be the potential's."""
        pot = self.potential
        if sorted(p.name for p in self.params) != sorted(pyname(s) for s in pot.args):
            raise ValueError(f"geometry {self.name!r}: params {[p.name for p in self.params]} are not "
                             f"the arguments {[pyname(s) for s in pot.args]} of its potential")
        return [potential_spec(pot, which, f"{self.name}_{which}") for which in self.kernels]


GEOMETRIES: dict[str, GeometryModel] = {}


def register(g: GeometryModel) -> GeometryModel:
    """Add ``g`` to :data:`GEOMETRIES` (the committed kernels and the precision report)."""
    return add_named(GEOMETRIES, g, "geometry")


register(GeometryModel("mir1", deep.balanced, ("hess", "grad", "value"), (Param("L", 1, 8), Q)))
register(GeometryModel("mir2", deep.lambda_balanced_l2, ("hess", "grad", "value"),
                       (Q, Param("c", 0.01, 10, integer=False))))
register(GeometryModel("mir3", deep.lambda_balanced, ("hess",),
                       (Q, Param("dk", 0, 2, integer=False, vector=True)), (1e-4, 1e2), signed=False))
# for m < 1 a branch output reaches 0 at |x| = 2^(1/beta) alpha^L >= 2 alpha^L, where the
# potential ends: |x| <= 1.9 alpha^L
register(GeometryModel("twobranch", twobranch.two_branch, ("hess", "grad"),
                       (Param("L", 1, 6), Q, Param("alpha", 0.05, 2, integer=False)), (1e-4, 1.9), "alpha**L"))

__all__ = ["GEOMETRIES", "GeometryModel", "Q", "register"]

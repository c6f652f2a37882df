"""Reparameterizations, the objects from which both formulas and simulated fields come.

* :func:`deep_diagonal` -- ``x = prod_k w_k`` (MIR-1/2/3; see :func:`theory.mirror_potential`)
* :func:`two_branch`    -- ``x = prod_k u_k - prod_k v_k`` from ``u_k = v_k = alpha``
* :func:`scalar`        -- ``x = g(w)`` for a user-supplied ``g`` (MIR-5)
"""

from __future__ import annotations

import dataclasses

import sympy as sp

from numerics import validate

from .mirror import mirror_potential as deep_diagonal
from .potentials import Potential
from .scalar import ScalarReparam, scalar
from .symbols import L as L_sym, alpha as alpha_sym, q as q_sym
from .twobranch import two_branch as _two_branch


def two_branch(L, q, alpha) -> Potential:
    """The (implicit) potential of the two-branch model started at ``u_k = v_k = alpha``."""
    L_, q_ = validate.depth(L), validate.exponent_q(q)
    a_ = validate.positive(alpha, "alpha")
    return dataclasses.replace(_two_branch(), bound={
        L_sym: L_, q_sym: sp.nsimplify(q_, rational=True), alpha_sym: sp.nsimplify(a_, rational=True)})


__all__ = ["deep_diagonal", "two_branch", "scalar", "ScalarReparam"]

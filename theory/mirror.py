"""``mirror_potential``: the public entry point to the deep diagonal potentials (MIR-1/2/3)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import sympy as sp

from numerics import validate

from . import deep
from .potentials import Potential
from .symbols import L as L_sym, c as c_sym, q as q_sym


def _rational(value, name):
    return sp.nsimplify(validate.real(value, name), rational=True)


def mirror_potential(L, q, imbalance=None) -> Potential:
    """The mirror potential of the deep diagonal model ``x = prod_k w_k``.

    * ``imbalance=None`` (or all constants equal): balanced start, MIR-1.
    * ``L = 2`` and a number ``c = |u|^q - |v|^q != 0``: MIR-2 (closed form).
    * a sequence of ``L`` constants ``c_k`` with ``|w_k|^q = s + c_k``: MIR-3 (implicit;
      the root ``s`` is a generated Newton solve).
    """
    L_ = validate.depth(L)
    q_ = validate.exponent_q(q)
    qr = sp.nsimplify(q_, rational=True)
    if imbalance is not None and not isinstance(imbalance, (Sequence, sp.Basic)) \
            and not hasattr(imbalance, "__float__"):
        raise TypeError(f"imbalance must be a number or a sequence of {L_} numbers, "
                        f"got {type(imbalance).__name__}")
    if isinstance(imbalance, Sequence) and not isinstance(imbalance, str):
        if len(imbalance) != L_:
            raise ValueError(f"imbalance must have one constant per factor (L = {L_}), "
                             f"got {len(imbalance)}")
        ck = [_rational(v, "imbalance") for v in imbalance]
        if len(set(ck)) == 1:
            imbalance = None
        elif L_ == 2:
            imbalance = ck[0] - ck[1]
        else:
            base = deep.lambda_balanced()
            dc = tuple(v - min(ck) for v in ck)
            return dataclasses.replace(base, bound={q_sym: qr, base.args[1]: dc})
    if imbalance is None or (not isinstance(imbalance, str) and validate.real(imbalance, "imbalance") == 0):
        return dataclasses.replace(deep.balanced(), bound={L_sym: L_, q_sym: qr})
    if L_ != 2:
        raise ValueError(f"a scalar imbalance defines the potential only at L = 2; for L = {L_} "
                         f"pass the {L_} constants c_k of |w_k|^q = s + c_k")
    c_ = abs(_rational(imbalance, "imbalance"))
    return dataclasses.replace(deep.lambda_balanced_l2(), bound={q_sym: qr, c_sym: c_})


__all__ = ["mirror_potential"]

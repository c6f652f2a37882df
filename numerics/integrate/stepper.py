"""Steppers: one step of size ``h`` for every row of a batch, and that step's interpolant.

The driver (:mod:`numerics.integrate.driver`) owns time, step-size control, events, mode
freezing and budgets; a stepper only advances states. The interface, for every stepper
(explicit, Rosenbrock, implicit) registered in :data:`STEPPERS`:

``Stepper(system, rhs, n, rtol, atol, dtype, device)``
    ``system`` is the :class:`~numerics.integrate.system.ODESystem` (read ``system.autonomous``;
    an implicit or Rosenbrock stepper calls ``system.jacobian(t, y, p, mode) -> (R, n, n)`` and
    raises ``ValueError`` at construction when ``system.jacobian`` returns ``None``);
    ``rhs(t, y, p, mode) -> (R, n)`` is the driver's counting wrapper of ``system.rhs``: call it,
    not ``system.rhs``, so ``Solution.nfev`` counts every evaluation.

Class attributes
    ``name`` (the registry key), ``order`` (of the propagated solution), ``error_exponent``
    (``1 / (k + 1)`` where the error estimate is ``O(h^(k+1))``: the controller scales steps by
    ``err^(-error_exponent)``).

``step(t, y, f, h, p, mode) -> Step``
    ``t`` ``(R,)``, ``y`` ``(R, n)``, ``f = rhs(t, y, p, mode)`` ``(R, n)``, ``h`` ``(R,)`` with
    ``h > 0`` (the driver reverses time for backward runs), ``p`` the rows' parameters, ``mode``
    ``None`` or the frozen signs ``(R, k)``: the field is smooth within the step.
    Returns ``Step(y_new, f_new, err, finite, stages)``: ``y_new`` at ``t + h``; ``f_new =
    rhs(t + h, y_new, p, mode)`` (the driver takes it as the next step's ``f`` unless the step
    was cut or the mode changed); ``err`` ``(R,)`` the scaled error norm (``<= 1`` accepts; scale
    ``atol + rtol max(|y|, |y_new|)``); ``finite`` ``(R,)`` whether ``y_new``, ``f_new`` and
    ``err`` are finite; ``stages`` a tensor with the batch as dim 1 holding whatever
    :meth:`dense` needs (the driver selects rows of it with ``stages[:, rows]``). Each row's
    arithmetic must not depend on the other rows (no reductions over the batch), so a row
    takes the same steps alone as inside any batch.

``dense(stages, t, y, h, y_new, p, mode) -> F``
    For accepted rows only (``stages`` already row-selected): coefficients ``F`` ``(m, R, n)``
    of the step's interpolant over ``[t, t + h]`` (it may evaluate ``rhs`` more).

``interpolate(F, y0, s) -> y`` (static)
    States at fractions ``s`` in ``[0, 1]`` of the step the coefficients were built for:
    ``F`` ``(m, ..., n)``, ``y0`` ``(..., n)``, ``s`` ``(...)``. ``s = 0`` gives ``y0`` and
    ``s = 1`` ``y_new``. A Rosenbrock stepper stores e.g. Hermite-type coefficients here.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from .tableau import DOP853


def terms(weights) -> tuple:
    """The nonzero ``(index, weight)`` pairs of a weight vector, as Python numbers."""
    return tuple((j, float(w)) for j, w in enumerate(np.asarray(weights, dtype=np.float64)) if w != 0)


def weighted_sum(terms_, K):
    """``sum_j w_j K[j]`` over ``terms_`` (from :func:`terms`), one elementwise update per term;
    ``K`` a sequence of stage tensors (the views ``stages.unbind(0)``: indexing a list costs
    nothing, indexing the stage tensor builds a view per term).

    Every element is computed by the same operations in the same order, so a row's value does
    not depend on the rows beside it (a BLAS contraction such as ``tensordot`` over the stages
    rounds a row differently with the batch size or its position)."""
    (j0, w0), *rest = terms_
    acc = K[j0] * w0
    for j, w in rest:
        acc.add_(K[j], alpha=w)
    return acc


class Step(NamedTuple):
    y_new: torch.Tensor
    f_new: torch.Tensor
    err: torch.Tensor
    finite: torch.Tensor
    stages: torch.Tensor


class Stepper:
    """The stepper interface (see the module docstring)."""

    name = ""
    order = 0
    error_exponent = 0.0

    def __init__(self, system, rhs, n, rtol, atol, dtype, device):
        self.system, self.rhs, self.n = system, rhs, n
        self.rtol, self.atol, self.dt, self.dev = rtol, atol, dtype, device

    def step(self, t, y, f, h, p, mode) -> Step:  # pragma: no cover - interface
        raise NotImplementedError

    def dense(self, stages, t, y, h, y_new, p, mode):  # pragma: no cover - interface
        raise NotImplementedError

    @staticmethod
    def interpolate(F, y0, s):  # pragma: no cover - interface
        raise NotImplementedError


class DOP853Stepper(Stepper):
    """Dormand-Prince 8(5,3) with its 7th-order dense output (3 extra stages), as
    ``scipy.integrate.DOP853``: error norm ``|h| e5 / sqrt(n (e5^2 + 0.01 e3^2))`` with the
    5th- and 3rd-order estimates, FSAL."""

    name = "dop853"
    order = 8
    error_exponent = DOP853.error_exponent

    def __init__(self, system, rhs, n, rtol, atol, dtype, device):
        super().__init__(system, rhs, n, rtol, atol, dtype, device)
        tab = self.tab = DOP853
        self.C = [float(c) for c in tab.c]
        self.a_terms = [terms(tab.A[i, :i]) for i in range(len(tab.c))]
        self.b_terms = terms(tab.b)
        self.e5_terms, self.e3_terms = terms(tab.e5), terms(tab.e3)
        self.d_terms = [terms(d) for d in tab.dense]

    def step(self, t, y, f, h, p, mode) -> Step:
        s = self.tab.stages
        hb = h[:, None].expand(-1, self.n).contiguous()    # same-shape operands: no broadcasting
        auto = self.system.autonomous
        K = torch.empty((len(self.tab.c), len(t), self.n), dtype=self.dt, device=self.dev)
        Kv = K.unbind(0)                                    # views: writing Kv[i] writes K
        Kv[0].copy_(f)
        for i in range(1, s):
            y_i = torch.addcmul(y, weighted_sum(self.a_terms[i], Kv), hb)
            Kv[i].copy_(self.rhs(t if auto else t + self.C[i] * h, y_i, p, mode))
        y_new = torch.addcmul(y, weighted_sum(self.b_terms, Kv), hb)
        Kv[s].copy_(self.rhs(t if auto else t + h, y_new, p, mode))
        scale = self.atol + self.rtol * torch.maximum(y.abs(), y_new.abs())
        e5 = (weighted_sum(self.e5_terms, Kv) / scale).square().sum(1)
        e3 = (weighted_sum(self.e3_terms, Kv) / scale).square().sum(1)
        denom = e5 + 0.01 * e3
        err = h.abs() * e5 / torch.sqrt(denom * self.n).clamp_min(1e-300)
        finite = torch.isfinite(err) & torch.isfinite(y_new + K[s]).all(1)
        return Step(y_new, K[s], err, finite, K)

    def dense(self, stages, t, y, h, y_new, p, mode):
        """The 7 DOP853 interpolation coefficients (3 extra stages)."""
        K, s, hb = stages.unbind(0), self.tab.stages, h[:, None]
        for i in range(s + 1, len(self.tab.c)):
            K[i].copy_(self.rhs(t + self.C[i] * h, torch.addcmul(y, weighted_sum(self.a_terms[i], K), hb), p, mode))
        dyn = y_new - y
        F = torch.empty((7, len(t), self.n), dtype=self.dt, device=self.dev)
        F[0] = dyn
        F[1] = hb * K[0] - dyn
        F[2] = 2 * dyn - hb * (K[s] + K[0])
        for j, d in enumerate(self.d_terms):
            F[3 + j] = hb * weighted_sum(d, K)
        return F

    @staticmethod
    def interpolate(F, y0, s):
        """DOP853 dense output: ``F`` (7, ..., n), ``y0`` (..., n), ``s`` in [0, 1] (...)."""
        s = s[..., None]
        y = torch.zeros_like(y0)
        for i in range(F.shape[0]):
            y = (y + F[F.shape[0] - 1 - i]) * (s if i % 2 == 0 else 1 - s)
        return y + y0


STEPPERS: dict[str, type[Stepper]] = {}


def register_stepper(cls: type[Stepper]) -> type[Stepper]:
    """Make ``cls`` selectable as ``integrate(..., method=cls.name)`` (usable as a decorator)."""
    if not cls.name:
        raise ValueError("a stepper needs a non-empty name")
    STEPPERS[cls.name] = cls
    return cls


register_stepper(DOP853Stepper)

"""Discrete steepest descent for PyTorch models: a ``torch.optim.Optimizer`` and optax-style blocks.

One step with learning rate ``lr`` (PyTorch's convention: the decay is multiplied by the
learning rate, as in ``torch.optim.AdamW``, so ``lr * weight_decay = eta * nu`` of the flow)::

    no decay:          w <- w - lr * phi_q(g)
    coupled decay:     w <- w - lr * phi_q(g + weight_decay * w)        (L2 inside the step)
    decoupled decay:   w <- w - lr * (phi_q(g) + weight_decay * w)      (AdamW-like)

with ``phi_q(z) = sign(z)|z|^(q-1)``: ``q = 1`` is sign descent (Adam with ``beta1 = beta2 = 0``
up to ``eps``), ``q = 2`` plain gradient descent. These are the explicit Euler steps of the
flows of :mod:`numerics.decay`; at ``q = 1`` without decay they follow the flow exactly
between sign changes.

The blocks mirror optax: a :class:`GradientTransformation` is a pure ``(init, update)`` pair,
``update(updates, state, params) -> (updates, state)`` on pytrees (tensors in nested
lists/tuples/dicts), composed by :func:`chain`; coupled vs decoupled decay is only *where*
:func:`add_decayed_weights` sits::

    coupled   = chain(add_decayed_weights(wd), scale_by_steepest(q), scale(-lr))
    decoupled = chain(scale_by_steepest(q), add_decayed_weights(wd), scale(-lr))
    params = apply_updates(params, updates)

:class:`SteepestDescent` runs exactly such a chain per parameter group.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import torch

from . import validate
from .geometry import phi


class GradientTransformation(NamedTuple):
    """A pure optimizer block: ``init(params) -> state``, ``update(updates, state, params)``."""

    init: Callable[[Any], Any]
    update: Callable[..., tuple[Any, Any]]


class EmptyState(NamedTuple):
    """The state of a stateless block."""


class ScheduleState(NamedTuple):
    count: torch.Tensor           # steps taken (int64 scalar)


def tree_map(fn, tree, *rest):
    """``fn`` applied leaf by leaf (tensors, or ``None`` kept as ``None``) over equal pytrees."""
    if isinstance(tree, dict):
        return {k: tree_map(fn, tree[k], *(r[k] for r in rest)) for k in tree}
    if isinstance(tree, (list, tuple)):
        out = [tree_map(fn, t, *r) for t, *r in zip(tree, *rest)]
        return type(tree)(out) if isinstance(tree, list) else tuple(out)
    if tree is None:
        return None
    return fn(tree, *rest)


def check_same_shapes(tree, other, name: str, other_name: str, path: str = "") -> None:
    """``ValueError`` unless ``other`` has the structure and leaf shapes of ``tree`` (before they are
    combined leaf by leaf: a silent broadcast or a truncated ``zip`` would hide the mismatch)."""
    if isinstance(tree, (dict, list, tuple)):
        kind = dict if isinstance(tree, dict) else (list, tuple)
        keys = sorted(tree) if isinstance(tree, dict) else range(len(tree))
        if not isinstance(other, kind) or (sorted(other) if isinstance(other, dict) else range(len(other))) != keys:
            raise ValueError(f"{other_name}{path} must have the structure of {name}{path} "
                             f"({type(tree).__name__} of {len(tree)}), got {type(other).__name__} of "
                             f"{len(other) if hasattr(other, '__len__') else '-'}")
        for k in keys:
            check_same_shapes(tree[k], other[k], name, other_name, f"{path}[{k!r}]")
    elif tree is not None and other is not None and tuple(tree.shape) != tuple(getattr(other, "shape", ())):
        raise ValueError(f"{other_name}{path} must have shape {tuple(tree.shape)} (that of {name}{path}), "
                         f"got {tuple(getattr(other, 'shape', ()))}")


def _stateless(fn) -> GradientTransformation:
    def update(updates, state, params=None):
        return fn(updates, params), state
    return GradientTransformation(lambda params: EmptyState(), update)


def scale_by_steepest(q: float) -> GradientTransformation:
    """``u -> phi_q(u) = sign(u)|u|^(q-1)`` elementwise (``q = 1``: sign, ``q = 2``: identity)."""
    q = validate.exponent_q(q)
    return _stateless(lambda updates, params: tree_map(lambda u: phi(u, q), updates))


def scale_by_sign() -> GradientTransformation:
    """``u -> sign(u)`` (``sign(0) = 0``): :func:`scale_by_steepest` at ``q = 1``."""
    return scale_by_steepest(1.0)


def add_decayed_weights(weight_decay: float) -> GradientTransformation:
    """``u -> u + weight_decay * w``: before the steepest map it is coupled (L2) decay, after
    it decoupled (AdamW-like) decay."""
    wd = validate.nonnegative(weight_decay, "weight_decay")

    def fn(updates, params):
        if params is None:
            raise ValueError("add_decayed_weights needs params in update(updates, state, params)")
        check_same_shapes(updates, params, "updates", "params")
        return tree_map(lambda u, w: u + wd * w, updates, params)
    return _stateless(fn)


def scale(factor: float) -> GradientTransformation:
    """``u -> factor * u`` (``scale(-lr)`` turns a direction into a descent step)."""
    factor = validate.real(factor, "factor")
    return _stateless(lambda updates, params: tree_map(lambda u: factor * u, updates))


def scale_by_schedule(schedule: Callable[[torch.Tensor], Any]) -> GradientTransformation:
    """``u -> schedule(count) * u`` with ``count`` the number of steps taken so far (e.g.
    ``lambda n: -lr(n)`` for a learning-rate schedule, which then also scales a decoupled
    decay placed before it: PyTorch's convention)."""
    if not callable(schedule):
        raise TypeError(f"schedule must be callable, got {type(schedule).__name__}")

    def init(params):
        return ScheduleState(torch.zeros((), dtype=torch.int64))

    def update(updates, state, params=None):
        factor = schedule(state.count)
        return tree_map(lambda u: factor * u, updates), ScheduleState(state.count + 1)
    return GradientTransformation(init, update)


def chain(*transforms: GradientTransformation) -> GradientTransformation:
    """The blocks applied in order; the state is the tuple of their states."""
    for t in transforms:
        if not isinstance(t, GradientTransformation):
            raise TypeError(f"chain takes GradientTransformations, got {type(t).__name__}")

    def init(params):
        return tuple(t.init(params) for t in transforms)

    def update(updates, state, params=None):
        new = []
        for t, s in zip(transforms, state):
            updates, s = t.update(updates, s, params)
            new.append(s)
        return updates, tuple(new)
    return GradientTransformation(init, update)


def apply_updates(params, updates):
    """``params + updates`` leaf by leaf (new tensors; the inputs are not modified)."""
    check_same_shapes(params, updates, "params", "updates")
    return tree_map(lambda w, u: w + u, params, updates)


def steepest(lr: float, q: float = 1.0, weight_decay: float = 0.0, decoupled: bool = True) -> GradientTransformation:
    """The chain of one steepest-descent step (see the module): where the decay sits decides
    coupled vs decoupled; ``weight_decay = 0`` leaves it out."""
    if not isinstance(decoupled, bool):
        raise TypeError(f"decoupled must be True or False, got {decoupled!r}")
    lr = validate.positive(lr, "lr")
    blocks = [scale_by_steepest(q)]
    if validate.nonnegative(weight_decay, "weight_decay") > 0:
        blocks.insert(1 if decoupled else 0, add_decayed_weights(weight_decay))
    return chain(*blocks, scale(-lr))


class SteepestDescent(torch.optim.Optimizer):
    """Steepest descent with exponent ``q`` for any ``nn.Module`` (``q = 1``: sign descent).

    ``lr`` multiplies the whole step, decay included (PyTorch's convention, as ``AdamW``):
    ``decoupled=True`` steps ``w <- w - lr (phi_q(g) + weight_decay w)``, ``decoupled=False``
    steps ``w <- w - lr phi_q(g + weight_decay w)``. Per-group ``lr``, ``q``,
    ``weight_decay`` and ``decoupled``; works with ``torch.optim.lr_scheduler``. The steps
    are the :func:`steepest` chain; the optimizer keeps no per-parameter state, so
    ``state_dict()`` holds the hyperparameters of every group.
    """

    def __init__(self, params, lr: float, q: float = 1.0, weight_decay: float = 0.0, decoupled: bool = True):
        steepest(lr, q, weight_decay, decoupled)              # validates, naming the argument
        super().__init__(params, dict(lr=lr, q=q, weight_decay=weight_decay, decoupled=decoupled))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [w for w in group["params"] if w.grad is not None]
            if not params:
                continue
            if any(w.grad.is_sparse for w in params):
                raise RuntimeError("SteepestDescent does not support sparse gradients")
            tx = steepest(group["lr"], group["q"], group["weight_decay"], group["decoupled"])
            updates, _ = tx.update([w.grad for w in params], tx.init(params), params)
            for w, u in zip(params, updates):
                w.add_(u)
        return loss


class SignDescent(SteepestDescent):
    """Sign descent (``q = 1``): Adam with ``beta1 = beta2 = 0`` and no ``eps``; with
    ``decoupled=True`` and ``weight_decay`` it is AdamW's step, with ``decoupled=False``
    Adam's ``weight_decay`` (L2 inside the sign)."""

    def __init__(self, params, lr: float, weight_decay: float = 0.0, decoupled: bool = True):
        super().__init__(params, lr, 1.0, weight_decay, decoupled)


__all__ = ["GradientTransformation", "EmptyState", "ScheduleState", "tree_map", "scale_by_steepest",
           "scale_by_sign", "add_decayed_weights", "scale", "scale_by_schedule", "chain", "apply_updates",
           "steepest", "SteepestDescent", "SignDescent"]

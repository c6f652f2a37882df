"""Numerics of steepest mirror flows: generated kernels, batched integrators, flows, losses.

The simulators a user calls, importable from here (loaded on first use, so that importing a
leaf such as ``numerics.validate`` stays light)::

    from numerics import simulate_parameter_flow, simulate_scalar_flow, simulate_mirror_flow, bind

* :func:`simulate_parameter_flow` - deep diagonal ``x_i = prod_k w_ik``, ``w0`` ``(B, n, L)``,
  with or without weight decay;
* :func:`simulate_scalar_flow` - your own scalar model ``x_i = g(w_i)``, ``w0`` ``(B, n)``;
* :func:`simulate_mirror_flow` - the mirror ODE ``dx/dt = -phi_q(grad f)/R''(x)``, ``x0`` ``(B, n)``;
* :func:`simulate_two_branch_flow` - ``x = prod u - prod v``;
* :func:`simulate_sign_flow` - ``q = 1`` exactly, event to event;
* :func:`bind` - a generated kernel ``kernel(x, L, q)`` as the ``hess(x, p)`` of the mirror flow.

``extras=[f, ...]`` (all but the sign flow): quadratures integrated with the state, each
``f(x, grad, p) -> (B, k)``; they appear in ``result.extras``.
"""

from __future__ import annotations

__all__ = ["simulate_parameter_flow", "simulate_scalar_flow", "simulate_mirror_flow", "simulate_two_branch_flow",
           "simulate_sign_flow", "bind"]


def __getattr__(name):
    if name == "simulate_sign_flow":
        from .sign import simulate_sign_flow
        return simulate_sign_flow
    if name == "bind":
        from .binding import bind
        return bind
    if name in __all__:
        from . import simulate
        return getattr(simulate, name)
    raise AttributeError(f"module 'numerics' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))

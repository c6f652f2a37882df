"""Generated kernels as the ``(x, p)`` functions the simulators take.

A generated kernel takes its parameters as further positional arguments, e.g.
``mir1_hess(x, L, q)`` or, from ``theory.model("w**3 + w").compile()``, ``hess(x, q)``;
``simulate_mirror_flow`` calls ``hess(x, p)``. :func:`bind` closes the gap in one line::

    simulate_mirror_flow(x0, 1.5, loss, bind(K.mir1_hess, L=3), t_end)

Each argument after ``x`` is a bound constant or, when not bound, the run's per-trajectory
parameter of that name (``p["q"]``, or one passed as ``params=``), as a column ``(B, 1)``.
"""

from __future__ import annotations

import inspect

__all__ = ["bind"]


def bind(kernel, **constants):
    """``kernel(x, a, b, ...)`` as ``hess(x, p)``: ``a, b, ...`` from ``constants`` or from ``p``
    (per-trajectory, ``(B,)`` -> ``(B, 1)``). Unknown constant names raise ``ValueError``."""
    if not callable(kernel):
        raise TypeError(f"kernel must be a function, got {type(kernel).__name__}")
    names = list(inspect.signature(kernel).parameters)[1:]
    unknown = sorted(set(constants) - set(names))
    if unknown:
        raise ValueError(f"bind: {getattr(kernel, '__name__', 'kernel')} takes (x, {', '.join(names)}), "
                         f"not {', '.join(unknown)}")

    def bound(x, p):
        args = []
        for name in names:
            if name in constants:
                args.append(constants[name])
            elif name in p:
                v = p[name]
                args.append(v.reshape(-1, *([1] * (x.ndim - 1))) if v.ndim == 1 else v)
            else:
                raise TypeError(f"{getattr(kernel, '__name__', 'kernel')} needs {name!r}: bind it, "
                                f"bind(kernel, {name}=...), or pass it per trajectory as params={{{name!r}: ...}}")
        return kernel(x, *args)

    bound.__name__ = f"bound_{getattr(kernel, '__name__', 'kernel')}"
    return bound

"""Argument validation shared by every public entry point.

Plain Python only (no arrays, no SymPy), so both ``theory`` and ``numerics`` use it.
Each check returns the normalized value or raises ``TypeError`` (wrong kind of value)
or ``ValueError`` (right kind, wrong range) with a sentence naming the argument.
"""

from __future__ import annotations

import math
import numbers

__all__ = [
    "real",
    "exponent_q",
    "depth",
    "positive",
    "nonnegative",
    "in_open_interval",
    "choice",
    "positive_int",
    "callables",
]


def real(value, name: str) -> float:
    """A finite real number (``bool`` is refused: it is almost always a mistake)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        # SymPy numbers and 0-d arrays are Real-like but not registered as numbers.Real.
        if hasattr(value, "__float__") and not isinstance(value, (bool, str, bytes)):
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise TypeError(f"{name} must be a real number, got {value!r}") from None
        else:
            raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def exponent_q(q, name: str = "q") -> float:
    """The steepest-descent exponent ``q in [1, 2]`` (q = 1 sign descent, q = 2 gradient flow)."""
    q = real(q, name)
    if not 1.0 <= q <= 2.0:
        raise ValueError(f"{name} must lie in [1, 2] (1 = sign descent, 2 = gradient flow), got {q}")
    return q


def positive_int(value, name: str, minimum: int = 1) -> int:
    """An integer ``>= minimum``; integral floats such as ``3.0`` are accepted."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, got bool {value!r}")
    if isinstance(value, numbers.Integral):
        value = int(value)
    elif isinstance(value, numbers.Real) and float(value).is_integer():
        value = int(value)
    elif hasattr(value, "is_Integer") and getattr(value, "is_Integer"):
        value = int(value)
    else:
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return value


def depth(L, name: str = "L") -> int:
    """The number of factors ``L >= 1`` of a deep diagonal reparameterization."""
    return positive_int(L, name, 1)


def positive(value, name: str) -> float:
    value = real(value, name)
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return value


def nonnegative(value, name: str) -> float:
    value = real(value, name)
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def in_open_interval(value, lo: float, hi: float, name: str) -> float:
    value = real(value, name)
    if not lo < value < hi:
        raise ValueError(f"{name} must lie strictly between {lo:g} and {hi:g}, got {value:g}")
    return value


def choice(value, options, name: str):
    if value not in options:
        allowed = ", ".join(repr(o) for o in options)
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    return value


def callables(**named):
    """Refuse non-callable user functions, naming them."""
    for name, fn in named.items():
        if not callable(fn):
            raise TypeError(f"{name} must be a function, got {type(fn).__name__}")

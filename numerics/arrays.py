"""Conversion of user arrays to float64 tensors, naming the argument when it fails."""

from __future__ import annotations

import torch


def float64(value, name: str, device=None) -> torch.Tensor:
    """``value`` (number, nested list, NumPy array or tensor) as a float64 tensor on ``device``;
    anything else (strings, ``None``, ragged lists) raises ``TypeError`` naming ``name``."""
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must be a number or an array of numbers, got {type(value).__name__} {value!r}")
    try:
        return torch.as_tensor(value, dtype=torch.float64, device=device)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise TypeError(f"{name} must be a number or an array of numbers, got {type(value).__name__}: {exc}") \
            from None

"""Row selection of per-trajectory parameter dicts (every value has the batch as its leading dim)."""

from __future__ import annotations


def take(p: dict, mask) -> dict:
    """The rows ``mask`` (boolean mask, index tensor or slice) of every parameter."""
    return {k: v[mask] for k, v in p.items()}

"""The layout of a flow's switching functions (a leaf of ``numerics``).

A flow's switching functions ``s(t, y) in R^m`` are the concatenation of named blocks
(e.g. the gradient components ``d_i f`` (``n``) then the factors ``w_ik`` (``n L``)). The
integrator freezes ``mode = sign(s)`` at the start of each step and reports the switches
reached as ``hit`` (both ``(B, m)``); :class:`ModeLayout` names the blocks once, so that a
field reads ``layout.block(mode, "factors")`` instead of decoding column ranges by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class ModeLayout:
    """Ordered blocks ``(name, size)`` of a ``(B, m)`` switching tensor, ``m = sum of sizes``.

    ``ModeLayout(gradient=n, factors=n * L)``; :meth:`block` cuts one block out of a mode,
    hit or switches tensor (a view), :meth:`join` builds the concatenation from its blocks,
    :meth:`split` is its inverse."""

    blocks: tuple[tuple[str, int], ...]
    _slices: dict = field(init=False, repr=False, compare=False)

    def __init__(self, **sizes: int):
        if not sizes:
            raise ValueError("a ModeLayout needs at least one block, e.g. ModeLayout(gradient=n)")
        for name, size in sizes.items():
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise ValueError(f"block {name!r} must have an integer size >= 1, got {size!r}")
        object.__setattr__(self, "blocks", tuple(sizes.items()))
        starts, slices = 0, {}
        for name, size in self.blocks:
            slices[name] = slice(starts, starts + size)
            starts += size
        object.__setattr__(self, "_slices", slices)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.blocks)

    @property
    def width(self) -> int:
        """``m``, the number of switching functions."""
        return sum(size for _, size in self.blocks)

    def _slice(self, name: str) -> slice:
        try:
            return self._slices[name]
        except KeyError:
            raise KeyError(f"no block {name!r} in this mode layout; its blocks are "
                           f"{', '.join(self.names)}") from None

    def block(self, t: torch.Tensor, name: str) -> torch.Tensor:
        """Columns of block ``name`` of ``t`` ``(B, m)`` (a view: writing to it writes ``t``)."""
        return t[:, self._slice(name)]

    def split(self, t: torch.Tensor) -> dict:
        """Every block of ``t``, by name (``join(**split(t))`` equals ``t``)."""
        return {name: self.block(t, name) for name in self.names}

    def join(self, **blocks: torch.Tensor) -> torch.Tensor:
        """The ``(B, m)`` concatenation of the blocks, given by name (each ``(B, size)``), in
        the layout's order. A missing, unknown or wrongly sized block raises ``ValueError``."""
        if set(blocks) != set(self.names):
            raise ValueError(f"join needs exactly the blocks {', '.join(self.names)}; "
                             f"got {', '.join(blocks) or 'none'}")
        parts = [blocks[name] for name in self.names]
        for (name, size), part in zip(self.blocks, parts):
            if part.ndim != 2 or part.shape[1] != size:
                raise ValueError(f"block {name!r} must have shape (B, {size}), got {tuple(part.shape)}")
        return parts[0] if len(parts) == 1 else torch.cat(parts, 1)


__all__ = ["ModeLayout"]

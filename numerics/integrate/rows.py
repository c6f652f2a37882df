"""Per-trajectory data of a run and its row selection (every tensor has the batch as its leading dim)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType


def take(p, mask):
    """The rows ``mask`` (boolean mask, index tensor or slice) of every tensor of ``p`` (a dict
    or :class:`Params`)."""
    if isinstance(p, Params):
        return Params(take(p.problem, mask), take(p.switching, mask))
    return {k: v[mask] for k, v in p.items()}


def put_rows(p: Mapping, mask, rows: Mapping) -> dict:
    """A copy of ``p`` with the rows ``mask`` of every tensor of ``rows`` written in."""
    out = dict(p)
    for k, v in rows.items():
        col = out[k].clone()
        col[mask] = v
        out[k] = col
    return out


class Params(Mapping):
    """What a field sees of its trajectories: the problem's parameters, read as the mapping
    itself (``p["q"]``), and the switching state ``p.switching`` (e.g. which coordinates are
    frozen or sliding). Both are read-only mappings; during a run the problem is never
    changed, and the switching state is replaced only by what ``ODESystem.on_switch`` returns
    (:meth:`with_switching`)."""

    __slots__ = ("problem", "switching")

    def __init__(self, problem: Mapping | None = None, switching: Mapping | None = None):
        problem, switching = dict(problem or {}), dict(switching or {})
        if common := set(problem) & set(switching):
            raise ValueError(f"a name is either a parameter or switching state, not both: {sorted(common)}")
        object.__setattr__(self, "problem", MappingProxyType(problem))
        object.__setattr__(self, "switching", MappingProxyType(switching))

    def __setattr__(self, name, value):
        raise AttributeError("Params is immutable: with_switching gives a copy with a new switching state")

    def __getitem__(self, key):
        return self.problem[key]

    def __iter__(self):
        return iter(self.problem)

    def __len__(self):
        return len(self.problem)

    def with_switching(self, switching: Mapping) -> "Params":
        """The same problem with the switching state ``switching``."""
        return Params(self.problem, switching)

"""The verification harness: checks, their results, and the registry.

A check compares a prediction (from ``theory``/generated kernels) with a measurement
(from simulation) and returns a :class:`Result`, which keeps the series it measured (JSON
lists under ``series``: the documents draw their figures from them instead of simulating again). ``error`` and ``tolerance`` are in the
same units; ``passed`` means ``error <= tolerance`` with both finite (NaN or inf fails).
Every check documents its tolerance (why that number, from the integrator's requested
accuracy) and its *mutation*: a deliberately wrong prediction that ``--mutate`` runs and
that the check must reject.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch


@dataclass
class Context:
    """How a run is configured: device, precision, mutation, seed."""

    device: str = "cpu"
    precision: str = "quick"
    mutate: bool = False
    seed: int = 0

    @property
    def full(self) -> bool:
        return self.precision == "full"

    def generator(self, salt: int = 0) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * 1_000_003 + salt)


@dataclass
class Result:
    id: str
    claim: str
    prediction: str
    measured: str
    error: float
    tolerance: float
    passed: bool
    seconds: float = 0.0
    params: dict = field(default_factory=dict)
    mutated: bool = False
    mutation: str = ""
    note: str = ""
    series: dict = field(default_factory=dict)   # the data measured (lists), for figures

    def to_json(self) -> dict:
        d = asdict(self)
        for k in ("error", "tolerance"):
            v = d[k]
            d[k] = v if math.isfinite(v) else str(v)
        return d


def within(error: float, tolerance: float) -> bool:
    """The pass rule: finite error no larger than the finite tolerance."""
    return math.isfinite(error) and math.isfinite(tolerance) and error <= tolerance


@dataclass(frozen=True)
class Check:
    id: str
    family: str
    claim: str
    tolerance_note: str
    mutation: str
    fn: Callable[[Context], dict]

    def run(self, ctx: Context) -> Result:
        start = time.perf_counter()
        try:
            out = self.fn(ctx)
        except Exception as exc:  # a crashed check is a failed check, with its reason
            return Result(self.id, self.claim, "-", f"error: {type(exc).__name__}: {exc}",
                          math.inf, math.nan, False, time.perf_counter() - start,
                          mutated=ctx.mutate, mutation=self.mutation)
        error, tol = float(out["error"]), float(out["tolerance"])
        return Result(self.id, self.claim, str(out["prediction"]), str(out["measured"]), error, tol,
                      within(error, tol), time.perf_counter() - start, out.get("params", {}),
                      ctx.mutate, self.mutation, out.get("note", ""), out.get("series", {}))


REGISTRY: dict[str, Check] = {}


def check(id: str, claim: str, tolerance: str, mutation: str):
    """Register a check function ``fn(ctx) -> {prediction, measured, error, tolerance, ...}``."""
    def deco(fn):
        REGISTRY[id] = Check(id, id.split("-")[0], claim, tolerance, mutation, fn)
        return fn
    return deco


def rel_err(measured, predicted) -> float:
    """Largest relative error ``|m - p| / |p|`` over arrays (NaN anywhere gives inf)."""
    m = torch.as_tensor(measured, dtype=torch.float64).flatten()
    p = torch.as_tensor(predicted, dtype=torch.float64).flatten().to(m.device)
    if not (bool(torch.isfinite(m).all()) and bool(torch.isfinite(p).all())):
        return math.inf
    return float(((m - p).abs() / p.abs().clamp_min(1e-300)).max())

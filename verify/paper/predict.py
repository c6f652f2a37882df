"""The theory's prediction for each measured setting (ESC-2 class and exponent, DEC-3 outcome).

The theorems are about the reference problem (a deep diagonal model, ``f = (x - y)^2/2``) and
continuous flows; the settings here are networks, matrix-product adapters and discrete
steps. Each function says which statement it uses, and :data:`COVERAGE` says, per setting,
how far the theory reaches, so the report never forces a match.
"""

from __future__ import annotations

import math

import theory

from .finetune import OPTIMIZERS

DECAY_FORM = {"sgd": (2.0, "coupled"), "adam": (1.0, "coupled"), "adamw": (1.0, "decoupled")}
COVERAGE = {
    "sgd": "ESC-2/ESC-4 at q = 2 (gradient flow, T/lr steps); diagonal reference problem",
    "sign": "ESC-2/ESC-4 at q = 1 (sign descent); diagonal reference problem",
    "steepest": "ESC-2 at q = 1.5; diagonal reference problem",
    "adam": "not covered: Adam is q = 1 only for beta1 = beta2 = 0 (OPT-2); class shown by analogy",
    "adamw": "not covered: AdamW is q = 1 only for beta1 = beta2 = 0 (OPT-2); class shown by analogy",
    "gd": "ESC-2/ESC-4 at q = 2 (GD steps = T/lr); the regression couples coordinates",
    "flow": "ESC-2 for the flow; the regression couples coordinates (ESC-2 is per coordinate)",
}


def escape_prediction(L: int, q: float) -> tuple[str, float]:
    """ESC-2: ``(class, exponent of T in alpha)``; the exponent is 0 unless the class is polynomial
    (a logarithmic or bounded ``T`` has power-law exponent 0)."""
    cls, expo = theory.escape_class(L, q)
    return cls, expo if cls == "polynomial" else 0.0


def optimizer_q(name: str) -> float:
    return OPTIMIZERS[name]


def decay_outcome(L: int, optimizer: str, nu: float, alpha: float, y: float = 1.0) -> str:
    """DEC-3 on the reference problem for the optimizer's ``(q, decay)`` form."""
    q, form = DECAY_FORM[optimizer]
    return theory.escape_or_collapse(L, q, nu, y, alpha, form)


def decay_threshold(L: int, optimizer: str, nu: float, alphas, y: float = 1.0) -> float:
    """The ``alpha`` where DEC-3's prediction changes inside ``[min alphas, max alphas]``
    (bisection in ``log alpha`` on :func:`decay_outcome`); NaN if it does not change there."""
    lo, hi = min(alphas), max(alphas)
    out_lo = decay_outcome(L, optimizer, nu, lo, y)
    if out_lo == decay_outcome(L, optimizer, nu, hi, y):
        return math.nan
    for _ in range(30):
        mid = math.sqrt(lo * hi)
        if decay_outcome(L, optimizer, nu, mid, y) == out_lo:
            lo = mid
        else:
            hi = mid
    return math.sqrt(lo * hi)


__all__ = ["escape_prediction", "optimizer_q", "decay_outcome", "decay_threshold", "COVERAGE", "DECAY_FORM"]

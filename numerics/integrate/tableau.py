"""Butcher tableaus that check their own invariants when built.

Only the Dormand-Prince 8(5,3) pair with its 7th-order dense output (Hairer, Norsett &
Wanner, *Solving ODEs I*, II.5; coefficients as published, taken from SciPy's copy) is
used; the class verifies row sums, consistency and the quadrature order conditions
``sum_i b_i c_i^(k-1) = 1/k`` for ``k <= order``, and the same for the embedded pair's
error weights, so a mistyped coefficient fails at import.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.integrate._ivp import dop853_coefficients as _dop


@dataclass(frozen=True)
class Tableau:
    name: str
    order: int
    error_exponent: float          # step-size control exponent: err^(-error_exponent)
    A: np.ndarray                  # (s_ext, s_ext) strictly lower triangular, incl. dense stages
    b: np.ndarray                  # (s,) weights of the propagated solution
    c: np.ndarray                  # (s_ext,) nodes
    e5: np.ndarray                 # (s + 1,) weights of the 5th-order error estimate
    e3: np.ndarray                 # (s + 1,) weights of the 3rd-order error estimate
    dense: np.ndarray              # (p - 3, s_ext) dense-output coefficients
    stages: int                    # s: stages of one step (the FSAL stage is extra)

    def __post_init__(self):
        s, ext = self.stages, len(self.c)
        if not np.allclose(np.triu(self.A), 0):
            raise ValueError(f"{self.name}: A must be strictly lower triangular")
        if not np.allclose(self.A.sum(axis=1), self.c, atol=1e-14):
            raise ValueError(f"{self.name}: row sums of A differ from c")
        for k in range(1, self.order + 1):
            quad = float(self.b @ self.c[:s] ** (k - 1))
            if abs(quad - 1 / k) > 1e-13:
                raise ValueError(f"{self.name}: quadrature condition of order {k} fails ({quad} != {1 / k})")
        for name, e in (("e5", self.e5), ("e3", self.e3)):
            if abs(e.sum()) > 1e-13:
                raise ValueError(f"{self.name}: error weights {name} must sum to 0")
        if ext < s + 1 or self.dense.shape[1] != ext:
            raise ValueError(f"{self.name}: dense output needs the extended stages")


def _dop853() -> Tableau:
    s = _dop.N_STAGES
    return Tableau(
        name="DOP853", order=8, error_exponent=1 / 8,
        A=np.asarray(_dop.A, dtype=np.float64), b=np.asarray(_dop.B, dtype=np.float64),
        c=np.asarray(_dop.C, dtype=np.float64),
        e5=np.asarray(_dop.E5, dtype=np.float64), e3=np.asarray(_dop.E3, dtype=np.float64),
        dense=np.asarray(_dop.D, dtype=np.float64), stages=s,
    )


DOP853 = _dop853()

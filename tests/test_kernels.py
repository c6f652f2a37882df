"""Every generated kernel, in both backends, against mpmath at 30 digits (Hypothesis).

Points come from ``verify.precision.SAMPLERS`` (the domains of the kernels), driven by a
Hypothesis-chosen seed; the reference and the error measure are those of
``verify.precision``: ``|got - ref| <= 1e-12 (|f| + |x f'(x)|)`` with ``x`` the first argument
(a plain 1e-12 relative error except where the function itself is ill-conditioned), the
error of a backward-stable double-precision evaluation with a few hundred ulp of losses in
the series, powers and Newton solves.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from verify.precision import SAMPLERS, evaluate, reference, scaled_error, specs

RTOL = 1e-12


def test_catalog_is_fully_covered():
    assert set(specs()) == set(SAMPLERS), set(specs()) ^ set(SAMPLERS)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_kernel_matches_mpmath(name):
    @given(st.integers(0, 2**32 - 1))
    def run(seed):
        values = SAMPLERS[name](np.random.default_rng(seed))
        ref, slope = reference(specs()[name], values)
        assert math.isfinite(float(ref)), f"reference not finite at {values}"
        for backend in ("numpy", "torch"):
            got = evaluate(name, values, backend)
            err = scaled_error(got, ref, slope)
            assert err <= RTOL, f"{backend} {name}{values}: {got} vs {ref} (scaled error {err:.2e})"
    run()

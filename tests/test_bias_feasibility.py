"""IB-1 solver: feasible problems are solved, infeasible ones are proved so (Farkas)."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from numerics import bias as NB


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 4), st.sampled_from([1.0, 1.5, 2.0]), st.integers(1, 4))
def test_bregman_point_solves_every_feasible_problem_or_proves_it_infeasible(seed, L, q, N):
    """Random ``y`` (feasible or not): either a KKT point, or an ``Infeasible`` whose certificate
    checks by hand; never a bare failure."""
    r = np.random.default_rng(seed)
    n = N + int(r.integers(0, 6))
    X, x0 = r.standard_normal((N, n)), r.choice([-1.0, 1.0], n) * r.uniform(0.05, 1, n)
    y = X @ (np.sign(x0) * r.uniform(0.1, 3, n)) if seed % 2 else r.standard_normal(N)
    geo = NB.Balanced(L, q, x0)
    try:
        sol = NB.bregman_point(geo, X, y)
    except NB.Infeasible as exc:
        assert seed % 2 == 0                     # y = X x for an x inside the orthant is feasible
        lam, s = exc.certificate, np.sign(x0)
        assert L >= 2 and np.all(s * (X.T @ lam) >= -1e-12) and lam @ y <= 1e-12
        return
    assert sol.kkt_residual <= 1e-10


def test_readme_problem_seeds_are_solved_or_certified():
    """The README's shapes over many seeds: no ``ArithmeticError`` without a certificate."""
    for seed in range(40):
        r = np.random.default_rng(seed)
        X = r.standard_normal((3, 8))
        geo = NB.Balanced(L=2, q=2.0, x0=[0.01] * 8)
        try:
            assert NB.bregman_point(geo, X, np.ones(3)).kkt_residual <= 1e-10
        except NB.Infeasible as exc:
            assert NB.farkas_certificate(X, np.ones(3), np.ones(8), closed=False) is not None
            assert exc.certificate @ np.ones(3) <= 1e-12


def test_off_range_y_has_a_null_space_certificate():
    X = np.array([[1.0, 2.0], [2.0, 4.0]])
    with pytest.raises(NB.Infeasible, match="range of X") as info:
        NB.bregman_point(NB.Balanced(1, 2.0, [0.5, 0.5]), X, np.array([1.0, 0.0]))
    lam = info.value.certificate
    assert np.abs(X.T @ lam).max() <= 1e-12 and lam @ np.array([1.0, 0.0]) > 0

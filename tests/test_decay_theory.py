"""Theory of weight decay (BAL-2/3, DEC-1..3, ESC-4): derivations, equilibria, escape or
collapse, discrete step counts, bad input (Hypothesis over q, L, nu, y)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

import theory
from theory import decay_balance as DB
from theory import decay_equilibria as DE
from theory import steps
from theory.derivation import Derivation

qs = st.floats(1.0, 2.0)
Ls = st.integers(1, 6)
nus = st.floats(0.05, 1.5)
ys = st.floats(0.2, 4.0)


@pytest.mark.parametrize("fn, theorem", [(DB.decoupled_balance, "BAL-2"), (DB.coupled_balance, "BAL-3"),
                                         (DE.decay_mirror, "DEC-1"), (DE.equilibria, "DEC-2"),
                                         (DE.escape_collapse, "DEC-3"), (steps.discrete_steps, "ESC-4")])
def test_derivations_record_their_steps(fn, theorem):
    out = fn()
    der = out[0] if isinstance(out, tuple) else out
    assert isinstance(der, Derivation) and der.theorem == theorem and len(der.steps) >= 3
    assert "\\item" in der.latex()


def _g(L, q, nu, y, decay, x):
    """The balanced stationarity residual g(x) = x - y + c x^-gamma, in floats."""
    if decay == "coupled":
        return x - y + nu * x ** (2 / L - 1)
    p = q / (q - 1)
    return x - y + nu ** (p - 1) * x ** (p / L - 1)


@given(Ls, st.floats(1.05, 2.0), nus, ys, st.sampled_from(["decoupled", "coupled"]))
def test_equilibrium_is_a_stable_root(L, q, nu, y, decay):
    x = theory.equilibrium(L, q, nu, y, decay)
    assume(x > 0)
    assert 0 < x <= y            # x* = y - O(nu^(p-1) y^(p/L)) rounds to y when that term is < ulp(y)
    assert abs(_g(L, q, nu, y, decay, x)) <= 1e-12 * y
    # stable from above: g > 0 just above x* (the flow moves down to it)
    assert _g(L, q, nu, y, decay, x + max(1e-6 * (y - x), 1e-9 * y)) > 0


@given(Ls, nus, ys)
def test_closed_forms(L, nu, y):
    assert theory.equilibrium(L, 1.0, nu, y, "decoupled") == pytest.approx(min(y, nu ** -L), rel=1e-15)
    assert theory.equilibrium(2, 1.5, nu, y, "coupled") == pytest.approx(max(y - nu, 0.0), rel=1e-14, abs=1e-15)
    assert theory.equilibrium(1, 1.7, nu, y, "coupled") == pytest.approx(y / (1 + nu), rel=1e-14)
    assert theory.equilibrium(3, 1.5, nu, y, "decoupled") == pytest.approx(max(y - nu**2, 0), rel=1e-13, abs=1e-15)


@given(Ls, qs, nus, ys, st.floats(1e-4, 0.5))
def test_escape_or_collapse_follows_dec3(L, q, nu, y, alpha):
    m = q * (L - 1) / L
    dec = theory.escape_or_collapse(L, q, nu, y, alpha, "decoupled")
    cpl = theory.escape_or_collapse(L, q, nu, y, alpha, "coupled")
    if q == 1 or L == 1 or m < 1 - 1e-9:
        assume(q == 1 or L == 1 or alpha**L < 1e-3 * nu ** (q / (q - 1)))   # "small alpha" for m < 1
        assert dec == "escape"
    if L == 2:
        assert cpl == ("escape" if y > nu else "collapse")
    if L >= 3 and alpha < (nu / y) ** (1 / (L - 2)):
        assert cpl == "collapse"
    if q == 2:
        assert dec == cpl


def test_m_equal_one_threshold():
    """Decoupled at m = 1 (q = L/(L-1)) escapes iff y^(q-1) > nu."""
    for L in (2, 3, 4):
        q = L / (L - 1)
        for y, nu in ((1.0, 0.5), (1.0, 1.5), (2.0, 1.3), (0.5, 0.9)):
            expect = "escape" if y ** (q - 1) > nu else "collapse"
            assert theory.escape_or_collapse(L, q, nu, y, 1e-3, "decoupled") == expect


def test_step_counts_at_scales_that_a_rational_approximation_rounds_to_zero():
    """ESC-4 at tiny ``alpha`` and ``y`` (``sp.nsimplify(1e-120)`` is 0): ``2/lambda_max = 1/y`` at
    L = 2, and at L = 3 the GD count grows like ``alpha^-(L-2) = 1/alpha`` (lower terms ~ log 1/alpha)."""
    assert theory.largest_stable_step(2, 1e-200) == pytest.approx(1e200, rel=1e-14)
    tiny, small = theory.step_count(3, 1e-120), theory.step_count(3, 1e-60)
    assert tiny * 1e-120 == pytest.approx(small * 1e-60, rel=1e-12)


def test_escape_or_collapse_from_starts_beyond_the_float64_range():
    """``alpha^L`` below 1e-308 or above 1e308 (where a float power under- or overflows): decoupled
    at m = 1 still escapes iff y^(q-1) > nu, for any alpha; a start far above y escapes; DEC-2's
    box ``min(y, nu^-L)`` with ``nu^-L`` past the float64 range is ``y``."""
    for L in (3, 4):
        q = L / (L - 1)
        for alpha in (1e-120, 1e-200):
            assert theory.escape_or_collapse(L, q, 0.5, 1.0, alpha, "decoupled") == "escape"
            assert theory.escape_or_collapse(L, q, 1.5, 1.0, alpha, "decoupled") == "collapse"
    for decay in ("coupled", "decoupled"):
        assert theory.escape_or_collapse(3, 2.0, 0.3, 1.0, 1e300, decay) == "escape"
    assert theory.equilibrium(3, 1.0, 1e-200, 2.0, "decoupled") == 2.0     # min(y, nu^-L), nu^-L = 1e600


@given(st.integers(1, 5), st.floats(0.2, 5.0))
def test_largest_stable_step_is_two_over_the_hessian_eigenvalue(L, y):
    w = torch.full((L,), y ** (1 / L), dtype=torch.float64)
    H = torch.autograd.functional.hessian(lambda v: 0.5 * (v.prod() - y) ** 2, w)
    lam = float(torch.linalg.eigvalsh(H).max())
    assert theory.largest_stable_step(L, y) == pytest.approx(2 / lam, rel=1e-12)


@given(st.integers(1, 5), st.floats(1e-4, 0.5), st.floats(1e-3, 0.1))
def test_sign_step_count_is_exact(L, alpha, eta):
    target = 0.5
    assume(alpha**L < target)
    a, n = alpha, 0
    while a**L < target:
        a, n = a + eta, n + 1
    assume(abs((target ** (1 / L) - alpha) / eta - round((target ** (1 / L) - alpha) / eta)) > 1e-9)
    assert theory.step_count(L, alpha, "sign", eta=eta) == n


def test_gd_step_count_grows_like_the_escape_time():
    """ESC-4: at the largest stable step the GD count grows like alpha^-(L-2) at L = 3."""
    counts = [theory.step_count(3, a, "gd") for a in (1e-2, 1e-3, 1e-4)]
    ratios = [counts[1] / counts[0], counts[2] / counts[1]]
    assert all(9 < r < 11 for r in ratios)


def test_schedule_integral():
    expr, integral = DB.schedule("1/(1 + t)")
    assert str(integral) == "log(t + 1)"
    with pytest.raises(ValueError, match="schedule"):
        DB.schedule("import os")


@pytest.mark.parametrize("call, name", [
    (lambda: theory.equilibrium(2, 1.5, 0.3, 1.0, decay="l2"), "decay"),
    (lambda: theory.equilibrium(2, 1.5, -0.3, 1.0), "nu"),
    (lambda: theory.equilibrium(2, 2.5, 0.3, 1.0), "q"),
    (lambda: theory.equilibrium(0, 1.5, 0.3, 1.0), "L"),
    (lambda: theory.equilibrium(2, 1.5, 0.3, -1.0), "y"),
    (lambda: theory.escape_or_collapse(2, 1.5, 0.3, 1.0, 0.0), "alpha"),
    (lambda: theory.step_count(2, 0.1, "adam"), "method"),
    (lambda: theory.step_count(2, 0.1, "sign"), "eta"),
    (lambda: theory.step_count(2, 0.1, "gd", eta=-1.0), "eta"),
])
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_no_decay_is_the_target():
    assert theory.equilibrium(3, 1.5, 0.0, 2.0) == 2.0
    assert theory.escape_or_collapse(3, 2.0, 0.0, 1.0, 1e-3, "coupled") == "escape"
    assert math.isclose(theory.equilibrium(2, 2.0, 0.3, 1.0, "coupled"), theory.equilibrium(2, 2.0, 0.3, 1.0))

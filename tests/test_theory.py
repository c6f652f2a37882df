"""Properties of the derived objects (Hypothesis over q in [1, 2], L in 1..8)."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st

import theory
from numerics._generated import numpy_kernels as K

qs = st.floats(1.0, 2.0)
Ls = st.integers(1, 8)
grid = np.logspace(-6, 3, 400)


@given(qs, Ls)
def test_hessian_positive_and_gradient_increasing(q, L):
    """R'' > 0; R' increasing on each half-line, and across the saddle iff R' is finite there
    (m < 1; for m >= 1 the saddle is a barrier separating the half-lines)."""
    assert (K.mir1_hess(grid, L, q) > 0).all()
    assert (np.diff(K.mir1_grad(grid, L, q)) > 0).all()
    if q * (L - 1) / L < 1:
        assert (np.diff(K.mir1_grad(np.concatenate([-grid[::-1], grid]), L, q)) > 0).all()


@given(qs, st.floats(0.05, 5))
def test_lambda_balanced_l2_positive_and_increasing(q, c):
    assert (K.mir2_hess(grid, q, c) > 0).all()
    assert (np.diff(K.mir2_grad(np.concatenate([-grid[::-1], grid]), q, c)) > 0).all()


@given(qs, st.floats(0.01, 3), st.floats(0.01, 3))
def test_mir3_at_depth_two_is_mir2(q, a, b):
    ck = np.array([a, b]) ** q
    x = np.logspace(-3, 2, 50)
    np.testing.assert_allclose(K.mir3_hess(x, q, ck), K.mir2_hess(x, q, abs(ck[0] - ck[1])), rtol=1e-12)


@given(qs, Ls)
def test_mir3_without_imbalance_is_mir1(q, L):
    x = np.logspace(-3, 2, 50)
    np.testing.assert_allclose(K.mir3_hess(x, q, np.zeros(L)), K.mir1_hess(x, L, q), rtol=1e-12)


@given(qs, Ls)
def test_escape_class_matches_sign_of_one_minus_m(q, L):
    cls, expo = theory.escape_class(L, q)
    m = sp.nsimplify(q) * (L - 1) / L
    expected = "bounded" if m < 1 else "logarithmic" if m == 1 else "polynomial"
    assert cls == expected
    assert expo == pytest.approx(float(L * (1 - m)))


def test_escape_class_of_the_paper():
    assert theory.escape_class(3, 2.0) == ("polynomial", -1.0)      # GF ~ alpha^-(L-2)
    assert theory.escape_class(2, 2.0)[0] == "logarithmic"
    assert theory.escape_class(1, 2.0)[0] == "bounded"
    assert all(theory.escape_class(L, 1.0)[0] == "bounded" for L in range(1, 9))


def test_legendre_classification():
    assert theory.mirror_potential(2, 2.0).legendre_class() == "logarithmic"
    assert theory.mirror_potential(3, 2.0).legendre_class() == "barrier"
    assert theory.mirror_potential(5, 1.0).legendre_class() == "finite"
    assert theory.mirror_potential(2, 1.5, imbalance=0.5).legendre_class() == "finite"
    assert not theory.mirror_potential(3, 2.0).is_bregman()


def test_special_cases_of_mir2():
    steps = {st_.text: st_.expr for st_ in theory.mirror_potential(2, 2, 0.5).derivation.steps}
    x, c = sp.symbols("x c", positive=True)
    assert any(e.rhs == sp.asinh(2 * x / c) / 2 for e in steps.values() if isinstance(e, sp.Eq))


def test_product_of_factors_is_not_a_power():
    """MIR-5: x = w|w|^(L-1) has R'' = L^-q x^-m, the product of L factors x^-m / L."""
    x = np.logspace(-2, 2, 20)
    for L, q in ((3, 2.0), (4, 1.5)):
        ratio = K.mir1_hess(x, L, q) / K.mir5_signpower_hess(x, q, L)
        np.testing.assert_allclose(ratio, L ** (q - 1), rtol=1e-13)


def test_escape_time_matches_kernel_and_quadrature():
    import mpmath

    for L, q, a in ((3, 1.5, 0.1), (2, 2.0, 0.2), (4, 1.0, 0.3), (3, 2.0, 0.05)):
        T = theory.escape_time(L, q, a, 1.0, 0.5)
        m = mpmath.mpf(q) * (L - 1) / L
        quad = mpmath.quad(lambda u: u**-m * (1 - u) ** (1 - q) / L, [a**L, 0.5])
        assert T == pytest.approx(float(quad), rel=1e-13)
        assert K.esc1_time(a**L, 0.5, 1.0, L, q) == pytest.approx(T, rel=1e-13)


def test_escape_and_arrival_times_from_starts_below_the_float64_range():
    """``alpha^L`` below 1e-308 (a float power underflows to 0) still gives the positive, finite
    time of ESC-1, checked against mpmath's quadrature in ``u = log x`` from ``x0 = alpha^L``;
    a time beyond the float64 range is ``inf``."""
    import math

    import mpmath

    with mpmath.workdps(30):
        for L, q, a in ((3, 1.5, 1e-300), (400, 1.5, 0.1), (2000, 1.25, 0.5)):
            m, lo = mpmath.mpf(q) * (L - 1) / L, L * mpmath.log(mpmath.mpf(a))
            for x1, T in ((0.5, theory.escape_time(L, q, a)), (1.0, theory.arrival_time(L, q, a))):
                nodes = mpmath.linspace(lo, mpmath.log(x1), 40)
                quad = mpmath.quad(lambda u: mpmath.exp(u * (1 - m)) * (1 - mpmath.exp(u)) ** (1 - q) / L, nodes)
                assert T > 0 and T == pytest.approx(float(quad), rel=1e-12), (L, q, a, x1)
    assert math.isinf(theory.escape_time(100_000, 1.5, 0.1))


@pytest.mark.parametrize("call, name", [
    (lambda: theory.escape_time(3, 2.5, 0.1), "q"),
    (lambda: theory.escape_time(0, 1.5, 0.1), "L"),
    (lambda: theory.escape_time(3, 1.5, -1.0), "alpha"),
    (lambda: theory.escape_time(3, 1.5, 0.1, 1.0, 2.0), "target"),
    (lambda: theory.escape_time(3, 1.5, 0.1, 1.0, 1e-4), "target"),
    (lambda: theory.escape_class(3, float("nan")), "q"),
    (lambda: theory.mirror_potential(3, 1.5, imbalance=0.5), "imbalance"),
    (lambda: theory.mirror_potential(3, 1.5, imbalance=[0.1, 0.2]), "imbalance"),
    (lambda: theory.arrival_time(3, 2.0, 0.1), "q"),
    (lambda: theory.reparam.scalar("w**2 - w"), "monotone"),
    (lambda: theory.reparam.scalar("w*v"), "g"),
    (lambda: theory.reparam.scalar("__import__('os')"), "g"),
])
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


@pytest.mark.parametrize("call", [
    lambda: theory.escape_time("3", 1.5, 0.1),
    lambda: theory.escape_time(3, True, 0.1),
    lambda: theory.escape_time(3.5, 1.5, 0.1),
    lambda: theory.reparam.scalar(3.0),
])
def test_wrong_types_raise_type_error(call):
    with pytest.raises(TypeError):
        call()


def test_potential_prints_latex_and_compiles():
    pot = theory.mirror_potential(L=3, q=2)
    assert "R''(x)" in pot.latex() and "x^{" in pot.latex()
    f = pot.numpy("grad")
    assert f(np.array([2.0])) == pytest.approx(K.mir1_grad(2.0, 3, 2.0))
    user = theory.reparam.scalar("sinh(w)").potential(q=1.5)
    assert user.numpy("hess")(np.array(0.0)) == pytest.approx(1.0)

"""A new user's paths: closed inverses on the range of g, string parameter names, readable forms,
the device check, and the experiments report's honesty."""

from __future__ import annotations

import argparse
import sys

import pytest
import sympy as sp
import torch

import numerics
import theory
from conftest import run_guarded
from numerics._generated import torch_kernels as K
from numerics.cli import device
from numerics.losses import SeparableQuadratic
from theory.special import elementary
from theory.symbols import w as x_w, x
from verify import experiments as E


@pytest.mark.parametrize("g, params, inverse", [
    ("tanh(w)", None, sp.atanh(x)),
    ("exp(w)", None, sp.log(x)),
    ("tanh(a*w)", {"a": 2}, sp.atanh(x) / 2),
])
def test_closed_inverse_is_found_on_the_range_of_g(g, params, inverse):
    r = theory.reparam.scalar(g, params=params)
    inv = r.inverse()
    assert inv is not None
    inv = inv.subs(r.params)
    for xv in (sp.Rational(1, 5), sp.Rational(1, 2), sp.Rational(9, 10)):
        assert abs(sp.N((inv - inverse.rewrite(sp.log)).subs(x, xv))) < 1e-25


def test_tanh_potential_is_closed_and_readable():
    pot = theory.reparam.scalar("tanh(w)").potential(q=1.5)
    assert sp.simplify(pot.R2 - (1 - x**2) ** sp.Rational(-3, 2)) == 0
    assert sp.simplify(elementary(pot.R1) - x / sp.sqrt(1 - x**2)) == 0
    assert "betainc" not in pot.readable() and "Integral" not in pot.readable()


def test_elementary_rewrites_betainc_and_keeps_what_it_cannot():
    half = sp.Rational(1, 2)
    assert sp.simplify(elementary(sp.betainc(half, -half, 0, x**2) / 2) - x / sp.sqrt(1 - x**2)) == 0
    z = 16 * x**2 / (16 * x**2 + 1)
    assert elementary(sp.betainc(half, 0, 0, z) / 4) == sp.asinh(4 * x) / 2        # 2 atanh(sqrt(z)) / 4 = asinh(4x) / 2
    kept = sp.betainc(half, sp.Rational(1, 4), 0, x**2 / (x**2 + 1))
    assert elementary(kept) == kept


def test_readable_forms_write_box_cox_out():
    """MIR-1 at L = 3, q = 2 (m = 4/3): ``R'(x) = int_1^x t^(-4/3)/3 dt = 1 - x^(-1/3)``, printed as
    such, not as the package's ``BoxCox``; the symbolic overview says what ``BoxCox`` is."""
    lines = dict(line.split(" = ", 1) for line in theory.mirror_potential(3, 2.0).readable().splitlines())
    assert "BoxCox" not in "".join(lines.values())
    assert sp.simplify(sp.sympify(lines["R'(x)"], locals={"x": x}) - (1 - x ** sp.Rational(-1, 3))) == 0
    from theory.__main__ import overview
    assert "BoxCox(x, l) = (x**l - 1)/l" in overview()


def test_decimal_constants_in_g_are_read_as_written():
    """``1e-120`` is the rational 10^-120 (``sp.nsimplify`` rounds it to 0, dropping the term)."""
    assert sp.expand(theory.reparam.scalar("w + 1e-120*w**3").g) == x_w + x_w**3 / 10**120
    assert sp.expand(theory.reparam.scalar("0.1*w + 2.5e-3*w**3").g) == x_w / 10 + x_w**3 / 400


def test_string_parameter_names_are_accepted_and_checked():
    r = theory.reparam.scalar("tanh(a*w)", params={"a": 2})
    assert [str(k) for k in r.params] == ["a"] and r.params[next(iter(r.params))] == 2
    with pytest.raises(ValueError, match="params"):
        theory.reparam.scalar("tanh(a*w)", params={"2a": 2})
    with pytest.raises(TypeError, match="params"):
        theory.reparam.scalar("tanh(a*w)", params={"a": "two"})


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal without CUDA")
def test_device_flag_refuses_cuda_without_cuda_naming_what_to_do():
    with pytest.raises(argparse.ArgumentTypeError, match="use --device cpu"):
        device("cuda")
    assert device("cpu") == "cpu"


def test_simulators_are_exported_by_the_numerics_package():
    from numerics import simulate

    assert set(numerics.__all__) >= {"simulate_parameter_flow", "simulate_scalar_flow", "simulate_mirror_flow", "bind"}
    assert numerics.simulate_scalar_flow is simulate.simulate_scalar_flow
    assert "extras" in numerics.simulate_scalar_flow.__doc__ and "(x, grad, p) -> (B, k)" in simulate.simulate_mirror_flow.__doc__


def test_a_generated_kernel_is_the_mirror_flows_hess_through_bind():
    """MIR-1's committed kernel ``mir1_hess(x, L, q)`` and a model's in-memory ``hess(x, q)``, each
    bound in one line, give the mirror flow of the parameter flow (relative 1e-9 = 1e3 x rtol)."""
    L, tol = 3, dict(rtol=1e-12, atol=1e-14)
    w0 = torch.full((2, 1, L), 0.4, dtype=torch.float64)
    par = numerics.simulate_parameter_flow(w0, 1.5, SeparableQuadratic(1.0), 0.5, **tol)
    mir = numerics.simulate_mirror_flow(w0.prod(-1), 1.5, SeparableQuadratic(1.0), numerics.bind(K.mir1_hess, L=L),
                                        0.5, **tol)
    torch.testing.assert_close(mir.x, par.x, rtol=1e-9, atol=0)

    kern = theory.model("w**3 + w").compile("torch")
    q = torch.tensor([1.0, 1.5, 2.0], dtype=torch.float64)
    v0 = torch.full((3, 1), 0.5, dtype=torch.float64)
    scalar = numerics.simulate_scalar_flow(v0, q, SeparableQuadratic(3.0), kern["g"], kern["dg"], 0.5, **tol)
    mir = numerics.simulate_mirror_flow(kern["g"](v0), q, SeparableQuadratic(3.0), numerics.bind(kern["hess"]), 0.5,
                                        **tol)
    assert scalar.ok() and mir.ok()
    torch.testing.assert_close(mir.x, scalar.x, rtol=1e-9, atol=0)

    with pytest.raises(TypeError, match=r"hess must be a function \(x, p\).*numerics\.bind"):
        numerics.simulate_mirror_flow(w0.prod(-1), 1.5, SeparableQuadratic(1.0), K.mir1_hess, 0.5)
    with pytest.raises(ValueError, match=r"mir1_hess takes \(x, L, q\), not M"):
        numerics.bind(K.mir1_hess, M=3)
    with pytest.raises(TypeError, match="needs 'L'"):
        numerics.simulate_mirror_flow(w0.prod(-1), 1.5, SeparableQuadratic(1.0), numerics.bind(K.mir1_hess), 0.5)


def _row(status, value, alpha=0.1):
    return dict(kind="regression", seed=0, q=2.0, L=2, decay="none", nu=0.0, alpha=alpha, status=status,
                t=1.0, rel_error=value, residual=0.0, support=1.0, l1_l2=1.5, batch_seconds=1.0)


def test_experiment_means_use_finished_runs_only_and_say_how_many(tmp_path, monkeypatch):
    monkeypatch.setattr(E, "_basis_pursuit", lambda s: dict(rel_error=0.0, support=1.0, l1_l2=1.4))
    rows = [_row("converged", 0.1), dict(_row("budget", 0.9), seed=1), _row("budget", 0.5, alpha=0.5)]
    text = E.write_tables(rows, str(tmp_path))
    line = next(ln for ln in text.splitlines() if ln.startswith("| 2 | 2 | none | 0.1 |"))
    assert "| 1/2 |" in line and "| 0.1 |" in line and "0.5 |" not in line.split("1/2")[1][:6]
    assert "| 2 | 2 | none | 0.5 | 0/1 | - |" in text
    last = E.verdict(rows).splitlines()[-1]
    assert last.startswith("PARTIAL: 2 of 3 runs stopped")
    assert E.verdict(rows[:1]).startswith("COMPLETE")


def test_experiment_verdict_fits_100_columns():
    """Many stopped batches: the list is wrapped, the last line still says PARTIAL and the count."""
    rows = [dict(_row("budget", 0.5), kind=kind, q=q, L=L, decay=decay) for kind in ("classification", "regression")
            for q in (1.25, 1.5, 1.75) for L in (1, 2, 3) for decay in ("none", "coupled", "decoupled")] * 20
    lines = E.verdict(rows + [_row("converged", 0.1)] * 1000).splitlines()
    assert max(map(len, lines)) <= 100, lines
    assert lines[-1].startswith("PARTIAL: 1080 of 2080 runs stopped") and "1000 finished" in lines[-1]
    assert sum(line.count("decay=") for line in lines) == 54


MIRROR_ON_A_COUPLED_LOSS = """
import warnings
import torch
import numerics
from numerics._generated.torch_kernels import mir1_hess
from numerics.losses import LinearRegression

X = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
loss = LinearRegression(X, X @ torch.tensor([1.0, 0.5, 2.0], dtype=torch.float64))
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    res = numerics.simulate_mirror_flow(torch.full((2, 3), 0.1, dtype=torch.float64), 1.8, loss,
                                        numerics.bind(mir1_hess, L=3), 1.0, method="rodas5")
print(res.ok(), [str(w.message)[:80] for w in caught])
"""


def test_stiff_mirror_flow_leaks_no_warnings():
    """A user's ``hess`` on a coupled loss at q in [1.75, 2) runs Rodas5 (the default there), whose Jacobian
    differentiates ``1/R''`` in forward mode: torch's internal ``torch.jit.script`` deprecation
    warnings must not reach the user (a fresh process: torch scripts on its first such call)."""
    p = run_guarded([sys.executable, "-c", MIRROR_ON_A_COUPLED_LOSS])
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["True", "[]"], p.stdout


def test_readable_forms_say_what_their_root_variable_is():
    """A potential without a closed inverse is printed in a root variable ``v``: its text states the
    equation ``v`` solves, and that equation holds at ``v = log w``, ``x = g(w)`` (MIR-5's ``w = e^v``)."""
    text = theory.reparam.scalar("w**3 + w").potential(q=1.5).readable()
    assert "exp(" in text.splitlines()[0], text
    equation = text.splitlines()[-1]
    assert equation.startswith("where v solves ") and equation.endswith(" = 0"), text
    lhs = sp.sympify(equation.removeprefix("where v solves ").removesuffix(" = 0"))
    w = sp.Rational(7, 10)
    assert sp.simplify(lhs.subs({"v": sp.log(w), "x": w**3 + w})) == 0
    assert "where v solves " in theory.mirror_potential(3, 1.5, [0, 0.2, 0.5]).readable()

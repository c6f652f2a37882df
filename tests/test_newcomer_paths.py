"""A new user's paths: closed inverses on the range of g, string parameter names, readable forms,
the device check, and the experiments report's honesty."""

from __future__ import annotations

import argparse

import pytest
import sympy as sp
import torch

import theory
from numerics.cli import device
from theory.special import elementary
from theory.symbols import x
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

"""A flow is not modified after it is built: every run-dependent choice (exponent, mode layout,
stationarity tolerance) is made by its constructor, and what changes during a run is the
switching state that the integrator carries beside the problem's parameters."""

from __future__ import annotations

import pytest
import torch

import numerics.sign
import numerics.simulate
from numerics.losses import LinearRegression, SeparableQuadratic
from numerics.sign import simulate_sign_flow
from numerics.simulate import simulate_mirror_flow, simulate_parameter_flow, simulate_scalar_flow

F64 = torch.float64


def _snapshot(obj) -> dict:
    """Every attribute of ``obj`` (and of its loss, and of that loss's base) by identity."""
    snap = dict(vars(obj))
    for owner in ("loss", "base"):
        if owner in snap:
            snap[owner + ".vars"] = _snapshot(snap[owner])
    return snap


def _same(before: dict, after: dict) -> list[str]:
    """The names whose object is not the one held before (or that came or went)."""
    changed = sorted(set(before) ^ set(after))
    for name in set(before) & set(after):
        if name.endswith(".vars"):
            changed += [f"{name}.{n}" for n in _same(before[name], after[name])]
        elif before[name] is not after[name]:
            changed.append(name)
    return sorted(changed)


@pytest.fixture
def built(monkeypatch):
    """The attributes of each system as they were when its run was set up (right after it was
    built), keyed by the system."""
    seen = {}
    for module in (numerics.simulate, numerics.sign):
        original = module.setup_run

        def spy(system, *args, _original=original, **kw):
            seen[id(system)] = (system, _snapshot(system))
            return _original(system, *args, **kw)
        monkeypatch.setattr(module, "setup_run", spy)
    return seen


def _regression(n=5, N=8, seed=3):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(N, n, generator=g, dtype=F64)
    return LinearRegression(X, X @ torch.linspace(1.0, -0.5, n, dtype=F64))


def _runs():
    sep = SeparableQuadratic(torch.tensor([1.0, -0.5], dtype=F64))
    w0 = torch.full((2, 2, 2), 0.4, dtype=F64)
    reg = _regression()
    wr = torch.full((1, 5, 2), 0.3, dtype=F64)
    unbalanced = wr * torch.tensor([1.0, 1.3], dtype=F64)
    quad = [lambda x, g, p: (g * g).sum(1, keepdim=True)]
    return {
        "parameter, separable, extras": lambda: simulate_parameter_flow(w0, 1.5, sep, 3.0, extras=quad),
        "parameter, per-trajectory q": lambda: simulate_parameter_flow(w0, torch.tensor([1.2, 2.0]), sep, 1.0),
        "parameter, reduced": lambda: simulate_parameter_flow(wr, 1.5, reg, 0.5),
        "parameter, factors": lambda: simulate_parameter_flow(wr, 1.5, reg, 0.5, reduce=False),
        "mirror": lambda: simulate_mirror_flow(w0.prod(-1), 1.5, sep, lambda x, p: 1 / x.abs(), 2.0),
        "scalar": lambda: simulate_scalar_flow(w0[..., 0], 1.5, sep, torch.sinh, torch.cosh, 2.0),
        "decoupled, q = 1": lambda: simulate_parameter_flow(wr, 1.0, reg, 2.0, decay="decoupled", nu=0.2),
        "coupled, q = 1": lambda: simulate_parameter_flow(wr, 1.0, reg, 2.0, decay="coupled", nu=0.2),
        "coupled, q = 1 and 1.5": lambda: simulate_parameter_flow(w0, torch.tensor([1.0, 1.5]), sep, 2.0,
                                                                  decay="coupled", nu=0.3),
        "decoupled, q = 1.5": lambda: simulate_parameter_flow(w0, 1.5, sep, 2.0, decay="decoupled", nu=0.3),
        "sign, separable": lambda: simulate_sign_flow(w0, sep, 2.0),
        "sign, coupled, balanced": lambda: simulate_sign_flow(wr, reg, 1.5),
        "sign, coupled, unbalanced": lambda: simulate_sign_flow(unbalanced, reg, 1.5),
    }


@pytest.mark.parametrize("case", list(_runs()))
def test_no_system_changes_during_its_run(built, case):
    res = _runs()[case]()
    assert res.ok(), res.solution.failures()
    system, before = built[id(res.system)]
    assert system is res.system
    assert _same(before, _snapshot(system)) == []


def test_the_runs_switch():
    """The cases above reach their switching surfaces: a run that never switched would not show
    a change made by a switch."""
    runs = _runs()
    for case in ("parameter, separable, extras", "decoupled, q = 1", "coupled, q = 1", "sign, coupled, balanced",
                 "sign, coupled, unbalanced"):
        s = runs[case]().solution.switching
        moved = s["frozen"].any() | ~torch.isnan(s["t_slide"]).all()
        assert bool(moved), case


def test_the_check_sees_a_change(built):
    """The spy catches an attribute set after construction (as ``q_uniform`` once was)."""
    res = _runs()["mirror"]()
    system, before = built[id(res.system)]
    system.q_uniform = 2.0
    assert _same(before, _snapshot(system)) == ["q_uniform"]
    system.loss.extra = 0
    assert _same(before, _snapshot(system)) == ["loss.vars.extra", "q_uniform"]

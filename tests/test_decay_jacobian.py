"""The weight-decay fields' derived Jacobians (both decay kinds, ``1 < q <= 2``) and the stiff
stepper that uses them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from numerics import forward
from numerics.decay import DecayFlow
from numerics.integrate import Params
from numerics.losses import LinearRegression, SeparableQuadratic
from numerics.simulate import default_method, flow_options, setup_run, simulate_parameter_flow
from theory.jacobians import decay_jacobian as decay_jacobian_derivation

F64 = torch.float64
SCHEDULES = {"constant": None, "harmonic": lambda t: 1 / (1 + t)}


def _regression(n, samples, g):
    return LinearRegression(torch.randn(samples, n, generator=g, dtype=F64), torch.randn(samples, generator=g, dtype=F64))


def test_theory_derives_the_decay_chain_rule():
    """``theory.jacobians.decay_jacobian`` differentiates both fields symbolically (``n = L = 2``,
    any ``Phi``) and asserts the assembled form that :func:`numerics.jacobians.decay_jacobian` computes."""
    der, claim = decay_jacobian_derivation.__wrapped__()
    assert len(der.steps) == 2 and der.steps[-1].expr.rhs == claim


def _field_jacobian(system, t, state, p, mode):
    """Forward-mode Jacobian of ``system.rhs`` in the state, row by row."""
    row = lambda d, i: {k: v[i:i + 1] for k, v in d.items()}   # noqa: E731
    out = []
    for i in range(state.shape[0]):
        pi = Params(row(p.problem, i), row(p.switching, i))
        mi = None if mode is None else mode[i:i + 1]
        out.append(forward.jacfwd(lambda s: system.rhs(t[i:i + 1], s[None], pi, mi)[0])(state[i]))
    return torch.stack(out)


@settings(max_examples=20)
@given(st.integers(0, 2**31 - 1), st.sampled_from(["decoupled", "coupled"]), st.integers(1, 3),
       st.sampled_from(sorted(SCHEDULES)), st.booleans(), st.booleans())
def test_decay_jacobian_matches_forward_differentiation(seed, decay, L, sched, held, freeze):
    """``DecayFlow.jacobian`` (SymPy chain rule, generated ``phi_q'``) equals torch's forward-mode
    Jacobian of the field, per row ``q`` in ``(1, 2]``, with the mode free or held at the signs of
    another state (flipped ``phi_q`` branches), and with a frozen coordinate (zero rows)."""
    g = torch.Generator().manual_seed(seed)
    n, B = 4, 3
    loss = _regression(n, 3, g)
    q = torch.tensor([1.2, 1.6, 2.0], dtype=F64)
    system = DecayFlow(loss, n, L, decay, SCHEDULES[sched], **flow_options(q, 1e-10))
    w = (0.2 + torch.rand(B, n, L, generator=g, dtype=F64)) * torch.where(
        torch.rand(B, n, L, generator=g) < 0.3, -1.0, 1.0).to(F64)
    y = w.reshape(B, -1)
    nu = 0.05 + torch.rand(B, generator=g, dtype=F64)
    p, _ = setup_run(system, y, q, loss, device="cpu", params={"nu": nu, "w_scale": w.abs().amax((1, 2))})
    if freeze:
        frozen = torch.zeros(B, n, dtype=torch.bool)
        frozen[:, 1] = True
        p = p.with_switching(dict(p.switching, frozen=frozen))
    t = torch.rand(B, generator=g, dtype=F64)
    mode = None
    if held:
        other = y + 0.5 * torch.randn(y.shape, generator=g, dtype=F64)
        mode = torch.sign(system.switches(t, other, p))
    J = system.jacobian(t, y, p, mode)
    assert torch.allclose(J, _field_jacobian(system, t, y, p, mode), rtol=1e-10, atol=1e-12)


def test_decay_flows_are_stiff_capable_except_with_sign_rows():
    g = torch.Generator().manual_seed(0)
    loss = _regression(3, 2, g)
    for decay in ("decoupled", "coupled"):
        assert DecayFlow(loss, 3, 2, decay, q=1.5).stiff_capable
        assert not DecayFlow(loss, 3, 2, decay, q=torch.tensor([1.0, 1.5])).stiff_capable
        assert not DecayFlow(loss, 3, 2, decay, q=1.0).stiff_capable
        assert DecayFlow(loss, 3, 2, decay, q=1.0).jacobian(None, None, None, None) is None


def test_default_method_picks_rodas5_for_decay_flows_from_q_1_5():
    g = torch.Generator().manual_seed(0)
    loss, q = _regression(3, 2, g), lambda *v: torch.tensor(v, dtype=F64)   # noqa: E731
    for decay in ("decoupled", "coupled"):
        system = DecayFlow(loss, 3, 2, decay, q=1.5)
        assert default_method(system, q(1.5)) == default_method(system, q(1.75, 1.9)) == "rodas5"
        assert default_method(system, q(1.25)) == default_method(system, q(2.0)) == "dop853"
        assert default_method(DecayFlow(loss, 3, 2, decay, q=1.0), q(1.0)) == "dop853"
        separable = DecayFlow(SeparableQuadratic(torch.ones(3, dtype=F64)), 3, 2, decay, q=1.5)
        assert default_method(separable, q(1.5)) == "dop853"


@pytest.mark.parametrize("decay, q, sched", [("decoupled", 1.5, "constant"), ("coupled", 1.5, "constant"),
                                             ("decoupled", 1.75, "harmonic"), ("coupled", 1.75, "harmonic")])
def test_decay_run_by_rodas5_agrees_with_dop853(decay, q, sched):
    """The default (Rodas5, with :meth:`DecayFlow.jacobian`) and DOP853 on a 5-coordinate regression
    (3 samples, L = 2, two starts) at rtol 1e-11, up to t = 0.3, before any surface is crossed: each
    accepted step's local error is at most rtol relative, so the final states differ by at most the
    sum over both runs' steps, ``(n_rodas5 + n_dop853) rtol`` relative (20 to 50 steps each). (Across
    a crossing of a surface ``z = 0`` Rodas5's error estimate misses the cusp of ``|z|^(q-1)``: 2.9e-8
    at t = 0.5 on the second start at q = 1.5, coupled, where DOP853 stays within 1.2e-11 of scipy's
    LSODA; the same holds without decay, README known limits.)"""
    g = torch.Generator().manual_seed(4)
    loss = _regression(5, 3, g)
    w0 = 0.2 + 0.4 * torch.rand(2, 5, 2, generator=g, dtype=F64)
    rtol = 1e-11
    kw = dict(decay=decay, nu=0.05, schedule=SCHEDULES[sched], rtol=rtol, atol=1e-13, max_steps=1000)
    stiff = simulate_parameter_flow(w0, q, loss, 0.3, **kw)
    assert default_method(stiff.system, torch.tensor(q, dtype=F64)) == "rodas5"
    explicit = simulate_parameter_flow(w0, q, loss, 0.3, method="dop853", **kw)
    assert stiff.ok() and explicit.ok(), (stiff.solution.failures(), explicit.solution.failures())
    err = (stiff.x - explicit.x).abs().amax(1) / explicit.x.abs().amax(1)
    bar = (stiff.solution.n_steps + explicit.solution.n_steps) * rtol
    assert bool((err <= bar).all()), (err, bar)

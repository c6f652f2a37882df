"""The mode layout: named blocks of a flow's switching functions, and the flows' own layouts."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from numerics.decay import DecayFlow
from numerics.flows import BalancedReduction, DeepDiagonalFlow, MirrorFlow, ScalarFlow
from numerics.geometry import frozen_phi, hold, phi
from numerics.integrate import driver
from numerics.losses import SeparableQuadratic
from numerics.modes import ModeLayout
from numerics.runs import setup_run
from numerics.simulate import simulate_parameter_flow


@settings(max_examples=30)
@given(st.lists(st.integers(1, 6), min_size=1, max_size=4), st.integers(1, 3))
def test_join_and_block_round_trip(sizes, batch):
    """Blocks come back in order, at their offsets (cumulative sizes), and ``join`` inverts ``split``."""
    layout = ModeLayout(**{f"b{i}": s for i, s in enumerate(sizes)})
    assert layout.names == tuple(f"b{i}" for i in range(len(sizes)))
    assert layout.width == sum(sizes)
    t = torch.arange(batch * layout.width, dtype=torch.float64).reshape(batch, layout.width)
    start = 0
    for name, size in layout.blocks:
        assert torch.equal(layout.block(t, name), t[:, start: start + size])
        start += size
    assert torch.equal(layout.join(**layout.split(t)), t)
    reordered = dict(reversed(list(layout.split(t).items())))     # keywords in any order
    assert torch.equal(layout.join(**reordered), t)


def test_block_is_a_view():
    layout = ModeLayout(gradient=2, factors=4)
    hit = torch.zeros(1, layout.width, dtype=torch.bool)
    layout.block(hit, "factors")[0, 1] = True
    assert hit.nonzero().tolist() == [[0, 3]]


def test_bad_names_and_sizes_are_clear_errors():
    layout = ModeLayout(gradient=2, factors=4)
    t = torch.zeros(3, 6)
    with pytest.raises(KeyError, match="no block 'exits'.*gradient, factors"):
        layout.block(t, "exits")
    with pytest.raises(ValueError, match="exactly the blocks gradient, factors"):
        layout.join(gradient=t[:, :2])
    with pytest.raises(ValueError, match="exactly the blocks"):
        layout.join(gradient=t[:, :2], factors=t[:, 2:], exits=t[:, :2])
    with pytest.raises(ValueError, match=r"'factors' must have shape \(B, 4\), got \(3, 3\)"):
        layout.join(gradient=t[:, :2], factors=t[:, 3:])
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="integer size >= 1"):
            ModeLayout(gradient=bad)
    with pytest.raises(ValueError, match="at least one block"):
        ModeLayout()


def test_layout_is_immutable_and_compared_by_blocks():
    layout = ModeLayout(gradient=2)
    with pytest.raises(AttributeError):
        layout.blocks = (("gradient", 3),)
    assert layout == ModeLayout(gradient=2) and layout != ModeLayout(gradient=2, x=2)


def test_each_flow_declares_the_blocks_of_its_switches():
    """The layout's width is the number of switching functions the flow returns (q = 1)."""
    n, L, B = 3, 2, 2
    loss = SeparableQuadratic(torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64))
    nu = {"nu": torch.full((B,), 0.1, dtype=torch.float64)}
    w = torch.linspace(0.3, 1.2, B * n * L, dtype=torch.float64).reshape(B, n * L)
    x = w.reshape(B, n, L).prod(-1)
    t = torch.zeros(B, dtype=torch.float64)
    q1 = {"q": 1.0}                                     # decay: q = 1 (hybrid) layout
    cases = [(DeepDiagonalFlow(loss, n, L, **q1), w, ("gradient", "factors")),
             (MirrorFlow(loss, n, lambda x, p: torch.ones_like(x), **q1), x, ("gradient",)),
             (BalancedReduction(loss, n, 1, **q1), x, ("gradient",)),
             (BalancedReduction(loss, n, L, **q1), x, ("gradient", "x")),
             (ScalarFlow(loss, n, torch.sinh, torch.cosh, **q1), x, ("gradient", "dg"))]
    for decay, names in (("decoupled", ("gradient", "factors", "exits")),
                         ("coupled", ("surfaces", "factors", "exits"))):
        cases.append((DecayFlow(loss, n, L, decay, **q1), w, names))
    for flow, y, names in cases:
        p, _ = setup_run(flow, y, 1.0, loss, device="cpu", params=nu)
        assert flow.layout.names == names
        assert flow.switches(t, y, p).shape == (B, flow.layout.width)


def test_held_signs_are_built_once_per_mode_tensor_and_follow_its_changes():
    """``Flow.held`` keeps the signs of the last mode tensor it saw (every stage of a step gets
    the same tensor), builds them anew for another tensor and after an in-place change."""
    n, L, B = 3, 2, 2
    flow = DeepDiagonalFlow(SeparableQuadratic(torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)), n, L, q=1.5)
    w = torch.linspace(0.3, 1.2, B * n * L, dtype=torch.float64).reshape(B, n * L)
    p, _ = setup_run(flow, w, 1.5, flow.loss, device="cpu")
    mode = torch.sign(flow.switches(torch.zeros(B, dtype=torch.float64), w, p))
    first = flow.held(mode)
    assert flow.held(mode) is first and flow.held(None) is None
    assert torch.equal(first.sigma, flow.held_signs(mode)) and first.everywhere
    again = flow.held(mode.clone())
    assert again is not first and torch.equal(again.sigma, first.sigma)
    mode[0, 0] = -mode[0, 0]                        # the gradient sign of coordinate 0, row 0
    changed = flow.held(mode)
    assert changed is not first and torch.equal(changed.sigma[0, 0], -first.sigma[0, 0])
    mode.zero_()
    assert flow.held(mode) is None                  # no sign held: the plain phi_q


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([-1.0, 0.0, 1.0]), min_size=6, max_size=6),
       st.lists(st.floats(-3, 3), min_size=6, max_size=6), st.sampled_from([1.0, 1.25, 1.5, 1.75]))
def test_frozen_phi_holds_the_mode_signs(sigma, z, q):
    """``frozen_phi(z, q, hold(sigma))`` is ``sigma |z|^(q-1)`` where a sign is held and
    ``phi_q(z)`` elsewhere, bit for bit, on the three paths (none, some, every sign held)."""
    sigma, z = torch.tensor(sigma, dtype=torch.float64), torch.tensor(z, dtype=torch.float64)
    want = torch.where(sigma != 0, sigma, torch.sign(z)) * phi(z.abs(), q)
    assert torch.equal(frozen_phi(z, q, hold(sigma)), want)


def test_the_mode_is_the_sign_of_the_switching_functions_after_every_step(monkeypatch):
    """The driver takes the next step's mode from the switching functions it evaluated at the
    step's end (anew where a step was cut or a switch applied); at every step it equals the
    signs of the switching functions at the rows' states (a separable loss: no BLAS rounding)."""
    loss = SeparableQuadratic(torch.tensor([0.8, -0.6, 0.05], dtype=torch.float64))
    w0 = torch.tensor([[[0.5, 0.4], [0.3, -0.2], [0.6, 0.7]], [[-0.4, 0.3], [0.2, 0.25], [0.1, 0.9]]],
                      dtype=torch.float64)
    update, seen = driver._Run.update_mode_and_field, []

    def checked(run, *args):
        update(run, *args)
        s = run.s
        assert torch.equal(s.mode, torch.sign(run.system.switches(s.t, s.y, s.p)))
        seen.append(int(args[2].sum()))           # rows cut at this step
    monkeypatch.setattr(driver._Run, "update_mode_and_field", checked)
    res = simulate_parameter_flow(w0, 1.5, loss, 3.0, rtol=1e-10, atol=1e-12, method="dop853")
    assert res.ok() and len(seen) > 20 and sum(seen) > 0   # some steps were cut at a switch

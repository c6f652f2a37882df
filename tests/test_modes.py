"""The mode layout: named blocks of a flow's switching functions, and the flows' own layouts."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from numerics.decay import DecayFlow
from numerics.flows import BalancedReduction, DeepDiagonalFlow, MirrorFlow, ScalarFlow
from numerics.losses import SeparableQuadratic
from numerics.modes import ModeLayout
from numerics.runs import setup_run


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
    for decay, names in (("decoupled", ("gradient", "factors", "exits")), ("coupled", ("surfaces", "exits"))):
        cases.append((DecayFlow(loss, n, L, decay, **q1), w, names))
    for flow, y, names in cases:
        p, _ = setup_run(flow, y, 1.0, loss, device="cpu", params=nu)
        assert flow.layout.names == names
        assert flow.switches(t, y, p).shape == (B, flow.layout.width)

"""Optimizers on a small nn.Module against hand-computed steps; optax-style blocks; state dicts."""

from __future__ import annotations

import io

import pytest
import torch

from numerics.optim import (SignDescent, SteepestDescent, add_decayed_weights, apply_updates, chain,
                            scale, scale_by_schedule, scale_by_sign, scale_by_steepest, steepest)


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1)).double()


def _data():
    g = torch.Generator().manual_seed(1)
    return torch.randn(8, 3, generator=g, dtype=torch.float64), torch.randn(8, 1, generator=g, dtype=torch.float64)


def _grads(model):
    X, Y = _data()
    model.zero_grad()
    ((model(X) - Y) ** 2).mean().backward()
    return [w.grad.clone() for w in model.parameters()]


def _phi(z, q):
    return torch.sign(z) * z.abs() ** (q - 1)


@pytest.mark.parametrize("q", [1.0, 1.5, 2.0])
@pytest.mark.parametrize("wd, decoupled", [(0.0, True), (0.1, True), (0.1, False)])
def test_one_step_matches_hand_computation(q, wd, decoupled):
    model, lr = _model(), 0.05
    before = [w.detach().clone() for w in model.parameters()]
    grads = _grads(model)
    SteepestDescent(model.parameters(), lr=lr, q=q, weight_decay=wd, decoupled=decoupled).step()
    for w0, g, w1 in zip(before, grads, model.parameters()):
        expected = w0 - lr * (_phi(g, q) + wd * w0) if decoupled else w0 - lr * _phi(g + wd * w0, q)
        torch.testing.assert_close(w1.detach(), expected, rtol=1e-15, atol=1e-15)


def test_sign_descent_is_adam_without_moments():
    """Adam / AdamW with beta1 = beta2 = 0 and a tiny eps take the same steps (OPT-2)."""
    X, Y = _data()
    for decoupled, cls in ((False, torch.optim.Adam), (True, torch.optim.AdamW)):
        ours, theirs = _model(), _model()
        o1 = SignDescent(ours.parameters(), lr=1e-2, weight_decay=0.05, decoupled=decoupled)
        o2 = cls(theirs.parameters(), lr=1e-2, betas=(0.0, 0.0), eps=1e-14, weight_decay=0.05)
        for _ in range(10):
            for m, o in ((ours, o1), (theirs, o2)):
                o.zero_grad()
                ((m(X) - Y) ** 2).mean().backward()
                o.step()
        for a, b in zip(ours.parameters(), theirs.parameters()):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


def test_blocks_compose_like_the_optimizer():
    """Coupled vs decoupled is only where add_decayed_weights sits in the chain."""
    model = _model()
    params = [w.detach().clone() for w in model.parameters()]
    grads = _grads(model)
    lr, wd, q = 0.05, 0.1, 1.5
    coupled = chain(add_decayed_weights(wd), scale_by_steepest(q), scale(-lr))
    decoupled = chain(scale_by_steepest(q), add_decayed_weights(wd), scale(-lr))
    for tx, flag in ((coupled, False), (decoupled, True)):
        upd, _ = tx.update(grads, tx.init(params), params)
        new = apply_updates(params, upd)
        ref = _model()
        _grads(ref)
        SteepestDescent(ref.parameters(), lr=lr, q=q, weight_decay=wd, decoupled=flag).step()
        for a, b in zip(new, ref.parameters()):
            torch.testing.assert_close(a, b.detach(), rtol=1e-15, atol=1e-15)
    assert torch.equal(scale_by_sign().update([torch.tensor([-2.0, 0.0, 3.0])], ())[0][0], torch.tensor([-1.0, 0.0, 1.0]))


def test_pytrees_and_purity():
    tree = {"a": torch.tensor([1.0, -2.0], dtype=torch.float64), "b": [torch.tensor(3.0, dtype=torch.float64)]}
    tx = steepest(lr=0.5, q=1.0)
    upd, state = tx.update(tree, tx.init(tree), tree)
    new = apply_updates(tree, upd)
    assert torch.equal(new["a"], torch.tensor([0.5, -1.5], dtype=torch.float64))
    assert torch.equal(new["b"][0], torch.tensor(2.5, dtype=torch.float64))
    assert torch.equal(tree["a"], torch.tensor([1.0, -2.0], dtype=torch.float64))       # inputs untouched


def test_schedule_state_round_trips_through_torch_save():
    tx = chain(scale_by_sign(), scale_by_schedule(lambda n: -0.1 / (1 + n)))
    params = [torch.ones(2, dtype=torch.float64)]
    state = tx.init(params)
    for _ in range(3):
        _, state = tx.update([torch.ones(2, dtype=torch.float64)], state, params)
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=False)
    assert int(loaded[1].count) == 3
    a, _ = tx.update([torch.ones(2, dtype=torch.float64)], state, params)
    b, _ = tx.update([torch.ones(2, dtype=torch.float64)], loaded, params)
    torch.testing.assert_close(a[0], b[0])
    torch.testing.assert_close(a[0], torch.full((2,), -0.1 / 4, dtype=torch.float64))


def test_state_dict_round_trip_and_lr_scheduler():
    model = _model()
    opt = SteepestDescent([{"params": model[0].parameters(), "q": 1.25},
                           {"params": model[2].parameters(), "weight_decay": 0.2, "decoupled": False}], lr=0.03)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    _grads(model)
    opt.step()
    sched.step()
    sd = opt.state_dict()
    other = _model()
    other.load_state_dict(model.state_dict())
    opt2 = SteepestDescent(other.parameters(), lr=1.0, q=2.0)
    with pytest.raises(ValueError):
        opt2.load_state_dict(sd)                    # different number of groups
    opt2 = SteepestDescent([{"params": other[0].parameters()}, {"params": other[2].parameters()}], lr=1.0, q=2.0)
    opt2.load_state_dict(sd)
    assert [g["lr"] for g in opt2.param_groups] == [0.015, 0.015]
    assert (opt2.param_groups[0]["q"], opt2.param_groups[1]["decoupled"]) == (1.25, False)
    for m, o in ((model, opt), (other, opt2)):
        _grads(m)
        o.step()
    for a, b in zip(model.parameters(), other.parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("kwargs, name", [
    (dict(lr=0.0), "lr"), (dict(lr=0.1, q=0.5), "q"), (dict(lr=0.1, q=3.0), "q"),
    (dict(lr=0.1, weight_decay=-1.0), "weight_decay"),
])
def test_bad_input_names_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        SteepestDescent(_model().parameters(), **kwargs)


def test_bad_block_input():
    with pytest.raises(TypeError, match="decoupled"):
        SteepestDescent(_model().parameters(), lr=0.1, decoupled="yes")
    with pytest.raises(TypeError, match="chain"):
        chain(scale(1.0), lambda u: u)
    with pytest.raises(ValueError, match="params"):
        add_decayed_weights(0.1).update([torch.ones(1)], ())
    emb = torch.nn.Embedding(4, 2, sparse=True)
    emb(torch.tensor([1])).sum().backward()
    with pytest.raises(RuntimeError, match="sparse"):
        SignDescent(emb.parameters(), lr=0.1).step()

"""Fine-tuning at the saddle: product adapters on a network pretrained on other digits.

Data: scikit-learn's bundled ``load_digits`` (1,797 8x8 images, no download), pixels / 16,
one fixed stratified split (70 % train, 30 % validation). Pretraining: an MLP
``64 -> 32 (ReLU) -> 5`` on digits 0-4 (Adam, lr 1e-2, 300 full-batch steps, initialized from
the task's seed). Fine-tuning on digits 5-9 (labels ``d - 5``, the pretrained head reused):
the base weights are frozen and each layer ``W`` becomes ``W + Delta W`` with a product
adapter of depth ``L``, ``Delta W = F_L ... F_1`` (``L = 2``: ``B A``, rank ``r = 4``), every
factor entry ``alpha * N(0, 1)``: at small ``alpha`` the start is a saddle of the
fine-tuning loss (``Delta W = 0`` with vanishing gradient of every factor).

Optimizers on the factors (PyTorch's decay convention: ``lr * weight_decay`` per step):
``sgd`` (``q = 2``), ``adam``/``adamw`` (``q = 1`` by analogy: OPT-2 covers
``beta1 = beta2 = 0`` only), ``sign`` (sign descent, ``q = 1``) and ``steepest`` (``q = 1.5``),
the last two from :mod:`numerics.optim`. A run *escapes* at the first step whose training
loss is at most ``ESCAPE_FRACTION`` of the loss at ``Delta W = 0``. At the end the extreme
Hessian eigenvalues of the training loss in the factors come from Lanczos on
Hessian-vector products (:mod:`verify.paper.lanczos`).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

from numerics import optim

from .lanczos import hessian_vector_product, lanczos

HIDDEN, RANK, PRETRAIN_STEPS, PRETRAIN_LR = 32, 4, 300, 1e-2
ESCAPE_FRACTION = 0.5
LANCZOS_STEPS, NEGATIVE_TOL = 40, 1e-3      # a Ritz value < -NEGATIVE_TOL * lambda_max counts as negative
OPTIMIZERS = {"sgd": 2.0, "adam": 1.0, "adamw": 1.0, "sign": 1.0, "steepest": 1.5}   # name -> q
CURVE_POINTS = 60


@lru_cache(maxsize=1)
def digits():
    """``{"A": (X_train, y_train), "B": (X_train, y_train, X_val, y_val)}``: digits 0-4 and 5-9."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    Xtr, Xva, ytr, yva = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
    t = lambda a: torch.as_tensor(a, dtype=torch.float64)            # noqa: E731
    lab = lambda a: torch.as_tensor(a, dtype=torch.int64)            # noqa: E731
    a, b, bv = ytr < 5, ytr >= 5, yva >= 5
    return {"A": (t(Xtr[a]), lab(ytr[a])),
            "B": (t(Xtr[b]), lab(ytr[b] - 5), t(Xva[bv]), lab(yva[bv] - 5))}


@lru_cache(maxsize=8)
def pretrained(seed: int) -> tuple:
    """``(W1, b1, W2, b2)`` of the MLP trained on digits 0-4 (frozen afterwards)."""
    X, y = digits()["A"]
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(64, HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, 5)).double()
    opt = torch.optim.Adam(net.parameters(), lr=PRETRAIN_LR)
    for _ in range(PRETRAIN_STEPS):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(X), y).backward()
        opt.step()
    return tuple(p.detach().clone() for p in (net[0].weight, net[0].bias, net[2].weight, net[2].bias))


def adapter(shape, L: int, alpha: float, gen) -> list[torch.Tensor]:
    """Factors ``F_1 (r x in), F_2..F_{L-1} (r x r), F_L (out x r)``, entries ``alpha N(0, 1)``."""
    out, inp = shape
    dims = [inp] + [RANK] * (L - 1) + [out]
    return [(alpha * torch.randn(dims[k + 1], dims[k], generator=gen, dtype=torch.float64)).requires_grad_()
            for k in range(L)]


def product(factors) -> torch.Tensor:
    d = factors[0]
    for f in factors[1:]:
        d = f @ d
    return d


def logits(base, adapters, X):
    W1, b1, W2, b2 = base
    h = torch.relu(X @ (W1 + product(adapters[0])).T + b1)
    return h @ (W2 + product(adapters[1])).T + b2


def make_optimizer(name: str, params, lr: float, weight_decay: float = 0.0):
    """The optimizer ``name`` of :data:`OPTIMIZERS`; ``sgd``/``adam`` decay is coupled (L2 in
    the gradient), ``adamw``/``sign`` decay decoupled."""
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "sign":
        return optim.SignDescent(params, lr=lr, weight_decay=weight_decay, decoupled=True)
    if name == "steepest":
        return optim.SteepestDescent(params, lr=lr, q=1.5, weight_decay=weight_decay, decoupled=True)
    raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {name!r}")


def finetune(seed: int, L: int, alpha: float, optimizer: str, lr: float, steps: int,
             weight_decay: float = 0.0, hessian: bool = False, stop_at_escape: bool = False) -> dict:
    """One fine-tuning run; returns the measurements and the training-loss curve
    (``stop_at_escape``: end at the escape step; a diverged run, non-finite loss, ends there
    with ``diverged = 1`` and no Hessian)."""
    torch.set_num_threads(1)
    base = pretrained(seed)
    X, y, Xv, yv = digits()["B"]
    gen = torch.Generator().manual_seed(10_000 + seed)
    adapters = [adapter(base[0].shape, L, alpha, gen), adapter(base[2].shape, L, alpha, gen)]
    params = [f for a in adapters for f in a]
    zero = [[torch.zeros_like(f) for f in a] for a in adapters]
    with torch.no_grad():
        norm0 = float(sum(product(a).norm() ** 2 for a in adapters) ** 0.5)
        saddle_loss = float(torch.nn.functional.cross_entropy(logits(base, zero, X), y))
    threshold = ESCAPE_FRACTION * saddle_loss
    opt = make_optimizer(optimizer, params, lr, weight_decay)
    loss_fn = lambda: torch.nn.functional.cross_entropy(logits(base, adapters, X), y)   # noqa: E731
    escape, curve, every = math.nan, [], max(1, steps // CURVE_POINTS)
    loss = math.nan
    for step in range(steps + 1):
        opt.zero_grad()
        out = loss_fn()
        loss = out.item()
        if not math.isfinite(loss):
            break
        if math.isnan(escape) and loss <= threshold:
            escape = step
            if stop_at_escape:
                break
        if step % every == 0 or step == steps:
            curve.append(dict(series="train_loss", x=step, y=loss))
        if step == steps:
            break
        out.backward()
        opt.step()
    with torch.no_grad():
        acc = float((logits(base, adapters, Xv).argmax(1) == yv).double().mean())
        norm = float(sum(product(a).norm() ** 2 for a in adapters) ** 0.5)
    diverged = not (math.isfinite(loss) and math.isfinite(norm))
    res = dict(val_accuracy=acc, final_loss=loss, saddle_loss=saddle_loss, threshold=threshold,
               escaped=int(not math.isnan(escape)), escape_step=escape, delta_norm=norm, delta_norm0=norm0,
               diverged=int(diverged), lambda_max=math.nan, lambda_min=math.nan, n_negative=math.nan,
               negative_mass=math.nan)
    if hessian and not diverged:
        n = sum(p.numel() for p in params)
        ritz = lanczos(hessian_vector_product(loss_fn, params), n, LANCZOS_STEPS, seed=seed).numpy()
        top = float(ritz.max())
        neg = ritz[ritz < -NEGATIVE_TOL * max(top, 0.0)]
        res.update(lambda_max=top, lambda_min=float(ritz.min()), n_negative=int(neg.size),
                   negative_mass=float(-neg.sum()))
        order = np.argsort(-np.abs(ritz))[:20]
        curve += [dict(series="hessian", x=i + 1, y=float(ritz[j])) for i, j in enumerate(order)]
    return dict(rows=[res], curves=curve)


__all__ = ["digits", "pretrained", "adapter", "product", "logits", "make_optimizer", "finetune",
           "OPTIMIZERS", "ESCAPE_FRACTION", "NEGATIVE_TOL"]

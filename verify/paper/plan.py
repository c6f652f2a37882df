"""The sweep: every configuration of the four experiments as an independent seeded task.

Default size (the paper's table shapes at CPU scale) and ``quick`` (a smoke run of every
code path, a few tasks each). ``run_task`` is the one function the runner ships to a
process or a Dask worker.
"""

from __future__ import annotations

from . import dln, finetune, sparse

SMALL_LR = 3e-3
SGD_GRID = (0.03, 0.1, 0.3)                 # "SGD tuned lr": the grid value with the best mean accuracy
STEEPEST_LR = 1e-2
ADAMW_DECAY = 1e-2
FINETUNE_ALPHA = 1e-2
ESCAPE_ALPHAS = (1e-4, 1e-3, 1e-2, 1e-1)
ESCAPE_LR = {"sgd": 0.1, "adam": SMALL_LR, "sign": SMALL_LR, "steepest": STEEPEST_LR}
DECAY_NU, DECAY_TIME = 0.1, 10.0            # nu and flow time t = lr * steps of the decay runs
DECAY_LR = {"sgd": 0.1, "adam": 0.02, "adamw": 0.02}
DECAY_ALPHAS = (0.03, 0.06, 0.2, 0.6)
DLN_ALPHAS = (1e-4, 1e-3, 1e-2, 1e-1)
DLN_GD_GRID = (0.01, 0.03, 0.1)
SPARSE_ALPHA, SPARSE_LR = 0.1, 0.05


def accuracy_configs(quick: bool):
    """``(label, optimizer, lr, weight_decay)`` of the fine-tuning table."""
    grid = SGD_GRID[1:2] if quick else SGD_GRID
    return ([("SGD small lr", "sgd", SMALL_LR, 0.0)] +
            [(f"SGD lr={lr:g}", "sgd", lr, 0.0) for lr in grid] +
            [("Adam small lr", "adam", SMALL_LR, 0.0), ("AdamW", "adamw", SMALL_LR, ADAMW_DECAY),
             ("sign descent", "sign", SMALL_LR, 0.0), ("steepest q=1.5", "steepest", STEEPEST_LR, 0.0)])


def tasks(quick: bool = False) -> list[dict]:
    seeds = range(2 if quick else 5)
    few = range(1 if quick else 3)
    depths = (2,) if quick else (2, 3)
    steps = 100 if quick else 500
    out = [dict(experiment="finetune", label=label, optimizer=o, lr=lr, weight_decay=wd, L=L,
                alpha=FINETUNE_ALPHA, steps=steps, seed=s)
           for L in depths for label, o, lr, wd in accuracy_configs(quick) for s in seeds]
    alphas = ESCAPE_ALPHAS[1:] if quick else ESCAPE_ALPHAS
    out += [dict(experiment="escape", optimizer=o, lr=ESCAPE_LR[o], L=L, alpha=a, steps=200 if quick else 1500, seed=s)
            for L in depths for o in (("sgd", "sign") if quick else ESCAPE_LR) for a in alphas for s in few]
    scale = 0.1 if quick else 1.0
    out += [dict(experiment="decay", optimizer=o, lr=DECAY_LR[o], weight_decay=DECAY_NU, L=L, alpha=a,
                 steps=int(round(scale * DECAY_TIME / DECAY_LR[o])), seed=s)
            for L in ((3,) if quick else (2, 3, 4)) for o in (("sgd", "adamw") if quick else DECAY_LR)
            for a in (DECAY_ALPHAS[1::2] if quick else DECAY_ALPHAS) for s in few]
    dln_alphas = DLN_ALPHAS[2:] if quick else DLN_ALPHAS
    out += [dict(experiment="dln_flow", q=q, alphas=list(dln_alphas), t_end=1e2 if quick else 2e4,
                 wall=30.0 if quick else 120.0, seed=s)
            for q in ((2.0,) if quick else (2.0, 1.5, 1.0)) for s in few]
    opts = [("gd", 1e-3)] + [("gd", lr) for lr in DLN_GD_GRID] + [("sign", 1e-3), ("adam", 1e-3)]
    out += [dict(experiment="dln_optimizer", name=n, lr=lr, alphas=list(dln_alphas),
                 steps=300 if quick else 5000, seed=s)
            for n, lr in (opts[2:3] + opts[4:5] if quick else opts) for s in few]
    out += [dict(experiment="sparse", q=q, L=L, alpha=SPARSE_ALPHA, lr=SPARSE_LR, steps=200 if quick else 3000, seed=s)
            for q in ((1.0, 2.0) if quick else (1.0, 1.5, 2.0)) for L in ((1, 3) if quick else (1, 2, 3, 4)) for s in few]
    return sorted(out, key=lambda t: t["experiment"] != "dln_flow")      # the longest tasks first


def run_task(task: dict) -> dict:
    """Run one task (any process, any Dask worker): ``{"rows": [...], "curves": [...]}``."""
    t = {k: v for k, v in task.items() if k != "experiment"}
    kind = task["experiment"]
    if kind == "finetune":
        t.pop("label")
        return finetune.finetune(**t, hessian=True)
    if kind == "escape":
        return finetune.finetune(**t, stop_at_escape=True)
    if kind == "decay":
        return finetune.finetune(**t)
    if kind in ("dln_flow", "dln_optimizer"):
        t["alphas"] = tuple(t["alphas"])
        return dln.flow(**t) if kind == "dln_flow" else dln.optimizer(**t)
    if kind == "sparse":
        return sparse.run(**t)
    raise ValueError(f"unknown experiment {kind!r}")


EXPERIMENTS = ("finetune", "escape", "decay", "dln_flow", "dln_optimizer", "sparse")

__all__ = ["tasks", "run_task", "accuracy_configs", "EXPERIMENTS"]

"""``python -m verify.experiments``: what the geometry does to the learned solution, measured.

Sparse recovery in underdetermined regression (``N = 6`` samples, ``n = 12`` coordinates, a
2-sparse truth with random support, signs and magnitudes in ``[0.5, 1.5]``) and sparse
classification (exponential loss, ``N = 24``, ``n = 12``, 2-sparse teacher), learned by the
two-branch deep diagonal model ``x = prod_k u_k - prod_k v_k`` from ``u = v = alpha`` (``x0 = 0``,
either sign reachable) with steepest flows of exponent ``q`` and depth ``L``:

* regression, no decay: ``q`` (default ``{1.5, 1.75, 2}``, ``--q``) x ``L in {1, 2, 3}`` x
  ``alpha`` in four decades; runs end when ``max|X x - y| <= 1e-6 max|y|`` (or at ``t = 1e4``);
* regression with weight decay ``nu = 1e-3`` (decoupled / coupled), ``L = 2``, read at ``t = 100``;
* classification, ``L in {1, 2, 3}``, read at ``t = 1e4``.

``q > 1`` runs on the batched DOP853. ``--q 1`` adds sign descent: without decay the exact
event-driven sign flow (:mod:`numerics.sign`), with decay the Filippov sliding flow
(:mod:`numerics.decay`); it is not run on the exponential loss (the exact sign flow needs a
quadratic loss). It is not in the default sweep: at this size it did not finish within the
budget here (see the report of the run). Flows with ``q`` near 1 on coupled losses are stiff
for the explicit integrator, so ``q = 1.5`` runs may end at the budget too.
Every batch (one geometry, all ``alpha``) has a wall-clock budget: a trajectory that exceeds
it is reported with status ``budget`` and its last state, never silently dropped.

Metrics: relative recovery error ``||x - x*|| / ||x*||``; support recovery, the fraction of
the true support among the ``k`` largest ``|x_i|``; the ``l1/l2`` ratio ``||x||_1/||x||_2``
(1 for a 1-sparse vector, ``sqrt(n)`` for a flat one); for regression the minimum-``l1``
interpolant (basis pursuit, an LP) is the reference line; for classification also the test
accuracy on 2000 fresh samples and the cosine with the teacher. Writes ``results.csv``,
``results.md`` and the figures into the output folder (first argument, default
``reports/experiments``).
"""

from __future__ import annotations

import csv
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing import get_context

import numpy as np

from numerics.cli import Parser

N_REG, N_CLS, N_TEST, DIM, K = 6, 24, 2000, 12, 2
ALPHAS = (1e-3, 1e-2, 1e-1, 0.5)
CLS_ALPHAS = (1e-2, 1e-1, 0.5)
RTOL, ATOL, CONVERGED = 1e-9, 1e-12, 1e-6
STATUS = {0: "t_end", 1: "converged", -1: "steps", -2: "budget", -3: "underflow", -4: "nonfinite"}


@dataclass(frozen=True)
class Task:
    kind: str              # "regression" | "classification"
    seed: int
    q: float
    L: int
    decay: str             # "none" | "decoupled" | "coupled"
    nu: float
    t_end: float
    wall: float            # wall-clock budget of the batch (s) ...
    deadline: float        # ... and of the whole sweep (time.time() at which every batch stops)


def regression_data(seed):
    r = np.random.default_rng(seed)
    X = r.standard_normal((N_REG, DIM))
    x_star = np.zeros(DIM)
    support = r.choice(DIM, K, replace=False)
    x_star[support] = r.choice([-1.0, 1.0], K) * r.uniform(0.5, 1.5, K)
    return X, X @ x_star, x_star


def classification_data(seed):
    r = np.random.default_rng(1000 + seed)
    teacher = np.zeros(DIM)
    teacher[r.choice(DIM, K, replace=False)] = r.choice([-1.0, 1.0], K)
    Z, Zt = r.standard_normal((N_CLS, DIM)), r.standard_normal((N_TEST, DIM))
    return Z, np.sign(Z @ teacher), teacher, Zt, np.sign(Zt @ teacher)


def sweep(seeds, qs, wall, deadline) -> list[Task]:
    """Every batch, cheapest geometries first (large ``q``), so that a sweep cut by its
    deadline loses the expensive ones (``q`` near 1 on coupled losses)."""
    tasks = [Task("regression", s, q, L, "none", 0.0, 1e4, wall, deadline)
             for s in seeds for q in qs for L in (1, 2, 3)]
    tasks += [Task("regression", s, q, 2, d, 1e-3, 100.0, wall, deadline)
              for s in seeds for q in qs for d in ("decoupled", "coupled")]
    tasks += [Task("classification", s, q, L, "none", 0.0, 1e4, wall, deadline)
              for s in seeds for q in qs if q > 1 for L in (1, 2, 3)]
    return sorted(tasks, key=lambda t: (-t.q, t.L))


def _converged_event(n, L, X):
    import torch

    from numerics.integrate import Event

    Xt = torch.as_tensor(X, dtype=torch.float64)

    def fn(t, state, p):
        ab = state[:, : 2 * n * L].reshape(state.shape[0], 2 * n, L).prod(-1)
        res = (ab[:, :n] - ab[:, n:]) @ Xt.T - p["y"]
        return res.abs().amax(1) - CONVERGED * p["y"].abs().amax(1)
    return Event(fn, terminal=True, direction=-1, name="converged")


def _simulate(task, loss, alphas, events):
    import torch

    from numerics.flows import BranchLoss, TwoBranchResult, simulate_two_branch_flow
    from numerics.sign import simulate_sign_flow

    w0 = torch.stack([torch.full((DIM, task.L), a, dtype=torch.float64) for a in alphas])
    wall = max(0.5, min(task.wall, task.deadline - time.time()))
    if task.q == 1.0 and task.decay == "none":
        res = simulate_sign_flow(torch.cat([w0, w0], 1), BranchLoss(loss, DIM), task.t_end, events=events,
                                 rtol=RTOL, atol=ATOL, max_wall=wall)
        return TwoBranchResult(res.solution, res.system, res.state_dim)
    kw = {} if task.decay == "none" else dict(decay=task.decay, nu=task.nu)
    return simulate_two_branch_flow(w0, w0, task.q, loss, task.t_end, rtol=RTOL, atol=ATOL, events=events,
                                    max_wall=wall, max_steps=200_000, **kw)


def _basis_pursuit(seed):
    """The minimum-l1 interpolant of problem ``seed`` and its metrics (reference)."""
    from numerics.bias import min_l1_interpolant

    X, y, x_star = regression_data(seed)
    x = min_l1_interpolant(X, y)
    return dict(rel_error=float(np.linalg.norm(x - x_star) / np.linalg.norm(x_star)),
                support=float(_support(x, x_star)), l1_l2=float(_l1_l2(x)))


def _l1_l2(x):
    return np.abs(x).sum(-1) / np.sqrt((x**2).sum(-1))


def _support(x, truth):
    top = np.argsort(-np.abs(x), axis=-1)[..., :K]
    return np.isin(top, np.flatnonzero(truth)).mean(-1)


def run_task(task: Task) -> list[dict]:
    """One batch (one geometry, every alpha): simulate, measure, one row per alpha."""
    import torch

    from numerics.losses import ExponentialLoss, LinearRegression

    torch.set_num_threads(1)
    start = time.perf_counter()
    if task.kind == "regression":
        X, y, x_star = regression_data(task.seed)
        alphas = ALPHAS
        events = [_converged_event(DIM, task.L, X)] if task.decay == "none" else []
        res = _simulate(task, LinearRegression(X, y), alphas, events)
        x = res.x.cpu().numpy()
        extra = [dict(rel_error=float(np.linalg.norm(xi - x_star) / np.linalg.norm(x_star)),
                      residual=float(np.abs(X @ xi - y).max() / np.abs(y).max())) for xi in x]
        truth = x_star
    else:
        Z, labels, teacher, Zt, lt = classification_data(task.seed)
        alphas = CLS_ALPHAS
        res = _simulate(task, ExponentialLoss(Z, labels), alphas, [])
        x = res.x.cpu().numpy()
        extra = [dict(test_accuracy=float(np.mean(np.sign(Zt @ xi) == lt)),
                      cosine=float(xi @ teacher / (np.linalg.norm(xi) * np.linalg.norm(teacher))),
                      train_margin=float((labels * (Z @ xi)).min() / np.abs(xi).sum())) for xi in x]
        truth = teacher
    seconds = time.perf_counter() - start
    status = res.solution.status.cpu().tolist()
    t = res.t.cpu().tolist()
    rows = []
    for i, a in enumerate(alphas):
        rows.append(dict(asdict(task), alpha=a, status=STATUS.get(status[i], str(status[i])), t=t[i],
                         support=float(_support(x[i], truth)), l1_l2=float(_l1_l2(x[i])),
                         batch_seconds=round(seconds, 2), **extra[i]))
    return rows


COLUMNS = ("kind", "seed", "q", "L", "decay", "nu", "alpha", "status", "t", "rel_error", "residual",
           "support", "l1_l2", "test_accuracy", "cosine", "train_margin", "batch_seconds")


def write_tables(rows, out):
    with open(os.path.join(out, "results.csv"), "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    lines = []
    for kind, cols in (("regression", ("q", "L", "decay", "alpha", "status", "t", "rel_error", "residual",
                                        "support", "l1_l2")),
                       ("classification", ("q", "L", "alpha", "status", "test_accuracy", "cosine",
                                           "train_margin", "support", "l1_l2"))):
        sel = [r for r in rows if r["kind"] == kind]
        seeds = sorted({r["seed"] for r in sel})
        lines += [f"## {kind} (mean over seeds {seeds})", ""]
        if kind == "regression":
            lines += ["Reference, minimum-l1 interpolant (LP): " + ", ".join(
                f"{m} {np.mean([_basis_pursuit(s)[m] for s in seeds]):.3g}"
                for m in ("rel_error", "support", "l1_l2")), ""]
        lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for key in sorted({(r["q"], r["L"], r["decay"], r["alpha"]) for r in sel}):
            grp = [r for r in sel if (r["q"], r["L"], r["decay"], r["alpha"]) == key]
            cells = []
            for c in cols:
                vals = [r[c] for r in grp]
                if c == "status":
                    cells.append("/".join(sorted(set(vals))))
                elif isinstance(vals[0], str):
                    cells.append(vals[0])
                else:
                    cells.append(f"{np.mean(vals):.3g}")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    with open(os.path.join(out, "results.md"), "w") as fh:
        fh.write("\n".join(lines))
    return "\n".join(lines)


def _mean_curve(rows, key, metric):
    """alpha -> (mean metric, all runs finished) for rows matching ``key``."""
    pts = {}
    for r in rows:
        if all(r[k] == v for k, v in key.items()):
            pts.setdefault(r["alpha"], []).append(r)
    alphas = sorted(pts)
    return (np.array(alphas), np.array([np.mean([r[metric] for r in pts[a]]) for a in alphas]),
            np.array([all(r["status"] in ("converged", "t_end") for r in pts[a]) for a in alphas]))


def _panel(ax, rows, base, metric, series, label, logy):
    for value, color in zip(series[1], ("C3", "C1", "C2", "C0", "C4")):
        a, m, ok = _mean_curve(rows, {**base, series[0]: value}, metric)
        if not len(a):
            continue
        ax.plot(a, m, "-", color=color, label=label(value))
        ax.plot(a[ok], m[ok], "o", color=color)
        ax.plot(a[~ok], m[~ok], "o", color=color, mfc="none")
    ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(r"initialization scale $\alpha$")
    ax.grid(True, which="both", alpha=0.3)


def plot(rows, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    reg = [r for r in rows if r["kind"] == "regression" and r["decay"] == "none"]
    qs = ("q", tuple(sorted({r["q"] for r in rows})))
    note = "filled: converged; hollow: stopped by the step/wall budget"
    figures = {
        "recovery_error.png": ("rel_error", r"$\|x - x^*\| / \|x^*\|$", True),
        "support_recovery.png": ("support", "true support among the k largest |x_i|", False),
        "l1_l2_ratio.png": ("l1_l2", r"$\|x\|_1 / \|x\|_2$", False),
    }
    for name, (metric, ylabel, logy) in figures.items():
        fig, axes = plt.subplots(1, 3, figsize=(13, 4), sharey=True)
        for ax, L in zip(axes, (1, 2, 3)):
            _panel(ax, reg, {"L": L}, metric, qs, lambda q: f"q = {q:g}", logy)
            ax.set_title(f"sparse regression, L = {L}")
            seeds = sorted({r["seed"] for r in reg})
            if metric == "l1_l2":
                ax.axhline(np.mean([_l1_l2(regression_data(s)[2]) for s in seeds]), color="k", ls="--",
                           lw=1, label=r"truth $x^*$")
            ax.axhline(np.mean([_basis_pursuit(s)[metric] for s in seeds]), color="k", ls=":", lw=1,
                       label=r"min $\ell_1$ interpolant (LP)")
        axes[0].set_ylabel(ylabel)
        axes[-1].legend(title=f"no decay ({note})", fontsize=8, title_fontsize=7)
        fig.tight_layout()
        fig.savefig(os.path.join(out, name), dpi=120)
        plt.close(fig)
    dec = [r for r in rows if r["kind"] == "regression" and r["L"] == 2]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4), sharey=True)
    for ax, d in zip(axes, ("none", "decoupled", "coupled")):
        _panel(ax, dec, {"decay": d}, "rel_error", qs, lambda q: f"q = {q:g}", True)
        ax.set_title(f"L = 2, decay: {d}" + ("" if d == "none" else r" ($\nu = 10^{-3}$, t = 100)"))
    axes[0].set_ylabel(r"$\|x - x^*\| / \|x^*\|$")
    axes[-1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "decay.png"), dpi=120)
    plt.close(fig)
    cls = [r for r in rows if r["kind"] == "classification"]
    fig, axes = plt.subplots(2, 3, figsize=(13, 7), sharex=True)
    for j, L in enumerate((1, 2, 3)):
        for i, (metric, ylabel) in enumerate((("l1_l2", r"$\|x\|_1 / \|x\|_2$"), ("test_accuracy", "test accuracy"))):
            _panel(axes[i, j], cls, {"L": L}, metric, qs, lambda q: f"q = {q:g}", False)
            axes[i, j].set_ylabel(ylabel)
        axes[0, j].set_title(f"sparse classification (exp. loss, t = 1e4), L = {L}")
    axes[0, -1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "classification.png"), dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    p = Parser(prog="python -m verify.experiments", description=__doc__.splitlines()[0])
    p.add_argument("out", nargs="?", default=os.path.join("reports", "experiments"),
                   help="output folder (default reports/experiments)")
    p.add_argument("--seeds", type=int, default=2, help="number of random problems (default 2)")
    p.add_argument("--q", type=float, nargs="+", default=[1.5, 1.75, 2.0],
                   help="steepest exponents q in [1, 2] (default 1.5 1.75 2; 1 = sign descent)")
    p.add_argument("--workers", type=int, default=2, help="parallel processes (default 2)")
    p.add_argument("--wall", type=float, default=20.0, help="wall-clock budget per batch in s (default 20)")
    p.add_argument("--deadline", type=float, default=200.0,
                   help="wall-clock budget of all simulations in s (default 200); batches still "
                        "running then stop and report status 'budget'")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    if args.seeds < 1 or args.workers < 1 or not (args.wall > 0 and args.deadline > 0):
        p.error("--seeds and --workers must be >= 1, --wall and --deadline > 0")
    if not all(1 <= q <= 2 for q in args.q):
        p.error("--q values must lie in [1, 2]")
    os.makedirs(args.out, exist_ok=True)
    start = time.perf_counter()
    tasks = sweep(range(args.seeds), sorted(set(args.q)), args.wall, time.time() + args.deadline)
    rows = []
    with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn")) as pool:
        for k, batch in enumerate(pool.map(run_task, tasks), 1):
            rows += batch
            t = batch[0]
            sys.stderr.write(f"[{k:>2}/{len(tasks)}] {t['kind']:<14} q={t['q']:<4g} L={t['L']} "
                             f"decay={t['decay']:<9} {t['batch_seconds']:6.1f} s\n")
    rows.sort(key=lambda r: (r["kind"], r["decay"], r["q"], r["L"], r["seed"], r["alpha"]))
    print(write_tables(rows, args.out))
    plot(rows, args.out)
    print(f"wrote results.csv, results.md and figures to {args.out} in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

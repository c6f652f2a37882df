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
import os
import sys
import textwrap
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing import get_context

import numpy as np
from tqdm import tqdm

from numerics.cli import Parser, description, piped, positive, writable_folder

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

    from numerics.flows import BranchLoss
    from numerics.simulate import TwoBranchResult, simulate_two_branch_flow
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


FINISHED = ("converged", "t_end")


def finished(row) -> bool:
    """A run that ended by convergence or at its end time, not on a step/wall budget."""
    return row["status"] in FINISHED


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
        lines += ["Means over the finished runs only (converged or at their end time); `finished` "
                  "counts them. Runs stopped on a step or wall budget are in results.csv.", ""]
        cols = (*cols[:cols.index("status")], "finished", *cols[cols.index("status") + 1:])
        lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for key in sorted({(r["q"], r["L"], r["decay"], r["alpha"]) for r in sel}):
            grp = [r for r in sel if (r["q"], r["L"], r["decay"], r["alpha"]) == key]
            done = [r for r in grp if finished(r)]
            cells = []
            for c in cols:
                if c == "finished":
                    cells.append(f"{len(done)}/{len(grp)}")
                elif isinstance(grp[0][c], str):
                    cells.append(grp[0][c])
                elif c in ("q", "L", "alpha"):
                    cells.append(f"{grp[0][c]:g}")
                else:
                    cells.append(f"{np.mean([r[c] for r in done]):.3g}" if done else "-")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["## figures", "", *(f"* `{name}`: {text}" for name, text in CAPTIONS.items()), ""]
    with open(os.path.join(out, "results.md"), "w") as fh:
        fh.write("\n".join(lines))
    return "\n".join(lines)


CAPTIONS = {
    "recovery_error.png": "Sparse regression without decay: relative recovery error of the learned x "
                          "against the initialization scale alpha, one panel per depth L, one line per "
                          "exponent q.",
    "support_recovery.png": "Sparse regression without decay: fraction of the true support among the k "
                            "largest |x_i| (1 = support found).",
    "l1_l2_ratio.png": "Sparse regression without decay: ||x||_1/||x||_2 of the learned x (1 for a "
                       "1-sparse vector, sqrt(n) for a flat one).",
    "decay.png": "L = 2 with weight decay nu = 1e-3 (decoupled, coupled; read at t = 100) next to no "
                 "decay: relative recovery error.",
    "classification.png": "Sparse classification (exponential loss, read at t = 1e4): ||x||_1/||x||_2 "
                          "(top) and test accuracy on 2000 fresh samples (bottom).",
}
KEY = ("Filled markers: mean over the finished runs (converged or at their end time); hollow: the "
       "last state of runs stopped on a step/wall budget, where no run finished.")


def _curves(rows, key, metric):
    """Per ``alpha`` of the rows matching ``key``: the mean of ``metric`` over finished runs and over
    stopped runs (``nan`` where there is none)."""
    pts = {}
    for r in rows:
        if all(r[k] == v for k, v in key.items()):
            pts.setdefault(r["alpha"], []).append(r)
    alphas = sorted(pts)

    def mean(sel):
        return np.array([np.mean(v) if (v := [r[metric] for r in pts[a] if sel(r)]) else np.nan
                         for a in alphas])
    return np.array(alphas), mean(finished), mean(lambda r: not finished(r))


def _panel(ax, rows, base, metric, series, logy):
    for value, color in zip(series[1], ("C3", "C1", "C2", "C0", "C4")):
        a, done, stopped = _curves(rows, {**base, series[0]: value}, metric)
        if not len(a):
            continue
        ok = ~np.isnan(done)
        ax.plot(a[ok], done[ok], "-o", color=color)
        only_stopped = ~ok & ~np.isnan(stopped)
        ax.plot(a[only_stopped], stopped[only_stopped], "o", color=color, mfc="none")
    ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(r"initialization scale $\alpha$")
    ax.grid(True, which="both", alpha=0.3)


def _finish(fig, name, handles, out):
    """Legend below the panels (never over the data), then the caption; save and close."""
    import matplotlib.pyplot as plt

    inch = 1 / fig.get_figheight()                 # legend and caption take fixed heights
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 4), fontsize=8,
               bbox_to_anchor=(0.5, 0.4 * inch), frameon=False)
    fig.text(0.5, 0.05 * inch, "\n".join(textwrap.wrap(f"{CAPTIONS[name]} {KEY}", 170)), ha="center",
             va="bottom", fontsize=8)
    fig.subplots_adjust(bottom=1.5 * inch, top=1 - 0.6 * inch, wspace=0.25, hspace=0.3)
    fig.savefig(os.path.join(out, name), dpi=120)
    plt.close(fig)


def _handles(qs, extra=()):
    from matplotlib.lines import Line2D

    lines = [Line2D([], [], color=c, marker="o", label=f"q = {q:g}")
             for q, c in zip(qs, ("C3", "C1", "C2", "C0", "C4"))]
    return [*lines, Line2D([], [], color="k", marker="o", ls="", label="finished (mean)"),
            Line2D([], [], color="k", marker="o", mfc="none", ls="", label="stopped on budget (last state)"),
            *extra]


def _reference(ax, value, logy, style, label):
    """A horizontal reference line, drawn only where it does not set the axis range (an exact
    recovery, error 1e-16, would squash the data on a log axis): otherwise named in the legend."""
    from matplotlib.lines import Line2D

    lo, hi = ax.get_ylim()
    if logy and value < lo:
        return Line2D([], [], color="k", ls=style, lw=1, label=f"{label}: {value:.1g} (below the axis)")
    ax.axhline(value, color="k", ls=style, lw=1)
    ax.set_ylim(min(lo, value), max(hi, value))
    return Line2D([], [], color="k", ls=style, lw=1, label=label)


def plot(rows, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    reg = [r for r in rows if r["kind"] == "regression" and r["decay"] == "none"]
    qs = ("q", tuple(sorted({r["q"] for r in rows})))
    seeds = sorted({r["seed"] for r in rows})
    figures = {
        "recovery_error.png": ("rel_error", r"$\|x - x^*\| / \|x^*\|$", True),
        "support_recovery.png": ("support", "true support among the k largest |x_i|", False),
        "l1_l2_ratio.png": ("l1_l2", r"$\|x\|_1 / \|x\|_2$", False),
    }
    for name, (metric, ylabel, logy) in figures.items():
        fig, axes = plt.subplots(1, 3, figsize=(13, 5), sharey=True)
        for ax, L in zip(axes, (1, 2, 3)):
            _panel(ax, reg, {"L": L}, metric, qs, logy)
            ax.set_title(f"L = {L}")
        refs = []
        for ax in axes:
            refs = [_reference(ax, np.mean([_basis_pursuit(s_)[metric] for s_ in seeds]), logy, ":",
                               r"min $\ell_1$ interpolant (LP)")]
            if metric == "l1_l2":
                refs.append(_reference(ax, np.mean([_l1_l2(regression_data(s_)[2]) for s_ in seeds]),
                                       logy, "--", r"truth $x^*$"))
        axes[0].set_ylabel(ylabel)
        fig.suptitle(f"sparse regression, no decay (mean over seeds {seeds})")
        _finish(fig, name, _handles(qs[1], refs), out)
    dec = [r for r in rows if r["kind"] == "regression" and r["L"] == 2]
    fig, axes = plt.subplots(1, 3, figsize=(13, 5), sharey=True)
    for ax, d in zip(axes, ("none", "decoupled", "coupled")):
        _panel(ax, dec, {"decay": d}, "rel_error", qs, True)
        ax.set_title(f"decay: {d}")
    axes[0].set_ylabel(r"$\|x - x^*\| / \|x^*\|$")
    fig.suptitle(r"sparse regression, L = 2, weight decay $\nu = 10^{-3}$ read at t = 100")
    _finish(fig, "decay.png", _handles(qs[1]), out)
    cls = [r for r in rows if r["kind"] == "classification"]
    fig, axes = plt.subplots(2, 3, figsize=(13, 8), sharex=True)
    for j, L in enumerate((1, 2, 3)):
        for i, (metric, ylabel) in enumerate((("l1_l2", r"$\|x\|_1 / \|x\|_2$"), ("test_accuracy", "test accuracy"))):
            _panel(axes[i, j], cls, {"L": L}, metric, qs, False)
            axes[i, j].set_ylabel(ylabel)
        axes[0, j].set_title(f"L = {L}")
        axes[0, j].set_xlabel("")
    fig.suptitle("sparse classification, exponential loss, read at t = 1e4")
    _finish(fig, "classification.png", _handles(tuple(q for q in qs[1] if q > 1)), out)


def verdict(rows) -> str:
    """The closing lines of a run: complete, or which batches have runs stopped on a budget and
    (last line) how many."""
    stopped = [r for r in rows if not finished(r)]
    if not stopped:
        return f"COMPLETE: all {len(rows)} runs finished (converged or at their end time)"
    where = sorted({f"{r['kind']} q={r['q']:g} L={r['L']} decay={r['decay']}" for r in stopped})
    lines = ["stopped runs in:"]
    for item in where:                 # whole items, lines of at most 100 columns
        lines += ["  "] if len(lines[-1]) + len(item) > 96 else []
        lines[-1] += f" {item};"
    lines[-1] = lines[-1].rstrip(";")
    return "\n".join([*lines, f"PARTIAL: {len(stopped)} of {len(rows)} runs stopped on their step/wall "
                                f"budget; means over the {len(rows) - len(stopped)} finished only"])


def main(argv=None) -> int:
    p = Parser(prog="python -m verify.experiments", description=description(__doc__),
               epilog="Exit status: 0 when every run finished (or with --allow-partial), 3 when "
                      "runs stopped on their budget, 2 on bad usage.")
    p.add_argument("out", nargs="?", default=os.path.join("reports", "experiments"),
                   help="output folder (default reports/experiments)")
    p.add_argument("--seeds", type=positive(int), default=2, help="number of random problems (default 2)")
    p.add_argument("--q", type=float, nargs="+", default=[1.5, 1.75, 2.0],
                   help="steepest exponents q in [1, 2] (default 1.5 1.75 2; 1 = sign descent)")
    p.add_argument("--workers", type=positive(int), default=2, help="parallel processes (default 2)")
    p.add_argument("--wall", type=positive(float), default=20.0,
                   help="wall-clock budget per batch in s (default 20)")
    p.add_argument("--deadline", type=positive(float), default=200.0,
                   help="wall-clock budget of all simulations in s (default 200); batches still "
                        "running then stop and report status 'budget'")
    p.add_argument("--allow-partial", action="store_true",
                   help="exit 0 even if runs stopped on their budget (default off: exit 3)")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    if not all(1 <= q <= 2 for q in args.q):
        p.error(f"argument --q: values must lie in [1, 2], got {' '.join(map(str, args.q))}")
    try:
        writable_folder(args.out)
    except ValueError as exc:
        p.error(f"argument out: {exc}")
    os.makedirs(args.out, exist_ok=True)
    start = time.perf_counter()
    tasks = sweep(range(args.seeds), sorted(set(args.q)), args.wall, time.time() + args.deadline)
    rows = []
    with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn")) as pool, \
            tqdm(total=len(tasks), desc="batches", unit="batch", file=sys.stderr, leave=False) as bar:
        for batch in pool.map(run_task, tasks):
            rows += batch
            t = batch[0]
            stopped = sum(not finished(r) for r in batch)
            bar.write(f"{t['kind']:<14} q={t['q']:<4g} L={t['L']} decay={t['decay']:<9} "
                      f"{t['batch_seconds']:6.1f} s" + (f"  {stopped} stopped" if stopped else ""),
                      file=sys.stderr)
            bar.update()
    rows.sort(key=lambda r: (r["kind"], r["decay"], r["q"], r["L"], r["seed"], r["alpha"]))
    print(write_tables(rows, args.out))
    plot(rows, args.out)
    print(f"wrote results.csv, results.md and figures to {args.out} in {time.perf_counter() - start:.0f} s")
    print(verdict(rows))
    complete = all(finished(r) for r in rows)
    return 0 if complete or args.allow_partial else 3


if __name__ == "__main__":
    sys.exit(piped(main))

"""Figures of the stored paper experiments (matplotlib, Agg): means with 95 % bands over seeds
(geometric means and bands of the logarithms on log axes).

Each function reads the store and writes one PNG into the output folder; nothing is
simulated here.
"""

from __future__ import annotations

import math
import os

import numpy as np

from . import plan
from .predict import decay_threshold, escape_prediction, optimizer_q
from .report import groups, tuned
from .stats import log_interval, mean_interval

COLORS = dict(zip(("SGD small lr", "SGD tuned lr", "Adam small lr", "AdamW", "sign descent", "steepest q=1.5"),
                  ("C3", "C1", "C0", "C9", "C2", "C4")))


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _band(ax, x, ys, color, label, marker=None, log=False):
    """Mean of the rows of ``ys`` (seeds x points) and its 95 % t band; with ``log`` (a log
    axis) the geometric mean and the band of the logarithms (:func:`log_interval`)."""
    stats = np.array([(log_interval if log else mean_interval)(col) for col in np.asarray(ys, float).T])
    ax.plot(x, stats[:, 0], color=color, label=label, marker=marker, ms=4)
    if len(ys) > 1:
        ax.fill_between(x, stats[:, 1], stats[:, 2], color=color, alpha=0.2, lw=0)


def _curve_band(ax, curves, color, label, marker=None, log=False):
    """:func:`_band` of per-seed curves ``[(x, y), ...]``, cut to the shortest."""
    if not curves:
        return
    n = min(len(c[0]) for c in curves)
    _band(ax, curves[0][0][:n], [c[1][:n] for c in curves], color, label, marker, log)


def _save(fig, out, name):
    fig.tight_layout()
    path = os.path.join(out, name)
    fig.savefig(path, dpi=110)
    _plt().close(fig)
    return path


def _panels(rows, key, n_rows, width, height):
    """One column of ``n_rows`` panels per distinct ``row[key]``: the sorted values, the figure, its axes."""
    values = sorted({r[key] for r in rows})
    fig, axes = _plt().subplots(n_rows, len(values), figsize=(width * len(values), height), squeeze=False)
    return values, fig, axes


def _inputs(store, *experiments):
    """The stored rows of ``experiments`` and their curves (task key -> series -> (x, y) arrays)."""
    rows = [r for e in experiments for r in store.rows(e)]
    out = {}
    for p in store.curves():
        if p["experiment"] in experiments:
            out.setdefault(p["task"], {}).setdefault(p["series"], []).append((p["x"], p["y"]))
    return rows, {k: {s: np.array(sorted(v)).T for s, v in d.items()} for k, d in out.items()}


def _shown(rows, L):
    """Fine-tuning rows at depth ``L`` under their display label (the tuned SGD lr only)."""
    best = tuned(rows, L)
    out = []
    for r in rows:
        if r["L"] != L or (r["label"].startswith("SGD lr=") and r["label"] != best):
            continue
        out.append(dict(r, label="SGD tuned lr" if r["label"] == best else r["label"]))
    return out


def finetune_figure(store, out):
    rows, curves = _inputs(store, "finetune")
    if not rows:
        return None
    depths, fig, axes = _panels(rows, "L", 2, 6, 8)
    for j, L in enumerate(depths):
        for (label,), grp in groups(_shown(rows, L), "label").items():
            c = COLORS.get(label, "k")
            _curve_band(axes[0, j], [curves[r["task"]]["train_loss"] for r in grp if r["task"] in curves], c,
                        f"{label} (lr {grp[0]['lr']:g})", log=True)
            _curve_band(axes[1, j], [(h[0], np.sort(h[1])[::-1]) for h in
                                     (curves[r["task"]]["hessian"] for r in grp if "hessian" in curves.get(r["task"], {}))],
                        c, label, marker="o")
        axes[0, j].axhline(rows[0]["threshold"], color="k", ls=":", lw=1, label="escape threshold")
        axes[0, j].set(yscale="log", xlabel="step", ylabel="training cross-entropy",
                       title=f"fine-tuning through depth-{L} adapters (alpha = {rows[0]['alpha']:g})")
        axes[1, j].set_yscale("symlog", linthresh=1e-2)
        axes[1, j].axhline(0, color="k", lw=0.8)
        axes[1, j].set(xlabel="rank (largest |lambda| first, sorted by value)", ylabel="Hessian eigenvalue (Ritz value)",
                       title=f"top-20 Hessian eigenvalues at the end, L = {L}")
        axes[0, j].legend(fontsize=7)
        axes[1, j].legend(fontsize=7)
    return _save(fig, out, "finetune.png")


def _escape_panel(ax, rows, key, field, label, color, L, q):
    by_alpha = groups(rows, "alpha")
    alphas = np.array([a for (a,) in by_alpha])
    budget = [r.get("steps", math.nan) for r in rows]
    vals = [[r[field] if r["escaped"] else math.nan for r in g] for g in by_alpha.values()]
    stats = np.array([log_interval(v) for v in vals])
    cls, pred = escape_prediction(L, q)
    ax.plot(alphas, stats[:, 0], "o-", color=color, label=f"{label}: ESC-2 {cls} ({pred:g})")
    ok = np.isfinite(stats[:, 1])
    ax.fill_between(alphas[ok], stats[ok, 1], stats[ok, 2], color=color, alpha=0.2, lw=0)
    cens = [a for (a,), g in by_alpha.items() if not all(r["escaped"] for r in g)]
    if cens and math.isfinite(budget[0]):
        ax.plot(cens, [budget[0]] * len(cens), "v", color=color, mfc="none", ms=8)
    good = np.isfinite(stats[:, 0])
    if pred != 0 and good.any():             # the predicted power through the largest-alpha point
        a0, s0 = alphas[good][-1], stats[good, 0][-1]
        ax.plot(alphas, s0 * (alphas / a0) ** pred, ":", color=color, lw=1)


def escape_figure(store, out):
    rows = store.rows("escape")
    if not rows:
        return None
    depths, fig, axes = _panels(rows, "L", 1, 6, 4.5)
    names = {"sgd": ("SGD", "C1"), "adam": ("Adam", "C0"), "sign": ("sign descent", "C2"), "steepest": ("q = 1.5", "C4")}
    for ax, L in zip(axes[0], depths):
        for (o,), grp in groups([r for r in rows if r["L"] == L], "optimizer").items():
            _escape_panel(ax, grp, o, "escape_step", *names[o], L, optimizer_q(o))
        ax.set(xscale="log", yscale="log", xlabel=r"adapter scale $\alpha$", ylabel="steps to escape",
               title=f"escape from the saddle, L = {L}")
        ax.legend(fontsize=7, title="hollow: budget stop; dotted: ESC-2 power", title_fontsize=7)
    return _save(fig, out, "escape.png")


def dln_figure(store, out):
    rows, curves = _inputs(store, "dln_flow", "dln_optimizer")
    if not rows:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.5))
    alpha = sorted({r["alpha"] for r in rows})[1 if len({r["alpha"] for r in rows}) > 2 else 0]
    for k, (flows, ax, xl) in enumerate(((True, axes[0], "flow time t"), (False, axes[1], "step"))):
        for i, ((m,), grp) in enumerate(groups([r for r in rows if r["method"].startswith("flow") == flows
                                                and r["alpha"] == alpha], "method").items()):
            xs = [curves[r["task"]].get(f"{m} alpha={alpha:g}") for r in grp if r["task"] in curves]
            _curve_band(ax, [x for x in xs if x is not None and x.size], f"C{i}", m, log=True)
        ax.set(xscale="log", yscale="log", xlabel=xl, ylabel=r"loss $\|Xx-y\|^2/(2n)$",
               title=f"DLN regression k=300, n=100, L=3, alpha = {alpha:g}: " + ("flows" if flows else "optimizers"))
        ax.legend(fontsize=7)
    for i, ((m,), grp) in enumerate(groups(rows, "method").items()):
        _escape_panel(axes[2], grp, m, "plateau", m, f"C{i % 10}", 3, grp[0]["q"])
    axes[2].set(xscale="log", yscale="log", xlabel=r"initialization $\alpha$", ylabel="plateau end (time or steps)",
                title="plateau length vs alpha (dotted: ESC-2 power)")
    axes[2].legend(fontsize=6)
    return _save(fig, out, "dln.png")


def sparse_figure(store, out):
    rows, curves = _inputs(store, "sparse")
    if not rows:
        return None
    qs, fig, axes = _panels(rows, "q", 1, 5.5, 4.2)
    for ax, q in zip(axes[0], qs):
        for (L,), grp in groups([r for r in rows if r["q"] == q], "L").items():
            xs = [(curves[r["task"]]["margin"], r["optimum"]) for r in grp if r["task"] in curves]
            rn = "inf" if math.isinf(grp[0]["r"]) else f"{grp[0]['r']:.3g}"
            if all(math.isfinite(o) for _, o in xs):
                _curve_band(ax, [(x[0], x[1] / o) for x, o in xs], f"C{L}", f"L = {L} (l_{rn}, / max margin)")
            else:
                _curve_band(ax, [x for x, _ in xs], f"C{L}", f"L = {L} (l_{rn} margin; no optimum, r < 1)")
        ax.axhline(1, color="k", ls=":", lw=1)
        ax.set(xscale="log", xlabel="step", ylabel="normalized margin (/ max margin where computed)",
               title=f"sparse classification k = 80, q = {q:g}")
        ax.legend(fontsize=7)
    return _save(fig, out, "sparse.png")


def decay_figure(store, out):
    rows = store.rows("decay")
    if not rows:
        return None
    depths, fig, axes = _panels(rows, "L", 1, 5.5, 4.2)
    names = {"sgd": ("SGD + L2 (coupled)", "C1"), "adam": ("Adam + L2 (coupled)", "C0"), "adamw": ("AdamW (decoupled)", "C2")}
    for ax, L in zip(axes[0], depths):
        for (o,), grp in groups([r for r in rows if r["L"] == L], "optimizer").items():
            by_alpha = groups(grp, "alpha")
            alphas = np.array([a for (a,) in by_alpha])
            _band(ax, alphas, np.array([[r["delta_norm"] for r in g] for g in by_alpha.values()]).T,
                  names[o][1], names[o][0], marker="o", log=True)
            thr = decay_threshold(L, o, plan.DECAY_NU, alphas)
            if math.isfinite(thr):
                ax.axvline(thr, color=names[o][1], ls=":", lw=1.2, label=f"DEC-3 threshold ({o})")
        ax.set(xscale="log", yscale="log", xlabel=r"adapter scale $\alpha$", ylabel=r"final $\|\Delta W\|_F$",
               title=f"decay at depth L = {L}, nu = {plan.DECAY_NU:g}")
        ax.xaxis.set_minor_formatter(_plt().NullFormatter())
        ax.legend(fontsize=7)
    return _save(fig, out, "decay.png")


FIGURES = (finetune_figure, escape_figure, dln_figure, sparse_figure, decay_figure)


def write_all(store, out) -> list[str]:
    return [p for p in (f(store, out) for f in FIGURES) if p]


__all__ = ["write_all", "FIGURES"]

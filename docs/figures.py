"""Figures of the documents: prediction (closed forms, generated kernels) vs simulation.

A figure function takes a :class:`Context` and returns a :class:`Figure` (a file under
``figures/`` and a LaTeX caption) or a :class:`Skipped` note when what it needs does not
exist yet. ``@figure(FAMILY)`` registers it; every family also gets
:func:`verification_figure` (error / tolerance of each check of the verify run), so a new
family has a figure before it registers its own. Matplotlib runs with the Agg backend and
writes vector PDFs; every axis is labelled, every plot has a legend, and quantities that
span decades are on log axes.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from numerics.cli import readable  # noqa: E402

from . import sources  # noqa: E402
from .latex import escape, number  # noqa: E402

plt.rcParams.update({"font.size": 8, "axes.titlesize": 9, "legend.fontsize": 7,
                     "figure.dpi": 100, "savefig.bbox": "tight", "figure.constrained_layout.use": True})
COLORS = plt.rcParams["axes.prop_cycle"].by_key()["color"]
CLASS_STYLE = {"bounded": "-", "logarithmic": "--", "polynomial": ":"}   # m < 1, m = 1, m > 1


def class_style(q, L) -> str:
    """Line style of the escape class of ``(q, L)``: solid, dashed, dotted for m <, =, > 1."""
    import theory

    return CLASS_STYLE[theory.escape_class(L, q)[0]]


def class_handles() -> list:
    """Legend entries explaining :func:`class_style`."""
    return [plt.Line2D([], [], color="gray", ls=ls, label=lab) for ls, lab in
            (("-", "$m < 1$ (bounded escape)"), ("--", "$m = 1$ (logarithmic)"),
             (":", "$m > 1$ (power law)"))]


@dataclass
class Context:
    folder: Path                  # where figure files go (``<out>/figures``)
    device: str = "cpu"
    results: dict | None = None   # the verify JSON of the same build


@dataclass
class Figure:
    file: str                     # path relative to the document
    caption: str                  # LaTeX
    width: float = 1.0            # fraction of the line width


@dataclass
class Skipped:
    note: str                     # LaTeX: why the figure is not there yet


FIGURES: dict[str, list[Callable[[Context], Figure | Skipped]]] = {}


def figure(family: str, results: bool = False):
    """Register a figure function for ``family``; ``results=True`` if it reads the verify
    JSON (it then runs after the verify run, the others while it runs)."""
    def deco(fn):
        fn.needs_results = results
        FIGURES.setdefault(family, []).append(fn)
        return fn
    return deco


def save(fig, ctx: Context, name: str) -> str:
    """Write ``fig`` as ``figures/<name>.pdf`` atomically; return the document-relative path."""
    ctx.folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=ctx.folder, prefix=f".{name}-", suffix=".pdf")
    os.close(fd)
    try:
        fig.savefig(tmp, format="pdf")
        readable(tmp)
        os.replace(tmp, ctx.folder / f"{name}.pdf")
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.unlink(tmp)
    return f"{ctx.folder.name}/{name}.pdf"


def _rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.abs(b)))


def _normwise(a, b) -> float:
    """``max|a - b| / max|b|`` (for vectors with zero entries)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def _result(ctx: Context, check_id: str) -> dict | None:
    for r in (ctx.results or {}).get("results", []):
        if r["id"] == check_id:
            return r
    return None


# ----------------------------------------------------------------------------- every family

def margin(result: dict) -> float:
    """error / tolerance of a verify result (0 when the error is 0, inf when not finite)."""
    e, t = float(result["error"]), float(result["tolerance"])
    if e == 0 and math.isfinite(t):
        return 0.0
    return e / t if math.isfinite(e) and math.isfinite(t) and t > 0 else math.inf


def verification_figure(ctx: Context, family: str) -> Figure | Skipped:
    """Error / tolerance of each check of ``family`` in the verify run (log axis)."""
    rows = [r for r in (ctx.results or {}).get("results", []) if sources.family_of(r["id"]) == family]
    if not rows:
        return Skipped(f"No check of {family} ran in this verify run.")
    ids = [r["id"] for r in rows]
    ratio = [margin(r) for r in rows]
    finite = [v for v in ratio if math.isfinite(v) and v > 0]
    lo = min(finite + [1e-3]) / 10
    hi = max(finite + [1.0]) * 10
    shown = [min(max(v, lo), hi) for v in ratio]
    fig, ax = plt.subplots(figsize=(5.5, 0.3 * len(rows) + 1.2))
    for k, (v, r) in enumerate(zip(shown, rows)):
        ok = r["passed"]
        ax.barh(k, v, left=lo, color=COLORS[2] if ok else COLORS[3],
                label=("passed" if ok else "failed") if k == [x["passed"] for x in rows].index(ok) else None)
    ax.axvline(1.0, color="k", ls="--", lw=1, label="tolerance (error = tolerance)")
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    ax.set_yticks(range(len(rows)), ids)
    ax.invert_yaxis()
    ax.set_xlabel("error / tolerance (left of the dashed line passes)")
    ax.set_ylabel("check")
    ax.legend(loc="lower right")
    path = save(fig, ctx, f"{family.lower()}-verification")
    return Figure(path, f"Verification margins of {family}: the error of each check divided by its "
                        f"tolerance, from the verify run of this document (Table~\\ref{{tab:{family}}}).",
                  width=0.75)


# ----------------------------------------------------------------------------- BAL

@figure("BAL")
def balance_conservation(ctx: Context) -> Figure:
    """BAL-1: the factors move, the differences of ``|w_k|^q`` do not."""
    import torch

    from numerics._generated import numpy_kernels as NK
    from numerics.flows import simulate_parameter_flow
    from numerics.losses import SeparableQuadratic
    from verify.bal import DRIFT_TOL
    from verify.common import ATOL, RTOL_TIGHT

    qs, L, shown = (1.0, 1.5, 2.0), 3, 1
    w0 = torch.tensor([[[0.9, -0.4, 0.25]]] * len(qs), dtype=torch.float64)
    t_eval = torch.linspace(0.05, 3.0, 60, dtype=torch.float64)
    res = simulate_parameter_flow(w0, torch.tensor(qs, dtype=torch.float64), SeparableQuadratic(-1.5),
                                  3.0, device=ctx.device, rtol=RTOL_TIGHT, atol=ATOL,
                                  t_eval=t_eval).raise_on_failure()
    ws = res.solution.ys.reshape(len(qs), len(t_eval), L).cpu().numpy()
    t = t_eval.numpy()
    w0n = w0[:, 0, :].numpy()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(7.2, 2.8))
    q = qs[shown]
    for k in range(L):
        a1.plot(t, np.abs(ws[shown, :, k]) ** q, color=COLORS[k], label=f"$|w_{k + 1}(t)|^q$")
    for k in range(1, L):
        a1.plot(t, NK.bal1_invariant(ws[shown, :, k], ws[shown, :, 0], q), color=COLORS[k], ls="--",
                label=f"$|w_{k + 1}|^q - |w_1|^q$")
    a1.set_xlabel("time $t$")
    a1.set_ylabel("$|w_k|^q$ and differences")
    a1.set_title(f"factors move, differences do not ($q = {q:g}$, $L = {L}$)")
    a1.legend(ncol=2, loc="center right")
    worst = 0.0
    for i, q in enumerate(qs):
        inv_t = NK.bal1_invariant(ws[i, :, 1:], ws[i, :, :1], q)
        inv_0 = NK.bal1_invariant(w0n[i, 1:], w0n[i, :1], q)
        drift = np.abs(inv_t - inv_0).max(-1) / (np.abs(w0n[i]) ** q).max()
        worst = max(worst, float(drift.max()))
        a2.plot(t, np.maximum(drift, 1e-18), color=COLORS[i], marker=".", ms=3, lw=0.8,
                label=f"simulated, $q = {q:g}$")
    a2.axhline(DRIFT_TOL, color="k", ls="--", lw=1, label="BAL-1 tolerance")
    a2.set_yscale("log")
    a2.set_ylim(1e-18, 1e-9)
    a2.set_xlabel("time $t$")
    a2.set_ylabel("relative drift of the differences")
    a2.set_title("prediction: zero drift")
    a2.legend(loc="center right")
    path = save(fig, ctx, "bal-conservation")
    return Figure(path, "BAL-1 on $f = (x + 3/2)^2/2$ from $w(0) = (0.9, -0.4, 0.25)$: left, the "
                        "factors $|w_k|^q$ change while the differences $|w_k|^q - |w_1|^q$ (dashed, "
                        "kernel \\texttt{bal1\\_invariant}) stay constant; right, the drift "
                        "$\\max_k |I_k(t) - I_k(0)| / \\max_k |w_k(0)|^q$ of the simulated differences "
                        "(DOP853, rtol $10^{-13}$; values below $10^{-18}$ drawn at $10^{-18}$), "
                        f"largest {number(worst)}.")


def _decay_simulation():
    """``simulate_parameter_flow`` if it takes ``decay=``/``nu=`` (BAL-2/3, DEC), else ``None``."""
    import inspect

    from numerics.flows import simulate_parameter_flow

    params = inspect.signature(simulate_parameter_flow).parameters
    return simulate_parameter_flow if "decay" in params and "nu" in params else None


def _equilibrium():
    """``theory.equilibrium`` (DEC-2), wherever the theory package provides it, else ``None``."""
    import importlib

    import theory

    if hasattr(theory, "equilibrium"):
        return theory.equilibrium
    try:
        return importlib.import_module("theory.decay").equilibrium
    except (ImportError, AttributeError):
        return None


@figure("BAL")
def balance_decay(ctx: Context) -> Figure | Skipped:
    """BAL-2/3: the imbalance under decoupled decay falls like ``exp(-q nu t)``; coupled not."""
    simulate = _decay_simulation()
    if simulate is None:
        return Skipped("balance under coupled vs decoupled decay (BAL-2/3) needs the decay API of "
                       "\\texttt{simulate\\_parameter\\_flow} (\\texttt{decay=}, \\texttt{nu=}).")
    import torch

    from numerics._generated import numpy_kernels as NK
    from numerics.losses import SeparableQuadratic
    from verify.common import ATOL, RTOL

    qs, nu, t_end, y = (1.0, 1.5, 2.0), 0.5, 3.0, 4.0
    w0 = torch.tensor([[[0.6, 0.2]]] * len(qs), dtype=torch.float64)
    qv = torch.tensor(qs, dtype=torch.float64)
    t_eval = torch.linspace(0.1, t_end, 40, dtype=torch.float64)
    t = t_eval.numpy()
    fig, axes = plt.subplots(1, 2, figsize=(7.2, 2.9), sharey=True)
    worst = 0.0
    for ax, decay in zip(axes, ("decoupled", "coupled")):
        res = simulate(w0, qv, SeparableQuadratic(y), t_end, device=ctx.device, decay=decay, nu=nu,
                       rtol=RTOL, atol=ATOL, t_eval=t_eval, max_wall=60.0)
        if not res.ok():
            return Skipped(f"the {decay}-decay simulation failed ({escape(res.solution.failures())}).")
        ws = res.solution.ys[..., :2].cpu().numpy()
        for i, q in enumerate(qs):
            inv0 = NK.bal1_invariant(w0[i, 0, 0].item(), w0[i, 0, 1].item(), q)
            ratio = NK.bal1_invariant(ws[i, :, 0], ws[i, :, 1], q) / inv0
            pred = np.exp(-q * nu * t)
            ax.semilogy(t, pred, color=COLORS[i], lw=1, ls="-" if decay == "decoupled" else ":",
                        label=f"$e^{{-q\\nu t}}$, $q = {q:g}$" + ("" if decay == "decoupled" else " (BAL-2)"))
            ax.semilogy(t[::2], np.maximum(np.abs(ratio[::2]), 1e-8), "o", color=COLORS[i], ms=3.5,
                        mfc="none", label=f"simulated, $q = {q:g}$")
            if decay == "decoupled":
                worst = max(worst, _rel(ratio, pred))
        ax.set_title(f"{decay} decay, $\\nu = {nu:g}$")
        ax.set_xlabel("time $t$")
        ax.legend(fontsize=6, ncol=2)
    axes[0].set_ylabel(r"imbalance $(|w_1|^q - |w_2|^q)$ / initial")
    path = save(fig, ctx, "bal-decay")
    return Figure(path, f"BAL-2/3 on $f = (x - {y:g})^2/2$ from $w(0) = (0.6, 0.2)$ ($L = 2$): the "
                        "imbalance $|w_1|^q - |w_2|^q$ relative to its initial value (circles, "
                        "simulated, DOP853 rtol $10^{-12}$). Left, decoupled decay: the prediction "
                        "$e^{-q\\nu t}$ of BAL-2 (lines), largest relative deviation "
                        f"{number(worst)}. Right, coupled decay: the same curves dotted for "
                        "comparison; only $q = 2$ follows them (BAL-3). At $q = 1$ the imbalance "
                        r"stays constant until $|x\,d| \le \nu \max_k w_k^2$; for $q < 2$ the flow "
                        r"reaches a stationary point of $F + \nu\|w\|^2/2$, which is balanced, in "
                        "finite time (imbalance 0; values below $10^{-8}$ drawn at $10^{-8}$).")


@figure("DEC")
def equilibria(ctx: Context) -> Figure | Skipped:
    """DEC-2: the stable equilibrium ``x*`` vs ``nu`` for both decay forms."""
    simulate, equilibrium = _decay_simulation(), _equilibrium()
    if simulate is None or equilibrium is None:
        return Skipped("equilibria vs $\\nu$ (DEC-2) need \\texttt{theory.equilibrium} and the decay "
                       "API of \\texttt{simulate\\_parameter\\_flow}.")
    import torch

    from numerics.losses import SeparableQuadratic
    from verify.common import ATOL, balanced_start

    y, t_end, rtol = 2.0, 60.0, 1e-10
    cases = ((1.0, 2), (1.5, 2), (2.0, 2), (1.0, 3), (2.0, 3))
    nus_sim = np.logspace(-1.5, 0.15, 5)
    nus = np.logspace(-1.7, 0.4, 60)
    fig, axes = plt.subplots(1, 2, figsize=(7.2, 3.0), sharey=True)
    worst = 0.0
    for ax, decay in zip(axes, ("decoupled", "coupled")):
        for i, (q, L) in enumerate(cases):
            ax.semilogx(nus, [equilibrium(L, q, float(v), y, decay) for v in nus], color=COLORS[i],
                        ls=class_style(q, L), lw=1.1, label=f"$q = {q:g}$, $L = {L}$")
        for L in sorted({c[1] for c in cases}):         # one batch per depth: every q and nu
            batch = [(i, q, v) for i, (q, LL) in enumerate(cases) if LL == L for v in nus_sim]
            res = simulate(balanced_start(torch.full((len(batch),), y ** (1 / L), dtype=torch.float64),
                                          1, L), torch.tensor([b[1] for b in batch], dtype=torch.float64),
                           SeparableQuadratic(y), t_end, device=ctx.device, decay=decay,
                           nu=torch.tensor([b[2] for b in batch], dtype=torch.float64), rtol=rtol,
                           atol=ATOL, max_wall=60.0)
            if not res.ok():
                return Skipped(f"the {decay}-decay simulation at $L = {L}$ failed "
                               f"({escape(res.solution.failures())}).")
            x_end = res.x[:, 0].cpu().numpy()
            pred = np.array([equilibrium(L, q, float(v), y, decay) for _, q, v in batch])
            worst = max(worst, float(np.max(np.abs(x_end - pred))) / y)
            for (i, _, v), xe in zip(batch, x_end):
                ax.semilogx(v, xe, "o", color=COLORS[i], ms=4, mfc="none")
        ax.set_title(f"{decay} decay")
        ax.set_xlabel(r"decay strength $\nu$")
    axes[0].set_ylabel(f"equilibrium $x^*$ (start $x_0 = y = {y:g}$)")
    sim_handle = plt.Line2D([], [], marker="o", ls="none", color="gray", mfc="none",
                            label=f"simulated $x(t = {t_end:g})$")
    fig.legend(handles=axes[0].get_lines()[:len(cases)] + [sim_handle] + class_handles(),
               loc="outside lower center", ncol=5)
    path = save(fig, ctx, "dec-equilibria")
    return Figure(path, f"DEC-2 on $f = (x - {y:g})^2/2$: the stable equilibrium $x^*(\\nu)$ "
                        "(lines, \\texttt{equilibrium}, 30 digits) and the end point of the "
                        f"balanced flow started at $x_0 = y$ and run to $t = {t_end:g}$ (circles, "
                        "DOP853 rtol $10^{-10}$); $x^* = 0$ where the saddle is the only equilibrium. "
                        f"Largest deviation {number(worst)} (relative to $y$).")


# ----------------------------------------------------------------------------- IB

@figure("IB")
def implicit_bias(ctx: Context) -> Figure:
    """IB-2: one sample, the simulated limit vs its characterization; several samples, the
    distance of the simulated limit from the Bregman point, both as functions of ``q``."""
    import torch

    from numerics import bias as NB
    from verify.ib import gradient_flow_limit, steepest_flow_limits

    gen = torch.Generator().manual_seed(7)
    n, a, L = 8, 0.5, 2
    qs = (1.25, 1.5, 1.75)
    X = torch.randn(3, n, generator=gen, dtype=torch.float64).numpy()
    y = X @ torch.randn(n, generator=gen, dtype=torch.float64).abs().numpy()
    w0 = torch.full((len(qs), n, L), a, dtype=torch.float64)
    one, several = [], []
    for k, Xk, yk in ((1, X[:1], y[:1]), (3, X, y)):
        sims = np.concatenate([steepest_flow_limits(w0, torch.tensor(qs, dtype=torch.float64), Xk, yk, ctx),
                               gradient_flow_limit(w0[:1], 2.0, Xk, yk, ctx).x.cpu().numpy()])
        for q, sim in zip(qs + (2.0,), sims):
            geo = NB.Balanced(L, q, np.full(n, a ** L))
            bregman = NB.bregman_point(geo, Xk, yk).x
            if k == 1:
                pred = NB.one_sample_point(geo, Xk[0], float(yk[0]))[0]
                one.append((_normwise(sim, pred), _normwise(sim, bregman)))
            else:
                several.append(_normwise(sim, bregman))
    qq = qs + (2.0,)
    fig, ax = plt.subplots(figsize=(5.0, 3.0))
    floor = 1e-16
    ax.semilogy(qq, [max(e[0], floor) for e in one], "o-", color=COLORS[0],
                label="one sample: vs the IB-2 characterization")
    ax.semilogy(qq, [max(e[1], floor) for e in one], "s--", color=COLORS[1], mfc="none",
                label="one sample: vs the Bregman point")
    ax.semilogy(qq, [max(e, floor) for e in several], "^:", color=COLORS[2],
                label="three samples: vs the Bregman point")
    ax.axhline(1e-9, color="gray", lw=0.8, ls="-.", label="IB-2 tolerance $10^{-9}$")
    ax.set_xlabel("steepest exponent $q$")
    ax.set_ylabel(r"$\max|x_\infty - x_{\rm pred}| / \max|x_{\rm pred}|$")
    ax.legend(loc="best")
    path = save(fig, ctx, "ib-bias")
    return Figure(path, "IB-2 on regression with $n = 8$ coordinates (MIR-1, $L = 2$, balanced start "
                        f"$\\alpha = {a:g}$): relative distance of the simulated limit (DOP853, rtol "
                        "$10^{-12}$) from the one-sample characterization $R'(x_\\infty) = R'(x_0) + "
                        "\\mu\\,\\phi_q(z)$ and from the Bregman point $\\arg\\min\\{D_R(x, x_0): "
                        "Xx = y\\}$ (KKT solve). Only gradient flow ($q = 2$) ends at the Bregman point "
                        f"(values below $10^{{-16}}$ drawn at $10^{{-16}}$).")


# ----------------------------------------------------------------------------- MIR

_MIR_CASES = ((1.0, 2), (1.0, 4), (1.5, 2), (1.5, 3), (2.0, 2), (2.0, 3))


@figure("MIR")
def potentials(ctx: Context) -> Figure:
    """MIR-1: ``R''``, ``R'`` and ``R`` of the balanced deep diagonal for several ``(q, L)``."""
    from numerics._generated import numpy_kernels as NK

    fig, axes = plt.subplots(1, 3, figsize=(7.2, 3.0))
    x_log = np.logspace(-4, np.log10(2.0), 300)
    x_lin = np.linspace(1e-4, 2.0, 300)
    for i, (q, L) in enumerate(_MIR_CASES):
        ls = class_style(q, L)
        lab = f"$q = {q:g}$, $L = {L}$ ($m = {q * (L - 1) / L:.3g}$)"
        axes[0].loglog(x_log, NK.mir1_hess(x_log, L, q), color=COLORS[i], ls=ls, label=lab)
        axes[1].plot(x_log, NK.mir1_grad(x_log, L, q), color=COLORS[i], ls=ls)
        axes[2].plot(x_lin, NK.mir1_value(x_lin, L, q), color=COLORS[i], ls=ls)
    axes[1].set_xscale("log")
    for ax, name in zip(axes, ("R''(x)", "R'(x)", "R(x)")):
        ax.set_xlabel("$x$")
        ax.set_ylabel(f"${name}$")
    axes[0].set_title(r"$R'' = x^{-m}/L$ (log-log)")
    axes[1].set_title("$R'$: finite, log or barrier at 0")
    axes[2].set_title("$R$")
    fig.legend(handles=axes[0].get_lines() + class_handles(), loc="outside lower center", ncol=3)
    path = save(fig, ctx, "mir-potentials")
    return Figure(path, "MIR-1 potentials of the balanced deep diagonal, evaluated by the generated "
                        "kernels \\texttt{mir1\\_hess}, \\texttt{mir1\\_grad}, \\texttt{mir1\\_value}; "
                        "solid $m < 1$ (Bregman, $R'$ finite at 0), dashed $m = 1$ (logarithmic), "
                        "dotted $m > 1$ (barrier). Normalization: $R'(0) = 0$ for $m < 1$, "
                        "$R'(1) = 0$ otherwise.")


@figure("MIR")
def mirror_dual(ctx: Context) -> Figure:
    """MIR-1: along the simulated parameter flow, ``R'(x(t)) - R'(x(0)) = -int phi_q(f')``."""
    import torch

    import theory
    from numerics._generated import numpy_kernels as NK
    from numerics.flows import simulate_parameter_flow
    from numerics.losses import SeparableQuadratic
    from verify.common import ATOL, RTOL, balanced_start
    from verify.mir import phi_integral

    cases, alpha, y = ((1.0, 2), (1.0, 4), (1.5, 3), (2.0, 2), (2.0, 3)), 0.5, 1.0
    fig, ax = plt.subplots(figsize=(5.5, 3.0))
    worst = 0.0
    for i, (q, L) in enumerate(cases):
        t_end = theory.escape_time(L, q, alpha, y, 0.95)
        t_eval = torch.linspace(0, 1, 41, dtype=torch.float64)[1:] * t_end
        res = simulate_parameter_flow(balanced_start([alpha], 1, L), q, SeparableQuadratic(y), t_end,
                                      device=ctx.device, extras=[phi_integral], rtol=RTOL, atol=ATOL,
                                      t_eval=t_eval).raise_on_failure()
        ys = res.solution.ys.cpu().numpy()[0]
        x = ys[:, :L].prod(-1)
        integral = -ys[:, L]
        dual = NK.mir1_grad(x, L, q) - NK.mir1_grad(alpha**L, L, q)
        worst = max(worst, _rel(dual, integral))
        tn = t_eval.numpy() / t_end
        ax.plot(tn, dual, color=COLORS[i], ls=class_style(q, L), lw=1.2,
                label=f"$R'(x(t)) - R'(x_0)$, $q = {q:g}$, $L = {L}$")
        ax.plot(tn[::3], integral[::3], "o", color=COLORS[i], ms=3.5, mfc="none")
    ax.plot([], [], "o", color="gray", mfc="none", label=r"$\int_0^t \phi_q(y - x)\,ds$ (simulated)")
    ax.set_xlabel("time $t / T$ ($T$: arrival at $x = 0.95$)")
    ax.set_ylabel("change of the dual coordinate $R'(x)$")
    ax.legend(fontsize=6)
    path = save(fig, ctx, "mir-dual")
    return Figure(path, "MIR-1 as a measurement: the balanced parameter flow from $w_k(0) = 1/2$ on "
                        "$f = (x - 1)^2/2$ is simulated (DOP853, rtol $10^{-12}$) together with the "
                        "quadrature $\\int_0^t \\phi_q(y - x)\\,ds$ (circles); the lines are the derived "
                        "closed form $R'$ (kernel \\texttt{mir1\\_grad}) at the simulated $x(t)$. "
                        f"Largest relative deviation {number(worst)}.")


# ----------------------------------------------------------------------------- ESC

ESC_QS, ESC_LS = (1.0, 1.25, 1.5, 2.0), (2, 3, 4)


@figure("ESC")
def escape_times(ctx: Context) -> Figure:
    """ESC-1/2: escape time vs ``alpha``: closed form (kernel) and simulated hitting times."""
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    from numerics._generated import numpy_kernels as NK
    from verify.esc import X1, Y, escape_times
    from verify.harness import Context as VerifyContext

    alphas_sim = np.logspace(-3, -0.5, 6)
    alphas = np.logspace(-3.2, -0.35, 120)
    fig, axes = plt.subplots(1, len(ESC_LS), figsize=(7.2, 3.0))
    worst = 0.0
    for ax, L in zip(axes, ESC_LS):
        grid = [(q, a) for q in ESC_QS for a in alphas_sim if a**L < X1]
        sim = escape_times(L, [g[0] for g in grid], [g[1] for g in grid],
                            VerifyContext(device=ctx.device)).numpy()
        for i, q in enumerate(ESC_QS):
            ok = alphas**L < X1
            ax.loglog(alphas[ok], NK.esc1_time(alphas[ok] ** L, X1, Y, L, q), color=COLORS[i],
                      ls=class_style(q, L), lw=1.1, label=f"$q = {q:g}$, closed form")
            a_s, t_s = np.array([(a, s) for (qq, a), s in zip(grid, sim) if qq == q]).T
            worst = max(worst, _rel(t_s, NK.esc1_time(a_s**L, X1, Y, L, q)))
            ax.loglog(a_s, t_s, "o", color=COLORS[i], ms=4, mfc="none")
        lo, hi = ax.get_ylim()
        if hi / lo < 100:       # under two decades: label 1, 2, 5 x 10^k, not only powers of 10
            ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(ScalarFormatter())
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_title(f"$L = {L}$")
        ax.set_xlabel(r"initialization $\alpha$")
        ax.set_ylabel(r"escape time $T(\alpha)$")
    sim_handle = plt.Line2D([], [], marker="o", ls="none", color="gray", mfc="none", label="simulated")
    fig.legend(handles=[plt.Line2D([], [], color=COLORS[i], label=f"$q = {q:g}$")
                        for i, q in enumerate(ESC_QS)] + [sim_handle] + class_handles(),
               loc="outside lower center", ncol=4)
    path = save(fig, ctx, "esc-escape-time")
    return Figure(path, f"Escape time from $w_k(0) = \\alpha$ to $x = {X1:g}$ on $f = (x - {Y:g})^2/2$: "
                        "lines, the ESC-1 closed form (kernel \\texttt{esc1\\_time}; solid, dashed, "
                        "dotted for $m <, =, > 1$); circles, hitting times of the simulated parameter "
                        "flow (terminal event at the target, DOP853, rtol $10^{-12}$). Largest relative "
                        f"deviation {number(worst)}. $T$ stays bounded as $\\alpha \\to 0$ iff $m < 1$, "
                        "grows like $\\log(1/\\alpha)$ at $m = 1$ and like $\\alpha^{L\\beta}$ at "
                        "$m > 1$ (ESC-2).")


@figure("ESC", results=True)
def escape_phase_diagram(ctx: Context) -> Figure:
    """ESC-2: the escape class over ``(L, q)`` with the boundary ``q = L/(L-1)``."""
    import theory

    Ls = np.linspace(1.0, 8.5, 400)
    with np.errstate(divide="ignore"):
        boundary = np.minimum(np.where(Ls > 1, Ls / np.maximum(Ls - 1, 1e-300), np.inf), 2.0)
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    ax.fill_between(Ls, 1, boundary, color=COLORS[2], alpha=0.15, lw=0)
    ax.fill_between(Ls, boundary, 2, color=COLORS[3], alpha=0.15, lw=0)
    line = Ls >= 2
    ax.plot(Ls[line], Ls[line] / (Ls[line] - 1), "k-", lw=1.2, label=r"$q = L/(L-1)$ ($m = 1$)")
    style = {"bounded": ("o", COLORS[2], "bounded ($m < 1$)"),
             "logarithmic": ("s", "k", r"$\Theta(\log 1/\alpha)$ ($m = 1$)"),
             "polynomial": ("^", COLORS[3], r"$\Theta(\alpha^{L\beta})$, $L\beta < 0$ ($m > 1$)")}
    seen = set()
    for L in range(1, 9):
        for q in (1.0, 1.25, 4 / 3, 1.5, 1.75, 2.0):
            cls, _ = theory.escape_class(L, q)
            mk, col, lab = style[cls]
            ax.plot(L, q, mk, color=col, ms=5, ls="none", label=None if cls in seen else lab)
            seen.add(cls)
    esc2 = _result(ctx, "ESC-2")
    if esc2 is not None:
        grid = esc2.get("params", {}).get("grid", [])
        ax.plot([g[1] for g in grid], [g[0] for g in grid], "o", ms=10, mfc="none", color="k", lw=0.8,
                ls="none", label=f"exponent fitted by ESC-2 ({'passed' if esc2['passed'] else 'FAILED'})")
    ax.set_xlabel("depth $L$")
    ax.set_ylabel("steepest exponent $q$")
    ax.set_xlim(0.6, 8.5)
    ax.set_ylim(0.95, 2.05)
    fig.legend(loc="outside right upper")
    path = save(fig, ctx, "esc-phase-diagram")
    return Figure(path, "Escape class as $\\alpha \\to 0$ (ESC-2, \\texttt{theory.escape\\_class}) over "
                        "depth $L$ and exponent $q$ ($q = 1$ sign descent, $q = 2$ gradient flow): "
                        "bounded below the line $q = L/(L-1)$ (green), logarithmic on it, a negative "
                        "power $\\alpha^{L - q(L-1)}$ above it (red). Ringed: the $(q, L)$ whose "
                        "exponent this document's verify run fitted from simulations.")

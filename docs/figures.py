"""Figures of the documents: prediction (closed forms, generated kernels) vs simulation.

A figure function takes a :class:`Context` and returns a :class:`Figure` (a file under
``figures/`` and a LaTeX caption) or a :class:`Skipped` note when what it needs does not
exist yet. Figures simulate nothing: the simulated side is the series the checks of the
same verify run stored (``Result.series`` in ``ctx.results``). ``@figure(FAMILY)`` registers it; every family also gets
:func:`verification_figure` (error / tolerance of each check of the verify run), so a new
family has a figure before it registers its own. Matplotlib runs with the Agg backend and
writes vector PDFs; every axis is labelled, every plot has a legend, and quantities that
span decades are on log axes.
"""

from __future__ import annotations

import functools
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
from .latex import number  # noqa: E402

# the document's style, applied while each figure function runs (not to the process's other figures)
STYLE = {"font.size": 8, "axes.titlesize": 9, "legend.fontsize": 7,
         "figure.dpi": 100, "savefig.bbox": "tight", "figure.constrained_layout.use": True}
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
    """Register a figure function for ``family``, drawn in the document's :data:`STYLE`;
    ``results=True`` if it reads the verify JSON (it then runs after the verify run, the others
    while it runs)."""
    def deco(fn):
        @functools.wraps(fn)
        def styled(ctx: Context):
            with plt.rc_context(STYLE):
                return fn(ctx)
        styled.needs_results = results
        FIGURES.setdefault(family, []).append(styled)
        return styled
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

@figure("BAL", results=True)
def balance_conservation(ctx: Context) -> Figure | Skipped:
    """BAL-1 as measured by the verify run: the factors move, the differences of ``|w_k|^q`` do not."""
    from numerics._generated import numpy_kernels as NK
    from verify.bal import DRIFT_TOL

    bal1 = _result(ctx, "BAL-1")
    cases = [c for c in (bal1 or {}).get("series", {}).get("cases", []) if c["L"] == 3]
    if not cases:
        return Skipped("BAL-1 did not run at $L = 3$ in this verify run (or stored no series).")
    shown = cases[len(cases) // 2]
    q, L = shown["q"], shown["L"]
    t, ws = np.array(shown["t"]), np.array(shown["w"])
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(7.2, 2.8))
    for k in range(L):
        a1.plot(t, np.abs(ws[:, k]) ** q, color=COLORS[k], marker=".", label=f"$|w_{k + 1}(t)|^q$")
    for k in range(1, L):
        a1.plot(t, NK.bal1_invariant(ws[:, k], ws[:, 0], q), color=COLORS[k], ls="--", marker=".",
                label=f"$|w_{k + 1}|^q - |w_1|^q$")
    a1.set_xlabel("time $t$")
    a1.set_ylabel("$|w_k|^q$ and differences")
    a1.set_title(f"factors move, differences do not ($q = {q:g}$, $L = {L}$)")
    a1.legend(ncol=2, loc="best")
    worst = 0.0
    for i, c in enumerate(cases):
        drift = np.array(c["drift"])
        worst = max(worst, float(drift.max()))
        a2.plot(c["t"], np.maximum(drift, 1e-18), color=COLORS[i % len(COLORS)], marker=".", ms=3, lw=0.8,
                label=f"simulated, $q = {c['q']:g}$")
    a2.axhline(DRIFT_TOL, color="k", ls="--", lw=1, label="BAL-1 tolerance")
    a2.set_yscale("log")
    a2.set_ylim(1e-18, 1e-9)
    a2.set_xlabel("time $t$")
    a2.set_ylabel("relative drift of the differences")
    a2.set_title("prediction: zero drift")
    a2.legend(loc="center right", fontsize=6)
    path = save(fig, ctx, "bal-conservation")
    w0 = ", ".join(f"{v:.3g}" for v in shown["w0"])
    return Figure(path, "BAL-1 as measured by this document's verify run ($L = 3$, random starts with "
                        "mixed signs and targets): left, one coordinate from $w(0) = "
                        f"({w0})$: the factors $|w_k|^q$ change while the differences "
                        "$|w_k|^q - |w_1|^q$ (dashed, kernel \\texttt{bal1\\_invariant}) stay constant; "
                        "right, the drift $\\max |I(t) - I(0)| / \\max_k |w_k(0)|^q$ of the simulated "
                        "differences over the three coordinates (DOP853, rtol $10^{-13}$; values below "
                        f"$10^{{-18}}$ drawn at $10^{{-18}}$), largest {number(worst)}.")


@figure("BAL", results=True)
def balance_decay(ctx: Context) -> Figure | Skipped:
    """BAL-2/3 as measured by the verify run: the imbalance under decoupled decay falls like
    ``exp(-q nu t)``; under coupled decay it does not (except at ``q = 2``)."""
    runs = {"decoupled": _result(ctx, "BAL-2"), "coupled": _result(ctx, "BAL-3")}
    if not all(r and r.get("series", {}).get("cases") for r in runs.values()):
        return Skipped("BAL-2 and BAL-3 did not both run in this verify run (or stored no series).")
    fig, axes = plt.subplots(1, 2, figsize=(7.2, 2.9), sharey=True)
    worst = 0.0
    for ax, (decay, res) in zip(axes, runs.items()):
        nu = res["series"]["nu"]
        cases = [c for c in res["series"]["cases"] if c["L"] == min(c["L"] for c in res["series"]["cases"])]
        for i, c in enumerate(cases):
            t, ratio = np.array(c["t"]), np.array(c["ratio"])
            pred = np.exp(-c["q"] * nu * t)
            ax.semilogy(t, pred, color=COLORS[i], lw=1, ls="-" if decay == "decoupled" else ":",
                        label=f"$e^{{-q\\nu t}}$, $q = {c['q']:g}$" + ("" if decay == "decoupled" else " (BAL-2)"))
            ax.semilogy(t, np.maximum(np.abs(ratio), 1e-8), "o", color=COLORS[i], ms=3.5, mfc="none",
                        label=f"simulated, $q = {c['q']:g}$")
            if decay == "decoupled":
                worst = max(worst, _rel(ratio, pred))
        ax.set_title(f"{decay} decay, $\\nu = {nu:g}$, $L = {cases[0]['L']}$")
        ax.set_xlabel("time $t$")
        ax.legend(fontsize=6, ncol=2)
    axes[0].set_ylabel(r"imbalance $|w_k|^q - |w_1|^q$ / initial")
    path = save(fig, ctx, "bal-decay")
    return Figure(path, "BAL-2/3 as measured by this document's verify run (random starts and targets): "
                        "the largest initial imbalance $|w_k|^q - |w_1|^q$ of a run relative to its initial "
                        "value (circles, DOP853, rtol $10^{-13}$). Left, decoupled decay (BAL-2): the "
                        "prediction $e^{-q\\nu t}$ (lines), largest relative deviation "
                        f"{number(worst)}. Right, coupled decay (BAL-3): the same law dotted for comparison; "
                        "only $q = 2$ follows it, at $q = 1$ the imbalance stays constant while "
                        r"$|x\,d| > \nu \max_k w_k^2$ (values below $10^{-8}$ drawn at $10^{-8}$).")


@figure("DEC", results=True)
def equilibria(ctx: Context) -> Figure | Skipped:
    """DEC-2: the stable equilibrium ``x*`` vs ``nu`` for both decay forms, with the end points
    the verify run simulated."""
    import theory

    dec2 = _result(ctx, "DEC-2")
    y, cases = 2.0, ((1.0, 2), (1.5, 2), (2.0, 2), (1.0, 3), (2.0, 3))
    sims = [c for c in (dec2 or {}).get("series", {}).get("cases", []) if c["y"] == y]
    if not sims:
        return Skipped(f"DEC-2 ran no case with $y = {y:g}$ in this verify run (or stored no series).")
    nus = np.logspace(-1.7, 0.4, 60)
    fig, axes = plt.subplots(1, 2, figsize=(7.2, 3.0), sharey=True)
    worst = 0.0
    for ax, decay in zip(axes, ("decoupled", "coupled")):
        for i, (q, L) in enumerate(cases):
            ax.semilogx(nus, [theory.equilibrium(L, q, float(v), y, decay) for v in nus], color=COLORS[i],
                        ls=class_style(q, L), lw=1.1, label=f"$q = {q:g}$, $L = {L}$")
            for c in sims:
                if (c["q"], c["L"], c["decay"]) == (q, L, decay):
                    worst = max(worst, abs(c["x"] - theory.equilibrium(L, q, c["nu"], y, decay)) / y)
                    ax.semilogx(c["nu"], c["x"], "o", color=COLORS[i], ms=5, mfc="none")
        ax.set_title(f"{decay} decay")
        ax.set_xlabel(r"decay strength $\nu$")
    horizon = dec2["params"]["horizon"]
    axes[0].set_ylabel(f"equilibrium $x^*$ ($y = {y:g}$)")
    sim_handle = plt.Line2D([], [], marker="o", ls="none", color="gray", mfc="none",
                            label=f"simulated $x(t = {horizon:g})$")
    fig.legend(handles=axes[0].get_lines()[:len(cases)] + [sim_handle] + class_handles(),
               loc="outside lower center", ncol=5)
    path = save(fig, ctx, "dec-equilibria")
    return Figure(path, f"DEC-2 on $f = (x - {y:g})^2/2$: the stable equilibrium $x^*(\\nu)$ "
                        "(lines, \\texttt{equilibrium}, 30 digits) and the end points of the balanced "
                        "flows this document's verify run started between $x^*$ and $y$ and ran to "
                        f"$t = {horizon:g}$ (circles, DOP853 rtol $10^{{-12}}$); $x^* = 0$ where the saddle "
                        f"is the only equilibrium. Largest deviation {number(worst)} (relative to $y$).")


# ----------------------------------------------------------------------------- IB

@figure("IB", results=True)
def implicit_bias(ctx: Context) -> Figure | Skipped:
    """IB-2 as measured by the verify run: one sample, the simulated limit vs its
    characterization and vs the Bregman point; several samples, the distance of the simulated
    limit from the Bregman point; both as functions of ``q``."""
    from numerics import bias as NB

    ib2 = _result(ctx, "IB-2")
    series = (ib2 or {}).get("series", {})
    one = [c for c in series.get("cases", []) if (c["model"], c["L"], c["y"]) == ("MIR-1", 2, 3.0)]
    if not one:
        return Skipped("IB-2 did not run in this verify run (or stored no series).")
    z, a = np.array(series["z"]), series["alpha"]
    n, floor = len(z), 1e-16
    qs = [c["q"] for c in one]
    to_pred = [_normwise(c["sim"], c["pred"]) for c in one]
    to_bregman = [_normwise(c["sim"], NB.bregman_point(NB.Balanced(2, c["q"], np.full(n, a**2)), z[None],
                                                       np.array([c["y"]])).x) for c in one]
    several = series["bregman_distance"]
    fig, ax = plt.subplots(figsize=(5.0, 3.0))
    ax.semilogy(qs, [max(e, floor) for e in to_pred], "o-", color=COLORS[0],
                label="one sample: vs the IB-2 characterization")
    ax.semilogy(qs, [max(e, floor) for e in to_bregman], "s--", color=COLORS[1], mfc="none",
                label="one sample: vs the Bregman point")
    ax.semilogy([q for q, _ in several], [max(d, floor) for _, d in several], "^:", color=COLORS[2],
                label="three samples: vs the Bregman point")
    ax.axhline(1e-9, color="gray", lw=0.8, ls="-.", label="IB-2 tolerance $10^{-9}$")
    ax.set_xlabel("steepest exponent $q$")
    ax.set_ylabel(r"$\max|x_\infty - x_{\rm pred}| / \max|x_{\rm pred}|$")
    ax.legend(loc="best")
    path = save(fig, ctx, "ib-bias")
    return Figure(path, "IB-2 as measured by this document's verify run (MIR-1, $L = 2$, balanced "
                        f"starts; one sample: $n = {n}$ coordinates, $\\alpha = {a:g}$; three samples: "
                        "$n = 8$, $\\alpha = 1/2$): relative distance of the simulated limit (DOP853, rtol $10^{-12}$) from "
                        "the one-sample characterization $R'(x_\\infty) = R'(x_0) + \\mu\\,\\phi_q(z)$ "
                        "and from the Bregman point $\\arg\\min\\{D_R(x, x_0): Xx = y\\}$ (KKT solve). "
                        "Only gradient flow ($q = 2$) ends at the Bregman point (values below "
                        "$10^{-16}$ drawn at $10^{-16}$).")


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


@figure("MIR", results=True)
def mirror_dual(ctx: Context) -> Figure | Skipped:
    """MIR-1 as measured by the verify run: along the simulated parameter flow,
    ``R'(x(t)) - R'(x(0)) = -int phi_q(f')``."""
    from numerics._generated import numpy_kernels as NK

    mir1 = _result(ctx, "MIR-1")
    series = (mir1 or {}).get("series", {})
    cases = [c for c in series.get("cases", []) if c["alpha"] == 0.5 and c["L"] > 1]
    if not cases:
        return Skipped("MIR-1 did not run in this verify run (or stored no series).")
    fig, ax = plt.subplots(figsize=(5.5, 3.0))
    worst = 0.0
    for i, c in enumerate(cases):
        q, L, x0 = c["q"], c["L"], c["alpha"] ** c["L"]
        t = np.array([0.0] + c["t"]) / c["t"][-1]
        dual = NK.mir1_grad(np.array([x0] + c["x"]), L, q) - NK.mir1_grad(x0, L, q)
        integral = np.array([0.0] + c["minus_int_phi"])
        worst = max(worst, _rel(dual[1:], integral[1:]))
        ax.plot(t, dual, color=COLORS[i % len(COLORS)], ls=class_style(q, L), lw=1.2, marker=".",
                label=f"$q = {q:g}$, $L = {L}$")
        ax.plot(t[1:], integral[1:], "o", color=COLORS[i % len(COLORS)], ms=5, mfc="none")
    ax.plot([], [], "o", color="gray", mfc="none", label=r"$\int_0^t \phi_q(y - x)\,ds$ (simulated)")
    ax.set_xlabel(f"time $t / T$ ($T$: arrival at $x = {series['target']:g}$)")
    ax.set_ylabel("change of the dual coordinate $R'(x)$")
    ax.legend(fontsize=6, ncol=2)
    path = save(fig, ctx, "mir-dual")
    return Figure(path, "MIR-1 as measured by this document's verify run: the balanced parameter flow "
                        f"from $w_k(0) = 1/2$ on $f = (x - {series['y']:g})^2/2$ (DOP853, rtol $10^{{-12}}$) "
                        "with the quadrature $\\int_0^t \\phi_q(y - x)\\,ds$ (circles) at its output "
                        "times; the lines are the derived closed form $R'$ (kernel \\texttt{mir1\\_grad}) "
                        f"at the simulated $x(t)$. Largest relative deviation {number(worst)}.")


# ----------------------------------------------------------------------------- ESC

ESC_QS, ESC_LS = (1.0, 1.25, 1.5, 2.0), (2, 3, 4)


@figure("ESC", results=True)
def escape_times(ctx: Context) -> Figure | Skipped:
    """ESC-1: escape time vs ``alpha``: closed form (kernel) and the hitting times simulated
    by the verify run."""
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    from numerics._generated import numpy_kernels as NK

    esc1 = _result(ctx, "ESC-1")
    cases = (esc1 or {}).get("series", {}).get("cases", [])
    if not cases:
        return Skipped("ESC-1 did not run in this verify run (or stored no series).")
    X1, Y = esc1["params"]["target"], esc1["params"]["y"]
    alphas = np.logspace(-3.2, -0.35, 120)
    fig, axes = plt.subplots(1, len(ESC_LS), figsize=(7.2, 3.0))
    worst = 0.0
    for ax, L in zip(axes, ESC_LS):
        for i, q in enumerate(ESC_QS):
            ok = alphas**L < X1
            ax.loglog(alphas[ok], NK.esc1_time(alphas[ok] ** L, X1, Y, L, q), color=COLORS[i],
                      ls=class_style(q, L), lw=1.1, label=f"$q = {q:g}$, closed form")
            a_s, t_s = np.array([(c["alpha"], c["T"]) for c in cases if c["L"] == L and c["q"] == q]).T
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
                        "dotted for $m <, =, > 1$); circles, hitting times of the parameter flow "
                        "simulated by this document's verify run (terminal event at the target, "
                        "DOP853, rtol $10^{-12}$). Largest relative "
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

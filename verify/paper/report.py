"""Markdown tables of the stored paper experiments, each measurement beside its prediction.

Every function reads rows from :class:`verify.paper.runner.Store` (nothing is simulated
here) and returns markdown; :func:`markdown` joins them into ``report.md``. Intervals are
95 % Student-t over seeds (:mod:`verify.paper.stats`), cut to the quantity's range (fractions in
``[0, 1]``, counts, norms and losses ``>= 0``); exponents are fitted over every
escaped run, runs stopped by their step budget are counted as censored.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict

import numpy as np

from . import dln, finetune, plan, sparse
from .predict import COVERAGE, decay_outcome, decay_threshold, escape_prediction, optimizer_q
from .stats import fit_exponent, mean_interval, per_decade


def fmt(x, digits=3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}g}"


UNIT, POSITIVE = (0.0, 1.0), (0.0, math.inf)     # ranges of fractions and of non-negative quantities


def interval(values, scale=1.0, digits=3, bounds=(-math.inf, math.inf)) -> str:
    m, lo, hi = mean_interval(values, bounds)
    if not math.isfinite(m):
        return "n/a"
    if not math.isfinite(lo):
        return f"{fmt(scale * m, digits)} (1 seed)"
    return f"{fmt(scale * m, digits)} [{fmt(scale * lo, digits)}, {fmt(scale * hi, digits)}]"


def table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def groups(rows, *keys):
    out = defaultdict(list)
    for r in rows:
        out[tuple(r[k] for k in keys)].append(r)
    return dict(sorted(out.items(), key=lambda kv: tuple(str(k) for k in kv[0])))


def tuned(rows, L):
    """The SGD grid label with the best mean validation accuracy at depth ``L``."""
    grid = {k[0]: v for k, v in groups([r for r in rows if r["L"] == L and r["label"].startswith("SGD lr=")],
                                       "label").items()}
    return max(grid, key=lambda k: np.nanmean([r["val_accuracy"] for r in grid[k]])) if grid else None


def finetune_tables(rows) -> str:
    if not rows:
        return ""
    out = [f"## 1. Fine-tuning at the saddle (load_digits 0-4 -> 5-9, adapters at alpha = "
           f"{rows[0]['alpha']:g}, {rows[0]['steps']} full-batch steps)", "",
           f"Validation accuracy (%) over seeds, 95 % t intervals; 'SGD tuned lr' is the grid value "
           f"{plan.SGD_GRID} with the best mean accuracy (selected on the validation set itself, so "
           f"slightly optimistic). Escape: first step with training loss <= {finetune.ESCAPE_FRACTION:g} x "
           f"the loss at Delta W = 0. Hessian: {finetune.LANCZOS_STEPS} Lanczos steps on Hessian-vector "
           f"products of the training loss in the adapter factors at the end; a Ritz value below "
           f"-{finetune.NEGATIVE_TOL:g} lambda_max counts as negative. The theory makes no statement "
           f"about accuracies or Hessian spectra; the ESC-2 column is the escape class of the "
           f"optimizer's q at this depth (continuous time, diagonal reference problem).", ""]
    body = []
    for L in sorted({r["L"] for r in rows}):
        best = tuned(rows, L)
        for (label,), grp in groups([r for r in rows if r["L"] == L], "label").items():
            o = grp[0]["optimizer"]
            cls, _ = escape_prediction(L, optimizer_q(o))
            name = label + (" (= SGD tuned lr)" if label == best else "")
            esc = [r["escape_step"] for r in grp]
            body.append([L, name, f"{grp[0]['lr']:g}", len(grp), interval([r["val_accuracy"] for r in grp], 100, 3, UNIT),
                         f"{sum(r['escaped'] for r in grp)}/{len(grp)}", interval(esc, bounds=POSITIVE),
                         sum(r["diverged"] for r in grp), interval([r["n_negative"] for r in grp], bounds=POSITIVE),
                         interval([r["lambda_min"] for r in grp]), interval([r["lambda_max"] for r in grp]),
                         f"{cls} (q = {optimizer_q(o):g})"])
    out.append(table(["L", "optimizer", "lr", "seeds", "val. accuracy %", "escaped", "escape step",
                      "diverged", "negative eigenvalues", "lambda_min", "lambda_max", "ESC-2 class"], body))
    return "\n".join(out) + "\n"


def exponent_rows(rows, key_fields, q_of, L_of, step_field, coverage_of):
    body = []
    for key, grp in groups(rows, *key_fields).items():
        fit = fit_exponent([r["alpha"] for r in grp], [r[step_field] for r in grp], [r["escaped"] for r in grp])
        slope, half = per_decade([r["alpha"] for r in grp], [r[step_field] for r in grp], [r["escaped"] for r in grp])
        L, q = L_of(grp[0]), q_of(grp[0])
        cls, pred = escape_prediction(L, q)
        e, h = fit["exponent"], fit["half_width"]
        if not math.isfinite(e):
            verdict = "no fit (too few escaped runs)"
        elif fit["censored"]:
            verdict = ("within interval" if abs(e - pred) <= h else "outside interval") + \
                      f"; {fit['censored']} runs censored (fit biased toward 0)"
        else:
            verdict = "within interval" if abs(e - pred) <= h else "outside interval"
        per_alpha = ", ".join(f"{a:g}: {fmt(np.nanmean([r[step_field] for r in g if r['escaped']]) if any(r['escaped'] for r in g) else math.nan)}"
                              f"{'' if all(r['escaped'] for r in g) else '+'}"
                              for (a,), g in sorted(groups(grp, "alpha").items()))
        body.append([*key, *([] if "L" in key_fields else [L]), f"{q:g}", per_alpha, f"{fmt(e)} +- {fmt(h, 2)}", f"{fmt(slope)} +- {fmt(half, 2)}",
                     f"{fit['fitted']}/{fit['fitted'] + fit['censored']}", f"{cls}, {pred:g}", verdict,
                     coverage_of(grp[0])])
    return body


def escape_table(rows) -> str:
    if not rows:
        return ""
    hdr = ["optimizer", "L", "q", "mean escape step per alpha (+: some runs hit the budget)", "fitted exponent",
           "steps per decade", "fitted runs", "ESC-2 class, exponent", "agreement", "theory covers"]
    body = exponent_rows(rows, ("optimizer", "L"), lambda r: optimizer_q(r["optimizer"]), lambda r: r["L"],
                         "escape_step", lambda r: COVERAGE[r["optimizer"]])
    return "\n".join([f"## 2. Steps to escape vs alpha on the adapters (budget {rows[0]['steps']} steps, "
                      f"learning rates {plan.ESCAPE_LR})", "",
                      "Fitted: least squares log(steps) = c + e log(alpha) over the escaped runs of every "
                      "seed, 95 % interval of e; 'steps per decade' is the slope of steps against "
                      "log10(1/alpha) (a logarithmic class grows by a constant per decade, a bounded one "
                      "by less and less). Censored runs are not fitted. For the bounded and logarithmic "
                      "classes ESC-2's exponent 0 is the limit alpha -> 0: over a finite range that ends "
                      "at alpha = 0.1 a small negative fitted slope is expected, so 'outside interval' "
                      "there is a statement about the range, read it with the per-alpha steps.", "", table(hdr, body)]) + "\n"


def dln_tables(rows) -> str:
    if not rows:
        return ""
    hdr = ["method", "L", "q", "mean plateau end per alpha (+: some runs never left it)", "fitted exponent",
           "growth per decade", "fitted runs", "ESC-2 class, exponent", "agreement", "theory covers"]
    body = exponent_rows(rows, ("method",), lambda r: r["q"], lambda r: dln.DEPTH, "plateau",
                         lambda r: COVERAGE["flow" if r["method"].startswith("flow") else
                                            "gd" if r["method"].startswith("gd") else
                                            "sign" if r["method"].startswith("sign") else "adam"])
    status = "; ".join(f"{m}: " + ", ".join(f"{s} x {n}" for s, n in sorted(Counter(r["status"] for r in g).items()))
                       for (m,), g in groups(rows, "method").items() if m.startswith("flow"))
    return "\n".join([f"## 3. Deep diagonal regression, k = {dln.K}, n = {dln.N}, L = {dln.DEPTH}", "",
                      f"Plateau end: first time (flows: flow time on a {dln.GRID_POINTS}-point log grid; "
                      f"optimizers: step) with loss <= {dln.PLATEAU_FRACTION:g} f(x_0). Flows stop once "
                      f"escaped ('escaped': loss <= {dln.STOP_FRACTION:g} f(x_0)). "
                      f"Flows that ran out of their wall budget ('budget stop') report what they reached; a plateau not left "
                      f"within the budget is censored. Flow run status: {status or 'no flow runs'}.", "",
                      table(hdr, body)]) + "\n"


def sparse_table(rows) -> str:
    if not rows:
        return ""
    body = []
    for (q, L), grp in groups(rows, "q", "L").items():
        r = grp[0]["r"]
        opt = [g["optimum"] for g in grp]
        pred = "IB-3: margin -> optimum (trend)" if all(math.isfinite(o) for o in opt) else \
            "IB-3 trend only: r < 1 is not convex, no optimum computed"
        body.append([f"{q:g}", L, "inf" if math.isinf(r) else f"{r:.3g}", interval([g["margin"] for g in grp]),
                     interval(opt), interval([g["ratio"] for g in grp]), interval([g["support"] for g in grp], bounds=UNIT),
                     interval([g["test_accuracy"] for g in grp], 100, bounds=UNIT), interval([g["cosine"] for g in grp], bounds=(-1.0, 1.0)), pred])
    r0 = rows[0]
    return "\n".join([f"## 4. Sparse classification (k = {sparse.K}, {sparse.N_TRAIN} training points, "
                      f"{sparse.SUPPORT}-sparse teacher, exponential loss, alpha = {r0['alpha']:g}, "
                      f"lr = {r0['lr']:g}, {r0['steps']} steps)", "",
                      "Normalized margin in the algorithm's geometry l_r, r = p/L (p = q/(q-1), inf at q = 1), "
                      "against the maximum margin in that norm (LP for r in {1, inf}, SLSQP for 1 < r < inf). "
                      "Support: fraction of the teacher's support among the largest |x_i|; test accuracy "
                      f"on {sparse.N_TEST} fresh points.", "",
                      table(["q", "L", "r", "margin", "max margin", "margin / max", "support", "test accuracy %",
                             "cosine to teacher", "prediction"], body)]) + "\n"


def decay_table(rows) -> str:
    if not rows:
        return ""
    body = []
    for (L, o), grp in groups(rows, "L", "optimizer").items():
        alphas = sorted({r["alpha"] for r in grp})
        thr = decay_threshold(L, o, plan.DECAY_NU, alphas)
        for (a,), g in groups(grp, "alpha").items():
            esc = sum(r["escaped"] for r in g)
            col = sum((not r["escaped"]) and r["delta_norm"] < 0.1 * r["delta_norm0"] for r in g)
            body.append([L, o, f"{a:g}", decay_outcome(L, o, plan.DECAY_NU, a),
                         "none in range" if not math.isfinite(thr) else f"{thr:.3g}",
                         f"{esc} escape / {col} collapse / {len(g) - esc - col} stuck",
                         interval([r["delta_norm"] for r in g], bounds=POSITIVE), interval([r["final_loss"] for r in g], bounds=POSITIVE)])
    return "\n".join([f"## 5. Decay at depth on the adapters (nu = weight_decay = {plan.DECAY_NU:g}, flow time "
                      f"lr x steps = {plan.DECAY_TIME:g}, lr {plan.DECAY_LR})", "",
                      "Measured: escape = training loss reached the escape threshold; collapse = not escaped "
                      "and ||Delta W||_F fell below 0.1 x its initial value; stuck = neither. Prediction: "
                      "DEC-3 on the reference problem (y = 1) for the optimizer's form: SGD + L2 = q = 2 "
                      "coupled (identical to decoupled at q = 2), Adam + L2 = q = 1 coupled and AdamW = q = 1 "
                      "decoupled by analogy (OPT-2 covers beta1 = beta2 = 0 only). The network's loss is "
                      "not the reference problem: the threshold is a scale, not a promise.", "",
                      table(["L", "optimizer", "alpha", "DEC-3 (reference)", "DEC-3 threshold alpha",
                             "measured over seeds", "final norm of Delta W", "final loss"], body)]) + "\n"


def markdown(store, seconds=None, load=None, ran=None) -> str:
    parts = ["# Paper experiments at CPU scale", "",
             "Every row: the theory's prediction beside the measurement (mean and 95 % t interval over "
             "seeds, cut to the quantity's range: fractions in [0, 1], counts, norms and losses >= 0). "
             "Figures on log axes show the geometric mean and the interval of the logarithms. Where a setting is outside a theorem's hypotheses the row says so.", ""]
    if seconds is not None:
        parts += [f"This invocation ran {ran} task(s) in {seconds:.0f} s" + (f" (load average {load})" if load else "")
                  + "; tasks stored by earlier invocations were reused, not rerun.", ""]
    parts += [finetune_tables(store.rows("finetune")), escape_table(store.rows("escape")),
              dln_tables(store.rows("dln_flow") + store.rows("dln_optimizer")), sparse_table(store.rows("sparse")), decay_table(store.rows("decay"))]
    return "\n".join(p for p in parts if p is not None)


__all__ = ["markdown", "finetune_tables", "escape_table", "dln_tables", "sparse_table", "decay_table", "tuned",
           "interval", "groups"]

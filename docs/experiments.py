"""The "Experiments" section of the derivation document, from the stored paper experiments.

``section(results, out)`` reads what ``python -m verify.paper`` stored in the folder
``results`` (its ``report.md`` and figures; nothing is simulated again) and returns the LaTeX
of the section: the report's tables and notes, and its figures copied into ``out/figures``
(referenced relative to the document in ``out``).
Without stored results the section says how to produce them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .latex import code, escape

FIGURES = {
    "finetune.png": "Fine-tuning on load\\_digits 5-9 through product adapters: training loss (top) and the "
                    "top-20 Hessian eigenvalues at the end (bottom); bands are 95\\,\\% intervals over seeds (geometric "
                    "on the log axis).",
    "escape.png": "Steps to escape the saddle against the adapter scale $\\alpha$; dotted: the power ESC-2 "
                  "predicts; hollow triangles: runs stopped by their step budget.",
    "dln.png": "Deep diagonal regression ($k = 300$, $n = 100$, $L = 3$): loss curves of the flows and the "
               "optimizers, and the plateau length against $\\alpha$.",
    "sparse.png": "Sparse classification ($k = 80$): normalized margin in the algorithm's geometry over the "
                  "steps, divided by the maximum margin where it is a convex program.",
    "decay.png": "Decay at depth on the adapters: final $\\|\\Delta W\\|_F$ against $\\alpha$, with DEC-3's "
                 "threshold on the reference problem (dotted).",
}


SHORT = 9   # characters: a column whose cells are all this short is not wrapped


def _table(lines: list[str], chunk: int = 18) -> str:
    """A markdown table as full-width tabulars of at most ``chunk`` rows (header repeated), so
    that a long table breaks between pages. Columns whose cells are all short keep their
    natural width; the others share the rest of the line, ragged right."""
    rows = [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in lines if not ln.startswith("|---")]
    n = len(rows[0])
    short = [all(len(r[j]) <= SHORT for r in rows if j < len(r)) for j in range(n)]
    cols = "".join("l" if s else r">{\raggedright\arraybackslash}X" for s in short)
    rows = [[escape(c) for c in r] for r in rows]
    head = " & ".join(rows[0]) + r" \\ \midrule"
    out = []
    for i in range(1, max(len(rows), 2), chunk):
        body = "\n".join(" & ".join(r) + r" \\" for r in rows[i:i + chunk])
        out.append("{\\scriptsize\\setlength{\\tabcolsep}{2pt}\\noindent\\begin{tabularx}{\\linewidth}{" + cols + "}\n"
                   "\\toprule\n" + head + "\n" + body + "\n\\bottomrule\n\\end{tabularx}}\n")
    return "\n\\smallskip\n".join(out)


def _markdown(text: str) -> str:
    out, table = [], []
    for ln in text.splitlines() + [""]:
        if ln.startswith("|"):
            table.append(ln)
            continue
        if table:
            out.append(_table(table))
            table = []
        if ln.startswith("## "):
            out.append(f"\\subsection{{{escape(ln[3:])}}}")
        elif ln.startswith("# ") or not ln.strip():
            out.append("")
        else:
            out.append(escape(ln))
    return "\n".join(out)


def section(results: str | Path, out: str | Path) -> str:
    """LaTeX of the Experiments section from the stored results in ``results``."""
    results, figures = Path(results), Path(out) / "figures"
    head = ("\\section{Experiments}\n"
            f"The paper's experiments at CPU scale, as stored by {code('python -m verify.paper')} in "
            f"{code(str(results))}: tables and figures are read from that folder, not simulated again.\n")
    report = results / "report.md"
    if not report.exists():
        return head + f"\nNo stored results there: run {code('python -m verify.paper ' + str(results))} first.\n"
    figures.mkdir(parents=True, exist_ok=True)
    figs = []
    for name, caption in FIGURES.items():
        if (results / name).exists():
            shutil.copyfile(results / name, figures / f"paper-{name}")
            figs.append("\\begin{figure}[H]\\centering\n"
                        f"\\includegraphics[width=\\linewidth]{{figures/paper-{name}}}\n"
                        f"\\caption{{{caption}}}\n\\end{{figure}}")
    return head + _markdown(report.read_text()) + "\n" + "\n".join(figs) + "\n"


__all__ = ["section", "FIGURES"]

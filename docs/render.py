"""The LaTeX source of the derivation document, from the discovered pieces.

One section per family: statements (catalogue), derivations (SymPy steps, printed),
generated kernels (signature and expression), figures, and the verification table of
the verify run whose JSON is written beside the document. Table rows have the form
``\\texttt{ID} & error & tolerance & error/tol & status & seconds \\\\`` so that the
numbers can be compared with that JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from . import sources
from .figures import Figure, Skipped, margin
from .latex import PREAMBLE, code, display, escape, heading, markdown, number, prose


@dataclass
class Section:
    family: str
    text: sources.FamilyText | None
    checks: list = field(default_factory=list)          # verify.harness.Check
    derivations: list = field(default_factory=list)     # theory.derivation.Derivation
    kernels: list = field(default_factory=list)         # sources.Kernel
    figures: list = field(default_factory=list)         # Figure | Skipped
    results: list = field(default_factory=list)         # JSON result dicts

    def implemented(self) -> set[str]:
        """Theorem ids with a check, a derivation or a kernel."""
        return ({c.id for c in self.checks} | {d.theorem for d in self.derivations}
                | {k.theorem for k in self.kernels})


def run_line(meta: dict) -> str:
    """The verify run in one line: package version, torch, device, precision, seed."""
    return (f"steepmirror {escape(meta.get('version', '?'))}, torch {escape(meta.get('torch', '?'))}, "
            f"device {code(meta.get('device', '?'))}, precision {escape(meta.get('precision', '?'))}, "
            f"seed {escape(meta.get('seed', '?'))}")


def _statements(sec: Section) -> str:
    done = sec.implemented()
    items, missing = [], []
    listed = set()
    for st in (sec.text.statements if sec.text else []):
        if st.id is not None and st.id not in done:
            missing.append(st.id)
            continue
        label = f" ({markdown(st.label)})" if st.label else ""
        head = st.id + label if st.id else markdown(st.label)
        items.append(rf"\item[{head}] {markdown(st.text)}")
        listed.add(st.id)
    for chk in sec.checks:            # implemented but not in the catalogue: the check's claim
        if chk.id not in listed:
            items.append(rf"\item[{chk.id}] {prose(chk.claim)} (claim of the check; "
                         r"not in the catalogue)")
    out = ["\\subsection{Statements}"]
    if items:
        out.append("\\begin{description}\n" + "\n".join(items) + "\n\\end{description}")
    if missing:
        out.append("Catalogued, not yet implemented in the package: " + ", ".join(missing) + ".")
    return "\n".join(out)


def _derivations(sec: Section) -> str:
    if not sec.derivations:
        return "\\subsection{Derivations}\nNo derivation of this family is recorded yet."
    out = ["\\subsection{Derivations}",
           "Each step is the SymPy object the derivation produced, printed by \\texttt{sympy.latex}."]
    for der in sec.derivations:
        out.append(f"\\subsubsection{{{der.theorem}: {heading(prose(der.title), der.title)}}}")
        steps = [f"  \\item {st.text}\n{display(st.expr)}" for st in der.steps]
        out.append("\\begin{enumerate}\n" + "\n".join(steps) + "\n\\end{enumerate}")
    return "\n".join(out)


def kernel_block(k: sources.Kernel) -> str:
    sig = f"{k.name}({', '.join(k.args)})"
    head = rf"\item[\normalfont{code(sig)}] {prose(k.doc)} ({k.theorem})"
    if k.expr is None:
        return head + (" (Its expression is not defined by the current derivations: see "
                       f"{code('python -m theory.codegen --check')}.)")
    name = sp.Symbol(r"\mathtt{" + k.name.replace("_", r"\_") + "}")
    return head + "\n" + display(sp.Eq(name, k.expr, evaluate=False))


def _kernels(sec: Section) -> str:
    if not sec.kernels:
        return ""
    return ("\\subsection{Generated kernels}\n"
            f"Signatures as in {code('numerics/_generated/numpy_kernels.py')} and "
            f"{code('torch_kernels.py')} (written by {code('python -m theory.codegen')}); each computes "
            "the expression shown "
            "(on $x > 0$, extended by symmetry where declared).\n"
            "\\begin{description}\n" + "\n".join(kernel_block(k) for k in sec.kernels) +
            "\n\\end{description}")


def _figures(sec: Section) -> str:
    out = ["\\subsection{Prediction and simulation}"]
    for fig in sec.figures:
        if isinstance(fig, Skipped):
            out.append(f"\\emph{{Figure not available:}} {fig.note}\n")
        elif isinstance(fig, Figure):
            out.append("\\begin{figure}[H]\n\\centering\n"
                       f"\\includegraphics[width={fig.width:g}\\linewidth,height=0.42\\textheight,"
                       f"keepaspectratio]{{{fig.file}}}\n"
                       f"\\caption{{{fig.caption}}}\n\\end{{figure}}")
    return "\n".join(out)


def status_cell(r: dict) -> str:
    return r"\pass" if r["passed"] else r"\fail"


def table_row(r: dict) -> str:
    e, t = float(r["error"]), float(r["tolerance"])
    return (f"\\texttt{{{r['id']}}} & {number(e)} & {number(t)} & {number(margin(r))} & {status_cell(r)} "
            f"& {float(r['seconds']):.1f} \\\\")


def _verification(sec: Section, meta: dict) -> str:
    out = ["\\subsection{Verification}"]
    if not sec.results:
        out.append("No check of this family ran in the verify run of this document.")
        return "\n".join(out)
    rows = "\n".join(table_row(r) for r in sec.results)
    out.append("\\begin{table}[H]\n\\centering\n"
               "\\begin{tabular}{lrrrlr}\n\\toprule\n"
               "check & error & tolerance & error/tol & status & time (s) \\\\\n\\midrule\n"
               f"{rows}\n\\bottomrule\n\\end{{tabular}}\n"
               f"\\caption{{Verification of {sec.family}: {run_line(meta)}. A check passes iff its "
               f"error is finite and at most its tolerance.}}\\label{{tab:{sec.family}}}\n\\end{{table}}")
    notes = {c.id: c for c in sec.checks}
    items = []
    for r in sec.results:
        chk = notes.get(r["id"])
        parts = [prose(r["claim"]) + ".",
                 f"Worst case: predicted {prose(r['prediction'])}, measured {prose(r['measured'])}."]
        worst = r.get("params", {}).get("worst_case")
        if isinstance(worst, dict) and worst:
            parts.append("At " + ", ".join(
                prose(f"{k}={v}") if isinstance(v, (int, float)) else f"{prose(k)} = {escape(v)}"
                for k, v in worst.items()) + ".")
        if chk is not None:
            parts.append(f"Tolerance: {prose(chk.tolerance_note)}.")
            parts.append(f"Mutation ({code('--mutate')}, must fail): {prose(chk.mutation)}.")
        if r.get("note"):
            parts.append(f"Note: {prose(r['note'])}.")
        items.append(rf"\item[{r['id']}] " + " ".join(parts))
    out.append("\\begin{description}\n" + "\n".join(items) + "\n\\end{description}")
    return "\n".join(out)


def section(sec: Section, meta: dict) -> str:
    title = f"{sec.family}: {heading(markdown(sec.text.title), sec.text.title)}" if sec.text else sec.family
    parts = [f"\\section{{{title}}}\\label{{sec:{sec.family}}}"]
    if sec.text:
        parts += [markdown(p) + "\n" for p in sec.text.intro]
    parts += [_statements(sec), _derivations(sec), _kernels(sec), _figures(sec),
              _verification(sec, meta)]
    return "\n\n".join(p for p in parts if p)


def setting(catalogue: sources.Catalogue, geometry: list) -> str:
    out = ["\\section*{Setting and notation}", "\\addcontentsline{toc}{section}{Setting and notation}"]
    if catalogue.setting:
        out.append("\\begin{itemize}\n" + "\n".join(rf"\item {markdown(s)}" for s in catalogue.setting)
                   + "\n\\end{itemize}")
    if geometry:
        out.append("Kernels of the common geometry:\n\\begin{description}\n" +
                   "\n".join(kernel_block(k) for k in geometry) + "\n\\end{description}")
    return "\n".join(out)


def document(sections: list[Section], catalogue: sources.Catalogue, geometry: list, meta: dict,
             about: dict, failures=()) -> str:
    """The complete LaTeX source. ``about``: provenance lines (label -> LaTeX);
    ``failures``: derivation functions that raised (listed, not hidden)."""
    rows = "\n".join(f"{k} & {v} \\\\" for k, v in about.items())
    source = (f"the theorem catalogue \\texttt{{{escape(catalogue.path.name)}}}" if catalogue.path else
              "the one-line claims of the verify checks (the theorem catalogue THEORY.md was not found)")
    front = (
        "\\section*{About this document}\n"
        "Generated by \\texttt{python -m docs.build} from the objects the package computes: "
        f"statements from {source}; derivation steps, kernel expressions and signatures from "
        "the SymPy derivations and the generated kernels; figures from fresh simulations; "
        "tables from the verify run whose JSON is written beside this document.\n\n"
        "\\begin{tabular}{ll}\n\\toprule\n" + rows + "\n\\bottomrule\n\\end{tabular}\n")
    if failures:
        front += ("\n\\textbf{Derivations that raised and are missing from this document:}\n"
                  "\\begin{itemize}\n" + "\n".join(rf"\item {code(f)}" for f in failures) +
                  "\n\\end{itemize}\n")
    body = "\n\n".join(section(s, meta) for s in sections)
    return (PREAMBLE +
            "\\title{Steepest mirror flows: derivations, generated kernels and verification}\n"
            f"\\author{{\\texttt{{steepmirror}} {escape(meta.get('version', ''))}}}\n"
            f"\\date{{{escape(about.get('generated', ''))}}}\n"
            "\\begin{document}\n\\maketitle\n" + front + "\n\\tableofcontents\n\n" +
            setting(catalogue, geometry) + "\n\n" + body + "\n\\end{document}\n")

"""``python -m docs.build``: the derivation document, LaTeX compiled to PDF.

    python -m docs.build                     # docs/derivations.{pdf,tex,json}, docs/figures/
    python -m docs.build --only ESC          # docs/derivations-ESC.*: that family alone
    python -m docs.build --results r.json    # reuse the JSON of `python -m verify.all --json`
    python -m docs.build --tex-only          # the .tex and figures, no PDF (no TeX needed)
    python -m docs.build --no-figures        # no figures (fast drafts)

Without ``--results`` the verify run (``python -m verify.all --json``, same ``--only``)
runs in a subprocess while the derivations are collected. Its JSON is written beside
the document (``derivations.json``): the tables print exactly its numbers, and the
figures draw the series its checks measured (``Result.series``) instead of simulating
again. Outputs are written atomically (temporary file + rename); LaTeX byproducts
stay in ``<out>/_build``. Exit status: 0 when the document was written (failed checks
are shown as FAIL in it), 1 when the verify run or LaTeX fails, 2 on bad usage or a
missing LaTeX toolchain (one line saying how to install it).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from numerics.cli import Parser, add_device, add_seed, description, piped, readable, writable_folder

from . import experiments
from . import figures as F
from . import render, sources
from .latex import code, escape

DOCS = Path(__file__).resolve().parent
INSTALL = ("apt-get install texlive-latex-base texlive-latex-recommended latexmk "
           "(Debian/Ubuntu), or any TeX distribution with latexmk and pdflatex")
PROG = "python -m docs.build"


class BuildError(Exception):
    """A failure reported as one line (exit status ``code``)."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def parse_args(argv):
    p = Parser(prog=PROG, description=description(__doc__))
    p.add_argument("--only", nargs="+", metavar="FAMILY",
                   help="build only these families' sections (e.g. ESC), as derivations-ESC.pdf "
                        "(default: every family)")
    p.add_argument("--results", metavar="PATH", type=existing_file,
                   help="JSON written by python -m verify.all --json, used instead of a fresh "
                        "verify run (default: run it)")
    p.add_argument("--out", metavar="DIR", default=str(DOCS), help="output folder (default: docs/)")
    p.add_argument("--precision", default="quick", choices=("quick", "full"),
                   help="grids of the verify run and figures (default quick)")
    add_device(p)
    add_seed(p, "the random starts")
    p.add_argument("--paper-results", metavar="DIR", default=os.path.join("reports", "paper"),
                   help="stored results of python -m verify.paper for the Experiments section "
                        "(default reports/paper; left out with --only)")
    p.add_argument("--tex-only", action="store_true",
                   help="write the .tex and figures, not the PDF (default off)")
    p.add_argument("--no-figures", action="store_true",
                   help="leave the figures out, for fast drafts (default off)")
    args = p.parse_args(argv)
    try:
        writable_folder(args.out)
    except ValueError as exc:
        p.error(f"argument --out: {exc}")
    return args


def existing_file(path: str) -> str:
    """``--results`` type: a readable file."""
    if not os.path.isfile(path) or not os.access(path, os.R_OK):
        raise argparse.ArgumentTypeError(f"{path!r} is not a readable file; write one with "
                                         f"python -m verify.all --json {path}")
    return path


def log(msg: str) -> None:
    sys.stderr.write(f"[docs] {msg}\n")
    sys.stderr.flush()


# ----------------------------------------------------------------------------- files

def write_atomic(path: Path, data: bytes | str) -> None:
    """Write to a temporary file in the same folder, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
        readable(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def toolchain_missing() -> list[str]:
    return [tool for tool in ("latexmk", "pdflatex") if shutil.which(tool) is None]


# ----------------------------------------------------------------------------- verify

def choose_families(only) -> list[str] | None:
    """``only`` validated against the known families (``None``: all of them, decided once
    the derivations are known)."""
    known = sources.families(sources.catalogue().families)
    if not only:
        return None
    chosen = []
    for name in only:
        fam = name.upper()
        if fam not in known:
            raise BuildError(f"unknown family {name!r} (known: {', '.join(known)})", 2)
        if fam not in chosen:
            chosen.append(fam)
    return chosen


def start_verify(families, args, json_path: Path):
    """``python -m verify.all`` for ``families`` (all if ``None``) in a subprocess;
    ``None`` if none of them has checks."""
    cmd = [sys.executable, "-m", "verify.all", "--json", str(json_path), "--precision", args.precision,
           "--device", args.device, "--seed", str(args.seed)]
    if families is not None:
        runnable = [f for f in families if f in sources.families()]
        if not runnable:
            return None
        cmd += ["--only", *runnable]
    log("verify run: " + " ".join(cmd[1:]))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}   # one core each (see build)
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=sources.ROOT, env=env)


def finish_verify(proc, json_path: Path) -> dict:
    out, _ = proc.communicate()
    if proc.returncode not in (0, 1) or not json_path.exists():
        tail = (out or "").strip().splitlines()[-1:] or ["no output"]
        raise BuildError(f"the verify run failed (exit status {proc.returncode}): {tail[0]}")
    summary = [ln for ln in out.splitlines() if "checks passed" in ln]
    log("verify run: " + (summary[0].strip() if summary else "done"))
    return json.loads(json_path.read_text())


def load_results(path: str) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise BuildError(f"cannot read --results {path}: {exc.strerror}", 2) from None
    except ValueError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise BuildError(f"--results {path} is not the JSON of a verify run; write one with "
                         f"python -m verify.all --json {path}", 2)
    if data.get("mutate"):
        raise BuildError(f"--results {path} is from a --mutate run; the document needs a normal run", 2)
    return data


# ----------------------------------------------------------------------------- assembly

def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("steepmirror")
    except metadata.PackageNotFoundError:
        return "unknown"


def _git_commit() -> str | None:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=sources.ROOT, text=True,
                             capture_output=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=sources.ROOT, text=True, capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if rev.returncode != 0:
        return None
    return rev.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")


def sections_for(families):
    """The sections (without figures and results), the geometry kernels, the catalogue
    and the derivation failures."""
    catalogue = sources.catalogue()
    checks = sources.checks()
    ders, failures = sources.derivations()
    for f in failures:
        log(f"warning: derivation failed: {f}")
    kernels = sources.kernels()
    if families is None:               # every family with checks, derivations or kernels
        families = sources.families(list(ders) + [sources.family_of(k.theorem) for k in kernels])
    out = []
    for fam in families:
        out.append(render.Section(
            fam, catalogue.families.get(fam),
            checks=[c for c in checks.values() if c.family == fam],
            derivations=ders.get(fam, []),
            kernels=[k for k in kernels if sources.family_of(k.theorem) == fam]))
    geometry = [k for k in kernels if sources.family_of(k.theorem) is None]
    return out, geometry, catalogue, failures


def make_figures(sections, ctx: F.Context, phase: str, done: dict, skip: bool = False) -> None:
    """Run the figure functions of ``phase`` ('independent': those not reading the verify
    JSON; 'results': the others and the verification figures) into ``done``; with
    ``skip``, record each as skipped instead."""
    for sec in sections:
        if skip:
            for name in [fn.__name__ for fn in F.FIGURES.get(sec.family, [])] + ["verification"]:
                done[(sec.family, name)] = F.Skipped(f"left out of this build ({code('--no-figures')}).")
            continue
        for fn in F.FIGURES.get(sec.family, []):
            if getattr(fn, "needs_results", False) == (phase == "results"):
                start = time.perf_counter()
                done[(sec.family, fn.__name__)] = fn(ctx)
                log(f"figure {sec.family}/{fn.__name__} ({time.perf_counter() - start:.1f} s)")
        if phase == "results":
            done[(sec.family, "verification")] = F.verification_figure(ctx, sec.family)


def about(data: dict, source: str, catalogue: sources.Catalogue) -> dict:
    import sympy

    passed = sum(r["passed"] for r in data["results"])
    seconds = sum(float(r["seconds"]) for r in data["results"])
    rows = {"generated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "package": f"steepmirror {escape(data.get('version', '?'))}",
            "verify run": f"{escape(source)}: {passed}/{len(data['results'])} checks passed, "
                          f"{seconds:.1f} s of checks" + (" (interrupted)" if data.get("interrupted") else ""),
            "device, precision, seed": f"{code(data.get('device', '?'))}, "
                                       f"{escape(data.get('precision', '?'))}, "
                                       f"{escape(data.get('seed', '?'))}",
            "torch, sympy": f"{escape(data.get('torch', '?'))}, {escape(sympy.__version__)}"}
    commit = _git_commit()
    if commit:
        rows["git commit"] = escape(commit)
    rows["statements"] = (escape(str(catalogue.path)) if catalogue.path
                          else "check claims (THEORY.md not found)")
    return rows


def compile_pdf(tex: Path) -> tuple[Path, int]:
    """latexmk in ``<out>/_build``; the PDF is then moved beside the .tex atomically."""
    build = tex.parent / "_build"
    build.mkdir(exist_ok=True)
    cmd = ["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", "-file-line-error",
           f"-outdir={build.name}", tex.name]
    logfile = build / (tex.stem + ".log")
    try:
        proc = subprocess.run(cmd, cwd=tex.parent, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        raise BuildError(f"LaTeX did not finish in 600 s (log: {logfile})") from None
    text = logfile.read_text(errors="replace") if logfile.exists() else ""
    if proc.returncode != 0:
        errors = [ln for ln in text.splitlines() if re.match(r"^(!|.*:\d+: )", ln)]
        errors += (proc.stdout + proc.stderr).strip().splitlines()[-1:] or ["no output"]
        raise BuildError(f"LaTeX failed: {errors[0]} (log: {logfile})")
    pages = re.findall(r"Output written on .*\((\d+) pages?", text)
    overfull = len(re.findall(r"^Overfull \\hbox", text, re.M))
    if overfull:
        log(f"warning: {overfull} overfull lines (see {logfile})")
    pdf = tex.with_suffix(".pdf")
    write_atomic(pdf, (build / pdf.name).read_bytes())
    return pdf, int(pages[-1]) if pages else 0


def build(args) -> Path:
    """Write the document for parsed ``args``; returns the PDF (or .tex) path."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)          # one core for the verify subprocess, one for this process
    try:
        return _build(args)
    finally:
        torch.set_num_threads(threads)


def _build(args) -> Path:
    start = time.perf_counter()
    if not args.tex_only and toolchain_missing():
        raise BuildError(f"the LaTeX toolchain is missing ({', '.join(toolchain_missing())} not found); "
                         f"install it with: {INSTALL}; or use --tex-only", 2)
    families = choose_families(args.only)
    out = Path(args.out).resolve()
    stem = "derivations" + ("-" + "-".join(families) if families else "")
    out.mkdir(parents=True, exist_ok=True)
    ctx = F.Context(out / "figures")

    with tempfile.TemporaryDirectory(dir=out, prefix=".verify-") as tmp:
        json_path, proc = Path(tmp) / "results.json", None
        if args.results:
            data, source = load_results(args.results), f"cached {Path(args.results).name}"
        else:
            proc = start_verify(families, args, json_path)
            source = "fresh python -m verify.all"
        try:
            sections, geometry, catalogue, failures = sections_for(families)
            log(f"derivations and kernels collected ({time.perf_counter() - start:.1f} s)")
            done: dict = {}
            make_figures(sections, ctx, "independent", done, args.no_figures)
            if proc is not None:
                data = finish_verify(proc, json_path)
            elif not args.results:         # the chosen families have no checks yet
                data = {"results": [], "version": _version(), "device": args.device,
                        "precision": args.precision, "seed": args.seed, "mutate": False}
        finally:
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    families = [sec.family for sec in sections]
    data = {**data, "results": [r for r in data["results"] if sources.family_of(r["id"]) in families]}
    ctx.results = data
    make_figures(sections, ctx, "results", done, args.no_figures)
    for sec in sections:
        sec.results = [r for r in data["results"] if sources.family_of(r["id"]) == sec.family]
        names = [fn.__name__ for fn in F.FIGURES.get(sec.family, [])] + ["verification"]
        sec.figures = [done[(sec.family, n)] for n in names]
    meta = {k: data.get(k) for k in ("version", "torch", "device", "precision", "seed")}
    tex = render.document(sections, catalogue, geometry, meta, about(data, source, catalogue),
                          failures)
    if not args.only:
        head, end, tail = tex.rpartition("\\end{document}")
        tex = head + experiments.section(args.paper_results, out) + "\n" + end + tail
    write_atomic(out / f"{stem}.json", json.dumps(data, indent=2, sort_keys=True) + "\n")
    write_atomic(out / f"{stem}.tex", tex)
    if args.tex_only:
        log(f"wrote {out / stem}.tex in {time.perf_counter() - start:.1f} s")
        return out / f"{stem}.tex"
    pdf, pages = compile_pdf(out / f"{stem}.tex")
    failed = [r["id"] for r in data["results"] if not r["passed"]]
    if failed:
        log(f"warning: checks failed in the verify run: {', '.join(failed)} (shown as FAIL)")
    log(f"wrote {pdf} ({pages} pages) in {time.perf_counter() - start:.1f} s")
    return pdf


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        build(args)
    except BuildError as exc:
        sys.stderr.write(f"{PROG}: error: {exc}\n")
        return exc.code
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(piped(main))

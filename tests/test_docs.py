"""The derivation document (``python -m docs.build``).

Builds that compile LaTeX are skipped without latexmk/pdflatex; the others run everywhere.
The numbers of each document's tables are read back from its ``.tex`` and compared with
the verify JSON written beside it by the same build.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import sys
from pathlib import Path

import pytest
import sympy as sp

from conftest import run_guarded
from docs import latex, sources

HAVE_TEX = shutil.which("latexmk") is not None and shutil.which("pdflatex") is not None
needs_tex = pytest.mark.skipif(not HAVE_TEX, reason="needs latexmk and pdflatex (apt-get install "
                               "texlive-latex-base texlive-latex-recommended latexmk)")
ROW = re.compile(r"^\\texttt\{([A-Z]+-\d+[a-z]*)\} & (.+?) & (.+?) & (.+?) & \\(pass|fail) & ([\d.]+) \\\\$",
                 re.M)


def run(module, *args, env=None):
    return run_guarded([sys.executable, "-m", module, *args], env=env, cwd=sources.ROOT)


def parse_number(cell: str) -> float:
    """Inverse of the table format: ``$2.44\\times 10^{-12}$``, ``$10^{-9}$``, ``$0.0215$``."""
    body = cell.strip().strip("$")
    if body == r"\infty":
        return math.inf
    if body == r"\mathrm{NaN}":
        return math.nan
    m = re.fullmatch(r"(?:(-?[\d.]+)\\times )?(-?)10\^\{(-?\d+)\}", body)
    if m:
        mant = float(m.group(1)) if m.group(1) else (-1.0 if m.group(2) else 1.0)
        return mant * 10.0 ** int(m.group(3))
    return float(body)


def check_rows_match_json(tex: str, data: dict) -> list[str]:
    rows = ROW.findall(tex)
    assert [r[0] for r in rows] == [r["id"] for r in data["results"]]
    for (cid, err, tol, _, status, secs), r in zip(rows, data["results"]):
        for shown, value in ((err, r["error"]), (tol, r["tolerance"])):
            value = float(value)
            got = parse_number(shown)
            assert got == value or math.isclose(got, value, rel_tol=6e-3), (cid, shown, value)
        assert status == ("pass" if r["passed"] else "fail")
        assert abs(float(secs) - r["seconds"]) <= 0.05 + 1e-9
    return [r[0] for r in rows]


def sections(tex: str) -> list[str]:
    return re.findall(r"^\\section\{([A-Z]+):", tex, re.M)


# ----------------------------------------------------------------------------- builds

@pytest.fixture(scope="module")
def esc_build(tmp_path_factory):
    """``--only ESC`` with a fresh verify run: the full pipeline for one family (in this
    process, so that the next build reuses the SymPy derivations)."""
    from docs import build

    out = tmp_path_factory.mktemp("docs-esc")
    path = build.build(build.parse_args(["--only", "ESC", "--out", str(out)] +
                                        ([] if HAVE_TEX else ["--tex-only"])))
    return path, out


@needs_tex
def test_family_build_writes_pdf_with_its_section_and_the_runs_numbers(esc_build):
    path, out = esc_build
    assert path == out / "derivations-ESC.pdf" and path.read_bytes()[:5] == b"%PDF-"
    tex = (out / "derivations-ESC.tex").read_text()
    assert sections(tex) == ["ESC"]
    data = json.loads((out / "derivations-ESC.json").read_text())
    ids = check_rows_match_json(tex, data)
    assert ids and all(i.startswith("ESC-") for i in ids)
    assert data["device"] == "cpu" and data["seed"] == 0 and data["version"] in tex
    # the figures of the family are there, and every formula went through LaTeX
    for name in ("esc-escape-time", "esc-phase-diagram", "esc-verification"):
        assert f"figures/{name}.pdf" in tex and (out / "figures" / f"{name}.pdf").exists()
    for raw in ("**", "Abs(", "Piecewise(", "sqrt("):
        assert raw not in tex


@needs_tex
@pytest.mark.skipif(shutil.which("pdftoppm") is None or shutil.which("pdfinfo") is None,
                    reason="needs pdftoppm and pdfinfo (poppler-utils)")
def test_every_page_renders(esc_build, tmp_path):
    path, _ = esc_build
    info = run_guarded(["pdfinfo", str(path)])
    pages = int(re.search(r"^Pages:\s+(\d+)", info.stdout, re.M).group(1))
    r = run_guarded(["pdftoppm", "-r", "15", "-png", str(path), str(tmp_path / "page")])
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr
    assert len(list(tmp_path.glob("page*.png"))) == pages >= 3


def test_whole_document_has_one_section_per_family(esc_build, tmp_path):
    """Every family, from the cached verify JSON of the ESC build (no figures)."""
    from docs import build

    _, esc = esc_build
    out = tmp_path / "doc"
    build.build(build.parse_args(["--results", str(esc / "derivations-ESC.json"), "--no-figures",
                                  "--out", str(out)] + ([] if HAVE_TEX else ["--tex-only"])))
    tex = (out / "derivations.tex").read_text()
    found = sections(tex)
    checked = {c.family for c in sources.checks().values()}
    assert len(found) == len(set(found)) and checked <= set(found)
    data = json.loads((out / "derivations.json").read_text())
    assert [r["id"] for r in data["results"]] == check_rows_match_json(tex, data)
    assert {sources.family_of(i) for i in check_rows_match_json(tex, data)} == {"ESC"}
    assert tex.count("No check of this family ran") == len(found) - 1
    if HAVE_TEX:
        assert (out / "derivations.pdf").read_bytes()[:5] == b"%PDF-"


def test_missing_toolchain_is_one_line_saying_how_to_install(tmp_path):
    env = {**os.environ, "PATH": str(tmp_path)}          # no latexmk, no pdflatex
    p = run("docs.build", "--only", "ESC", "--out", str(tmp_path / "doc"), env=env)
    assert p.returncode == 2
    assert len(p.stderr.strip().splitlines()) == 1 and "apt-get install" in p.stderr, p.stderr
    assert not (tmp_path / "doc").exists()


@pytest.mark.parametrize("args", [["--only", "NOPE"], ["--results", "missing.json"], ["--bogus"]])
def test_bad_usage_is_one_line_and_exit_2(args, tmp_path):
    p = run("docs.build", "--tex-only", "--out", str(tmp_path), *args)
    assert p.returncode == 2
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr


# ----------------------------------------------------------------------------- printing

def test_latex_named_symbols_print_verbatim_and_piecewise_terms_are_bracketed():
    x, q = sp.symbols("x q", positive=True)
    assert latex.math(sp.Symbol(r"R''(x_i)") / x) == r"\frac{R''(x_i)}{x}"
    assert latex.math(sp.Symbol(r"-\alpha\,\partial_\alpha T")) == r"-\alpha\,\partial_\alpha T"
    assert latex.math(sp.Symbol("x_0")) == "x_{0}"
    pw = sp.Piecewise((x, q > 1), (0, True))
    assert latex.math(pw + 1).startswith(r"\left(\begin{cases}")
    assert latex.math(sp.Eq(sp.Symbol("y"), pw)).startswith(r"y = \begin{cases}")


def test_long_sums_are_broken_into_lines():
    x = sp.Symbol("x", positive=True)
    long = sp.Add(*[sp.sqrt(x + k) / (x**k + 3 * k) for k in range(1, 12)])
    out = latex.display(sp.Eq(sp.Symbol("S"), long))
    lines = out.split("\n")[1:-1]
    assert out.startswith(r"\begin{align*}") and len(lines) >= 2
    assert all(latex._visible_width(ln) <= latex.LINE + 10 for ln in lines)
    assert latex.display(sp.Eq(sp.Symbol("S"), x)) == r"\[\fitmath{S = x}\]"


@pytest.mark.parametrize("ascii_, tex", [
    ("R''(x) = |x|^(-m) / L", r"R''(x) = |x|^{-m} / L"),
    ("x* = min(y, nu^-L)", r"x^* = \min (y, \nu ^{-L})"),
    ("R'(x) = (sqrt(c^2 + 4x) - |c|)/2", r"R'(x) = (\sqrt{c^{2} + 4x} - |c|)/2"),
    ("integral_0^inf ||grad f||^2 dt", r"\int _{0}^{\infty} \|\nabla  f\|^{2} dt"),
    ("<z, x_inf> = y", r"\langle z, x_{\infty}\rangle  = y"),
    ("w*Abs(w)**(L - 1)", r"w \cdot \left|w\right|^{L - 1}"),
])
def test_catalogue_ascii_math(ascii_, tex):
    assert latex.asciimath(ascii_) == tex


@pytest.mark.parametrize("value, shown", [(2.4356e-12, r"$2.44\times 10^{-12}$"), (1e-9, r"$10^{-9}$"),
                                          (0.02154, "$0.0215$"), (0.0, "$0$"), (math.inf, r"$\infty$")])
def test_numbers_round_trip(value, shown):
    assert latex.number(value) == shown
    assert parse_number(shown) == pytest.approx(value, rel=5e-3) or value == parse_number(shown)


def test_derivation_functions_follow_the_convention():
    names = {f"{fn.__module__}.{fn.__name__}" for fn in sources.derivation_functions()}
    assert {"theory.escape.escape_time_derivation", "theory.deep.balanced",
            "theory.deep.factor_velocity_law"} <= names
    assert "theory.mirror.mirror_potential" not in names        # needs arguments
    assert not any(n.startswith("theory.derivation.") for n in names)


def test_catalogue_parsing():
    cat = sources.parse_theory("## Setting and notation\n\n- Flow `dw/dt = -phi_q(g)`.\n\n"
                               "## ESC: saddle escape\n\nReference problem: `f(x)`.\n\n"
                               "- **ESC-1 (closed form).** `T = 1`\n  continued.\n"
                               "- **ESC-2.** Bounded.\n")
    assert cat.setting == ["Flow `dw/dt = -phi_q(g)`."]
    esc = cat.families["ESC"]
    assert esc.title == "saddle escape" and esc.intro == ["Reference problem: `f(x)`."]
    assert [(s.id, s.label, s.text) for s in esc.statements] == [
        ("ESC-1", "closed form", "`T = 1` continued."), ("ESC-2", "", "Bounded.")]


def test_shipped_catalogue_matches_the_shared_one():
    """docs/THEORY.md is the copy a clean clone builds from; it must equal the team's catalogue."""
    root = Path(__file__).resolve().parents[1]
    shared = root.parent / "shared" / "THEORY.md"
    if not shared.is_file():
        pytest.skip("no ../shared/THEORY.md next to this checkout")
    assert (root / "docs" / "THEORY.md").read_text() == shared.read_text()


def test_experiments_section_reads_the_stored_report_and_copies_its_figures(tmp_path):
    from docs import experiments

    stored = tmp_path / "paper"
    stored.mkdir()
    (stored / "report.md").write_text("# title\n\n## 1. Escape\n\nSome text.\n\n| L | optimizer | theory covers |\n"
                                      "|---|---|---|\n| 2 | adam | not covered: Adam is q = 1 only for beta1 = 0 |\n")
    (stored / "escape.png").write_bytes(b"png")
    tex = experiments.section(stored, tmp_path / "out")
    assert "\\subsection{1. Escape}" in tex and "Some text." in tex
    # short columns keep their width, the long one wraps; no cell is lost
    assert "\\begin{tabularx}{\\linewidth}{ll>{\\raggedright\\arraybackslash}X}" in tex
    assert "2 & adam & not covered: Adam is q = 1 only for beta1 = 0 \\\\" in tex
    assert (tmp_path / "out" / "figures" / "paper-escape.png").read_bytes() == b"png"
    assert "figures/paper-escape.png" in tex and "figures/paper-dln.png" not in tex
    empty = experiments.section(tmp_path / "none", tmp_path / "out")
    assert "No stored results there" in empty


def test_the_document_style_stays_inside_its_figure_functions(tmp_path):
    """``docs.figures`` draws in its own style (constrained layout, small fonts) without changing
    the process's matplotlib defaults, which other figures of the same process use (a global
    constrained layout made ``verify.paper``'s ``tight_layout`` warn)."""
    import subprocess

    code = ("import matplotlib; from pathlib import Path; import sys; "
            "style = lambda: {k: v for k, v in matplotlib.rcParams.items() if not k.startswith('backend')}; "
            "before = style(); import docs.figures as F; assert style() == before; "
            "F.potentials(F.Context(Path(sys.argv[1]))); assert style() == before")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "figures")], check=True,
                   cwd=Path(__file__).resolve().parents[1])
    assert (tmp_path / "figures" / "mir-potentials.pdf").exists()

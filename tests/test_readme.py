"""Every README snippet runs as written and prints what the README shows; every README command
parses (``--help`` appended; the quick ones run as written).

The snippets run in one subprocess (one import of torch and SymPy instead of one per snippet),
each as a script of its own: a fresh namespace, its own printed output, warnings and error,
so that the test of each snippet still says which one failed."""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from pathlib import Path

import pytest

from conftest import run_guarded

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
HANG_GUARD = 600     # seconds; only a guard against a hang, reported as a skip, never a verdict
QUICK = ("python -m theory", "python -m theory potential", "python -m theory scalar")


def blocks(lang: str) -> list[tuple[int, str]]:
    return [(m.start(), m.group(1)) for m in re.finditer(rf"```{lang}\n(.*?)```", README, re.S)]


def snippets() -> list[tuple[str, str]]:
    """``(code, expected output)``: each python block and the text block right after it."""
    texts = blocks("text")
    out = []
    for pos, code in blocks("python"):
        after = [t for p, t in texts if p > pos]
        assert after, "a python snippet without its output block"
        out.append((code, after[0]))
    return out


def commands() -> list[str]:
    lines = [ln.split("  #")[0].strip() for _, b in blocks("bash") for ln in b.splitlines()]
    return [ln for ln in lines if ln.startswith(("python -m", "steepmirror"))]


def run(args, **kw):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "always"}
    return run_guarded(args, timeout=HANG_GUARD, cwd=ROOT, env=env, **kw)


# Runs each snippet of the JSON list on stdin as a script (namespace of its own, __name__ ==
# "__main__"), capturing what it prints, the warnings it raises and its traceback; prints one JSON
# list of {"stdout", "warnings", "error"}.
RUNNER = """
import contextlib, io, json, sys, traceback, warnings
results = []
for code in json.load(sys.stdin):
    out, err = io.StringIO(), io.StringIO()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(out), \\
            contextlib.redirect_stderr(err):
        warnings.simplefilter("always")
        try:
            exec(compile(code, "<README snippet>", "exec"), {"__name__": "__main__"})
            error = ""
        except BaseException:
            error = traceback.format_exc()
    shown = [f"{w.category.__name__}: {w.message}" for w in caught] + \\
        [ln for ln in err.getvalue().splitlines() if "Warning" in ln]
    results.append({"stdout": out.getvalue(), "warnings": shown, "error": error})
json.dump(results, sys.__stdout__)
"""


@pytest.fixture(scope="module")
def snippet_runs():
    """What each README snippet printed, warned and raised (one subprocess for all of them)."""
    p = run([sys.executable, "-c", RUNNER], input=json.dumps([code for code, _ in snippets()]))
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def same(printed: str, shown: str) -> bool:
    """Equal text; numbers equal to 6 significant digits (float rounding across platforms)."""
    a, b = printed.strip().splitlines(), shown.strip().splitlines()
    if len(a) != len(b):
        return False
    for la, lb in zip(a, b):
        if NUMBER.sub("#", la) != NUMBER.sub("#", lb):
            return False
        for x, y in zip(NUMBER.findall(la), NUMBER.findall(lb)):
            if abs(float(x) - float(y)) > 1e-6 * max(abs(float(y)), 1e-300) + 1e-15:
                return False
    return True


def test_readme_has_its_snippets_and_commands():
    assert len(snippets()) >= 2 and len(commands()) >= 10


@pytest.mark.parametrize("k", range(len(snippets())))
def test_readme_snippet_prints_what_the_readme_shows(k, snippet_runs):
    code, shown = snippets()[k]
    res = snippet_runs[k]
    assert not res["error"], f"snippet {k} raised:\n{res['error']}"
    assert not res["warnings"], res["warnings"]            # no warnings leaking on valid input
    assert same(res["stdout"], shown), f"snippet {k} printed:\n{res['stdout']}\nREADME shows:\n{shown}"


@pytest.mark.parametrize("line", commands())
def test_readme_command_parses(line):
    args = shlex.split(line)
    if "cuda" in args:
        pytest.skip("needs CUDA")
    args = [sys.executable, *args[1:]] if args[0] == "python" else args
    quick = any(line == c or line.startswith(c + " ") for c in QUICK) and "--help" not in line
    p = run(args if quick else [*args, "--help"])
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr and "Warning" not in p.stderr, p.stderr
    assert p.stdout.strip()

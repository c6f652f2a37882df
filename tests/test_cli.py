"""The command-line contracts of verify.all and theory."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def run(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=timeout)


def test_verify_all_runs_selected_checks_and_writes_json(tmp_path):
    out = tmp_path / "r.json"
    p = run("verify.all", "--only", "ESC-1", "MIR-2", "--json", str(out))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "ESC-1" in p.stdout and "PASS" in p.stdout
    assert "[ 1/2]" in p.stderr
    data = json.loads(out.read_text())
    assert [r["id"] for r in data["results"]] == ["MIR-2", "ESC-1"] or \
        sorted(r["id"] for r in data["results"]) == ["ESC-1", "MIR-2"]
    assert all(r["passed"] for r in data["results"])


def test_verify_all_mutation_is_caught():
    p = run("verify.all", "--only", "MIR-2", "--mutate")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "CAUGHT" in p.stdout and "1/1 caught" in p.stdout


@pytest.mark.parametrize("args", [["--only", "NOPE-9"], ["--precision", "fast"], ["--bogus"],
                                  ["--seed", "x"]])
def test_verify_all_bad_usage_is_one_line_and_exit_2(args):
    p = run("verify.all", *args)
    assert p.returncode == 2
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr


@pytest.mark.parametrize("args", [
    ["escape-time", "--L", "3", "--q", "2.5", "--alpha", "0.1"],
    ["escape-time", "--L", "0", "--q", "1.5", "--alpha", "0.1"],
    ["escape-time", "--L", "3", "--q", "1.5", "--alpha", "-1"],
    ["escape-time", "--L", "3", "--q", "1.5", "--alpha", "0.1", "--target", "2"],
    ["escape-class", "--L", "3"],
])
def test_theory_cli_bad_input(args):
    p = run("theory", *args)
    assert p.returncode == 2
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_theory_cli_prints_closed_forms():
    p = run("theory", "escape-class", "--L", "3", "--q", "2")
    assert p.returncode == 0 and p.stdout.split()[0] == "polynomial"
    p = run("theory", "escape-time", "--L", "3", "--q", "1.5", "--alpha", "0.1")
    assert p.returncode == 0 and abs(float(p.stdout) - 2.1769340928195686) < 1e-12

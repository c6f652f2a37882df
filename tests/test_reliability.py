"""Falsifiability, repeatability and reports that survive interrupts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import HANG_GUARD_S, run_guarded
from verify import all as verify_all
from verify import load_checks
from verify.harness import REGISTRY


def run(*args):
    return run_guarded([sys.executable, "-m", *args])


def test_every_check_documents_tolerance_and_mutation():
    load_checks()
    assert REGISTRY
    for c in REGISTRY.values():
        assert len(c.tolerance_note) > 20 and len(c.mutation) > 10, c.id


def test_every_mutation_is_caught(tmp_path):
    """``--mutate`` runs each check against its wrong prediction: all must fail."""
    out = tmp_path / "mut.json"
    p = run("verify.all", "--mutate", "--json", str(out))
    data = json.loads(out.read_text())
    missed = [r["id"] for r in data["results"] if r["passed"]]
    assert not missed, f"mutations not caught: {missed}"
    assert p.returncode == 0, p.stdout[-2000:]
    n = len(data["results"])
    assert f"mutations: {n}/{n} caught ({n} checks, {n} mutations)" in p.stdout


def _strip_timings(data):
    for r in data["results"]:
        r.pop("seconds")
    return data


def test_json_is_repeatable_apart_from_timings(tmp_path):
    only = ["BAL-3", "MIR-2", "ESC-3"]         # a Monte-Carlo bound, a simulated flow, a quadrature: the quick ones
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    for out in (a, b):
        assert run("verify.all", "--only", *only, "--json", str(out)).returncode == 0
    assert _strip_timings(json.loads(a.read_text())) == _strip_timings(json.loads(b.read_text()))


def test_json_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "r.json"
    path.write_text('{"old": true}')

    def boom(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(json, "dump", boom)
    with pytest.raises(KeyboardInterrupt):
        verify_all.write_json_atomic(str(path), {"new": 1})
    assert json.loads(path.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_ctrl_c_prints_the_results_so_far(tmp_path):
    out = tmp_path / "partial.json"
    # SIGINT as in a terminal: a run started in the background inherits it ignored (a shell's `cmd &`),
    # and Python then leaves it ignored (no KeyboardInterrupt), whatever verify.all does
    proc = subprocess.Popen([sys.executable, "-m", "verify.all", "--json", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    seen, char = "", "?"
    deadline = time.monotonic() + HANG_GUARD_S
    while "[ 2/" not in seen and char and time.monotonic() < deadline:      # the first check has finished
        char = proc.stderr.read(1)
        seen += char
    if "[ 2/" not in seen:
        proc.kill()
        proc.communicate()
        if char:
            pytest.skip(f"hang guard: the first check did not finish within {HANG_GUARD_S:g} s; no verdict")
        pytest.fail(f"verify.all ended before its first check finished: {seen[-500:]}")
    proc.send_signal(signal.SIGINT)
    try:
        stdout, stderr = proc.communicate(timeout=HANG_GUARD_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.skip(f"hang guard: verify.all did not stop within {HANG_GUARD_S:g} s of Ctrl-C; no verdict")
    assert proc.returncode == 130
    assert "interrupted" in stderr
    assert "BAL-1" in stdout
    data = json.loads(out.read_text())
    assert data["interrupted"] and len(data["results"]) >= 1


@pytest.mark.parametrize("module, args", [
    ("verify.bench", ["--device", "tpu"]),
    ("verify.bench", ["--budget", "soon"]),
    ("verify.precision", ["--points", "many"]),
    ("verify.all", ["--json"]),
    ("verify.all", ["--device", "gpu"]),
])
def test_cli_flags_are_validated(module, args):
    p = run(module, *args)
    assert p.returncode == 2
    assert p.stderr.strip(), "an error message is expected"


@pytest.mark.skipif(os.environ.get("CUDA_VISIBLE_DEVICES") == "" or not __import__("torch").cuda.is_available(),
                    reason="needs a CUDA device")
@pytest.mark.cuda
def test_cpu_and_cuda_results_agree(tmp_path):
    a, b = tmp_path / "cpu.json", tmp_path / "cuda.json"
    assert run("verify.all", "--only", "ESC-1", "MIR-1", "--json", str(a)).returncode == 0
    assert run("verify.all", "--only", "ESC-1", "MIR-1", "--device", "cuda", "--json", str(b)).returncode == 0
    ra, rb = (json.loads(p.read_text())["results"] for p in (a, b))
    for x, y in zip(ra, rb):
        assert x["passed"] and y["passed"]

"""The command-line contracts of verify.all and theory."""

from __future__ import annotations

import json
import sys

import pytest

from conftest import run_guarded


def run(*args):
    return run_guarded([sys.executable, "-m", *args])


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


def test_verify_all_json_to_a_folder_or_unwritable_path_fails_before_any_check(tmp_path):
    for target in (str(tmp_path), "/proc/no/such/dir/r.json"):
        p = run("verify.all", "--json", target)
        assert p.returncode == 2 and "--json" in p.stderr and "[ 1/" not in p.stderr, p.stderr
        assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr


def test_verify_all_table_fits_100_columns_and_prints_tolerances_in_short_form():
    from verify.all import table, wide_table
    from verify.harness import Result

    long = Result("ESC-4", "a claim " * 30, "prediction " * 20, "measured " * 20, 0.769, 1.5, True, 3.6)
    text = table([long])
    assert max(map(len, text.splitlines())) <= 100
    assert "7.69e-01/1.5 " in text and "2e+00" not in text
    assert all(w in text.replace("\n", " ") for w in ("claim", "prediction", "measured"))
    assert len(wide_table([long]).splitlines()) == 3          # header, rule, one line per check


def test_theory_cli_without_a_command_prints_the_closed_forms():
    p = run("theory")
    assert p.returncode == 0 and "MIR-1" in p.stdout and "ESC-1" in p.stdout and "betainc" in p.stdout
    assert max(map(len, p.stdout.splitlines())) <= 100, p.stdout


def test_theory_cli_imbalance_takes_one_constant_per_factor():
    p = run("theory", "potential", "--L", "3", "--q", "1.5", "--imbalance", "0", "0.2", "0.5")
    assert p.returncode == 0 and "MIR-3" in p.stdout, p.stderr
    p = run("theory", "potential", "--L", "3", "--q", "1.5", "--imbalance", "0.7")
    assert p.returncode == 2 and "3 constants" in p.stderr


def test_console_script_dispatches_to_the_modules():
    p = run("steepmirror", "theory", "escape-class", "--L", "3", "--q", "2")
    assert p.returncode == 0 and p.stdout.split()[0] == "polynomial"
    p = run("steepmirror", "nope")
    assert p.returncode == 2 and "choose from" in p.stderr


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "0", "-1"])
def test_budget_flags_refuse_non_finite_and_non_positive_values(value):
    """--budget, --wall, --deadline: a budget of inf is no budget (the runs could hang)."""
    import argparse

    from numerics.cli import positive

    with pytest.raises(argparse.ArgumentTypeError, match="finite number > 0"):
        positive(float)(value)


def _helps():
    from steepmirror import COMMANDS

    subs = {"theory": [[], ["escape-time"], ["escape-class"], ["potential"], ["scalar"]]}
    return [(name, sub) for name in COMMANDS for sub in subs.get(name, [[]])]


@pytest.mark.parametrize("name, sub", _helps(), ids=[" ".join([n, *s]) for n, s in _helps()])
def test_every_help_text_is_plain_and_gives_each_flags_default(name, sub, capsys):
    """Every command and subcommand of the console script (verify.paper included): ``--help`` exits 0,
    fits 100 columns, shows no reST markup, and every flag's text states its default (or that it
    is required)."""
    import importlib
    import re

    from steepmirror import COMMANDS

    module = COMMANDS[name][0]
    with pytest.raises(SystemExit) as stop:
        importlib.import_module(module).main([*sub, "--help"])
    out = capsys.readouterr().out
    assert stop.value.code == 0 and "``" not in out, out
    assert max(map(len, out.splitlines())) <= 100, out
    options = out.split("options:\n", 1)[1].split("\n\n", 1)[0]
    entries = [" ".join(e.split()) for e in re.split(r"\n(?=  -)", options)]
    for entry in entries:
        assert entry.startswith("-h,") or "default" in entry or "required" in entry, entry


def test_console_script_usage_and_bad_usage_fit_100_columns_in_one_line():
    from steepmirror import usage

    assert max(map(len, usage().splitlines())) <= 100, usage()
    p = run("theory.codegen", "--bogus")
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_an_output_folder_that_is_a_file_is_named_as_such(tmp_path):
    from numerics.cli import writable_folder

    (tmp_path / "notes.txt").write_text("")
    for path in (tmp_path / "notes.txt", tmp_path / "notes.txt" / "sub"):
        with pytest.raises(ValueError, match=r"notes\.txt' is a file, not a folder; choose a folder"):
            writable_folder(str(path))


def test_docs_build_results_that_are_not_verify_json_say_how_to_make_them(tmp_path):
    for text in ("not json", "[1, 2]"):
        (tmp_path / "r.json").write_text(text)
        p = run("docs.build", "--results", str(tmp_path / "r.json"), "--tex-only", "--out", str(tmp_path))
        assert p.returncode == 2 and "python -m verify.all --json" in p.stderr, p.stderr
        assert len(p.stderr.strip().splitlines()) == 1


def test_bench_table_fits_100_columns_and_keeps_every_note():
    import math

    from verify.bench import report, row

    rows, problem = [], "regression q=1.5 (50 coords)"
    row(rows, problem, "steepmirror (cpu)", 2, 61.1, 9.6e-9,
        "default method (Rodas5); error vs the package's DOP853 at rtol 1e-13 (no closed form)")
    row(rows, problem, "torchdiffeq dopri5 (cpu)", 2, 5.0, math.nan,
        "stopped after the 5 s budget at rtol 1e-12, towards the package's error")
    row(rows, "smooth q=2", "steepmirror (cpu)", 100, 0.086, 5.9e-12)
    text = report(rows)
    assert max(map(len, text.splitlines())) <= 100, text
    flat = " ".join(text.split())
    assert all(r["problem"] in flat and r["solver"] in flat and r["note"] in flat for r in rows), text
    assert " 0.082x " in flat                     # its time per trajectory / ours: 5 / 61.1
    assert " 0.0327 " in flat and " 0.4 " in flat   # slow rows' traj/s (2/61.1, 2/5) in 3 digits, not "0"


def test_precision_table_fits_100_columns():
    from verify.precision import table

    rows = [dict(kernel="mir3_hess_lambda_balanced", **{"numpy f64": 2.9e-15, "torch f64": 3e-15,
                                                         "torch f32": 1.1e-4, "cuda f64": 3e-15})]
    text = table(rows, 100_000)
    assert max(map(len, text.splitlines())) <= 100, text
    assert text.splitlines()[-1] == "float64 worst 2.9e-15, float32 worst 1.1e-04"


def test_verify_all_list_fits_100_columns_unless_wide():
    from verify import load_checks
    from verify.all import listing
    from verify.harness import REGISTRY

    load_checks()
    text, wide = listing(list(REGISTRY)), listing(list(REGISTRY), wide=True)
    assert max(map(len, text.splitlines())) <= 100 < max(map(len, wide.splitlines()))
    assert " ".join(text.split()) == " ".join(wide.split())          # the same words, only wrapped
    assert len(wide.splitlines()) == 3 * len(REGISTRY)


@pytest.mark.parametrize("args", [["verify.all", "--list"], ["theory"], ["steepmirror", "theory"]])
def test_output_into_a_closed_pipe_ends_quietly(args):
    """``python -m verify.all --list | head -1``: the reader closes first; the command ends with
    status 141 (128 + SIGPIPE, as Unix tools do), without a BrokenPipeError traceback."""
    import subprocess

    from conftest import HANG_GUARD_S

    p = subprocess.Popen([sys.executable, "-m", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    p.stdout.close()                                   # before the command has printed anything
    try:
        _, err = p.communicate(timeout=HANG_GUARD_S)
    except subprocess.TimeoutExpired:
        p.kill()
        pytest.skip("hang guard: no verdict")
    assert p.returncode == 141 and "Traceback" not in err, err

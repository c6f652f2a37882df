"""``python -m verify.all``: run every theorem check and print the verification table.

Exit status: 0 if every check passes, 1 if any fails, 2 on bad usage. With ``--mutate``
each check runs against its deliberately wrong prediction instead; the status is then 0
only if every mutation was caught (every check failed), 1 otherwise.
Ctrl-C prints the results so far (exit 130).
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import textwrap
import time
from importlib import metadata

from tqdm import tqdm

from numerics.cli import Parser, add_device, add_seed, description, piped, readable, writable_folder

from . import load_checks
from .harness import REGISTRY, Context, Result


def parse_args(argv):
    p = Parser(prog="python -m verify.all", description=description(__doc__))
    p.add_argument("--only", nargs="+", metavar="ID",
                   help="run only these checks: ids like ESC-1 or families like ESC (default: all)")
    add_device(p)
    p.add_argument("--precision", default="quick", choices=("quick", "full"),
                   help="quick: the default grids; full: larger grids and depths (default quick)")
    p.add_argument("--json", metavar="PATH",
                   help="also write the results as JSON to this file, atomically (default: none)")
    p.add_argument("--mutate", action="store_true",
                   help="run every check against its deliberately wrong prediction (default off)")
    add_seed(p, "the random starts")
    p.add_argument("--list", action="store_true",
                   help="list the checks, their tolerances and mutations, and exit (default off)")
    p.add_argument("--wide", action="store_true",
                   help="print the full table (and --list), one line per check, however wide "
                        "(default: fit 100 columns)")
    return p.parse_args(argv)


def select(only) -> list[str]:
    ids = list(REGISTRY)
    if not only:
        return ids
    chosen = []
    for item in only:
        match = [i for i in ids if i == item.upper() or i.split("-")[0] == item.upper()]
        if not match:
            raise ValueError(f"unknown check id {item!r} (known: {', '.join(ids)})")
        chosen += [m for m in match if m not in chosen]
    return chosen


def status_of(r: Result) -> str:
    if r.mutated:
        return "CAUGHT" if not r.passed else "MISSED"
    return "PASS" if r.passed else "FAIL"


def ratio(r: Result) -> str:
    """``error/tolerance`` with the tolerance in shortest form (``1.5``, ``1e-08``)."""
    err = f"{r.error:.2e}" if math.isfinite(r.error) else str(r.error)
    return f"{err}/{r.tolerance:.3g}"


def table(results: list[Result], width: int = 100) -> str:
    """One block per check within ``width`` columns: id, status, error/tolerance, seconds and
    the claim wrapped beside them, then the prediction and the measurement, each wrapped."""
    head = f"{'id':<7} {'status':<6} {'error/tol':<18} {'s':>6}  claim"
    lines = [head, "-" * min(width, 100)]
    left = 7 + 1 + 6 + 1 + 18 + 1 + 6 + 2
    for r in results:
        claim = textwrap.wrap(r.claim, max(20, width - left)) or [""]
        lines.append(f"{r.id:<7} {status_of(r):<6} {ratio(r):<18} {r.seconds:>6.1f}  {claim[0]}")
        lines += [" " * left + c for c in claim[1:]]
        for label, text in (("predicted", r.prediction), ("measured", r.measured)):
            lines += textwrap.wrap(f"{label + ':':<11}{text}", width, initial_indent=" " * 8,
                                   subsequent_indent=" " * 10)
    return "\n".join(lines)


def wide_table(results: list[Result]) -> str:
    """The full table, one line per check, columns as wide as their longest cell."""
    rows = [("id", "claim", "prediction", "measured", "error/tol", "status", "s")]
    rows += [(r.id, r.claim, r.prediction, r.measured, ratio(r), status_of(r), f"{r.seconds:.1f}")
             for r in results]
    widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def check_output(path: str) -> None:
    """Fail before any work if ``path`` cannot take the JSON file: a folder, or a folder that
    cannot be created or written."""
    target = os.path.abspath(path)
    if os.path.isdir(target):
        raise ValueError(f"--json {path}: is a folder; give a file name such as {os.path.join(path, 'results.json')}")
    try:
        writable_folder(os.path.dirname(target))
    except ValueError as exc:
        raise ValueError(f"--json {path}: {exc}") from None


def write_json_atomic(path: str, payload: dict) -> None:
    """Write to a temporary file in the same folder, then rename (no half-written file)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".verify-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(payload, fh, indent=2, sort_keys=True)
            fh.write("\n")
        readable(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def payload(results, ctx, interrupted=False) -> dict:
    import torch

    try:
        version = metadata.version("steepmirror")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return {
        "package": "steepmirror", "version": version, "torch": torch.__version__,
        "device": ctx.device, "precision": ctx.precision, "seed": ctx.seed, "mutate": ctx.mutate,
        "interrupted": interrupted,
        "summary": {"checks": len(results), "passed": sum(r.passed for r in results)},
        "results": [r.to_json() for r in results],
    }


def listing(ids, wide: bool = False) -> str:
    """``--list``: each check's claim, tolerance and mutation, wrapped to 100 columns unless ``wide``."""
    lines = []
    for i in ids:
        c = REGISTRY[i]
        for head, text in ((f"{i:<7} ", c.claim), ("        tolerance: ", c.tolerance_note),
                           ("        mutation:  ", c.mutation)):
            lines += [head + text] if wide else textwrap.wrap(
                text, 100, initial_indent=head, subsequent_indent=" " * len(head), break_on_hyphens=False)
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    load_checks()
    try:
        ids = select(args.only)
        if args.json:
            check_output(args.json)
    except ValueError as exc:
        sys.stderr.write(f"python -m verify.all: error: {exc}\n")
        return 2
    if args.list:
        print(listing(ids, args.wide))
        return 0
    ctx = Context(device=args.device, precision=args.precision, mutate=args.mutate, seed=args.seed)
    results: list[Result] = []
    start = time.perf_counter()
    interrupted = False
    try:
        with tqdm(ids, desc="checks", unit="check", file=sys.stderr, leave=False) as bar:
            for k, i in enumerate(bar, 1):
                bar.set_postfix_str(i)
                r = REGISTRY[i].run(ctx)
                results.append(r)
                bar.write(f"[{k:>2}/{len(ids)}] {i:<7} {status_of(r)} ({r.seconds:.1f} s)", file=sys.stderr)
    except KeyboardInterrupt:
        interrupted = True
        sys.stderr.write("\ninterrupted: results so far\n")
    total = time.perf_counter() - start
    print(wide_table(results) if args.wide else table(results))
    if args.mutate:
        caught = sum(not r.passed for r in results)
        print(f"\nmutations: {caught}/{len(results)} caught ({len(results)} checks, "
              f"{len(results)} mutations) in {total:.1f} s on {ctx.device} ({ctx.precision})")
        ok = caught == len(results)
    else:
        passed = sum(r.passed for r in results)
        print(f"\n{passed}/{len(results)} checks passed in {total:.1f} s on {ctx.device} ({ctx.precision})")
        ok = passed == len(results)
    if args.json:
        write_json_atomic(args.json, payload(results, ctx, interrupted))
    if interrupted:
        return 130
    return 0 if ok and results else 1


if __name__ == "__main__":
    sys.exit(piped(main))

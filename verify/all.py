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
import time
from importlib import metadata

from numerics.cli import Parser

from . import load_checks
from .harness import REGISTRY, Context, Result


def parse_args(argv):
    p = Parser(prog="python -m verify.all", description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="+", metavar="ID",
                   help="run only these checks (ids like ESC-1, or families like ESC)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--precision", default="quick", choices=("quick", "full"),
                   help="quick: the default grids; full: larger grids and depths")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON (atomically)")
    p.add_argument("--mutate", action="store_true",
                   help="run every check against its deliberately wrong prediction")
    p.add_argument("--seed", type=int, default=0, help="seed of the random starts (default 0)")
    p.add_argument("--list", action="store_true", help="list the checks and their mutations")
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


def _cell(v, width):
    s = str(v)
    return s if len(s) <= width else s[: width - 1] + "~"


def table(results: list[Result]) -> str:
    cols = (("id", 6), ("claim", 46), ("prediction", 24), ("measured", 24), ("error/tol", 19),
            ("status", 6), ("s", 6))
    lines = ["  ".join(f"{n:<{w}}" for n, w in cols)]
    lines.append("  ".join("-" * w for _, w in cols))
    for r in results:
        et = f"{r.error:.2e}/{r.tolerance:.0e}" if math.isfinite(r.error) else f"{r.error}/{r.tolerance:.0e}"
        row = (r.id, r.claim, r.prediction, r.measured, et, status_of(r), f"{r.seconds:.1f}")
        lines.append("  ".join(f"{_cell(v, w):<{w}}" for v, (_, w) in zip(row, cols)))
    return "\n".join(lines)


def write_json_atomic(path: str, payload: dict) -> None:
    """Write to a temporary file in the same folder, then rename (no half-written file)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".verify-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(payload, fh, indent=2, sort_keys=True)
            fh.write("\n")
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


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    load_checks()
    try:
        ids = select(args.only)
        if args.device == "cuda":
            from numerics.flows import resolve_device
            resolve_device("cuda")
    except ValueError as exc:
        sys.stderr.write(f"python -m verify.all: error: {exc}\n")
        return 2
    if args.list:
        for i in ids:
            c = REGISTRY[i]
            print(f"{i:<7} {c.claim}\n        tolerance: {c.tolerance_note}\n        mutation:  {c.mutation}")
        return 0
    ctx = Context(device=args.device, precision=args.precision, mutate=args.mutate, seed=args.seed)
    results: list[Result] = []
    start = time.perf_counter()
    interrupted = False
    try:
        for k, i in enumerate(ids, 1):
            sys.stderr.write(f"[{k:>2}/{len(ids)}] {i:<7} ... ")
            sys.stderr.flush()
            r = REGISTRY[i].run(ctx)
            results.append(r)
            sys.stderr.write(f"{status_of(r)} ({r.seconds:.1f} s)\n")
    except KeyboardInterrupt:
        interrupted = True
        sys.stderr.write("\ninterrupted: results so far\n")
    total = time.perf_counter() - start
    print(table(results))
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
    sys.exit(main())

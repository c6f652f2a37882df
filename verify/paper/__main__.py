"""``python -m verify.paper [OUT] [--quick] [--workers N] [--scheduler ADDRESS]``: the paper's
experiments at CPU scale (see :mod:`verify.paper`).

The last line is ``COMPLETE`` or ``PARTIAL: k of n flows stopped on their wall budget`` (exit
status 3 then, unless ``--allow-partial``); escape runs that reach their step budget are a
measurement (censored, counted in the tables), not a failure."""

from __future__ import annotations

import os
import sys
import time

from numerics.cli import Parser, piped, positive, writable_folder

from . import figures, plan, report
from .runner import Store, execute


def verdict(store) -> tuple[str, bool]:
    """The closing line and whether every flow finished (escaped or reached its end time)."""
    rows = store.rows("dln_flow")
    stopped = [r for r in rows if r["status"] not in ("escaped", "t_end")]
    if not stopped:
        return "COMPLETE: every task finished, every flow escaped or reached its end time", True
    return (f"PARTIAL: {len(stopped)} of {len(rows)} flows stopped before escaping "
            f"({', '.join(sorted({r['status'] for r in stopped}))}); the report marks them"), False


def main(argv=None) -> int:
    p = Parser(prog="python -m verify.paper", description="The paper's experiments at CPU scale, with the "
                                                          "theory's prediction beside every measurement.",
               epilog="Exit status: 0 when every flow finished (or with --allow-partial), 3 when flows "
                      "stopped on their budget, 2 on bad usage.")
    p.add_argument("out", nargs="?", default=os.path.join("reports", "paper"),
                   help="output folder (default reports/paper); a rerun resumes the stored tasks")
    p.add_argument("--quick", action="store_true",
                   help="a few tasks of every experiment, <= 2 minutes (default off: all tasks)")
    p.add_argument("--workers", type=positive(int), default=2, help="local processes (default 2)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run the tasks on this Dask scheduler instead (default: local processes)")
    p.add_argument("--only", nargs="+", choices=plan.EXPERIMENTS, metavar="EXPERIMENT",
                   help=f"run only these experiments, of {', '.join(plan.EXPERIMENTS)} (default: all)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (default: one on stderr)")
    p.add_argument("--allow-partial", action="store_true",
                   help="exit 0 even if flows stopped on their budget (default off: exit 3)")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        writable_folder(args.out)
    except ValueError as exc:
        p.error(f"argument out: {exc}")
    store = Store(args.out)
    tasks = [t for t in plan.tasks(args.quick) if not args.only or t["experiment"] in args.only]
    start = time.perf_counter()
    ran = execute(plan.run_task, tasks, store, args.workers, args.scheduler, progress=not args.no_progress)
    seconds = time.perf_counter() - start
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    text = report.markdown(store, seconds, load, ran)
    with open(os.path.join(args.out, "report.md"), "w") as fh:
        fh.write(text)
    paths = figures.write_all(store, args.out)
    print(text)
    print(f"{ran} of {len(tasks)} tasks run in {seconds:.0f} s (load average {load}); wrote "
          f"report.md, CSV and {len(paths)} figures to {args.out}")
    line, complete = verdict(store)
    print(line)
    return 0 if complete or args.allow_partial else 3


if __name__ == "__main__":
    sys.exit(piped(main))

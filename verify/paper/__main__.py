"""``python -m verify.paper [OUT] [--quick] [--workers N] [--scheduler ADDRESS]``: the paper's
experiments at CPU scale (see :mod:`verify.paper`)."""

from __future__ import annotations

import os
import sys
import time

from numerics.cli import Parser, piped

from . import figures, plan, report
from .runner import Store, execute


def main(argv=None) -> int:
    p = Parser(prog="python -m verify.paper", description="The paper's experiments at CPU scale, with the "
                                                          "theory's prediction beside every measurement.")
    p.add_argument("out", nargs="?", default=os.path.join("reports", "paper"),
                   help="output folder (default reports/paper); a rerun resumes the stored tasks")
    p.add_argument("--quick", action="store_true", help="a few tasks of every experiment (<= 2 minutes)")
    p.add_argument("--workers", type=int, default=2, help="local processes (default 2)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="run the tasks on this Dask scheduler instead")
    p.add_argument("--only", nargs="+", choices=plan.EXPERIMENTS, help="run only these experiments")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    if args.workers < 1:
        p.error("--workers must be >= 1")
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
    return 0


if __name__ == "__main__":
    sys.exit(piped(main))

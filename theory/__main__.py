"""``python -m theory``: closed forms from the command line.

    python -m theory escape-time --L 3 --q 1.5 --alpha 0.1 [--y 1] [--target 0.5]
    python -m theory escape-class --L 3 --q 2
    python -m theory potential --L 2 --q 1.5 [--imbalance 0.7]

Bad input prints one line on stderr and exits with status 2.
"""

from __future__ import annotations

import sys

import theory
from numerics.cli import Parser


def main(argv=None) -> int:
    p = Parser(prog="python -m theory", description="Closed forms of the steepest mirror flows.")
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("escape-time", "escape-class", "potential"):
        s = sub.add_parser(name)
        s.error = p.error
        s.add_argument("--L", type=float, required=True)
        s.add_argument("--q", type=float, required=True)
        if name == "escape-time":
            s.add_argument("--alpha", type=float, required=True)
            s.add_argument("--y", type=float, default=1.0)
            s.add_argument("--target", type=float, default=0.5)
        if name == "potential":
            s.add_argument("--imbalance", type=float, default=None)
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.cmd == "escape-time":
            print(repr(theory.escape_time(args.L, args.q, args.alpha, args.y, args.target)))
        elif args.cmd == "escape-class":
            cls, expo = theory.escape_class(args.L, args.q)
            print(f"{cls} {expo!r}")
        else:
            pot = theory.mirror_potential(args.L, args.q, args.imbalance)
            print(f"{pot!r}\nR''(x) = {pot.R2}\nR'(x) = {pot.R1}\nR(x) = {pot.R0}\n"
                  f"at the saddle: {pot.legendre_class()}")
    except (ValueError, TypeError) as exc:
        sys.stderr.write(f"python -m theory: error: {exc}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m theory`` (or ``steepmirror theory``): closed forms from the command line.

    python -m theory                                    # the closed forms, symbolic in L and q
    python -m theory escape-time --L 3 --q 1.5 --alpha 0.1 [--y 1] [--target 0.5]
    python -m theory escape-class --L 3 --q 2
    python -m theory potential --L 2 --q 1.5 [--imbalance 0.7]
    python -m theory potential --L 3 --q 1.5 --imbalance 0 0.2 0.5
    python -m theory scalar "tanh(w)" --q 1.5

Bad input prints one line on stderr and exits with status 2.
"""

from __future__ import annotations

import sys

import theory
from numerics.cli import Parser, piped


def overview() -> str:
    """The closed forms of MIR-1, ESC-1 and ESC-2, symbolic in ``L`` and ``q`` (``m`` for ``q(L-1)/L``)."""
    import sympy as sp

    from .deep import balanced
    from .escape import escape_time_closed_form
    from .symbols import m

    pot, short = balanced(), {m: sp.Symbol("m")}
    return "\n".join([
        "MIR-1, x = w_1 ... w_L from a balanced start (m = q(L-1)/L):",
        f"  R''(x) = {pot.hess}",
        f"  R'(x)  = {pot.grad.subs(short)}",
        "  (BoxCox(x, l) = (x**l - 1)/l, and log(x) at l = 0)",
        "ESC-1, time from x_0 = alpha^L to x_1 on f = (x - y)^2/2:",
        f"  T = {escape_time_closed_form()[2].subs(short)}",
        "ESC-2: T grows like a power of 1/alpha (m > 1), like log(1/alpha) (m = 1), or stays "
        "bounded (m < 1).",
        "Numbers for given L, q: python -m theory {escape-time,escape-class,potential,scalar} --help",
    ])


def potential_text(pot) -> str:
    """The potential, its readable closed forms and its class at the saddle (MIR-4)."""
    return "\n".join([repr(pot), pot.readable(), f"at the saddle: {pot.legendre_class()}"])


def parse_args(argv):
    p = Parser(prog="python -m theory", description="Closed forms of the steepest mirror flows. "
               "Without a command: the closed forms, symbolic in L and q.")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND")
    helps = {"escape-time": "ESC-1: the time from w_k = alpha to x = target (a float)",
             "escape-class": "ESC-2: the asymptotic class of the escape time and its exponent",
             "potential": "MIR-1/2/3: R'', R' and R of x = w_1 ... w_L",
             "scalar": "MIR-5: R'', R' and R of your own x = g(w)"}
    for name, text in helps.items():
        s = sub.add_parser(name, help=text, description=text + ".")
        s.error = p.error
        if name == "scalar":
            s.add_argument("g", help='g(w) as text, e.g. "tanh(w)" or "sinh(a*w)" with --param a=2')
            s.add_argument("--param", nargs="+", default=[], metavar="NAME=VALUE",
                           help="values of the constants in g (default: none)")
        else:
            s.add_argument("--L", type=float, required=True, help="depth, an integer >= 1 (required)")
        s.add_argument("--q", type=float, required=name != "scalar",
                       help="steepest-descent exponent in [1, 2]" +
                       (" (default: symbolic q)" if name == "scalar" else " (required)"))
        if name == "escape-time":
            s.add_argument("--alpha", type=float, required=True,
                           help="initial scale w_k = alpha > 0 (required)")
            s.add_argument("--y", type=float, default=1.0, help="target of f = (x - y)^2/2 (default 1)")
            s.add_argument("--target", type=float, default=0.5,
                           help="the x at which the time is taken, between alpha^L and y (default 0.5)")
        if name == "potential":
            s.add_argument("--imbalance", type=float, nargs="+", default=None, metavar="C",
                           help="one number c = |u|^q - |v|^q at L = 2 (MIR-2), or L constants c_k "
                                "with |w_k|^q = s + c_k (MIR-3) (default: balanced, MIR-1)")
    return p.parse_args(argv)


def _params(items) -> dict:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"--param takes NAME=VALUE with a number VALUE, got {item!r}") from None
        if not sep:
            raise ValueError(f"--param takes NAME=VALUE, got {item!r}")
    return out


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.cmd is None:
            print(overview())
        elif args.cmd == "escape-time":
            print(repr(theory.escape_time(args.L, args.q, args.alpha, args.y, args.target)))
        elif args.cmd == "escape-class":
            cls, expo = theory.escape_class(args.L, args.q)
            print(f"{cls} {expo!r}")
        elif args.cmd == "scalar":
            model = theory.reparam.scalar(args.g, params=_params(args.param))
            print(potential_text(model.potential(q=args.q)))
        else:
            imb = args.imbalance
            pot = theory.mirror_potential(args.L, args.q, imb[0] if imb and len(imb) == 1 else imb)
            print(potential_text(pot))
    except (ValueError, TypeError) as exc:
        sys.stderr.write(f"python -m theory: error: {exc}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(piped(main))

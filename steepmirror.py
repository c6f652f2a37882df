"""``steepmirror COMMAND [ARGS]``: one console script for the package's commands.

Each command is the ``python -m`` entry point beside it, with the same flags
(``steepmirror verify --help`` is ``python -m verify.all --help``).
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "verify": ("verify.all", "run every theorem check and print the verification table"),
    "bench": ("verify.bench", "time the integrators against scipy and the peer packages"),
    "precision": ("verify.precision", "every generated kernel against mpmath at 30 digits"),
    "experiments": ("verify.experiments", "the sparse recovery/classification sweep and report"),
    "paper": ("verify.paper.__main__", "the paper's experiments at CPU scale and their report"),
    "docs": ("docs.build", "the derivation document (LaTeX to PDF)"),
    "theory": ("theory.__main__", "closed forms from the command line"),
    "codegen": ("theory.codegen", "regenerate the kernels in numerics/_generated"),
}


def usage() -> str:
    lines = ["usage: steepmirror COMMAND [ARGS]   (steepmirror COMMAND --help for its flags)", "",
             "commands:"]
    lines += [f"  {name:<12} {text}  (python -m {module.removesuffix('.__main__')})"
              for name, (module, text) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    if argv[0] not in COMMANDS:
        sys.stderr.write(f"steepmirror: error: unknown command {argv[0]!r} "
                         f"(choose from {', '.join(COMMANDS)})\n")
        return 2
    from numerics.cli import piped

    return piped(importlib.import_module(COMMANDS[argv[0]][0]).main, argv[1:])


if __name__ == "__main__":
    sys.exit(main())

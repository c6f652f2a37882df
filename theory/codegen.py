"""``python -m theory.codegen``: write the generated kernels from the catalogue.

Writes ``numerics/_generated/{numpy,torch}_kernels.py`` and ``catalog.py`` (deterministic,
marked generated, committed) from :func:`theory.catalog.kernel_specs` through the printer
(:mod:`theory.printer`); ``--check`` exits 1 if the files on disk differ from what the
current derivations produce.
"""

from __future__ import annotations

import sys
from pathlib import Path

from numerics.cli import Parser, description, piped

from .catalog import kernel_specs
from .printer import HEADER, render_catalog, render_module

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "numerics" / "_generated"
BACKENDS = ("numpy", "torch")


def outputs() -> dict[Path, str]:
    specs = kernel_specs()
    out = {OUT_DIR / f"{b}_kernels.py": render_module(specs, b) for b in BACKENDS}
    out[OUT_DIR / "catalog.py"] = render_catalog(specs)
    out[OUT_DIR / "__init__.py"] = HEADER
    return out


def main(argv=None) -> int:
    parser = Parser(prog="python -m theory.codegen", description=description(__doc__))
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if the generated "
                        "files differ from what the derivations produce (default off: write them)")
    args = parser.parse_args(argv)
    stale = []
    for path, text in outputs().items():
        current = path.read_text() if path.exists() else None
        if current != text:
            stale.append(path)
            if not args.check:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
    for path in stale:
        print(("stale: " if args.check else "wrote: ") + str(path.relative_to(ROOT)))
    if not stale:
        print("generated kernels are up to date")
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(piped(main))

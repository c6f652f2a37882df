"""What the documents contain, discovered rather than listed.

* Families: the prefixes of the verify checks (``verify.harness.REGISTRY`` after
  ``verify.load_checks()``), in registration order, then any family that so far only
  has derivations.
* Derivations: every ``Derivation`` the theory package builds when its derivation
  functions and its kernel catalog are evaluated (``theory.derivation.built``). A
  derivation function is a public function of a ``theory`` module that can be called
  without arguments and is annotated to return a ``Derivation``, a ``Potential`` or a
  tuple holding one (``def escape_time_derivation() -> tuple[Derivation, sp.Expr]``):
  a new family's module is picked up by following that convention, and whatever its
  kernel providers build is picked up too.
* Kernels: the generated catalogue ``numerics._generated.catalog.KERNELS`` (signatures
  exactly as users call them) with the SymPy expression of each from
  ``theory.catalog.kernel_specs()``.
* Statements: the theorem catalogue ``THEORY.md`` (first found of ``$STEEPMIRROR_THEORY``,
  ``../shared/THEORY.md``, ``shared/THEORY.md``, ``THEORY.md`` from the repository root, and
  the copy shipped as ``docs/THEORY.md``); without it the statements are the checks' one-line
  claims.
"""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_ID = re.compile(r"([A-Z]+)-(\d+)([a-z]*)$")


def family_of(theorem: str) -> str | None:
    """``'MIR-1b' -> 'MIR'``; ``None`` for labels that are not theorem ids."""
    m = _ID.match(theorem)
    return m.group(1) if m else None


def id_key(theorem: str):
    """Sort key of theorem ids: ``MIR-1 < MIR-1b < MIR-2 < MIR-10``."""
    m = _ID.match(theorem)
    return (m.group(1), int(m.group(2)), m.group(3)) if m else (theorem, 0, "")


# ----------------------------------------------------------------------------- checks

def checks() -> dict:
    """The registered verify checks, id -> ``verify.harness.Check``."""
    from verify import load_checks
    from verify.harness import REGISTRY

    load_checks()
    return dict(REGISTRY)


def families(extra=()) -> list[str]:
    """Families with checks (registration order), then those in ``extra`` not yet seen."""
    out = []
    for chk in checks().values():
        if chk.family not in out:
            out.append(chk.family)
    out += sorted({f for f in extra if f and f not in out})
    return out


# ----------------------------------------------------------------------------- derivations

def _returns_derivation(fn) -> bool:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return False
    ann = sig.return_annotation
    ann = ann if isinstance(ann, str) else getattr(ann, "__name__", str(ann))
    if not re.search(r"\b(Derivation|Potential)\b", ann):
        return False
    return all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
               for p in sig.parameters.values())


def derivation_functions() -> list:
    """The theory package's derivation functions (see the module doc), module by module."""
    import theory

    out = []
    for info in sorted(pkgutil.iter_modules(theory.__path__), key=lambda i: i.name):
        if info.name.startswith("_") or info.name == "derivation":
            continue
        mod = importlib.import_module(f"theory.{info.name}")
        for name, obj in vars(mod).items():
            if name.startswith("_") or inspect.isclass(obj) or not callable(obj):
                continue
            if getattr(obj, "__module__", None) == mod.__name__ and _returns_derivation(obj):
                out.append(obj)
    return out


def derivations() -> tuple[dict[str, list], list[str]]:
    """Every derivation, by family, sorted by theorem id (construction order within one),
    and the failures: a derivation function (or the kernel catalogue) that raises is
    reported as ``"module.function: error"`` and left out, not fatal."""
    from theory.catalog import kernel_specs
    from theory.derivation import built

    failures = []
    for fn in derivation_functions() + [kernel_specs]:
        try:
            fn()
        except Exception as exc:     # a broken derivation is reported in the document
            failures.append(f"{fn.__module__}.{fn.__name__}: {type(exc).__name__}: {exc}".strip())
    seen, out = set(), {}
    ordered = sorted(enumerate(built()), key=lambda kv: (id_key(kv[1].theorem), kv[0]))
    for _, der in ordered:
        key = (der.theorem, der.title, tuple((st.text, str(st.expr)) for st in der.steps))
        fam = family_of(der.theorem)
        if key in seen or fam is None or not der.steps:
            continue
        seen.add(key)
        out.setdefault(fam, []).append(der)
    return out, failures


# ----------------------------------------------------------------------------- kernels

@dataclass(frozen=True)
class Kernel:
    name: str
    theorem: str
    args: tuple[str, ...]
    doc: str
    expr: object          # the SymPy expression, or None if the catalogue has no spec for it


def kernels() -> list[Kernel]:
    """The committed kernels, in generated order, each with its SymPy expression
    (``None`` where the current derivations do not define it, or cannot be evaluated)."""
    from numerics._generated.catalog import KERNELS
    from theory.catalog import kernel_specs

    try:
        exprs = {spec.name: spec.expr for spec in kernel_specs()}
    except Exception:                # reported by derivations()
        exprs = {}
    return [Kernel(name, theorem, tuple(args), doc, exprs.get(name))
            for name, (theorem, args, doc) in KERNELS.items()]


# ----------------------------------------------------------------------------- statements

@dataclass
class Statement:
    id: str | None        # theorem id, or None for an unnumbered item (a remark)
    label: str            # the parenthesized title, e.g. "conservation"
    text: str             # Markdown


@dataclass
class FamilyText:
    title: str                                   # e.g. "balance laws"
    intro: list[str] = field(default_factory=list)
    statements: list[Statement] = field(default_factory=list)


@dataclass
class Catalogue:
    path: Path | None
    setting: list[str] = field(default_factory=list)       # Markdown items of the setting
    families: dict[str, FamilyText] = field(default_factory=dict)


def find_theory() -> Path | None:
    env = os.environ.get("STEEPMIRROR_THEORY")
    candidates = ([Path(env)] if env else []) + [ROOT.parent / "shared" / "THEORY.md",
                                                 ROOT / "shared" / "THEORY.md", ROOT / "THEORY.md",
                                                 ROOT / "docs" / "THEORY.md"]
    return next((p for p in candidates if p.is_file()), None)


def _blocks(lines):
    """Markdown list items and paragraphs (continuation lines joined)."""
    blocks, current = [], None
    for line in lines:
        if not line.strip():
            current = None
            continue
        if line.startswith("- "):
            current = ["item", line[2:].strip()]
            blocks.append(current)
        elif current is not None and line.startswith(" "):
            current[1] += " " + line.strip()
        elif current is not None and current[0] == "para":
            current[1] += " " + line.strip()
        else:
            current = ["para", line.strip()]
            blocks.append(current)
    return blocks


_ITEM = re.compile(r"\*\*(?:([A-Z]+-\d+[a-z]*)\s*)?(?:\(([^)]*)\))?\.?\*\*\s*(.*)$|\*\*([^*]+?)\.?\*\*\s*(.*)$")


def parse_theory(text: str, path: Path | None = None) -> Catalogue:
    """Sections ``## FAM: title`` with items ``- **FAM-n (label).** statement``."""
    cat = Catalogue(path)
    sections = re.split(r"^## ", text, flags=re.M)[1:]
    for sec in sections:
        head, _, body = sec.partition("\n")
        m = re.match(r"([A-Z]+): (.*)", head.strip())
        blocks = _blocks(body.splitlines())
        if m is None:
            if head.strip().lower().startswith("setting"):
                cat.setting = [b[1] for b in blocks]
            continue
        fam = FamilyText(m.group(2).strip())
        for kind, content in blocks:
            item = _ITEM.match(content) if kind == "item" else None
            if item and item.group(1):
                fam.statements.append(Statement(item.group(1), item.group(2) or "", item.group(3)))
            elif item and item.group(4):
                fam.statements.append(Statement(None, item.group(4).strip(), item.group(5)))
            else:
                fam.intro.append(content)
        cat.families[m.group(1)] = fam
    return cat


def catalogue() -> Catalogue:
    path = find_theory()
    return parse_theory(path.read_text(), path) if path else Catalogue(None)

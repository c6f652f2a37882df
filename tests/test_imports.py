"""The package's modules import one way: no cycle, counting imports inside functions too.

Every module of ``theory``, ``numerics``, ``verify`` and ``docs`` is parsed with ``ast``;
each ``import``/``from ... import`` anywhere in it (module level, functions, classes) is an
edge to the package module it names. ``from pkg import name`` is an edge to ``pkg.name``
when that is a module, else to ``pkg``. A package's ``__init__`` counts as the module
``pkg``; an import of ``pkg.sub.mod`` is an edge to the longest prefix that is a module.
"""

from __future__ import annotations

import ast
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("theory", "numerics", "verify", "docs")


def module_files() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _resolve(name: str, modules) -> list[str]:
    """The longest prefix of ``name`` that is a module of the project (none: a third party)."""
    parts = name.split(".")
    found = [m for m in (".".join(parts[:k]) for k in range(1, len(parts) + 1)) if m in modules]
    return found[-1:]


def imports_of(module: str, path: Path, modules) -> set[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    edges = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                edges.update(_resolve(alias.name, modules))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            for alias in node.names:
                edges.update(_resolve(f"{target}.{alias.name}", modules))
    edges.discard(module)
    return edges


def import_graph() -> dict[str, set[str]]:
    modules = module_files()
    return {m: imports_of(m, p, modules) for m, p in modules.items()}


def cycles(graph) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_graph_sees_function_level_imports():
    graph = import_graph()
    assert "numerics.special" in graph["theory.codegen"] or "theory.catalog" in graph["theory.codegen"]
    assert graph, "no modules found"


def test_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    found = cycles(import_graph())
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)

"""The package's import structure (docs: DESIGN.md, Layout): layers point one way, no import cycles, no model
family imports another. Parsed with ``ast`` (imports at module top and inside functions), nothing is run."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
LAYERS = [("_io", "core"), ("precoders",), ("channels",), ("models",), ("training", "adaptation", "export")]
LAYERS += [("evaluation",), ("experiments", "reports"), ("api", ""), ("cli",)]  # "": mimofm/__init__.py
FAMILIES = ("fm", "papp", "wifoe")
# Tolerated edges (exact (importer, imported) pairs); none today. An entry whose edge is gone fails the test.
KNOWN_EDGES: set[tuple[str, str]] = set()


def _modules() -> dict[str, Path]:
    return {
        ".".join(p.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__"): p
        for p in sorted((SRC / "mimofm").rglob("*.py"))
    }


def _imports(mods: dict[str, Path]) -> list[tuple[str, str, bool]]:
    """``(importer, imported, at module top)`` for every import of a mimofm module."""
    out = []
    for name, path in mods.items():
        tree = ast.parse(path.read_text())
        top = {id(n) for n in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{a.name}" for a in node.names]
                targets = [t if t in mods else node.module for t in targets]
            else:
                continue
            out += [(name, t, id(node) in top) for t in dict.fromkeys(targets) if t in mods and t != name]
    return out


def _layer(mod: str) -> int:
    part = mod.split(".")[1] if "." in mod else ""
    return next(i for i, names in enumerate(LAYERS) if part in names)


def _family(mod: str) -> str | None:
    stem = mod.rsplit(".", 1)[-1]
    return next((f for f in FAMILIES if stem == f or stem.startswith(f + "_")), None)


def _cycles(edges: list[tuple[str, str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    graph: dict[str, list[str]] = {}
    for a, b in edges:
        graph.setdefault(a, []).append(b)
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, []):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while not comp or comp[-1] != v:
                comp.append(stack.pop())
                on.discard(comp[-1])
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in list(graph):
        if v not in index:
            visit(v)
    return found


def test_layers_point_down_no_cycles_and_no_family_imports_another():
    edges = _imports(_modules())
    bad = [f"upward: {a} -> {b}" for a, b, _ in edges if _layer(b) > _layer(a) and (a, b) not in KNOWN_EDGES]
    bad += [
        f"family: {a} -> {b}"
        for a, b, _ in edges
        if None is not _family(a) != _family(b) is not None and (a, b) not in KNOWN_EDGES
    ]
    bad += [f"cycle: {' <-> '.join(c)}" for c in _cycles([(a, b) for a, b, top in edges if top])]
    assert not bad, "import structure violations:\n  " + "\n  ".join(sorted(set(bad)))
    stale = KNOWN_EDGES - {(a, b) for a, b, _ in edges}
    assert not stale, f"KNOWN_EDGES lists edges that no longer exist (remove them): {sorted(stale)}"

"""The layering of DESIGN.md, read from the imports (every import: module level, inside
functions and under ``TYPE_CHECKING``). A module imports only from its own layer or
lower ones, and the packages of one layer never import each other in a cycle.

    0 core values   _ids _clock _errors _reasons _states _budget _cancellation _limits
                    _messages _model _version _safe_text _jsonsafe _checks
    1 persistence/  the store (the only package that speaks SQL or imports peewee)
    2 providers/    provider adapters
    3 workspace/    workspace safety: paths, leases, worktrees (below the tools that use it)
    4 tools/        the registry, the Tool Gate, built-in tools (the file tools use workspace)
    5 actors/       session actors, one model_run, ending
    6 supervision/  the SchedulerActor, spawn, restart, recovery
    7 _runtime _runtime_create _runtime_turns _control _reads _security _recorder _otel _views testing
    8 __init__      the public API
    9 console/      the command line, the live views and the demo: clients of the public API
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "sessiontree"

LAYERS: dict[str, int] = {
    **dict.fromkeys(["_ids", "_clock", "_errors", "_reasons", "_states", "_budget",
                     "_cancellation", "_limits", "_messages", "_model", "_version", "_safe_text",
                     "_jsonsafe", "_checks"], 0),
    "persistence": 1,
    "providers": 2,
    "workspace": 3,
    "tools": 4,
    "actors": 5,
    "supervision": 6,
    **dict.fromkeys(["_runtime", "_runtime_create", "_runtime_turns", "_control", "_reads",
                     "_security", "_recorder", "_otel", "_views", "testing"], 7),
    "__init__": 8,
    "console": 9,
}


def _unit(dotted: str) -> str:
    """The layer unit of a dotted module name inside the package."""
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _edges() -> list[tuple[str, str, str]]:
    """(importer module, imported module, where) for every import of our own modules."""
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        module = ".".join(rel.parts)
        if module.endswith(".__init__") and module.count(".") > 1:
            module = module[: -len(".__init__")]
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                if name == "sessiontree" or name.startswith("sessiontree."):
                    out.append((module, name, f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"))
    return out


def test_every_module_belongs_to_a_layer() -> None:
    units = {_unit(m) for m, _, _ in _edges()} | {_unit(t) for _, t, _ in _edges()}
    unknown = sorted(u for u in units if u not in LAYERS)
    assert not unknown, f"modules with no layer (add them to LAYERS and DESIGN.md): {unknown}"


def test_no_module_imports_a_higher_layer() -> None:
    bad = []
    for importer, imported, where in _edges():
        src, dst = _unit(importer), _unit(imported)
        if LAYERS.get(dst, 0) > LAYERS.get(src, 0):
            bad.append(f"{where}: {src} (layer {LAYERS[src]}) imports {imported} (layer {LAYERS[dst]})")
    assert not bad, "\n".join(bad)


def test_no_cycles_between_packages() -> None:
    graph: dict[str, set[str]] = {}
    for importer, imported, _ in _edges():
        src, dst = _unit(importer), _unit(imported)
        if src != dst:
            graph.setdefault(src, set()).add(dst)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    cycles = sorted(u for u in graph if reaches(u, u, {u}))
    assert not cycles, f"packages in an import cycle: {cycles}"


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.name))
def test_only_persistence_imports_peewee_or_sqlite(path: Path) -> None:
    if "persistence" in path.relative_to(PACKAGE).parts:
        return
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
            [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        for name in names:
            assert name.split(".")[0] not in ("peewee", "playhouse", "sqlite3"), (
                f"{path}: imports {name}; only sessiontree.persistence speaks SQL")

"""The layering rules of docs/architecture.md, checked on the package's own imports: SQL only in
store/, renderers free of the store and the run machinery, no import cycles between modules or
between packages. Imports under ``if TYPE_CHECKING:`` are for type checkers only and not counted."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "evalbatch"


def _module_name(path: Path) -> str:
    parts = ["evalbatch", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node, except what sits under ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                stack.extend(child.orelse)
                continue
            stack.append(child)


def _imports(path: Path) -> set[str]:
    """Absolute names of every module this file imports at run time (any depth)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            for alias in node.names:  # `from . import x` may name a module
                if (PACKAGE.parent / (target + "." + alias.name).replace(".", "/")).exists() or (
                    PACKAGE.parent / ((target + "." + alias.name).replace(".", "/") + ".py")
                ).exists():
                    found.add(f"{target}.{alias.name}")
    return found


MODULES = {
    _module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if "__pycache__" not in p.parts
}
IMPORTS = {name: _imports(path) for name, path in MODULES.items()}


def _ours(imported: set[str]) -> set[str]:
    return {m for m in imported if m in MODULES}


def _package(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 or module in _PACKAGES else module


_PACKAGES = {_module_name(p) for p in PACKAGE.rglob("__init__.py") if "__pycache__" not in p.parts}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph, or None."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_scan_sees_the_package() -> None:
    assert "evalbatch.store.db" in MODULES and "evalbatch.run.engine" in MODULES
    assert "sqlalchemy" in IMPORTS["evalbatch.store.db"]
    assert "evalbatch.store.db" in IMPORTS["evalbatch.run.engine"]


def test_only_the_store_imports_sqlalchemy() -> None:
    outside = sorted(
        name
        for name, imported in IMPORTS.items()
        if not name.startswith("evalbatch.store")
        and any(m == "sqlalchemy" or m.startswith("sqlalchemy.") for m in imported)
    )
    assert outside == []


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.startswith("evalbatch.report")))
def test_renderers_take_records_not_the_store_or_the_run_machinery(name: str) -> None:
    ours = _ours(IMPORTS[name])
    forbidden = sorted(
        m
        for m in ours
        if m.startswith(("evalbatch.run", "evalbatch.cli", "evalbatch.providers"))
        or (m.startswith("evalbatch.store") and m != "evalbatch.store.records")
    )
    assert forbidden == [], f"{name} imports {forbidden}"


def test_no_import_cycle_between_modules() -> None:
    graph = {name: _ours(imported) - {name} for name, imported in IMPORTS.items()}
    assert _cycle(graph) is None


def test_no_import_cycle_between_packages() -> None:
    graph: dict[str, set[str]] = {}
    for name, imported in IMPORTS.items():
        if name == "evalbatch":  # the public surface re-exports everything (lazily)
            continue
        here = _package(name)
        graph.setdefault(here, set()).update(
            _package(m) for m in _ours(imported) if _package(m) not in (here, "evalbatch")
        )
    assert _cycle(graph) is None, "a package-level import cycle"


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None

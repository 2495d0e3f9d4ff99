"""The viewer's layering (docs/architecture.md): it reads only through the store's typed
queries and holds no engine or connection; it never reaches into the run machinery, the CLI or
a provider. Checked on the package's own imports and attribute uses, like test_architecture."""

from __future__ import annotations

import ast

import pytest

from ..test_architecture import IMPORTS, MODULES, _ours

VIEW = sorted(n for n in MODULES if n.startswith("evalbatch.view"))
RECORDS = {"evalbatch.store.records", "evalbatch.store.browse_records"}


@pytest.mark.parametrize("name", VIEW)
def test_the_viewer_reads_records_not_rows(name: str) -> None:
    ours = _ours(IMPORTS[name])
    allowed_store = RECORDS | {"evalbatch.store.db"}
    if name == "evalbatch.view.server":  # opens the store, refusing one that does not exist
        allowed_store |= {"evalbatch.store.browse"}
    forbidden = sorted(
        m
        for m in ours
        if m.startswith(("evalbatch.run", "evalbatch.cli", "evalbatch.providers"))
        or (m.startswith("evalbatch.store") and m not in allowed_store)
    )
    assert forbidden == [], f"{name} imports {forbidden}"


@pytest.mark.parametrize("name", VIEW)
def test_the_viewer_holds_no_engine_or_connection(name: str) -> None:
    tree = ast.parse(MODULES[name].read_text("utf-8"))
    touched = sorted(
        {
            node.attr
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and node.attr in ("engine", "connect", "begin", "execute", "raw_connection")
        }
    )
    assert touched == [], f"{name} touches {touched}"


def test_the_scan_sees_the_viewer() -> None:
    assert {"evalbatch.view.app", "evalbatch.view.pages", "evalbatch.view.server"} <= set(VIEW)

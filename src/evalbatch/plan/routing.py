"""Routing: which model a step's request goes to, and why.

`model: route` looks up `routing:` — rules first, in order (`when` is an expression over the
case's fields, e.g. `tags contains 'safety'` or `metadata.lang == 'de'`), then the case's
`difficulty` label in the table, then `default`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..catalog.models import Catalog
from ..records import Case
from ..suite.rules import compile_rule


@dataclass(frozen=True)
class Route:
    model: str  # exact snapshot id
    reason: str  # "model", "rule 1: tags contains 'safety'", "difficulty=hard", "default"


class Router:
    """Routes one step's requests. ``model`` is what the step names (alias, id or "route")."""

    def __init__(self, model: str, routing: Any | None, catalog: Catalog) -> None:
        self._catalog = catalog
        self._fixed = None if model == "route" else catalog.resolve(model)
        self._rules: list[tuple[int, str, Callable[[dict[str, Any]], bool], str]] = []
        self._table: dict[str, str] = {}
        self._default: str | None = None
        if self._fixed is None:
            if routing is None:
                raise ValueError("model: route needs a routing: table")
            for i, rule in enumerate(routing.rules, start=1):
                self._rules.append(
                    (i, rule.when, compile_rule(rule.when), catalog.resolve(rule.model))
                )
            self._table = {label: catalog.resolve(m) for label, m in routing.table.items()}
            self._default = catalog.resolve(routing.default)

    def models(self) -> list[str]:
        """Every model this router can pick."""
        if self._fixed:
            return [self._fixed]
        found = {m for *_, m in self._rules} | set(self._table.values())
        if self._default:
            found.add(self._default)
        return sorted(found)

    def route(self, case: Case) -> Route:
        if self._fixed:
            return Route(self._fixed, "model")
        context = case.context()
        for i, when, check, model in self._rules:
            if check(context):
                return Route(model, f"rule {i}: {when}")
        if case.difficulty is not None and case.difficulty in self._table:
            return Route(self._table[case.difficulty], f"difficulty={case.difficulty}")
        assert self._default is not None
        return Route(self._default, "default")

"""Routing rules' `when:` expressions (`tags contains 'safety'`, `metadata.lang == 'de'`),
compiled once in Jinja2's sandbox; the suite loader validates them, the router evaluates them."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

_ENV = ImmutableSandboxedEnvironment()
_CONTAINS = re.compile(r"""([\w.\[\]'"]+)\s+contains\s+('[^']*'|"[^"]*"|[\w.]+)""")


def compile_rule(when: str) -> Callable[[dict[str, Any]], bool]:
    """Compile a `when:` expression; `A contains B` means B is in A. ValueError when invalid."""
    source = _CONTAINS.sub(r"(\2 in \1)", when)
    try:
        expr = _ENV.compile_expression(source, undefined_to_none=True)
    except TemplateError as exc:
        raise ValueError(f"invalid routing rule {when!r}: {exc}") from exc

    def evaluate(context: dict[str, Any]) -> bool:
        try:
            return bool(expr(**context))
        except (TemplateError, TypeError):
            return False

    return evaluate

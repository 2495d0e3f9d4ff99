"""Jinja2 templates for prompts and grader values: sandboxed, StrictUndefined, compiled once."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import meta
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .errors import SuiteError

_ENV = ImmutableSandboxedEnvironment(
    undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True
)


@lru_cache(maxsize=256)
def _compile(source: str) -> jinja2.Template:
    return _ENV.from_string(source)


def compile_template(source: str, where: str) -> jinja2.Template:
    try:
        return _compile(source)
    except jinja2.TemplateSyntaxError as exc:
        raise SuiteError(
            f"template syntax error at template line {exc.lineno}: {exc.message}", where=where
        ) from exc


def render(source: str, context: dict[str, Any], where: str) -> str:
    """Render ``source`` over ``context``; a missing variable names it and ``where``."""
    if "{" not in source:
        return source
    template = compile_template(source, where)
    try:
        return template.render(context)
    except jinja2.UndefinedError as exc:
        raise SuiteError(f"template: {exc.message}", where=where) from exc
    except SecurityError as exc:
        raise SuiteError(f"template: not allowed in the sandbox: {exc}", where=where) from exc
    except jinja2.TemplateError as exc:
        raise SuiteError(f"template: {exc}", where=where) from exc


def template_variables(source: str) -> set[str]:
    return set(meta.find_undeclared_variables(_ENV.parse(source)))

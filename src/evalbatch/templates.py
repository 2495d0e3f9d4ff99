"""Jinja2 templates for prompts and grader values: sandboxed, StrictUndefined, compiled once,
with no file access (include/import/extends) and a cap on what one rendering may produce.

Every failure is a SuiteError naming the place (file and case), never a traceback: a template
is the user's input.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .errors import SuiteError

# A rendered prompt or grader value larger than this is refused (a 1 MB prompt is ~250k tokens,
# beyond every model's context).
MAX_RENDER_CHARS = int(os.environ.get("EVALBATCH_MAX_RENDER_CHARS", str(4 << 20)))
_BIG_WIDTH = re.compile(r"\d{7,}")  # a format width of a million characters or more
_FILE_NODES = (nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)


class _CappedSandbox(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox, also refusing operations that build huge values."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*" and (_sized(left, right) or _sized(right, left)):
            raise SecurityError(f"a value longer than {MAX_RENDER_CHARS:,} characters")
        if operator == "**" and isinstance(right, int) and abs(right) > 64:
            raise SecurityError("an exponent above 64")
        if operator == "%" and isinstance(left, str) and _BIG_WIDTH.search(left):
            raise SecurityError("a format width above a million")
        return super().call_binop(context, operator, left, right)

    def wrap_str_format(self, value: Any) -> Any:
        wrapped = super().wrap_str_format(value)
        if wrapped is not None and _BIG_WIDTH.search(value.__self__):

            def refuse(*args: Any, **kwargs: Any) -> str:
                raise SecurityError("a format width above a million")

            return refuse
        return wrapped


def _sized(seq: Any, times: Any) -> bool:
    return (
        isinstance(seq, str | list | tuple)
        and isinstance(times, int)
        and len(seq) * max(times, 0) > MAX_RENDER_CHARS
    )


_ENV = _CappedSandbox(
    undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True
)


class _FileAccess(Exception):
    """A template uses a tag that reads files (include, import, extends)."""


@lru_cache(maxsize=256)
def _vetted(source: str) -> jinja2.Template:
    """The compiled template, parsed and checked once per source: a suite renders the same
    few templates for every case. Raises TemplateSyntaxError, or _FileAccess with the tag."""
    tree = _ENV.parse(source)
    for node in tree.find_all(_FILE_NODES):
        raise _FileAccess(type(node).__name__.lower().replace("fromimport", "import"))
    return _ENV.from_string(source)


def compile_template(source: str, where: str) -> jinja2.Template:
    try:
        return _vetted(source)
    except jinja2.TemplateSyntaxError as exc:
        raise SuiteError(
            f"template syntax error at template line {exc.lineno}: {exc.message}", where=where
        ) from exc
    except _FileAccess as exc:
        raise SuiteError(
            f"template: {{% {exc} %}} is not available (templates cannot read files; "
            "use file:// in the suite instead)",
            where=where,
        ) from None


# `{{ name }}`: the substitution most prompts and grader values are made of.
_NAME = re.compile(r"\{\{ *([A-Za-z_][A-Za-z0-9_]*) *\}\}")
_JINJA_CONSTANTS = frozenset({"true", "false", "none", "True", "False", "None"})


@lru_cache(maxsize=256)
def _plain(source: str) -> tuple[str, ...] | None:
    """A template made only of text and `{{ name }}`: its pieces (text, name, text, ...,
    text), which Jinja would render as the texts and ``str`` of each value; else None. Text
    with a brace or a carriage return (Jinja normalizes newlines) is left to Jinja."""
    pieces = tuple(_NAME.split(source))
    texts, names = pieces[0::2], pieces[1::2]
    if any("{" in t or "}" in t or "\r" in t for t in texts):
        return None
    if any(name in _JINJA_CONSTANTS for name in names):
        return None
    return pieces


def _render_plain(pieces: tuple[str, ...], context: dict[str, Any]) -> str | None:
    """What Jinja renders for a plain template whose every name holds a string, without the
    cost of a Jinja context per rendering (100,000 cases render a few templates each)."""
    out = []
    for i, piece in enumerate(pieces):
        if i % 2:
            piece = context.get(piece)  # type: ignore[assignment]
            if type(piece) is not str:
                return None  # absent (an error to report) or not a string: Jinja decides
        out.append(piece)
    return "".join(out)


def render(source: str, context: dict[str, Any], where: str) -> str:
    """Render ``source`` over ``context``; every failure names ``where``."""
    if "{" not in source:
        return source
    pieces = _plain(source)
    rendered = _render_plain(pieces, context) if pieces is not None else None
    if rendered is not None:
        if len(rendered) > MAX_RENDER_CHARS:
            raise SuiteError(
                f"template: renders to more than {MAX_RENDER_CHARS:,} characters "
                "(EVALBATCH_MAX_RENDER_CHARS)",
                where=where,
            )
        return rendered
    template = compile_template(source, where)
    try:
        size, parts = 0, []
        for chunk in template.generate(context):
            size += len(chunk)
            if size > MAX_RENDER_CHARS:
                raise SuiteError(
                    f"template: renders to more than {MAX_RENDER_CHARS:,} characters "
                    "(EVALBATCH_MAX_RENDER_CHARS)",
                    where=where,
                )
            parts.append(chunk)
        return "".join(parts)
    except SuiteError:
        raise
    except jinja2.UndefinedError as exc:
        raise SuiteError(f"template: {exc.message}", where=where) from exc
    except SecurityError as exc:
        raise SuiteError(f"template: not allowed in the sandbox: {exc}", where=where) from exc
    except jinja2.TemplateError as exc:
        raise SuiteError(f"template: {exc}", where=where) from exc
    except (ArithmeticError, LookupError, TypeError, ValueError, MemoryError) as exc:
        raise SuiteError(f"template: {exc.__class__.__name__}: {exc}", where=where) from exc


def template_variables(source: str) -> set[str]:
    return set(meta.find_undeclared_variables(_ENV.parse(source)))

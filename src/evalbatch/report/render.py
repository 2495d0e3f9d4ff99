"""Render a stored run's report in a format: text or json (more formats plug in here)."""

from __future__ import annotations

import io

import orjson
from rich.console import Console
from sqlalchemy.engine import Engine

from ..errors import ConfigError
from .summary import summarize
from .text import render_text

FORMATS = ("text", "json", "markdown", "junit", "html")


def render_report(engine: Engine, run_id: str, fmt: str) -> str:
    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)} (got {fmt!r})")
    summary = summarize(engine, run_id)
    if fmt == "json":
        return orjson.dumps(summary.to_dict(), option=orjson.OPT_INDENT_2).decode() + "\n"
    if fmt == "markdown":
        from .markdown import render_markdown

        return render_markdown(engine, summary)
    if fmt == "junit":
        from .junit import render_junit

        return render_junit(engine, summary)
    if fmt == "html":
        from .html import render_html

        return render_html(engine, summary)
    buffer = io.StringIO()
    Console(file=buffer, width=120, color_system=None).print(render_text(summary))
    return buffer.getvalue()

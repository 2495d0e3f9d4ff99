"""Render a stored run's report in a format: text or json (more formats plug in here)."""

from __future__ import annotations

import io

import orjson
from rich.console import Console
from sqlalchemy.engine import Engine

from ..errors import ConfigError
from .summary import summarize
from .text import render_text

FORMATS = ("text", "json")


def render_report(engine: Engine, run_id: str, fmt: str) -> str:
    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)} (got {fmt!r})")
    summary = summarize(engine, run_id)
    if fmt == "json":
        return orjson.dumps(summary.to_dict(), option=orjson.OPT_INDENT_2).decode() + "\n"
    buffer = io.StringIO()
    Console(file=buffer, width=120, color_system=None).print(render_text(summary))
    return buffer.getvalue()

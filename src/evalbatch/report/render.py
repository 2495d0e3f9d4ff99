"""Render a run's report or a comparison in a format (text, json, markdown, junit, html).
Pure: records in, text out; the caller reads the store and writes the file."""

from __future__ import annotations

import io

import orjson
from rich.console import Console, Group

from ..analysis.compare import Comparison
from ..analysis.summary import RunReport
from ..errors import ConfigError
from .html import render_comparison_html, render_html
from .junit import render_comparison_junit, render_junit
from .markdown import render_comparison_markdown, render_markdown
from .text import render_comparison_text, render_text

FORMATS = ("text", "json", "markdown", "junit", "html")


def _check(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)} (got {fmt!r})")


def _plain(group: Group) -> str:
    buffer = io.StringIO()
    Console(file=buffer, width=120, color_system=None, markup=False).print(group)
    return buffer.getvalue()


def render_report(report: RunReport, fmt: str) -> str:
    _check(fmt)
    summary = report.summary
    if fmt == "json":
        return orjson.dumps(summary.to_dict(), option=orjson.OPT_INDENT_2).decode() + "\n"
    if fmt == "markdown":
        return render_markdown(summary, report.rows)
    if fmt == "junit":
        return render_junit(summary, report.rows)
    if fmt == "html":
        return render_html(report)
    return _plain(render_text(summary))


def render_comparison(cmp: Comparison, fmt: str) -> str:
    _check(fmt)
    if fmt == "json":
        return orjson.dumps(cmp.to_dict(), option=orjson.OPT_INDENT_2).decode() + "\n"
    if fmt == "markdown":
        return render_comparison_markdown(cmp)
    if fmt == "junit":
        return render_comparison_junit(cmp)
    if fmt == "html":
        return render_comparison_html(cmp)
    return _plain(render_comparison_text(cmp))

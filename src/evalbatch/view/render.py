"""The viewer's Jinja2 templates and the filters they use. Autoescape is on for every template
and no template marks data safe, so whatever a model or a case file holds is shown as text."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from ..report.html import bar_chart
from ..report.wording import p_value, pct, usd
from ..store.records import ScoreView
from . import links

REQUEST_STATUSES = ("pending", "queued", "succeeded", "errored", "expired", "canceled")


def _when(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def _shown(value: Any) -> str:
    """A case field as text: strings as they are, anything else as indented JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


def verdict(score: ScoreView) -> str:
    """One grader's verdict on a case: an error is neither a pass nor a fail."""
    return "error" if score.error else ("pass" if score.passed is True else "fail")


def _num(value: int | float) -> str:
    return f"{value:,}"


_ENV = Environment(
    loader=PackageLoader("evalbatch", "view/templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.filters.update(
    usd=usd,
    pct=pct,
    p_value=p_value,
    when=_when,
    age=_age,
    shown=_shown,
    num=_num,
    seg=links.segment,
)
_ENV.globals.update(
    run_url=links.run_url,
    case_url=links.case_url,
    cases_url=links.cases_url,
    state_url=links.state_url,
    compare_url=links.compare_url,
    bar_chart=bar_chart,
    verdict=verdict,
    request_statuses=REQUEST_STATUSES,
)


def compile_templates() -> None:
    """Compile every template now, so the first visit of a page does not pay for it."""
    for name in _ENV.list_templates(filter_func=lambda n: n.endswith(".j2")):
        _ENV.get_template(name)


def render(template: str, **context: Any) -> str:
    return _ENV.get_template(template).render(**context)

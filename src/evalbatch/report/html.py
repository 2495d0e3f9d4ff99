"""The HTML report: one self-contained file (inline CSS, a few lines of inline JS, SVG charts),
so it works offline when mailed around. Every value is escaped by Jinja2's autoescape."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, PackageLoader, select_autoescape

from ..analysis.summary import TOTAL_KEYS, RunReport
from .wording import headline, numeric_lines, pct, reference_compare_lines, reference_lines, usd

if TYPE_CHECKING:  # annotations only: the viewer draws charts without loading scipy
    from ..analysis.compare import Comparison

_ENV = Environment(
    loader=PackageLoader("evalbatch", "report/templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
)
_ENV.filters.update(usd=usd, pct=pct)
_ENV.filters["when"] = lambda ts: datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def line_chart(
    points: list[tuple[str, float]], *, width: int = 520, height: int = 140, fmt: Any = str
) -> dict[str, Any]:
    """An SVG polyline's coordinates for values in order (oldest first)."""
    if not points:
        return {"path": "", "dots": [], "width": width, "height": height}
    top = max(v for _, v in points) or 1.0
    step = (width - 40) / max(1, len(points) - 1)
    dots = []
    for i, (label, value) in enumerate(points):
        x = 20 + i * step
        y = height - 20 - (value / top) * (height - 40)
        dots.append({"x": round(x, 1), "y": round(y, 1), "label": label, "value": fmt(value)})
    path = " ".join(f"{d['x']},{d['y']}" for d in dots)
    return {"path": path, "dots": dots, "width": width, "height": height}


def bar_chart(items: list[tuple[str, float]], *, width: int = 520) -> list[dict[str, Any]]:
    top = max((v for _, v in items), default=0.0) or 1.0
    return [
        {"label": label, "value": usd(v), "width": round((v / top) * (width - 220), 1)}
        for label, v in items
    ]


def render_html(report: RunReport) -> str:
    summary = report.summary
    done = [h for h in report.history if h.status == "done"]
    costs = [(f"{c.step} · {c.model}", c.cost) for c in summary.costs]
    return _ENV.get_template("run.html.j2").render(
        summary=summary,
        run=summary.run,
        headline=headline(summary),
        rows=list(report.rows),
        pass_chart=line_chart([(h.id, h.pass_rate or 0.0) for h in done], fmt=pct),
        cost_chart=line_chart([(h.id, h.cost_usd) for h in done], fmt=usd),
        cost_bars=bar_chart(costs),
        totals={k: summary.total(k) for k in TOTAL_KEYS},
        references=reference_lines(summary),
    )


def render_comparison_html(cmp: Comparison) -> str:
    return _ENV.get_template("compare.html.j2").render(
        cmp=cmp,
        verdict=cmp.verdict,
        verdict_line=cmp.verdict_line(),
        numeric=reference_compare_lines(cmp) + numeric_lines(cmp),
    )

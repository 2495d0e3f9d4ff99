"""Renderings of a sweep table: text, json, markdown (a PR comment) and a self-contained HTML
page with an SVG chart of cost against pass rate. Pure functions of the SweepTable."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import orjson
from jinja2 import Environment, PackageLoader, select_autoescape
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from ..errors import ConfigError
from .wording import pct, usd

if TYPE_CHECKING:  # records only: rendering needs no store
    from ..analysis.sweep import SweepTable, VariantLine

FORMATS = ("text", "json", "markdown", "html")
_ENV = Environment(
    loader=PackageLoader("evalbatch", "report/templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
)
_ENV.filters.update(usd=usd, pct=pct)


def _flags(x: VariantLine) -> str:
    return " ".join(f for f, on in (("pareto", x.pareto), ("non-inferior", x.non_inferior)) if on)


def recommendation(table: SweepTable) -> str:
    if table.recommended is None:
        return "no recommendation: no variant has a pass rate yet"
    line = f"recommended: {table.recommended} (the cheapest variant non-inferior to the best"
    line += f", {table.best}, at a margin of {table.margin * 100:g} points)"
    if table.saving_per_run_usd is not None and table.recommended != table.reference:
        line += (
            f"; saves {usd(table.saving_per_run_usd)} per run against {table.reference}, "
            f"{usd(table.saving_per_run_usd * table.per_month)} per month at "
            f"{table.per_month} runs"
        )
    return line


def render_sweep_text(table: SweepTable) -> Group:
    grid = Table(
        title=f"Sweep {table.sweep} — {table.suite} ({table.status})", title_justify="left"
    )
    for col in (
        "variant",
        "pass rate",
        "95% CI",
        "mean",
        "cost",
        "generate",
        "grade",
        "per pass",
        "flags",
    ):
        grid.add_column(col, justify="left" if col in ("variant", "flags") else "right")
    for x in table.variants:
        low, high = x.pass_rate_ci
        grid.add_row(
            x.name + (" (reference)" if x.name == table.reference else ""),
            pct(x.pass_rate),
            f"[{low * 100:.1f}, {high * 100:.1f}]",
            "-" if x.mean_score is None else f"{x.mean_score:.2f}",
            usd(x.cost_usd),
            usd(x.cost_generate_usd),
            usd(x.cost_grade_usd),
            "-" if x.cost_per_pass_usd is None else usd(x.cost_per_pass_usd),
            _flags(x),
        )
    parts: list[Any] = [grid, Text(recommendation(table), style="bold")]
    if table.warm_usd:
        parts.append(
            Text(
                f"cache warming for the whole sweep: {usd(table.warm_usd)} (shared by the "
                "variants, so in none of their costs)"
            )
        )
    for x in table.variants:
        for change in x.changes:
            parts.append(Text(f"{x.name} vs {table.reference}: {change.key}: {change.summary}"))
    if table.by_tag:
        tags = Table(title="Pass rate by tag", title_justify="left")
        tags.add_column("tag")
        tags.add_column("cases", justify="right")
        for x in table.variants:
            tags.add_column(x.name, justify="right")
        for line in table.by_tag:
            tags.add_row(
                line.tag,
                str(line.cases),
                *(pct(line.pass_rates.get(x.name)) for x in table.variants),
            )
        parts.append(tags)
    return Group(*parts)


def _cell(value: object) -> str:
    text = " ".join(str(value).split()).replace("|", "\\|").replace("`", "'")
    return f"`{text}`" if text else ""


def render_sweep_markdown(table: SweepTable) -> str:
    lines = [
        f"### evalbatch sweep: {table.suite} — {table.sweep}",
        "",
        f"**{recommendation(table)}**",
        "",
        "| variant | pass rate | 95% CI | cost | per pass | flags |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for x in table.variants:
        low, high = x.pass_rate_ci
        lines.append(
            f"| {_cell(x.name)} | {pct(x.pass_rate)} | [{low * 100:.1f}, {high * 100:.1f}] | "
            f"{usd(x.cost_usd)} | {'-' if x.cost_per_pass_usd is None else usd(x.cost_per_pass_usd)} | "
            f"{_flags(x)} |"
        )
    if table.by_tag:
        lines += ["", "| tag | " + " | ".join(_cell(x.name) for x in table.variants) + " |"]
        lines += ["|---|" + "---:|" * len(table.variants)]
        for t in table.by_tag:
            rates = " | ".join(pct(t.pass_rates.get(x.name)) for x in table.variants)
            lines.append(f"| {_cell(t.tag)} | {rates} |")
    return "\n".join(lines) + "\n"


def cost_chart(table: SweepTable, width: int = 560, height: int = 300) -> dict[str, Any]:
    """Points of an SVG scatter: cost (x) against pass rate (y), labelled by variant."""
    shown = [x for x in table.variants if x.pass_rate is not None]
    top = max((x.cost_usd for x in shown), default=0.0) or 1.0
    points = [
        {
            "x": round(50 + (x.cost_usd / top) * (width - 80), 1),
            "y": round(height - 40 - (x.pass_rate or 0.0) * (height - 70), 1),
            "label": x.name,
            "cost": usd(x.cost_usd),
            "rate": pct(x.pass_rate),
            "kind": "recommended"
            if x.name == table.recommended
            else ("pareto" if x.pareto else "other"),
        }
        for x in shown
    ]
    return {"points": points, "width": width, "height": height, "top": usd(top)}


def render_sweep(table: SweepTable, fmt: str) -> str:
    if fmt not in FORMATS:
        raise ConfigError(f"--format for a sweep must be one of {', '.join(FORMATS)}")
    if fmt == "json":
        return orjson.dumps(table.to_dict(), option=orjson.OPT_INDENT_2).decode() + "\n"
    if fmt == "markdown":
        return render_sweep_markdown(table)
    if fmt == "html":
        return _ENV.get_template("sweep.html.j2").render(
            table=table, chart=cost_chart(table), recommendation=recommendation(table)
        )
    buffer = io.StringIO()
    Console(file=buffer, width=140, color_system=None, markup=False).print(render_sweep_text(table))
    return buffer.getvalue()

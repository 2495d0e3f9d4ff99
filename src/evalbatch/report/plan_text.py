"""The terminal rendering of `plan`: cost per strategy, savings, and per step and model."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from ..plan.projection import Projection
from .wording import usd

LABELS = {
    "plan": "this plan (mode, routing, cache as configured)",
    "sync": "the same at sync rates",
    "no_cache": "without prompt caching",
    "no_routing": "without routing (every step on the strongest model)",
    "naive": "naive baseline (sync, strongest model, no cache)",
}


def print_plan(projection: Projection, per_month: int, console: Console) -> None:
    plan, naive = projection.total("plan"), projection.total("naive")
    console.print(
        f"[bold]plan {usd(plan)} — naive {usd(naive)} — saves "
        f"{(1 - plan / naive) * 100 if naive else 0:.0f}%[/bold]  "
        f"({projection.cases} cases, mode {projection.mode})"
    )
    table = Table(title="Projected cost per run", title_justify="left")
    for col in ("strategy", "per run", f"per month (x{per_month})", "vs naive"):
        table.add_column(col, justify="left" if col == "strategy" else "right")
    for name, label in LABELS.items():
        cost = projection.total(name)
        table.add_row(
            label,
            usd(cost),
            usd(cost * per_month),
            (f"-{(1 - cost / naive) * 100:.0f}%" if cost < naive else "—") if naive else "-",
        )
    console.print(table)
    lines = Table(title="By step and model (this plan)", title_justify="left")
    for col in (
        "step",
        "model",
        "requests",
        "input",
        "cache write",
        "cache read",
        "output",
        "cost",
    ):
        lines.add_column(col, justify="left" if col in ("step", "model") else "right")
    for x in projection.lines:
        lines.add_row(
            x.step,
            x.model,
            f"{x.requests:,}",
            f"{x.input_tokens:,}",
            f"{x.cache_write_tokens:,}",
            f"{x.cache_read_tokens:,}",
            f"{x.output_tokens:,}",
            usd(x.costs["plan"]),
        )
    console.print(lines)
    console.print(f"input tokens: {projection.token_source}")
    console.print(f"output tokens: {projection.output_source}")
    if projection.warm_requests:
        console.print(f"cache warming: {projection.warm_requests} synchronous request(s) first")
    elif any(x.cache_read_tokens for x in projection.lines):
        console.print(
            "prompt cache: assumes each shared prefix is written once, then read; a cold batch "
            "processed in parallel writes it more often (cache: {warm: true} makes it exact)"
        )

"""The terminal rendering of `plan`: cost per strategy, savings, and per step and model."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..plan.projection import CACHE_ASSUMPTION_TEXT, Projection
from .wording import saved_share, usd

LABELS = {
    "plan": "this plan (mode, routing, cache as configured; best-case cache)",
    "sync": "the same at sync rates",
    "no_cache": "without prompt caching",
    "no_routing": "without routing (every step on the strongest model)",
    "naive": "naive baseline (sync, strongest model, no cache)",
}


WORST_LABEL = "this plan, worst-case cache (no reads inside a batch)"


def print_plan(projection: Projection, per_month: int, console: Console) -> None:
    plan, naive = projection.total("plan"), projection.total("naive")
    console.print(
        Text.assemble(
            (
                f"plan {usd(plan)} — naive {usd(naive)} — saves "
                f"{saved_share(plan, naive) * 100:.0f}%",
                "bold",
            ),
            f"  ({projection.cases} cases, mode {projection.mode}; prompt cache: best case)",
        )
    )
    table = Table(title="Projected cost per run", title_justify="left")
    for col in ("strategy", "per run", f"per month (x{per_month})", "vs naive"):
        table.add_column(col, justify="left" if col == "strategy" else "right")
    rows = [(label, projection.total(name)) for name, label in LABELS.items()]
    if projection.cache_range_differs():
        rows.insert(1, (WORST_LABEL, projection.total("plan", "worst")))
    for label, cost in rows:
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
    print_cache_assumptions(projection, console)


def print_cache_assumptions(projection: Projection, console: Console) -> None:
    """Which cache assumption the figures use, and the range the other one gives."""
    if projection.warm_requests:
        console.print(f"cache warming: {projection.warm_requests} synchronous request(s) first")
    if not any(x.cache_read_tokens for x in projection.lines):
        return
    best, worst = projection.total("plan"), projection.total("plan", "worst")
    if projection.cache_range_differs():
        above = (
            " (more than without prompt caching)" if worst > projection.total("no_cache") else ""
        )
        console.print(
            f"prompt cache: the figures above assume the best case; the worst case costs "
            f"{usd(worst)} per run, {usd(worst - best)} more{above}"
        )
    else:
        console.print(
            "prompt cache: best and worst case agree: every read is of an entry written before "
            "its batch (a warm-up request) or outside any batch"
        )
    for name in ("best", "worst"):
        console.print(f"  {CACHE_ASSUMPTION_TEXT[name]}")
    if projection.mode != "batch":
        console.print(
            "  mode sync: requests in flight together cannot read each other's writes; the "
            "extra writes that causes are not projected"
        )
    elif projection.warm_requests:
        console.print(
            "  warming removes the misses between items of one batch; that the real API then "
            "reads every warmed entry is an assumption (the sandbox's), not documented"
        )
    else:
        console.print(
            "  the real Batches API reads what other items of the same batch wrote best-effort "
            '(Anthropic: "typically 30%-98%" of hits): expect a cost between the two, or use '
            "cache: {warm: true}"
        )


def print_sweep_plan(
    projections: list[tuple[str, Projection]], per_month: int, console: Console
) -> None:
    """A sweep's plan: each variant, and the total the budget is checked against."""
    table = Table(title="Projected cost per variant (one sweep)", title_justify="left")
    for col in ("variant", "requests", "per run", "naive", "vs naive"):
        table.add_column(col, justify="left" if col == "variant" else "right")
    for name, p in projections:
        plan, naive = p.total("plan"), p.total("naive")
        table.add_row(
            name,
            f"{sum(x.requests for x in p.lines):,}",
            usd(plan),
            usd(naive),
            f"-{saved_share(plan, naive) * 100:.0f}%" if naive else "-",
        )
    total = sum(p.total("plan") for _, p in projections)
    naive = sum(p.total("naive") for _, p in projections)
    table.add_row("total", "", usd(total), usd(naive), "", style="bold")
    console.print(table)
    console.print(
        f"the sweep: {usd(total)} per run, {usd(total * per_month)} per month at {per_month}; "
        "the budget (budget_usd / --budget) is checked against the total"
    )

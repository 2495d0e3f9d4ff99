"""Commands that read: `plan`, `report`, `compare`, `runs`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from ..errors import ConfigError
from .app import DbOpt, JsonOpt, app, emit, print_json, resolve_run, resolve_unit, store_at

if TYPE_CHECKING:
    from ..records import Mode
    from ..store.db import Store
from .console import err, out


@app.command()
def plan(
    suite: Annotated[Path, typer.Argument(help="The suite file (YAML).")],
    mode: Annotated[str | None, typer.Option("--mode", help="batch | sync.")] = None,
    sets: Annotated[list[str] | None, typer.Option("--set", help="Override a suite key.")] = None,
    per_month: Annotated[
        int | None,
        typer.Option(
            "--per-month",
            help="Runs per month, for the monthly figures (default: the suite's "
            "runs_per_month, else 30).",
        ),
    ] = None,
    count_tokens: Annotated[
        str, typer.Option("--count-tokens", help="local | api (needs a key; exact token counts).")
    ] = "local",
    models: Annotated[
        str | None, typer.Option("--models", help="Plan a sweep over these models.")
    ] = None,
    matrix: Annotated[
        list[str] | None, typer.Option("--matrix", help="Plan a sweep: KEY=V1,V2.")
    ] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Project tokens and cost per strategy before spending anything (no API calls). With a
    `sweep:` block or --models/--matrix, every variant and the sweep's total."""
    from ..plan.prepare import prepare
    from ..plan.projection import project
    from ..plan.variants import axes_for, parse_matrix, variants_of
    from ..report.plan_text import print_plan, print_sweep_plan

    if count_tokens not in ("local", "api"):
        raise ConfigError(f"--count-tokens must be local or api (got {count_tokens!r})")
    if mode not in (None, "batch", "sync"):
        raise ConfigError(f"--mode must be batch or sync (got {mode!r})")
    chosen: Mode | None = mode  # type: ignore[assignment]
    base = prepare(suite, sets or [], chosen)
    counter = None
    if count_tokens == "api":
        from ..providers import open_provider
        from ..run.providers import ProviderPool

        counter = ProviderPool(open_provider, base.catalog).count_tokens
    store = store_at(db)
    per_month = per_month or base.suite.runs_per_month or 30
    model_list = [m.strip() for m in (models or "").split(",") if m.strip()]
    if base.suite.sweep is None and not model_list and not matrix:
        projection = project(base, store, count_tokens=counter)
        if as_json:
            print_json({**projection.to_dict(), "per_month": per_month})
            return
        print_plan(projection, per_month, out)
        return
    axes, _, _ = axes_for(suite, sets or [], model_list, parse_matrix(matrix or []))
    projections = [
        (
            v.name,
            project(
                prepare(suite, [*(sets or []), *v.overrides], chosen),
                store,
                count_tokens=counter,
            ),
        )
        for v in variants_of(axes)
    ]
    if as_json:
        print_json(
            {
                "sweep": [{"variant": name, **p.to_dict()} for name, p in projections],
                "total": {s: sum(p.total(s) for _, p in projections) for s in ("plan", "naive")},
                "per_month": per_month,
            }
        )
        return
    print_sweep_plan(projections, per_month, out)


@app.command()
def report(
    run_id: Annotated[str, typer.Argument(help="A run or sweep id, or `latest`.")],
    fmt: Annotated[
        str, typer.Option("--format", help="text | json | markdown | junit | html")
    ] = "text",
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to a file.")] = None,
    db: DbOpt = None,
) -> None:
    """Report a stored run (scoreboard, cost by step and model, errors) or a sweep (the variants,
    the Pareto front, the recommendation)."""
    from ..analysis.summary import run_report
    from ..report.render import render_report

    store = store_at(db)
    unit = resolve_unit(store, run_id)
    if unit.startswith("sweep-"):
        from ..analysis.sweep import sweep_table
        from ..report.sweep import render_sweep

        emit(render_sweep(sweep_table(store, unit), fmt), output)
        return
    emit(render_report(run_report(store, unit), fmt), output)


@app.command()
def compare(
    base: Annotated[str, typer.Argument(help="The baseline run id (or `latest`).")],
    new: Annotated[str, typer.Argument(help="The new run id (or `latest`).")],
    fmt: Annotated[
        str, typer.Option("--format", help="text | json | markdown | junit | html")
    ] = "text",
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to a file.")] = None,
    alpha: Annotated[float, typer.Option("--alpha", help="Significance level.")] = 0.05,
    min_effect: Annotated[
        float,
        typer.Option(
            "--min-effect", help="Smallest pass-rate drop (0..1) that counts as a regression."
        ),
    ] = 0.0,
    strict: Annotated[
        bool, typer.Option("--strict", help="Refuse runs whose cases or graders differ.")
    ] = False,
    db: DbOpt = None,
) -> None:
    """Paired comparison of two runs: what changed, regressions, p-values. Exit 1 on regression."""
    from ..analysis.compare import compare_runs
    from ..report.render import render_comparison

    store = store_at(db)
    base_id, new_id = _compare_pair(store, base, new)
    result = compare_runs(
        store,
        base_id,
        new_id,
        alpha=alpha,
        min_effect=min_effect,
        strict=strict,
    )
    emit(render_comparison(result, fmt), output)
    if result.verdict == "regressed":
        raise typer.Exit(1)


def _compare_pair(store: Store, base: str, new: str) -> tuple[str, str]:
    """`latest` in compare is the newest done run: of the other run's suite when that one is
    named, and not the other run itself."""
    if base != "latest":
        base_id = resolve_run(store, base)
        suite = store.runs.get(base_id).suite_name
        return base_id, resolve_run(store, new, done=True, suite=suite, exclude=base_id)
    if new != "latest":
        new_id = resolve_run(store, new)
        suite = store.runs.get(new_id).suite_name
        return resolve_run(store, base, done=True, suite=suite, exclude=new_id), new_id
    new_id = resolve_run(store, new, done=True)
    suite = store.runs.get(new_id).suite_name
    return resolve_run(store, base, done=True, suite=suite, exclude=new_id), new_id


@app.command()
def runs(
    suite: Annotated[str | None, typer.Option("--suite", help="Only this suite.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="How many, newest first.")] = 50,
    ids: Annotated[
        bool, typer.Option("--ids", help="Print only the run ids, one a line (for scripts).")
    ] = False,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The scoreboard over time: suite, when, mode, manifest hash, score, cost."""
    from dataclasses import asdict
    from datetime import datetime

    from ..report.wording import pct, usd

    store = store_at(db)
    items = store.history.list_runs(suite, limit)
    if as_json:
        print_json([asdict(i) for i in items])
        return
    if ids:
        out.print("\n".join(i.id for i in items), end="\n" if items else "")
        return
    if not items:
        err.print(f"no runs{f' of suite {suite}' if suite else ''} in the store at {store.url}")
        return
    table = Table("run", "suite", "when", "mode", "status", "manifest", "pass rate", "cost")
    table.columns[0].no_wrap = True  # ids are what people copy: never cut one
    table.columns[0].min_width = max(len(i.id) for i in items)
    for item in items:
        mark = " *" if item.manifest_changed else ""
        table.add_row(
            item.id,
            item.suite,
            datetime.fromtimestamp(item.created_at).strftime("%Y-%m-%d %H:%M"),
            item.mode,
            item.status,
            item.manifest_hash[:12] + mark,
            pct(item.pass_rate),
            usd(item.cost_usd),
        )
    out.print(table)
    if any(i.manifest_changed for i in items):
        out.print("* the manifest changed from the run before: scores may not be comparable")

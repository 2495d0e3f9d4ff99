"""`evalbatch sweep`: variants of a suite (models, any suite key) as one submission, then the
sweep table with its recommendation."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Annotated

import typer

from .app import (
    BatchLatencyOpt,
    BudgetOpt,
    DbOpt,
    DetachOpt,
    JsonOpt,
    ModeOpt,
    ResponderOpt,
    SandboxOpt,
    SetsOpt,
    app,
    check_credentials,
    check_mode,
    print_json,
    provider_factory,
    store_at,
)
from .console import err, out
from .progress import RichProgress


@app.command()
def sweep(
    suite: Annotated[Path, typer.Argument(help="The suite file (YAML).")],
    models: Annotated[
        str | None,
        typer.Option("--models", help="Generation models to sweep, comma-separated: haiku,sonnet."),
    ] = None,
    matrix: Annotated[
        list[str] | None,
        typer.Option(
            "--matrix",
            help="Another axis: KEY=V1,V2 (any suite key, e.g. generate.max_tokens=300,600).",
        ),
    ] = None,
    reference: Annotated[
        str | None,
        typer.Option("--reference", help="The variant savings are counted against."),
    ] = None,
    margin: Annotated[
        float | None,
        typer.Option("--margin", help="Non-inferiority margin in pass rate (default 0.02)."),
    ] = None,
    per_month: Annotated[
        int, typer.Option("--per-month", help="Runs per month, for the monthly saving.")
    ] = 30,
    mode: ModeOpt = None,
    detach: DetachOpt = False,
    sets: SetsOpt = None,
    budget: BudgetOpt = None,
    sandbox: SandboxOpt = False,
    responder: ResponderOpt = "echo",
    batch_latency: BatchLatencyOpt = 0.2,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run variants of a suite together (one submission) and recommend the cheapest that holds
    quality: pass rates with intervals, cost, Pareto front, paired non-inferiority."""
    from ..analysis.sweep import sweep_table
    from ..errors import ConfigError
    from ..plan.variants import axes_for, parse_matrix
    from ..report.sweep import render_sweep
    from ..run.sweep import SweepRunner
    from ..run.sweep_plan import create_sweep

    check_mode(mode, detach, sandbox)
    if margin is not None and not 0 <= margin < 1:
        raise ConfigError(f"--margin must be between 0 and 1 (got {margin})")
    axes, suite_reference, suite_margin = axes_for(
        suite,
        sets or [],
        [m.strip() for m in (models or "").split(",") if m.strip()],
        parse_matrix(matrix or []),
    )
    store = store_at(db)
    with provider_factory(sandbox, responder, batch_latency) as factory:
        sweep_id, variants = create_sweep(
            store,
            suite,
            sets or [],
            axes,
            mode=mode,  # type: ignore[arg-type]
            reference=reference or suite_reference,
            margin=suite_margin if margin is None else margin,
            options={"budget_usd": budget, "sandbox": sandbox},
            before_write=None if sandbox else partial(check_credentials, factory),
        )
        err.print(
            f"sweep {sweep_id}: {len(variants)} variants of {variants[0][1].case_count} cases"
        )
        for variant, prepared in variants:
            err.print(f"  {variant.name}: manifest {prepared.manifest.short}")
        status = SweepRunner(store, sweep_id, factory, RichProgress(quiet=as_json)).run(
            detach=detach
        )
    if detach and status != "done":
        if as_json:
            print_json({"sweep": sweep_id, "status": status})
        else:
            out.print(sweep_id)
            err.print(f"submitted; collect with: evalbatch collect {sweep_id}")
        return
    table = sweep_table(store, sweep_id, per_month=per_month)
    out.print(render_sweep(table, "json" if as_json else "text"), end="")
    if status == "needs_attention":
        raise typer.Exit(3)

"""Commands that measure and reuse: `regrade` (new graders over stored generations) and
`calibrate` (which cheaper model still gives a trustworthy result)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import ConfigError
from .app import DbOpt, JsonOpt, app, print_json, provider_factory, resolve_run, store_at
from .console import RichProgress, err, out

ModeOpt = Annotated[str | None, typer.Option("--mode", help="batch (default) | sync.")]
DetachOpt = Annotated[
    bool,
    typer.Option("--detach", help="Submit, print the id, exit; `evalbatch collect` picks up."),
]
BudgetOpt = Annotated[
    float | None,
    typer.Option("--budget", help="Refuse to submit above this projected cost (USD)."),
]
SandboxOpt = Annotated[
    bool, typer.Option("--sandbox", help="Use an in-process loopback sandbox (no key, no cost).")
]
ResponderOpt = Annotated[
    str,
    typer.Option(
        "--responder", help="With --sandbox: echo | script:FILE | python:module:fn | quality:FILE."
    ),
]
LatencyOpt = Annotated[
    float, typer.Option("--batch-latency", help="With --sandbox: seconds a batch takes.")
]


def check_mode(mode: str | None, detach: bool, sandbox: bool) -> None:
    if mode not in (None, "batch", "sync"):
        raise ConfigError(f"--mode must be batch or sync (got {mode!r})")
    if detach and sandbox:
        raise ConfigError(
            "--detach with --sandbox: the in-process sandbox stops when the command exits; "
            "start `evalbatch sandbox` and set ANTHROPIC_BASE_URL instead"
        )


@app.command()
def regrade(
    run_id: Annotated[str, typer.Argument(help="The run whose generations to grade again.")],
    suite: Annotated[
        Path | None,
        typer.Option("--suite", help="Take the graders (and gate) from this suite file."),
    ] = None,
    sets: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="Change a grader: grade=[...], grade.NAME.KEY=VALUE, gate.KEY=VALUE."
        ),
    ] = None,
    mode: ModeOpt = None,
    detach: DetachOpt = False,
    budget: BudgetOpt = None,
    sandbox: SandboxOpt = False,
    responder: ResponderOpt = "echo",
    batch_latency: LatencyOpt = 0.2,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Grade a run's stored generations with other graders: a new run, generations not billed."""
    from ..analysis.summary import summarize
    from ..report.text import print_text
    from ..run.engine import Runner
    from ..run.regrade import create_regrade, plan_regrade

    check_mode(mode, detach, sandbox)
    store = store_at(db)
    source = resolve_run(store, run_id)
    plan = plan_regrade(store, source, suite_file=suite, overrides=sets or [], mode=mode)  # type: ignore[arg-type]
    options = {
        "retries": plan.suite.retries,
        "concurrency": plan.suite.concurrency,
        "budget_usd": budget,
        "sandbox": sandbox,
    }
    with provider_factory(sandbox, responder, batch_latency) as factory:
        if not sandbox:
            factory().close()  # a missing key fails here, before anything is written
        new_id = create_regrade(store, plan, options)
        graders = ", ".join(g.name for g in plan.graders) or "none"
        err.print(
            f"regrade {new_id}: {plan.manifest.data['cases']['count']} cases, generations from "
            f"{source} (not billed), graders {graders}, mode {plan.suite.mode}"
        )
        status = Runner(store, new_id, factory, RichProgress(quiet=as_json)).run(detach=detach)
    if detach and status != "done":
        if as_json:
            print_json({"run_id": new_id, "status": status, "generations_from": source})
        else:
            out.print(new_id)
            err.print(f"submitted; collect with: evalbatch collect {new_id}")
        return
    summary = summarize(store, new_id)
    if as_json:
        print_json(summary.to_dict())
    else:
        print_text(summary, out)
    if summary.run.status == "needs_attention":
        raise typer.Exit(3)

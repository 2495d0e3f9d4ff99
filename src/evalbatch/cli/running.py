"""Commands that move runs: `run`, `collect`, `status`, `cancel`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from ..errors import ConfigError
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
    resolve_unit,
    store_at,
)
from .console import age, err, out
from .progress import RichProgress

if TYPE_CHECKING:
    from ..store.db import Store


@app.command()
def run(
    suite: Annotated[Path, typer.Argument(help="The suite file (YAML).")],
    mode: ModeOpt = None,
    detach: DetachOpt = False,
    sets: SetsOpt = None,
    budget: BudgetOpt = None,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", help="Sync-path concurrency.")
    ] = None,
    sandbox: SandboxOpt = False,
    responder: ResponderOpt = "echo",
    batch_latency: BatchLatencyOpt = 0.2,
    baseline: Annotated[
        str | None,
        typer.Option(
            "--baseline",
            help="Compare with this run (or `latest` comparable) at the end; exit 1 on regression.",
        ),
    ] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a suite: plan, submit (batch or sync), collect, grade, score, report."""
    from ..plan.prepare import prepare
    from ..run.create import create_run
    from ..run.engine import Runner

    check_mode(mode, detach, sandbox)
    prepared = prepare(suite, sets or [], mode)  # type: ignore[arg-type]
    for warning in (w for g in prepared.graders for w in g.warnings()):
        err.print(f"warning: {warning}", style="bold yellow")
    store = store_at(db)
    options = {
        "retries": prepared.suite.retries,
        "concurrency": concurrency or prepared.suite.concurrency,
        "budget_usd": budget,
        "sandbox": sandbox,
    }
    with provider_factory(sandbox, responder, batch_latency) as factory:
        if not sandbox:
            check_credentials(factory, [prepared])
        run_id = create_run(store, prepared, options)
        err.print(
            f"run {run_id}: {prepared.case_count} cases, mode {prepared.suite.mode}, "
            f"manifest {prepared.manifest.short}"
        )
        status = Runner(store, run_id, factory, RichProgress(quiet=as_json)).run(detach=detach)
    if detach and status != "done":
        if as_json:
            print_json({"run_id": run_id, "status": status})
        else:
            out.print(run_id)
            err.print(f"submitted; collect with: evalbatch collect {run_id}")
        return
    # Imported here: the statistics behind the gate (scipy) cost a detached run a second.
    from ..analysis.gate import check_gate
    from ..analysis.summary import summarize
    from ..report.text import print_text

    summary = summarize(store, run_id)
    verdict = check_gate(store, summary, baseline)
    if as_json:
        print_json({**summary.to_dict(), "gate": verdict.to_dict()})
    else:
        print_text(summary, out)
        for line in verdict.lines:
            out.print(line)
    if summary.run.status == "needs_attention":
        raise typer.Exit(3)
    if verdict.failed:
        raise typer.Exit(1)


@app.command()
def collect(
    run_ids: Annotated[
        list[str] | None, typer.Argument(help="Runs to advance (default: all open runs).")
    ] = None,
    all_runs: Annotated[bool, typer.Option("--all", help="Every open run.")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Loop until the runs are done.")] = False,
    forever: Annotated[
        bool,
        typer.Option(
            "--forever",
            help="Serve as a worker: every open run once per round, until SIGTERM or Ctrl-C.",
        ),
    ] = False,
    poll: Annotated[
        float, typer.Option("--poll", help="With --forever: seconds between rounds.", min=0.0)
    ] = 10.0,
    budget: Annotated[
        float | None,
        typer.Option("--budget", help="Set a new spend limit (USD) on these runs first."),
    ] = None,
    attach: Annotated[
        str | None,
        typer.Option(
            "--attach",
            help="Adopt this provider batch id for the run's batch whose id was never stored.",
        ),
    ] = None,
    resubmit: Annotated[
        bool,
        typer.Option(
            "--resubmit",
            help="The run's unconfirmed batches never reached the provider: send them again.",
        ),
    ] = False,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Advance pending runs once (poll, collect, submit grading, score). Safe from cron."""
    from ..providers import open_provider
    from ..run.collect import collect_runs, open_units

    store = store_at(db)
    if forever:
        if run_ids or attach or resubmit or wait:
            raise ConfigError("--forever serves every open run: no run ids, --wait or --attach")
        _serve(store, poll, budget, as_json)
        return
    ids = [resolve_unit(store, r) for r in run_ids or []] or open_units(store)
    results = collect_runs(
        store,
        ids,
        open_provider,
        RichProgress(quiet=as_json),
        wait=wait,
        budget_usd=budget,
        attach=attach,
        resubmit=resubmit,
    )
    for item in results:
        if item.status == "skipped":
            err.print(f"{item.run_id}: {item.note}")
        elif not as_json:
            out.print(f"{item.run_id}: {item.status}" + (f" — {item.note}" if item.note else ""))
    if as_json:
        print_json(
            [
                {
                    "run_id": r.run_id,
                    "status": r.status,
                    **({"note": r.note} if r.note else {}),
                    **({"held_by": r.held_by} if r.held_by else {}),
                }
                for r in results
            ]
        )
    elif not ids:
        err.print("no open runs")
    if any(r.status == "needs_attention" for r in results):
        raise typer.Exit(3)


def _serve(store: Store, poll: float, budget: float | None, as_json: bool) -> None:
    import sys
    import threading

    import orjson

    from ..providers import open_provider
    from ..run.collect import Collected, serve, stop_on_signals

    if budget is not None:
        raise ConfigError("--budget is set per run: evalbatch collect RUN --budget USD")
    stop = threading.Event()
    stop_on_signals(stop)
    err.print(f"serving {store.url}: every open run each {poll:g} s; SIGTERM or Ctrl-C stops")

    def report(done: list[Collected]) -> None:
        for item in done:
            if item.status == "skipped":
                continue
            if as_json:  # one JSON object per line: a log to follow, not one document
                line = {"run_id": item.run_id, "status": item.status, "note": item.note}
                sys.stdout.write(orjson.dumps(line).decode() + "\n")
                sys.stdout.flush()
            else:
                out.print(
                    f"{item.run_id}: {item.status}" + (f" — {item.note}" if item.note else "")
                )

    serve(store, open_provider, RichProgress(quiet=True), poll_s=poll, stop=stop, on_round=report)
    err.print("stopped")


@app.command()
def status(
    run_id: Annotated[
        str | None, typer.Argument(help="A run or sweep (default: every open run).")
    ] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Where each run is: step, batches with provider ids, counts, age, expiry."""
    from dataclasses import asdict

    store = store_at(db)
    unit = resolve_unit(store, run_id) if run_id else None
    if unit is None:
        ids = store.runs.open_ids()
    elif unit.startswith("sweep-"):
        ids = store.sweeps.run_ids(unit)  # a sweep's batches are listed under its first run
    else:
        ids = [unit]
    states = [store.history.run_state(i) for i in ids]
    if as_json:
        print_json([asdict(s) for s in states])
        return
    if not states:
        out.print("no open runs")
    for state in states:
        out.print(
            f"{state.id}  {state.suite}  {state.status}  mode {state.mode}  age {age(state.age_s)}",
            style="bold",
        )
        for step, counts in state.requests.items():
            out.print(f"  {step}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        if state.batches:
            table = Table("step", "batch", "status", "requests", "counts", "age", "expires in")
            for b in state.batches:
                counts_text = ", ".join(f"{k} {v}" for k, v in b.counts.items() if v)
                table.add_row(
                    b.step,
                    b.provider_batch_id or "(intent)",
                    b.status,
                    str(b.requests),
                    counts_text,
                    age(b.age_s),
                    age(b.expires_in_s) if b.expires_in_s else "-",
                )
            out.print(table)
        for warning in state.warnings:
            err.print(f"warning: {warning}", style="yellow")
        if state.error:
            err.print(state.error, style="red")


@app.command()
def cancel(
    run_id: Annotated[str, typer.Argument(help="The run to cancel.")],
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Cancel a run's provider batches and mark it canceled."""
    from ..providers import open_provider
    from ..run.engine import Runner
    from ..run.sweep import SweepRunner

    store = store_at(db)
    run_id = resolve_unit(store, run_id)
    runner: Runner | SweepRunner = (
        SweepRunner(store, run_id, open_provider)
        if run_id.startswith("sweep-")
        else Runner(store, run_id, open_provider)
    )
    try:
        new_status, canceled = runner.cancel()
        unconfirmed = runner.unconfirmed_batches()
    finally:
        runner.close()
    if as_json:
        print_json(
            {
                "run_id": run_id,
                "status": new_status,
                "batches_canceled": canceled,
                **({"unconfirmed_batches": unconfirmed} if unconfirmed else {}),
            }
        )
    else:
        out.print(f"{run_id}: {new_status} ({canceled} batch(es) canceled at the provider)")
        if new_status == "canceling":
            err.print(f"collect what they finished with: evalbatch collect {run_id}")
    if unconfirmed:
        err.print(
            f"{unconfirmed} batch(es) of this run have no provider id (it was never stored) and "
            f"may be running: find the id in the provider's console, then "
            f"evalbatch collect {run_id} --attach BATCH_ID and cancel again",
            style="yellow",
        )

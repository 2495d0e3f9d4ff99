"""The `evalbatch` command. Thin: parses arguments, calls the library, prints.

Exit codes: 0 ok; 1 the eval failed its gate or regressed; 2 bad input, nothing written;
3 provider or infrastructure failure after retries (state kept: rerun `evalbatch collect`).
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from .. import __version__
from ..errors import ConfigError, EvalbatchError, NotFound, ProviderError, RunNeedsAttention
from .console import RichProgress, age, err, out

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Run LLM evaluation suites batch-first: half the price, nothing lost.",
)

DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db", envvar="EVALBATCH_DB", help="Store URL (default: SQLite in $EVALBATCH_HOME)."
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout (data only).")]
_state: dict[str, Any] = {"debug": False}


def _version(value: bool) -> None:
    if value:
        out.print(__version__)
        raise typer.Exit(0)


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", help="Print the version.", callback=_version, is_eager=True),
    ] = False,
) -> None:
    _state["debug"] = debug


def _print_json(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


def _store(db: str | None) -> Any:
    from ..store.db import open_store

    return open_store(db)


def _resolve_run(engine: Any, run_id: str) -> str:
    if run_id != "latest":
        return run_id
    from ..report.history import list_runs

    runs = list_runs(engine, limit=1)
    if not runs:
        raise NotFound("no runs in the store yet")
    return str(runs[0]["id"])


@contextlib.contextmanager
def _provider_factory(sandbox: bool, responder: str, batch_latency: float) -> Iterator[Any]:
    from ..providers import open_provider

    if not sandbox:
        yield lambda: open_provider()
        return
    from ..sandbox import SandboxConfig, SandboxServer

    server = SandboxServer(SandboxConfig(responder=responder, batch_latency=batch_latency))
    server.start()
    err.print(f"[dim]sandbox listening on {server.base_url}[/dim]")
    try:
        yield lambda: open_provider(base_url=server.base_url, api_key="sandbox")
    finally:
        server.stop()


@app.command()
def run(
    suite: Annotated[Path, typer.Argument(help="The suite file (YAML).")],
    mode: Annotated[
        str | None, typer.Option("--mode", help="batch | sync (overrides the suite).")
    ] = None,
    detach: Annotated[
        bool,
        typer.Option(
            "--detach", help="Submit, print the run id, exit; `evalbatch collect` picks up."
        ),
    ] = False,
    sets: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a suite key: key=value (dotted keys)."),
    ] = None,
    budget: Annotated[
        float | None,
        typer.Option("--budget", help="Refuse to submit above this projected cost (USD)."),
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", help="Sync-path concurrency.")
    ] = None,
    sandbox: Annotated[
        bool,
        typer.Option(
            "--sandbox", help="Run against an in-process loopback sandbox (no key, no cost)."
        ),
    ] = False,
    responder: Annotated[
        str,
        typer.Option("--responder", help="With --sandbox: echo | script:FILE | python:module:fn."),
    ] = "echo",
    batch_latency: Annotated[
        float, typer.Option("--batch-latency", help="With --sandbox: seconds a batch takes.")
    ] = 0.2,
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
    from ..plan.prepare import create_run, prepare
    from ..report.summary import summarize
    from ..report.text import print_text
    from ..run.engine import Runner

    if mode not in (None, "batch", "sync"):
        raise ConfigError(f"--mode must be batch or sync (got {mode!r})")
    if detach and sandbox:
        raise ConfigError(
            "--detach with --sandbox: the in-process sandbox stops when `run` "
            "exits; start `evalbatch sandbox` and set ANTHROPIC_BASE_URL instead"
        )
    prepared = prepare(suite, sets or [], mode)
    engine = _store(db)
    budget = budget if budget is not None else prepared.suite.budget_usd
    if budget is not None:
        from ..errors import BudgetExceeded
        from ..plan.projection import project

        projected = project(prepared, engine).total("plan")
        if projected > budget:
            raise BudgetExceeded(projected, budget)
    options = {
        "retries": prepared.suite.retries,
        "concurrency": concurrency or prepared.suite.concurrency,
        "budget_usd": budget,
        "sandbox": sandbox,
    }
    with _provider_factory(sandbox, responder, batch_latency) as factory:
        if not sandbox:
            factory().close()  # a missing key fails here, before anything is written
        run_id = create_run(engine, prepared, options)
        err.print(
            f"run {run_id}: {prepared.case_count} cases, mode {prepared.suite.mode}, "
            f"manifest {prepared.manifest.short}"
        )
        runner = Runner(engine, run_id, factory, RichProgress(quiet=as_json))
        status = runner.run(detach=detach)
    if detach and status not in ("done",):
        if as_json:
            _print_json({"run_id": run_id, "status": status})
        else:
            out.print(f"{run_id}")
            err.print(f"submitted; collect with: evalbatch collect {run_id}")
        return
    _finish(engine, run_id, as_json, print_text, summarize, baseline)


def _finish(
    engine: Any, run_id: str, as_json: bool, print_text: Any, summarize: Any, baseline: str | None
) -> None:
    from ..analysis.gate import check_gate

    summary = summarize(engine, run_id)
    verdict = check_gate(engine, summary, baseline)
    if as_json:
        _print_json({**summary.to_dict(), "gate": verdict.to_dict()})
    else:
        print_text(summary, out)
        for line in verdict.lines:
            out.print(line)
    if summary.run["status"] == "needs_attention":
        raise typer.Exit(3)
    if verdict.failed:
        raise typer.Exit(1)


@app.command()
def plan(
    suite: Annotated[Path, typer.Argument(help="The suite file (YAML).")],
    mode: Annotated[str | None, typer.Option("--mode", help="batch | sync.")] = None,
    sets: Annotated[list[str] | None, typer.Option("--set", help="Override a suite key.")] = None,
    per_month: Annotated[
        int, typer.Option("--per-month", help="Runs per month, for the monthly figures.")
    ] = 30,
    count_tokens: Annotated[
        str, typer.Option("--count-tokens", help="local | api (needs a key; exact token counts).")
    ] = "local",
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Project tokens and cost per strategy before spending anything (no API calls)."""
    from ..plan.prepare import prepare
    from ..plan.projection import project
    from ..report.plan_text import print_plan

    if count_tokens not in ("local", "api"):
        raise ConfigError(f"--count-tokens must be local or api (got {count_tokens!r})")
    prepared = prepare(suite, sets or [], mode)
    counter = None
    if count_tokens == "api":
        from ..providers import open_provider

        counter = open_provider().count_tokens
    projection = project(prepared, _store(db), count_tokens=counter)
    if as_json:
        _print_json({**projection.to_dict(), "per_month": per_month})
        return
    print_plan(projection, per_month, out)


@app.command()
def collect(
    run_ids: Annotated[
        list[str] | None, typer.Argument(help="Runs to advance (default: all open runs).")
    ] = None,
    all_runs: Annotated[bool, typer.Option("--all", help="Every open run.")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Loop until the runs are done.")] = False,
    budget: Annotated[
        float | None,
        typer.Option("--budget", help="Set a new spend limit (USD) on these runs first."),
    ] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Advance pending runs once (poll, collect, submit grading, score). Safe from cron."""
    from ..providers import open_provider
    from ..report.history import open_run_ids
    from ..run.engine import TERMINAL, Runner
    from ..store import leases

    engine = _store(db)
    ids = [_resolve_run(engine, r) for r in run_ids or []] or open_run_ids(engine)
    if budget is not None:
        from ..run.engine import set_budget

        for run_id in ids:
            set_budget(engine, run_id, budget)
    results = []
    for run_id in ids:
        holder = leases.new_holder()
        held_by = leases.acquire(engine, run_id, holder)
        if held_by is not None:
            err.print(f"{run_id}: skipped, being advanced by {held_by}")
            results.append({"run_id": run_id, "status": "skipped", "held_by": held_by})
            continue
        runner = Runner(engine, run_id, open_provider, RichProgress(quiet=as_json))
        note = None
        try:
            status = runner.advance(resume=True)
            while wait and status not in TERMINAL:
                time.sleep(2.0)
                leases.acquire(engine, run_id, holder)
                try:
                    status = runner.advance()
                except ProviderError as exc:
                    if not exc.retryable:
                        raise
                    err.print(f"{run_id}: provider error, retrying: {exc}")
        except RunNeedsAttention as exc:
            status, note = "needs_attention", str(exc)
        except ProviderError as exc:
            if not exc.retryable:
                raise
            # Nothing is lost: the journal holds every handle; the next collect picks up.
            status, note = runner.status(), f"provider error, try again later: {exc}"
        finally:
            leases.release(engine, run_id, holder)
            runner.close()
        results.append({"run_id": run_id, "status": status, **({"note": note} if note else {})})
        if not as_json:
            out.print(f"{run_id}: {status}" + (f" — {note}" if note else ""))
    if as_json:
        _print_json(results)
    elif not ids:
        err.print("no open runs")
    if any(r["status"] == "needs_attention" for r in results):
        raise typer.Exit(3)


@app.command()
def status(
    run_id: Annotated[str | None, typer.Argument(help="A run (default: every open run).")] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Where each run is: step, batches with provider ids, counts, age, expiry."""
    from ..report.history import open_run_ids, run_status

    engine = _store(db)
    ids = [_resolve_run(engine, run_id)] if run_id else open_run_ids(engine)
    states = [run_status(engine, i) for i in ids]
    if as_json:
        _print_json(states)
        return
    if not states:
        out.print("no open runs")
    for state in states:
        out.print(
            f"[bold]{state['id']}[/bold]  {state['suite']}  {state['status']}  "
            f"mode {state['mode']}  age {age(state['age_s'])}"
        )
        for step, counts in state["requests"].items():
            out.print(f"  {step}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        if state["batches"]:
            table = Table("step", "batch", "status", "requests", "counts", "age", "expires in")
            for b in state["batches"]:
                counts = ", ".join(f"{k} {v}" for k, v in b["counts"].items() if v)
                table.add_row(
                    b["step"],
                    b["provider_batch_id"] or "(intent)",
                    b["status"],
                    str(b["requests"]),
                    counts,
                    age(b["age_s"]),
                    age(b["expires_in_s"]) if b["expires_in_s"] else "-",
                )
            out.print(table)
        for warning in state["warnings"]:
            err.print(f"[yellow]warning:[/yellow] {warning}")
        if state["error"]:
            err.print(f"[red]{state['error']}[/red]")


@app.command()
def report(
    run_id: Annotated[str, typer.Argument(help="A run id, or `latest`.")],
    fmt: Annotated[
        str, typer.Option("--format", help="text | json | markdown | junit | html")
    ] = "text",
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to a file.")] = None,
    db: DbOpt = None,
) -> None:
    """Report a stored run: scoreboard, cost by step and model, errors."""
    from ..report.render import render_report

    engine = _store(db)
    _emit(render_report(engine, _resolve_run(engine, run_id), fmt), output)


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
    from ..report.compare_render import render_comparison

    engine = _store(db)
    result = compare_runs(
        engine,
        _resolve_run(engine, base),
        _resolve_run(engine, new),
        alpha=alpha,
        min_effect=min_effect,
        strict=strict,
    )
    _emit(render_comparison(result, fmt), output)
    if result.verdict == "regressed":
        raise typer.Exit(1)


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        err.print(f"wrote {output}")


@app.command()
def runs(
    suite: Annotated[str | None, typer.Option("--suite", help="Only this suite.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="How many, newest first.")] = 50,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The scoreboard over time: suite, when, mode, manifest hash, score, cost."""
    from datetime import datetime

    from ..report.history import list_runs
    from ..report.text import pct, usd

    items = list_runs(_store(db), suite, limit)
    if as_json:
        _print_json(items)
        return
    table = Table("run", "suite", "when", "mode", "status", "manifest", "pass rate", "cost")
    for item in items:
        mark = " *" if item["manifest_changed"] else ""
        table.add_row(
            item["id"],
            item["suite"],
            datetime.fromtimestamp(item["created_at"]).strftime("%Y-%m-%d %H:%M"),
            item["mode"],
            item["status"],
            item["manifest_hash"][:12] + mark,
            pct(item["pass_rate"]),
            usd(item["cost_usd"]),
        )
    out.print(table)
    if any(i["manifest_changed"] for i in items):
        out.print("* the manifest changed from the run before: scores may not be comparable")


@app.command()
def cancel(
    run_id: Annotated[str, typer.Argument(help="The run to cancel.")],
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Cancel a run's provider batches and mark it canceled."""
    from ..providers import open_provider
    from ..run.engine import Runner

    engine = _store(db)
    run_id = _resolve_run(engine, run_id)
    runner = Runner(engine, run_id, open_provider)
    try:
        status, canceled = runner.cancel()
    finally:
        runner.close()
    if as_json:
        _print_json({"run_id": run_id, "status": status, "batches_canceled": canceled})
    else:
        out.print(f"{run_id}: {status} ({canceled} batch(es) canceled at the provider)")
        if status == "canceling":
            err.print(f"collect what they finished with: evalbatch collect {run_id}")


def _register_sandbox() -> None:
    from ..sandbox.command import sandbox_command

    app.command("sandbox", help="Serve the loopback Anthropic API simulator on 127.0.0.1.")(
        sandbox_command
    )


_register_sandbox()


def main() -> None:
    """Entry point: map our exceptions to exit codes in one place."""
    try:
        code = app(standalone_mode=False, prog_name="evalbatch")
        sys.exit(code if isinstance(code, int) else 0)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("aborted")
        sys.exit(130)
    except EvalbatchError as exc:
        if _state["debug"]:
            raise
        err.print(f"[red]error:[/red] {exc}", highlight=False, markup=True)
        if isinstance(exc, ProviderError):
            err.print("state is kept; rerun `evalbatch collect` to continue")
        sys.exit(exc.exit_code)
    except Exception as exc:
        # Usage errors come from the click that typer bundles; match them by shape.
        show, code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(code, int) and not _state["debug"]:
            show()
            sys.exit(code)
        raise

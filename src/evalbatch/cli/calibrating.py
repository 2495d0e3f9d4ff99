"""Commands that measure and reuse: `regrade` (new graders over stored generations) and
`calibrate` (which cheaper model still gives a trustworthy result)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

from ..errors import ConfigError
from .app import (
    BatchLatencyOpt,
    BudgetOpt,
    DbOpt,
    DetachOpt,
    JsonOpt,
    ResponderOpt,
    SandboxOpt,
    app,
    check_mode,
    print_json,
    provider_factory,
    resolve_run,
    store_at,
)
from .console import err, out
from .progress import RichProgress

if TYPE_CHECKING:
    from ..records import Mode
    from ..store.calibration_records import CalibrationRecord
    from ..store.db import Store

# a regrade has no suite of its own to override: its mode defaults to batch
ModeOpt = Annotated[str | None, typer.Option("--mode", help="batch (default) | sync.")]


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
    batch_latency: BatchLatencyOpt = 0.2,
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
    if summary.gate_failed:  # the suite's min_pass_rate; compare SOURCE NEW for a regression
        raise typer.Exit(1)


@app.command()
def calibrate(
    run_id: Annotated[str, typer.Argument(help="The run to calibrate (done).")],
    step: Annotated[str, typer.Option("--step", help="grade | generate.")] = "grade",
    candidates: Annotated[
        str, typer.Option("--candidates", help="Models to try, comma-separated: haiku,sonnet.")
    ] = "haiku,sonnet",
    sample: Annotated[
        int | None,
        typer.Option(
            "--sample",
            help="Cases to sample: in all (grade, default 500), per route (generate, 200).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the sample.")] = 0,
    grader: Annotated[
        str | None,
        typer.Option(
            "--grader", help="The grader to calibrate (grade; default: the only model grader)."
        ),
    ] = None,
    min_kappa: Annotated[
        float, typer.Option("--min-kappa", help="Trustworthy: kappa's lower bound at least this.")
    ] = 0.8,
    max_bias: Annotated[
        float,
        typer.Option("--max-bias", help="Trustworthy: the pass-rate bias interval within ±this."),
    ] = 0.02,
    margin: Annotated[
        float, typer.Option("--margin", help="generate: the non-inferiority margin (a fraction).")
    ] = 0.02,
    per_month: Annotated[
        int | None,
        typer.Option(
            "--per-month", help="Runs per month (default: the suite's runs_per_month, else 30)."
        ),
    ] = None,
    mode: ModeOpt = None,
    detach: DetachOpt = False,
    budget: BudgetOpt = None,
    sandbox: SandboxOpt = False,
    responder: ResponderOpt = "echo",
    batch_latency: BatchLatencyOpt = 0.2,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Measure whether cheaper models hold quality: graders against the run's, or models per route."""
    from ..run.calibrate import (
        GENERATE_SAMPLE,
        GRADE_SAMPLE,
        calibrate_generate,
        calibrate_grade,
        parse_candidates,
    )

    check_mode(mode, detach, sandbox)
    if step not in ("grade", "generate"):
        raise ConfigError(f"--step must be grade or generate (got {step!r})")
    _check_range("--min-kappa", min_kappa, -1.0, 1.0)
    for flag, value in (("--max-bias", max_bias), ("--margin", margin)):
        _check_range(flag, value, 0.0, 1.0)
    if sample is not None and sample < 1:
        raise ConfigError(f"--sample must be at least 1 (got {sample})")
    if per_month is not None and per_month < 1:
        raise ConfigError(f"--per-month must be at least 1 (got {per_month})")
    chosen = parse_candidates(candidates)
    store = store_at(db)
    source = resolve_run(store, run_id)
    options = {"budget_usd": budget, "sandbox": sandbox, "retries": 2}
    chosen_mode = cast("Mode | None", mode)
    if step == "grade":
        record, created = calibrate_grade(
            store, source, chosen, grader=grader, sample=sample or GRADE_SAMPLE, seed=seed,
            mode=chosen_mode, options=options,
        )  # fmt: skip
    else:
        record, created = calibrate_generate(
            store, source, chosen, sample=sample or GENERATE_SAMPLE, seed=seed,
            mode=chosen_mode, options=options,
        )  # fmt: skip
    err.print(
        f"calibration {record.id}: {'created' if created else 'reusing the stored one'}, "
        f"runs {', '.join(record.runs.values())}"
    )
    if not _drive(
        store, list(record.runs.values()), sandbox, responder, batch_latency, detach, as_json
    ):
        if as_json:
            print_json({"calibration": record.id, "runs": record.runs, "status": "submitted"})
        else:
            out.print(record.id)
            err.print(
                "submitted; collect with `evalbatch collect`, then run this command again "
                "to see the result"
            )
        return
    _show(store, record, step, min_kappa, max_bias, margin, per_month, as_json)


def _check_range(flag: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ConfigError(f"{flag} must be between {low:g} and {high:g} (got {value:g})")


def _drive(
    store: Store,
    run_ids: list[str],
    sandbox: bool,
    responder: str,
    batch_latency: float,
    detach: bool,
    as_json: bool,
) -> bool:
    """Advance the calibration's runs (to done, or submitted with ``detach``); True when all
    are done. A run that needs attention stops here (exit 3)."""
    from ..errors import RunNeedsAttention
    from ..run.engine import Runner

    todo = [r for r in run_ids if store.runs.status(r) != "done"]
    if not todo:
        return True
    with provider_factory(sandbox, responder, batch_latency) as factory:
        for run in todo:
            status = Runner(store, run, factory, RichProgress(quiet=as_json)).run(detach=detach)
            if status == "needs_attention":
                raise RunNeedsAttention(
                    f"calibration run {run} needs attention: see evalbatch status {run}"
                )
    return all(store.runs.status(r) == "done" for r in run_ids)


def _show(
    store: Store,
    record: CalibrationRecord,
    step: str,
    min_kappa: float,
    max_bias: float,
    margin: float,
    per_month: int | None,
    as_json: bool,
) -> None:
    from ..analysis.calibrate_generate import generate_calibration
    from ..analysis.calibrate_grade import grade_calibration
    from ..analysis.summary import suite_of
    from ..report.calibrate_text import render_generate_calibration, render_grade_calibration

    monthly = per_month or suite_of(store, record.run_id).runs_per_month or 30
    if step == "grade":
        cal = grade_calibration(
            store, record, min_kappa=min_kappa, max_bias=max_bias, per_month=monthly
        )
        if as_json:
            print_json(cal.to_dict())
        else:
            out.print(render_grade_calibration(cal))
        return
    gen = generate_calibration(store, record, margin=margin, per_month=monthly)
    if as_json:
        print_json(gen.to_dict())
    else:
        out.print(render_generate_calibration(gen))

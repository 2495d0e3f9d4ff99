"""`collect`: advance each open run (or the runs named) once, or until done with `wait`, or
serve as a long-running worker (`serve`: every open run once per round, until told to stop).

Runs are isolated from each other: a lease held elsewhere skips the run, a run that needs a
person is reported, a transient provider error is noted for next time, and one run's failure
never stops the others from advancing. Any number of collectors may share a store.
"""

from __future__ import annotations

import random
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..errors import (
    EvalbatchError,
    InputError,
    ProviderError,
    RunLeased,
    RunNeedsAttention,
    StoreError,
)
from ..store.db import Store
from .drive import drive
from .engine import ProviderFactory, Runner
from .progress import Progress
from .sweep import SweepRunner


@dataclass(frozen=True)
class Collected:
    """What one run did in a collect: its status (``skipped`` when another collector holds
    it), and a note for a person when something needs saying."""

    run_id: str
    status: str
    note: str | None = None
    held_by: str | None = None


def collect_runs(
    store: Store,
    run_ids: Sequence[str],
    provider_factory: ProviderFactory,
    progress: Progress,
    *,
    wait: bool = False,
    budget_usd: float | None = None,
    attach: str | None = None,
    resubmit: bool = False,
) -> list[Collected]:
    """Advance each run (a sweep's runs advance as their sweep); with ``budget_usd``, set that
    spend limit on each first. ``attach`` (a provider batch id) and ``resubmit`` settle one
    run's unconfirmed batches first."""
    run_ids = units(store, run_ids)
    if budget_usd is not None:
        for run_id in run_ids:
            if is_sweep(run_id):
                store.sweeps.set_spec(run_id, budget_usd=budget_usd)
            else:
                store.runs.set_options(run_id, budget_usd=budget_usd)
    if attach is not None or resubmit:
        if len(run_ids) != 1:
            raise InputError("--attach and --resubmit take exactly one run id")
        _settle(store, run_ids[0], provider_factory, attach)
    return [_isolated(store, run_id, provider_factory, progress, wait) for run_id in run_ids]


def is_sweep(unit: str) -> bool:
    return unit.startswith("sweep-")


def units(store: Store, ids: Sequence[str]) -> list[str]:
    """What to advance: a run, or the sweep a run belongs to (once), in order."""
    seen: list[str] = []
    for unit in ids:
        owner = unit if is_sweep(unit) else (store.sweeps.of_run(unit) or unit)
        if owner not in seen:
            seen.append(owner)
    return seen


def open_units(store: Store) -> list[str]:
    """Every open run and sweep (runs of a sweep as their sweep)."""
    return units(store, [*store.sweeps.open_ids(), *store.runs.open_ids()])


def _runner(
    store: Store, unit: str, factory: ProviderFactory, progress: Progress | None = None
) -> Runner | SweepRunner:
    if is_sweep(unit):
        return SweepRunner(store, unit, factory, progress)
    return Runner(store, unit, factory, progress)


def _settle(store: Store, run_id: str, factory: ProviderFactory, attach: str | None) -> None:
    runner = _runner(store, run_id, factory)
    try:
        if attach is not None:
            runner.attach(attach)
        else:
            runner.resubmit_unconfirmed()
    finally:
        runner.close()


def _isolated(
    store: Store,
    run_id: str,
    factory: ProviderFactory,
    progress: Progress,
    wait: bool,
    resume: bool = True,
) -> Collected:
    """One run's unexpected failure (a bug, a damaged row) stops that run, not the others."""
    try:
        return _collect_one(store, run_id, factory, progress, wait, resume)
    except (InputError, StoreError):
        raise  # the user's input or the store itself: every run would fail the same way
    except Exception as exc:
        failure = store.failure(exc)
        if failure is not None:
            raise failure from exc
        what = (
            str(exc)
            if isinstance(exc, EvalbatchError)
            else (
                f"unexpected error: {exc.__class__.__name__}: {exc} "
                "(`evalbatch --debug collect RUN` shows the traceback)"
            )
        )
        note = f"{what}; the run is kept"
        if is_sweep(run_id):
            store.sweeps.set_status(run_id, "needs_attention", note)
        else:
            store.runs.set_status(run_id, "needs_attention", note)
        return Collected(run_id, "needs_attention", note)


def _collect_one(
    store: Store,
    run_id: str,
    factory: ProviderFactory,
    progress: Progress,
    wait: bool,
    resume: bool,
) -> Collected:
    runner = _runner(store, run_id, factory, progress)
    try:
        status = drive(
            runner,
            until="done" if wait else "once",
            resume=resume,
            poll_s=2.0,
            max_transient=None if wait else 0,
        )
    except RunLeased as exc:
        runner.close()
        return Collected(run_id, "skipped", str(exc), exc.holder)
    except RunNeedsAttention as exc:
        return Collected(run_id, "needs_attention", str(exc))
    except ProviderError as exc:
        if not exc.retryable:
            raise
        # Nothing is lost: the journal holds every handle; the next collect picks up.
        return Collected(run_id, runner.status(), f"provider error, try again later: {exc}")
    return Collected(run_id, status)


def serve(
    store: Store,
    provider_factory: ProviderFactory,
    progress: Progress,
    *,
    poll_s: float,
    stop: threading.Event,
    on_round: Callable[[list[Collected]], None],
) -> None:
    """A worker: each round advances every open run once (those another collector holds are
    skipped, and those that need a person are left for `collect RUN`), reports the round
    through ``on_round`` and waits ``poll_s`` before the next, until ``stop`` is set. The step
    under way when it is set finishes first, and its lease is released."""
    while not stop.is_set():
        open_ids = [*store.sweeps.open_ids(attention=False), *store.runs.open_ids(attention=False)]
        run_ids = [u for u in units(store, open_ids) if not _needs_person(store, u)]
        random.shuffle(run_ids)  # workers that start together spread over the runs
        done: list[Collected] = []
        for run_id in run_ids:
            if stop.is_set():
                break
            done.append(_isolated(store, run_id, provider_factory, progress, False, False))
        on_round(done)
        stop.wait(poll_s)


def _needs_person(store: Store, unit: str) -> bool:
    """A run of a sweep that needs attention stands for its sweep, which then waits too."""
    return is_sweep(unit) and store.sweeps.get(unit).status == "needs_attention"


def stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM (a service manager) and SIGINT (Ctrl-C) end `serve` after the current step."""

    def handler(_signum: int, _frame: object) -> None:
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, handler)

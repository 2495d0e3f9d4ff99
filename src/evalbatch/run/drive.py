"""The one driving loop: take the run's lease, advance until a goal is reached (done, all
submitted, or one step), retry transient provider errors, poll less often while nothing moves,
and release the lease. `run`, `run --detach` and `collect [--wait]` all go through it."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Literal, Protocol

from ..errors import ProviderError, RunLeased
from ..records import TERMINAL_RUN, RunStatus
from ..store.db import Store
from ..store.leases import holder_process, new_holder
from .progress import Progress

# done: until the run is done (or stops for a person); submitted: until everything due is
# submitted (`--detach`); once: one advance (`collect` from cron).
Until = Literal["done", "submitted", "once"]


class Drivable(Protocol):
    """What the loop needs of a run's driver (the engine's Runner)."""

    store: Store
    run_id: str
    progress: Progress

    def advance(self, *, resume: bool = False) -> RunStatus: ...
    def status(self) -> RunStatus: ...
    def submitted_all(self) -> bool: ...
    def progress_mark(self) -> tuple[str, int, int]: ...
    def close(self) -> None: ...


def drive(
    runner: Drivable,
    *,
    until: Until,
    resume: bool = False,
    poll_s: float = 0.5,
    max_poll_s: float = 30.0,
    max_transient: int | None = 8,
) -> RunStatus:
    """Advance ``runner``'s run under its lease until ``until``; returns its status.

    A retryable provider error is retried (after the usual pause) up to ``max_transient`` times
    in a row (None: without end), then raised; the journal keeps every handle, so nothing is
    lost. Raises RunLeased when another collector holds the run."""
    store, run_id = runner.store, runner.run_id
    holder = new_holder()
    held = store.leases.acquire(run_id, holder)
    if held is not None:
        since = (
            datetime.fromtimestamp(held.acquired_at).strftime("%Y-%m-%d %H:%M:%S")
            if held.acquired_at
            else None
        )
        raise RunLeased(run_id, holder_process(held.holder), since)
    transient = 0
    delay = poll_s
    last_mark: tuple[str, int, int] | None = None
    first = True
    try:
        while True:
            try:
                status = runner.advance(resume=resume and first)
                transient = 0
            except ProviderError as exc:
                transient += 1
                if not exc.retryable or (max_transient is not None and transient > max_transient):
                    raise
                runner.progress.status(f"provider error, retrying: {exc}")
                status = runner.status()
            first = False
            if _reached(runner, status, until):
                return status
            store.leases.acquire(run_id, holder)  # renew
            mark = runner.progress_mark()
            if mark != last_mark:  # something moved: look again soon
                last_mark, delay = mark, poll_s
            time.sleep(delay)
            delay = min(delay * 1.5, max_poll_s)
    finally:
        runner.progress.done()
        store.leases.release(run_id, holder)
        runner.close()


def _reached(runner: Drivable, status: RunStatus, until: Until) -> bool:
    if status in TERMINAL_RUN or until == "once":
        return True
    return until == "submitted" and runner.submitted_all()

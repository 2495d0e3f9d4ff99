"""The one driving loop: take the run's lease, advance until a goal is reached (done, all
submitted, or one step), retry transient provider errors, poll less often while nothing moves,
and release the lease. `run`, `run --detach` and `collect [--wait]` all go through it.

While it drives, a background thread renews the lease (a long step, such as streaming 100,000
results in, must not look like a dead collector); a lease found lost stops the loop."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Literal, Protocol

from ..errors import ProviderError, RunLeased
from ..records import TERMINAL_RUN, RunStatus
from ..store.db import Store
from ..store.leases import holder_process, lease_seconds, new_holder
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
        with _heartbeat(store, run_id, holder) as lost:
            while True:
                try:
                    status = runner.advance(resume=resume and first)
                    transient = 0
                except ProviderError as exc:
                    transient += 1
                    if not exc.retryable or (
                        max_transient is not None and transient > max_transient
                    ):
                        raise
                    runner.progress.status(f"provider error, retrying: {exc}")
                    status = runner.status()
                first = False
                if _reached(runner, status, until):
                    return status
                if lost.is_set() or not store.leases.renew(run_id, holder):
                    raise _lost(store, run_id)
                mark = runner.progress_mark()
                if mark != last_mark:  # something moved: look again soon
                    last_mark, delay = mark, poll_s
                time.sleep(delay)
                delay = min(delay * 1.5, max_poll_s)
    finally:
        runner.progress.done()
        store.leases.release(run_id, holder)
        runner.close()


@contextmanager
def _heartbeat(store: Store, run_id: str, holder: str) -> Iterator[threading.Event]:
    """Renew the lease every third of its life while the block runs; the event is set when a
    renewal finds the lease lost (then the holder's next intent is refused too: store fence)."""
    lost, done = threading.Event(), threading.Event()
    every = max(0.5, lease_seconds() / 3)

    def beat() -> None:
        while not done.wait(every):
            if not store.leases.renew(run_id, holder):
                lost.set()
                return

    thread = threading.Thread(target=beat, name=f"lease-{run_id}", daemon=True)
    thread.start()
    try:
        yield lost
    finally:
        done.set()
        thread.join()


def _lost(store: Store, run_id: str) -> RunLeased:
    held = store.leases.holder(run_id)
    who = holder_process(held.holder) if held else "nobody"
    return RunLeased(run_id, f"{who} (this collector's lease expired)", None)


def _reached(runner: Drivable, status: RunStatus, until: Until) -> bool:
    if status in TERMINAL_RUN or until == "once":
        return True
    return until == "submitted" and runner.submitted_all()

"""Advancing a sweep: one batch path for all its variant runs, so every step's requests go out
together (shared prefixes side by side across variants, chunked to the provider's limits), and
each run then moves on by itself from what the store holds. In sync mode the runs go one after
another. The same journal, leases, retries and budget apply as for a run."""

from __future__ import annotations

import contextlib

from ..catalog import Catalog, load_catalog
from ..errors import ProviderError, RunNeedsAttention
from ..records import GENERATE, GRADE, TERMINAL_RUN, RunStatus, Step
from ..store.db import Store
from .batch import BatchPath
from .budget import Budget
from .drive import Until, drive
from .engine import ProviderFactory, Runner
from .progress import NullProgress, Progress
from .providers import ProviderPool
from .scope import BatchScope, RunIO


class SweepRunner:
    """Drives a sweep; `drive` treats it like a run (its lease is the sweep's id)."""

    def __init__(
        self,
        store: Store,
        sweep_id: str,
        provider_factory: ProviderFactory,
        progress: Progress | None = None,
        catalog: Catalog | None = None,
    ) -> None:
        self.store = store
        self.run_id = sweep_id  # the lease and the messages name the sweep
        self.sweep_id = sweep_id
        self.progress: Progress = progress or NullProgress()
        self.catalog = catalog or load_catalog()
        # One pool for every variant run: each provider is opened once for the sweep.
        self.providers = ProviderPool(provider_factory, self.catalog)
        record = store.sweeps.get(sweep_id)
        self.mode = record.mode
        self.budget = Budget.of(record.spec.get("budget_usd"))
        self.runners = [
            Runner(store, run_id, self.providers.named, self.progress, self.catalog)
            for run_id in store.sweeps.run_ids(sweep_id)
        ]

    def close(self) -> None:
        self.providers.close()

    def status(self) -> RunStatus:
        return self.store.sweeps.get(self.sweep_id).status

    def run(
        self, *, detach: bool = False, poll_s: float = 0.5, max_poll_s: float = 30.0
    ) -> RunStatus:
        until: Until = "submitted" if detach else "done"
        return drive(self, until=until, poll_s=poll_s, max_poll_s=max_poll_s)

    def scope(self) -> BatchScope:
        return BatchScope(
            lead=self.runners[0].run_id,
            runs={r.run_id: RunIO(r.ingest, r.ttl) for r in self.runners},
            sweep_id=self.sweep_id,
        )

    def _path(self) -> BatchPath:
        return BatchPath(self.store, self.providers, self.scope())

    # -- the state machine ----------------------------------------------------------------
    def advance(self, *, resume: bool = False) -> RunStatus:
        status = self.status()
        if status == "canceling":
            return self._wind_down()
        if status in ("done", "canceled"):
            return status
        if self.mode == "sync":
            for runner in self.runners:
                if runner.status() not in TERMINAL_RUN or resume:
                    self._settle(runner, resume=resume, io=True)
            return self._record_status()
        path = self._path()
        try:
            path.reconcile_intents()
            for step in (GENERATE, GRADE):
                self.progress.batches(step, path.poll(step))
            for runner in self.runners:
                self._settle(runner, resume=resume, io=False)
            steps: tuple[Step, ...] = (GENERATE, GRADE)
            for step in steps:
                if self.store.requests.pending_ids_of(self.scope().max_attempts(), step):
                    self._check_budget(step)
                    for runner in self.runners:
                        if runner.status() == step:
                            runner.warm(step)
                    path.submit_pending(step)
        except ProviderError as exc:
            if exc.retryable:
                raise
            self.store.sweeps.set_status(self.sweep_id, "needs_attention", f"{exc}")
            raise RunNeedsAttention(f"sweep {self.sweep_id}: {exc}") from exc
        except RunNeedsAttention as exc:
            self.store.sweeps.set_status(self.sweep_id, "needs_attention", str(exc))
            raise
        for runner in self.runners:  # grading planned above may already be all done
            self._settle(runner, resume=False, io=False)
        return self._record_status()

    def _settle(self, runner: Runner, *, resume: bool, io: bool) -> None:
        """Move one run on; a run that needs a person is recorded, the others go on."""
        if runner.status() in ("done", "canceled") or (
            runner.status() == "needs_attention" and not resume
        ):
            return
        # a run that needs a person is recorded on the run; the sweep reports it when nothing
        # else can move
        with contextlib.suppress(RunNeedsAttention):
            runner.advance(resume=resume, io=io)

    def _record_status(self) -> RunStatus:
        statuses = [r.status() for r in self.runners]
        status: RunStatus
        if all(s == "done" for s in statuses):
            status = "done"
        elif all(s in TERMINAL_RUN for s in statuses):
            status = "needs_attention"
        elif any(s == GRADE for s in statuses) and not any(s == GENERATE for s in statuses):
            status = GRADE
        else:
            status = GENERATE
        errors = [
            f"{r.run_id}: {self.store.runs.get(r.run_id).error}"
            for r, s in zip(self.runners, statuses, strict=True)
            if s == "needs_attention"
        ]
        self.store.sweeps.set_status(self.sweep_id, status, "; ".join(errors) or None)
        if status == "needs_attention":
            raise RunNeedsAttention(f"sweep {self.sweep_id}: " + "; ".join(errors))
        return status

    def _check_budget(self, step: str) -> None:
        spent = sum(self.store.results.spent(r.run_id) for r in self.runners)
        pending = len(self.store.requests.pending_ids_of(self.scope().max_attempts(), GENERATE))
        self.budget.check_spent(spent, pending, step=step, run_id=self.sweep_id)

    def submitted_all(self) -> bool:
        status = self.status()
        if status not in (GENERATE, GRADE) or self.mode == "sync":
            return status not in (GENERATE, GRADE)
        scope = self.scope()
        pending = any(
            self.store.requests.pending_ids_of(scope.max_attempts(), step)
            for step in (GENERATE, GRADE)
        )
        return not pending and not self.store.batches.intents(scope.lead, self.sweep_id)

    def progress_mark(self) -> tuple[str, int, int]:
        marks = [r.progress_mark() for r in self.runners]
        return self.status(), sum(m[1] for m in marks), sum(m[2] for m in marks)

    def attach(self, provider_batch_id: str) -> None:
        self._path().attach(provider_batch_id)

    def resubmit_unconfirmed(self) -> int:
        return self._path().resubmit_intents()

    def unconfirmed_batches(self) -> int:
        return len(self.store.batches.intents(self.scope().lead, self.sweep_id))

    # -- cancel -----------------------------------------------------------------------------
    def cancel(self) -> tuple[RunStatus, int]:
        canceled = 0
        still_open = False
        if self.mode == "batch":
            path = self._path()
            canceled = path.cancel()
            still_open = bool(
                path.open_batches() or self.store.batches.intents(self.scope().lead, self.sweep_id)
            )
        status: RunStatus = "canceling" if still_open else "canceled"
        for runner in self.runners:
            if runner.status() not in ("done", "canceled"):
                self.store.runs.set_status(runner.run_id, status)
        self.store.sweeps.set_status(self.sweep_id, status)
        return status, canceled

    def _wind_down(self) -> RunStatus:
        path = self._path()
        path.reconcile_intents()
        path.cancel()
        for step in (GENERATE, GRADE):
            path.poll(step)
        if path.open_batches():
            return "canceling"
        for runner in self.runners:
            if runner.status() == "canceling":
                self.store.runs.set_status(runner.run_id, "canceled")
        self.store.sweeps.set_status(self.sweep_id, "canceled")
        return "canceled"

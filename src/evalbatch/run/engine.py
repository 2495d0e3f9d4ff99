"""The run state machine. A Run lives in the store; `advance` reads what is done and does the
next thing, so a crash anywhere is recovered by calling `advance` again.

    generate ──(every generate Request final)──▶ grade ──▶ score ──▶ done
         └──────────── canceled / needs_attention (a person must look) ─────────┘
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..catalog import Catalog, load_catalog
from ..errors import ProviderError, RunNeedsAttention
from ..graders import build_grader
from ..graders.base import Grader
from ..graders.reference import with_references
from ..graders.rubric import PairwiseGrader
from ..plan.caching import cache_ttl
from ..plan.requests import GeneratedCase, plan_grade
from ..plan.routing import Router
from ..providers.base import ProviderFactory
from ..records import GENERATE, GRADE, Case, Mode, RequestStatus, RunStatus, Step
from ..store.db import Store
from ..suite.schema import Suite
from . import failpoints
from .batch import BatchPath
from .budget import Budget
from .drive import Until, drive
from .ingest import IngestContext
from .progress import NullProgress, Progress
from .providers import ProviderPool
from .reference import score_references
from .scope import BatchScope
from .scoring import score_run
from .sync import SyncPath
from .warming import plan_warm, run_warm

__all__ = ["LoadedRun", "ProviderFactory", "Runner", "load_run"]


@dataclass(frozen=True)
class LoadedRun:
    """A stored run with its Suite parsed back (collect never rereads the suite's files)."""

    id: str
    status: RunStatus
    mode: Mode
    suite: Suite
    options: dict[str, Any]


def load_run(store: Store, run_id: str) -> LoadedRun:
    record = store.runs.get(run_id)
    return LoadedRun(
        record.id,
        record.status,
        record.mode,
        Suite.model_validate_json(record.suite_json),
        record.options,
    )


class Runner:
    """Advances one run. Holds no run state of its own beyond what it reloads from the store."""

    def __init__(
        self,
        store: Store,
        run_id: str,
        provider_factory: ProviderFactory,
        progress: Progress | None = None,
        catalog: Catalog | None = None,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.catalog = catalog or load_catalog()
        self.progress: Progress = progress or NullProgress()
        # One provider per vendor the run's models need, opened when first used.
        self.providers = ProviderPool(provider_factory, self.catalog)
        state = load_run(store, run_id)
        self.suite = state.suite
        self.mode: Mode = state.mode
        self.options = state.options
        self.graders: list[Grader] = [
            build_grader(s, self.suite.base_dir) for s in self.suite.grade
        ]
        self.ingest = IngestContext(
            run_id,
            self.mode,
            int(self.options.get("retries", 2)),
            str(self.options["strongest"]),
            self.catalog,
        )
        self.ttl = cache_ttl(self.mode, self.suite.cache)

    def close(self) -> None:
        self.providers.close()

    def status(self) -> RunStatus:
        return self.store.runs.status(self.run_id)

    def run(
        self,
        *,
        detach: bool = False,
        poll_s: float = 0.5,
        max_poll_s: float = 30.0,
        max_transient: int = 8,
    ) -> RunStatus:
        """Advance until done (or, detached, until everything due is submitted)."""
        until: Until = "submitted" if detach else "done"
        return drive(
            self, until=until, poll_s=poll_s, max_poll_s=max_poll_s, max_transient=max_transient
        )

    # -- the state machine ----------------------------------------------------------------
    def advance(self, *, resume: bool = False, io: bool = True) -> RunStatus:
        """Do the next things that can be done now; returns the run's status after.

        With ``resume``, a run in needs_attention goes back to its active step and tries again
        (what `collect` does after a person fixed the cause). Without ``io`` the run only moves
        on from what the store holds (a sweep talks to the provider for all its runs at once)."""
        status = self.status()
        if resume and status == "needs_attention":
            status = self.store.runs.active_step(self.run_id)
            self.store.requests.refresh_tries(self.run_id)
            self.store.runs.set_status(self.run_id, status)
        try:
            if status == "canceling":
                return self._wind_down()
            if status == GENERATE and self._advance_step(GENERATE, io):
                status = self._finish_generate()
                failpoints.hit("grade.after_plan")
            if status == GRADE and self._advance_step(GRADE, io):
                status = "score"
                self.store.runs.set_status(self.run_id, status)
            if status == "score":
                failpoints.hit("score.before")
                self.progress.status("scoring")
                for warning in (w for g in self.graders for w in g.warnings()):
                    self.progress.status(f"warning: {warning}")
                score_run(self.store, self.run_id, self.graders, self.suite.epochs)
                score_references(self.store, self.run_id, self.graders, self.suite.epochs)
                status = "done"
                self.store.runs.set_status(self.run_id, status)
                self.store.refresh_statistics()  # the report's queries plan on this run's rows
        except RunNeedsAttention as exc:
            self.store.runs.set_status(self.run_id, "needs_attention", str(exc))
            raise
        return status

    def _wind_down(self) -> RunStatus:
        """A canceled run: collect what its batches finished, then it is canceled."""
        path = self._batch_path()
        path.reconcile_intents()  # a batch whose handle was lost may be running: find it first
        path.cancel()  # and one adopted since the cancel (collect --attach) is canceled now
        for step in (GENERATE, GRADE):
            path.poll(step)
        if path.open_batches():
            return "canceling"
        self.store.runs.set_status(self.run_id, "canceled")
        return "canceled"

    def cancel(self) -> tuple[RunStatus, int]:
        """Cancel the run's provider batches; returns (new status, batches canceled). With
        batches still winding down the run stays open as `canceling`: what they finished before
        the cancel is billed, so `collect` stores it, then marks the run canceled."""
        canceled, still_open = 0, False
        if self.mode == "batch":
            path = self._batch_path()
            canceled = path.cancel()
            # an intent without a handle may be running at the provider: not canceled yet
            still_open = bool(path.open_batches() or self.store.batches.intents(self.run_id))
        status: RunStatus = "canceling" if still_open else "canceled"
        self.store.runs.set_status(self.run_id, status)
        return status, canceled

    def unconfirmed_batches(self) -> int:
        """Batches whose provider id was never stored (a crash, or listing failed)."""
        return len(self.store.batches.intents(self.run_id))

    def attach(self, provider_batch_id: str) -> None:
        """Adopt a provider batch for one of the run's unconfirmed intents (checked)."""
        self._batch_path().attach(provider_batch_id)

    def resubmit_unconfirmed(self) -> int:
        """Send again the requests of intents a person checked never reached the provider."""
        return self._batch_path().resubmit_intents()

    def submitted_all(self) -> bool:
        """True when the current step has nothing left to submit (what `--detach` waits for)."""
        status = self.status()
        if status not in (GENERATE, GRADE):
            return True
        step: Step = GENERATE if status == GENERATE else GRADE
        pending = self.store.requests.count(self.run_id, step, ("pending",))
        return pending == 0 and not self.store.batches.intents(self.run_id)

    def progress_mark(self) -> tuple[str, int, int]:
        return self.store.runs.progress_mark(self.run_id)

    def spent(self) -> float:
        return self.store.results.spent(self.run_id)

    def _advance_step(self, step: Step, io: bool = True) -> bool:
        """Advance one step; True when every request of it has its result."""
        if io and self.mode == "sync":
            self._advance_sync(step)
        elif io:
            self._advance_batches(step)
        if self._count(step, ("pending", "queued")) == 0:
            return self.mode == "sync" or not io or not self._batch_path().open_batches(step)
        self._stop_if_exhausted(step)
        return False

    def _advance_batches(self, step: Step) -> None:
        path = self._batch_path()
        try:
            path.reconcile_intents()
            infos = path.poll(step)
            self.progress.batches(step, infos)
            if self.store.requests.pending_ids(self.run_id, step, self.ingest.retries):
                self._check_budget(step)
                self.warm(step)
                path.submit_pending(step)
        except ProviderError as exc:
            if exc.retryable:
                raise
            raise RunNeedsAttention(f"{step}: {exc}") from exc

    def _stop_if_exhausted(self, step: Step) -> None:
        """Requests that used their tries on failures that are never results (5xx, transport,
        expiry, rate limits past patience) stay pending; once nothing else of the step is in
        flight, the run stops for a person (`collect` gives them their tries back)."""
        count, error = self.store.requests.exhausted(self.run_id, step, self.ingest.retries)
        if not count or self._count(step, ("queued",)):
            return
        if self.mode == "batch" and self._batch_path().open_batches(step):
            return
        raise RunNeedsAttention(
            f"{step}: {count} request(s) failed {self.ingest.retries + 1} times and are kept "
            f"pending (not counted as results); last error: {error}. Nothing is lost: fix the "
            f"cause, then: evalbatch collect {self.run_id}"
        )

    def warm(self, step: Step) -> None:
        """Write the step's shared prefixes into the cache with one sync request each (once)."""
        if not (self.suite.cache.warm and self.ttl):
            return
        if plan_warm(self.store, self.run_id, step, self.catalog):
            self.progress.status(f"{step}: warming the prompt cache")
            run_warm(self.store, self.providers, self.ingest, self.ttl, self._concurrency())

    def _check_budget(self, step: Step) -> None:
        """Stop submitting once actual spend crosses the budget (follow-ups, grading)."""
        budget = Budget.of(self.options.get("budget_usd"))
        budget.check_spent(
            self.spent(), self._count(step, ("pending",)), step=step, run_id=self.run_id
        )

    def _concurrency(self) -> int:
        return int(self.options.get("concurrency", self.suite.concurrency))

    def _advance_sync(self, step: Step) -> None:
        total = self._count(step, ("pending", "queued"))
        self.progress.start_sync(step, total)
        path = SyncPath(
            self.store,
            self.providers,
            self.ingest,
            self.ttl,
            self._concurrency(),
            on_done=self.progress.advance_sync,
        )
        try:
            path.run(step)
        finally:
            self.progress.end_sync()

    def _batch_path(self) -> BatchPath:
        return BatchPath(self.store, self.providers, BatchScope.single(self.ingest, self.ttl))

    def _finish_generate(self) -> RunStatus:
        model_graders = with_references(self.graders)
        routers = {g.name: Router(g.model, self.suite.routing, self.catalog) for g in model_graders}
        planned = plan_grade(model_graders, routers, self._generated(), self._baseline_lookup())
        status: RunStatus = GRADE if model_graders else "score"
        self.store.runs.start_grading(self.run_id, planned, status)
        return status

    def _generated(self) -> Iterator[GeneratedCase]:
        for g in self.store.results.iter_generated(self.run_id):
            yield g.case_idx, Case.from_json(g.case_json), g.epoch, g.text

    def _baseline_lookup(self) -> Callable[[str, str, int], str | None] | None:
        """For pairwise graders: the baseline run's output for a case and epoch."""
        baselines = {g.name: g.baseline_run for g in self.graders if isinstance(g, PairwiseGrader)}
        if not baselines:
            return None
        outputs = {name: self.store.results.outputs(run) for name, run in baselines.items()}

        def lookup(grader: str, case_id: str, epoch: int) -> str | None:
            found = outputs[grader]
            return found.get((case_id, epoch), found.get((case_id, 0)))

        return lookup

    def _count(self, step: Step, statuses: tuple[RequestStatus, ...]) -> int:
        return self.store.requests.count(self.run_id, step, statuses)

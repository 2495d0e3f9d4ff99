"""The run state machine. A Run lives in the store; `advance` reads what is done and does the
next thing, so a crash anywhere is recovered by calling `advance` again.

    generate ──(every generate Request final)──▶ grade ──▶ score ──▶ done
         └──────────── canceled / needs_attention (a person must look) ─────────┘
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import and_, func, select, update
from sqlalchemy.engine import Engine

from ..catalog.models import Catalog, load_catalog
from ..errors import ProviderError, RunNeedsAttention
from ..graders import build_grader
from ..graders.base import Grader, ModelGrader
from ..plan.caching import cache_ttl
from ..plan.grade import Generated, plan_grade
from ..plan.routing import Router
from ..plan.steps import GENERATE, GRADE
from ..providers.base import Provider
from ..store import leases, schema
from ..store.requests import insert_planned
from ..suite.load import Suite
from . import failpoints
from .batch import BatchLimits, BatchPath
from .ingest import IngestContext
from .progress import NullProgress, Progress
from .scoring import case_from_row, score_run

TERMINAL = ("done", "canceled", "needs_attention")
ProviderFactory = Callable[[], Provider]


@dataclass
class RunState:
    id: str
    status: str
    mode: str
    suite: Suite
    options: dict[str, Any]


def load_run(engine: Engine, run_id: str) -> RunState:
    from ..errors import NotFound

    with engine.connect() as conn:
        row = conn.execute(select(schema.runs).where(schema.runs.c.id == run_id)).first()
    if row is None:
        raise NotFound(f"no run {run_id!r} in the store (see `evalbatch runs`)")
    return RunState(
        row.id,
        row.status,
        row.mode,
        Suite.model_validate_json(row.suite),
        orjson.loads(row.options),
    )


def set_budget(engine: Engine, run_id: str, budget_usd: float) -> None:
    """A new spend limit for a run (after a budget stop put it in needs_attention)."""
    with engine.begin() as conn:
        raw = conn.execute(select(schema.runs.c.options).where(schema.runs.c.id == run_id)).scalar()
        options = {**orjson.loads(raw or "{}"), "budget_usd": budget_usd}
        conn.execute(
            update(schema.runs)
            .where(schema.runs.c.id == run_id)
            .values(options=orjson.dumps(options).decode())
        )


def set_status(engine: Engine, run_id: str, status: str, error: str | None = None) -> None:
    values: dict[str, Any] = {"status": status, "updated_at": time.time(), "error": error}
    if status in TERMINAL:
        values["finished_at"] = time.time()
    with engine.begin() as conn:
        conn.execute(update(schema.runs).where(schema.runs.c.id == run_id).values(**values))


class Runner:
    """Advances one run. Holds no run state of its own beyond what it reloads from the store."""

    def __init__(
        self,
        engine: Engine,
        run_id: str,
        provider_factory: ProviderFactory,
        progress: Progress | None = None,
        catalog: Catalog | None = None,
    ) -> None:
        self.engine = engine
        self.run_id = run_id
        self.catalog = catalog or load_catalog()
        self.progress = progress or NullProgress()
        self._provider_factory = provider_factory
        self._provider: Provider | None = None
        state = load_run(engine, run_id)
        self.suite = state.suite
        self.mode = state.mode
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

    @property
    def provider(self) -> Provider:
        if self._provider is None:
            self._provider = self._provider_factory()
        return self._provider

    def close(self) -> None:
        if self._provider is not None:
            self._provider.close()

    def status(self) -> str:
        return load_run(self.engine, self.run_id).status

    # -- the state machine ----------------------------------------------------------------
    def advance(self, *, resume: bool = False) -> str:
        """Do the next things that can be done now; returns the run's status after.

        With ``resume``, a run in needs_attention goes back to its active step and tries again
        (what `collect` does after a person fixed the cause)."""
        status = self.status()
        if resume and status == "needs_attention":
            status = self._active_step()
            set_status(self.engine, self.run_id, status)
        try:
            if status == "canceling":
                return self._wind_down()
            if status == GENERATE and self._advance_step(GENERATE):
                status = self._finish_generate()
                failpoints.hit("grade.after_plan")
            if status == GRADE and self._advance_step(GRADE):
                status = "score"
                set_status(self.engine, self.run_id, status)
            if status == "score":
                failpoints.hit("score.before")
                self.progress.status("scoring")
                score_run(self.engine, self.run_id, self.graders, self.suite.epochs)
                status = "done"
                set_status(self.engine, self.run_id, status)
        except RunNeedsAttention as exc:
            set_status(self.engine, self.run_id, "needs_attention", str(exc))
            raise
        return status

    def _wind_down(self) -> str:
        """A canceled run: collect what its batches finished, then it is canceled."""
        path = self._batch_path()
        for step in (GENERATE, GRADE):
            path.poll(step)
        if path.open_batches():
            return "canceling"
        set_status(self.engine, self.run_id, "canceled")
        return "canceled"

    def cancel(self) -> tuple[str, int]:
        """Cancel the run's provider batches; returns (new status, batches canceled). With
        batches still winding down the run stays open as `canceling`: what they finished before
        the cancel is billed, so `collect` stores it, then marks the run canceled."""
        canceled, still_open = 0, False
        if self.mode == "batch":
            path = self._batch_path()
            canceled = path.cancel()
            still_open = bool(path.open_batches())
        status = "canceling" if still_open else "canceled"
        set_status(self.engine, self.run_id, status)
        return status, canceled

    def _active_step(self) -> str:
        st = schema.steps.c
        with self.engine.connect() as conn:
            names = set(
                conn.execute(
                    select(st.name).where(and_(st.run_id == self.run_id, st.status == "active"))
                ).scalars()
            )
        return GRADE if GRADE in names else GENERATE

    def submitted_all(self) -> bool:
        """True when the current step has nothing left to submit (what `--detach` waits for)."""
        status = self.status()
        if status not in (GENERATE, GRADE):
            return True
        return self._count(status, ("pending",)) == 0 and not self._intents()

    def _advance_step(self, step: str) -> bool:
        if self.mode == "sync":
            return self._advance_sync(step)
        path = self._batch_path()
        try:
            path.reconcile_intents()
            infos = path.poll(step)
            self.progress.batches(step, infos)
            if self._count(step, ("pending",)):
                self._check_budget(step)
                self._warm(step)
                path.submit_pending(step)
        except ProviderError as exc:
            if exc.retryable:
                raise
            raise RunNeedsAttention(f"{step}: {exc}") from exc
        return self._count(step, ("pending", "queued")) == 0 and not path.open_batches(step)

    def _warm(self, step: str) -> None:
        if not (self.suite.cache.warm and self.ttl):
            return
        from .warming import plan_warm, run_warm

        if plan_warm(self.engine, self.run_id, step, self.catalog):
            self.progress.status(f"{step}: warming the prompt cache")
            run_warm(
                self.engine,
                self.provider,
                self.ingest,
                self.ttl,
                int(self.options.get("concurrency", self.suite.concurrency)),
            )

    def spent(self) -> float:
        res = schema.results.c
        with self.engine.connect() as conn:
            return float(
                conn.execute(
                    select(func.coalesce(func.sum(res.cost_usd), 0.0)).where(
                        res.run_id == self.run_id
                    )
                ).scalar()
                or 0.0
            )

    def _check_budget(self, step: str) -> None:
        """Stop submitting once actual spend crosses the budget (follow-ups, grading)."""
        budget = self.options.get("budget_usd")
        if budget is None:
            return
        spent = self.spent()
        if spent >= float(budget):
            pending = self._count(step, ("pending",))
            raise RunNeedsAttention(
                f"budget ${float(budget):,.2f} reached (spent ${spent:,.2f}); {pending} {step} "
                f"request(s) not submitted. To go on: evalbatch collect {self.run_id} --budget USD"
            )

    def _advance_sync(self, step: str) -> bool:
        from .sync import SyncPath

        total = self._count(step, ("pending", "queued"))
        self.progress.start_sync(step, total)
        path = SyncPath(
            self.engine,
            self.provider,
            self.ingest,
            self.ttl,
            int(self.options.get("concurrency", self.suite.concurrency)),
            on_done=self.progress.advance_sync,
        )
        path.run(step)
        self.progress.end_sync()
        return self._count(step, ("pending", "queued")) == 0

    def _batch_path(self) -> BatchPath:
        return BatchPath(
            self.engine,
            self.provider,
            self.ingest,
            self.ttl,
            BatchLimits.from_catalog(self.catalog),
        )

    def _finish_generate(self) -> str:
        model_graders = [g for g in self.graders if isinstance(g, ModelGrader)]
        routers = {g.name: Router(g.model, self.suite.routing, self.catalog) for g in model_graders}
        with self.engine.begin() as conn:
            planned = plan_grade(model_graders, routers, self._generated())
            insert_planned(conn, self.run_id, planned)
            conn.execute(
                update(schema.steps)
                .where(and_(schema.steps.c.run_id == self.run_id, schema.steps.c.name == GENERATE))
                .values(status="done", done_at=time.time())
            )
            conn.execute(
                schema.steps.insert().values(
                    run_id=self.run_id, name=GRADE, status="active", planned_at=time.time()
                )
            )
            status = GRADE if model_graders else "score"
            conn.execute(
                update(schema.runs)
                .where(schema.runs.c.id == self.run_id)
                .values(status=status, updated_at=time.time())
            )
        return status

    def _generated(self) -> Iterator[Generated]:
        r, res, c = schema.requests.c, schema.results.c, schema.cases.c
        query = (
            select(r.case_idx, r.epoch, res.text, c.data)
            .select_from(
                schema.requests.join(schema.results, res.request_id == r.id).join(
                    schema.cases, and_(c.run_id == r.run_id, c.idx == r.case_idx)
                )
            )
            .where(and_(r.run_id == self.run_id, r.step == GENERATE, res.kind == "succeeded"))
            .order_by(r.idx)
        )
        with self.engine.connect() as conn:
            for row in conn.execution_options(yield_per=1000).execute(query):
                yield row.case_idx, case_from_row(row.data), row.epoch, row.text or ""

    def _count(self, step: str, statuses: tuple[str, ...]) -> int:
        r = schema.requests.c
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).where(
                        and_(r.run_id == self.run_id, r.step == step, r.status.in_(statuses))
                    )
                ).scalar()
                or 0
            )

    def _progress_mark(self) -> tuple[str | None, int, int]:
        """(status, batches, results): changes whenever the run made progress."""
        with self.engine.connect() as conn:
            batches = conn.execute(
                select(func.count()).where(schema.batches.c.run_id == self.run_id)
            ).scalar()
            results = conn.execute(
                select(func.count()).where(schema.results.c.run_id == self.run_id)
            ).scalar()
        return self.status(), int(batches or 0), int(results or 0)

    def _intents(self) -> bool:
        b = schema.batches.c
        with self.engine.connect() as conn:
            return bool(
                conn.execute(
                    select(func.count()).where(and_(b.run_id == self.run_id, b.status == "intent"))
                ).scalar()
            )

    # -- driving it -----------------------------------------------------------------------
    def run(
        self,
        *,
        detach: bool = False,
        poll_s: float = 0.5,
        max_poll_s: float = 30.0,
        max_transient: int = 8,
    ) -> str:
        """Advance until done (or, detached, until everything due is submitted)."""
        holder = leases.new_holder()
        held_by = leases.acquire(self.engine, self.run_id, holder)
        if held_by is not None:
            raise ProviderError(f"run {self.run_id} is being advanced by {held_by}; try later")
        transient = 0
        delay = poll_s
        last_mark: tuple[str | None, int, int] = (None, 0, 0)
        try:
            while True:
                try:
                    status = self.advance()
                    transient = 0
                except ProviderError as exc:
                    transient += 1
                    if not exc.retryable or transient > max_transient:
                        raise
                    self.progress.status(f"provider error, retrying: {exc}")
                    status = self.status()
                if status in TERMINAL or (detach and self.submitted_all()):
                    return status
                leases.acquire(self.engine, self.run_id, holder)
                mark = self._progress_mark()
                if mark != last_mark:  # something moved: look again soon
                    last_mark, delay = mark, poll_s
                time.sleep(delay)
                delay = min(delay * 1.5, max_poll_s)
        finally:
            leases.release(self.engine, self.run_id, holder)
            self.close()

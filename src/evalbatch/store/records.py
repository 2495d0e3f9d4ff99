"""What the store's reads return: frozen, typed records. The run machinery, the analysis and the
renderers consume these; none of them sees a row, a connection or a query.

Importing this module imports no SQLAlchemy: renderers depend on it alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..records import BatchStatus, Mode, RequestStatus, RunStatus, Step


@dataclass(frozen=True)
class RunRecord:
    """One run as stored. ``suite_json`` is the resolved Suite (collect never rereads files)."""

    id: str
    suite_name: str
    suite_path: str
    status: RunStatus
    mode: Mode
    manifest_hash: str
    manifest: dict[str, Any]
    suite_json: str
    options: dict[str, Any]
    created_at: float
    updated_at: float
    finished_at: float | None
    error: str | None
    case_count: int
    sweep_id: str | None = None
    variant: str | None = None


@dataclass(frozen=True)
class NewRun:
    """What `create_run` writes in its one transaction (besides cases and requests)."""

    id: str
    suite_name: str
    suite_path: str
    mode: Mode
    manifest_hash: str
    manifest: dict[str, Any]
    suite_json: str
    options: dict[str, Any]
    case_count: int
    sweep_id: str | None = None
    variant: str | None = None


@dataclass(frozen=True)
class SweepRecord:
    """A sweep: variants of one suite, each a run, submitted together."""

    id: str
    suite_name: str
    suite_path: str
    status: RunStatus
    mode: Mode
    spec: dict[str, Any]  # axes, variants (name, settings, run id), reference, margin, options
    created_at: float
    updated_at: float
    finished_at: float | None
    error: str | None


@dataclass(frozen=True)
class StoredRequest:
    """A Request as stored; ``messages`` and ``extra`` stay JSON text until a body is built."""

    id: int
    run_id: str
    step: Step
    idx: int
    case_idx: int
    case_id: str
    epoch: int
    grader: str | None
    model: str
    route: str | None
    prefix_id: int | None
    messages: str
    max_tokens: int
    extra: str | None
    status: RequestStatus
    attempts: int
    batch_id: int | None
    input_estimate: int = 0
    last_error: str | None = None


@dataclass(frozen=True)
class StoredPrefix:
    id: int
    source: str
    sha256: str
    blocks: list[dict[str, Any]]
    tokens: int


def batch_label(run_id: str, batch_id: int) -> str:
    """The name a two-step provider knows a journal intent by (its batch's metadata and its
    input file's name), so that reconcile finds what a lost response made."""
    return f"evalbatch-{run_id}-b{batch_id}"


@dataclass(frozen=True)
class BatchRecord:
    """A batch of our journal: ``provider_batch_id`` is None while it is only an intent."""

    id: int
    run_id: str
    step: Step
    seq: int
    provider: str
    provider_batch_id: str | None
    status: BatchStatus
    request_count: int
    bytes: int
    created_at: float
    submitted_at: float | None
    ended_at: float | None
    expires_at: float | None
    counts: dict[str, int]
    polled_at: float | None
    poll_failures: int
    last_error: str | None
    upload_id: str | None = None  # a two-step provider's input file (m007)
    released_at: float | None = None  # when the provider's files of the batch were deleted

    @property
    def label(self) -> str:
        return batch_label(self.run_id, self.id)


@dataclass(frozen=True)
class StepResult:
    """A request of a step with its result, if any, for scoring."""

    status: RequestStatus
    last_error: str | None
    kind: str | None
    text: str | None
    error_type: str | None
    error_message: str | None


@dataclass(frozen=True)
class Generated:
    """A generation that succeeded: what grading and regrading build on."""

    case_idx: int
    case_json: str
    epoch: int
    text: str


@dataclass(frozen=True)
class ScoreRecord:
    case_idx: int
    case_id: str
    epoch: int
    grader: str
    grader_type: str
    passed: bool | None
    value: float | None
    explanation: str
    error: str | None


@dataclass(frozen=True)
class LeaseHolder:
    holder: str
    acquired_at: float | None
    expires_at: float


# -- report lines ---------------------------------------------------------------------------


@dataclass(frozen=True)
class GraderLine:
    name: str
    type: str
    scored: int
    passed: int
    failed: int
    errors: int
    mean_value: float | None

    @property
    def pass_rate(self) -> float | None:
        decided = self.passed + self.failed
        return self.passed / decided if decided else None


@dataclass(frozen=True)
class CostLine:
    step: Step
    model: str
    mode: Mode
    requests: int
    input_tokens: int
    output_tokens: int
    cache_write_tokens: int
    cache_read_tokens: int
    cost: float
    sync_cost: float
    nocache_cost: float
    norouting_cost: float
    naive_cost: float

    @property
    def cache_read_share(self) -> float:
        prompt = self.input_tokens + self.cache_write_tokens + self.cache_read_tokens
        return self.cache_read_tokens / prompt if prompt else 0.0


@dataclass(frozen=True)
class RouteLine:
    """Cost and score by route. A case's score belongs to the route its *generation* took."""

    step: Step
    route: str
    model: str
    requests: int
    cost: float
    naive_cost: float
    cases_scored: int
    cases_passed: int

    @property
    def pass_rate(self) -> float | None:
        return self.cases_passed / self.cases_scored if self.cases_scored else None


@dataclass(frozen=True)
class PrefixLine:
    """One shared prefix on one model: its prefix tokens over all requests, split into read from
    cache, written to cache, and uncached (``tokens x requests - read - written``, never < 0)."""

    source: str
    sha256: str
    model: str
    tokens: int
    requests: int
    read: int
    written: int
    uncached: int
    warning: str | None = None

    @property
    def read_share(self) -> float:
        return self._share(self.read)

    @property
    def written_share(self) -> float:
        return self._share(self.written)

    @property
    def uncached_share(self) -> float:
        return self._share(self.uncached)

    def _share(self, tokens: int) -> float:
        total = self.read + self.written + self.uncached
        return tokens / total if total else 0.0


@dataclass(frozen=True)
class WarmRequest:
    model: str
    cost_usd: float
    prefix_tokens: int


@dataclass(frozen=True)
class ErrorLine:
    step: str
    case_id: str
    grader: str | None
    kind: str
    error: str


@dataclass(frozen=True)
class ScoreView:
    grader: str
    type: str
    passed: bool | None
    value: float | None
    explanation: str
    error: str | None


@dataclass(frozen=True)
class CaseRow:
    """A case and epoch with its output and each grader's verdict, for the file reports."""

    case_id: str
    epoch: int
    input: Any
    target: Any
    output: str
    model: str
    scores: tuple[ScoreView, ...] = ()

    @property
    def status(self) -> str:
        if any(s.error for s in self.scores):
            return "error"
        return "pass" if all(s.passed for s in self.scores) else "fail"


@dataclass(frozen=True)
class RunListing:
    """One line of `runs`: the scoreboard over time."""

    id: str
    suite: str
    created_at: float
    mode: Mode
    status: RunStatus
    manifest_hash: str
    cases: int
    pass_rate: float | None
    cost_usd: float
    manifest_changed: bool = False


@dataclass(frozen=True)
class BatchView:
    seq: int
    step: Step
    provider_batch_id: str | None
    status: BatchStatus
    requests: int
    counts: dict[str, int]
    age_s: float
    expires_in_s: float | None
    retention_left_s: float
    last_error: str | None


@dataclass(frozen=True)
class RunState:
    """Where a run stands (`status`): request counts per step, its batches, warnings."""

    id: str
    suite: str
    status: RunStatus
    mode: Mode
    created_at: float
    age_s: float
    error: str | None
    requests: dict[str, dict[str, int]]
    batches: list[BatchView] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# -- writes that carry values ---------------------------------------------------------------


@dataclass(frozen=True)
class NewResult:
    """A final Outcome, priced: what `record_outcomes` stores for one request."""

    model: str
    mode: Mode
    kind: str
    text: str | None
    stop_reason: str | None
    input_tokens: int
    output_tokens: int
    cache_write_5m: int
    cache_write_1h: int
    cache_read: int
    service_tier: str | None
    cost_usd: float
    sync_cost_usd: float
    nocache_cost_usd: float
    norouting_cost_usd: float
    naive_cost_usd: float
    error_type: str | None
    error_message: str | None
    latency_ms: int | None


@dataclass(frozen=True)
class Disposition:
    """What an Outcome means for its request: its new status (``pending`` = send it again) and,
    when final, the result to store."""

    status: RequestStatus
    error: str | None = None
    result: NewResult | None = None


@dataclass
class IngestCounts:
    stored: int = 0
    requeued: int = 0
    skipped: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ScoreRow:
    """One grader's score of one case and epoch, to be written."""

    case_idx: int
    case_id: str
    epoch: int
    grader: str
    grader_type: str
    passed: bool | None
    value: float | None
    explanation: str
    error: str | None

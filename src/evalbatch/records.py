"""The domain vocabulary that crosses module boundaries: the closed sets (statuses, modes,
steps) as types, and the records every layer speaks: Case, Prefix, PlannedRequest, BatchInfo,
Usage, Outcome, Score.

A Suite has Cases; a Run has Steps (generate, grade); a Step sends Requests in Batches (or
synchronously); each Request gets an Outcome; graders turn outputs into Scores.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import orjson

# -- closed sets ------------------------------------------------------------------------------

Mode = Literal["batch", "sync"]
Step = Literal["generate", "grade", "warm"]
RunStatus = Literal[
    "generate", "grade", "score", "done", "canceling", "canceled", "needs_attention"
]
StepStatus = Literal["active", "done"]
RequestStatus = Literal["pending", "queued", "succeeded", "errored", "expired", "canceled"]
OutcomeKind = Literal["succeeded", "errored", "expired", "canceled"]
# intent: written before the provider call; abandoned: the provider never saw it.
BatchStatus = Literal[
    "intent", "in_progress", "canceling", "ended", "collected", "abandoned", "failed"
]
ProviderBatchStatus = Literal["in_progress", "canceling", "ended"]
# Why a request failed. Only "request" (the provider refused the request itself, e.g. an
# invalid_request_error) is ever a result; the others leave the request pending:
# transient (5xx, transport, expired), rate_limit (429 / 529 overloaded), auth (401 / 403: the
# key was rejected), endpoint (404 from the API's own path: the base URL is wrong).
ErrorClass = Literal["request", "transient", "rate_limit", "auth", "endpoint"]

MODES: Final[tuple[Mode, ...]] = ("batch", "sync")
GENERATE: Final = "generate"
GRADE: Final = "grade"
WARM: Final = "warm"  # one synchronous request per shared prefix before a batch
# A run in one of these has stopped moving; `collect` leaves done and canceled runs alone.
TERMINAL_RUN: Final[frozenset[RunStatus]] = frozenset({"done", "canceled", "needs_attention"})
CLOSED_RUN: Final[frozenset[RunStatus]] = frozenset({"done", "canceled"})
# A request in one of these has its final Outcome stored; it is never sent again.
FINAL_REQUEST: Final[frozenset[RequestStatus]] = frozenset(
    {"succeeded", "errored", "expired", "canceled"}
)
# A batch in one of these may still deliver results.
OPEN_BATCH: Final[frozenset[BatchStatus]] = frozenset({"in_progress", "canceling", "ended"})


# -- custom ids ---------------------------------------------------------------------------------

_STEP_LETTER: Final[dict[Step, str]] = {"generate": "g", "grade": "r", "warm": "w"}
_LETTER_STEP: Final[dict[str, Step]] = {v: k for k, v in _STEP_LETTER.items()}


def custom_id(run_id: str, step: Step, idx: int) -> str:
    """``{run_id}-g{idx}`` (generate), ``-r`` (grade), ``-w`` (warm): always matches
    ^[a-zA-Z0-9_-]{1,64}$ whatever the case ids are."""
    return f"{run_id}-{_STEP_LETTER[step]}{idx}"


def parse_custom_id(value: str) -> tuple[str, Step, int] | None:
    """custom_id -> (run_id, step, idx), or None when it is not one of ours."""
    run_id, _, tail = value.rpartition("-")
    if not run_id or len(tail) < 2 or tail[0] not in _LETTER_STEP or not tail[1:].isdigit():
        return None
    return run_id, _LETTER_STEP[tail[0]], int(tail[1:])


# -- records ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One eval case. ``vars`` are extra template variables; ``line`` is its line in ``source``."""

    id: str
    input: Any = None
    target: Any = None
    vars: dict[str, Any] = field(default_factory=dict)
    difficulty: str | None = None
    tags: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    line: int | None = None

    def content(self) -> dict[str, Any]:
        """What the case is (not where it sits): the part the manifest hashes and compare diffs."""
        return {
            "id": self.id,
            "input": self.input,
            "target": self.target,
            "vars": self.vars,
            "difficulty": self.difficulty,
            "tags": list(self.tags),
            "metadata": self.metadata,
        }

    def to_json(self) -> str:
        """The stored form: content plus where it came from."""
        return orjson.dumps({**self.content(), "source": self.source, "line": self.line}).decode()

    @classmethod
    def from_json(cls, data: str | bytes) -> Case:
        raw = orjson.loads(data)
        raw["tags"] = tuple(raw.get("tags") or ())
        return cls(**raw)

    def context(self) -> dict[str, Any]:
        """Template variables: the case's fields, with ``vars`` merged at the top level."""
        ctx: dict[str, Any] = {
            "id": self.id,
            "tags": list(self.tags),
            "metadata": self.metadata,
            "vars": self.vars,
        }
        # Absent fields stay undefined, so a template that uses one fails loudly (StrictUndefined)
        # instead of rendering "None".
        for key in ("input", "target", "difficulty"):
            value = getattr(self, key)
            if value is not None:
                ctx[key] = value
        ctx.update(self.vars)
        return ctx

    def shown_input(self) -> Any:
        """What a report shows as the case's input: ``input``, else its ``vars``."""
        return self.input if self.input is not None else self.vars

    def where(self, field_name: str | None = None) -> str:
        place = f"{self.source}:{self.line}" if self.line else self.source
        suffix = f"case {self.id!r}" + (f", field {field_name!r}" if field_name else "")
        return f"{place} ({suffix})" if place else suffix


@dataclass(frozen=True)
class Prefix:
    """A shared system prefix (a system prompt, a rubric): the blocks without cache_control, its
    content hash and its token count. Planned once per distinct text, stored once per run."""

    blocks: tuple[dict[str, Any], ...]
    tokens: int
    source: str  # where it came from: "generate.system", "grade.rubric"...
    sha256: str = ""

    def __post_init__(self) -> None:
        if not self.sha256:
            digest = hashlib.sha256(self.canonical()).hexdigest()
            object.__setattr__(self, "sha256", digest)

    def canonical(self) -> bytes:
        return orjson.dumps(list(self.blocks), option=orjson.OPT_SORT_KEYS)


@dataclass(frozen=True)
class PlannedRequest:
    """A Request before it is stored: what to send for one case, epoch and (grade) grader."""

    step: Step
    case_idx: int
    case_id: str
    epoch: int
    grader: str | None
    model: str
    route: str  # why this model: "model", "difficulty=hard", "rule 1: tags contains ..."
    prefix: Prefix | None
    messages: list[dict[str, Any]]
    max_tokens: int
    input_estimate: int = 0  # prompt tokens by the local tokenizer, prefix included
    extra: dict[str, Any] | None = None  # other Messages params (stop_sequences...)


@dataclass(frozen=True)
class BatchInfo:
    """A provider batch as last seen. Times are epoch seconds."""

    id: str
    status: ProviderBatchStatus
    counts: dict[str, int] = field(default_factory=dict)
    created_at: float = 0.0
    ended_at: float | None = None
    expires_at: float | None = None
    request_count: int = 0
    # Two-step providers (OpenAI) say which intent made a batch: the label evalbatch gave it
    # (metadata) and the input file it was created from.
    label: str | None = None
    upload_id: str | None = None


@dataclass(frozen=True)
class UploadInfo:
    """A batch input file at a two-step provider: its id, the label evalbatch named it with
    (None for a file evalbatch did not upload), and when it was created (epoch seconds)."""

    id: str
    label: str | None
    created_at: float


@dataclass(frozen=True)
class Usage:
    """Token usage of one result, as the provider reported it."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_5m: int = 0
    cache_write_1h: int = 0
    cache_read: int = 0
    service_tier: str | None = None

    @property
    def cache_write(self) -> int:
        return self.cache_write_5m + self.cache_write_1h

    @property
    def prompt_tokens(self) -> int:
        """Every input-side token: uncached + cache writes + cache reads."""
        return self.input_tokens + self.cache_write + self.cache_read


@dataclass(frozen=True)
class RateLimits:
    """What a provider said about its rate limits on one response: per bucket ("requests",
    "input_tokens", "output_tokens") the limit per minute and what remains now."""

    buckets: dict[str, tuple[int, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """What the provider returned for one request (batch item or synchronous call).

    Only a success, a cancellation, or an error about the request itself (``error_class``
    "request") is a result; any other failure leaves the request pending (see ErrorClass)."""

    custom_id: str
    kind: OutcomeKind
    model: str | None = None
    text: str = ""
    stop_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    error_type: str | None = None
    error_message: str | None = None
    error_class: ErrorClass | None = None
    retry_after: float | None = None  # seconds the provider asked us to wait
    limits: RateLimits | None = None
    latency_ms: int | None = None

    @property
    def is_result(self) -> bool:
        return self.kind in ("succeeded", "canceled") or (
            self.kind == "errored" and self.error_class == "request"
        )


@dataclass(frozen=True)
class Score:
    """One grader's verdict on one case. ``error`` set means the grader could not decide."""

    grader: str
    passed: bool | None = None
    value: float | None = None
    explanation: str = ""
    error: str | None = None

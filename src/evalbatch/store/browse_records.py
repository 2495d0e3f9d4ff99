"""What the browsing reads return (the viewer's case table, case pages and `export` rows), and
the one definition of a rendered prompt's hash. Frozen records; importing this needs no SQL.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import orjson

from ..records import Case, Mode, RequestStatus, RunStatus, Step
from .records import ScoreView

# A case x epoch as the viewer shows it: "pass" when every grader passed (the one definition of
# a pass, `reports.case_pass_subquery`), "error" when a grader could not decide, "pending" when
# nothing is scored yet, else "fail".
CaseStatus = Literal["pass", "fail", "error", "pending"]
CASE_STATUSES: Final[tuple[CaseStatus, ...]] = ("pass", "fail", "error", "pending")
CaseSort = Literal["case", "id", "status", "model", "cost", "tokens"]
CASE_SORTS: Final[tuple[CaseSort, ...]] = ("case", "id", "status", "model", "cost", "tokens")
PREVIEW_CHARS: Final = 300  # input and output shown in a case table row


def prompt_sha256(system: list[dict[str, Any]] | None, messages: list[dict[str, Any]]) -> str:
    """The rendered prompt's hash: sha256 of the canonical JSON (sorted keys, no spaces) of
    ``{"messages": [...], "system": [blocks] | null}`` as the request sends them, less the
    ``cache_control`` breakpoints (a caching instruction, not prompt text: the same prompt hashes
    the same with the cache on or off). Two requests with one hash sent the model the same text."""
    blocks = (
        [{k: v for k, v in block.items() if k != "cache_control"} for block in system]
        if system
        else None
    )
    canonical = orjson.dumps({"messages": messages, "system": blocks}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


@dataclass(frozen=True)
class CaseQuery:
    """A page of a run's case table: search, filters, sort and window. ``grader`` narrows the
    status filter to that grader's verdict (and the rows to cases it scored)."""

    q: str = ""
    status: CaseStatus | None = None
    grader: str | None = None
    route: str | None = None
    model: str | None = None
    tag: str | None = None
    sort: CaseSort = "case"
    descending: bool = False
    offset: int = 0
    limit: int = 50


@dataclass(frozen=True)
class CaseLine:
    """One row of the case table: a case x epoch, its generation (previews) and its verdicts."""

    case_idx: int
    case_id: str
    epoch: int
    status: CaseStatus
    input: str
    target: str
    tags: tuple[str, ...]
    output: str
    outcome: str | None  # the generation's result kind; None = no result yet
    model: str
    route: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    scores: tuple[ScoreView, ...] = ()


@dataclass(frozen=True)
class CasePage:
    total: int
    offset: int
    limit: int
    lines: tuple[CaseLine, ...]


@dataclass(frozen=True)
class Facets:
    """The values a run's case table can be filtered by."""

    graders: tuple[str, ...]
    models: tuple[str, ...]
    routes: tuple[str, ...]
    tags: tuple[str, ...]


@dataclass(frozen=True)
class ResultDetail:
    kind: str
    mode: Mode
    text: str
    stop_reason: str | None
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cost_usd: float
    latency_ms: int | None
    error: str | None


@dataclass(frozen=True)
class RequestDetail:
    """A request of a case (generation, or one model grader's grading) as it was sent: the
    rendered prompt (``system`` is the shared prefix) and, once back, its result."""

    step: Step
    epoch: int
    grader: str | None
    model: str
    route: str
    status: RequestStatus
    attempts: int
    max_tokens: int
    system: tuple[dict[str, Any], ...] | None
    messages: tuple[dict[str, Any], ...]
    prompt_sha256: str
    result: ResultDetail | None


@dataclass(frozen=True)
class EpochDetail:
    epoch: int
    status: CaseStatus
    generation: RequestDetail | None
    grading: tuple[RequestDetail, ...]
    scores: tuple[ScoreView, ...]


@dataclass(frozen=True)
class CaseDetail:
    run_id: str
    run_status: RunStatus
    case_idx: int
    case: Case
    epochs: tuple[EpochDetail, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class ExportRow:
    """One row of `export`: a case x grader x epoch. The generation's tokens and cost repeat on
    each grader's row of its case and epoch (sum them over distinct case and epoch); the
    ``grade_*`` fields are the grader's own request (model graders only)."""

    run_id: str
    case_id: str
    epoch: int
    grader: str
    grader_type: str
    input: Any
    target: Any
    tags: tuple[str, ...]
    prompt_sha256: str | None
    output: str | None
    outcome: str | None
    model: str | None
    route: str | None
    verdict: Literal["pass", "fail", "error"]
    passed: bool | None
    score: float | None
    explanation: str
    error: str | None
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cost_usd: float
    grade_model: str | None
    grade_input_tokens: int | None
    grade_output_tokens: int | None
    grade_cost_usd: float | None


@dataclass(frozen=True)
class StoreMark:
    """Changes whenever a run is added or changes status: when to recompute the run listing."""

    runs: int
    updated_at: float
    open_runs: int

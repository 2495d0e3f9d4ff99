"""What an Outcome means: a final result priced with its counterfactuals, or a failure that is
never a result (sent again). Shared by the batch and sync paths; the store records each result
exactly once.

Outcomes are stored in transactions of 1,000, so a results stream is never held whole in memory
and a crash halfway loses nothing that was committed (collecting again skips what is stored).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import islice

from ..catalog import Catalog
from ..catalog.pricing import counterfactuals
from ..records import Mode, Outcome, parse_custom_id
from ..store.db import Store
from ..store.records import Disposition, IngestCounts, NewResult, StoredRequest
from . import failpoints

_CHUNK = int(os.environ.get("EVALBATCH_INGEST_CHUNK", "1000"))  # rows per transaction


@dataclass(frozen=True)
class IngestContext:
    run_id: str
    mode: Mode
    retries: int
    strongest: str
    catalog: Catalog


def decide(ctx: IngestContext, request: StoredRequest, outcome: Outcome) -> Disposition:
    """A result (an answer, a cancellation, or the provider refusing the request itself) is
    final and stored. Any other failure is never a result: the request goes back to pending
    with its error; once it has used its tries the run stops for a person (engine)."""
    error = _error_text(outcome)
    if not outcome.is_result:
        return Disposition("pending", error)
    return Disposition(outcome.kind, error, _priced(ctx, request, outcome))


def _error_text(outcome: Outcome) -> str | None:
    if outcome.kind == "succeeded":
        return None
    if outcome.error_type:
        return f"{outcome.error_type}: {outcome.error_message or ''}".strip()
    return outcome.kind


def _priced(ctx: IngestContext, request: StoredRequest, outcome: Outcome) -> NewResult:
    usage = outcome.usage
    succeeded = outcome.kind == "succeeded"
    if succeeded:
        cf = counterfactuals(
            usage,
            request.model,
            batch=ctx.mode == "batch",
            strongest=ctx.strongest,
            catalog=ctx.catalog,
        )
        costs = (cf.actual, cf.sync, cf.no_cache, cf.no_routing, cf.naive)
    else:  # errored, expired and canceled items are not billed
        costs = (0.0, 0.0, 0.0, 0.0, 0.0)
    return NewResult(
        model=outcome.model if succeeded and outcome.model else request.model,
        mode=ctx.mode,
        kind=outcome.kind,
        text=outcome.text if succeeded else None,
        stop_reason=outcome.stop_reason,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_write_5m=usage.cache_write_5m,
        cache_write_1h=usage.cache_write_1h,
        cache_read=usage.cache_read,
        service_tier=usage.service_tier,
        cost_usd=costs[0],
        sync_cost_usd=costs[1],
        nocache_cost_usd=costs[2],
        norouting_cost_usd=costs[3],
        naive_cost_usd=costs[4],
        error_type=outcome.error_type,
        error_message=outcome.error_message,
        latency_ms=outcome.latency_ms,
    )


def _chunks(items: Iterable[Outcome]) -> Iterator[list[Outcome]]:
    it = iter(items)
    while chunk := list(islice(it, _CHUNK)):
        yield chunk


def record_outcomes(
    store: Store,
    ctx: IngestContext | Mapping[str, IngestContext],
    outcomes: Iterable[Outcome],
    batch_id: int | None = None,
) -> IngestCounts:
    """Store outcomes chunk by chunk (of a batch's results when ``batch_id`` is given). With
    several contexts (a sweep's batch), each outcome goes to the run its custom_id names."""
    contexts = {ctx.run_id: ctx} if isinstance(ctx, IngestContext) else dict(ctx)
    counts = IngestCounts()
    for chunk in _chunks(outcomes):
        by_run: dict[str, list[Outcome]] = {}
        for outcome in chunk:
            parsed = parse_custom_id(outcome.custom_id)
            if parsed is None or parsed[0] not in contexts:
                counts.skipped += 1
                continue
            by_run.setdefault(parsed[0], []).append(outcome)
        for run_id, outcomes_of_run in by_run.items():
            run_ctx = contexts[run_id]

            def judge(
                request: StoredRequest, outcome: Outcome, run_ctx: IngestContext = run_ctx
            ) -> Disposition:
                return decide(run_ctx, request, outcome)

            store.results.record_chunk(run_id, outcomes_of_run, batch_id, judge, counts)
        failpoints.hit("collect.mid_stream")
    return counts

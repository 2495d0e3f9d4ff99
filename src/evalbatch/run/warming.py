"""Cache warming: before a step's batch goes out, one synchronous request per distinct shared
prefix writes it into the cache, so the batch reads from its first item instead of racing to
write. Warm requests are stored as the `warm` step, priced at sync rates, and reported apart."""

from __future__ import annotations

from dataclasses import replace

from ..catalog import Catalog
from ..plan.caching import WARM_MESSAGE
from ..providers.base import Provider
from ..records import WARM, PlannedRequest, Prefix, Step
from ..store.db import Store
from .ingest import IngestContext
from .sync import SyncPath


def plan_warm(store: Store, run_id: str, step: Step, catalog: Catalog) -> int:
    """Insert one warm request per (prefix, model) of the step's pending requests that is long
    enough to cache; returns how many. Does nothing when the step was warmed already."""
    already, pairs, start = store.requests.warm_targets(run_id, step)
    if already:
        return 0
    prefixes = store.requests.prefixes(run_id)
    planned = [
        PlannedRequest(
            step=WARM,
            case_idx=-1,
            case_id="(warm)",
            epoch=0,
            grader=step,
            model=model,
            route="warm",
            prefix=Prefix(
                tuple(prefixes[prefix_id].blocks),
                prefixes[prefix_id].tokens,
                f"{step}.warm",
                prefixes[prefix_id].sha256,
            ),
            max_tokens=1,
            messages=[{"role": "user", "content": WARM_MESSAGE}],
        )
        for prefix_id, model in pairs
        if prefixes[prefix_id].tokens >= catalog.model(model).min_cache_tokens
    ]
    return store.requests.add(run_id, planned, start)


def run_warm(
    store: Store, provider: Provider, ingest: IngestContext, ttl: str | None, concurrency: int
) -> None:
    """Send the warm requests synchronously (priced at sync rates)."""
    SyncPath(store, provider, replace(ingest, mode="sync"), ttl, concurrency).run(WARM)

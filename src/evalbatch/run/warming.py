"""Cache warming: before a step's batch goes out, one synchronous request per distinct shared
prefix writes it into the cache, so the batch reads from its first item instead of racing to
write. Warm requests are stored as the `warm` step, priced at sync rates, and reported apart."""

from __future__ import annotations

from dataclasses import replace

from ..catalog import Catalog
from ..plan.caching import WARM_MESSAGE
from ..records import WARM, PlannedRequest, Prefix, Step
from ..store.db import Store
from .ingest import IngestContext
from .providers import ProviderPool
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
        if _worth_warming(prefixes[prefix_id].tokens, model, catalog)
    ]
    return store.requests.add(run_id, planned, start)


def _worth_warming(prefix_tokens: int, model: str, catalog: Catalog) -> bool:
    """Only a prefix long enough to cache, on a model whose cache writes cost extra: with
    automatic caching (OpenAI) a miss is plain input, so a batch without warming never costs
    more than no caching, and a warm-up request would cost the whole prefix at the sync rate."""
    info = catalog.model(model)
    return not info.caches_automatically and prefix_tokens >= info.min_cache_tokens


def run_warm(
    store: Store, providers: ProviderPool, ingest: IngestContext, ttl: str | None, concurrency: int
) -> None:
    """Send the warm requests synchronously (priced at sync rates)."""
    SyncPath(store, providers, replace(ingest, mode="sync"), ttl, concurrency).run(WARM)

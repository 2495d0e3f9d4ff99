"""Cache warming: before a step's batch goes out, one synchronous request per distinct shared
prefix writes it into the cache, so the batch reads from its first item instead of racing to
write. Warm requests are stored as the `warm` step, priced at sync rates, and reported apart."""

from __future__ import annotations

from sqlalchemy import and_, func, select
from sqlalchemy.engine import Engine

from ..catalog.models import Catalog
from ..plan.steps import WARM, PlannedRequest
from ..providers.base import Provider
from ..store import schema
from ..store.requests import insert_planned, load_prefixes
from .ingest import IngestContext

WARM_MESSAGE = "Reply with OK."


def plan_warm(engine: Engine, run_id: str, step: str, catalog: Catalog) -> int:
    """Insert one warm request per (prefix, model) of the step's pending requests that is long
    enough to cache; returns how many. Does nothing when the step was warmed already."""
    r = schema.requests.c
    with engine.begin() as conn:
        already = conn.execute(
            select(func.count()).where(and_(r.run_id == run_id, r.step == WARM, r.grader == step))
        ).scalar()
        if already:
            return 0
        pairs = conn.execute(
            select(r.prefix_id, r.model)
            .where(
                and_(
                    r.run_id == run_id,
                    r.step == step,
                    r.status == "pending",
                    r.prefix_id.is_not(None),
                )
            )
            .distinct()
        ).fetchall()
        prefixes = load_prefixes(conn, run_id)
        start = (
            conn.execute(
                select(func.coalesce(func.max(r.idx) + 1, 0)).where(
                    and_(r.run_id == run_id, r.step == WARM)
                )
            ).scalar()
            or 0
        )
        planned = [
            PlannedRequest(
                step=WARM,
                case_idx=-1,
                case_id="(warm)",
                epoch=0,
                grader=step,
                model=model,
                route="warm",
                system=prefixes[prefix_id][0],
                source=f"{step}.warm",
                max_tokens=1,
                messages=[{"role": "user", "content": WARM_MESSAGE}],
            )
            for prefix_id, model in pairs
            if prefixes[prefix_id][1] >= catalog.model(model).min_cache_tokens
        ]
        return insert_planned(conn, run_id, planned, int(start))


def run_warm(
    engine: Engine, provider: Provider, ingest: IngestContext, ttl: str | None, concurrency: int
) -> None:
    from .sync import SyncPath

    sync_ingest = IngestContext(
        ingest.run_id, "sync", ingest.retries, ingest.strongest, ingest.catalog
    )
    SyncPath(engine, provider, sync_ingest, ttl, concurrency).run(WARM)

"""Preparing a run: load and validate everything, pin the manifest, then write the run, its
cases and its generate Requests in one transaction (nothing half-written on bad input)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.engine import Engine

from ..catalog.models import Catalog, load_catalog
from ..graders import build_grader
from ..graders.base import Grader, ModelGrader
from ..records import Case
from ..store import schema
from ..store.requests import insert_planned
from ..suite.cases import iter_cases, scan_cases
from ..suite.load import Suite, load_suite
from ..suite.manifest import Manifest, build_manifest
from .caching import cache_ttl
from .generate import plan_generate
from .routing import Router
from .steps import GENERATE

_CASE_CHUNK = 2000


@dataclass
class Prepared:
    suite: Suite
    graders: list[Grader]
    case_count: int
    manifest: Manifest
    router: Router
    strongest: str
    catalog: Catalog
    difficulties: dict[str, int] = field(default_factory=dict)

    @property
    def ttl(self) -> str | None:
        return cache_ttl(self.suite.mode, self.suite.cache)


def prepare(
    path: str | Path,
    overrides: list[str] | None = None,
    mode: str | None = None,
    catalog: Catalog | None = None,
) -> Prepared:
    """Validate the suite and its cases; raises SuiteError (exit 2) before anything is written."""
    catalog = catalog or load_catalog()
    suite = load_suite(path, overrides or [])
    if mode is not None:
        suite = suite.model_copy(update={"mode": mode})
    graders = [build_grader(spec, suite.base_dir) for spec in suite.grade]
    scan = scan_cases(suite, graders)
    router = Router(suite.generate.model, suite.routing, catalog)
    models = set(router.models())
    for grader in graders:
        if isinstance(grader, ModelGrader):
            models.update(Router(grader.model, suite.routing, catalog).models())
    strongest = catalog.strongest(sorted(models))
    manifest = build_manifest(suite, graders, scan.count, scan.content_sha256, catalog)
    return Prepared(
        suite,
        graders,
        scan.count,
        manifest,
        router,
        strongest,
        catalog,
        dict(getattr(scan, "difficulties", {}) or {}),
    )


def new_run_id() -> str:
    """Sortable and readable: UTC time, then random hex."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


def create_run(engine: Engine, prepared: Prepared, options: dict[str, Any]) -> str:
    """Write the run, its cases and its generate requests atomically; returns the run id."""
    suite = prepared.suite
    run_id = new_run_id()
    now = time.time()
    opts = {**options, "strongest": prepared.strongest}
    with engine.begin() as conn:
        conn.execute(
            schema.runs.insert().values(
                id=run_id,
                suite_name=suite.name,
                suite_path=str(suite.path),
                created_at=now,
                updated_at=now,
                status=GENERATE,
                mode=suite.mode,
                manifest_hash=prepared.manifest.hash,
                manifest=orjson.dumps(prepared.manifest.data).decode(),
                suite=suite.model_dump_json(),
                options=orjson.dumps(opts).decode(),
                case_count=prepared.case_count,
            )
        )
        _insert_cases(conn, run_id, suite)
        conn.execute(
            schema.steps.insert().values(
                run_id=run_id, name=GENERATE, status="active", planned_at=now
            )
        )
        insert_planned(conn, run_id, plan_generate(suite, _indexed(suite), prepared.router))
    return run_id


def _indexed(suite: Suite) -> Iterator[tuple[int, Case]]:
    return enumerate(iter_cases(suite))


def case_json(case: Case) -> str:
    return orjson.dumps({**case.content(), "source": case.source, "line": case.line}).decode()


def _insert_cases(conn: Any, run_id: str, suite: Suite) -> None:
    rows = []
    for idx, case in _indexed(suite):
        rows.append({"run_id": run_id, "idx": idx, "case_id": case.id, "data": case_json(case)})
        if len(rows) >= _CASE_CHUNK:
            conn.execute(schema.cases.insert(), rows)
            rows = []
    if rows:
        conn.execute(schema.cases.insert(), rows)

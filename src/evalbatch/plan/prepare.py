"""Preparing a run: load and validate the suite and every case, build the graders and routers,
pin the manifest. Nothing is written: a bad input stops here with file:line (exit 2)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..catalog import Catalog, load_catalog
from ..graders import build_grader
from ..graders.base import Grader, ModelGrader
from ..graders.reference import with_references
from ..records import Mode
from ..suite.cases import scan_cases
from ..suite.load import load_suite
from ..suite.manifest import Manifest, build_manifest
from ..suite.schema import Suite
from .caching import cache_ttl
from .routing import Router


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

    def model_graders(self) -> list[ModelGrader]:
        """What the grade step plans requests for, reference graders included."""
        return with_references(self.graders)

    def grade_routers(self) -> dict[str, Router]:
        return {
            g.name: Router(g.model, self.suite.routing, self.catalog) for g in self.model_graders()
        }

    def provider_names(self) -> list[str]:
        """Every provider the run may send to (generation and model graders, every route)."""
        models = set(self.router.models())
        for router in self.grade_routers().values():
            models.update(router.models())
        return sorted({self.catalog.provider_of(m) for m in models})


def prepare(
    path: str | Path,
    overrides: list[str] | None = None,
    mode: Mode | None = None,
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
    for grader in with_references(graders):
        models.update(Router(grader.model, suite.routing, catalog).models())
    strongest = catalog.strongest(sorted(models))
    manifest = build_manifest(suite, graders, scan.count, scan.content_sha256, catalog)
    return Prepared(
        suite, graders, scan.count, manifest, router, strongest, catalog, dict(scan.difficulties)
    )

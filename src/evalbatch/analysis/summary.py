"""The summary of a run, from the store's typed reads: scores per grader (in the suite's order),
the pass rate, request outcomes, cost by step x model x mode with its counterfactuals, routes,
the prompt cache per prefix (with a warning for a prefix that never hit), warming's break-even,
and the minimum-pass-rate gate. `RunReport` bundles it with the case rows for file reports."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ..catalog import Catalog, load_catalog
from ..graders.code import manifest_warnings
from ..records import Mode, RunStatus
from ..store.db import Store
from ..store.records import (
    CaseRow,
    CostLine,
    ErrorLine,
    GraderLine,
    PrefixLine,
    RouteLine,
    RunListing,
    WarmRequest,
)
from ..suite.schema import Suite
from .reference import PassEstimate, ReferenceLine, reference_lines

TOTAL_KEYS = ("cost", "sync_cost", "nocache_cost", "norouting_cost", "naive_cost")


@dataclass(frozen=True)
class RunInfo:
    id: str
    suite: str
    status: RunStatus
    mode: Mode
    created_at: float
    finished_at: float | None
    manifest_hash: str
    cases: int
    error: str | None
    options: dict[str, Any]
    generations_from: str | None = None  # a regrade: the run whose outputs it graded


@dataclass(frozen=True)
class MinPassRate:
    min_pass_rate: float
    pass_rate: float
    failed: bool
    estimated: bool = False  # the pass rate is the reference-sampled (PPI) estimate


@dataclass(frozen=True)
class Warming:
    """What warming cost, and how many cache writes it must spare to pay for itself."""

    requests: int
    cost: float
    break_even_writes_per_prefix: float | None
    writes_after_warming: int


@dataclass(frozen=True)
class RunSummary:
    run: RunInfo
    graders: list[GraderLine]
    cases_scored: int
    cases_passed: int
    costs: list[CostLine]
    outcomes: dict[str, dict[str, int]]
    errors: list[ErrorLine] = field(default_factory=list)
    gate: MinPassRate | None = None
    routes: list[RouteLine] = field(default_factory=list)
    prefixes: list[PrefixLine] = field(default_factory=list)
    warming: Warming | None = None
    warnings: list[str] = field(default_factory=list)  # e.g. code graded without isolation
    references: list[ReferenceLine] = field(default_factory=list)
    reference_pass: PassEstimate | None = None  # the pass rate, reference-estimated (PPI)

    @property
    def pass_rate(self) -> float | None:
        return self.cases_passed / self.cases_scored if self.cases_scored else None

    def total(self, attr: str) -> float:
        return float(sum(getattr(line, attr) for line in self.costs))

    @property
    def routed(self) -> bool:
        """True when some step sent requests down more than one route (worth a breakdown)."""
        steps = {r.step for r in self.routes}
        return len({(r.step, r.route) for r in self.routes}) > len(steps)

    @property
    def gate_failed(self) -> bool:
        return bool(self.gate and self.gate.failed)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["pass_rate"] = self.pass_rate
        for grader, raw in zip(self.graders, data["graders"], strict=True):
            raw["pass_rate"] = grader.pass_rate
        for cost, raw in zip(self.costs, data["costs"], strict=True):
            raw["cache_read_share"] = cost.cache_read_share
        for route, raw in zip(self.routes, data["routes"], strict=True):
            raw["pass_rate"] = route.pass_rate
        for prefix, raw in zip(self.prefixes, data["prefixes"], strict=True):
            raw["read_share"] = prefix.read_share
            raw["written_share"] = prefix.written_share
            raw["uncached_share"] = prefix.uncached_share
        data["gate"] = data["gate"] or {}
        data["totals"] = {k: self.total(k) for k in TOTAL_KEYS}
        return data


@dataclass(frozen=True)
class RunReport:
    """Everything a file report renders: the summary, the case rows (streamed) and the suite's
    recent history (oldest first)."""

    summary: RunSummary
    rows: Iterable[CaseRow]
    history: list[RunListing]


def suite_of(store: Store, run_id: str) -> Suite:
    return Suite.model_validate_json(store.runs.get(run_id).suite_json)


def summarize(store: Store, run_id: str, catalog: Catalog | None = None) -> RunSummary:
    catalog = catalog or load_catalog()
    record = store.runs.get(run_id)
    suite = Suite.model_validate_json(record.suite_json)
    by_name = store.reports.grader_lines(run_id)
    graders = [
        by_name.get(spec.name) or GraderLine(spec.name, spec.type, 0, 0, 0, 0, None)
        for spec in suite.grade
    ]
    scored, passed = store.reports.case_pass(run_id)
    cache_off = suite.cache.mode == "off"
    info = RunInfo(
        id=record.id,
        suite=record.suite_name,
        status=record.status,
        mode=record.mode,
        created_at=record.created_at,
        finished_at=record.finished_at,
        manifest_hash=record.manifest_hash,
        cases=record.case_count,
        error=record.error,
        options={k: v for k, v in record.options.items() if k != "api_key"},
        generations_from=(record.manifest.get("generations_from") or {}).get("run"),
    )
    references, reference_pass = reference_lines(store, record)
    min_rate = suite.gate.min_pass_rate
    gate = None
    if min_rate is not None and record.status == "done":
        rate = passed / scored if scored else 0.0
        if reference_pass is not None:  # what the reference graders would have said
            rate = reference_pass.estimate
        gate = MinPassRate(min_rate, rate, rate < min_rate, reference_pass is not None)
    return RunSummary(
        run=info,
        graders=graders,
        cases_scored=scored,
        cases_passed=passed,
        costs=store.reports.cost_lines(run_id),
        outcomes=store.reports.outcomes(run_id),
        errors=store.reports.errors(run_id),
        gate=gate,
        routes=store.reports.route_lines(run_id),
        prefixes=[
            line if cache_off or line.read else replace(line, warning=never_hit(line, catalog))
            for line in store.reports.prefix_lines(run_id)
        ],
        warming=_warming(*store.reports.warm_requests(run_id), catalog),
        warnings=manifest_warnings(record.manifest.get("graders", []))
        + [line.warning for line in references if line.warning],
        references=references,
        reference_pass=reference_pass,
    )


def run_report(store: Store, run_id: str, history: int = 30) -> RunReport:
    summary = summarize(store, run_id)
    listing = store.history.list_runs(summary.run.suite, limit=history)
    return RunReport(summary, store.reports.case_rows(run_id), list(reversed(listing)))


def never_hit(line: PrefixLine, catalog: Catalog) -> str:
    """Why a prefix was never read from the cache, as far as we can tell."""
    info = catalog.models.get(line.model)
    minimum = info.min_cache_tokens if info else 0
    where = f"{line.source} ({line.sha256[:8]}) on {line.model}"
    if line.tokens < minimum:
        return (
            f"{where} never hit the cache: {line.tokens:,} tokens is below the model's "
            f"{minimum:,}-token minimum"
        )
    if line.requests < 2:
        return f"{where} never hit the cache: only one request used it"
    if info is not None and info.caches_automatically:  # no breakpoints, nothing to warm
        return (
            f"{where} never hit the cache across {line.requests} requests: does the prefix "
            "change per case? (the provider's automatic cache is best effort: requests sent "
            "at the same moment often miss)"
        )
    return (
        f"{where} never hit the cache across {line.requests} requests: does the prefix change "
        "per case, or did every request start before the first write finished (try cache.warm)?"
    )


def _warming(warm: list[WarmRequest], writes: int, catalog: Catalog) -> Warming | None:
    """There is no observed counterfactual (the same run without warming), so the report states
    the break-even instead of a verdict: each write warming spares costs (write - read) at the
    batch rate. A cold batch processed in parallel writes each prefix once per concurrent wave,
    so in practice many writes are spared (benchmarks/cost.py measures both)."""
    if not warm:
        return None
    cost = sum(w.cost_usd for w in warm)
    spared = 0.0
    for w in warm:
        band = catalog.prices_for(w.model).bands[0]
        spared += w.prefix_tokens * (band.cache_write_1h - band.cache_read) / 1e6
    spared *= catalog.batch_discount / len(warm)  # one spared write, per prefix, on average
    return Warming(
        requests=len(warm),
        cost=cost,
        break_even_writes_per_prefix=cost / spared / len(warm) if spared else None,
        writes_after_warming=writes,
    )

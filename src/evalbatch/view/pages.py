"""What each page shows, read through the store's typed queries (and the analysis over them),
as records the HTML templates and the JSON API both render: the runs, a run, a case, a compare.

Sweeps and calibration, when they exist, add a record and a reader here, a template and two
routes in `app.py`; the suite charts (`history_charts`) and the case table are theirs to reuse.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ..analysis.summary import RunSummary
from ..records import TERMINAL_RUN
from ..report.html import line_chart
from ..report.wording import headline, pct, usd
from ..store.browse_records import CaseDetail, CasePage, CaseQuery, Facets
from ..store.records import RunListing, RunRecord, RunState
from . import links
from .cache import ViewCache

if TYPE_CHECKING:
    from ..analysis.compare import Comparison

HISTORY = 30  # runs of a suite in its charts
_READS = ThreadPoolExecutor(max_workers=6, thread_name_prefix="view-read")


@dataclass(frozen=True)
class SuiteHistory:
    """A suite's recent runs (oldest first) with its pass-rate and cost charts over the finished
    ones (a run in flight has no pass rate yet); a dot whose run's manifest changed from the run
    before is marked."""

    suite: str
    runs: list[RunListing]
    pass_chart: dict[str, Any]
    cost_chart: dict[str, Any]

    @property
    def latest(self) -> RunListing:
        return self.runs[-1]


@dataclass(frozen=True)
class RunsPage:
    suites: list[SuiteHistory]
    runs: list[RunListing]  # newest first
    live: list[RunState]


@dataclass(frozen=True)
class RunPage:
    record: RunRecord
    summary: RunSummary
    headline: str
    state: RunState | None  # set while the run is live (not terminal)
    history: SuiteHistory
    facets: Facets
    query: CaseQuery
    cases: CasePage

    @property
    def live(self) -> bool:
        return self.state is not None


def history_charts(suite: str, runs: list[RunListing]) -> SuiteHistory:
    """Pass rate and cost over a suite's runs (oldest first), manifest changes marked."""

    done = [r for r in runs if r.status == "done"]

    def chart(values: list[float], fmt: Any) -> dict[str, Any]:
        drawn = line_chart([(r.id, v) for r, v in zip(done, values, strict=True)], fmt=fmt)
        for dot, run in zip(drawn["dots"], done, strict=True):
            dot.update(url=links.run_url(run.id), changed=run.manifest_changed)
        return drawn

    return SuiteHistory(
        suite=suite,
        runs=runs,
        pass_chart=chart([r.pass_rate or 0.0 for r in done], pct),
        cost_chart=chart([r.cost_usd for r in done], usd),
    )


def runs_page(cache: ViewCache) -> RunsPage:
    listing = cache.listing()
    by_suite: dict[str, list[RunListing]] = {}
    for item in listing:
        by_suite.setdefault(item.suite, []).append(item)
    suites = [
        history_charts(name, list(reversed(items[:HISTORY])))
        for name, items in sorted(by_suite.items(), key=lambda kv: -kv[1][0].created_at)
    ]
    live = [
        cache.store.history.run_state(item.id)
        for item in listing
        if item.status not in TERMINAL_RUN
    ]
    return RunsPage(suites=suites, runs=listing, live=live)


def run_page(cache: ViewCache, run_id: str, query: CaseQuery) -> RunPage:
    record = cache.store.runs.get(run_id)
    summary = cache.summary(record)
    suite_runs = [r for r in cache.listing() if r.suite == record.suite_name][:HISTORY]
    return RunPage(
        record=record,
        summary=summary,
        headline=headline(summary),
        state=None if record.status in TERMINAL_RUN else cache.store.history.run_state(record.id),
        history=history_charts(record.suite_name, list(reversed(suite_runs))),
        facets=cache.facets(record),
        query=query,
        cases=cache.store.browse.case_page(record.id, query),
    )


def compare_page(cache: ViewCache, base: str, new: str) -> Comparison:
    from ..analysis.compare import compare_runs  # loads scipy: only when a compare is asked for

    return compare_runs(cache.store, base, new)


# -- JSON mirrors -----------------------------------------------------------------------------


def listing_json(item: RunListing) -> dict[str, Any]:
    return {**asdict(item), "url": links.run_url(item.id), "api": links.run_url(item.id, True)}


def runs_json(page: RunsPage) -> dict[str, Any]:
    return {
        "runs": [listing_json(r) for r in page.runs],
        "suites": [
            {"suite": s.suite, "runs": [r.id for r in s.runs], "latest": s.latest.id}
            for s in page.suites
        ],
        "live": [asdict(state) for state in page.live],
    }


def run_json(page: RunPage) -> dict[str, Any]:
    return {
        "run": {
            **page.summary.to_dict()["run"],
            "url": links.run_url(page.record.id),
            "cases_api": links.cases_url(page.record.id, api=True),
            "state_api": links.state_url(page.record.id),
        },
        "headline": page.headline,
        "summary": page.summary.to_dict(),
        "live": page.live,
        "state": asdict(page.state) if page.state else None,
        "history": [listing_json(r) for r in page.history.runs],
        "facets": asdict(page.facets),
    }


def cases_json(run_id: str, cases: CasePage, next_qs: str | None) -> dict[str, Any]:
    base = links.cases_url(run_id, api=True)
    return {
        "run_id": run_id,
        "total": cases.total,
        "offset": cases.offset,
        "limit": cases.limit,
        "next": f"{base}?{next_qs}" if next_qs is not None else None,
        "rows": [
            {
                **asdict(line),
                "url": links.case_url(run_id, line.case_id, line.epoch),
                "api": links.case_url(run_id, line.case_id, api=True),
            }
            for line in cases.lines
        ],
    }


def case_json(detail: CaseDetail) -> dict[str, Any]:
    return {
        **asdict(detail),
        "url": links.case_url(detail.run_id, detail.case.id),
        "run_url": links.run_url(detail.run_id),
    }

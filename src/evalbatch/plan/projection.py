"""`plan`: project a suite's tokens and cost per strategy before a cent is spent, no API calls.

Requests are rendered exactly as `run` would send them. Input tokens come from the local
tokenizer (exact against the sandbox; an estimate against the real API) or from the API's
count_tokens. Cache reads and writes are simulated the way the API does them within a batch:
the first request with a prefix writes it, later ones read. Output tokens come from the last
comparable run's actual outputs when one exists, else from max_tokens (an upper bound).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..catalog import Catalog
from ..catalog.pricing import counterfactuals
from ..catalog.tokenizer import breakpoints, count_request, request_blocks
from ..graders.base import ModelGrader
from ..records import Case, PlannedRequest, Usage
from ..store.db import Store
from ..suite.cases import iter_cases
from .caching import warm_body
from .prepare import Prepared
from .requests import GeneratedCase, plan_generate, plan_grade, planned_body

# (step, case id, epoch, grader) -> (output tokens, text)
History = dict[tuple[str, str, int, str | None], tuple[int, str]]

STRATEGIES = ("plan", "sync", "no_cache", "no_routing", "naive")
LOCAL_ESTIMATE_NOTE = (
    "local estimate: exact against the sandbox; against the real tokenizer expect about ±15%"
)


@dataclass
class ProjectionLine:
    step: str
    model: str
    requests: int = 0
    input_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    output_tokens: int = 0
    costs: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STRATEGIES, 0.0))

    def add(self, usage: Usage, cf: Any) -> None:
        self.requests += 1
        self.input_tokens += usage.input_tokens
        self.cache_write_tokens += usage.cache_write
        self.cache_read_tokens += usage.cache_read
        self.output_tokens += usage.output_tokens
        for name, value in zip(
            STRATEGIES, (cf.actual, cf.sync, cf.no_cache, cf.no_routing, cf.naive), strict=True
        ):
            self.costs[name] += value


@dataclass
class Projection:
    suite: str
    mode: str
    cases: int
    lines: list[ProjectionLine]
    token_source: str
    output_source: str
    warm_requests: int = 0

    def total(self, strategy: str) -> float:
        return sum(line.costs[strategy] for line in self.lines)

    def input_side(self, strategy: str = "plan") -> float:
        """The cost of input tokens only (uncached + writes + reads), for the accuracy check."""
        return self.total(strategy) - self.output_cost(strategy)

    def output_cost(self, strategy: str = "plan") -> float:
        return sum(line.costs.get(f"{strategy}:output", 0.0) for line in self.lines)

    def to_dict(self) -> dict[str, Any]:
        naive = self.total("naive")
        return {
            "suite": self.suite,
            "mode": self.mode,
            "cases": self.cases,
            "token_source": self.token_source,
            "output_source": self.output_source,
            "warm_requests": self.warm_requests,
            "strategies": {s: self.total(s) for s in STRATEGIES},
            "input_side": {s: self.input_side(s) for s in STRATEGIES},
            "output_side": {s: self.output_cost(s) for s in STRATEGIES},
            "savings_vs_naive": {
                s: (1 - self.total(s) / naive) if naive else 0.0 for s in STRATEGIES
            },
            "lines": [
                {
                    "step": x.step,
                    "model": x.model,
                    "requests": x.requests,
                    "input_tokens": x.input_tokens,
                    "cache_write_tokens": x.cache_write_tokens,
                    "cache_read_tokens": x.cache_read_tokens,
                    "output_tokens": x.output_tokens,
                    "costs": {s: x.costs[s] for s in STRATEGIES},
                }
                for x in self.lines
            ],
        }


class CacheModel:
    """The API's prefix cache as `plan` assumes it: the first request with a prefix writes it,
    every later one reads it (each write is visible to the next request). The sandbox's own
    cache (sandbox/cache.py) is written apart, as an oracle; a test holds the two together."""

    def __init__(self, catalog: Catalog) -> None:
        self._seen: set[bytes] = set()
        self._catalog = catalog

    def usage(self, params: dict[str, Any], input_total: int, output: int) -> Usage:
        points = breakpoints(params["model"], request_blocks(params))
        minimum = self._catalog.model(params["model"]).min_cache_tokens
        read = 0
        for point in points:
            if point.prefix_tokens >= minimum and point.key in self._seen:
                read = point.prefix_tokens
        write_5m = write_1h = 0
        boundary = read
        for point in points:
            if point.prefix_tokens <= boundary or point.prefix_tokens < minimum:
                continue
            increment = point.prefix_tokens - boundary
            if point.ttl == "1h":
                write_1h += increment
            else:
                write_5m += increment
            boundary = point.prefix_tokens
            self._seen.add(point.key)
        return Usage(
            input_tokens=input_total - boundary,
            output_tokens=output,
            cache_write_5m=write_5m,
            cache_write_1h=write_1h,
            cache_read=read,
        )


def _previous_outputs(store: Store | None, prepared: Prepared) -> tuple[History, str | None]:
    """Output tokens and texts of the newest done run with the same manifest."""
    if store is None:
        return {}, None
    run_id = store.runs.latest_done_of_manifest(prepared.manifest.hash)
    if run_id is None:
        return {}, None
    return store.results.token_history(run_id), run_id


def project(
    prepared: Prepared,
    store: Store | None = None,
    *,
    count_tokens: Callable[[dict[str, Any]], int] | None = None,
) -> Projection:
    suite = prepared.suite
    batch = suite.mode == "batch"
    previous, prev_run = _previous_outputs(store, prepared)
    lines: dict[tuple[str, str], ProjectionLine] = {}
    cache = CacheModel(prepared.catalog)
    warm = batch and suite.cache.mode != "off" and suite.cache.warm
    warmed: set[bytes] = set()
    counter = count_tokens or count_request

    def add(step: str, model: str, usage: Usage, is_batch: bool) -> None:
        cf = counterfactuals(
            usage, model, batch=is_batch, strongest=prepared.strongest, catalog=prepared.catalog
        )
        out = _output_costs(usage, model, is_batch, prepared)
        line = lines.setdefault((step, model), ProjectionLine(step, model))
        line.add(usage, cf)
        for name, value in zip(STRATEGIES, out, strict=True):
            line.costs[f"{name}:output"] = line.costs.get(f"{name}:output", 0.0) + value

    def account(req: PlannedRequest, output_tokens: int) -> None:
        params = planned_body(req, prepared.ttl, prepared.catalog)
        if warm and "system" in params:
            points = breakpoints(params["model"], request_blocks(params))
            if points and points[-1].key not in warmed:
                warmed.add(points[-1].key)
                wp = warm_body(params)
                add("warm", req.model, cache.usage(wp, counter(wp), 1), False)
        add(req.step, req.model, cache.usage(params, counter(params), output_tokens), batch)

    model_graders = [g for g in prepared.graders if isinstance(g, ModelGrader)]
    generated: list[GeneratedCase] = []
    for req, case in _generate_requests(prepared):
        found = previous.get(("generate", req.case_id, req.epoch, None))
        tokens = found[0] if found else req.max_tokens
        account(req, tokens)
        if model_graders:
            generated.append(
                (req.case_idx, case, req.epoch, found[1] if found else "tok " * tokens)
            )
            if len(generated) >= 1000:
                _grade(prepared, model_graders, generated, previous, account)
                generated = []
    if generated:
        _grade(prepared, model_graders, generated, previous, account)
    output_source = (
        f"actual outputs of run {prev_run} (same manifest)"
        if prev_run
        else "max_tokens (an upper bound: no comparable run yet)"
    )
    token_source = "count_tokens API" if count_tokens else LOCAL_ESTIMATE_NOTE
    order = {"warm": 0, "generate": 1, "grade": 2}
    return Projection(
        suite.name,
        suite.mode,
        prepared.case_count,
        sorted(lines.values(), key=lambda x: (order.get(x.step, 3), x.model)),
        token_source,
        output_source,
        len(warmed),
    )


def _output_costs(
    usage: Usage, model: str, is_batch: bool, prepared: Prepared
) -> tuple[float, float, float, float, float]:
    """The output side of each strategy (plan, sync, no_cache, no_routing, naive), in USD.

    The price band is chosen by the request's whole prompt, exactly as for the full cost (a
    Haiku request above 100K prompt tokens pays the long-context output rate too), so pricing
    the output tokens alone (prompt 0, the base band) would be wrong.
    """
    catalog = prepared.catalog
    prompt = usage.prompt_tokens
    band = catalog.prices_for(model).band_for(prompt)
    top = catalog.prices_for(prepared.strongest).band_for(prompt)
    factor = catalog.batch_discount if is_batch else 1.0
    mine = usage.output_tokens * band.output / 1_000_000.0
    strongest = usage.output_tokens * top.output / 1_000_000.0
    return (mine * factor, mine, mine * factor, strongest * factor, strongest)


def _generate_requests(prepared: Prepared) -> Iterator[tuple[PlannedRequest, Case]]:
    """Every generate request with its case, planned exactly as `run` plans them (the shared
    prefix counted once, not per request)."""
    current: list[Case] = []

    def cases() -> Iterator[tuple[int, Case]]:
        for idx, case in enumerate(iter_cases(prepared.suite)):
            current[:] = [case]
            yield idx, case

    for req in plan_generate(prepared.suite, cases(), prepared.router):
        yield req, current[0]


def _grade(
    prepared: Prepared,
    graders: list[ModelGrader],
    generated: list[GeneratedCase],
    previous: History,
    account: Callable[[PlannedRequest, int], None],
) -> None:
    # A pairwise baseline's outputs are unknown before the run: project with an empty one.
    for req in plan_grade(graders, prepared.grade_routers(), generated, lambda *_: ""):
        tokens, _ = previous.get(
            ("grade", req.case_id, req.epoch, req.grader), (req.max_tokens, "")
        )
        account(req, tokens)

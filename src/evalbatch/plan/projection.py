"""`plan`: project a suite's tokens and cost per strategy before a cent is spent, no API calls.

Requests are rendered exactly as `run` would send them. Input tokens come from the local
tokenizer (exact against the sandbox; an estimate against the real API) or from the API's
count_tokens. Output tokens come from the last comparable run's actual outputs when one exists,
else from max_tokens (an upper bound).

The prompt cache is projected under two stated assumptions, because the real Batches API reads
entries written inside the same batch only best-effort ("typically 30%-98%" of hits): the *best
case* (the headline) lets every request read what any earlier request wrote, as if batch items
ran one after another; the *worst case* lets a batch item read only what was written before its
batch (warm-up requests), so every other item writes its prefix again. Neither is a claim
about how the real API behaves on a given day; a real run should land between them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..catalog import Catalog
from ..catalog.pricing import counterfactuals
from ..catalog.tokenizer import Breakpoint, breakpoints, count_request, request_blocks
from ..graders.base import ModelGrader
from ..records import Case, PlannedRequest, Usage
from ..store.db import Store
from ..suite.cases import iter_cases
from .auto_cache import AutoCache
from .caching import warm_body
from .prepare import Prepared
from .requests import GeneratedCase, plan_generate, plan_grade, planned_body

# (step, case id, epoch, grader) -> (output tokens, text)
History = dict[tuple[str, str, int, str | None], tuple[int, str]]

STRATEGIES = ("plan", "sync", "no_cache", "no_routing", "naive")
OUTPUT_KEYS = tuple(f"{name}:output" for name in STRATEGIES)  # each strategy's output side
# The prompt-cache assumptions `plan` projects under; the first is the headline.
CACHE_ASSUMPTIONS = ("best", "worst")
CACHE_ASSUMPTION_TEXT = {
    "best": (
        "best case: each shared prefix is written once (by its first request, or its warm-up "
        "request) and read by every later request, as if batch items ran one after another"
    ),
    "worst": (
        "worst case: a batch item reads only what was written before its batch (warm-up "
        "requests); every other batch item writes its prefix again"
    ),
}
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

    def add(self, usage: Usage, cf: Any, output: tuple[float, ...], n: int) -> None:
        """``n`` requests that each used ``usage``, priced ``cf`` (with ``output`` the output
        side of each strategy)."""
        self.requests += n
        self.input_tokens += n * usage.input_tokens
        self.cache_write_tokens += n * usage.cache_write
        self.cache_read_tokens += n * usage.cache_read
        self.output_tokens += n * usage.output_tokens
        for name, value in zip(
            STRATEGIES, (cf.actual, cf.sync, cf.no_cache, cf.no_routing, cf.naive), strict=True
        ):
            self.costs[name] += n * value
        for key, value in zip(OUTPUT_KEYS, output, strict=True):
            self.costs[key] = self.costs.get(key, 0.0) + n * value


Lines = dict[tuple[str, str], ProjectionLine]  # (step, model) -> its running totals
# (step, model, batch, the usage's token counts) -> how many requests: requests with the same
# usage are priced once (a tuple of ints hashes faster than the Usage it stands for)
UsageKey = tuple[int, int, int, int, int]
Tally = dict[tuple[str, str, bool, UsageKey], int]


@dataclass
class Projection:
    """Lines per (step, model) under each cache assumption; `lines` is the best case, the one
    every figure without an explicit assumption (headline, budget guard) uses."""

    suite: str
    mode: str
    cases: int
    lines: list[ProjectionLine]
    token_source: str
    output_source: str
    warm_requests: int = 0
    worst_lines: list[ProjectionLine] = field(default_factory=list)

    def lines_for(self, assumption: str = "best") -> list[ProjectionLine]:
        return self.worst_lines if assumption == "worst" else self.lines

    def total(self, strategy: str, assumption: str = "best") -> float:
        return sum(line.costs[strategy] for line in self.lines_for(assumption))

    def input_side(self, strategy: str = "plan", assumption: str = "best") -> float:
        """The cost of input tokens only (uncached + writes + reads), for the accuracy check."""
        return self.total(strategy, assumption) - self.output_cost(strategy)

    def output_cost(self, strategy: str = "plan") -> float:
        # Output tokens and their price band are the same under every cache assumption.
        return sum(line.costs.get(f"{strategy}:output", 0.0) for line in self.lines)

    def cache_range_differs(self) -> bool:
        """True when the assumptions give different figures (some batch item reads a prefix
        that an earlier item of its own batch wrote)."""
        return self.total("plan", "worst") != self.total("plan", "best")

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
            "lines": [_line_dict(x) for x in self.lines],
            "cache_assumption": "best",
            "cache_range": {a: self._assumption_dict(a, naive) for a in CACHE_ASSUMPTIONS},
        }

    def _assumption_dict(self, assumption: str, naive: float) -> dict[str, Any]:
        lines = self.lines_for(assumption)
        return {
            "assumption": CACHE_ASSUMPTION_TEXT[assumption],
            "strategies": {s: self.total(s, assumption) for s in STRATEGIES},
            "input_side": {s: self.input_side(s, assumption) for s in STRATEGIES},
            "savings_vs_naive": {
                s: (1 - self.total(s, assumption) / naive) if naive else 0.0 for s in STRATEGIES
            },
            "cache_write_tokens": sum(x.cache_write_tokens for x in lines),
            "cache_read_tokens": sum(x.cache_read_tokens for x in lines),
            "lines": [_line_dict(x) for x in lines],
        }


def _line_dict(x: ProjectionLine) -> dict[str, Any]:
    return {
        "step": x.step,
        "model": x.model,
        "requests": x.requests,
        "input_tokens": x.input_tokens,
        "cache_write_tokens": x.cache_write_tokens,
        "cache_read_tokens": x.cache_read_tokens,
        "output_tokens": x.output_tokens,
        "costs": {s: x.costs[s] for s in STRATEGIES},
    }


class CacheModel:
    """The prompt cache as `plan` assumes it. With ``in_batch_reads`` (the best case) the first
    request with a prefix writes it and every later one reads it (each write is visible to the
    next request). Without it (the worst case) a batch item's write is never read by anyone:
    only writes of requests outside batches (warm-up and sync requests) are. The sandbox's own
    cache (sandbox/cache.py) is written apart, as an oracle; a test holds the two together."""

    def __init__(self, catalog: Catalog, *, in_batch_reads: bool = True) -> None:
        self._seen: set[bytes] = set()
        self._catalog = catalog
        self._in_batch_reads = in_batch_reads
        # A model whose provider caches by itself (OpenAI), whatever the suite's `cache:` says.
        self._auto = AutoCache(catalog, in_batch_reads=in_batch_reads)

    def usage(
        self,
        params: dict[str, Any],
        input_total: int,
        output: int,
        *,
        batch_item: bool = False,
        points: list[Breakpoint] | None = None,
    ) -> Usage:
        """``points``: the request's breakpoints when the caller has them already."""
        if self._catalog.model(params["model"]).caches_automatically:
            return self._auto.usage(params, input_total, output, batch_item=batch_item)
        if points is None:
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
            if self._in_batch_reads or not batch_item:
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
    # Each cache assumption keeps its own lines and its own cache; the requests are rendered
    # and counted once for both.
    books: dict[str, tuple[Tally, CacheModel]] = {
        "best": ({}, CacheModel(prepared.catalog)),
        "worst": ({}, CacheModel(prepared.catalog, in_batch_reads=False)),
    }
    warm = batch and suite.cache.mode != "off" and suite.cache.warm
    warmed: set[bytes] = set()
    counter = count_tokens or count_request

    def add(tally: Tally, step: str, model: str, usage: Usage, is_batch: bool) -> None:
        u = usage
        tokens = (u.input_tokens, u.output_tokens, u.cache_write_5m, u.cache_write_1h, u.cache_read)
        key = (step, model, is_batch, tokens)
        tally[key] = tally.get(key, 0) + 1

    def account(req: PlannedRequest, output_tokens: int) -> None:
        params = planned_body(req, prepared.ttl, prepared.catalog)
        if count_tokens is None and not _needs_blocks(params):
            # No breakpoint and no tools: the planner's own count is the request's count.
            usage = Usage(input_tokens=req.input_estimate, output_tokens=output_tokens)
            if not prepared.catalog.model(req.model).caches_automatically:
                for tally, _ in books.values():
                    add(tally, req.step, req.model, usage, batch)
                return
        blocks = request_blocks(params)  # tokenized once for the count and both caches
        points = breakpoints(params["model"], blocks)
        if warm and "system" in params and points and points[-1].key not in warmed:
            warmed.add(points[-1].key)
            wp = warm_body(params)
            wp_tokens = counter(wp)
            for tally, cache in books.values():
                add(tally, "warm", req.model, cache.usage(wp, wp_tokens, 1), False)
        # once: with --count-tokens api, a count is an API call
        input_total = count_tokens(params) if count_tokens else sum(b.tokens for b in blocks)
        for tally, cache in books.values():
            usage = cache.usage(params, input_total, output_tokens, batch_item=batch, points=points)
            add(tally, req.step, req.model, usage, batch)

    model_graders = prepared.model_graders()
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

    priced: dict[tuple[str, bool, UsageKey], tuple[Any, tuple[float, ...]]] = {}

    def ordered(tally: Tally) -> list[ProjectionLine]:
        lines: Lines = {}
        for (step, model, is_batch, tokens), n in tally.items():
            usage = Usage(*tokens)
            found = priced.get((model, is_batch, tokens))
            if found is None:  # both assumptions mostly share their usages: price each once
                cf = counterfactuals(
                    usage,
                    model,
                    batch=is_batch,
                    strongest=prepared.strongest,
                    catalog=prepared.catalog,
                )
                found = priced[model, is_batch, tokens] = (
                    cf,
                    _output_costs(usage, model, is_batch, prepared),
                )
            line = lines.setdefault((step, model), ProjectionLine(step, model))
            line.add(usage, found[0], found[1], n)
        return sorted(lines.values(), key=lambda x: (order.get(x.step, 3), x.model))

    return Projection(
        suite.name,
        suite.mode,
        prepared.case_count,
        ordered(books["best"][0]),
        token_source,
        output_source,
        len(warmed),
        worst_lines=ordered(books["worst"][0]),
    )


def _needs_blocks(params: dict[str, Any]) -> bool:
    """True when a request's blocks must be tokenized again: it carries a cache breakpoint
    (whose prefix is keyed by digest) or tools (which the planner's estimate leaves out)."""
    if params.get("tools"):
        return True
    system = params.get("system")
    if isinstance(system, list) and any("cache_control" in b for b in system):
        return True
    for message in params["messages"]:
        content = message.get("content")
        if isinstance(content, list) and any(
            isinstance(b, dict) and "cache_control" in b for b in content
        ):
            return True
    return False


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

"""Where the money went: cost and score by route, and the prompt cache per shared prefix.

Routes come from each request's recorded reason ("difficulty=hard", "rule 1: ...", "model").
A case's score belongs to the route its *generation* took: that is the decision routing made.

Prefix cache visibility: for each shared prefix (a system prompt or rubric, stored once in
``prefixes``) and each model it was sent to, the prefix tokens of all its requests split into
read from cache, written to cache, and uncached (``tokens - read - written``, never below 0).
A prefix that was never read gets a warning with the likely reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, func, select

from ..catalog.models import Catalog
from ..store import schema


@dataclass
class RouteLine:
    step: str
    route: str
    model: str
    requests: int
    cost: float
    naive_cost: float
    cases_scored: int
    cases_passed: int

    @property
    def pass_rate(self) -> float | None:
        return self.cases_passed / self.cases_scored if self.cases_scored else None


@dataclass
class PrefixLine:
    source: str
    sha256: str
    model: str
    tokens: int
    requests: int
    read: int
    written: int
    uncached: int
    warning: str | None = None

    @property
    def read_share(self) -> float:
        return self._share(self.read)

    @property
    def written_share(self) -> float:
        return self._share(self.written)

    @property
    def uncached_share(self) -> float:
        return self._share(self.uncached)

    def _share(self, tokens: int) -> float:
        total = self.read + self.written + self.uncached
        return tokens / total if total else 0.0


def route_lines(conn: Any, run_id: str) -> list[RouteLine]:
    r, q = schema.results.c, schema.requests.c
    rows = conn.execute(
        select(
            r.step,
            func.coalesce(r.route, "model"),
            r.model,
            func.count(),
            func.sum(r.cost_usd),
            func.sum(r.naive_cost_usd),
        )
        .where(and_(r.run_id == run_id, r.step != "warm"))
        .group_by(r.step, func.coalesce(r.route, "model"), r.model)
        .order_by(r.step, r.model)
    ).fetchall()
    passes = _pass_by_generate_route(conn, run_id, q)
    lines = []
    for step, route, model, n, cost, naive in rows:
        scored, passed = passes.get((route, model), (0, 0)) if step == "generate" else (0, 0)
        lines.append(
            RouteLine(
                step, route, model, int(n), float(cost or 0), float(naive or 0), scored, passed
            )
        )
    return lines


def case_pass_subquery(run_id: str) -> Any:
    """(case_idx, epoch, ok): a case passes when every grader passed it; an error is no pass."""
    s = schema.scores.c
    return (
        select(s.case_idx, s.epoch, func.min(case((s.passed.is_(True), 1), else_=0)).label("ok"))
        .where(s.run_id == run_id)
        .group_by(s.case_idx, s.epoch)
        .subquery()
    )


def _pass_by_generate_route(
    conn: Any, run_id: str, q: Any
) -> dict[tuple[str, str], tuple[int, int]]:
    per_case = case_pass_subquery(run_id)
    rows = conn.execute(
        select(
            func.coalesce(q.route, "model"),
            q.model,
            func.count(),
            func.sum(per_case.c.ok),
        )
        .select_from(
            per_case.join(
                schema.requests,
                and_(
                    q.run_id == run_id,
                    q.step == "generate",
                    q.case_idx == per_case.c.case_idx,
                    q.epoch == per_case.c.epoch,
                ),
            )
        )
        .group_by(func.coalesce(q.route, "model"), q.model)
    ).fetchall()
    return {(route, model): (int(n), int(ok or 0)) for route, model, n, ok in rows}


def prefix_lines(conn: Any, run_id: str, catalog: Catalog, cache_off: bool) -> list[PrefixLine]:
    p, q, r = schema.prefixes.c, schema.requests.c, schema.results.c
    rows = conn.execute(
        select(
            p.source,
            p.sha256,
            p.tokens,
            q.model,
            func.count(),
            func.sum(_capped(r.cache_read, p.tokens)),
            func.sum(_capped(r.cache_write_5m + r.cache_write_1h, p.tokens)),
        )
        .select_from(
            schema.prefixes.join(schema.requests, q.prefix_id == p.id).join(
                schema.results, r.request_id == q.id
            )
        )
        .where(and_(p.run_id == run_id, q.step != "warm", r.kind == "succeeded"))
        .group_by(p.id, q.model)
        .order_by(p.source, q.model)
    ).fetchall()
    lines = []
    for source, sha, tokens, model, n, read, written in rows:
        read, written, n = int(read or 0), int(written or 0), int(n)
        uncached = max(0, n * int(tokens) - read - written)
        line = PrefixLine(source, sha[:12], model, int(tokens), n, read, written, uncached)
        if not cache_off and read == 0:
            line.warning = _never_hit_reason(line, catalog)
        lines.append(line)
    return lines


def _capped(value: Any, cap: Any) -> Any:
    return case((value < cap, value), else_=cap)


def _never_hit_reason(line: PrefixLine, catalog: Catalog) -> str:
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
    return (
        f"{where} never hit the cache across {line.requests} requests: does the prefix change "
        "per case, or did every request start before the first write finished (try cache.warm)?"
    )


def warming_value(conn: Any, run_id: str, catalog: Catalog) -> dict[str, Any] | None:
    """What warming cost, and how many cache writes it must spare to pay for itself.

    There is no observed counterfactual (the same run without warming), so the report states the
    break-even instead of a verdict: each write warming spares costs (write - read) at the batch
    rate. A cold batch processed in parallel writes each prefix once per concurrent wave, so in
    practice many writes are spared (benchmarks/cost.py measures both). None when not warmed."""
    r, q, p = schema.results.c, schema.requests.c, schema.prefixes.c
    rows = conn.execute(
        select(r.model, r.cost_usd, p.tokens)
        .select_from(
            schema.results.join(schema.requests, q.id == r.request_id).join(
                schema.prefixes, p.id == q.prefix_id
            )
        )
        .where(and_(r.run_id == run_id, r.step == "warm"))
    ).fetchall()
    if not rows:
        return None
    cost = sum(float(row.cost_usd or 0) for row in rows)
    spared_value = 0.0
    for row in rows:
        band = catalog.prices_for(row.model).bands[0]
        spared_value += row.tokens * (band.cache_write_1h - band.cache_read) / 1e6
    spared_value *= catalog.batch_discount / len(rows)  # one spared write, per prefix, on average
    writes = conn.execute(
        select(func.count()).where(
            and_(
                r.run_id == run_id,
                r.step != "warm",
                r.kind == "succeeded",
                (r.cache_write_5m + r.cache_write_1h) > 0,
            )
        )
    ).scalar()
    return {
        "requests": len(rows),
        "cost": cost,
        "break_even_writes_per_prefix": cost / spared_value / len(rows) if spared_value else None,
        "writes_after_warming": int(writes or 0),
    }

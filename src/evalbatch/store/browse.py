"""Browsing reads, for the viewer and `export`: a run's case table (search, filters, sorting,
paged on the server), one case with its prompts, results and verdicts, the filter facets, the
export rows (streamed, flat memory) and a mark that says when the run listing changed.

Paging selects the page's request ids on indexed columns first and reads the rows' details for
those ids only, so the last page of 100,000 cases costs about what the first one does.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import orjson
from sqlalchemy import Engine, String, and_, case, exists, func, literal, or_, select, true
from sqlalchemy import cast as sa_cast
from sqlalchemy.engine import Connection, Row
from sqlalchemy.sql import ColumnElement, Select
from sqlalchemy.sql.selectable import FromClause

from ..errors import NotFound
from ..records import CLOSED_RUN, GENERATE, Case
from . import schema
from .browse_case import case_detail, score_view
from .browse_export import export_rows
from .browse_records import (
    PREVIEW_CHARS,
    CaseDetail,
    CaseLine,
    CasePage,
    CaseQuery,
    CaseStatus,
    ExportRow,
    Facets,
    StoreMark,
)
from .records import ScoreView

_NO_ROUTE = "model"  # a request without a routing reason went to the suite's one model
_MAX_TAGS = 200


def case_status(run_id: ColumnElement[Any], case_idx: Any, epoch: Any) -> ColumnElement[str]:
    """A case x epoch's status from its scores (correlated). "pass" is the one definition of
    `reports.case_pass_subquery` (every grader passed it; an error is no pass); a test pins
    that the two agree."""
    s = schema.scores.alias("v")
    ok = func.min(case((s.c.passed.is_(True), 1), else_=0))
    err = func.max(case((s.c.error.is_not(None), 1), else_=0))
    return (
        select(
            case(
                (func.count() == 0, literal("pending")),
                (err == 1, literal("error")),
                (ok == 1, literal("pass")),
                else_=literal("fail"),
            )
        )
        .where(and_(s.c.run_id == run_id, s.c.case_idx == case_idx, s.c.epoch == epoch))
        .scalar_subquery()
    )


def grader_verdict(error: Any, passed: Any) -> ColumnElement[str]:
    return case(
        (error.is_not(None), literal("error")),
        (passed.is_(True), literal("pass")),
        else_=literal("fail"),
    )


def _preview(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS] + "…"


class Browse:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def _sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    # -- the run listing's mark ---------------------------------------------------------------

    def mark(self) -> StoreMark:
        runs = schema.runs.c
        with self.engine.connect() as conn:
            count, updated = conn.execute(select(func.count(), func.max(runs.updated_at))).one()
            open_runs = conn.execute(
                select(func.count()).where(runs.status.not_in(tuple(CLOSED_RUN)))
            ).scalar()
        return StoreMark(int(count or 0), float(updated or 0.0), int(open_runs or 0))

    # -- facets -------------------------------------------------------------------------------

    def facets(self, run_id: str) -> Facets:
        r, c = schema.requests.c, schema.cases.c
        route = func.coalesce(r.route, literal(_NO_ROUTE, String))
        with self.engine.connect() as conn:
            manifest = conn.execute(
                select(schema.runs.c.manifest).where(schema.runs.c.id == run_id)
            ).scalar()
            if manifest is None:
                raise NotFound(f"no run {run_id!r} in the store")
            graders = [g["name"] for g in orjson.loads(manifest).get("graders", [])]
            pairs = conn.execute(
                select(r.model, route)
                .where(and_(r.run_id == run_id, r.step == GENERATE))
                .group_by(r.model, route)
            ).fetchall()
            if self._sqlite:
                tags = func.json_each(c.data, "$.tags").table_valued("value")
                tag_query = (
                    select(tags.c.value)
                    .select_from(schema.cases.join(tags, true()))
                    .where(c.run_id == run_id)
                    .distinct()
                )
            else:
                element = func.jsonb_array_elements_text(sa_cast(c.data, _jsonb())["tags"])
                tag_query = select(element).where(c.run_id == run_id).distinct()
            tag_values = conn.execute(tag_query.limit(_MAX_TAGS)).scalars().all()
        return Facets(
            graders=tuple(graders),
            models=tuple(sorted({str(p[0]) for p in pairs})),
            routes=tuple(sorted({str(p[1]) for p in pairs})),
            tags=tuple(sorted(str(t) for t in tag_values if t is not None)),
        )

    def case_detail(self, run_id: str, case_id: str) -> CaseDetail:
        """One case with its prompts, results and scores, per epoch; NotFound if absent."""
        return case_detail(self.engine, run_id, case_id)

    def export_rows(self, run_id: str) -> Iterator[ExportRow]:
        """Every case x epoch x grader score with its case, generation and grading, in case
        order, streamed with flat memory."""
        return export_rows(self.engine, run_id)

    # -- the case table -----------------------------------------------------------------------

    def case_page(self, run_id: str, query: CaseQuery) -> CasePage:
        """A page of the case table. The plain listing (case order, no filter) counts and
        pages on the requests' unique index alone; a filtered or sorted one reads the matching
        ids once, in order (a few MB at 100,000 cases), and takes the count and the page from
        that one pass instead of scanning twice."""
        r = schema.requests.alias("r")
        c = schema.cases.alias("c")
        x = schema.results.alias("x")
        ids_query = self._filtered(run_id, query, r, c, x)
        ordered = ids_query.order_by(*self._order(query, r, c, x))
        plain = query == CaseQuery(offset=query.offset, limit=query.limit)
        with self.engine.connect() as conn:
            if plain:
                total = int(conn.execute(ids_query.with_only_columns(func.count())).scalar() or 0)
                ids = list(conn.execute(ordered.offset(query.offset).limit(query.limit)).scalars())
            else:
                every = list(conn.execute(ordered).scalars())
                total = len(every)
                ids = every[query.offset : query.offset + query.limit]
                del every
            lines = self._lines(conn, run_id, ids, r, c, x)
        return CasePage(total, query.offset, query.limit, tuple(lines))

    def _filtered(self, run_id: str, query: CaseQuery, r: Any, c: Any, x: Any) -> Select[Any]:
        """``SELECT r.id`` of the generate requests that match, with only the joins it needs."""
        conditions: list[ColumnElement[bool]] = [r.c.run_id == run_id, r.c.step == GENERATE]
        source: FromClause = r
        if query.q or query.tag or query.sort == "id":
            source = source.join(c, and_(c.c.run_id == r.c.run_id, c.c.idx == r.c.case_idx))
        if query.q or query.sort in ("cost", "tokens"):
            source = source.outerjoin(x, x.c.request_id == r.c.id)
        if query.q:
            conditions.append(
                or_(
                    self._like(c.c.case_id, query.q),
                    self._like(c.c.data, query.q),
                    self._like(x.c.text, query.q),
                )
            )
        if query.tag:
            conditions.append(self._has_tag(c, query.tag))
        if query.model:
            conditions.append(r.c.model == query.model)
        if query.route:
            conditions.append(func.coalesce(r.c.route, literal(_NO_ROUTE, String)) == query.route)
        if query.grader:
            conditions.append(self._grader_condition(r, query.grader, query.status))
        elif query.status:
            conditions.append(case_status(r.c.run_id, r.c.case_idx, r.c.epoch) == query.status)
        return select(r.c.id).select_from(source).where(and_(*conditions))

    def _like(self, column: Any, text: str) -> ColumnElement[bool]:
        # SQLite's LIKE already ignores ASCII case; lower() on every row would double the cost.
        if self._sqlite:
            return cast(ColumnElement[bool], column.contains(text, autoescape=True))
        return cast(ColumnElement[bool], column.icontains(text, autoescape=True))

    def _has_tag(self, c: Any, tag: str) -> ColumnElement[bool]:
        if self._sqlite:
            tags = func.json_each(c.c.data, "$.tags").table_valued("value")
            return exists(select(literal(1)).select_from(tags).where(tags.c.value == tag))
        return sa_cast(c.c.data, _jsonb())["tags"].contains([tag])

    @staticmethod
    def _grader_condition(r: Any, grader: str, status: CaseStatus | None) -> ColumnElement[bool]:
        s = schema.scores.alias("g")
        scored = and_(
            s.c.run_id == r.c.run_id,
            s.c.case_idx == r.c.case_idx,
            s.c.epoch == r.c.epoch,
            s.c.grader == grader,
        )
        if status == "pending":
            return ~exists(select(literal(1)).select_from(s).where(scored))
        if status is None:
            return exists(select(literal(1)).select_from(s).where(scored))
        verdict = grader_verdict(s.c.error, s.c.passed)
        return exists(select(literal(1)).select_from(s).where(and_(scored, verdict == status)))

    @staticmethod
    def _order(query: CaseQuery, r: Any, c: Any, x: Any) -> list[Any]:
        key: Any = {
            "case": r.c.idx,
            "id": c.c.case_id,
            "status": case_status(r.c.run_id, r.c.case_idx, r.c.epoch),
            "model": r.c.model,
            "cost": func.coalesce(x.c.cost_usd, 0.0),
            "tokens": func.coalesce(x.c.output_tokens, 0),
        }[query.sort]
        first = key.desc() if query.descending else key.asc()
        return [first] if query.sort == "case" else [first, r.c.idx.asc()]

    @staticmethod
    def _lines(
        conn: Connection, run_id: str, ids: Sequence[int], r: Any, c: Any, x: Any
    ) -> list[CaseLine]:
        if not ids:
            return []
        rows: dict[int, Any] = {
            row.id: row
            for row in conn.execute(
                select(
                    r.c.id,
                    r.c.case_idx,
                    r.c.case_id,
                    r.c.epoch,
                    r.c.model,
                    func.coalesce(r.c.route, literal(_NO_ROUTE, String)).label("route"),
                    c.c.data,
                    func.substr(x.c.text, 1, PREVIEW_CHARS + 1).label("text"),
                    x.c.kind,
                    x.c.input_tokens,
                    x.c.output_tokens,
                    x.c.cost_usd,
                    func.substr(x.c.error_message, 1, PREVIEW_CHARS + 1).label("error"),
                    case_status(r.c.run_id, r.c.case_idx, r.c.epoch).label("status"),
                )
                .select_from(
                    r.join(c, and_(c.c.run_id == r.c.run_id, c.c.idx == r.c.case_idx)).outerjoin(
                        x, x.c.request_id == r.c.id
                    )
                )
                .where(r.c.id.in_(list(ids)))
            )
        }
        s = schema.scores.c
        scores: dict[tuple[int, int], list[ScoreView]] = {}
        for row in conn.execute(
            select(schema.scores)
            .where(
                and_(s.run_id == run_id, s.case_idx.in_({row.case_idx for row in rows.values()}))
            )
            .order_by(s.case_idx, s.epoch, s.grader)
        ):
            scores.setdefault((row.case_idx, row.epoch), []).append(score_view(row))
        return [_line(rows[i], scores.get((rows[i].case_idx, rows[i].epoch), [])) for i in ids]


def _line(row: Row[Any], scores: list[ScoreView]) -> CaseLine:
    case_ = Case.from_json(row.data)
    if row.kind is None or row.kind == "succeeded":
        output = row.text or ""
    else:
        output = f"[{row.kind}] {row.error or ''}".strip()
    return CaseLine(
        case_idx=row.case_idx,
        case_id=row.case_id,
        epoch=row.epoch,
        status=cast(CaseStatus, row.status),
        input=_preview(case_.shown_input()),
        target=_preview(case_.target),
        tags=case_.tags,
        output=_preview(output),
        outcome=row.kind,
        model=row.model,
        route=row.route,
        input_tokens=int(row.input_tokens or 0),
        output_tokens=int(row.output_tokens or 0),
        cost_usd=float(row.cost_usd or 0.0),
        scores=tuple(scores),
    )


def check_exists(url: str) -> None:
    """Refuse a SQLite store file that does not exist (opening it would create an empty one)."""
    if not url.startswith("sqlite:///") or url.startswith("sqlite:///:memory:"):
        return
    path = Path(url.removeprefix("sqlite:///").split("?", 1)[0])
    if not path.exists():
        raise NotFound(
            f"no store at {path}: run a suite first (`evalbatch run`), or point --db, "
            "EVALBATCH_DB or EVALBATCH_HOME at an existing store"
        )


def _jsonb() -> Any:
    """PostgreSQL's JSONB type, imported only on a PostgreSQL store (the dialect costs a
    SQLite store's commands start-up time)."""
    from sqlalchemy.dialects import postgresql

    return postgresql.JSONB

"""The case table's query string, checked: what a page or API call may ask for, with one-line
errors for what it may not (a 400), and the links that change one part of it.

    q       search: case id, the case's fields, the output (substring, ASCII case ignored)
    status  pass | fail | error | pending      grader  narrows status to one grader's verdict
    route, model, tag                          exact values (see the run's facets)
    sort    case | id | status | model | cost | tokens       order  asc | desc
    offset  >= 0                               limit   1..MAX_LIMIT (larger is capped)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Final
from urllib.parse import urlencode

from ..errors import InputError
from ..store.browse_records import CASE_SORTS, CASE_STATUSES, CaseQuery

DEFAULT_LIMIT: Final = 50
MAX_LIMIT: Final = 500
MAX_TEXT: Final = 200  # longest search or filter value


class BadRequest(InputError):
    """A query string the viewer cannot serve (HTTP 400)."""


def _int(params: Mapping[str, str], name: str, default: int) -> int:
    raw = params.get(name, "")
    if raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer (got {raw[:40]!r})") from None


def _text(params: Mapping[str, str], name: str) -> str | None:
    value = params.get(name, "").strip()
    if len(value) > MAX_TEXT:
        raise BadRequest(f"{name} is longer than {MAX_TEXT} characters")
    if "\x00" in value:
        raise BadRequest(f"{name} contains a NUL character")
    return value or None


def case_query(params: Mapping[str, str]) -> CaseQuery:
    status = _text(params, "status")
    if status is not None and status not in CASE_STATUSES:
        raise BadRequest(f"status must be one of {', '.join(CASE_STATUSES)} (got {status!r})")
    sort = _text(params, "sort") or "case"
    if sort not in CASE_SORTS:
        raise BadRequest(f"sort must be one of {', '.join(CASE_SORTS)} (got {sort!r})")
    order = _text(params, "order") or "asc"
    if order not in ("asc", "desc"):
        raise BadRequest(f"order must be asc or desc (got {order!r})")
    offset = _int(params, "offset", 0)
    if offset < 0:
        raise BadRequest(f"offset must be 0 or more (got {offset})")
    limit = _int(params, "limit", DEFAULT_LIMIT)
    if limit < 1:
        raise BadRequest(f"limit must be 1 or more (got {limit})")
    return CaseQuery(
        q=_text(params, "q") or "",
        status=status,
        grader=_text(params, "grader"),
        route=_text(params, "route"),
        model=_text(params, "model"),
        tag=_text(params, "tag"),
        sort=sort,
        descending=order == "desc",
        offset=offset,
        limit=min(limit, MAX_LIMIT),
    )


def query_string(query: CaseQuery, **changes: Any) -> str:
    """The query string for ``query`` with ``changes`` applied, defaults left out."""
    query = replace(query, **changes)
    items = {
        "q": query.q,
        "status": query.status,
        "grader": query.grader,
        "route": query.route,
        "model": query.model,
        "tag": query.tag,
        "sort": None if query.sort == "case" else query.sort,
        "order": "desc" if query.descending else None,
        "offset": query.offset or None,
        "limit": None if query.limit == DEFAULT_LIMIT else query.limit,
    }
    return urlencode({k: v for k, v in items.items() if v})


def is_filtered(query: CaseQuery) -> bool:
    return bool(query.q or query.status or query.grader or query.route or query.model or query.tag)

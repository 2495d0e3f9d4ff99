"""Writing planned Requests (shared prefixes stored once) and rebuilding their API bodies."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.engine import Connection

from ..catalog.models import Catalog
from ..catalog.tokenizer import count_request
from ..plan.caching import with_breakpoint
from ..plan.steps import GENERATE, GRADE, WARM, PlannedRequest
from . import schema

_CHUNK = 2000


_STEP_LETTER = {GENERATE: "g", GRADE: "r", WARM: "w"}
_LETTER_STEP = {v: k for k, v in _STEP_LETTER.items()}


def custom_id(run_id: str, step: str, idx: int) -> str:
    """``{run_id}-g{idx}`` (generate), ``-r`` (grade), ``-w`` (warm): always matches
    ^[a-zA-Z0-9_-]{1,64}$ whatever the case ids are."""
    return f"{run_id}-{_STEP_LETTER[step]}{idx}"


def parse_custom_id(value: str) -> tuple[str, str, int] | None:
    """custom_id -> (run_id, step, idx), or None when it is not one of ours."""
    run_id, _, tail = value.rpartition("-")
    if not run_id or len(tail) < 2 or tail[0] not in _LETTER_STEP or not tail[1:].isdigit():
        return None
    return run_id, _LETTER_STEP[tail[0]], int(tail[1:])


def insert_planned(
    conn: Connection, run_id: str, planned: Iterable[PlannedRequest], start_idx: int = 0
) -> int:
    """Insert planned requests in chunks; returns how many. Shared prefixes are stored once."""
    prefix_ids: dict[str, tuple[int, int]] = {
        row.sha256: (row.id, row.tokens)
        for row in conn.execute(
            select(schema.prefixes.c.sha256, schema.prefixes.c.id, schema.prefixes.c.tokens).where(
                schema.prefixes.c.run_id == run_id
            )
        )
    }
    rows: list[dict[str, Any]] = []
    idx = start_idx
    for req in planned:
        prefix_id = None
        prefix_tokens = 0
        if req.system:
            prefix_id, prefix_tokens = _prefix(conn, run_id, req, prefix_ids)
        messages = orjson.dumps(req.messages).decode()
        rows.append(
            {
                "run_id": run_id,
                "step": req.step,
                "idx": idx,
                "case_idx": req.case_idx,
                "case_id": req.case_id,
                "epoch": req.epoch,
                "grader": req.grader,
                "model": req.model,
                "route": req.route,
                "prefix_id": prefix_id,
                "messages": messages,
                "max_tokens": req.max_tokens,
                "extra": orjson.dumps(req.extra).decode() if req.extra else None,
                "input_estimate": prefix_tokens + count_request({"messages": req.messages}),
                "status": "pending",
                "attempts": 0,
            }
        )
        idx += 1
        if len(rows) >= _CHUNK:
            conn.execute(schema.requests.insert(), rows)
            rows = []
    if rows:
        conn.execute(schema.requests.insert(), rows)
    return idx - start_idx


def _prefix(
    conn: Connection, run_id: str, req: PlannedRequest, known: dict[str, tuple[int, int]]
) -> tuple[int, int]:
    """(prefix id, tokens) of the request's system blocks, stored once per run."""
    blob = orjson.dumps(req.system, option=orjson.OPT_SORT_KEYS)
    sha = hashlib.sha256(blob).hexdigest()
    if sha not in known:
        tokens = count_request({"system": req.system})
        result = conn.execute(
            schema.prefixes.insert().values(
                run_id=run_id,
                step=req.step,
                source=req.source,
                sha256=sha,
                system=blob.decode(),
                tokens=tokens,
            )
        )
        known[sha] = (int(result.inserted_primary_key[0]), tokens)  # type: ignore[index]
    return known[sha]


def load_prefixes(conn: Connection, run_id: str) -> dict[int, tuple[list[dict[str, Any]], int]]:
    """prefix id -> (system blocks, tokens)."""
    return {
        row.id: (orjson.loads(row.system), row.tokens)
        for row in conn.execute(select(schema.prefixes).where(schema.prefixes.c.run_id == run_id))
    }


def build_params(
    row: Any,
    prefixes: dict[int, tuple[list[dict[str, Any]], int]],
    ttl: str | None,
    catalog: Catalog,
) -> dict[str, Any]:
    """The Messages API body for a stored request, with cache breakpoints per policy."""
    params: dict[str, Any] = {"model": row.model, "max_tokens": row.max_tokens}
    if row.prefix_id is not None:
        blocks, tokens = prefixes[row.prefix_id]
        params["system"] = with_breakpoint(blocks, tokens, row.model, ttl, catalog)
    params["messages"] = orjson.loads(row.messages)
    if row.extra:
        params.update(orjson.loads(row.extra))
    return params

"""Calibrations: what each one ran (so its report can be rebuilt, and the same calibration is
reused instead of paid for twice), and the reads a calibration builds on: a run's generation
routes and its per-case pass/fail."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Engine, and_, func, select
from sqlalchemy.engine import Row

from ..records import GENERATE
from . import schema
from .calibration_records import CalibrationRecord, GenerationRoute
from .reports import case_pass_subquery


def _record(row: Row[Any]) -> CalibrationRecord:
    return CalibrationRecord(
        id=row.id,
        run_id=row.run_id,
        step=row.step,
        key=row.key,
        created_at=row.created_at,
        settings=orjson.loads(row.settings),
        sample=orjson.loads(row.sample),
        runs=orjson.loads(row.runs),
    )


class Calibrations:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, record: CalibrationRecord) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                schema.calibrations.insert().values(
                    id=record.id,
                    run_id=record.run_id,
                    step=record.step,
                    key=record.key,
                    created_at=record.created_at,
                    settings=orjson.dumps(record.settings).decode(),
                    sample=orjson.dumps(record.sample).decode(),
                    runs=orjson.dumps(record.runs).decode(),
                )
            )

    def find(self, run_id: str, step: str, key: str) -> CalibrationRecord | None:
        """The newest calibration of ``run_id`` that ran exactly this (same key)."""
        c = schema.calibrations.c
        with self.engine.connect() as conn:
            row = conn.execute(
                select(schema.calibrations)
                .where(and_(c.run_id == run_id, c.step == step, c.key == key))
                .order_by(c.created_at.desc(), c.id.desc())
                .limit(1)
            ).first()
        return None if row is None else _record(row)

    def of_run(self, run_id: str) -> list[CalibrationRecord]:
        """Every calibration of a run, oldest first."""
        c = schema.calibrations.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(schema.calibrations).where(c.run_id == run_id).order_by(c.created_at, c.id)
            )
            return [_record(row) for row in rows]

    def routes(self, run_id: str) -> list[GenerationRoute]:
        """Each case's generation (epoch 0): its route, model and cost, in case order."""
        r, res = schema.requests.c, schema.results.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    r.case_idx,
                    r.case_id,
                    func.coalesce(r.route, "model"),
                    r.model,
                    func.coalesce(res.cost_usd, 0.0),
                )
                .select_from(schema.requests.outerjoin(schema.results, res.request_id == r.id))
                .where(and_(r.run_id == run_id, r.step == GENERATE, r.epoch == 0))
                .order_by(r.case_idx)
            )
            return [
                GenerationRoute(int(idx), str(cid), str(route), str(model), float(cost))
                for idx, cid, route, model, cost in rows
            ]

    def case_passes(self, run_id: str) -> dict[tuple[str, int], bool]:
        """(case id, epoch) -> whether the case passed every grader (an error is no pass)."""
        per_case = case_pass_subquery(run_id)
        c = schema.cases.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(c.case_id, per_case.c.epoch, per_case.c.ok).select_from(
                    per_case.join(
                        schema.cases, and_(c.run_id == run_id, c.idx == per_case.c.case_idx)
                    )
                )
            )
            return {(str(cid), int(epoch)): bool(ok) for cid, epoch, ok in rows}

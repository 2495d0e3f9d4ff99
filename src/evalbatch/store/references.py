"""Reference-sampled grading in the store: the reference grader's verdicts on its sample
(written as a whole, like scores), and what each grader's requests cost, reference included."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Engine, and_, delete, func, select

from ..records import GRADE
from . import schema
from .calibration_records import GraderCost, ReferenceRow


class References:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def replace(self, run_id: str, pages: Iterable[list[ReferenceRow]]) -> int:
        """Replace the run's reference verdicts, in one transaction; returns how many."""
        written = 0
        with self.engine.begin() as conn:
            conn.execute(
                delete(schema.reference_scores).where(schema.reference_scores.c.run_id == run_id)
            )
            for page in pages:
                if page:
                    conn.execute(
                        schema.reference_scores.insert(),
                        [{"run_id": run_id, **row.__dict__} for row in page],
                    )
                    written += len(page)
        return written

    def of_run(self, run_id: str) -> list[ReferenceRow]:
        s = schema.reference_scores.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(schema.reference_scores)
                .where(s.run_id == run_id)
                .order_by(s.grader, s.case_idx, s.epoch)
            )
            return [
                ReferenceRow(
                    row.case_idx,
                    row.case_id,
                    row.epoch,
                    row.grader,
                    row.model,
                    row.passed,
                    row.value,
                    row.explanation or "",
                    row.error,
                )
                for row in rows
            ]

    def grader_costs(self, run_id: str) -> list[GraderCost]:
        """Per grader and model: the grade step's billed requests and their cost."""
        r = schema.results.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    r.grader, r.model, func.count(), func.sum(r.cost_usd), func.sum(r.sync_cost_usd)
                )
                .where(and_(r.run_id == run_id, r.step == GRADE, r.kind == "succeeded"))
                .group_by(r.grader, r.model)
                .order_by(r.grader, r.model)
            ).fetchall()
        return [
            GraderCost(str(g), str(m), int(n), float(c or 0.0), float(s or 0.0))
            for g, m, n, c, s in rows
        ]

"""Scores: a run's verdicts per case, epoch and grader, written as a whole (re-scoring replaces
them) and read back for comparisons."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Engine, delete, select

from . import schema
from .bulk import insert_rows
from .records import ScoreRecord, ScoreRow


class Scores:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def replace(self, run_id: str, pages: Iterable[list[ScoreRow]]) -> int:
        """Replace the run's scores with ``pages`` of rows, in one transaction; returns how
        many were written. A run without graders writes none (and that is fine)."""
        written = 0
        with self.engine.begin() as conn:
            conn.execute(delete(schema.scores).where(schema.scores.c.run_id == run_id))
            for page in pages:
                if not page:
                    continue
                insert_rows(
                    conn, schema.scores, [{"run_id": run_id, **row.__dict__} for row in page]
                )
                written += len(page)
        return written

    def of_run(self, run_id: str) -> dict[tuple[str, int, str], ScoreRecord]:
        """(case id, epoch, grader) -> the score."""
        s = schema.scores.c
        with self.engine.connect() as conn:
            return {
                (row.case_id, row.epoch, row.grader): ScoreRecord(
                    row.case_idx,
                    row.case_id,
                    row.epoch,
                    row.grader,
                    row.grader_type,
                    row.passed,
                    row.value,
                    row.explanation or "",
                    row.error,
                )
                for row in conn.execute(select(schema.scores).where(s.run_id == run_id))
            }

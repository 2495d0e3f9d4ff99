"""The CI gate at the end of a run: minimum pass rate and/or no regression against a baseline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.engine import Engine

from ..errors import NotFound
from ..store import schema


@dataclass
class GateVerdict:
    failed: bool = False
    lines: list[str] = field(default_factory=list)
    baseline: str | None = None
    comparison: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "failed": self.failed,
            "messages": self.lines,
            "baseline": self.baseline,
            "comparison_verdict": self.comparison,
        }


def latest_comparable(engine: Engine, run_id: str) -> str | None:
    """The newest completed run of the same suite started before this one.

    Its manifest may differ (that is what a regression gate is for: a new prompt or model);
    `compare` says what changed and compares only the cases and graders both runs have."""
    runs = schema.runs.c
    with engine.connect() as conn:
        row = conn.execute(select(runs.suite_name, runs.created_at).where(runs.id == run_id)).one()
        return conn.execute(
            select(runs.id)
            .where(
                and_(
                    runs.suite_name == row.suite_name,
                    runs.status == "done",
                    runs.id != run_id,
                    runs.created_at <= row.created_at,
                )
            )
            .order_by(runs.created_at.desc(), runs.id.desc())
            .limit(1)
        ).scalar()


def check_gate(engine: Engine, summary: Any, baseline: str | None) -> GateVerdict:
    from ..run.engine import load_run

    verdict = GateVerdict()
    if summary.gate_failed:
        verdict.failed = True
    suite = load_run(engine, summary.run["id"]).suite
    wants_baseline = baseline or ("latest" if suite.gate.no_regression else None)
    if not wants_baseline or summary.run["status"] != "done":
        return verdict
    base_id = (
        latest_comparable(engine, summary.run["id"])
        if wants_baseline == "latest"
        else wants_baseline
    )
    if base_id is None:
        verdict.lines.append("no comparable baseline run yet: regression check skipped")
        return verdict
    from ..report.compare_render import verdict_line
    from .compare import compare_runs

    try:
        cmp = compare_runs(
            engine,
            base_id,
            summary.run["id"],
            alpha=suite.gate.alpha,
            min_effect=suite.gate.min_effect,
        )
    except NotFound:
        raise
    verdict.baseline, verdict.comparison = base_id, cmp.verdict
    verdict.lines.append(verdict_line(cmp))
    if cmp.verdict == "regressed":
        verdict.failed = True
    return verdict

"""Scoring: every case, epoch and grader gets a Score, from the stored outputs and verdicts.

Pages through the run's cases so memory stays flat; re-scoring replaces the run's scores.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from ..graders.base import Grader, ModelGrader
from ..records import GENERATE, GRADE, Case, Score
from ..store.db import Store
from ..store.records import ScoreRow, StepResult

_PAGE = 1000


def score_run(store: Store, run_id: str, graders: Sequence[Grader], epochs: int) -> int:
    """Write the run's scores; returns how many."""
    return store.scores.replace(run_id, _pages(store, run_id, graders, epochs))


def _pages(
    store: Store, run_id: str, graders: Sequence[Grader], epochs: int
) -> Iterator[list[ScoreRow]]:
    start = 0
    while cases := store.runs.cases_page(run_id, start, _PAGE):
        lo, hi = cases[0][0], cases[-1][0]
        outputs = store.results.step_results(run_id, GENERATE, lo, hi)
        verdicts = store.results.step_results(run_id, GRADE, lo, hi) if _graded(graders) else {}
        rows = []
        for idx, data in cases:
            case = Case.from_json(data)
            for epoch in range(epochs):
                generated = outputs.get((idx, epoch, None))
                for grader in graders:
                    verdict = verdicts.get((idx, epoch, grader.name))
                    score = _score(grader, case, generated, verdict)
                    rows.append(
                        ScoreRow(
                            case_idx=idx,
                            case_id=case.id,
                            epoch=epoch,
                            grader=grader.name,
                            grader_type=grader.kind,
                            passed=score.passed,
                            value=score.value,
                            explanation=score.explanation,
                            error=score.error,
                        )
                    )
        yield rows
        start = hi + 1


def _graded(graders: Sequence[Grader]) -> bool:
    return any(isinstance(g, ModelGrader) for g in graders)


def _failure(row: StepResult | None) -> str | None:
    if row is None:
        return "no result"
    if row.kind == "succeeded":
        return None
    if row.kind is None:
        return f"no result ({row.status}{': ' + row.last_error if row.last_error else ''})"
    detail = row.error_message or row.last_error or ""
    return f"{row.kind}{' (' + row.error_type + ')' if row.error_type else ''}: {detail}".strip(
        ": "
    )


def _score(
    grader: Grader, case: Case, generated: StepResult | None, verdict: StepResult | None
) -> Score:
    failed = _failure(generated)
    if failed is not None:
        return Score(grader=grader.name, error=f"generation {failed}")
    output = (generated.text if generated else None) or ""
    if isinstance(grader, ModelGrader):
        if verdict is None and grader.kind == "pairwise":
            return Score(grader=grader.name, error="the baseline run has no output for this case")
        failed = _failure(verdict)
        if failed is not None:
            return Score(grader=grader.name, error=f"grading {failed}")
        assert verdict is not None
        return grader.parse_verdict(verdict.text or "", case)
    try:
        return grader.grade(output, case)
    except Exception as exc:  # a grader bug is a recorded grader error, never a crash
        return Score(grader=grader.name, error=f"{exc.__class__.__name__}: {exc}")

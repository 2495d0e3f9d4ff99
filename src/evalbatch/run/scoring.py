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
        slots = [
            (idx, Case.from_json(data), epoch) for idx, data in cases for epoch in range(epochs)
        ]
        by_grader = {g.name: _score_page(g, slots, outputs, verdicts) for g in graders}
        rows = []
        for i, (idx, case, epoch) in enumerate(slots):
            for grader in graders:
                score = by_grader[grader.name][i]
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


def _score_page(
    grader: Grader,
    slots: list[tuple[int, Case, int]],
    outputs: dict[tuple[int, int, str | None], StepResult],
    verdicts: dict[tuple[int, int, str | None], StepResult],
) -> list[Score]:
    """One grader's scores for a page of (case, epoch) slots, in order. Deterministic graders
    get the page's outputs at once (the code grader runs them in parallel)."""
    scores: list[Score | None] = []
    todo: list[tuple[int, tuple[str, Case]]] = []
    for idx, case, epoch in slots:
        generated = outputs.get((idx, epoch, None))
        failed = _failure(generated)
        if failed is not None:
            scores.append(Score(grader=grader.name, error=f"generation {failed}"))
        elif isinstance(grader, ModelGrader):
            scores.append(_model_score(grader, case, verdicts.get((idx, epoch, grader.name))))
        else:
            todo.append((len(scores), ((generated.text if generated else None) or "", case)))
            scores.append(None)
    for (at, _), score in zip(todo, grader.grade_many([item for _, item in todo]), strict=True):
        scores[at] = score
    return [s for s in scores if s is not None]


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


def _model_score(grader: ModelGrader, case: Case, verdict: StepResult | None) -> Score:
    if verdict is None and grader.kind == "pairwise":
        return Score(grader=grader.name, error="the baseline run has no output for this case")
    failed = _failure(verdict)
    if failed is not None:
        return Score(grader=grader.name, error=f"grading {failed}")
    assert verdict is not None
    return grader.parse_verdict(verdict.text or "", case)

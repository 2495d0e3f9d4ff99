"""Scoring the reference side of reference-sampled graders: each ``NAME@reference`` verdict is
parsed by the grader it shadows and stored apart from the scores, so it never changes whether a
case passes; the summary estimates the reference's pass rate from it (analysis/reference.py)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from ..catalog import load_catalog
from ..graders.base import Grader
from ..graders.reference import ReferenceGrader, reference_graders
from ..records import GRADE, Case, Score
from ..store.calibration_records import ReferenceRow
from ..store.db import Store
from ..store.records import StepResult

_PAGE = 1000


def score_references(store: Store, run_id: str, graders: Sequence[Grader], epochs: int) -> int:
    """Write the reference verdicts of the run's reference-sampled graders; returns how many.
    A run without such graders writes nothing (and reads nothing)."""
    references = reference_graders(list(graders))
    if not references:
        return 0
    return store.references.replace(run_id, _pages(store, run_id, references, epochs))


def _pages(
    store: Store, run_id: str, references: list[ReferenceGrader], epochs: int
) -> Iterator[list[ReferenceRow]]:
    catalog = load_catalog()
    models = {ref.name: catalog.resolve(ref.model) for ref in references}
    start = 0
    while cases := store.runs.cases_page(run_id, start, _PAGE):
        lo, hi = cases[0][0], cases[-1][0]
        verdicts = store.results.step_results(run_id, GRADE, lo, hi)
        rows = []
        for idx, data in cases:
            case = Case.from_json(data)
            for ref in references:
                for epoch in range(epochs):
                    found = verdicts.get((idx, epoch, ref.name))
                    if found is None:  # not in the sample, or its generation failed
                        continue
                    score = _score(ref, case, found)
                    rows.append(
                        ReferenceRow(
                            case_idx=idx,
                            case_id=case.id,
                            epoch=epoch,
                            grader=ref.grader.name,
                            model=models[ref.name],
                            passed=score.passed,
                            value=score.value,
                            explanation=score.explanation,
                            error=score.error,
                        )
                    )
        yield rows
        start = hi + 1


def _score(ref: ReferenceGrader, case: Case, found: StepResult) -> Score:
    if found.kind != "succeeded":
        detail = found.error_message or found.last_error or found.status
        return Score(grader=ref.name, error=f"grading {found.kind or 'no result'}: {detail}")
    return ref.parse_verdict(found.text or "", case)

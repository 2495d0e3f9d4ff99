"""`compare` for a reference-sampled grader present in both runs: the change in the pass rate the
*reference* would have given, estimated by prediction-powered inference over the paired cases.

Per common case, the cheap grader's change (new - base, each the mean over decided epochs) is
known everywhere; on the cases both runs' reference samples hold (the same seeded hash of the
case id, so the same cases when the suites sample alike) the reference's change is known too.
PPI++ (analysis/ppi.py) over those gives the difference, its 95% interval and a two-sided
p-value (normal approximation); the verdict and the Benjamini-Hochberg adjustment use them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..store.calibration_records import ReferenceRow
from ..store.db import Store
from ..store.records import RunRecord, ScoreRecord
from .ppi import p_value_zero, ppi_mean
from .reference import by_grader, decided

MIN_PAIRS = 2


@dataclass(frozen=True)
class ReferenceDiff:
    base_rate: float
    new_rate: float
    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    labeled: int
    pairs: int

    def detail(self) -> dict[str, Any]:
        return {"estimate": "ppi", "labeled_pairs": self.labeled, "pairs": self.pairs}


def _has_reference(record: RunRecord, grader: str) -> bool:
    return any(
        g.get("name") == grader and "reference" in g for g in record.manifest.get("graders", [])
    )


def _mean(values: list[bool]) -> float | None:
    return sum(values) / len(values) if values else None


def _per_case(
    scores: dict[tuple[str, int, str], ScoreRecord] | dict[tuple[str, int], ReferenceRow],
    case_id: str,
    grader: str | None,
    epochs: int,
) -> float | None:
    """The mean of the decided verdicts of a case over its epochs (None: none decided)."""
    found: list[bool] = []
    for epoch in range(epochs):
        key: Any = (case_id, epoch, grader) if grader is not None else (case_id, epoch)
        verdict = decided(scores.get(key))
        if verdict is not None:
            found.append(verdict)
    return _mean(found)


def reference_diffs(
    store: Store,
    base: RunRecord,
    new: RunRecord,
    scores: tuple[dict[tuple[str, int, str], ScoreRecord], dict[tuple[str, int, str], ScoreRecord]],
    graders: Sequence[str],
    common: Sequence[str],
    epochs: int,
) -> dict[str, ReferenceDiff]:
    """Per grader with reference sampling in both runs and enough reference pairs."""
    wanted = [g for g in graders if _has_reference(base, g) and _has_reference(new, g)]
    if not wanted:
        return {}
    refs = (by_grader(store.references.of_run(base.id)), by_grader(store.references.of_run(new.id)))
    out = {}
    for grader in wanted:
        found = _diff(
            scores, (refs[0].get(grader, {}), refs[1].get(grader, {})), grader, common, epochs
        )
        if found is not None:
            out[grader] = found
    return out


def _diff(
    scores: tuple[dict[tuple[str, int, str], ScoreRecord], dict[tuple[str, int, str], ScoreRecord]],
    refs: tuple[dict[tuple[str, int], ReferenceRow], dict[tuple[str, int], ReferenceRow]],
    grader: str,
    common: Sequence[str],
    epochs: int,
) -> ReferenceDiff | None:
    cheap: list[tuple[float, float]] = []  # (base, new) on every paired case
    labeled: list[tuple[float, float, float, float]] = []  # + the references' (base, new)
    for case_id in common:
        b = _per_case(scores[0], case_id, grader, epochs)
        n = _per_case(scores[1], case_id, grader, epochs)
        if b is None or n is None:
            continue
        cheap.append((b, n))
        rb = _per_case(refs[0], case_id, None, epochs)
        rn = _per_case(refs[1], case_id, None, epochs)
        if rb is not None and rn is not None:
            labeled.append((b, n, rb, rn))
    if len(labeled) < MIN_PAIRS:
        return None
    diff = ppi_mean(
        [rn - rb for _, _, rb, rn in labeled],
        [n - b for b, n, _, _ in labeled],
        [n - b for b, n in cheap],
    )
    base_rate = ppi_mean(
        [rb for *_, rb, _ in labeled], [b for b, *_ in labeled], [b for b, _ in cheap]
    )
    new_rate = ppi_mean(
        [rn for *_, rn in labeled], [n for _, n, *_ in labeled], [n for _, n in cheap]
    )
    return ReferenceDiff(
        base_rate=base_rate.ppi.estimate,
        new_rate=new_rate.ppi.estimate,
        diff=diff.ppi.estimate,
        ci_low=max(-1.0, diff.ppi.low),
        ci_high=min(1.0, diff.ppi.high),
        p_value=min(1.0, p_value_zero(diff.ppi)),
        labeled=len(labeled),
        pairs=len(cheap),
    )

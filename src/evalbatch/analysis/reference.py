"""What reference-sampled grading says about a run: per grader, the cheap grader's pass rate, the
reference's on its sample, their agreement, and the prediction-powered estimate of the pass rate
the reference would have given on every case (analysis/ppi.py); and the same estimate for "the
case passed every grader", which the gate uses when present. Also what the grader cost against
grading every case on the reference model.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..store.calibration_records import GraderCost, ReferenceRow
from ..store.db import Store
from ..store.records import RunRecord, ScoreRecord

if TYPE_CHECKING:  # the statistics load scipy: only for runs that have a reference
    from .ppi import PpiEstimate

Key = tuple[str, int]  # (case id, epoch)


@dataclass(frozen=True)
class ReferenceLine:
    """One reference-sampled grader in a run's report."""

    grader: str
    reference_model: str
    sample: float
    cases: int  # the cheap grader's decided verdicts (N)
    labeled: int  # cases with a decided verdict from both (n)
    cheap_rate: float | None
    reference_rate: float | None  # the reference's pass rate on its sample
    cheap_rate_on_sample: float | None
    agreement: float | None
    kappa: float | None
    kappa_low: float | None
    kappa_high: float | None
    estimate: float | None  # PPI: the reference's pass rate on all N cases
    ci_low: float | None
    ci_high: float | None
    sample_only_low: float | None  # the reference sample alone
    sample_only_high: float | None
    lam: float | None
    reference_errors: int
    cost: float  # the cheap grader's requests
    reference_cost: float  # the reference's requests
    all_reference_cost: float | None  # every case graded on the reference model, projected
    warning: str | None = None


@dataclass(frozen=True)
class PassEstimate:
    """The prediction-powered estimate of the share of cases that pass every grader, with the
    reference verdicts standing in for their cheap graders' on the sample."""

    estimate: float
    ci_low: float
    ci_high: float
    labeled: int
    cases: int


def has_reference(record: RunRecord) -> bool:
    return any("reference" in g for g in record.manifest.get("graders", []))


def decided(score: ScoreRecord | ReferenceRow | None) -> bool | None:
    """The verdict, or None for an error or no verdict."""
    if score is None or score.error or score.passed is None:
        return None
    return bool(score.passed)


def reference_lines(
    store: Store, record: RunRecord
) -> tuple[list[ReferenceLine], PassEstimate | None]:
    """The report's reference lines and the case-level estimate; ([], None) for a run without
    reference-sampled graders (nothing is read then)."""
    if not has_reference(record):
        return [], None
    scores = store.scores.of_run(record.id)
    refs = by_grader(store.references.of_run(record.id))
    costs = store.references.grader_costs(record.id)
    lines = []
    for entry in record.manifest.get("graders", []):
        if "reference" in entry:
            name = entry["name"]
            lines.append(_line(name, entry["reference"], scores, refs.get(name, {}), costs))
    return lines, _case_estimate(scores, refs)


def by_grader(rows: Iterable[ReferenceRow]) -> dict[str, dict[Key, ReferenceRow]]:
    out: dict[str, dict[Key, ReferenceRow]] = {}
    for row in rows:
        out.setdefault(row.grader, {})[(row.case_id, row.epoch)] = row
    return out


def _line(
    name: str,
    spec: dict[str, object],
    scores: dict[tuple[str, int, str], ScoreRecord],
    refs: dict[Key, ReferenceRow],
    costs: list[GraderCost],
) -> ReferenceLine:
    cheap = {
        (c, e): v for (c, e, g), s in scores.items() if g == name and (v := decided(s)) is not None
    }
    pairs = [
        (v, cheap[k]) for k, row in refs.items() if (v := decided(row)) is not None and k in cheap
    ]
    from .agreement import Confusion, cohen_kappa

    confusion = Confusion.of(pairs)
    kappa = cohen_kappa(confusion.table())
    estimate = _ppi(pairs, list(cheap.values()))
    cost = sum(c.cost for c in costs if c.grader == name)
    ref_costs = [c for c in costs if c.grader == f"{name}@reference"]
    ref_cost = sum(c.cost for c in ref_costs)
    ref_requests = sum(c.requests for c in ref_costs)
    cheap_requests = sum(c.requests for c in costs if c.grader == name)
    model = str(refs[next(iter(refs))].model) if refs else str(spec.get("model"))
    return ReferenceLine(
        grader=name,
        reference_model=model,
        sample=float(str(spec.get("sample", 0.0))),
        cases=len(cheap),
        labeled=len(pairs),
        cheap_rate=sum(cheap.values()) / len(cheap) if cheap else None,
        reference_rate=confusion.reference_rate,
        cheap_rate_on_sample=confusion.candidate_rate,
        agreement=confusion.agreement,
        kappa=kappa.value if kappa else None,
        kappa_low=kappa.low if kappa else None,
        kappa_high=kappa.high if kappa else None,
        estimate=_rate(estimate.ppi.estimate) if estimate else None,
        ci_low=_rate(estimate.ppi.low) if estimate else None,
        ci_high=_rate(estimate.ppi.high) if estimate else None,
        sample_only_low=_rate(estimate.classical.low) if estimate else None,
        sample_only_high=_rate(estimate.classical.high) if estimate else None,
        lam=estimate.lam if estimate else None,
        reference_errors=sum(1 for row in refs.values() if decided(row) is None),
        cost=cost,
        reference_cost=ref_cost,
        all_reference_cost=ref_cost / ref_requests * cheap_requests if ref_requests else None,
        warning=_warning(name, len(pairs), estimate),
    )


def _rate(value: float) -> float:
    """A rate's estimate or bound, within [0, 1] (the normal interval can step outside)."""
    return min(1.0, max(0.0, value))


def _ppi(pairs: list[tuple[bool, bool]], cheap_all: list[bool]) -> PpiEstimate | None:
    """PPI over (reference, cheap) pairs on the sample and the cheap verdicts on all cases."""
    if len(pairs) < 2 or not cheap_all:
        return None
    from .ppi import ppi_mean

    return ppi_mean(
        [float(r) for r, _ in pairs], [float(c) for _, c in pairs], [float(c) for c in cheap_all]
    )


def _warning(name: str, labeled: int, estimate: PpiEstimate | None) -> str | None:
    if estimate is None:
        return f"{name}: fewer than 2 reference verdicts: no estimate (raise reference.sample)"
    if estimate.few_labels:
        return (
            f"{name}: only {labeled} reference verdicts: the estimate's interval is a normal "
            "approximation and too narrow this small (raise reference.sample)"
        )
    return None


def _case_estimate(
    scores: dict[tuple[str, int, str], ScoreRecord], refs: dict[str, dict[Key, ReferenceRow]]
) -> PassEstimate | None:
    """A case passes when every grader passed it; on the sample, with the reference verdict in
    place of its grader's. Labeled: the cases every reference graded with a verdict."""
    cases: dict[Key, dict[str, ScoreRecord]] = {}
    for (case_id, epoch, grader), score in scores.items():
        cases.setdefault((case_id, epoch), {})[grader] = score
    cheap_all: list[float] = []
    pairs: list[tuple[float, float]] = []
    for key, graders in cases.items():
        cheap = all(decided(s) is True for s in graders.values())
        cheap_all.append(float(cheap))
        verdicts = [
            decided(refs[g].get(key)) if g in refs else decided(s) for g, s in graders.items()
        ]
        if all(key in refs[g] and decided(refs[g][key]) is not None for g in refs):
            pairs.append((float(all(v is True for v in verdicts)), float(cheap)))
    if len(pairs) < 2 or not cheap_all:
        return None
    from .ppi import ppi_mean

    est = ppi_mean([y for y, _ in pairs], [f for _, f in pairs], cheap_all)
    return PassEstimate(
        _rate(est.ppi.estimate), _rate(est.ppi.low), _rate(est.ppi.high), len(pairs), len(cheap_all)
    )

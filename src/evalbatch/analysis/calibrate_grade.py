"""`calibrate --step grade`: each candidate grader against the run's own grader (the reference)
on the same outputs: agreement, Cohen's kappa with its interval, the pass-rate bias (candidate
minus reference) with Newcombe's paired interval, the confusion matrix, Spearman and the mean
absolute difference of the scores; a verdict per candidate, and the cheapest trustworthy one.

A candidate is ``trustworthy`` when kappa's lower bound is at least ``min_kappa`` and the bias
interval lies inside ±``max_bias``; ``not trustworthy`` when kappa's upper bound is below it or
the bias interval lies wholly outside; otherwise ``inconclusive``, with the sample size that
would decide if the estimates hold (interval half-widths shrink as 1/sqrt(n)).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import yaml

from ..store.calibration_records import CalibrationRecord
from ..store.db import Store
from ..suite.schema import Suite
from .agreement import Confusion, cohen_kappa, score_agreement
from .stats import compare_pass_fail

Trust = Literal["trustworthy", "not trustworthy", "inconclusive"]


@dataclass(frozen=True)
class Criterion:
    """One test a candidate must pass: decided (True/False) or None; ``needed`` is the sample
    size at which it would decide if its estimate holds (None when it never would)."""

    passed: bool | None
    needed: float | None
    toward_pass: bool


def kappa_criterion(value: float, low: float, high: float, n: int, minimum: float) -> Criterion:
    if low >= minimum:
        return Criterion(True, None, True)
    if high < minimum:
        return Criterion(False, None, False)
    return Criterion(None, _needed(n, (high - low) / 2, abs(value - minimum)), value > minimum)


def bias_criterion(value: float, low: float, high: float, n: int, limit: float) -> Criterion:
    if low >= -limit and high <= limit:
        return Criterion(True, None, True)
    if high < -limit or low > limit:
        return Criterion(False, None, False)
    return Criterion(
        None, _needed(n, (high - low) / 2, abs(limit - abs(value))), abs(value) < limit
    )


def _needed(n: int, half_width: float, gap: float) -> float | None:
    """The n at which the interval's half-width would be ``gap``."""
    return None if gap <= 0 else n * (half_width / gap) ** 2


def decide(criteria: list[Criterion], n: int) -> tuple[Trust, int | None]:
    """The verdict and, when inconclusive, the sample size that would decide (None: never)."""
    if any(c.passed is False for c in criteria):
        return "not trustworthy", None
    if all(c.passed for c in criteria):
        return "trustworthy", None
    open_ = [c for c in criteria if c.passed is None]
    failing = [c.needed for c in open_ if not c.toward_pass and c.needed is not None]
    if any(not c.toward_pass for c in open_):  # the first failure to decide ends it
        return "inconclusive", math.ceil(min(failing)) if failing else None
    if any(c.needed is None for c in open_):
        return "inconclusive", None
    return "inconclusive", max(math.ceil(c.needed or 0.0) for c in open_)


@dataclass(frozen=True)
class CandidateResult:
    model: str  # as typed ("haiku")
    model_id: str
    grader: str  # "rubric@haiku"
    n: int
    errors: int
    confusion: list[list[int]]  # rows: the reference (pass, fail); columns: the candidate
    agreement: float | None
    kappa: float | None
    kappa_ci: list[float] | None
    bias: float | None
    bias_ci: list[float] | None
    spearman: float | None
    mean_abs_diff: float | None
    verdict: Trust
    reason: str
    decide_at: int | None  # the sample size that would decide an inconclusive verdict
    cost_usd: float | None  # this grader on the candidate, per run (projected)
    calibration_cost_usd: float
    saving_per_run_usd: float | None
    saving_per_month_usd: float | None


@dataclass(frozen=True)
class GradeCalibration:
    calibration: str
    run: str
    calibration_run: str
    grader: str
    reference: str  # the reference model's id (or "route")
    sample: dict[str, Any]
    min_kappa: float
    max_bias: float
    per_month: int
    reference_cost_usd: float  # the grader, per run, as it is
    candidates: list[CandidateResult]
    recommended: str | None
    snippet: str | None

    def to_dict(self) -> dict[str, Any]:
        """The `--json` shape (scripts and CI), with the details after the documented keys."""
        return {
            "run": self.run,
            "step": "grade",
            "reference": {"model": self.reference, "cost_usd": self.reference_cost_usd},
            "sample": self.sample["size"],
            "candidates": [asdict(c) for c in self.candidates],
            "recommended": self.recommended,
            "calibration": self.calibration,
            "calibration_run": self.calibration_run,
            "grader": self.grader,
            "sample_detail": self.sample,
            "min_kappa": self.min_kappa,
            "max_bias": self.max_bias,
            "per_month": self.per_month,
            "snippet": self.snippet,
        }


def grade_calibration(
    store: Store,
    record: CalibrationRecord,
    *,
    min_kappa: float = 0.8,
    max_bias: float = 0.02,
    per_month: int = 30,
) -> GradeCalibration:
    settings = record.settings
    grader, child = str(settings["grader"]), record.runs["grade"]
    reference = {
        (c, e): s for (c, e, g), s in store.scores.of_run(record.run_id).items() if g == grader
    }
    scores = store.scores.of_run(child)
    costs = store.references.grader_costs(record.run_id)
    ref_cost = sum(c.cost for c in costs if c.grader == grader)
    ref_requests = sum(c.requests for c in costs if c.grader == grader)
    child_costs = store.references.grader_costs(child)
    results = []
    for name, model_id in settings["candidates"]:
        cand = f"{grader}@{name}"
        mine = {(c, e): s for (c, e, g), s in scores.items() if g == cand}
        spent = [c for c in child_costs if c.grader == cand]
        cost = sum(c.cost for c in spent)
        requests = sum(c.requests for c in spent)
        per_run = cost / requests * ref_requests if requests and ref_requests else None
        results.append(
            _candidate(
                name, model_id, cand, reference, mine, min_kappa, max_bias, per_run, cost,
                ref_cost, per_month, int(record.sample["population"]),
            )
        )  # fmt: skip
    cheaper = [
        c for c in results if c.verdict == "trustworthy" and c.cost_usd is not None
        and c.cost_usd < ref_cost
    ]  # fmt: skip
    best = min(cheaper, key=lambda c: (c.cost_usd or 0.0, c.model)) if cheaper else None
    suite = Suite.model_validate_json(store.runs.get(record.run_id).suite_json)
    return GradeCalibration(
        calibration=record.id,
        run=record.run_id,
        calibration_run=child,
        grader=grader,
        reference=str(settings["reference"]),
        sample=record.sample,
        min_kappa=min_kappa,
        max_bias=max_bias,
        per_month=per_month,
        reference_cost_usd=ref_cost,
        candidates=results,
        recommended=best.model if best else None,
        snippet=_snippet(suite, grader, best) if best else None,
    )


def _candidate(
    name: str,
    model_id: str,
    grader: str,
    reference: dict[tuple[str, int], Any],
    mine: dict[tuple[str, int], Any],
    min_kappa: float,
    max_bias: float,
    per_run: float | None,
    spent: float,
    ref_cost: float,
    per_month: int,
    population: int,
) -> CandidateResult:
    pairs: list[tuple[bool, bool]] = []
    values: list[tuple[float, float]] = []
    errors = 0
    for key, score in mine.items():
        ref = reference.get(key)
        if ref is None or ref.error or ref.passed is None:
            continue
        if score.error or score.passed is None:
            errors += 1
            continue
        pairs.append((bool(ref.passed), bool(score.passed)))
        if ref.value is not None and score.value is not None:
            values.append((float(ref.value), float(score.value)))
    confusion = Confusion.of(pairs)
    kappa = cohen_kappa(confusion.table())
    bias = compare_pass_fail(pairs) if pairs else None  # base: the reference; new: candidate
    numeric = (
        score_agreement(values) if any(v not in (0.0, 1.0) for p in values for v in p) else None
    )
    verdict, reason, decide_at = _verdict(kappa, bias, len(pairs), min_kappa, max_bias, population)
    saving = ref_cost - per_run if per_run is not None else None
    return CandidateResult(
        model=name,
        model_id=model_id,
        grader=grader,
        n=len(pairs),
        errors=errors,
        confusion=confusion.table(),
        agreement=confusion.agreement,
        kappa=kappa.value if kappa else None,
        kappa_ci=[kappa.low, kappa.high] if kappa else None,
        bias=bias.diff if bias else None,
        bias_ci=[bias.ci_low, bias.ci_high] if bias else None,
        spearman=numeric.spearman if numeric else None,
        mean_abs_diff=numeric.mean_abs_diff if numeric else None,
        verdict=verdict,
        reason=reason,
        decide_at=decide_at,
        cost_usd=per_run,
        calibration_cost_usd=spent,
        saving_per_run_usd=saving,
        saving_per_month_usd=saving * per_month if saving is not None else None,
    )


def _verdict(
    kappa: Any, bias: Any, n: int, min_kappa: float, max_bias: float, population: int
) -> tuple[Trust, str, int | None]:
    if kappa is None or bias is None:
        why = "no paired verdicts" if n == 0 else "kappa is undefined (one verdict throughout)"
        return "inconclusive", why, None
    criteria = [
        kappa_criterion(kappa.value, kappa.low, kappa.high, n, min_kappa),
        bias_criterion(bias.diff, bias.ci_low, bias.ci_high, n, max_bias),
    ]
    verdict, at = decide(criteria, n)
    facts = (
        f"kappa {kappa.value:.3f} [{kappa.low:.3f}, {kappa.high:.3f}] vs {min_kappa:g}; bias "
        f"{bias.diff * 100:+.1f}pp [{bias.ci_low * 100:+.1f}, {bias.ci_high * 100:+.1f}] vs "
        f"±{max_bias * 100:g}pp"
    )
    if verdict != "inconclusive":
        return verdict, facts, None
    if at is None:
        return verdict, f"{facts}; an estimate sits on its threshold: no sample size decides", None
    more = f"about {max(at - n, 1):,} more paired verdicts ({at:,} in all) would decide"
    if at > population:
        more += f", more than the run has ({population:,} cases): calibrate on a larger run"
    return verdict, f"{facts}; {more}, if the estimates hold", at


def _snippet(suite: Suite, grader: str, best: CandidateResult) -> str:
    """The suite's grader entry on the recommended model (the other graders stay as they are),
    with reference sampling on the model it replaces, commented out, to keep an eye on it."""
    spec = next(s for s in suite.grade if s.name == grader)
    params = dict(spec.params or {})
    reference = params.get("model", "opus")
    kept = {k: v for k, v in params.items() if k not in ("model", "reference")}
    body = yaml.safe_dump({"model": best.model, **kept}, sort_keys=False, allow_unicode=True)
    lines = ["grade:"]
    lines += (
        [f"  - name: {grader}", f"    {spec.type}:"]
        if grader != spec.type
        else [f"  - {spec.type}:"]
    )
    lines += ["      " + line for line in body.rstrip().splitlines()]
    lines.append(
        f"      # reference: {{model: {reference}, sample: 0.1}}  # optional: a PPI estimate "
        f"of {reference}'s pass rate on every run"
    )
    return "\n".join(lines) + "\n"

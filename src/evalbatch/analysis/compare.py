"""`compare`: whether scores regressed between two runs, and what changed in their manifests.

Runs are compared on the cases and graders they share (a case whose content changed is not
shared). Per grader: paired pass/fail statistics (exact McNemar) and, for numeric scores, a
paired bootstrap; with several graders the p-values are adjusted (Benjamini-Hochberg).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ..errors import InputError
from ..records import Case
from ..store.db import Store
from ..store.records import RunRecord, ScoreRecord
from ..suite.schema import Suite
from .compare_reference import ReferenceDiff, reference_diffs
from .manifest_diff import ManifestChange, diff_manifests
from .stats import (
    PassFailComparison,
    Verdict,
    benjamini_hochberg,
    compare_numeric,
    compare_pass_fail,
    verdict,
)

# Where a case sits (file, line) is not what it is: moving it must not make it "changed".
_PLACE_FIELDS = ("source", "line")


@dataclass(frozen=True)
class CaseDiff:
    case_id: str
    epoch: int
    grader: str
    change: str  # "regressed" | "fixed"
    input: Any
    target: Any
    base_output: str
    new_output: str
    base_explanation: str
    new_explanation: str


@dataclass(frozen=True)
class GraderComparison(PassFailComparison):
    """One grader's paired statistics (the fields of PassFailComparison), the adjusted p-value
    and the verdict; ``numeric`` for graders with numeric scores."""

    grader: str = ""
    type: str = ""
    p_adjusted: float = 1.0
    excluded_errors: int = 0
    verdict: Verdict = "no significant change"
    numeric: dict[str, Any] | None = None
    # A reference-sampled grader in both runs: the rates, diff, interval and p are the PPI
    # estimates of the reference's verdicts (compare_reference.py); ``cheap`` keeps the grader's.
    reference: dict[str, Any] | None = None


@dataclass(frozen=True)
class FlakyCase:
    case_id: str
    grader: str
    base_passed: str  # "2/3": epochs passed of epochs decided
    new_passed: str


@dataclass(frozen=True)
class Comparison:
    base: dict[str, Any]
    new: dict[str, Any]
    comparable: bool
    changes: list[ManifestChange]
    common_cases: int
    only_base: list[str]
    only_new: list[str]
    changed_cases: list[str]
    graders: list[GraderComparison]
    skipped_graders: list[str]
    cases: list[CaseDiff] = field(default_factory=list)
    flaky: list[FlakyCase] = field(default_factory=list)
    alpha: float = 0.05
    min_effect: float = 0.0
    adjusted: bool = False

    @property
    def verdict(self) -> str:
        verdicts = {g.verdict for g in self.graders}
        if "regressed" in verdicts:
            return "regressed"
        if "improved" in verdicts:
            return "improved"
        return "no significant change"

    def verdict_line(self) -> str:
        return (
            f"{self.verdict}: {self.new['id']} vs {self.base['id']} on {self.common_cases} common "
            f"cases (alpha {self.alpha}{', BH-adjusted' if self.adjusted else ''})"
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["verdict"] = self.verdict
        return data


@dataclass(frozen=True)
class _Side:
    """One run as compare sees it."""

    record: RunRecord
    epochs: int
    cases: dict[str, tuple[int, dict[str, Any]]]
    scores: dict[tuple[str, int, str], ScoreRecord]

    def info(self) -> dict[str, Any]:
        r = self.record
        return {
            "id": r.id,
            "suite": r.suite_name,
            "mode": r.mode,
            "status": r.status,
            "manifest_hash": r.manifest_hash,
            "created_at": r.created_at,
            "epochs": self.epochs,
            "generations_from": (r.manifest.get("generations_from") or {}).get("run"),
        }

    def graders(self) -> dict[str, str]:
        return {g["name"]: g["type"] for g in self.record.manifest.get("graders", [])}


def _load(store: Store, run_id: str) -> _Side:
    record = store.runs.get(run_id)
    if record.status != "done":
        raise InputError(f"run {run_id} is {record.status}, not done: collect it first")
    cases = {
        case_id: (idx, {k: v for k, v in data.items() if k not in _PLACE_FIELDS})
        for case_id, (idx, data) in store.runs.case_contents(run_id).items()
    }
    epochs = Suite.model_validate_json(record.suite_json).epochs
    return _Side(record, epochs, cases, store.scores.of_run(run_id))


def compare_runs(
    store: Store,
    base_id: str,
    new_id: str,
    *,
    alpha: float = 0.05,
    min_effect: float = 0.0,
    strict: bool = False,
) -> Comparison:
    base, new = _load(store, base_id), _load(store, new_id)
    changed = sorted(
        k for k in set(base.cases) & set(new.cases) if base.cases[k][1] != new.cases[k][1]
    )
    common = sorted(set(base.cases) & set(new.cases) - set(changed))
    base_graders, new_graders = base.graders(), new.graders()
    shared = [g for g in base_graders if new_graders.get(g) == base_graders[g]]
    skipped = sorted((set(base_graders) | set(new_graders)) - set(shared))
    moved_cases = set(base.cases) ^ set(new.cases)
    comparable = not (changed or skipped or moved_cases)
    if strict and not comparable:
        raise InputError(
            "--strict: the runs differ in cases or graders "
            f"({len(changed)} changed, {len(moved_cases)} added/removed cases; "
            f"graders not shared: {', '.join(skipped) or '-'})"
        )
    epochs = min(base.epochs, new.epochs)
    tallies = [_tally(base, new, name, common, epochs) for name in shared]
    scores = (base.scores, new.scores)
    refs = reference_diffs(store, base.record, new.record, scores, shared, common, epochs)
    tallies = [with_reference(t, refs.get(t.name)) for t in tallies]
    p_values = [t.stats.p_value for t in tallies]
    adjusted = len(tallies) > 1
    q_values = benjamini_hochberg(p_values) if adjusted else p_values
    graders = [
        _grader_comparison(t, base_graders[t.name], q, alpha, min_effect)
        for t, q in zip(tallies, q_values, strict=True)
    ]
    diffs = [d for t in tallies for d in _case_diffs(t, base.cases)]
    diffs = _with_outputs(store, base_id, new_id, diffs)
    return Comparison(
        base=base.info(),
        new=new.info(),
        comparable=comparable,
        changes=diff_manifests(base.record.manifest, new.record.manifest),
        common_cases=len(common),
        only_base=sorted(set(base.cases) - set(new.cases)),
        only_new=sorted(set(new.cases) - set(base.cases)),
        changed_cases=changed,
        graders=graders,
        skipped_graders=skipped,
        cases=diffs,
        flaky=[f for t in tallies for f in t.flaky],
        alpha=alpha,
        min_effect=min_effect,
        adjusted=adjusted,
    )


@dataclass
class _Tally:
    """One grader's pairs over the common cases."""

    name: str
    stats: PassFailComparison
    numeric: dict[str, Any] | None
    errors: int
    moved: list[tuple[str, int, ScoreRecord, ScoreRecord]]
    flaky: list[FlakyCase]
    reference: dict[str, Any] | None = None


def with_reference(tally: _Tally, ref: ReferenceDiff | None) -> _Tally:
    """The tally with the reference's estimated rates in place of the grader's own."""
    if ref is None:
        return tally
    own = {
        k: getattr(tally.stats, k)
        for k in ("base_rate", "new_rate", "diff", "ci_low", "ci_high", "p_value")
    }
    stats = replace(
        tally.stats,
        base_rate=ref.base_rate,
        new_rate=ref.new_rate,
        diff=ref.diff,
        ci_low=ref.ci_low,
        ci_high=ref.ci_high,
        p_value=ref.p_value,
    )
    return replace(tally, stats=stats, reference={**ref.detail(), "grader": own})


def _tally(base: _Side, new: _Side, name: str, common: Sequence[str], epochs: int) -> _Tally:
    pairs: list[tuple[bool, bool]] = []
    values: list[tuple[float, float]] = []
    errors = 0
    moved: list[tuple[str, int, ScoreRecord, ScoreRecord]] = []
    flaky: list[FlakyCase] = []
    for case_id in common:
        b_eps = _valid(base.scores, case_id, name, epochs)
        n_eps = _valid(new.scores, case_id, name, epochs)
        if not b_eps or not n_eps:
            errors += 1
            continue
        b_seen, n_seen = {bool(x.passed) for x in b_eps}, {bool(x.passed) for x in n_eps}
        if len(b_seen) > 1 or len(n_seen) > 1:
            # Its verdict varies across epochs: noise, reported apart, not a regression.
            flaky.append(
                FlakyCase(
                    case_id,
                    name,
                    f"{sum(bool(x.passed) for x in b_eps)}/{len(b_eps)}",
                    f"{sum(bool(x.passed) for x in n_eps)}/{len(n_eps)}",
                )
            )
            continue
        b_pass, n_pass = b_seen.pop(), n_seen.pop()
        pairs.append((b_pass, n_pass))  # one pair per case, however many epochs
        b_vals = [float(x.value) for x in b_eps if x.value is not None]
        n_vals = [float(x.value) for x in n_eps if x.value is not None]
        if b_vals and n_vals:
            values.append((sum(b_vals) / len(b_vals), sum(n_vals) / len(n_vals)))
        if b_pass != n_pass:
            moved.append((case_id, b_eps[0].epoch, b_eps[0], n_eps[0]))
    numeric = None
    if values and any(v not in (0.0, 1.0) for pair in values for v in pair):
        numeric = asdict(compare_numeric(values))
    return _Tally(name, compare_pass_fail(pairs), numeric, errors, moved, flaky)


def _grader_comparison(
    tally: _Tally, kind: str, q_value: float, alpha: float, min_effect: float
) -> GraderComparison:
    return GraderComparison(
        **asdict(tally.stats),
        grader=tally.name,
        type=kind,
        p_adjusted=q_value,
        excluded_errors=tally.errors,
        verdict=verdict(tally.stats.diff, q_value, alpha=alpha, min_effect=min_effect),
        numeric=tally.numeric,
        reference=tally.reference,
    )


def _case_diffs(tally: _Tally, cases: dict[str, tuple[int, dict[str, Any]]]) -> list[CaseDiff]:
    out = []
    for case_id, epoch, b, n in tally.moved:
        case = Case(**{**cases[case_id][1], "tags": tuple(cases[case_id][1].get("tags") or ())})
        out.append(
            CaseDiff(
                case_id=case_id,
                epoch=epoch,
                grader=tally.name,
                change="fixed" if n.passed else "regressed",
                input=case.shown_input(),
                target=case.target,
                base_output="",
                new_output="",
                base_explanation=b.explanation or "",
                new_explanation=n.explanation or "",
            )
        )
    return out


def _with_outputs(store: Store, base_id: str, new_id: str, diffs: list[CaseDiff]) -> list[CaseDiff]:
    keys = {(d.case_id, d.epoch) for d in diffs}
    if not keys:
        return diffs
    base_out, new_out = store.results.outputs(base_id, keys), store.results.outputs(new_id, keys)
    return [
        CaseDiff(
            **{
                **asdict(d),
                "base_output": base_out.get((d.case_id, d.epoch), ""),
                "new_output": new_out.get((d.case_id, d.epoch), ""),
            }
        )
        for d in diffs
    ]


def _valid(
    scores: dict[tuple[str, int, str], ScoreRecord], case_id: str, grader: str, epochs: int
) -> list[ScoreRecord]:
    """The case's decided verdicts (no error) from this grader, one per epoch."""
    rows = (scores.get((case_id, epoch, grader)) for epoch in range(epochs))
    return [r for r in rows if r is not None and not r.error and r.passed is not None]

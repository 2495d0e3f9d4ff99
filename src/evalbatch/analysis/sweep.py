"""The sweep table: per variant the pass rate with its interval, mean score, cost by ledger,
cost per passed case; which variants are on the Pareto front (no other is both cheaper and
better); which are non-inferior to the best (paired, one-sided, Bonferroni over the variants);
and the recommendation: the cheapest non-inferior variant, with its saving against the reference.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from scipy import stats as sps

from ..store.db import Store
from .manifest_diff import ManifestChange, diff_manifests
from .stats import compare_pass_fail
from .summary import summarize

ALPHA = 0.05


@dataclass(frozen=True)
class VariantLine:
    name: str
    run: str
    status: str
    settings: dict[str, Any]
    cases: int
    passed: int
    pass_rate: float | None
    pass_rate_ci: tuple[float, float]
    mean_score: float | None
    cost_usd: float
    cost_generate_usd: float
    cost_grade_usd: float
    cost_warm_usd: float
    cost_per_pass_usd: float | None
    pareto: bool = False
    non_inferior: bool = False
    vs_best_ci_low: float | None = None  # lower bound of (this - best) pass rate
    changes: list[ManifestChange] = field(default_factory=list)  # vs the reference variant


@dataclass(frozen=True)
class TagLine:
    tag: str
    pass_rates: dict[str, float | None]  # variant name -> pass rate on the tag's cases
    cases: int


@dataclass(frozen=True)
class SweepTable:
    sweep: str
    suite: str
    status: str
    reference: str
    margin: float
    per_month: int
    variants: list[VariantLine]
    best: str | None
    recommended: str | None
    saving_per_run_usd: float | None
    by_tag: list[TagLine] = field(default_factory=list)

    @property
    def warm_usd(self) -> float:
        """What warming the shared prefixes cost the sweep (not in any variant's cost)."""
        return sum(x.cost_warm_usd for x in self.variants)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["warm_usd"] = self.warm_usd
        data["saving_per_month_usd"] = (
            None if self.saving_per_run_usd is None else self.saving_per_run_usd * self.per_month
        )
        for raw in data["variants"]:
            raw["pass_rate_ci"] = list(raw["pass_rate_ci"])
        return data


def wilson(passed: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    z = float(sps.norm.ppf(0.5 + confidence / 2))
    p = passed / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - spread), min(1.0, centre + spread)


def sweep_table(store: Store, sweep_id: str, *, per_month: int = 30) -> SweepTable:
    record = store.sweeps.get(sweep_id)
    spec = record.spec
    verdicts = {
        v["name"]: {(c, e): ok for c, e, ok, _ in store.sweeps.case_verdicts(v["run"])}
        for v in spec["variants"]
    }
    lines = [_line(store, v, verdicts[v["name"]]) for v in spec["variants"]]
    done = [x for x in lines if x.pass_rate is not None]
    best = max(done, key=lambda x: (x.pass_rate or 0.0, -x.cost_usd)) if done else None
    margin = float(spec.get("margin", 0.02))
    reference = str(spec["reference"])
    manifests = {v["name"]: store.runs.get(v["run"]).manifest for v in spec["variants"]}
    lines = [
        _flagged(x, lines, best, verdicts, margin, manifests.get(reference), manifests[x.name])
        for x in lines
    ]
    candidates = [x for x in lines if x.non_inferior]
    recommended = min(candidates, key=lambda x: x.cost_usd) if candidates else None
    ref_line = next((x for x in lines if x.name == reference), None)
    saving = ref_line.cost_usd - recommended.cost_usd if recommended and ref_line else None
    return SweepTable(
        sweep=sweep_id,
        suite=record.suite_name,
        status=record.status,
        reference=reference,
        margin=margin,
        per_month=per_month,
        variants=lines,
        best=best.name if best else None,
        recommended=recommended.name if recommended else None,
        saving_per_run_usd=saving,
        by_tag=_by_tag(store, spec["variants"]),
    )


def _line(
    store: Store, variant: dict[str, Any], verdicts: dict[tuple[str, int], bool]
) -> VariantLine:
    summary = summarize(store, variant["run"])
    scored, passed = summary.cases_scored, summary.cases_passed
    # Warm-up requests write prefixes the variants share (the same system prompt and model):
    # whichever variant warms first pays for all, so they are a cost of the sweep, shown apart.
    by_step = {"generate": 0.0, "grade": 0.0, "warm": 0.0}
    for line in summary.costs:
        by_step[line.step] += line.cost
    cost = by_step["generate"] + by_step["grade"]
    means = [g.mean_value for g in summary.graders if g.mean_value is not None]
    return VariantLine(
        name=variant["name"],
        run=variant["run"],
        status=summary.run.status,
        settings=dict(variant["settings"]),
        cases=scored,
        passed=passed,
        pass_rate=summary.pass_rate,
        pass_rate_ci=wilson(passed, scored),
        mean_score=sum(means) / len(means) if means else None,
        cost_usd=cost,
        cost_generate_usd=by_step["generate"],
        cost_grade_usd=by_step["grade"],
        cost_warm_usd=by_step["warm"],
        cost_per_pass_usd=cost / passed if passed else None,
    )


def _flagged(
    line: VariantLine,
    lines: list[VariantLine],
    best: VariantLine | None,
    verdicts: dict[str, dict[tuple[str, int], bool]],
    margin: float,
    reference_manifest: dict[str, Any] | None,
    manifest: dict[str, Any],
) -> VariantLine:
    rate = line.pass_rate
    pareto = rate is not None and not any(
        o is not line
        and o.pass_rate is not None
        and o.cost_usd <= line.cost_usd
        and o.pass_rate >= rate
        and (o.cost_usd < line.cost_usd or o.pass_rate > rate)
        for o in lines
    )
    non_inferior, low = False, None
    if best is not None and rate is not None:
        if best is line:
            non_inferior, low = True, 0.0
        else:
            shared = sorted(set(verdicts[line.name]) & set(verdicts[best.name]))
            pairs = [(verdicts[best.name][k], verdicts[line.name][k]) for k in shared]
            # one-sided at ALPHA, Bonferroni over the comparisons with the best
            comparisons = max(1, len(lines) - 1)
            confidence = 1 - 2 * ALPHA / comparisons
            if pairs:
                low = compare_pass_fail(pairs, confidence=confidence).ci_low
                non_inferior = low > -margin
    changes = diff_manifests(reference_manifest, manifest) if reference_manifest else []
    return replace(
        line, pareto=pareto, non_inferior=non_inferior, vs_best_ci_low=low, changes=changes
    )


def _by_tag(store: Store, variants: list[dict[str, Any]]) -> list[TagLine]:
    """Pass rate per case tag and variant (a red-team battery's categories)."""
    tallies: dict[str, dict[str, list[int]]] = {}
    cases: dict[str, set[str]] = {}
    for variant in variants:
        for case_id, _epoch, ok, tags in store.sweeps.case_verdicts(variant["run"]):
            for tag in tags:
                counts = tallies.setdefault(tag, {}).setdefault(variant["name"], [0, 0])
                counts[0] += int(ok)
                counts[1] += 1
                cases.setdefault(tag, set()).add(case_id)
    return [
        TagLine(
            tag,
            {name: (ok / n if n else None) for name, (ok, n) in sorted(by_variant.items())},
            len(cases[tag]),
        )
        for tag, by_variant in sorted(tallies.items())
    ]

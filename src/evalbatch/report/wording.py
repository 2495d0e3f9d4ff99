"""How evalbatch words numbers and verdicts, shared by every format: money, percentages,
p-values, the cost headline, and the notes a comparison carries."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: the viewer uses these words without loading scipy
    from ..analysis.compare import Comparison
    from ..analysis.summary import RunSummary

MAX_CASES = 20  # regressed / failing cases listed before "N more"


def usd(value: float) -> str:
    """Dollars with cents; below a cent, two significant digits ($0.000012), so tiny runs'
    figures still explain their savings percentage."""
    if value == 0:
        return "$0.00"
    if abs(value) < 0.01:
        decimals = 1 - math.floor(math.log10(abs(value)))
        return f"${value:.{decimals}f}"
    return f"${value:,.2f}"


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def p_value(value: float) -> str:
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def saved_share(cost: float, naive: float) -> float:
    """The share of the naive cost that was saved (0 when there is no naive cost)."""
    return (1 - cost / naive) if naive else 0.0


def headline(summary: RunSummary) -> str:
    cost, naive = summary.total("cost"), summary.total("naive_cost")
    return f"cost {usd(cost)} — naive {usd(naive)} — saved {saved_share(cost, naive) * 100:.0f}%"


def scope_notes(cmp: Comparison) -> list[str]:
    notes = []
    for one, other in ((cmp.new, cmp.base), (cmp.base, cmp.new)):
        if one.get("generations_from") == other["id"]:
            notes.append(
                f"{one['id']} grades the generations of {other['id']}: the outputs are "
                "identical, only the graders differ"
            )
    if cmp.only_base or cmp.only_new or cmp.changed_cases:
        notes.append(
            f"compared on common cases only: {len(cmp.only_base)} removed, "
            f"{len(cmp.only_new)} added, {len(cmp.changed_cases)} changed"
        )
    if cmp.skipped_graders:
        notes.append(f"graders not in both runs (not compared): {', '.join(cmp.skipped_graders)}")
    if cmp.flaky:
        notes.append(
            f"{len(cmp.flaky)} flaky case(s) (verdict varies across epochs), "
            "reported apart from regressions"
        )
    return notes


def reference_compare_lines(cmp: Comparison) -> list[str]:
    """Graders compared on their reference's estimated verdicts (PPI), with the grader's own."""
    out = []
    for g in cmp.graders:
        ref = g.reference
        if not ref:
            continue
        own = ref["grader"]
        out.append(
            f"{g.grader}: base, new, diff, CI and p are prediction-powered estimates of the "
            f"reference grader's verdicts ({ref['labeled_pairs']} reference-graded pairs of "
            f"{ref['pairs']}); the grader itself: {own['diff'] * 100:+.1f}pp "
            f"[{own['ci_low'] * 100:+.1f}, {own['ci_high'] * 100:+.1f}], p={p_value(own['p_value'])}"
        )
    return out


def numeric_lines(cmp: Comparison) -> list[str]:
    """Graders with numeric scores (a rubric's 1-5): the paired mean difference, its seeded
    bootstrap interval and the signed-rank p-value."""
    out = []
    for g in cmp.graders:
        x = g.numeric
        if not x:
            continue
        out.append(
            f"{g.grader}: mean score {x['base_mean']:.2f} -> {x['new_mean']:.2f} "
            f"({x['mean_diff']:+.2f}, 95% bootstrap CI [{x['ci_low']:+.2f}, {x['ci_high']:+.2f}], "
            f"p={p_value(x['p_value'])} by {x['test']}, n={x['n']})"
        )
    return out


def _bounds(low: float | None, high: float | None) -> str:
    return "-" if low is None or high is None else f"[{low * 100:.1f}, {high * 100:.1f}]"


def reference_lines(summary: RunSummary) -> list[str]:
    """Reference-sampled graders: the cheap grader's rate, the reference's on its sample, their
    agreement, the PPI estimate of the reference's rate on every case, and the cost."""
    out = []
    for r in summary.references:
        kappa = (
            "-"
            if r.kappa is None or r.kappa_low is None or r.kappa_high is None
            else f"{r.kappa:.3f} [{r.kappa_low:.3f}, {r.kappa_high:.3f}]"
        )
        out.append(
            f"{r.grader}: {r.cases:,} cases graded, pass rate {pct(r.cheap_rate)}; the reference "
            f"{r.reference_model} graded {r.labeled:,} of them (sample {r.sample:g}): "
            f"{pct(r.reference_rate)} (the grader: {pct(r.cheap_rate_on_sample)} on those), "
            f"agreement {pct(r.agreement)}, kappa {kappa}"
        )
        if r.estimate is not None:
            out.append(
                f"{r.grader}: {r.reference_model}'s pass rate on all {r.cases:,} cases, "
                f"prediction-powered estimate: {pct(r.estimate)} {_bounds(r.ci_low, r.ci_high)} "
                f"(95%; the reference sample alone: {_bounds(r.sample_only_low, r.sample_only_high)})"
            )
        every = "-" if r.all_reference_cost is None else usd(r.all_reference_cost)
        out.append(
            f"{r.grader}: cost {usd(r.cost)} + reference {usd(r.reference_cost)} = "
            f"{usd(r.cost + r.reference_cost)}, against {every} grading every case on "
            f"{r.reference_model}"
        )
    if summary.reference_pass is not None:
        e = summary.reference_pass
        out.append(
            f"cases passing every grader, reference-estimated (PPI): {pct(e.estimate)} "
            f"{_bounds(e.ci_low, e.ci_high)} ({e.labeled:,} reference-graded of {e.cases:,})"
        )
    return out


def gate_rate(summary: RunSummary) -> str:
    """The gate's pass rate, saying when it is the reference-estimated one."""
    if summary.gate is None:
        return "-"
    return pct(summary.gate.pass_rate) + (
        " (reference-estimated)" if summary.gate.estimated else ""
    )

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

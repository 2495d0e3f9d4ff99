"""The CI gate at the end of a run: minimum pass rate and/or no regression against a baseline
(a run id, or `latest`: the newest done run of the same suite started before this one)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..store.db import Store
from .summary import RunSummary, suite_of

if TYPE_CHECKING:
    from .compare import Comparison


@dataclass
class GateVerdict:
    failed: bool = False
    lines: list[str] = field(default_factory=list)
    baseline: str | None = None
    comparison: Comparison | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "failed": self.failed,
            "messages": self.lines,
            "baseline": self.baseline,
            "comparison_verdict": self.comparison.verdict if self.comparison else None,
        }


def check_gate(store: Store, summary: RunSummary, baseline: str | None) -> GateVerdict:
    """The gate's verdict; ``lines`` say why, one per check. Needs the run done to compare."""
    verdict = GateVerdict(failed=summary.gate_failed)
    suite = suite_of(store, summary.run.id)
    wants = baseline or ("latest" if suite.gate.no_regression else None)
    if not wants or summary.run.status != "done":
        return verdict
    base_id = store.runs.latest_done(summary.run.id) if wants == "latest" else wants
    if base_id is None:
        verdict.lines.append("no comparable baseline run yet: regression check skipped")
        return verdict
    # Imported only to compare: its statistics (scipy) hold ~75 MB a run without one never needs.
    from .compare import compare_runs

    cmp = compare_runs(
        store, base_id, summary.run.id, alpha=suite.gate.alpha, min_effect=suite.gate.min_effect
    )
    verdict.baseline, verdict.comparison = base_id, cmp
    verdict.lines.append(cmp.verdict_line())
    if cmp.verdict == "regressed":
        verdict.failed = True
    return verdict

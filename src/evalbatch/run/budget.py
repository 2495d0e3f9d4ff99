"""The budget, enforced in one place: a run projected above it is refused before anything is
submitted (exit 2), and a run whose actual spend reaches it stops submitting (needs_attention,
resumed with `collect RUN --budget USD`)."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import BudgetExceeded, RunNeedsAttention


@dataclass(frozen=True)
class Budget:
    limit_usd: float | None

    @classmethod
    def of(cls, value: float | str | None) -> Budget:
        return cls(None if value is None else float(value))

    def check_projected(self, projected_usd: float) -> None:
        """Before a run is created: refuse when the projection is above the budget."""
        if self.limit_usd is not None and projected_usd > self.limit_usd:
            raise BudgetExceeded(projected_usd, self.limit_usd)

    def check_spent(self, spent_usd: float, pending: int, *, step: str, run_id: str) -> None:
        """Before each submission: stop once actual spend has reached the budget."""
        if self.limit_usd is not None and spent_usd >= self.limit_usd:
            raise RunNeedsAttention(
                f"budget ${self.limit_usd:,.2f} reached (spent ${spent_usd:,.2f}); {pending} "
                f"{step} request(s) not submitted. To go on: evalbatch collect {run_id} "
                "--budget USD"
            )

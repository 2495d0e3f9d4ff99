"""Creating a sweep: every variant prepared and validated like a run (a bad one stops the
sweep before anything is written), the budget checked on their projections together, then the
sweep and its runs written in one transaction."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..plan.prepare import Prepared, prepare
from ..plan.projection import project
from ..plan.variants import Axis, Variant, variants_of
from ..records import Mode
from ..store.db import Store
from .budget import Budget
from .create import budget_of, check_runs_can_start, new_run


def new_sweep_id() -> str:
    return "sweep-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


def create_sweep(
    store: Store,
    suite_path: str | Path,
    overrides: Sequence[str],
    axes: Sequence[Axis],
    *,
    mode: Mode | None,
    reference: str | None,
    margin: float,
    options: dict[str, Any],
    before_write: Callable[[list[Prepared]], None] | None = None,
) -> tuple[str, list[tuple[Variant, Prepared]]]:
    """Prepare every variant (all validated first), check the budget on their projections
    together, then write the sweep and its runs at once. Returns the sweep id and variants.
    ``before_write`` checks the prepared variants last (the CLI: every provider's key)."""
    variants = variants_of(axes)
    prepared = [(v, prepare(suite_path, [*overrides, *v.overrides], mode)) for v in variants]
    names = [v.name for v in variants]
    if reference is not None and reference not in names:
        raise ConfigError(
            f"--reference {reference!r} is not a variant (variants: {'; '.join(names)})"
        )
    budget = budget_of(options, prepared[0][1])
    projected = {v.name: project(p, store).total("plan") for v, p in prepared}
    if budget.limit_usd is not None:  # the sweep as a whole, as `plan` projects it
        budget.check_projected(sum(projected.values()))
    check_runs_can_start(store, [p for _, p in prepared], Budget(None))
    if before_write is not None:
        before_write([p for _, p in prepared])
    sweep_id = new_sweep_id()
    written = [new_run(p, options, budget, sweep_id=sweep_id, variant=v.name) for v, p in prepared]
    suite = prepared[0][1].suite
    spec = {
        "axes": [{"key": key, "values": values} for key, values in axes],
        "variants": [
            {"name": v.name, "settings": v.settings, "run": run.id}
            for (v, _), (run, _, _) in zip(prepared, written, strict=True)
        ],
        # by default the variant projected to cost most: what a team pays when it does not measure
        "reference": reference or max(projected, key=lambda name: projected[name]),
        "projected_usd": projected,
        "margin": margin,
        "budget_usd": budget.limit_usd,
    }
    store.sweeps.create(sweep_id, suite.name, str(suite.path), suite.mode, spec, written)
    return sweep_id, prepared

"""A sweep's variants: the cross product of its axes (models for generation, and any suite key
`--set` can name), each prepared and validated like a run, then written with the sweep in one
transaction: a bad variant stops the whole sweep before anything is written."""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..plan.prepare import Prepared, prepare
from ..plan.projection import project
from ..records import Mode
from ..store.db import Store
from ..suite.load import load_suite
from .budget import Budget
from .create import budget_of, check_runs_can_start, new_run

Axis = tuple[str, list[Any]]  # (suite key, values)


@dataclass(frozen=True)
class Variant:
    name: str  # "model=haiku, max_tokens=300"
    settings: dict[str, Any]  # suite key -> value as given
    overrides: list[str]  # the same, as --set strings


def new_sweep_id() -> str:
    return "sweep-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


def parse_matrix(items: Sequence[str]) -> list[Axis]:
    """`--matrix KEY=V1,V2` flags as axes (values read like --set values)."""
    axes = []
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key.strip() or not values:
            raise ConfigError(f"--matrix {item}: expected KEY=V1,V2,...")
        axes.append((key.strip(), [v.strip() for v in values.split(",") if v.strip()]))
    return axes


def axes_for(
    suite_path: str | Path, overrides: Sequence[str], models: Sequence[str], matrix: Sequence[Axis]
) -> tuple[list[Axis], str | None, float]:
    """The axes from the flags, else from the suite's `sweep:` block; with its reference and
    margin."""
    suite = load_suite(suite_path, list(overrides))
    spec = suite.sweep
    axes: list[Axis] = []
    chosen_models = list(models) or (spec.models if spec else [])
    if chosen_models:
        axes.append(("generate.model", chosen_models))
    axes += list(matrix) or ([(k, list(v)) for k, v in spec.matrix.items()] if spec else [])
    if not axes:
        raise ConfigError(
            "a sweep needs at least one axis: --models a,b or --matrix KEY=V1,V2 "
            "(or a `sweep:` block in the suite)"
        )
    for key, values in axes:
        if len(set(map(str, values))) != len(values):
            raise ConfigError(f"sweep axis {key}: a value is repeated")
    return axes, (spec.reference if spec else None), (spec.margin if spec else 0.02)


def variants_of(axes: Sequence[Axis]) -> list[Variant]:
    out = []
    for combo in itertools.product(*(values for _, values in axes)):
        settings = {key: value for (key, _), value in zip(axes, combo, strict=True)}
        name = ", ".join(f"{_short(key)}={_shown(value)}" for key, value in settings.items())
        overrides = [f"{key}={value}" for key, value in settings.items()]
        out.append(Variant(name, settings, overrides))
    return out


def _short(key: str) -> str:
    parts = key.split(".")
    return parts[-1] if parts[0] == "generate" else ".".join(parts[-2:])


def _shown(value: Any) -> str:
    text = str(value)
    return text.rsplit("/", 1)[-1] if text.startswith("file://") else text


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
) -> tuple[str, list[tuple[Variant, Prepared]]]:
    """Prepare every variant (all validated first), check the budget on their projections
    together, then write the sweep and its runs at once. Returns the sweep id and variants."""
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

"""A sweep's variants: the cross product of its axes (models for generation, and any suite key
`--set` can name), read from the flags or the suite's `sweep:` block, each a list of overrides."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..suite.load import load_suite

Axis = tuple[str, list[Any]]  # (suite key, values)


@dataclass(frozen=True)
class Variant:
    name: str  # "model=haiku, max_tokens=300"
    settings: dict[str, Any]  # suite key -> value as given
    overrides: list[str]  # the same, as --set strings


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

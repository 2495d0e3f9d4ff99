"""Changing a stored suite's graders (what `regrade` and `calibrate` do): the grade list back in
its YAML form, `--set` overrides on it (``grade=[...]``, ``grade.NAME=...``,
``grade.NAME.KEY=...``, ``gate.KEY=...``), and a grader copied onto another model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import SuiteError
from ..userfiles import SUITE_FILE
from .load import (
    apply_overrides,
    display_path,
    load_suite,
    override_value,
    parse_yaml,
    read_text,
    replace_grade,
)
from .schema import GateSpec, GraderSpec, Suite

HELP = "--set grade=[...], --set grade.NAME.KEY=VALUE or --set gate.KEY=VALUE"


def grade_yaml(specs: list[GraderSpec]) -> list[dict[str, Any]]:
    """The grade list as a suite file writes it, each entry named (names stay as they were)."""
    return [{"name": spec.name, spec.type: _copy(spec.params)} for spec in specs]


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def override_grade(suite: Suite, overrides: list[str]) -> Suite:
    """``suite`` with ``--set`` overrides applied to its graders and gate; anything else is an
    error (the generations are another run's: they cannot change)."""
    if not overrides:
        return suite
    raw = grade_yaml(list(suite.grade))
    gate: dict[str, Any] = suite.gate.model_dump()
    for item in overrides:
        key, sep, value = item.partition("=")
        parts = key.strip().split(".")
        if not sep or parts[0] not in ("grade", "gate") or (parts[0] == "gate" and len(parts) != 2):
            raise SuiteError(f"--set {item}: a regrade changes only graders and the gate ({HELP})")
        if parts[0] == "gate":
            gate = apply_overrides({"gate": gate}, [item])["gate"]
        elif len(parts) == 1:  # a whole new list: named as a suite's graders are, so that a
            # later `--set grade.NAME.KEY=...` finds its entries
            whole = apply_overrides({"grade": raw}, [item])["grade"]
            raw = grade_yaml(list(replace_grade(suite, whole, "--set").grade))
        else:
            _set_in_grader(raw, parts[1], parts[2:], value, item)
    try:
        suite = suite.model_copy(update={"gate": type(suite.gate).model_validate(gate)})
    except ValueError as exc:
        raise SuiteError(f"gate: {str(exc).splitlines()[-1].strip()}", where="--set") from None
    return replace_grade(suite, raw, "--set")


def _set_in_grader(
    raw: list[dict[str, Any]], name: str, path: list[str], value: str, item: str
) -> None:
    entry = next((e for e in raw if e.get("name") == name), None)
    if entry is None:
        names = ", ".join(str(e.get("name")) for e in raw) or "none"
        raise SuiteError(f"--set {item}: no grader named {name!r} (graders: {names})")
    kind = next(k for k in entry if k != "name")
    if not path:
        entry[kind] = override_value(value)
        return
    if not isinstance(entry[kind], dict):
        raise SuiteError(
            f"--set {item}: grader {name!r} is written as a single value; set it whole with "
            f"--set grade.{name}=..."
        )
    target = entry[kind]
    for part in path[:-1]:
        if not isinstance(target.get(part), dict):
            target[part] = {}
        target = target[part]
    target[path[-1]] = override_value(value)


def on_model(spec: GraderSpec, model: str, name: str) -> dict[str, Any]:
    """A grader entry (YAML form) that is ``spec`` graded by ``model`` under ``name``, without
    reference sampling (a calibration measures the grader itself)."""
    params = {k: v for k, v in _copy(spec.params).items() if k != "reference"}
    return {"name": name, spec.type: {**params, "model": model}}


def graders_from_file(suite: Suite, path: Path) -> Suite:
    """``suite`` with the ``grade:`` (and ``gate:``, when given) of the file at ``path``: a whole
    suite file (checked whole), or a file holding only ``grade:`` and ``gate:``."""
    display = display_path(path)
    node, raw = parse_yaml(read_text(path, display, SUITE_FILE), display)
    if not isinstance(raw, dict) or "grade" not in raw:
        raise SuiteError(
            "a suite file (or one with only grade: and gate:) is expected", where=display
        )
    extra = sorted(set(raw) - {"grade", "gate"})
    gate: Any = suite.gate
    if extra:  # a whole suite: load it as `run` would
        other = load_suite(path)
        grade, base_dir, gate = grade_yaml(list(other.grade)), other.base_dir, other.gate
    else:
        grade, base_dir = raw["grade"], path.resolve().parent
        if raw.get("gate") is not None:
            try:
                gate = GateSpec.model_validate(raw["gate"])
            except ValueError as exc:
                raise SuiteError(
                    f"gate: {str(exc).splitlines()[-1].strip()}", where=display
                ) from None
    updated = suite.model_copy(update={"base_dir": base_dir, "gate": gate})
    return replace_grade(updated, grade, display, None if extra else node)

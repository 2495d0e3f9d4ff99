"""Graders: deterministic ones score an output directly; model-graded ones (rubric, pairwise)
form the grade step's Requests. `build_grader` turns a suite's grader entry into one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import Grader, ModelGrader
from .code import CodeGrader
from .deterministic import ContainsGrader, ExactGrader, JsonGrader, RegexGrader
from .python_grader import PythonGrader
from .rubric import PairwiseGrader, RubricGrader

GRADERS: dict[str, type[Grader]] = {
    cls.kind: cls
    for cls in (
        ExactGrader,
        ContainsGrader,
        RegexGrader,
        JsonGrader,
        PythonGrader,
        CodeGrader,
        RubricGrader,
        PairwiseGrader,
    )
}
KNOWN_GRADERS: tuple[str, ...] = tuple(GRADERS)

__all__ = ["GRADERS", "KNOWN_GRADERS", "Grader", "ModelGrader", "build_grader"]


def build_grader(spec: Any, base_dir: Path) -> Grader:
    """A grader from a suite entry (``.type``, ``.name``, ``.params``); ValueError when invalid."""
    cls = GRADERS.get(spec.type)
    if cls is None:
        raise ValueError(f"unknown grader type {spec.type!r}")
    return cls(spec.name, spec.params, base_dir)

"""The two steps of a run, generate and grade, each turning cases into planned Requests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

GENERATE = "generate"
GRADE = "grade"
WARM = "warm"  # one synchronous request per shared prefix before a batch (cache: {warm: true})
STEPS = (GENERATE, GRADE)


@dataclass(frozen=True)
class PlannedRequest:
    step: str
    case_idx: int
    case_id: str
    epoch: int
    grader: str | None
    model: str
    route: str
    system: list[dict[str, Any]] | None  # shared prefix blocks, without cache_control
    source: str  # where the prefix came from: "generate.system", "grade.rubric"
    messages: list[dict[str, Any]]
    max_tokens: int
    extra: dict[str, Any] | None = None


def split_params(params: dict[str, Any]) -> tuple[list[dict[str, Any]] | None, dict[str, Any]]:
    """A Messages body -> (system blocks without cache_control, the remaining params)."""
    rest = {k: v for k, v in params.items() if k != "system"}
    system = params.get("system")
    if system is None or system == "":
        return None, rest
    if isinstance(system, str):
        return [{"type": "text", "text": system}], rest
    blocks = [{k: v for k, v in block.items() if k != "cache_control"} for block in system]
    return blocks, rest

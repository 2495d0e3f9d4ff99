"""What the store's reads return for reference-sampled grading and calibration: frozen, typed
records (apart from `records.py` so each stays small). Imports no SQLAlchemy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ReferenceRow:
    """A reference grader's verdict on one case and epoch of its sample, to be written (and as
    read back). ``grader`` is the graded grader's name, ``model`` the reference model's id."""

    case_idx: int
    case_id: str
    epoch: int
    grader: str
    model: str
    passed: bool | None
    value: float | None
    explanation: str
    error: str | None


@dataclass(frozen=True)
class GraderCost:
    """What one grader's grade requests cost in a run, on one model."""

    grader: str
    model: str
    requests: int
    cost: float
    sync_cost: float


@dataclass(frozen=True)
class GenerationRoute:
    """The route and model a case's generation took (epoch 0), and what it cost."""

    case_idx: int
    case_id: str
    route: str
    model: str
    cost: float


@dataclass(frozen=True)
class CalibrationRecord:
    """A calibration as stored: the run it calibrates, its step, the settings and sample it ran
    with, and its runs (``{label: run id}``)."""

    id: str
    run_id: str
    step: str
    key: str
    created_at: float
    settings: dict[str, Any]
    sample: dict[str, Any]
    runs: dict[str, str]

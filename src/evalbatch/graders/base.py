"""The grader interface: deterministic graders score an output directly; model-graded ones
build a grade-step Request and parse the verdict that comes back."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from ..records import Case, Score


class Grader(ABC):
    """One grader entry of a suite's ``grade:`` list.

    ``name`` is unique within the suite (``contains``, ``rubric``, ``rubric_2``...).
    ``params`` is the raw YAML value of the entry (a scalar or a mapping); the constructor
    validates it and raises ``ValueError`` with a one-line reason (the suite loader adds file:line).
    ``base_dir`` is the suite file's folder, for ``file://`` paths and python grader files.
    """

    kind: ClassVar[str]
    model_graded: ClassVar[bool] = False

    def __init__(self, name: str, params: Any, base_dir: Path) -> None:
        self.name = name
        self.base_dir = base_dir

    def template_sources(self) -> list[str]:
        """Jinja templates this grader renders per case (validated against every case)."""
        return []

    @abstractmethod
    def manifest_entry(self) -> dict[str, Any]:
        """Everything that pins this grader's behaviour (params, rubric text, source hashes)."""

    def grade(self, output: str, case: Case) -> Score:
        """Deterministic graders: score ``output`` for ``case``."""
        raise NotImplementedError

    def grade_many(self, items: Sequence[tuple[str, Case]]) -> list[Score]:
        """Scores for (output, case) pairs, in order; a grader bug is that item's error."""
        scores = []
        for output, case in items:
            try:
                scores.append(self.grade(output, case))
            except Exception as exc:  # a grader bug is a recorded grader error, never a crash
                scores.append(Score(grader=self.name, error=f"{exc.__class__.__name__}: {exc}"))
        return scores

    def warnings(self) -> list[str]:
        """Lines every run with this grader must print and every report must show."""
        return []


class ModelGrader(Grader):
    """A grader whose verdict comes from a model call in the grade step."""

    model_graded: ClassVar[bool] = True
    model: str  # alias, snapshot id, or "route"
    max_tokens: int

    def selects(self, case: Case) -> bool:
        """Whether this grader grades ``case`` (a reference grader grades only its sample)."""
        return True

    @abstractmethod
    def build_request(
        self, output: str, case: Case, model_id: str, cache_ttl: str | None
    ) -> dict[str, Any]:
        """The Messages API body (model, max_tokens, system, messages) that asks for a verdict.
        With ``cache_ttl`` ("5m"/"1h") the shared rubric prefix carries a cache breakpoint."""

    @abstractmethod
    def parse_verdict(self, text: str, case: Case) -> Score:
        """Turn the model's reply into a Score; an unparseable reply is Score(error=...)."""

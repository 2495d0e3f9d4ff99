"""The domain records that cross module boundaries: Case, Usage, Outcome, Score.

The vocabulary is the project's: a Suite has Cases; a Run has Steps (generate, grade); a Step
sends Requests in Batches (or synchronously); each Request gets an Outcome; graders turn outputs
into Scores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

OutcomeKind = Literal["succeeded", "errored", "expired", "canceled"]


@dataclass(frozen=True)
class Case:
    """One eval case. ``vars`` are extra template variables; ``line`` is its line in ``source``."""

    id: str
    input: Any = None
    target: Any = None
    vars: dict[str, Any] = field(default_factory=dict)
    difficulty: str | None = None
    tags: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    line: int | None = None

    def content(self) -> dict[str, Any]:
        """What the case is (not where it sits): the part the manifest hashes and compare diffs."""
        return {
            "id": self.id,
            "input": self.input,
            "target": self.target,
            "vars": self.vars,
            "difficulty": self.difficulty,
            "tags": list(self.tags),
            "metadata": self.metadata,
        }

    def context(self) -> dict[str, Any]:
        """Template variables: the case's fields, with ``vars`` merged at the top level."""
        ctx: dict[str, Any] = {
            "id": self.id,
            "tags": list(self.tags),
            "metadata": self.metadata,
            "vars": self.vars,
        }
        # Absent fields stay undefined, so a template that uses one fails loudly (StrictUndefined)
        # instead of rendering "None".
        for key in ("input", "target", "difficulty"):
            value = getattr(self, key)
            if value is not None:
                ctx[key] = value
        ctx.update(self.vars)
        return ctx

    def where(self, field_name: str | None = None) -> str:
        place = f"{self.source}:{self.line}" if self.line else self.source
        suffix = f"case {self.id!r}" + (f", field {field_name!r}" if field_name else "")
        return f"{place} ({suffix})" if place else suffix


@dataclass(frozen=True)
class Usage:
    """Token usage of one result, as the provider reported it."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_5m: int = 0
    cache_write_1h: int = 0
    cache_read: int = 0
    service_tier: str | None = None

    @property
    def cache_write(self) -> int:
        return self.cache_write_5m + self.cache_write_1h

    @property
    def prompt_tokens(self) -> int:
        """Every input-side token: uncached + cache writes + cache reads."""
        return self.input_tokens + self.cache_write + self.cache_read


@dataclass(frozen=True)
class Outcome:
    """What the provider returned for one request (batch item or synchronous call)."""

    custom_id: str
    kind: OutcomeKind
    model: str | None = None
    text: str = ""
    stop_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    error_type: str | None = None
    error_message: str | None = None
    retryable: bool = False
    latency_ms: int | None = None


@dataclass(frozen=True)
class Score:
    """One grader's verdict on one case. ``error`` set means the grader could not decide."""

    grader: str
    passed: bool | None = None
    value: float | None = None
    explanation: str = ""
    error: str | None = None

"""The suite's schema: the pydantic models a suite file validates into (Suite, and its
generate, routing, grade, cache and gate parts), and the keys each level accepts."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..records import Mode

MAX_CASE_FILE_BYTES = 1 << 30
TOP_KEYS = (
    "name",
    "description",
    "cases",
    "generate",
    "routing",
    "grade",
    "mode",
    "budget_usd",
    "cache",
    "gate",
    "epochs",
    "retries",
    "concurrency",
    "sweep",
    "runs_per_month",
)
GENERATE_KEYS = ("system", "prompt", "max_tokens", "model", "stop_sequences")
CASE_FORMATS = {".jsonl": "jsonl", ".csv": "csv", ".yaml": "yaml", ".yml": "yaml"}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GenerateSpec(_Model):
    system: str | None = None
    system_source: str = "none"
    prompt: str
    prompt_source: str = "inline"
    max_tokens: int = Field(1024, ge=1, le=128000)
    model: str
    stop_sequences: list[str] | None = None


class RouteRule(_Model):
    when: str
    model: str


class RoutingSpec(_Model):
    table: dict[str, str] = {}
    default: str
    rules: list[RouteRule] = []


class GraderSpec(_Model):
    type: str
    name: str
    index: int
    params: Any = None
    line: int | None = None


class CacheSpec(_Model):
    mode: Literal["auto", "off"] = "auto"
    # Batch mode writes each shared prefix with one synchronous request first, so the batch
    # reads it from its first item: cold, a batch's concurrent items each write the prefix at
    # the 1h price and can cost more than no cache at all (benchmarks/cost.py).
    warm: bool = True
    ttl: Literal["5m", "1h"] | None = None


class GateSpec(_Model):
    min_pass_rate: float | None = Field(None, ge=0.0, le=1.0)
    no_regression: bool = False
    alpha: float = Field(default=0.05, gt=0.0, lt=1.0)  # for no_regression / --baseline
    min_effect: float = Field(default=0.0, ge=0.0, le=1.0)


class CasesSpec(_Model):
    path: Path | None = None
    display: str = ""
    format: Literal["jsonl", "csv", "yaml", "inline"]
    inline: list[Any] | None = None
    line: int | None = None


class SweepSpec(_Model):
    """Variants to run together: models for generation, and any suite keys (`--set` style)."""

    models: list[str] = []
    matrix: dict[str, list[Any]] = {}
    reference: str | None = None
    margin: float = Field(default=0.02, ge=0.0, lt=1.0)


class Suite(_Model):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", max_length=200)
    description: str = ""
    path: Path
    base_dir: Path
    display: str = ""
    cases: CasesSpec
    generate: GenerateSpec
    routing: RoutingSpec | None = None
    grade: list[GraderSpec] = []
    mode: Mode = "batch"
    budget_usd: float | None = Field(None, gt=0)
    cache: CacheSpec = CacheSpec()
    gate: GateSpec = GateSpec(min_pass_rate=None)
    epochs: int = Field(1, ge=1, le=100)
    retries: int = Field(2, ge=0, le=10)
    concurrency: int = Field(8, ge=1, le=512)
    sweep: SweepSpec | None = None
    runs_per_month: int | None = Field(None, ge=1, le=100_000)  # the cadence, for savings

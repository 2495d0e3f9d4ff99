"""The sandbox's settings: responder, batch timing and cache behaviour, faults, rate limits,
seed; and their plain-JSON description, served at /_sandbox/config."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class FaultConfig:
    """Probabilities (0..1) of each fault, drawn from one seeded generator.

    ``script`` is a deterministic queue of HTTP statuses (429, 500, 529, or 0 for a dropped
    connection) returned to the next requests, in order, before any probability applies.
    """

    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_529: float = 0.0
    rate_drop: float = 0.0
    errored: float = 0.0  # batch items that end `errored` with a retryable error
    expired: float = 0.0  # batch items that end `expired`
    truncate_results: bool = False  # the first results download of each batch is cut short
    endpoints: tuple[str, ...] = (
        "messages",
        "count_tokens",
        "batches",
        "results",
        "openai_chat",
        "openai_files",
        "openai_content",
        "openai_batches",
    )
    script: list[int] = field(default_factory=list)
    retry_after_s: float = 0.05


@dataclass
class RateLimit:
    """Per-model token buckets (per minute). ``model`` may be a glob such as ``*``; OpenAI
    models match as ``openai:NAME``. ``tpm`` (input plus requested output) is OpenAI's only."""

    model: str = "*"
    rpm: int | None = None
    itpm: int | None = None
    otpm: int | None = None
    tpm: int | None = None


@dataclass
class SandboxConfig:
    responder: str | Callable[[dict[str, Any]], Any] = "echo"
    batch_latency: float = 0.0  # seconds a batch stays in_progress before its items are processed
    message_latency: float = 0.0  # seconds each /v1/messages call takes (for concurrency tests)
    faults: FaultConfig = field(default_factory=FaultConfig)
    rate_limits: list[RateLimit] = field(default_factory=list)
    seed: int = 0
    expire_after: float | None = None  # unfinished batch items expire after this many seconds
    batch_concurrency: int = 1  # items processed together: a wave cannot read its own writes
    # Probability that a batch item reads a cache entry written earlier by its own batch (drawn
    # per batch and custom_id); entries from before the batch are always read.
    batch_cache_hit_rate: float = 1.0
    max_batch_bytes: int = 256_000_000
    # OpenAI's batch input file limits (requests per file, bytes per file).
    openai_max_batch_requests: int = 50_000
    openai_max_batch_bytes: int = 200_000_000
    host: str = "127.0.0.1"
    port: int = 0
    allow_remote: bool = False
    # False: GET /v1/messages/batches answers 404, as some API gateways do (reconcile tests)
    list_batches: bool = True
    clock: Callable[[], float] = time.time

    def check(self) -> None:
        """ValueError for a setting out of range (the CLI exits 2 on it)."""
        if not 0.0 <= self.batch_cache_hit_rate <= 1.0:
            raise ValueError(
                f"batch_cache_hit_rate: a probability between 0 and 1 "
                f"(got {self.batch_cache_hit_rate!r})"
            )
        if self.batch_concurrency < 1:
            raise ValueError(f"batch_concurrency: at least 1 (got {self.batch_concurrency!r})")

    def describe(self) -> dict[str, Any]:
        """The settings as plain JSON, so a benchmark can report what it ran with."""
        responder = self.responder
        if callable(responder):
            responder = f"callable:{getattr(responder, '__qualname__', type(responder).__name__)}"
        return {
            "responder": responder,
            "seed": self.seed,
            "batch_latency": self.batch_latency,
            "message_latency": self.message_latency,
            "batch_concurrency": self.batch_concurrency,
            "batch_cache_hit_rate": self.batch_cache_hit_rate,
            "expire_after": self.expire_after,
            "max_batch_bytes": self.max_batch_bytes,
            "openai_max_batch_requests": self.openai_max_batch_requests,
            "openai_max_batch_bytes": self.openai_max_batch_bytes,
            "faults": asdict(self.faults),
            "rate_limits": [asdict(limit) for limit in self.rate_limits],
        }

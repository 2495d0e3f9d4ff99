"""Whose batches a batch path drives: one run's, or a sweep's (the requests of several runs,
submitted together so shared prefixes are cached across them). Each run keeps its own
ingest context (mode, retries, prices) and cache TTL."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..records import parse_custom_id
from .ingest import IngestContext


@dataclass(frozen=True)
class RunIO:
    ingest: IngestContext
    ttl: str | None


@dataclass(frozen=True)
class BatchScope:
    lead: str  # the run whose id the batch rows carry (a sweep's first variant)
    runs: Mapping[str, RunIO]
    sweep_id: str | None = None

    @classmethod
    def single(cls, ingest: IngestContext, ttl: str | None) -> BatchScope:
        return cls(ingest.run_id, {ingest.run_id: RunIO(ingest, ttl)})

    @property
    def label(self) -> str:
        return self.sweep_id or self.lead

    def owns(self, custom_id: str) -> tuple[str, str, int] | None:
        """The (run, step, idx) a custom_id names, when that run is in this scope."""
        parsed = parse_custom_id(custom_id)
        if parsed is None or parsed[0] not in self.runs:
            return None
        return parsed

    def max_attempts(self) -> dict[str, int]:
        return {run_id: io.ingest.retries for run_id, io in self.runs.items()}

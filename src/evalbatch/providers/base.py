"""The provider protocol: the narrow surface the engine needs from a batch + sync API.

Implementations translate their SDK's exceptions into ProviderError at this boundary, so nothing
above `providers/` knows which SDK raised.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from ..records import BatchInfo, Outcome


class Provider(Protocol):
    name: str

    def submit_batch(self, items: list[tuple[str, dict[str, Any]]]) -> BatchInfo:
        """Create one batch from (custom_id, params) pairs. Never retried inside: the engine's
        journal retries, so a lost response cannot create a duplicate batch."""
        ...

    def get_batch(self, batch_id: str) -> BatchInfo: ...

    def list_batches(self, *, created_after: float) -> Iterator[BatchInfo]:
        """Batches newest first, stopping at the first created before ``created_after``."""
        ...

    def batch_custom_ids(self, batch_id: str, limit: int = 5) -> list[str]:
        """A few custom_ids of an ended batch (for reconciling an intent)."""
        ...

    def iter_results(self, batch_id: str) -> Iterator[Outcome]: ...

    def cancel_batch(self, batch_id: str) -> BatchInfo: ...

    async def complete(self, custom_id: str, params: dict[str, Any]) -> Outcome:
        """One synchronous request; provider errors come back as an errored Outcome."""
        ...

    def count_tokens(self, params: dict[str, Any]) -> int: ...

    def close(self) -> None: ...

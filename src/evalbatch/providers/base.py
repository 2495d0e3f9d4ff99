"""The provider protocol: the narrow surface the engine needs from a batch + sync API.

Implementations translate their SDK's exceptions into ProviderError at this boundary, so nothing
above `providers/` knows which SDK raised.

Every request body crossing this boundary has the one shape `plan.requests.request_body` builds
(model, max_tokens, system blocks, messages, extra keys such as stop_sequences); a provider whose
API speaks another shape translates it here. Creating a batch is one call for a one-step provider
(Anthropic) and two for a two-step one (OpenAI: upload the input file, then create the batch from
it); the engine journals both intents (`run/batch.py`), and a one-step provider's
`upload_batch` returns None.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from ..records import BatchInfo, Outcome, UploadInfo

DEFAULT_PROVIDER = "anthropic"


class Provider(Protocol):
    name: str

    def batch_item_bytes(self, custom_id: str, params: dict[str, Any]) -> int:
        """Bytes one request takes in a batch as this provider receives it (chunking)."""
        ...

    def upload_batch(self, items: list[tuple[str, dict[str, Any]]], label: str) -> str | None:
        """Two-step providers: upload the batch input (named with ``label``) and return its id.
        One-step providers: None. Never retried inside, as for ``submit_batch``."""
        ...

    def submit_batch(
        self,
        items: list[tuple[str, dict[str, Any]]],
        *,
        upload_id: str | None = None,
        label: str = "",
    ) -> BatchInfo:
        """Create one batch from (custom_id, params) pairs (a two-step provider: from the
        uploaded input, carrying ``label``). Never retried inside: the engine's journal
        retries, so a lost response cannot create a duplicate batch."""
        ...

    def get_batch(self, batch_id: str) -> BatchInfo: ...

    def list_batches(self, *, created_after: float) -> Iterator[BatchInfo]:
        """Batches newest first, stopping at the first created before ``created_after``."""
        ...

    def list_uploads(self, *, created_after: float) -> Iterator[UploadInfo]:
        """Batch input files newest first, stopping before ``created_after`` (none for a
        one-step provider)."""
        ...

    def batch_custom_ids(self, batch_id: str, limit: int = 5) -> list[str]:
        """A few custom_ids of an ended batch (for reconciling an intent)."""
        ...

    def iter_results(self, batch_id: str) -> Iterator[Outcome]: ...

    def release_batch(self, batch_id: str | None, upload_id: str | None) -> None:
        """Delete what the provider keeps for a collected (or never created) batch: its input
        file and its output and error files. Idempotent; nothing for a one-step provider."""
        ...

    def cancel_batch(self, batch_id: str) -> BatchInfo: ...

    async def complete(self, custom_id: str, params: dict[str, Any]) -> Outcome:
        """One synchronous request; provider errors come back as an errored Outcome."""
        ...

    def count_tokens(self, params: dict[str, Any]) -> int: ...

    def close(self) -> None: ...


class ProviderFactory(Protocol):
    """Opens the provider named ``name`` ("anthropic", "openai")."""

    def __call__(self, name: str = DEFAULT_PROVIDER) -> Provider: ...

"""The Anthropic provider on the official SDK: Message Batches for the batch path, the async
client for the sync path. Decoding and error translation live in `anthropic_wire`."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Generator, Iterator
from typing import Any

import anthropic
import orjson
from anthropic.types.messages import MessageBatch

from ..errors import MissingCredentials, ProviderError
from ..records import BatchInfo, Outcome, UploadInfo
from .anthropic_wire import (
    batch_info,
    class_of_status,
    error_type_of,
    item_outcome,
    message_outcome,
    rate_limits,
    retry_after,
    translate,
)


def split_lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """JSONL lines from a byte stream, split on ``\\n`` only: a model output may hold U+2028,
    U+0085 or any other character that text-mode line splitting would cut a record at."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        yield from lines
    if pending:
        yield pending


class AnthropicProvider:
    """Provider on `anthropic.Anthropic` (batches) and `anthropic.AsyncAnthropic` (sync path)."""

    name = "anthropic"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        max_retries: int = 4,
        timeout: float = 600.0,
    ) -> None:
        key = api_key or os.environ.get("ANTHROPIC_API_KEY")
        if not key:
            raise MissingCredentials("ANTHROPIC_API_KEY")
        base = base_url or os.environ.get("ANTHROPIC_BASE_URL") or None
        self._client = anthropic.Anthropic(
            api_key=key, base_url=base, max_retries=max_retries, timeout=timeout
        )
        self.base_url = str(self._client.base_url).rstrip("/")
        # Batch creation is never retried by the SDK: no idempotency key exists, so a retried
        # POST after a lost response would create (and bill) a second batch. The journal retries.
        self._create_client = self._client.with_options(max_retries=0)
        # The sync path paces and retries itself (run/pacing.py): it must see every 429.
        self._async_args: dict[str, Any] = {
            "api_key": key,
            "base_url": base,
            "max_retries": 0,
            "timeout": timeout,
        }
        self._async: anthropic.AsyncAnthropic | None = None

    def _translate(self, exc: Exception, action: str) -> ProviderError:
        return translate(exc, action, self.base_url)

    # -- batches ---------------------------------------------------------------------------
    def batch_item_bytes(self, custom_id: str, params: dict[str, Any]) -> int:
        return len(orjson.dumps({"custom_id": custom_id, "params": params})) + 1

    def upload_batch(self, items: list[tuple[str, dict[str, Any]]], label: str) -> str | None:
        return None  # one step: the requests go inline with the create call

    def list_uploads(self, *, created_after: float) -> Iterator[UploadInfo]:
        return iter(())

    def release_batch(self, batch_id: str | None, upload_id: str | None) -> None:
        return None  # nothing is kept apart from the batch, which expires on its own

    def submit_batch(
        self,
        items: list[tuple[str, dict[str, Any]]],
        *,
        upload_id: str | None = None,
        label: str = "",
    ) -> BatchInfo:
        body = orjson.dumps({"requests": [{"custom_id": c, "params": p} for c, p in items]})
        try:
            # The body goes as the JSON we encoded, through the SDK's client (its auth, errors
            # and MessageBatch): its typed create() would first copy and walk every request, a
            # second or more of CPU per 100,000 requests, for nothing our bodies need.
            batch = self._create_client.post(
                "/v1/messages/batches", content=body, cast_to=MessageBatch
            )
        except anthropic.AnthropicError as exc:
            raise self._translate(exc, "creating a batch") from exc
        return batch_info(batch)

    def get_batch(self, batch_id: str) -> BatchInfo:
        try:
            return batch_info(self._client.messages.batches.retrieve(batch_id))
        except anthropic.AnthropicError as exc:
            raise self._translate(exc, f"retrieving batch {batch_id}") from exc

    def list_batches(self, *, created_after: float) -> Iterator[BatchInfo]:
        try:
            for batch in self._client.messages.batches.list(limit=100):
                info = batch_info(batch)
                if info.created_at < created_after:
                    return
                yield info
        except anthropic.AnthropicError as exc:
            raise self._translate(exc, "listing batches") from exc

    def batch_custom_ids(self, batch_id: str, limit: int = 5) -> list[str]:
        ids: list[str] = []
        # closing(): stopping early must close the streamed response now, not at GC
        with contextlib.closing(self.iter_results(batch_id)) as outcomes:
            for outcome in outcomes:
                ids.append(outcome.custom_id)
                if len(ids) >= limit:
                    break
        return ids

    def iter_results(self, batch_id: str) -> Generator[Outcome, None, None]:
        """Stream the results file line by line. The SDK fetches it (auth, retries, results_url);
        lines are decoded here with orjson, about 20x cheaper than building SDK models for
        100,000 lines (benchmarks/scale.py)."""
        results = self._client.messages.batches.with_streaming_response.results
        try:
            with results(batch_id) as response:
                for line in split_lines(response.iter_bytes()):
                    if line.strip():
                        yield item_outcome(orjson.loads(line))
        except anthropic.AnthropicError as exc:
            raise self._translate(exc, f"downloading results of batch {batch_id}") from exc
        except Exception as exc:
            # A cut stream: a broken last line (ValueError) or the transport's own error (the
            # SDK's HTTP library is its business). Collecting again is idempotent, so retry.
            raise ProviderError(
                f"downloading results of batch {batch_id}: stream cut ({exc.__class__.__name__})",
                retryable=True,
            ) from exc

    def cancel_batch(self, batch_id: str) -> BatchInfo:
        try:
            return batch_info(self._client.messages.batches.cancel(batch_id))
        except anthropic.AnthropicError as exc:
            raise self._translate(exc, f"canceling batch {batch_id}") from exc

    # -- sync path ---------------------------------------------------------------------------
    async def complete(self, custom_id: str, params: dict[str, Any]) -> Outcome:
        """One request, once. A failure comes back as an errored Outcome with its ErrorClass,
        the provider's retry-after and rate-limit readings, for the sync path to act on."""
        if self._async is None:
            self._async = anthropic.AsyncAnthropic(**self._async_args)
        started = time.monotonic()
        try:
            raw = await self._async.messages.with_raw_response.create(**params)
            message = (await raw.parse()).model_dump(mode="json")
        except anthropic.APIStatusError as exc:
            err = self._translate(exc, "sending a request")
            headers = exc.response.headers
            return Outcome(
                custom_id=custom_id,
                kind="errored",
                error_type=error_type_of(exc) or f"http_{exc.status_code}",
                error_message=str(err),
                error_class=class_of_status(exc.status_code, error_type_of(exc)),
                retry_after=retry_after(headers),
                limits=rate_limits(headers),
            )
        except anthropic.APIConnectionError as exc:
            return Outcome(
                custom_id=custom_id,
                kind="errored",
                error_type="connection_error",
                error_message=str(self._translate(exc, "sending a request")),
                error_class="transient",
            )
        latency = int((time.monotonic() - started) * 1000)
        return message_outcome(custom_id, message, None, latency, rate_limits(raw.headers))

    def count_tokens(self, params: dict[str, Any]) -> int:
        allowed = {k: v for k, v in params.items() if k in ("model", "messages", "system", "tools")}
        try:
            return self._client.messages.count_tokens(**allowed).input_tokens
        except anthropic.AnthropicError as exc:
            raise self._translate(exc, "counting tokens") from exc

    async def aclose(self) -> None:
        if self._async is not None:
            await self._async.close()
            self._async = None

    def close(self) -> None:
        self._client.close()

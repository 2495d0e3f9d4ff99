"""The Anthropic provider on the official SDK: Message Batches for the batch path, the async
client for the sync path. SDK exceptions become ProviderError here and nowhere else."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Generator, Iterator
from datetime import datetime
from typing import Any

import anthropic
import orjson

from ..errors import MissingCredentials, ProviderError
from ..records import BatchInfo, Outcome, Usage

RETRYABLE_ERROR_TYPES = frozenset(
    {"overloaded_error", "api_error", "rate_limit_error", "timeout_error"}
)


def _epoch(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def _info(batch: Any) -> BatchInfo:
    counts = batch.request_counts
    count_map = {
        "processing": counts.processing,
        "succeeded": counts.succeeded,
        "errored": counts.errored,
        "canceled": counts.canceled,
        "expired": counts.expired,
    }
    return BatchInfo(
        id=batch.id,
        status=batch.processing_status,
        counts=count_map,
        created_at=_epoch(batch.created_at) or 0.0,
        ended_at=_epoch(batch.ended_at),
        expires_at=_epoch(batch.expires_at),
        request_count=sum(count_map.values()),
    )


def _usage(raw: dict[str, Any] | None, tier_default: str | None) -> Usage:
    """Usage from the wire form (a dict): the same code serves batch lines and sync messages."""
    if not raw:
        return Usage()
    creation = raw.get("cache_creation") or None
    total_write = raw.get("cache_creation_input_tokens") or 0
    write_1h = (creation.get("ephemeral_1h_input_tokens") or 0) if creation else 0
    write_5m = (creation.get("ephemeral_5m_input_tokens") or 0) if creation else total_write
    return Usage(
        input_tokens=raw.get("input_tokens") or 0,
        output_tokens=raw.get("output_tokens") or 0,
        cache_write_5m=write_5m,
        cache_write_1h=write_1h,
        cache_read=raw.get("cache_read_input_tokens") or 0,
        service_tier=raw.get("service_tier") or tier_default,
    )


def _message_outcome(
    custom_id: str, message: dict[str, Any], tier: str | None, latency_ms: int | None
) -> Outcome:
    text = "".join(
        block.get("text", "")
        for block in message.get("content") or []
        if block.get("type") == "text"
    )
    return Outcome(
        custom_id=custom_id,
        kind="succeeded",
        model=message.get("model"),
        text=text,
        stop_reason=message.get("stop_reason"),
        usage=_usage(message.get("usage"), tier),
        latency_ms=latency_ms,
    )


def _item_outcome(item: dict[str, Any]) -> Outcome:
    """One line of a batch's results file."""
    custom_id, result = item["custom_id"], item["result"]
    kind = result["type"]
    if kind == "succeeded":
        return _message_outcome(custom_id, result["message"], "batch", None)
    if kind == "errored":
        err = (result.get("error") or {}).get("error") or {}
        return _error_outcome(custom_id, err.get("type") or "api_error", err.get("message") or "")
    return Outcome(custom_id=custom_id, kind=kind, retryable=kind == "expired")


def _error_outcome(custom_id: str, error_type: str, message: str) -> Outcome:
    return Outcome(
        custom_id=custom_id,
        kind="errored",
        error_type=error_type,
        error_message=message,
        retryable=error_type in RETRYABLE_ERROR_TYPES,
    )


def _translate(exc: Exception, action: str) -> ProviderError:
    if isinstance(exc, anthropic.APIStatusError):
        retryable = exc.status_code in (408, 409, 429) or exc.status_code >= 500
        return ProviderError(
            f"{action}: HTTP {exc.status_code} {_error_message(exc)}",
            retryable=retryable,
            status=exc.status_code,
        )
    if isinstance(exc, anthropic.APIConnectionError):
        return ProviderError(
            f"{action}: connection failed ({exc.__class__.__name__})", retryable=True
        )
    return ProviderError(f"{action}: {exc.__class__.__name__}: {exc}", retryable=False)


def _error_message(exc: anthropic.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            return f"{err.get('type', '')}: {err.get('message', '')}".strip(": ")
    return exc.__class__.__name__


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
        # Batch creation is never retried by the SDK: no idempotency key exists, so a retried
        # POST after a lost response would create (and bill) a second batch. The journal retries.
        self._create_client = self._client.with_options(max_retries=0)
        self._async_args = {
            "api_key": key,
            "base_url": base,
            "max_retries": max_retries,
            "timeout": timeout,
        }
        self._async: anthropic.AsyncAnthropic | None = None

    # -- batches ---------------------------------------------------------------------------
    def submit_batch(self, items: list[tuple[str, dict[str, Any]]]) -> BatchInfo:
        body = [{"custom_id": cid, "params": params} for cid, params in items]
        try:
            batch = self._create_client.messages.batches.create(requests=body)  # type: ignore[arg-type]
        except anthropic.AnthropicError as exc:
            raise _translate(exc, "creating a batch") from exc
        return _info(batch)

    def get_batch(self, batch_id: str) -> BatchInfo:
        try:
            return _info(self._client.messages.batches.retrieve(batch_id))
        except anthropic.AnthropicError as exc:
            raise _translate(exc, f"retrieving batch {batch_id}") from exc

    def list_batches(self, *, created_after: float) -> Iterator[BatchInfo]:
        try:
            for batch in self._client.messages.batches.list(limit=100):
                info = _info(batch)
                if info.created_at < created_after:
                    return
                yield info
        except anthropic.AnthropicError as exc:
            raise _translate(exc, "listing batches") from exc

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
                for line in response.iter_lines():
                    if line.strip():
                        yield _item_outcome(orjson.loads(line))
        except anthropic.AnthropicError as exc:
            raise _translate(exc, f"downloading results of batch {batch_id}") from exc
        except Exception as exc:
            # A cut stream: a broken last line (ValueError) or the transport's own error (the
            # SDK's HTTP library is its business). Collecting again is idempotent, so retry.
            raise ProviderError(
                f"downloading results of batch {batch_id}: stream cut ({exc.__class__.__name__})",
                retryable=True,
            ) from exc

    def cancel_batch(self, batch_id: str) -> BatchInfo:
        try:
            return _info(self._client.messages.batches.cancel(batch_id))
        except anthropic.AnthropicError as exc:
            raise _translate(exc, f"canceling batch {batch_id}") from exc

    # -- sync path ---------------------------------------------------------------------------
    async def complete(self, custom_id: str, params: dict[str, Any]) -> Outcome:
        if self._async is None:
            self._async = anthropic.AsyncAnthropic(**self._async_args)  # type: ignore[arg-type]
        started = time.monotonic()
        try:
            message = await self._async.messages.create(**params)
        except anthropic.APIStatusError as exc:
            err = _translate(exc, "sending a request")
            body = exc.body if isinstance(exc.body, dict) else {}
            etype = (
                (body.get("error") or {}).get("type")
                if isinstance(body.get("error"), dict)
                else None
            )
            outcome = _error_outcome(custom_id, etype or f"http_{exc.status_code}", str(err))
            return Outcome(**{**outcome.__dict__, "retryable": err.retryable})
        except anthropic.APIConnectionError as exc:
            outcome = _error_outcome(custom_id, "connection_error", str(_translate(exc, "sending")))
            return Outcome(**{**outcome.__dict__, "retryable": True})
        latency = int((time.monotonic() - started) * 1000)
        return _message_outcome(custom_id, message.model_dump(mode="json"), None, latency)

    def count_tokens(self, params: dict[str, Any]) -> int:
        allowed = {k: v for k, v in params.items() if k in ("model", "messages", "system", "tools")}
        try:
            return self._client.messages.count_tokens(**allowed).input_tokens
        except anthropic.AnthropicError as exc:
            raise _translate(exc, "counting tokens") from exc

    async def aclose(self) -> None:
        if self._async is not None:
            await self._async.close()
            self._async = None

    def close(self) -> None:
        self._client.close()

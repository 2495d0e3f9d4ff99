"""The Anthropic wire forms, decoded: batches into BatchInfo, messages and result lines into
Outcomes, HTTP failures into an ErrorClass, rate-limit headers into RateLimits. SDK exceptions
become ProviderError here and nowhere else."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import anthropic

from ..errors import ProviderError
from ..records import BatchInfo, ErrorClass, Outcome, RateLimits, Usage

# Per-item error types of a batch result (or a sync error body) that are the provider's trouble,
# not the request's: they are retried and never recorded as a result.
TRANSIENT_ERROR_TYPES = frozenset({"api_error", "timeout_error"})
RATE_ERROR_TYPES = frozenset({"rate_limit_error", "overloaded_error"})
_BUCKETS = ("requests", "input-tokens", "output-tokens")


def epoch(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def batch_info(batch: Any) -> BatchInfo:
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
        created_at=epoch(batch.created_at) or 0.0,
        ended_at=epoch(batch.ended_at),
        expires_at=epoch(batch.expires_at),
        request_count=sum(count_map.values()),
    )


def usage(raw: dict[str, Any] | None, tier_default: str | None) -> Usage:
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


def message_outcome(
    custom_id: str,
    message: dict[str, Any],
    tier: str | None,
    latency_ms: int | None,
    limits: RateLimits | None = None,
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
        usage=usage(message.get("usage"), tier),
        latency_ms=latency_ms,
        limits=limits,
    )


def item_outcome(item: dict[str, Any]) -> Outcome:
    """One line of a batch's results file."""
    custom_id, result = item["custom_id"], item["result"]
    kind = result["type"]
    if kind == "succeeded":
        return message_outcome(custom_id, result["message"], "batch", None)
    if kind == "errored":
        err = (result.get("error") or {}).get("error") or {}
        error_type = err.get("type") or "api_error"
        return Outcome(
            custom_id=custom_id,
            kind="errored",
            error_type=error_type,
            error_message=err.get("message") or "",
            error_class=_class_of_type(error_type),
        )
    if kind == "expired":  # the provider did not get to it in time: not about the request
        return Outcome(custom_id=custom_id, kind="expired", error_class="transient")
    return Outcome(custom_id=custom_id, kind=kind)


def _class_of_type(error_type: str) -> ErrorClass:
    if error_type in RATE_ERROR_TYPES:
        return "rate_limit"
    if error_type in TRANSIENT_ERROR_TYPES:
        return "transient"
    if error_type in ("authentication_error", "permission_error"):
        return "auth"
    return "request"


def class_of_status(status: int, error_type: str | None) -> ErrorClass:
    """What an HTTP failure of a request means (see records.ErrorClass)."""
    if status in (401, 403):
        return "auth"
    if status == 404 and error_type != "not_found_error":
        return "endpoint"  # an HTML 404, or no API at this path: the base URL is wrong
    if status in (429, 529):
        return "rate_limit"
    if status in (408, 409) or status >= 500:
        return "transient"
    return "request"


def error_type_of(exc: anthropic.APIStatusError) -> str | None:
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        value = body["error"].get("type")
        return str(value) if value else None
    return None


def error_text(exc: anthropic.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            return f"{err.get('type', '')}: {err.get('message', '')}".strip(": ")
    return exc.__class__.__name__


def retry_after(headers: Mapping[str, str]) -> float | None:
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value:
            try:
                return max(0.0, float(value) * scale)
            except ValueError:
                continue
    return None


def rate_limits(headers: Mapping[str, str]) -> RateLimits | None:
    buckets: dict[str, tuple[int, int]] = {}
    for bucket in _BUCKETS:
        limit = headers.get(f"anthropic-ratelimit-{bucket}-limit")
        remaining = headers.get(f"anthropic-ratelimit-{bucket}-remaining")
        if limit and remaining:
            try:
                buckets[bucket.replace("-", "_")] = (int(limit), int(remaining))
            except ValueError:
                continue
    return RateLimits(buckets) if buckets else None


def translate(exc: Exception, action: str, base_url: str) -> ProviderError:
    """An SDK exception as our ProviderError, with a message a person can act on."""
    if isinstance(exc, anthropic.APIStatusError):
        status = exc.status_code
        error_class = class_of_status(status, error_type_of(exc))
        if error_class == "auth":
            message = (
                f"{action}: the API key was rejected (HTTP {status} from {base_url}): "
                "check ANTHROPIC_API_KEY"
            )
        elif error_class == "endpoint":
            message = (
                f"{action}: HTTP 404 from {base_url}: no Anthropic API there "
                "(is ANTHROPIC_BASE_URL right?)"
            )
        else:
            message = f"{action}: HTTP {status} {error_text(exc)}"
        return ProviderError.http(message, status, error_class)
    if isinstance(exc, anthropic.APIConnectionError):
        return ProviderError.unreachable(action, base_url, exc)
    return ProviderError.unexpected(action, exc)

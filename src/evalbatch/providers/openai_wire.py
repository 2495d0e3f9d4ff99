"""The OpenAI wire forms: our request body as a Chat Completions body and a batch input line;
batches, files, completions and output/error lines decoded into BatchInfo, UploadInfo and
Outcomes; HTTP failures into an ErrorClass. SDK exceptions become ProviderError here only."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal

import openai
import orjson

from ..errors import ProviderError
from ..records import BatchInfo, ErrorClass, Outcome, RateLimits, UploadInfo, Usage

PREFIX = "openai:"  # how evalbatch names an OpenAI model; the API gets the bare name
ENDPOINT: Final[Literal["/v1/chat/completions"]] = "/v1/chat/completions"
LABEL_KEY = "evalbatch_batch"  # batch metadata: the journal label of the intent that made it
LABEL_PREFIX = "evalbatch-"
FILE_SUFFIX = ".jsonl"
_ENDED = {"completed", "failed", "expired", "cancelled"}
_STATUS = {"cancelling": "canceling", **dict.fromkeys(_ENDED, "ended")}
_FINISH = {"stop": "end_turn", "length": "max_tokens", "content_filter": "refusal"}
# A batch that failed validation for one of these reasons would fail again the same way soon.
_RATE_CODES = frozenset({"token_limit_exceeded", "rate_limit_exceeded"})
_GO_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_GO_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)")


# -- requests -----------------------------------------------------------------------------------
def api_model(model_id: str) -> str:
    return model_id.removeprefix(PREFIX)


def _text_parts(content: Any) -> Any:
    """Message content as Chat Completions takes it: a string, or text parts (no cache_control)."""
    if not isinstance(content, list):
        return content
    return [
        {"type": "text", "text": block.get("text", "")}
        if isinstance(block, dict) and block.get("type") == "text"
        else block
        for block in content
    ]


def chat_body(params: dict[str, Any]) -> dict[str, Any]:
    """Our request body (Messages shape) as a Chat Completions body. The shared system prefix
    becomes the first message, so OpenAI's automatic prefix cache sees it first; max_tokens
    becomes max_completion_tokens, which every chat model takes (reasoning models refuse
    max_tokens), and stop_sequences becomes stop."""
    messages: list[dict[str, Any]] = []
    system = params.get("system")
    if isinstance(system, str) and system:
        messages.append({"role": "system", "content": system})
    elif isinstance(system, list) and system:
        texts = [str(b.get("text", "")) for b in system if isinstance(b, dict)]
        messages.append({"role": "system", "content": "\n\n".join(texts)})
    for message in params.get("messages") or []:
        messages.append({"role": message["role"], "content": _text_parts(message["content"])})
    body: dict[str, Any] = {"model": api_model(str(params["model"])), "messages": messages}
    body["max_completion_tokens"] = params["max_tokens"]
    for key, value in params.items():
        if key in ("model", "system", "messages", "max_tokens"):
            continue
        body["stop" if key == "stop_sequences" else key] = value
    return body


def batch_line(custom_id: str, params: dict[str, Any]) -> bytes:
    """One line of a batch input file (without its newline)."""
    return orjson.dumps(
        {"custom_id": custom_id, "method": "POST", "url": ENDPOINT, "body": chat_body(params)}
    )


def file_label(filename: str | None) -> str | None:
    """The journal label of an input file evalbatch uploaded, else None."""
    if filename and filename.startswith(LABEL_PREFIX) and filename.endswith(FILE_SUFFIX):
        return filename.removesuffix(FILE_SUFFIX)
    return None


# -- batches and files --------------------------------------------------------------------------
def batch_info(batch: Any) -> BatchInfo:
    counts = batch.request_counts
    total = counts.total if counts else 0
    completed = counts.completed if counts else 0
    failed = counts.failed if counts else 0
    status = _STATUS.get(batch.status, "in_progress")
    metadata = batch.metadata or {}
    return BatchInfo(
        id=batch.id,
        status=status,  # type: ignore[arg-type]
        counts={
            "processing": 0 if status == "ended" else max(0, total - completed - failed),
            "succeeded": completed,
            "errored": failed,
        },
        created_at=float(batch.created_at),
        ended_at=_ended_at(batch),
        expires_at=float(batch.expires_at) if batch.expires_at else None,
        request_count=total,
        label=metadata.get(LABEL_KEY),
        upload_id=batch.input_file_id,
    )


def _ended_at(batch: Any) -> float | None:
    for name in ("completed_at", "failed_at", "expired_at", "cancelled_at"):
        value = getattr(batch, name, None)
        if value:
            return float(value)
    return None


def upload_info(file: Any) -> UploadInfo:
    return UploadInfo(file.id, file_label(file.filename), float(file.created_at))


# -- outcomes -----------------------------------------------------------------------------------
def usage(raw: Mapping[str, Any] | None, tier: str | None) -> Usage:
    """Chat usage: prompt_tokens include the cached ones; nothing is reported about writes."""
    if not raw:
        return Usage()
    details = raw.get("prompt_tokens_details") or {}
    cached = int(details.get("cached_tokens") or 0)
    return Usage(
        input_tokens=int(raw.get("prompt_tokens") or 0) - cached,
        output_tokens=int(raw.get("completion_tokens") or 0),
        cache_read=cached,
        service_tier=tier,
    )


def chat_outcome(
    custom_id: str,
    completion: Mapping[str, Any],
    tier: str | None,
    latency_ms: int | None,
    limits: RateLimits | None = None,
) -> Outcome:
    """A chat.completion. The model stays the one we asked for (ingest keeps the request's
    catalog id); the answer is the message's content, or its refusal."""
    choices = completion.get("choices") or [{}]
    message = choices[0].get("message") or {}
    finish = choices[0].get("finish_reason")
    refusal = message.get("refusal")
    return Outcome(
        custom_id=custom_id,
        kind="succeeded",
        text=message.get("content") or refusal or "",
        stop_reason="refusal" if refusal else _FINISH.get(str(finish), finish),
        usage=usage(completion.get("usage"), tier or completion.get("service_tier")),
        latency_ms=latency_ms,
        limits=limits,
    )


def line_outcome(item: Mapping[str, Any]) -> Outcome:
    """One line of a batch's output or error file."""
    custom_id = str(item["custom_id"])
    error = item.get("error")
    response = item.get("response")
    if error and not response:
        code = str(error.get("code") or "batch_error")
        if code == "batch_expired":  # not reached in the window: not about the request
            return Outcome(custom_id=custom_id, kind="expired", error_class="transient")
        if code == "batch_cancelled":
            return Outcome(custom_id=custom_id, kind="canceled")
        return _errored(custom_id, code, str(error.get("message") or ""), "transient")
    status = int((response or {}).get("status_code") or 0)
    body = (response or {}).get("body") or {}
    if status == 200:
        return chat_outcome(custom_id, body, "batch", None)
    err = body.get("error") if isinstance(body, dict) else None
    err = err if isinstance(err, dict) else {}
    error_type = err.get("code") or err.get("type") or f"http_{status}"
    error_class = class_of_status(status, err.get("type"), err.get("code"))
    return _errored(custom_id, str(error_type), str(err.get("message") or ""), error_class)


def failed_batch_outcomes(custom_ids: Iterable[str], errors: list[Any]) -> Iterable[Outcome]:
    """Every request of a batch that failed validation: one a line error names was refused
    itself (a result); the others were not looked at and go again (never a result)."""
    by_line = {int(e.line): e for e in errors if getattr(e, "line", None)}
    first = errors[0] if errors else None
    code = str(getattr(first, "code", None) or "batch_failed")
    message = str(getattr(first, "message", None) or "the batch failed validation")
    batch_class: ErrorClass = "rate_limit" if code in _RATE_CODES else "transient"
    for number, custom_id in enumerate(custom_ids, start=1):
        named = by_line.get(number)
        if named is not None:
            yield _errored(custom_id, str(named.code), str(named.message), "request")
        else:
            yield _errored(custom_id, code, f"batch failed: {message}", batch_class)


def _errored(custom_id: str, error_type: str, message: str, error_class: ErrorClass) -> Outcome:
    return Outcome(
        custom_id=custom_id,
        kind="errored",
        error_type=error_type,
        error_message=message,
        error_class=error_class,
    )


def class_of_status(status: int, error_type: str | None, code: str | None) -> ErrorClass:
    """What an HTTP failure of a request means (see records.ErrorClass)."""
    if code == "insufficient_quota":
        return "auth"  # out of credit: every request fails the same way until a person pays
    if status in (401, 403):
        return "auth"
    if status == 404 and error_type is None and code is None:
        return "endpoint"  # no OpenAI error body: the base URL points at no API
    if status in (429, 503):  # 503: overloaded, as Anthropic's 529
        return "rate_limit"
    if status in (408, 409) or status >= 500:
        return "transient"
    return "request"


# -- headers ------------------------------------------------------------------------------------
def go_duration(text: str | None) -> float | None:
    """Seconds in a Go-style duration, as OpenAI writes its resets: ``6m0s``, ``1.5s``, ``20ms``."""
    if not text:
        return None
    parts = _GO_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        return None
    return sum(float(n) * _GO_UNITS[u] for n, u in parts)


def retry_after(headers: Mapping[str, str]) -> float | None:
    """retry-after-ms / retry-after; else, when a bucket is empty, the time until it refills
    (the real service's 429s may carry no retry-after)."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value:
            try:
                return max(0.0, float(value) * scale)
            except ValueError:
                continue
    waits = [
        go_duration(headers.get(f"x-ratelimit-reset-{bucket}"))
        for bucket in ("requests", "tokens")
        if headers.get(f"x-ratelimit-remaining-{bucket}") == "0"
    ]
    known = [w for w in waits if w is not None]
    return max(known) if known else None


def rate_limits(headers: Mapping[str, str]) -> RateLimits | None:
    """OpenAI's requests and tokens buckets, as the pacer's requests and input_tokens."""
    buckets: dict[str, tuple[int, int]] = {}
    for bucket, ours in (("requests", "requests"), ("tokens", "input_tokens")):
        limit = headers.get(f"x-ratelimit-limit-{bucket}")
        remaining = headers.get(f"x-ratelimit-remaining-{bucket}")
        if limit and remaining:
            try:
                buckets[ours] = (int(limit), int(remaining))
            except ValueError:
                continue
    return RateLimits(buckets) if buckets else None


# -- errors -------------------------------------------------------------------------------------
def error_class_of(exc: openai.APIStatusError) -> ErrorClass:
    return class_of_status(exc.status_code, exc.type, exc.code)


def error_type_of(exc: openai.APIStatusError) -> str:
    return str(exc.code or exc.type or f"http_{exc.status_code}")


def translate(exc: Exception, action: str, base_url: str) -> ProviderError:
    """An SDK exception as our ProviderError, with a message a person can act on."""
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        error_class = error_class_of(exc)
        if exc.code == "insufficient_quota":
            message = f"{action}: OpenAI says the account is out of quota: check its billing"
        elif error_class == "auth":
            message = (
                f"{action}: the API key was rejected (HTTP {status} from {base_url}): "
                "check OPENAI_API_KEY"
            )
        elif error_class == "endpoint":
            message = (
                f"{action}: HTTP 404 from {base_url}: no OpenAI API there "
                "(is OPENAI_BASE_URL right? it ends in /v1)"
            )
        else:
            detail = f"{exc.code or exc.type or ''}: {_message(exc)}".strip(": ")
            message = f"{action}: HTTP {status} {detail}"
        return ProviderError.http(message, status, error_class)
    if isinstance(exc, openai.APIConnectionError):
        return ProviderError.unreachable(action, base_url, exc)
    return ProviderError.unexpected(action, exc)


def _message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return exc.__class__.__name__

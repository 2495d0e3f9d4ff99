"""The sandbox's OpenAI surface: Chat Completions, Files and Batches routes as the official
`openai` SDK calls them, with Bearer auth, OpenAI's error shape and x-ratelimit-* headers.

`app.SandboxApp` mounts these routes; it wraps them, like the Anthropic ones, with request ids
(`x-request-id` here), per-endpoint counters and the injected HTTP faults.
"""

from __future__ import annotations

import asyncio
import functools
import math
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from .openai_batches import ENDED, OpenAIBatch, OpenAIBatchStore
from .openai_cache import prompt_segments, prompt_tokens
from .openai_chat import OpenAIError, answer_chat, check_chat
from .openai_files import MAX_UPLOAD_BYTES, UPLOAD_PURPOSES, FileStore, parse_multipart
from .openai_models import OpenAIModel
from .state import Bucket, SandboxState

BATCH_KEYS = ("input_file_id", "endpoint", "completion_window", "metadata", "output_expires_after")
SERVED_ENDPOINTS = ("/v1/chat/completions",)
FAULT_ERRORS = {
    429: ("Rate limit reached (sandbox fault).", "requests", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request.", "server_error", None),
    503: ("The server is overloaded or not ready yet.", "server_error", None),
}


def openai_endpoint(path: str) -> str | None:
    """The counter and fault name of an OpenAI path, or None for any other path."""
    if path == "/v1/chat/completions":
        return "openai_chat"
    if path.startswith("/v1/files"):
        return "openai_content" if path.endswith("/content") else "openai_files"
    if path.startswith("/v1/batches"):
        return "openai_batches"
    return None


def openai_fault(fault: int) -> tuple[int, bytes]:
    """The status and body of an injected fault; Anthropic's 529 is OpenAI's 503."""
    status = 503 if fault == 529 else fault
    message, kind, code = FAULT_ERRORS.get(status, FAULT_ERRORS[500])
    body = OpenAIError(status, f"sandbox fault: {message}", code=code, type=kind).body()
    return status, orjson.dumps(body)


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(data), status_code=status, headers=headers, media_type="application/json"
    )


def _list(data: list[dict[str, Any]], has_more: bool) -> Response:
    first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
    return _json(
        {"object": "list", "data": data, "first_id": first, "last_id": last, "has_more": has_more}
    )


def _duration(seconds: float) -> str:
    """A reset time as OpenAI writes it: ``17ms``, ``1.5s``, ``6m0s``."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms" if seconds > 0 else "0s"
    minutes, rest = divmod(seconds, 60)
    text = f"{rest:.3f}".rstrip("0").rstrip(".") + "s"
    return f"{int(minutes)}m{text}" if minutes else text


def _ratelimit_headers(buckets: dict[str, Bucket]) -> dict[str, str]:
    headers = {}
    for kind, bucket in buckets.items():
        missing = bucket.capacity - max(bucket.tokens, 0.0)
        headers[f"x-ratelimit-limit-{kind}"] = str(int(bucket.capacity))
        headers[f"x-ratelimit-remaining-{kind}"] = str(max(0, math.floor(bucket.tokens)))
        headers[f"x-ratelimit-reset-{kind}"] = _duration(missing * 60.0 / bucket.capacity)
    return headers


def _int_query(request: Request, name: str, default: int, top: int) -> int:
    raw = request.query_params.get(name)
    value = int(raw) if raw is not None and raw.isdigit() else (default if raw is None else 0)
    if not 1 <= value <= top:
        raise OpenAIError(400, f"Invalid '{name}': an integer from 1 to {top}.", name)
    return value


def _check_metadata(metadata: Any) -> None:
    if metadata is None:
        return
    if (
        not isinstance(metadata, dict)
        or len(metadata) > 16
        or not all(isinstance(k, str) and len(k) <= 64 for k in metadata)
        or not all(isinstance(v, str) and len(v) <= 512 for v in metadata.values())
    ):
        raise OpenAIError(
            400,
            "Invalid 'metadata': at most 16 string keys of up to 64 characters, with string"
            " values of up to 512 characters.",
            "metadata",
            "invalid_value",
        )


class _CutResponse(Response):
    """Announces the whole body, sends half of it, then drops the connection."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        half = self.body[: max(1, len(self.body) // 2)]
        await send({"type": "http.response.body", "body": half, "more_body": True})
        raise ConnectionAbortedError("sandbox fault: truncated download")


Handler = Callable[["OpenAIApp", Request, str], Awaitable[Response]]


def _handled(handler: Handler) -> Callable[[OpenAIApp, Request], Awaitable[Response]]:
    """Authenticate (Bearer only, as OpenAI), then run; an OpenAIError becomes its response."""

    @functools.wraps(handler)
    async def endpoint(self: OpenAIApp, request: Request) -> Response:
        try:
            auth = request.headers.get("authorization", "")
            key = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
            if not key:
                raise OpenAIError(
                    401,
                    "You didn't provide an API key. You need to provide your API key in an"
                    " Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                )
            return await handler(self, request, key)
        except OpenAIError as exc:
            return _json(exc.body(), exc.status, exc.headers)

    return endpoint


class OpenAIApp:
    """The OpenAI routes and their stores (files, batches), sharing the sandbox's state."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.files = FileStore()
        self.batches = OpenAIBatchStore(state, self.files)
        self.router = Starlette(
            routes=[
                Route("/v1/chat/completions", self.chat, methods=["POST"]),
                Route("/v1/files", self.upload_file, methods=["POST"]),
                Route("/v1/files", self.list_files, methods=["GET"]),
                Route("/v1/files/{file_id}", self.get_file, methods=["GET"]),
                Route("/v1/files/{file_id}", self.delete_file, methods=["DELETE"]),
                Route("/v1/files/{file_id}/content", self.file_content, methods=["GET"]),
                Route("/v1/batches", self.create_batch, methods=["POST"]),
                Route("/v1/batches", self.list_batches, methods=["GET"]),
                Route("/v1/batches/{batch_id}", self.get_batch, methods=["GET"]),
                Route("/v1/batches/{batch_id}/cancel", self.cancel_batch, methods=["POST"]),
            ]
        )

    def stop(self) -> None:
        self.batches.stop()

    def count(self, counter: str) -> None:
        self.state.count(counter)

    async def _body(self, request: Request) -> Any:
        try:
            return orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            raise OpenAIError(
                400,
                "We could not parse the JSON body of your request. (HINT: This likely means"
                " you aren't using your HTTP library correctly.)",
            ) from None

    # -- chat completions ---------------------------------------------------------------------
    def _take(self, model: OpenAIModel, body: dict[str, Any], prompt: int) -> dict[str, str]:
        limit = self.state.limit_for(model.address)
        if limit is None:
            return {}
        cap = body.get("max_completion_tokens") or body.get("max_tokens") or 0
        need = {"requests": (limit.rpm, 1.0), "tokens": (limit.tpm, float(prompt + cap))}
        wait, buckets, _ = self.state.charge(model.address, need)
        with self.state.lock:
            headers = _ratelimit_headers(buckets)
        if wait <= 0:
            return headers
        retry = max(0.01, round(wait, 2))
        kind = max(buckets, key=lambda k: buckets[k].wait_for(need[k][1]))
        cap_n, used = int(buckets[kind].capacity), need[kind][1]
        label = "requests per min (RPM)" if kind == "requests" else "tokens per min (TPM)"
        raise OpenAIError(
            429,
            f"Rate limit reached for {model.name} in organization org-sandbox on {label}:"
            f" Limit {cap_n}, Requested {used:g}. Please try again in {retry:g}s.",
            code="rate_limit_exceeded",
            type=kind,
            headers={
                **headers,
                "retry-after": f"{retry:g}",
                "retry-after-ms": str(int(retry * 1000)),
            },
        )

    @_handled
    async def chat(self, request: Request, key: str) -> Response:
        body = await self._body(request)
        model = check_chat(body, self.state.catalog)
        prompt = prompt_tokens(prompt_segments(body))
        if prompt > model.context_tokens:
            raise OpenAIError(
                400,
                f"This model's maximum context length is {model.context_tokens} tokens. However,"
                f" your messages resulted in {prompt} tokens.",
                "messages",
                "context_length_exceeded",
            )
        headers = self._take(model, body, prompt)
        answered = answer_chat(self.state, body, model, key)
        if self.state.config.message_latency:
            await asyncio.sleep(self.state.config.message_latency)
        self.state.commit(key, answered)
        self.count("openai_chat_served")
        return _json(answered["completion"], headers=headers)

    # -- files --------------------------------------------------------------------------------
    @_handled
    async def upload_file(self, request: Request, key: str) -> Response:
        raw = await request.body()
        if len(raw) > MAX_UPLOAD_BYTES:
            raise OpenAIError(413, f"File is too large: the limit is {MAX_UPLOAD_BYTES:,} bytes.")
        fields = parse_multipart(request.headers.get("content-type", ""), raw)
        if "file" not in fields:
            raise OpenAIError(
                400, "Missing required parameter: 'file'.", "file", "missing_required_parameter"
            )
        purpose = fields.get("purpose", (None, b""))[1].decode("utf-8", "replace")
        if purpose not in UPLOAD_PURPOSES:
            raise OpenAIError(
                400,
                f"Invalid value for 'purpose': {purpose!r}. Supported values are: "
                + ", ".join(f"'{p}'" for p in UPLOAD_PURPOSES),
                "purpose",
                "invalid_value",
            )
        filename, content = fields["file"]
        now = int(self.state.config.clock())
        stored = self.files.add(filename or "upload.jsonl", purpose, content, now)
        self.count("openai_files_uploaded")
        return _json(stored.to_json())

    @_handled
    async def list_files(self, request: Request, key: str) -> Response:
        limit = _int_query(request, "limit", 10_000, 10_000)
        order = request.query_params.get("order", "desc")
        if order not in ("asc", "desc"):
            raise OpenAIError(400, "Invalid 'order': 'asc' or 'desc'.", "order", "invalid_value")
        page, has_more = self.files.page(
            request.query_params.get("purpose"), limit, order, request.query_params.get("after")
        )
        return _list([f.to_json() for f in page], has_more)

    @_handled
    async def get_file(self, request: Request, key: str) -> Response:
        return _json(self.files.get(request.path_params["file_id"]).to_json())

    @_handled
    async def delete_file(self, request: Request, key: str) -> Response:
        file_id = request.path_params["file_id"]
        self.files.delete(file_id)
        self.count("openai_files_deleted")
        return _json({"id": file_id, "object": "file", "deleted": True})

    @_handled
    async def file_content(self, request: Request, key: str) -> Response:
        stored = self.files.get(request.path_params["file_id"])
        with self.files.lock:
            cut, stored.truncate_next = stored.truncate_next, False
        if cut and stored.content:
            self.count("openai_truncated_downloads")
            return _CutResponse(stored.content, media_type="application/octet-stream")
        return Response(stored.content, media_type="application/octet-stream")

    # -- batches ------------------------------------------------------------------------------
    def _batch(self, request: Request) -> OpenAIBatch:
        batch_id = request.path_params["batch_id"]
        batch = self.batches.batches.get(batch_id)
        if batch is None:
            raise OpenAIError(404, f"No such Batch object: {batch_id}", "batch_id")
        return batch

    @_handled
    async def create_batch(self, request: Request, key: str) -> Response:
        body = await self._body(request)
        if not isinstance(body, dict):
            raise OpenAIError(400, "The request body must be a JSON object.")
        for name in body:
            if name not in BATCH_KEYS:
                raise OpenAIError(400, f"Unrecognized request argument supplied: {name}")
        for name in BATCH_KEYS[:3]:
            if not isinstance(body.get(name), str):
                raise OpenAIError(
                    400,
                    f"Missing required parameter: '{name}'.",
                    name,
                    "missing_required_parameter",
                )
        if body["completion_window"] != "24h":
            raise OpenAIError(
                400,
                f"Invalid value: {body['completion_window']!r}. Supported values are: '24h'.",
                "completion_window",
                "invalid_value",
            )
        if body["endpoint"] not in SERVED_ENDPOINTS:
            raise OpenAIError(
                400,
                f"endpoint: the sandbox serves batches of {', '.join(SERVED_ENDPOINTS)} only"
                f" (got {body['endpoint']!r})",
                "endpoint",
                "invalid_value",
            )
        _check_metadata(body.get("metadata"))
        try:
            stored = self.files.get(body["input_file_id"])
        except OpenAIError as exc:
            raise OpenAIError(404, exc.message, "input_file_id") from None
        if stored.purpose != "batch":
            raise OpenAIError(
                400,
                f"The input file must be uploaded with purpose 'batch' ({stored.id} has"
                f" {stored.purpose!r}).",
                "input_file_id",
                "invalid_value",
            )
        return _json(self.batches.create(key, stored.id, body["endpoint"], body.get("metadata")))

    @_handled
    async def list_batches(self, request: Request, key: str) -> Response:
        limit = _int_query(request, "limit", 20, 100)
        with self.state.lock:  # worker threads add batches meanwhile
            ids = list(reversed(self.batches.batches))  # newest first
        after = request.query_params.get("after")
        start = ids.index(after) + 1 if after in ids else 0
        page = [self.batches.batches[i].to_json() for i in ids[start : start + limit]]
        return _list(page, len(ids) > start + limit)

    @_handled
    async def get_batch(self, request: Request, key: str) -> Response:
        return _json(self._batch(request).to_json())

    @_handled
    async def cancel_batch(self, request: Request, key: str) -> Response:
        batch = self._batch(request)
        if batch.status in ENDED:
            raise OpenAIError(
                400, f"Cannot cancel a batch with status '{batch.status}'.", code="invalid_state"
            )
        self.batches.cancel(batch)
        return _json(batch.to_json())

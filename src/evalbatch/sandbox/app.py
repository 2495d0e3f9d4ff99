"""The sandbox's HTTP surface: Messages, count_tokens and Message Batches as the official SDK
calls them, and /_sandbox/{stats,config,reset}. Request ids and faults wrap every endpoint."""

from __future__ import annotations

import asyncio
import functools
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from .batches import Batch, BatchStore, results_stream
from .openai_app import OpenAIApp, openai_endpoint, openai_fault
from .state import SandboxState
from .validate import VERSIONS, validate_params

CUSTOM_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
_FAULT_TYPES = {429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"}


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(data), status_code=status, headers=headers, media_type="application/json"
    )


def _error(
    status: int, kind: str, message: str, request: Request, headers: dict[str, str] | None = None
) -> Response:
    return _json(
        {
            "type": "error",
            "error": {"type": kind, "message": message},
            "request_id": request.state.request_id,
        },
        status,
        headers,
    )


def _endpoint(method: str, path: str) -> str:
    openai = openai_endpoint(path)
    if openai is not None:
        return openai
    if path == "/v1/messages":
        return "messages"
    if path == "/v1/messages/count_tokens":
        return "count_tokens"
    if path.endswith("/results"):
        return "results"
    if path.startswith("/v1/messages/batches"):
        return "batches"
    return "other"


Endpoint = Callable[["SandboxApp", Request], Awaitable[Response]]
BatchHandler = Callable[["SandboxApp", Request, Batch], Awaitable[Response]]


def _batch_endpoint(handler: BatchHandler) -> Endpoint:
    """The checks every /batches/{batch_id} endpoint shares: authenticate, then find the batch
    (401/400 before 404); the handler runs only with both."""

    @functools.wraps(handler)
    async def endpoint(self: SandboxApp, request: Request) -> Response:
        _, _, failed = self._auth(request)
        if failed:
            return failed
        batch = self.store.batches.get(request.path_params["batch_id"])
        if batch is None:
            return _error(404, "not_found_error", "batch not found", request)
        return await handler(self, request, batch)

    return endpoint


class SandboxApp:
    """Pure ASGI wrapper: request ids, counters and faults around the starlette routes."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.store = BatchStore(state)
        self.openai = OpenAIApp(state)  # /v1/chat/completions, /v1/files, /v1/batches
        routes = [
            Route("/v1/messages", self.messages, methods=["POST"]),
            Route("/v1/messages/count_tokens", self.count_tokens, methods=["POST"]),
            Route("/v1/messages/batches", self.create_batch, methods=["POST"]),
            Route("/v1/messages/batches", self.list_batches, methods=["GET"]),
            Route("/v1/messages/batches/{batch_id}", self.get_batch, methods=["GET"]),
            Route("/v1/messages/batches/{batch_id}", self.delete_batch, methods=["DELETE"]),
            Route("/v1/messages/batches/{batch_id}/cancel", self.cancel_batch, methods=["POST"]),
            Route("/v1/messages/batches/{batch_id}/results", self.results, methods=["GET"]),
            Route("/_sandbox/stats", self.stats, methods=["GET"]),
            Route("/_sandbox/config", self.config, methods=["GET"]),
            Route("/_sandbox/reset", self.reset, methods=["POST"]),
        ]
        self.router = Starlette(routes=routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.router(scope, receive, send)
            return
        request_id = "req_01" + secrets.token_hex(11)
        scope.setdefault("state", {})["request_id"] = request_id
        endpoint = _endpoint(scope["method"], scope["path"])
        openai = endpoint.startswith("openai_")
        id_header = b"x-request-id" if openai else b"request-id"
        stats = self.state.stats

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (id_header, request_id.encode())]
                with self.state.lock:
                    stats[f"http {endpoint} {message['status']}"] += 1
            await send(message)

        if endpoint != "other":
            fault = self.state.draw_fault(endpoint)
            if fault == 0:
                with self.state.lock:
                    stats[f"http {endpoint} dropped"] += 1
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", b"4096"),
                        ],
                    }
                )
                await send(
                    {"type": "http.response.body", "body": b'{"id": "msg_', "more_body": True}
                )
                raise ConnectionAbortedError("sandbox fault: dropped connection")
            if fault is not None:
                retry = self.state.config.faults.retry_after_s
                body = orjson.dumps(
                    {
                        "type": "error",
                        "error": {
                            "type": _FAULT_TYPES.get(fault, "api_error"),
                            "message": f"sandbox fault: simulated {fault}",
                        },
                        "request_id": request_id,
                    }
                )
                if openai:
                    fault, body = openai_fault(fault)
                headers = [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ]
                if fault == 429 or (openai and fault == 503):
                    headers += [
                        (b"retry-after", f"{retry:g}".encode()),
                        (b"retry-after-ms", str(int(retry * 1000)).encode()),
                    ]
                await send_with_id(
                    {"type": "http.response.start", "status": fault, "headers": headers}
                )
                await send({"type": "http.response.body", "body": body})
                return
        router = self.openai.router if openai else self.router
        await router(scope, receive, send_with_id)

    # -- common checks ------------------------------------------------------------------------
    def _auth(self, request: Request) -> tuple[str | None, str, Response | None]:
        key = request.headers.get("x-api-key")
        auth = request.headers.get("authorization", "")
        if not key and auth.lower().startswith("bearer "):
            key = auth[7:].strip()
        if not key:
            return (
                None,
                "",
                _error(
                    401,
                    "authentication_error",
                    "x-api-key or Authorization: Bearer is required",
                    request,
                ),
            )
        version = request.headers.get("anthropic-version", "")
        if version not in VERSIONS:
            return (
                None,
                "",
                _error(
                    400,
                    "invalid_request_error",
                    f"anthropic-version must be one of {', '.join(VERSIONS)} (got {version!r})",
                    request,
                ),
            )
        return key, version, None

    async def _body(self, request: Request) -> tuple[Any, Response | None]:
        try:
            return orjson.loads(await request.body()), None
        except orjson.JSONDecodeError:
            return None, _error(400, "invalid_request_error", "body: invalid JSON", request)

    # -- messages -----------------------------------------------------------------------------
    async def messages(self, request: Request) -> Response:
        key, version, failed = self._auth(request)
        if failed:
            return failed
        params, failed = await self._body(request)
        if failed:
            return failed
        error = validate_params(params, version, self.state.catalog)
        if error:
            return _error(400, "invalid_request_error", error, request)
        wait, headers = self.state.take(params)
        if wait > 0:
            retry = max(0.01, round(wait, 2))
            return _error(
                429,
                "rate_limit_error",
                f"rate limit exceeded for {params['model']}",
                request,
                {**headers, "retry-after": f"{retry:g}", "retry-after-ms": str(int(retry * 1000))},
            )
        answered = self.state.answer(params, str(key), "standard")
        if self.state.config.message_latency:
            await asyncio.sleep(self.state.config.message_latency)
        self.state.commit(str(key), answered)
        message = answered["message"]
        self.state.charge_output(params["model"], message["usage"]["output_tokens"])
        with self.state.lock:
            self.state.stats["messages_served"] += 1
        return _json(message, headers=headers)

    async def count_tokens(self, request: Request) -> Response:
        from ..catalog.tokenizer import count_request

        _, version, failed = self._auth(request)
        if failed:
            return failed
        params, failed = await self._body(request)
        if failed:
            return failed
        error = validate_params(params, version, self.state.catalog, count_only=True)
        if error:
            return _error(400, "invalid_request_error", error, request)
        return _json({"input_tokens": count_request(params)})

    # -- batches ------------------------------------------------------------------------------
    async def create_batch(self, request: Request) -> Response:
        key, version, failed = self._auth(request)
        if failed:
            return failed
        raw = await request.body()
        if len(raw) > self.state.config.max_batch_bytes:
            return _error(
                413,
                "request_too_large",
                f"batch body is {len(raw):,} bytes; the "
                f"limit is {self.state.config.max_batch_bytes:,}",
                request,
            )
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return _error(400, "invalid_request_error", "body: invalid JSON", request)
        items = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(items, list) or not 1 <= len(items) <= 100_000:
            return _error(
                400,
                "invalid_request_error",
                "requests: between 1 and 100,000 requests are required",
                request,
            )
        seen: set[str] = set()
        requests = []
        for i, item in enumerate(items):
            cid = item.get("custom_id") if isinstance(item, dict) else None
            if not isinstance(cid, str) or not 1 <= len(cid) <= 64 or set(cid) - CUSTOM_ID_CHARS:
                return _error(
                    400,
                    "invalid_request_error",
                    f"requests.{i}.custom_id: must match ^[a-zA-Z0-9_-]{{1,64}}$",
                    request,
                )
            if cid in seen:
                return _error(
                    400,
                    "invalid_request_error",
                    f"requests.{i}.custom_id: duplicate custom_id {cid!r}",
                    request,
                )
            seen.add(cid)
            requests.append((cid, item.get("params")))
        batch = self.store.create(str(key), version, requests)
        return _json(batch.to_json(self._base(request)))

    def _base(self, request: Request) -> str:
        return str(request.base_url).rstrip("/")

    @_batch_endpoint
    async def get_batch(self, request: Request, batch: Batch) -> Response:
        return _json(batch.to_json(self._base(request)))

    async def list_batches(self, request: Request) -> Response:
        _, _, failed = self._auth(request)
        if failed:
            return failed
        if not self.state.config.list_batches:
            return _error(404, "not_found_error", "listing batches is not available", request)
        try:
            limit = int(request.query_params.get("limit", 20))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 1000:
            return _error(400, "invalid_request_error", "limit: between 1 and 1000", request)
        ids = list(reversed(self.store.order))  # newest first
        after, before = request.query_params.get("after_id"), request.query_params.get("before_id")
        if after in ids:
            page = ids[ids.index(after) + 1 :][:limit]
            has_more = len(ids) - ids.index(after) - 1 > limit
        elif before in ids:
            older = ids[: ids.index(before)]
            page = older[-limit:]
            has_more = len(older) > limit
        else:
            page, has_more = ids[:limit], len(ids) > limit
        base = self._base(request)
        return _json(
            {
                "data": [self.store.batches[i].to_json(base) for i in page],
                "has_more": has_more,
                "first_id": page[0] if page else None,
                "last_id": page[-1] if page else None,
            }
        )

    @_batch_endpoint
    async def cancel_batch(self, request: Request, batch: Batch) -> Response:
        if batch.status == "ended":
            return _error(
                400,
                "invalid_request_error",
                f"batch {batch.id} has ended and cannot be canceled",
                request,
            )
        self.store.cancel(batch)
        return _json(batch.to_json(self._base(request)))

    @_batch_endpoint
    async def delete_batch(self, request: Request, batch: Batch) -> Response:
        if batch.status != "ended":
            return _error(
                400,
                "invalid_request_error",
                f"batch {batch.id} is still {batch.status}; cancel it and wait until it has ended",
                request,
            )
        del self.store.batches[batch.id]
        self.store.order.remove(batch.id)
        return _json({"id": batch.id, "type": "message_batch_deleted"})

    @_batch_endpoint
    async def results(self, request: Request, batch: Batch) -> Response:
        if batch.status != "ended":
            return _error(
                400,
                "invalid_request_error",
                f"batch {batch.id} is still {batch.status}; no results yet",
                request,
            )
        lines, truncate = results_stream(batch, self.state)

        async def stream() -> AsyncIterator[bytes]:
            if truncate:
                half = lines[: max(1, len(lines) // 2)]
                for line in half[:-1]:
                    yield line
                yield half[-1][: max(1, len(half[-1]) // 2)]
                return
            chunk: list[bytes] = []
            for line in lines:
                chunk.append(line)
                if len(chunk) >= 500:
                    yield b"".join(chunk)
                    chunk = []
            if chunk:
                yield b"".join(chunk)

        return StreamingResponse(stream(), media_type="application/binary")

    # -- introspection ------------------------------------------------------------------------
    async def stats(self, request: Request) -> Response:
        with self.state.lock:
            data = dict(self.state.stats)
        return _json(data)

    async def config(self, request: Request) -> Response:
        return _json(self.state.config.describe())

    async def reset(self, request: Request) -> Response:
        with self.state.lock:
            self.state.stats.clear()
            self.state.cache.clear()
        return _json({"reset": True})

"""Request validation as the real API does it for the fields evalbatch uses. Returns the
message of an invalid_request_error, or None when the body is valid."""

from __future__ import annotations

from typing import Any

from ..catalog.models import Catalog

NEW_VERSION = "2026-10-21"
VERSIONS = ("2023-06-01", NEW_VERSION)
KNOWN_KEYS = frozenset(
    {
        "model",
        "max_tokens",
        "messages",
        "system",
        "stop_sequences",
        "metadata",
        "tools",
        "tool_choice",
        "thinking",
        "temperature",
        "top_p",
        "top_k",
        "stream",
        "service_tier",
        "output_config",
        "cache_control",
        "container",
        "mcp_servers",
        "inference_geo",
    }
)
SAMPLING = ("temperature", "top_p", "top_k")


def _cache_controls(params: dict[str, Any]) -> list[Any]:
    found = []
    for tool in params.get("tools") or []:
        if isinstance(tool, dict) and "cache_control" in tool:
            found.append(tool["cache_control"])
    system = params.get("system")
    if isinstance(system, list):
        found += [
            b["cache_control"] for b in system if isinstance(b, dict) and "cache_control" in b
        ]
    for message in params.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            found += [
                b["cache_control"] for b in content if isinstance(b, dict) and "cache_control" in b
            ]
    return found


def _check_cache_control(params: dict[str, Any]) -> str | None:
    controls = _cache_controls(params)
    if len(controls) > 4:
        return f"A maximum of 4 blocks with cache_control may be provided. Found {len(controls)}."
    seen_5m = False
    for cc in controls:
        if (
            not isinstance(cc, dict)
            or cc.get("type") != "ephemeral"
            or set(cc) - {"type", "ttl"}
            or cc.get("ttl", "5m") not in ("5m", "1h")
        ):
            return 'cache_control: expected {"type": "ephemeral", "ttl"?: "5m"|"1h"}'
        if cc.get("ttl", "5m") == "5m":
            seen_5m = True
        elif seen_5m:
            return "cache_control: a ttl='1h' breakpoint must not come after a ttl='5m' one"
    return None


def _check_messages(messages: Any) -> str | None:
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    expected = "user"
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            return f"messages.{i}.role: must be 'user' or 'assistant'"
        if message["role"] != expected:
            return (
                f"messages: roles must alternate between 'user' and 'assistant', starting "
                f"with 'user' (messages.{i} is {message['role']!r})"
            )
        expected = "assistant" if expected == "user" else "user"
        content = message.get("content")
        if isinstance(content, str):
            continue
        if not isinstance(content, list) or not content:
            return f"messages.{i}.content: a string or a non-empty list of blocks"
        for j, block in enumerate(content):
            if not isinstance(block, dict) or "type" not in block:
                return f"messages.{i}.content.{j}: each block needs a type"
    return None


def validate_params(
    params: Any, version: str, catalog: Catalog, *, in_batch: bool = False, count_only: bool = False
) -> str | None:
    if not isinstance(params, dict):
        return "body: expected a JSON object"
    for key in params:
        if key not in KNOWN_KEYS:
            return f"{key}: Extra inputs are not permitted"
    if version == NEW_VERSION:
        for key in SAMPLING:
            if key in params:
                return f"{key}: Extra inputs are not permitted"
    model = params.get("model")
    if not isinstance(model, str) or model not in catalog.models:
        return f"model: {model!r} is not a known model"
    if not count_only:
        max_tokens = params.get("max_tokens")
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            return "max_tokens: must be an integer >= 1"
        if max_tokens > catalog.models[model].max_output_tokens:
            return (
                f"max_tokens: {max_tokens} > {catalog.models[model].max_output_tokens}, the "
                f"maximum for {model}"
            )
    if in_batch and params.get("stream"):
        return "stream: streaming is not supported in a Message Batch"
    if params.get("stream"):
        return "stream: the sandbox does not stream; evalbatch never asks it to"
    error = _check_messages(params.get("messages"))
    if error:
        return error
    system = params.get("system")
    if (
        system is not None
        and not isinstance(system, str)
        and (
            not isinstance(system, list)
            or not all(
                isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
                for b in system
            )
        )
    ):
        return "system: a string or a list of text blocks"
    stops = params.get("stop_sequences")
    if stops is not None and (
        not isinstance(stops, list) or not all(isinstance(s, str) for s in stops)
    ):
        return "stop_sequences: a list of strings"
    return _check_cache_control(params)

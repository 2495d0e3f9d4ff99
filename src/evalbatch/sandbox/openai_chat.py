"""Chat Completions in the sandbox: checking a request body as OpenAI does, reading it as the
responders read a Messages request, and building the `chat.completion` with its usage."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from ..catalog.models import Catalog
from ..catalog.tokenizer import count_text
from .openai_cache import account_prefix
from .openai_models import OpenAIModel, find_openai_model
from .state import SandboxState

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
KNOWN_KEYS = frozenset(
    {
        "model", "messages", "audio", "frequency_penalty", "function_call", "functions",
        "logit_bias", "logprobs", "max_completion_tokens", "max_tokens", "metadata",
        "modalities", "moderation", "n", "parallel_tool_calls", "prediction",
        "presence_penalty", "prompt_cache_key", "prompt_cache_options",
        "prompt_cache_retention", "reasoning_effort", "response_format", "safety_identifier",
        "seed", "service_tier", "stop", "store", "stream", "stream_options", "temperature",
        "tool_choice", "tools", "top_logprobs", "top_p", "user", "verbosity",
        "web_search_options",
    }
)  # fmt: skip


@dataclass(eq=False)
class OpenAIError(Exception):
    """An error as OpenAI reports it: HTTP status and the `error` object's fields."""

    status: int
    message: str
    param: str | None = None
    code: str | None = None
    type: str = "invalid_request_error"
    headers: dict[str, str] | None = None

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


def _type_name(value: object) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a decimal", str: "a string"}
    names |= {list: "an array", dict: "an object", type(None): "null"}
    return names.get(type(value), "a value")


def _check_messages(messages: Any) -> None:
    if messages is None:
        raise OpenAIError(
            400, "Missing required parameter: 'messages'.", "messages", "missing_required_parameter"
        )
    if not isinstance(messages, list):
        raise OpenAIError(
            400,
            f"Invalid type for 'messages': expected an array, but got {_type_name(messages)}"
            " instead.",
            "messages",
            "invalid_type",
        )
    if not messages:
        raise OpenAIError(
            400,
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got"
            " an empty array instead.",
            "messages",
            "empty_array",
        )
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ROLES:
            raise OpenAIError(
                400,
                f"Invalid value: {role!r}. Supported values are: 'system', 'assistant', 'user',"
                " 'function', 'tool', and 'developer'.",
                f"messages[{i}].role",
                "invalid_value",
            )
        content = message.get("content")
        if not isinstance(content, str | list) and not (content is None and role == "assistant"):
            raise OpenAIError(
                400,
                f"Invalid type for 'messages[{i}].content': expected one of a string or array"
                f" of objects, but got {_type_name(content)} instead.",
                f"messages[{i}].content",
                "invalid_type",
            )


def _check_max_tokens(body: dict[str, Any], model: OpenAIModel) -> None:
    if model.reasoning and body.get("max_tokens") is not None:
        raise OpenAIError(
            400,
            "Unsupported parameter: 'max_tokens' is not supported with this model. Use"
            " 'max_completion_tokens' instead.",
            "max_tokens",
            "unsupported_parameter",
        )
    for key in ("max_tokens", "max_completion_tokens"):
        value = body.get(key)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise OpenAIError(
                400, f"Invalid '{key}': expected an integer >= 1.", key, "invalid_value"
            )
        if value > model.max_output_tokens:
            raise OpenAIError(
                400,
                f"{key} is too large: {value}. This model supports at most"
                f" {model.max_output_tokens} completion tokens, whereas you provided {value}.",
                key,
                "invalid_value",
            )


def _check_sampling(body: dict[str, Any], model: OpenAIModel) -> None:
    for key, top in (("temperature", 2.0), ("top_p", 1.0)):
        value = body.get(key)
        if value is None:
            continue
        if model.reasoning and value != 1:
            raise OpenAIError(
                400,
                f"Unsupported value: '{key}' does not support {value} with this model. Only the"
                " default (1) value is supported.",
                key,
                "unsupported_value",
            )
        if not isinstance(value, int | float) or not 0 <= value <= top:
            raise OpenAIError(
                400, f"Invalid '{key}': expected a number from 0 to {top:g}.", key, "invalid_value"
            )


def stop_list(body: dict[str, Any]) -> list[str]:
    stop = body.get("stop")
    if stop is None:
        return []
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise OpenAIError(400, "Invalid 'stop': a string or an array of strings.", "stop")
    if len(stops) > 4:
        raise OpenAIError(
            400,
            f"Invalid 'stop': array too long. Expected an array with maximum length 4, but got"
            f" an array with length {len(stops)} instead.",
            "stop",
            "array_above_max_length",
        )
    return stops


def check_chat(body: Any, catalog: Catalog) -> OpenAIModel:
    """The request's model when the body is valid; OpenAIError as the real API answers."""
    if not isinstance(body, dict):
        raise OpenAIError(400, "The request body must be a JSON object.")
    for key in body:
        if key not in KNOWN_KEYS:
            raise OpenAIError(400, f"Unrecognized request argument supplied: {key}")
    if body.get("model") is None:
        raise OpenAIError(400, "you must provide a model parameter")
    model = find_openai_model(catalog, body["model"])
    if model is None or str(body["model"]).startswith("openai:"):
        raise OpenAIError(
            404,
            f"The model `{body['model']}` does not exist or you do not have access to it.",
            None,
            "model_not_found",
        )
    _check_messages(body.get("messages"))
    _check_max_tokens(body, model)
    _check_sampling(body, model)
    stop_list(body)
    if body.get("stream"):
        raise OpenAIError(400, "stream: the sandbox does not stream; evalbatch never asks it to")
    if body.get("n") not in (None, 1):
        raise OpenAIError(400, "n: the sandbox answers one choice (n = 1)", "n")
    return model


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = content if isinstance(content, list) else []
    return "".join(str(p.get("text", "")) for p in parts if isinstance(p, dict))


def responder_params(body: dict[str, Any], model: OpenAIModel) -> dict[str, Any]:
    """The body as responders read a Messages request: ``model`` as ``openai:NAME``, the system
    and developer messages joined as ``system``, user and assistant messages with their text,
    ``max_tokens`` and ``stop_sequences``; the original body under ``openai``."""
    system = [_text(m.get("content")) for m in body["messages"] if m["role"] in ROLES[:2]]
    messages = [
        {"role": m["role"], "content": _text(m.get("content"))}
        for m in body["messages"]
        if m["role"] in ("user", "assistant")
    ]
    cap = body.get("max_completion_tokens") or body.get("max_tokens") or model.max_output_tokens
    return {
        "model": model.address,
        "max_tokens": cap,
        "system": "\n\n".join(system),
        "messages": messages,
        "stop_sequences": stop_list(body),
        "openai": body,
    }


def new_openai_id(prefix: str) -> str:
    """An id shaped like OpenAI's: ``chatcmpl-...`` and ``file-...`` (dash), ``batch_...`` and
    ``batch_req_...`` (underscore)."""
    sep = "-" if prefix in ("chatcmpl", "file") else "_"
    return f"{prefix}{sep}{secrets.token_hex(12)}"


def answer_chat(
    state: SandboxState,
    body: dict[str, Any],
    model: OpenAIModel,
    api_key: str,
    writer: str | None = None,
    read_own: bool = True,
) -> dict[str, Any]:
    """A `chat.completion` for a valid body, as ``state.answer`` returns a Message: the cache
    writes are committed by the caller (``state.commit``) once the request finished."""
    text, stop_reason, _ = state.reply(responder_params(body, model))
    with state.lock:
        prefix = account_prefix(
            state.cache, api_key, model, body, state.config.clock(), writer, read_own
        )
    output = count_text(text)
    completion = {
        "id": new_openai_id("chatcmpl"),
        "object": "chat.completion",
        "created": int(state.config.clock()),
        "model": model.name,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": "length" if stop_reason == "max_tokens" else "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prefix.prompt_tokens,
            "completion_tokens": output,
            "total_tokens": prefix.prompt_tokens + output,
            "prompt_tokens_details": {"cached_tokens": prefix.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": "fp_sandbox",
    }
    return {
        "completion": completion,
        "writes": prefix.writes,
        "read": prefix.cached_tokens,
        "written": prefix.written_tokens,
        "writer": writer,
        "missed_own": prefix.missed_own,
        "stats_prefix": "openai_",
    }

"""The OpenAI wire forms: our request body as Chat Completions, output and error lines as
Outcomes (what is never a result stays never a result), HTTP failures as ErrorClasses, and the
rate-limit headers, including the Go-style durations OpenAI writes its resets in."""

from __future__ import annotations

from types import SimpleNamespace

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from evalbatch.providers.openai_wire import (
    batch_info,
    batch_line,
    chat_body,
    class_of_status,
    failed_batch_outcomes,
    file_label,
    go_duration,
    line_outcome,
    rate_limits,
    retry_after,
)


def _body(**extra: object) -> dict:
    return {
        "model": "openai:gpt-5-mini",
        "max_tokens": 64,
        "system": [
            {"type": "text", "text": "You are terse."},
            {"type": "text", "text": "Rubric.", "cache_control": {"type": "ephemeral"}},
        ],
        "messages": [{"role": "user", "content": "Hi"}],
        **extra,
    }


def test_chat_body_puts_the_prefix_first_and_speaks_chat_completions() -> None:
    body = chat_body(_body(stop_sequences=["END"]))
    assert body == {
        "model": "gpt-5-mini",  # the API gets the bare name
        "messages": [
            {"role": "system", "content": "You are terse.\n\nRubric."},  # no cache_control
            {"role": "user", "content": "Hi"},
        ],
        "max_completion_tokens": 64,  # reasoning models refuse max_tokens
        "stop": ["END"],
    }


def test_a_batch_line_targets_chat_completions() -> None:
    line = orjson.loads(batch_line("run-g1", _body()))
    assert line["custom_id"] == "run-g1"
    assert (line["method"], line["url"]) == ("POST", "/v1/chat/completions")
    assert line["body"]["model"] == "gpt-5-mini"


def _completion(content: str | None = "Paris", finish: str = "stop", cached: int = 0) -> dict:
    return {
        "choices": [
            {"message": {"content": content, "refusal": None}, "finish_reason": finish},
        ],
        "usage": {
            "prompt_tokens": 2004,
            "completion_tokens": 4,
            "prompt_tokens_details": {"cached_tokens": cached},
        },
    }


def test_an_answered_line_is_a_result_with_cached_input_apart() -> None:
    line = {
        "custom_id": "r-g1",
        "response": {"status_code": 200, "body": _completion(cached=1920)},
        "error": None,
    }
    outcome = line_outcome(line)
    assert outcome.is_result and outcome.text == "Paris"
    assert outcome.model is None  # ingest keeps the request's catalog id
    assert (outcome.usage.input_tokens, outcome.usage.cache_read) == (84, 1920)
    assert outcome.usage.cache_write == 0  # OpenAI reports no writes: they cost nothing extra
    assert outcome.usage.service_tier == "batch"
    assert outcome.stop_reason == "end_turn"


def test_a_cut_answer_reads_max_tokens_as_on_the_anthropic_side() -> None:
    line = {
        "custom_id": "r-g1",
        "response": {"status_code": 200, "body": _completion("", "length")},
    }
    assert line_outcome(line).stop_reason == "max_tokens"


@pytest.mark.parametrize(
    ("status", "error", "kind", "error_class", "is_result"),
    [
        (400, {"type": "invalid_request_error", "code": "context_length_exceeded"}, "errored",
         "request", True),
        (429, {"type": "requests", "code": "rate_limit_exceeded"}, "errored", "rate_limit", False),
        (500, {"type": "server_error", "code": None}, "errored", "transient", False),
        (503, {"type": "server_error", "code": None}, "errored", "rate_limit", False),
    ],
)  # fmt: skip
def test_error_file_lines_with_a_response(status, error, kind, error_class, is_result) -> None:
    line = {
        "custom_id": "r-r3",
        "response": {"status_code": status, "body": {"error": {"message": "m", **error}}},
        "error": None,
    }
    outcome = line_outcome(line)
    assert (outcome.kind, outcome.error_class, outcome.is_result) == (kind, error_class, is_result)


def test_expired_and_cancelled_lines() -> None:
    expired = line_outcome(
        {"custom_id": "r-g1", "response": None, "error": {"code": "batch_expired", "message": ""}}
    )
    assert (expired.kind, expired.is_result) == ("expired", False)  # sent again, never a result
    cancelled = line_outcome(
        {"custom_id": "r-g2", "response": None, "error": {"code": "batch_cancelled"}}
    )
    assert (cancelled.kind, cancelled.is_result) == ("canceled", True)
    unknown = line_outcome({"custom_id": "r-g3", "response": None, "error": {"code": "odd"}})
    assert (unknown.kind, unknown.is_result) == ("errored", False)


def test_a_failed_batch_refuses_only_the_lines_its_errors_name() -> None:
    errors = [SimpleNamespace(code="invalid_json_line", message="bad", line=2)]
    outcomes = list(failed_batch_outcomes(["a-g1", "a-g2", "a-g3"], errors))
    assert [o.is_result for o in outcomes] == [False, True, False]
    assert outcomes[0].error_class == "transient"
    limited = [SimpleNamespace(code="token_limit_exceeded", message="Enqueued", line=None)]
    assert {o.error_class for o in failed_batch_outcomes(["a-g1"], limited)} == {"rate_limit"}


@pytest.mark.parametrize(
    ("status", "error_type", "code", "expected"),
    [
        (401, "invalid_request_error", "invalid_api_key", "auth"),
        (403, None, None, "auth"),
        (429, "insufficient_quota", "insufficient_quota", "auth"),  # out of credit: stop
        (429, "requests", "rate_limit_exceeded", "rate_limit"),
        (404, "invalid_request_error", "model_not_found", "request"),
        (404, None, None, "endpoint"),  # an HTML 404: no API behind the base URL
        (500, "server_error", None, "transient"),
        (408, None, None, "transient"),
        (400, "invalid_request_error", None, "request"),
    ],
)
def test_class_of_status(status, error_type, code, expected) -> None:
    assert class_of_status(status, error_type, code) == expected


def test_batch_info_maps_status_counts_label_and_input_file() -> None:
    batch = SimpleNamespace(
        id="batch_1",
        status="finalizing",
        request_counts=SimpleNamespace(total=10, completed=6, failed=1),
        metadata={"evalbatch_batch": "evalbatch-r-b3"},
        created_at=100,
        expires_at=86500,
        input_file_id="file-1",
        completed_at=None,
        failed_at=None,
        expired_at=None,
        cancelled_at=None,
    )
    info = batch_info(batch)
    assert info.status == "in_progress" and info.request_count == 10
    assert info.counts == {"processing": 3, "succeeded": 6, "errored": 1}
    assert (info.label, info.upload_id) == ("evalbatch-r-b3", "file-1")
    ended = batch_info(SimpleNamespace(**{**vars(batch), "status": "failed", "failed_at": 130}))
    assert (ended.status, ended.ended_at) == ("ended", 130.0)


def test_file_labels_are_ours_only() -> None:
    assert file_label("evalbatch-r-b3.jsonl") == "evalbatch-r-b3"
    assert file_label("input.jsonl") is None
    assert file_label(None) is None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("6m0s", 360.0), ("1.5s", 1.5), ("600ms", 0.6), ("1h2m3s", 3723.0), ("20ms", 0.02)],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert go_duration(text) == pytest.approx(seconds)


@given(st.text(max_size=12))
def test_go_duration_never_raises(text: str) -> None:
    value = go_duration(text)
    assert value is None or value >= 0


def test_rate_limit_headers_and_retry_after() -> None:
    headers = {
        "x-ratelimit-limit-requests": "500",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "6m0s",
        "x-ratelimit-limit-tokens": "200000",
        "x-ratelimit-remaining-tokens": "150000",
        "x-ratelimit-reset-tokens": "1.5s",
    }
    assert rate_limits(headers).buckets == {
        "requests": (500, 0),
        "input_tokens": (200000, 150000),
    }
    assert retry_after(headers) == 360.0  # no retry-after: the empty bucket's reset
    assert retry_after({**headers, "retry-after-ms": "250"}) == 0.25
    assert retry_after({}) is None

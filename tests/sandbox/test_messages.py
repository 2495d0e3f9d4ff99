"""/v1/messages and count_tokens through the official SDK: auth, versions, validation, usage."""

from __future__ import annotations

import asyncio

import anthropic
import httpx2
import pytest

from evalbatch.catalog.tokenizer import count_request, count_text

MODEL = "claude-sonnet-5-5"
LONG = "shared policy text " * 200  # ~600 tokens: above Sonnet 5.5's 512 minimum


def _user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def test_message_shape_and_echo(client: anthropic.Anthropic) -> None:
    msg = client.messages.create(model=MODEL, max_tokens=100, messages=_user("Hello there"))
    assert msg.type == "message" and msg.role == "assistant" and msg.model == MODEL
    assert msg.content[0].text == "Hello there" and msg.stop_reason == "end_turn"
    assert msg.usage.input_tokens == count_text("Hello there")
    assert msg.usage.output_tokens == count_text("Hello there")
    assert msg.usage.service_tier == "standard"
    assert msg._request_id and msg._request_id.startswith("req_")


def test_max_tokens_cuts_and_says_so(client: anthropic.Anthropic) -> None:
    msg = client.messages.create(model=MODEL, max_tokens=3, messages=_user("one two six four"))
    assert msg.content[0].text == "one two six" and msg.stop_reason == "max_tokens"
    assert msg.usage.output_tokens == 3


def test_missing_key_is_401_with_envelope(sb) -> None:
    resp = httpx2.post(
        f"{sb.base_url}/v1/messages", json={}, headers={"anthropic-version": "2026-10-21"}
    )
    assert resp.status_code == 401
    body = resp.json()
    assert body["type"] == "error" and body["error"]["type"] == "authentication_error"
    assert body["request_id"] == resp.headers["request-id"]


@pytest.mark.parametrize(
    "headers",
    [
        {"x-api-key": "k", "anthropic-version": "2023-06-01"},
        {"authorization": "Bearer k", "anthropic-version": "2026-10-21"},
    ],
)
def test_both_auth_styles_and_versions(sb, headers: dict) -> None:
    body = {"model": MODEL, "max_tokens": 5, "messages": _user("hi")}
    assert httpx2.post(f"{sb.base_url}/v1/messages", json=body, headers=headers).status_code == 200


def test_sampling_params_rejected_only_under_new_version(sb, client, new_client) -> None:
    with pytest.raises(anthropic.BadRequestError, match="temperature"):
        client.messages.create(
            model=MODEL, max_tokens=5, messages=_user("hi"), extra_body={"temperature": 0.5}
        )
    old = new_client(sb.base_url, default_headers={"anthropic-version": "2023-06-01"})
    msg = old.messages.create(
        model=MODEL, max_tokens=5, messages=_user("hi"), extra_body={"temperature": 0.5}
    )
    assert msg.content[0].text == "hi"


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"model": "claude-nope", "max_tokens": 5, "messages": _user("x")}, "model"),
        ({"model": MODEL, "max_tokens": 0, "messages": _user("x")}, "max_tokens"),
        ({"model": MODEL, "max_tokens": 5, "messages": []}, "messages"),
        ({"model": MODEL, "max_tokens": 5, "messages": [*_user("a"), *_user("b")]}, "alternate"),
        (
            {
                "model": MODEL,
                "max_tokens": 5,
                "messages": _user("x"),
                "system": [{"type": "text", "text": "s", "cache_control": {"type": "persistent"}}],
            },
            "cache_control",
        ),
        (
            {
                "model": MODEL,
                "max_tokens": 5,
                "messages": _user("x"),
                "system": [
                    {"type": "text", "text": str(i), "cache_control": {"type": "ephemeral"}}
                    for i in range(5)
                ],
            },
            "maximum of 4",
        ),
        (
            {
                "model": MODEL,
                "max_tokens": 5,
                "messages": _user("x"),
                "system": [
                    {"type": "text", "text": "a", "cache_control": {"type": "ephemeral"}},
                    {
                        "type": "text",
                        "text": "b",
                        "cache_control": {"type": "ephemeral", "ttl": "1h"},
                    },
                ],
            },
            "1h",
        ),
    ],
)
def test_invalid_bodies_are_400(client, params: dict, needle: str) -> None:
    with pytest.raises(anthropic.BadRequestError, match=needle):
        client.messages.create(**params)


def _cached(text: str, ttl: str = "5m") -> list[dict]:
    return [{"type": "text", "text": text, "cache_control": {"type": "ephemeral", "ttl": ttl}}]


def test_cache_write_then_read_and_usage_sums_to_count(client) -> None:
    params = {
        "model": MODEL,
        "max_tokens": 5,
        "system": _cached(LONG, "1h"),
        "messages": _user("question one"),
    }
    first = client.messages.create(**params).usage
    prefix = count_text(LONG)
    assert first.cache_creation_input_tokens == prefix and first.cache_read_input_tokens == 0
    assert first.cache_creation.ephemeral_1h_input_tokens == prefix
    assert first.input_tokens == count_text("question one")
    second = client.messages.create(**{**params, "messages": _user("question two")}).usage
    assert second.cache_read_input_tokens == prefix and second.cache_creation_input_tokens == 0
    total = client.messages.count_tokens(
        model=MODEL, system=params["system"], messages=_user("question two")
    ).input_tokens
    assert second.input_tokens + second.cache_read_input_tokens == total
    assert total == count_request({**params, "messages": _user("question two")})


def test_below_minimum_caches_nothing(client) -> None:
    params = {
        "model": MODEL,
        "max_tokens": 5,
        "system": _cached("too short to cache"),
        "messages": _user("q"),
    }
    for _ in range(2):
        usage = client.messages.create(**params).usage
        assert usage.cache_creation_input_tokens == 0 and usage.cache_read_input_tokens == 0


def test_ttl_expiry_with_a_fake_clock(make_sandbox, new_client) -> None:
    now = [1_000_000.0]
    sb = make_sandbox(clock=lambda: now[0])
    client = new_client(sb.base_url, max_retries=0)
    params = {"model": MODEL, "max_tokens": 5, "system": _cached(LONG), "messages": _user("q")}
    assert client.messages.create(**params).usage.cache_creation_input_tokens > 0
    now[0] += 299
    assert client.messages.create(**params).usage.cache_read_input_tokens > 0  # refreshes TTL
    now[0] += 301
    assert client.messages.create(**params).usage.cache_creation_input_tokens > 0  # expired


def test_concurrent_first_requests_all_write(make_sandbox) -> None:
    sb = make_sandbox(message_latency=0.3)

    async def go() -> list:
        async with anthropic.AsyncAnthropic(base_url=sb.base_url, api_key="k") as client:
            params = {
                "model": MODEL,
                "max_tokens": 5,
                "system": _cached(LONG),
                "messages": _user("q"),
            }
            return await asyncio.gather(*(client.messages.create(**params) for _ in range(3)))

    usages = [m.usage for m in asyncio.run(go())]
    assert all(u.cache_creation_input_tokens > 0 and u.cache_read_input_tokens == 0 for u in usages)


def test_caches_are_per_api_key(sb, new_client) -> None:
    params = {"model": MODEL, "max_tokens": 5, "system": _cached(LONG), "messages": _user("q")}
    a = new_client(sb.base_url, api_key="workspace-a")
    b = new_client(sb.base_url, api_key="workspace-b")
    a.messages.create(**params)
    assert b.messages.create(**params).usage.cache_read_input_tokens == 0


def test_streaming_is_refused_rather_than_answered_silently(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError, match="does not stream"):
        client.messages.create(
            model="claude-haiku-5-5", max_tokens=8, messages=_user("hi"), stream=True
        )


def test_a_stop_sequence_then_a_cut_reports_max_tokens_only(client: anthropic.Anthropic) -> None:
    msg = client.messages.create(
        model="claude-haiku-5-5",
        max_tokens=2,
        messages=_user("a b c d STOP e"),
        stop_sequences=["STOP"],
    )
    assert (msg.stop_reason, msg.stop_sequence) == ("max_tokens", None)
    assert msg.content[0].text == "a b"

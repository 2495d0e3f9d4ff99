"""/v1/chat/completions through the official openai SDK: the responders, usage and the automatic
prefix cache (1,024 tokens, steps of 128), OpenAI's errors, faults with retries, rate limits."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from evalbatch.catalog.tokenizer import count_text
from evalbatch.sandbox import FaultConfig, RateLimit
from evalbatch.sandbox.command import parse_faults, parse_rate_limit

from .openai_sdk import Clients
from .quality_cases import write_profile

MODEL = "gpt-5-mini"
# One token per word: 2,000 and 1,000 tokens exactly.
SYSTEM_2000 = " ".join(f"s{i % 1000:03d}" for i in range(2000))
SYSTEM_1000 = " ".join(f"t{i:03d}" for i in range(1000))


@pytest.fixture
def clients() -> Iterator[Clients]:
    made = Clients()
    yield made
    made.close()


def _chat(client: openai.OpenAI, text: str, system: str | None = None, **kwargs: Any) -> Any:
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": text})
    kwargs.setdefault("model", MODEL)
    return client.chat.completions.create(messages=messages, **kwargs)  # type: ignore[arg-type]


def test_echo_sync_and_async(make_sandbox, clients) -> None:
    sb = make_sandbox()
    raw = clients(sb).chat.completions.with_raw_response.create(
        model=MODEL,
        messages=[
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Hello "}, {"type": "text", "text": "there"}]},
        ],
        max_completion_tokens=50,
    )  # fmt: skip
    assert raw.headers["x-request-id"].startswith("req_")
    reply = raw.parse()
    assert reply.object == "chat.completion" and reply.model == MODEL
    assert reply.id.startswith("chatcmpl-")
    choice = reply.choices[0]
    assert choice.message.content == "Hello there" and choice.finish_reason == "stop"
    usage = reply.usage
    assert usage.prompt_tokens == count_text("Be brief.") + count_text("Hello there")
    assert usage.completion_tokens == count_text("Hello there")
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens_details.cached_tokens == 0

    async def ask() -> str:
        async with openai.AsyncOpenAI(base_url=f"{sb.base_url}/v1", api_key="k") as client:
            replies = await asyncio.gather(
                *(
                    client.chat.completions.create(
                        model="gpt-4o", messages=[{"role": "user", "content": f"q{i}"}]
                    )
                    for i in range(5)
                )
            )
        return " ".join(str(r.choices[0].message.content) for r in replies)

    assert asyncio.run(ask()) == "q0 q1 q2 q3 q4"
    assert sb.stats()["openai_chat_served"] == 6


def test_script_and_python_responders(make_sandbox, clients, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        'rules:\n  - model: "openai:gpt-5*"\n    match: "capital of (\\\\w+)"\n'
        '    response: "Lima is the capital of \\\\1."\ndefault: "no rule"\n'
    )
    scripted = clients(make_sandbox(responder=f"script:{rules}"))
    assert _chat(scripted, "The capital of Peru?").choices[0].message.content == (
        "Lima is the capital of Peru."
    )
    assert _chat(scripted, "The capital of Peru?", model="gpt-4o").choices[0].message.content == (
        "no rule"
    )

    seen: list[dict[str, Any]] = []

    def answer(params: dict[str, Any]) -> dict[str, str]:
        seen.append(params)
        return {"text": "one two six ten big", "stop_reason": "end_turn"}

    client = clients(make_sandbox(responder=answer))
    reply = _chat(client, "hi", system="Rules.", max_completion_tokens=3, stop=["zzz"])
    assert reply.choices[0].message.content == "one two six"
    assert reply.choices[0].finish_reason == "length"
    params = seen[0]
    assert params["model"] == "openai:gpt-5-mini" and params["system"] == "Rules."
    assert params["messages"] == [{"role": "user", "content": "hi"}]
    assert params["max_tokens"] == 3 and params["stop_sequences"] == ["zzz"]
    assert params["openai"]["max_completion_tokens"] == 3
    stopped = _chat(client, "hi", stop="six")
    assert stopped.choices[0].message.content == "one two "
    assert stopped.choices[0].finish_reason == "stop"


def test_quality_responder_knows_openai_models(make_sandbox, clients, tmp_path: Path) -> None:
    cases = [
        {"id": "a", "input": "Where is my parcel?", "target": "shipping"},
        {"id": "b", "input": "Refund my double charge.", "target": "refund"},
    ]
    models = {"openai:gpt-5-mini": {"answer": 1.0}, "gpt-4o": {"answer": 0.0}}
    profile = write_profile(tmp_path, models, cases)
    client = clients(make_sandbox(responder=f"quality:{profile}"))
    assert _chat(client, "Where is my parcel?").choices[0].message.content == "shipping"
    assert _chat(client, "Where is my parcel?", model="gpt-4o").choices[0].message.content == (
        "refund"
    )


def test_prefix_cache_in_steps_of_128(make_sandbox, clients) -> None:
    sb = make_sandbox()
    client = clients(sb)

    def cached(text: str, system: str = SYSTEM_2000, **kwargs: Any) -> int:
        reply = _chat(client, text, system=system, **kwargs)
        return int(reply.usage.prompt_tokens_details.cached_tokens)

    assert cached("first question") == 0
    # 2,000 shared tokens: the longest step at or below them is 1,024 + 7 x 128 = 1,920.
    assert cached("another question") == 1920
    long_question = " ".join(["word"] * 100)  # 2,100 tokens in all, sent twice: step 2,048
    assert cached(long_question) == 1920
    assert cached(long_question) == 2048
    assert cached("first question", model="gpt-5") == 0  # per model
    other_key = clients(sb, api_key="another-key")
    assert _chat(other_key, "x", system=SYSTEM_2000).usage.prompt_tokens_details.cached_tokens == 0
    assert cached("q", system=SYSTEM_1000) == 0  # under 1,024 tokens: never cached
    assert cached("q", system=SYSTEM_1000) == 0
    stats = sb.stats()
    assert stats["openai_cache_reads"] == 3
    assert stats["openai_cache_read_tokens"] == 1920 * 2 + 2048
    assert "cache_reads" not in stats  # the Anthropic counters stay apart


def test_openai_errors(make_sandbox, clients) -> None:
    sb = make_sandbox()
    client = clients(sb)
    with pytest.raises(openai.AuthenticationError) as unauthenticated:
        _chat(client, "hi", extra_headers={"Authorization": ""})
    assert "Bearer" in unauthenticated.value.message
    for model in ("gpt-9", "openai:gpt-5-mini"):
        with pytest.raises(openai.NotFoundError) as found:
            _chat(client, "hi", model=model)
        assert found.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as unsupported:
        _chat(client, "hi", max_tokens=10)  # a reasoning model takes max_completion_tokens
    assert unsupported.value.code == "unsupported_parameter"
    assert unsupported.value.param == "max_tokens"
    with pytest.raises(openai.BadRequestError) as sampling:
        _chat(client, "hi", temperature=0)
    assert sampling.value.code == "unsupported_value"
    assert _chat(client, "hi", model="gpt-4o", max_tokens=10, temperature=0).choices
    with pytest.raises(openai.BadRequestError) as too_large:
        _chat(client, "hi", model="gpt-4o", max_tokens=100_000)
    assert too_large.value.code == "invalid_value"
    with pytest.raises(openai.BadRequestError, match="Unrecognized request argument"):
        _chat(client, "hi", extra_body={"bogus": 1})
    with pytest.raises(openai.BadRequestError) as empty:
        client.chat.completions.create(model=MODEL, messages=[])
    assert empty.value.code == "empty_array"
    assert sb.stats()["http openai_chat 400"] == 5


def test_sdk_retries_through_faults(make_sandbox, clients) -> None:
    sb = make_sandbox(faults=FaultConfig(script=[429, 529, 500, 503]))
    reply = _chat(clients(sb, max_retries=4), "hi")
    assert reply.choices[0].message.content == "hi"
    stats = sb.stats()
    assert stats["http openai_chat 429"] == 1 and stats["http openai_chat 503"] == 2
    assert stats["http openai_chat 500"] == 1 and stats["http openai_chat 200"] == 1

    strict = clients(make_sandbox(faults=FaultConfig(script=[429, 503, 0])))
    with pytest.raises(openai.RateLimitError) as limited:
        _chat(strict, "hi")
    assert float(limited.value.response.headers["retry-after"]) < 1
    with pytest.raises(openai.InternalServerError) as overloaded:
        _chat(strict, "hi")
    assert overloaded.value.status_code == 503 and overloaded.value.response.headers["retry-after"]
    with pytest.raises(openai.APIConnectionError):
        _chat(strict, "hi")  # the dropped connection


def test_rate_limit_headers(make_sandbox, clients) -> None:
    limit = RateLimit(model="openai:gpt-4o*", rpm=2, tpm=1000)
    sb = make_sandbox(rate_limits=[limit], clock=lambda: 1000.0)
    client = clients(sb)
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": "one two"}], max_tokens=8
    )
    headers = raw.headers
    assert headers["x-ratelimit-limit-requests"] == "2"
    assert headers["x-ratelimit-remaining-requests"] == "1"
    assert headers["x-ratelimit-reset-requests"] == "30s"
    assert headers["x-ratelimit-limit-tokens"] == "1000"
    assert headers["x-ratelimit-remaining-tokens"] == str(1000 - 2 - 8)  # prompt + max_tokens
    assert headers["x-ratelimit-reset-tokens"] == "600ms"
    _chat(client, "x", model="gpt-4o")
    with pytest.raises(openai.RateLimitError) as refused:
        _chat(client, "x", model="gpt-4o")
    assert refused.value.code == "rate_limit_exceeded"
    assert refused.value.type == "requests"
    assert refused.value.response.headers["retry-after"] == "30"
    unlimited = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": "x"}]
    )
    assert "x-ratelimit-limit-requests" not in unlimited.headers  # no limit for gpt-5-mini
    assert sb.stats()["http openai_chat 429"] == 1


def test_command_line_limits_and_faults_for_openai() -> None:
    assert parse_rate_limit("openai:gpt-5*:rpm=5,tpm=900") == RateLimit("openai:gpt-5*", 5, tpm=900)
    assert parse_rate_limit("claude-*:rpm=1,itpm=2") == RateLimit("claude-*", 1, 2)
    assert parse_faults(["script=429,503,drop"]).script == [429, 503, 0]

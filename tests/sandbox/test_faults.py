"""Faults and limits: SDK retries on 429/529/500, dropped connections, errored/expired items,
a truncated results stream, and rate-limit buckets with their headers."""

from __future__ import annotations

import time

import anthropic
import httpx2
import pytest

from evalbatch.sandbox import FaultConfig, RateLimit

MODEL = "claude-haiku-5-5"
BODY = {"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (429, anthropic.RateLimitError),
        (529, anthropic.InternalServerError),
        (500, anthropic.InternalServerError),
    ],
)
def test_sdk_retries_through_faults(make_sandbox, status: int, error: type, new_client) -> None:
    sb = make_sandbox(faults=FaultConfig(script=[status, status]))
    retrying = new_client(sb.base_url, max_retries=2)
    assert retrying.messages.create(**BODY).content[0].text == "hi"
    stats = sb.stats()
    assert stats[f"http messages {status}"] == 2 and stats["http messages 200"] == 1
    sb2 = make_sandbox(faults=FaultConfig(script=[status]))
    strict = new_client(sb2.base_url, max_retries=0)
    with pytest.raises(error):
        strict.messages.create(**BODY)


def test_429_carries_retry_after(make_sandbox) -> None:
    sb = make_sandbox(faults=FaultConfig(script=[429]))
    resp = httpx2.post(
        f"{sb.base_url}/v1/messages",
        json=BODY,
        headers={"x-api-key": "k", "anthropic-version": "2026-10-21"},
    )
    assert resp.status_code == 429 and float(resp.headers["retry-after"]) < 1
    assert resp.json()["error"]["type"] == "rate_limit_error"


def test_dropped_connection(make_sandbox, new_client) -> None:
    sb = make_sandbox(faults=FaultConfig(script=[0]))
    strict = new_client(sb.base_url, max_retries=0)
    with pytest.raises(anthropic.APIConnectionError):
        strict.messages.create(**BODY)
    sb2 = make_sandbox(faults=FaultConfig(script=[0]))
    retrying = new_client(sb2.base_url, max_retries=2)
    assert retrying.messages.create(**BODY).content[0].text == "hi"


def test_probabilistic_faults_are_seeded(make_sandbox) -> None:
    def codes(seed: int) -> list[int]:
        sb = make_sandbox(faults=FaultConfig(rate_429=0.3, rate_500=0.2), seed=seed)
        return [
            httpx2.post(
                f"{sb.base_url}/v1/messages",
                json=BODY,
                headers={"x-api-key": "k", "anthropic-version": "2026-10-21"},
            ).status_code
            for _ in range(30)
        ]

    first, again = codes(7), codes(7)
    assert first == again and {200, 429, 500} <= set(first)


def _wait(client, batch_id):
    for _ in range(200):
        batch = client.messages.batches.retrieve(batch_id)
        if batch.processing_status == "ended":
            return batch
        time.sleep(0.02)
    raise AssertionError("batch did not end")


def test_errored_and_expired_item_rates(make_sandbox, new_client) -> None:
    sb = make_sandbox(faults=FaultConfig(errored=0.2, expired=0.1), seed=3)
    client = new_client(sb.base_url)
    batch = client.messages.batches.create(
        requests=[{"custom_id": f"i{i}", "params": BODY} for i in range(200)]
    )
    counts = _wait(client, batch.id).request_counts
    assert 20 <= counts.errored <= 60 and 5 <= counts.expired <= 40
    assert counts.succeeded + counts.errored + counts.expired == 200
    types = {
        r.result.error.error.type
        for r in client.messages.batches.results(batch.id)
        if r.result.type == "errored"
    }
    assert types <= {"overloaded_error", "api_error"}


def test_truncated_results_once_then_complete(make_sandbox, new_client) -> None:
    sb = make_sandbox(faults=FaultConfig(truncate_results=True))
    client = new_client(sb.base_url)
    batch = client.messages.batches.create(
        requests=[{"custom_id": f"i{i}", "params": BODY} for i in range(10)]
    )
    _wait(client, batch.id)
    with pytest.raises(ValueError):
        list(client.messages.batches.results(batch.id))
    assert len(list(client.messages.batches.results(batch.id))) == 10


def test_rate_limit_buckets_and_headers(make_sandbox) -> None:
    sb = make_sandbox(rate_limits=[RateLimit(model="claude-haiku-*", rpm=2)])
    headers = {"x-api-key": "k", "anthropic-version": "2026-10-21"}
    first = httpx2.post(f"{sb.base_url}/v1/messages", json=BODY, headers=headers)
    assert first.headers["anthropic-ratelimit-requests-limit"] == "2"
    assert first.headers["anthropic-ratelimit-requests-remaining"] == "1"
    httpx2.post(f"{sb.base_url}/v1/messages", json=BODY, headers=headers)
    third = httpx2.post(f"{sb.base_url}/v1/messages", json=BODY, headers=headers)
    assert third.status_code == 429 and float(third.headers["retry-after"]) > 0
    other = {**BODY, "model": "claude-opus-5-5"}  # another model's bucket is untouched
    assert httpx2.post(f"{sb.base_url}/v1/messages", json=other, headers=headers).status_code == 200

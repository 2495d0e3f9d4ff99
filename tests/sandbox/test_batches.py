"""Message Batches through the official SDK: lifecycle, results decoding, list, cancel, delete."""

from __future__ import annotations

import time

import anthropic
import httpx2
import pytest

MODEL = "claude-haiku-5-5"


def _req(cid: str, text: str = "hello", **params: object) -> dict:
    return {
        "custom_id": cid,
        "params": {
            "model": MODEL,
            "max_tokens": 20,
            "messages": [{"role": "user", "content": text}],
            **params,
        },
    }


def _wait(client: anthropic.Anthropic, batch_id: str, timeout: float = 10) -> object:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        batch = client.messages.batches.retrieve(batch_id)
        if batch.processing_status == "ended":
            return batch
        time.sleep(0.05)
    raise AssertionError("batch did not end")


def test_lifecycle_counts_move_at_once_and_results_decode(make_sandbox, new_client) -> None:
    sb = make_sandbox(batch_latency=0.5)
    client = new_client(sb.base_url)
    created = client.messages.batches.create(
        requests=[_req("a-1", "first"), _req("a-2", "second"), _req("bad", "x", temperature=0.2)]
    )
    assert created.processing_status == "in_progress" and created.results_url is None
    assert created.request_counts.processing == 3 and created.request_counts.succeeded == 0
    assert (created.expires_at - created.created_at).total_seconds() == 86400
    with pytest.raises(anthropic.AnthropicError, match="results_url"):
        list(client.messages.batches.results(created.id))
    ended = _wait(client, created.id)
    counts = ended.request_counts
    assert (counts.processing, counts.succeeded, counts.errored) == (0, 2, 1)
    results = {r.custom_id: r.result for r in client.messages.batches.results(created.id)}
    assert results["a-1"].message.content[0].text == "first"
    assert results["a-2"].message.usage.service_tier == "batch"
    assert results["bad"].type == "errored"
    assert results["bad"].error.error.type == "invalid_request_error"
    assert "temperature" in results["bad"].error.error.message
    assert sb.stats()["batches_created"] == 1


def test_results_come_shuffled(make_sandbox, new_client) -> None:
    sb = make_sandbox(batch_latency=0.0)
    client = new_client(sb.base_url)
    batch = client.messages.batches.create(requests=[_req(f"r-{i}") for i in range(50)])
    _wait(client, batch.id)
    order = [r.custom_id for r in client.messages.batches.results(batch.id)]
    assert sorted(order) == sorted(f"r-{i}" for i in range(50)) and order != sorted(order)


@pytest.mark.parametrize(
    ("requests", "needle"),
    [
        ([], "between 1 and 100,000"),
        ([_req("has space")], "custom_id"),
        ([_req("x" * 65)], "custom_id"),
        ([_req("dup"), _req("dup")], "duplicate"),
    ],
)
def test_create_validation(client, requests: list, needle: str) -> None:
    with pytest.raises(anthropic.BadRequestError, match=needle):
        client.messages.batches.create(requests=requests)


def test_oversized_batch_is_413(make_sandbox, new_client) -> None:
    sb = make_sandbox(max_batch_bytes=2000)
    client = new_client(sb.base_url, max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as info:
        client.messages.batches.create(requests=[_req(f"r{i}", "x" * 100) for i in range(20)])
    assert info.value.status_code == 413


def test_list_is_newest_first_and_paginates(make_sandbox, new_client) -> None:
    sb = make_sandbox(batch_latency=0.0)
    client = new_client(sb.base_url)
    ids = [client.messages.batches.create(requests=[_req("a")]).id for _ in range(5)]
    page = client.messages.batches.list(limit=2)
    assert [b.id for b in page.data] == ids[::-1][:2] and page.has_more
    assert [b.id for b in client.messages.batches.list(limit=2)] == ids[::-1]  # auto-paging
    raw = httpx2.get(
        f"{sb.base_url}/v1/messages/batches",
        params={"before_id": ids[2]},
        headers={"x-api-key": "k", "anthropic-version": "2026-10-21"},
    ).json()
    assert [b["id"] for b in raw["data"]] == ids[::-1][:2]
    assert raw["first_id"] == ids[4] and raw["last_id"] == ids[3]


def test_cancel_then_ended_with_canceled_items_and_delete(make_sandbox, new_client) -> None:
    sb = make_sandbox(batch_latency=30)
    client = new_client(sb.base_url)
    batch = client.messages.batches.create(requests=[_req("a"), _req("b")])
    with pytest.raises(anthropic.BadRequestError, match="cancel it"):
        client.messages.batches.delete(batch.id)
    canceling = client.messages.batches.cancel(batch.id)
    assert canceling.processing_status == "canceling" and canceling.cancel_initiated_at
    ended = _wait(client, batch.id)
    assert ended.request_counts.canceled == 2
    assert {r.result.type for r in client.messages.batches.results(batch.id)} == {"canceled"}
    with pytest.raises(anthropic.BadRequestError, match="ended"):
        client.messages.batches.cancel(batch.id)
    deleted = client.messages.batches.delete(batch.id)
    assert deleted.type == "message_batch_deleted"
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.retrieve(batch.id)


def test_expiry_of_unfinished_items(make_sandbox, new_client) -> None:
    sb = make_sandbox(batch_latency=5, expire_after=0.2)
    client = new_client(sb.base_url)
    batch = client.messages.batches.create(requests=[_req("a"), _req("b")])
    assert _wait(client, batch.id).request_counts.expired == 2


def test_items_in_a_batch_share_the_cache(make_sandbox, new_client) -> None:
    sb = make_sandbox(batch_latency=0.0)
    client = new_client(sb.base_url)
    system = [
        {
            "type": "text",
            "text": "policy " * 3000,
            "cache_control": {"type": "ephemeral", "ttl": "1h"},
        }
    ]
    batch = client.messages.batches.create(
        requests=[_req(f"c{i}", f"q{i}", system=system) for i in range(4)]
    )
    _wait(client, batch.id)
    usages = [r.result.message.usage for r in client.messages.batches.results(batch.id)]
    assert sum(u.cache_creation.ephemeral_1h_input_tokens > 0 for u in usages) == 1
    assert sum(u.cache_read_input_tokens > 0 for u in usages) == 3


def test_async_client_batches(make_sandbox) -> None:
    import asyncio

    sb = make_sandbox(batch_latency=0.0)

    async def go() -> list[str]:
        async with anthropic.AsyncAnthropic(base_url=sb.base_url, api_key="k") as client:
            batch = await client.messages.batches.create(requests=[_req("a", "async hi")])
            for _ in range(100):
                batch = await client.messages.batches.retrieve(batch.id)
                if batch.processing_status == "ended":
                    break
                await asyncio.sleep(0.02)
            results = await client.messages.batches.results(batch.id)
            return [r.result.message.content[0].text async for r in results]

    assert asyncio.run(go()) == ["async hi"]

"""The OpenAI provider through the official SDK against the sandbox: a batch uploaded, created
with its label, found again by listing, collected (answers and errors by custom_id) and every
file of it deleted; a batch that failed validation; a cut download; the sync path's errors."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from evalbatch.errors import MissingCredentials, ProviderError
from evalbatch.providers import api_base_url, open_provider
from evalbatch.providers.openai import OpenAIProvider
from evalbatch.sandbox import FaultConfig, SandboxConfig, SandboxServer


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(responder="echo", batch_latency=0.0)) as server:
        yield server


@pytest.fixture
def provider(sandbox: SandboxServer) -> Iterator[OpenAIProvider]:
    made = open_provider("openai", base_url=api_base_url("openai", sandbox.base_url), api_key="k")
    assert isinstance(made, OpenAIProvider)
    yield made
    made.close()


def _items(n: int, model: str = "openai:gpt-5-mini") -> list[tuple[str, dict]]:
    return [
        (
            f"run1-g{i}",
            {"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": f"q{i}"}]},
        )
        for i in range(n)
    ]


def _ended(provider: OpenAIProvider, batch_id: str) -> None:
    deadline = time.monotonic() + 20
    while provider.get_batch(batch_id).status != "ended":
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_upload_create_find_collect_release(provider, sandbox) -> None:
    items = _items(3)
    upload = provider.upload_batch(items, "evalbatch-run1-b1")
    assert upload is not None
    [listed] = list(provider.list_uploads(created_after=0))
    assert (listed.id, listed.label) == (upload, "evalbatch-run1-b1")
    info = provider.submit_batch(items, upload_id=upload, label="evalbatch-run1-b1")
    assert (info.label, info.upload_id) == ("evalbatch-run1-b1", upload)
    assert [b.id for b in provider.list_batches(created_after=0)] == [info.id]
    _ended(provider, info.id)
    outcomes = {o.custom_id: o for o in provider.iter_results(info.id)}
    assert {cid: o.text for cid, o in outcomes.items()} == {f"run1-g{i}": f"q{i}" for i in range(3)}
    assert len(provider.batch_custom_ids(info.id, limit=2)) == 2

    provider.release_batch(info.id, upload)
    provider.release_batch(info.id, upload)  # again: idempotent (a crash before it was recorded)
    assert list(provider.list_uploads(created_after=0)) == []
    stats = sandbox.stats()
    assert stats["openai_files_uploaded"] == 1
    assert stats["openai_files_deleted"] == 2  # the input and the output file (no error file)


def test_a_batch_that_failed_validation_is_read_back_from_its_input(provider) -> None:
    items = _items(2) + [("run1-g9", _items(1, "openai:gpt-4o")[0][1])]  # two models: refused
    upload = provider.upload_batch(items, "evalbatch-run1-b2")
    info = provider.submit_batch(items, upload_id=upload, label="evalbatch-run1-b2")
    _ended(provider, info.id)
    outcomes = list(provider.iter_results(info.id))
    assert [o.custom_id for o in outcomes] == ["run1-g0", "run1-g1", "run1-g9"]
    assert [o.is_result for o in outcomes] == [False, False, True]  # the line it names
    assert outcomes[2].error_type == "mismatched_model"


def test_a_cut_download_is_a_retryable_error_and_the_next_one_is_whole() -> None:
    config = SandboxConfig(batch_latency=0.0, faults=FaultConfig(truncate_results=True))
    with SandboxServer(config) as sandbox:
        provider = OpenAIProvider(base_url=f"{sandbox.base_url}/v1", api_key="k", max_retries=0)
        items = _items(40)
        upload = provider.upload_batch(items, "evalbatch-run1-b3")
        info = provider.submit_batch(items, upload_id=upload, label="evalbatch-run1-b3")
        _ended(provider, info.id)
        with pytest.raises(ProviderError) as cut:
            list(provider.iter_results(info.id))
        assert cut.value.retryable
        assert len(list(provider.iter_results(info.id))) == 40
        provider.close()


def test_sync_errors_carry_their_class() -> None:
    config = SandboxConfig(faults=FaultConfig(script=[429, 500]))
    with SandboxServer(config) as sandbox:
        provider = OpenAIProvider(base_url=f"{sandbox.base_url}/v1", api_key="k")
        body = _items(1)[0][1]

        async def four() -> list:
            try:
                sent = [await provider.complete("run1-g0", body) for _ in range(3)]
                unknown = {**body, "model": "openai:gpt-9"}
                return [*sent, await provider.complete("run1-g1", unknown)]
            finally:
                await provider.aclose()

        limited, failed, answered, unknown = asyncio.run(four())
        assert (limited.error_class, limited.retry_after is not None) == ("rate_limit", True)
        assert failed.error_class == "transient"
        assert answered.text == "q0" and answered.usage.input_tokens == 1
        assert (unknown.error_class, unknown.is_result) == ("request", True)  # model_not_found
        provider.close()


def test_a_missing_key_is_named_and_token_counting_is_refused(monkeypatch, provider) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(MissingCredentials, match="OPENAI_API_KEY"):
        open_provider("openai")
    with pytest.raises(ProviderError, match="--count-tokens local"):
        provider.count_tokens(_items(1)[0][1])

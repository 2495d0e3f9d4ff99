"""Files and Batches through the official openai SDK: upload/list/content/delete, a batch's whole
lifecycle, output and error files by custom_id, item faults, expiry, cancel, validation
failures, the in-batch prefix cache, a truncated download, and the stats counters."""

from __future__ import annotations

import time
from collections.abc import Iterator

import openai
import orjson
import pytest

from evalbatch.catalog.tokenizer import count_text
from evalbatch.sandbox import FaultConfig

from .openai_sdk import Clients, chat_line, read_lines, start_batch, wait_batch

SYSTEM_2000 = " ".join(f"s{i % 1000:03d}" for i in range(2000))  # 2,000 tokens


@pytest.fixture
def clients() -> Iterator[Clients]:
    made = Clients()
    yield made
    made.close()


def test_files_upload_list_content_delete(make_sandbox, clients) -> None:
    sb = make_sandbox()
    client = clients(sb)
    first = client.files.create(file=("a.jsonl", b'{"x": 1}\n'), purpose="batch")
    second = client.files.create(file=("b.txt", b"notes"), purpose="user_data")
    assert first.id.startswith("file-") and first.bytes == 9 and first.filename == "a.jsonl"
    assert first.purpose == "batch" and first.object == "file"
    assert [f.id for f in client.files.list()] == [second.id, first.id]  # newest first
    assert [f.id for f in client.files.list(purpose="batch")] == [first.id]
    page = client.files.list(limit=1, order="asc")
    assert [f.id for f in page.data] == [first.id] and page.has_more
    assert [f.id for f in page.get_next_page().data] == [second.id]
    assert client.files.retrieve(second.id).bytes == 5
    assert client.files.content(first.id).content == b'{"x": 1}\n'
    deleted = client.files.delete(first.id)
    assert deleted.deleted and deleted.id == first.id
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(first.id)
    with pytest.raises(openai.BadRequestError) as bad:
        client.files.create(file=("c.jsonl", b"{}"), purpose="nonsense")  # type: ignore[arg-type]
    assert bad.value.param == "purpose"
    stats = sb.stats()
    assert stats["openai_files_uploaded"] == 2 and stats["openai_files_deleted"] == 1


def test_batch_lifecycle(make_sandbox, clients) -> None:
    sb = make_sandbox(batch_latency=0.3)
    client = clients(sb)
    lines = [chat_line(f"case-{i}", f"question {i}", max_completion_tokens=20) for i in range(5)]
    created = start_batch(client, lines, metadata={"run": "r1", "chunk": "3"})
    assert created.status == "validating" and created.id.startswith("batch_")
    assert created.metadata == {"run": "r1", "chunk": "3"} and created.completion_window == "24h"
    assert created.expires_at == created.created_at + 86400
    time.sleep(0.1)
    running = client.batches.retrieve(created.id)
    assert running.status == "in_progress" and running.request_counts.total == 5
    assert running.model == "gpt-5-mini" and running.in_progress_at is not None
    batch = wait_batch(client, created.id)
    assert batch.status == "completed" and batch.error_file_id is None
    assert batch.request_counts.completed == 5 and batch.request_counts.failed == 0
    assert batch.in_progress_at <= batch.finalizing_at <= batch.completed_at
    tokens = 5 * count_text("question 0")
    assert batch.usage.input_tokens == tokens and batch.usage.output_tokens == tokens
    outputs = read_lines(client, batch.output_file_id)
    assert sorted(outputs) == [f"case-{i}" for i in range(5)]
    line = outputs["case-3"]
    assert line["id"].startswith("batch_req_") and line["error"] is None
    assert line["response"]["status_code"] == 200 and line["response"]["request_id"]
    assert line["response"]["body"]["choices"][0]["message"]["content"] == "question 3"
    output_file = client.files.retrieve(batch.output_file_id)
    assert output_file.purpose == "batch_output"
    assert output_file.filename == f"batch_{batch.id}_output.jsonl"
    with pytest.raises(openai.BadRequestError, match="status 'completed'"):
        client.batches.cancel(batch.id)


def test_list_batches_pages_newest_first(make_sandbox, clients) -> None:
    client = clients(make_sandbox())
    ids = [start_batch(client, [chat_line("a", "x")], {"n": str(i)}).id for i in range(3)]
    page = client.batches.list(limit=2)
    assert [b.id for b in page.data] == ids[:0:-1] and page.has_more
    assert [b.id for b in client.batches.list(limit=2)] == ids[::-1]  # auto-paging
    assert [b.metadata for b in client.batches.list(after=ids[2])] == [{"n": "1"}, {"n": "0"}]


def test_item_errors_and_expired_items(make_sandbox, clients) -> None:
    sb = make_sandbox(faults=FaultConfig(errored=0.3, expired=0.2), seed=3)
    client = clients(sb)
    lines = [chat_line(f"c{i}", f"q{i}") for i in range(40)]
    lines.append(chat_line("too-long", "q", max_completion_tokens=10**6))
    batch = wait_batch(client, start_batch(client, lines).id)
    assert batch.status == "completed"
    outputs, errors = (
        read_lines(client, batch.output_file_id),
        read_lines(client, batch.error_file_id),
    )
    assert set(outputs) | set(errors) == {f"c{i}" for i in range(40)} | {"too-long"}
    assert not set(outputs) & set(errors)
    counts = batch.request_counts
    assert (counts.total, counts.completed, counts.failed) == (41, len(outputs), len(errors))
    invalid = errors.pop("too-long")["response"]
    assert (
        invalid["status_code"] == 400
        and invalid["body"]["error"]["param"] == "max_completion_tokens"
    )
    expired = [e for e in errors.values() if e["response"] is None]
    failed = [e for e in errors.values() if e["response"] is not None]
    assert expired and failed and len(outputs) > 10
    assert {e["error"]["code"] for e in expired} == {"batch_expired"}
    assert {e["response"]["status_code"] for e in failed} <= {500, 503}
    assert all(e["error"] is None for e in failed)
    stats = sb.stats()
    assert stats["openai_items_completed"] == len(outputs)
    assert stats["openai_items_expired"] == len(expired)
    assert stats["openai_items_failed"] == len(failed) + 1


def test_whole_batch_expires(make_sandbox, clients) -> None:
    client = clients(make_sandbox(batch_latency=0.5, expire_after=0.1))
    batch = wait_batch(client, start_batch(client, [chat_line("a", "x"), chat_line("b", "y")]).id)
    assert batch.status == "expired" and batch.expired_at is not None
    assert batch.output_file_id is None and batch.request_counts.failed == 2
    errors = read_lines(client, batch.error_file_id)
    assert {e["error"]["code"] for e in errors.values()} == {"batch_expired"}


def test_cancel(make_sandbox, clients) -> None:
    sb = make_sandbox(batch_latency=5.0)
    client = clients(sb)
    created = start_batch(client, [chat_line(f"c{i}", "x") for i in range(3)])
    cancelling = client.batches.cancel(created.id)
    assert cancelling.status == "cancelling" and cancelling.cancelling_at is not None
    batch = wait_batch(client, created.id, timeout=3)
    assert batch.status == "cancelled" and batch.cancelled_at is not None
    errors = read_lines(client, batch.error_file_id)
    assert {e["error"]["code"] for e in errors.values()} == {"batch_cancelled"}
    assert sb.stats()["openai_items_cancelled"] == 3


@pytest.mark.parametrize(
    ("lines", "code", "line"),
    [
        ([chat_line("a", "x"), b"{not json"], "invalid_json_line", 2),
        ([chat_line("a", "x"), chat_line("b", "y"), chat_line("a", "z")], "duplicate_custom_id", 3),
        ([chat_line("a", "x"), chat_line("b", "y", model="gpt-4o")], "mismatched_model", 2),
        ([chat_line("a", "x", model="gpt-9")], "model_not_found", 1),
        ([chat_line("a", "x").replace(b"/v1/chat/completions", b"/v1/embeddings")], "invalid_url", 1),
        ([orjson.dumps({"custom_id": "a", "method": "POST", "url": "/v1/chat/completions"})],
         "missing_required_parameter", 1),
        ([chat_line(f"c{i}", "x") for i in range(4)], "too_many_requests", None),
    ],
)  # fmt: skip
def test_validation_fails_the_batch(make_sandbox, clients, lines, code, line) -> None:
    sb = make_sandbox(openai_max_batch_requests=3)
    client = clients(sb)
    batch = wait_batch(client, start_batch(client, lines).id)
    assert batch.status == "failed" and batch.failed_at is not None
    assert batch.output_file_id is None and batch.error_file_id is None
    error = batch.errors.data[0]
    assert (error.code, error.line) == (code, line) and error.message
    assert sb.stats()["openai_batches_failed"] == 1


def test_create_errors(make_sandbox, clients) -> None:
    client = clients(make_sandbox())
    notes = client.files.create(file=("n.txt", b"x"), purpose="user_data")
    uploaded = client.files.create(file=("in.jsonl", chat_line("a", "x")), purpose="batch")
    with pytest.raises(openai.NotFoundError):
        client.batches.create(
            input_file_id="file-nope", endpoint="/v1/chat/completions", completion_window="24h"
        )
    with pytest.raises(openai.BadRequestError, match="purpose 'batch'"):
        client.batches.create(
            input_file_id=notes.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
    with pytest.raises(openai.BadRequestError) as window:
        client.batches.create(
            input_file_id=uploaded.id,
            endpoint="/v1/chat/completions",
            completion_window="1h",  # type: ignore[arg-type]
        )
    assert window.value.param == "completion_window"
    with pytest.raises(openai.BadRequestError) as metadata:
        client.batches.create(
            input_file_id=uploaded.id,
            endpoint="/v1/chat/completions",
            completion_window="24h",
            metadata={f"k{i}": "v" for i in range(17)},
        )
    assert metadata.value.param == "metadata"


def _system_lines(n: int) -> list[bytes]:
    return [
        orjson.dumps(
            {
                "custom_id": f"c{i}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {
                    "model": "gpt-5-mini",
                    "messages": [
                        {"role": "system", "content": SYSTEM_2000},
                        {"role": "user", "content": f"question {i}"},
                    ],
                },
            }
        )
        for i in range(n)
    ]


def _cached(client: openai.OpenAI, batch: object) -> list[int]:
    lines = read_lines(client, batch.output_file_id)  # type: ignore[attr-defined]
    return sorted(
        line["response"]["body"]["usage"]["prompt_tokens_details"]["cached_tokens"]
        for line in lines.values()
    )


def test_prefix_cache_inside_a_batch(make_sandbox, clients) -> None:
    sb = make_sandbox(batch_concurrency=1)
    client = clients(sb)
    batch = wait_batch(client, start_batch(client, _system_lines(10)).id)
    assert _cached(client, batch) == [0] + [1920] * 9  # the first item writes, the rest read
    assert batch.usage.input_tokens_details.cached_tokens == 9 * 1920
    assert sb.stats()["openai_cache_reads"] == 9


def test_in_batch_hit_rate_is_shared_with_message_batches(make_sandbox, clients) -> None:
    sb = make_sandbox(batch_cache_hit_rate=0.0)
    client = clients(sb)
    batch = wait_batch(client, start_batch(client, _system_lines(10)).id)
    assert _cached(client, batch) == [0] * 10  # no item reads what its own batch wrote
    assert sb.stats(reset=True)["openai_batch_cache_misses"] == 9
    warm = client.chat.completions.create(
        model="gpt-5-mini",
        messages=[{"role": "system", "content": SYSTEM_2000}, {"role": "user", "content": "w"}],
    )
    assert warm.usage.prompt_tokens_details.cached_tokens == 0  # reset cleared the cache
    batch = wait_batch(client, start_batch(client, _system_lines(10)).id)
    assert _cached(client, batch) == [1920] * 10  # written before the batch: always read


def test_truncated_download(make_sandbox, clients) -> None:
    sb = make_sandbox(faults=FaultConfig(truncate_results=True))
    strict = clients(sb)
    batch = wait_batch(strict, start_batch(strict, [chat_line(f"c{i}", "x") for i in range(4)]).id)
    with pytest.raises(openai.APIConnectionError):
        strict.files.content(batch.output_file_id)  # announced in full, cut halfway
    assert len(read_lines(strict, batch.output_file_id)) == 4  # the next download is whole
    again = wait_batch(strict, start_batch(strict, [chat_line("a", "x")]).id)
    assert len(read_lines(clients(sb, max_retries=2), again.output_file_id)) == 1  # SDK retries
    stats = sb.stats()
    assert stats["openai_truncated_downloads"] == 2 and stats["openai_batches_created"] == 2

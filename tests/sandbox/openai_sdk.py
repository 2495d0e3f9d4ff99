"""Driving the sandbox's OpenAI side through the official `openai` SDK in tests: clients that
are closed after the test, batch input files, polling a batch, and reading JSONL files."""

from __future__ import annotations

import time
from typing import Any

import openai
import orjson

from evalbatch.sandbox import SandboxServer

ENDED = ("completed", "failed", "expired", "cancelled")


class Clients:
    """Makes sync SDK clients for a sandbox (``/v1`` appended) and closes them all."""

    def __init__(self) -> None:
        self.made: list[openai.OpenAI] = []

    def __call__(self, sb: SandboxServer, **kwargs: Any) -> openai.OpenAI:
        kwargs.setdefault("api_key", "test-key")
        kwargs.setdefault("max_retries", 0)
        client = openai.OpenAI(base_url=f"{sb.base_url}/v1", **kwargs)
        self.made.append(client)
        return client

    def close(self) -> None:
        for client in self.made:
            client.close()


def chat_line(custom_id: str, content: str, model: str = "gpt-5-mini", **body: Any) -> bytes:
    """One line of a batch input file for /v1/chat/completions."""
    request = {"model": model, "messages": [{"role": "user", "content": content}], **body}
    line = {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions"}
    return orjson.dumps({**line, "body": request})


def start_batch(
    client: openai.OpenAI, lines: list[bytes], metadata: dict[str, str] | None = None
) -> Any:
    """Upload ``lines`` as a batch input file and create the batch; returns the Batch."""
    uploaded = client.files.create(file=("input.jsonl", b"\n".join(lines)), purpose="batch")
    return client.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata=metadata,
    )


def wait_batch(client: openai.OpenAI, batch_id: str, timeout: float = 30) -> Any:
    """The batch once it has ended (completed, failed, expired or cancelled)."""
    end = time.monotonic() + timeout
    batch = client.batches.retrieve(batch_id)
    while batch.status not in ENDED:
        assert time.monotonic() < end, f"batch {batch_id} did not end in {timeout} s"
        time.sleep(0.02)
        batch = client.batches.retrieve(batch_id)
    return batch


def read_lines(client: openai.OpenAI, file_id: str | None) -> dict[str, dict[str, Any]]:
    """A batch output or error file's lines, by custom_id ({} for no file)."""
    if file_id is None:
        return {}
    text = client.files.content(file_id).content
    lines = [orjson.loads(line) for line in text.splitlines() if line.strip()]
    by_id = {line["custom_id"]: line for line in lines}
    assert len(by_id) == len(lines), "a custom_id appears twice"
    return by_id

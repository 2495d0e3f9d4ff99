"""Driving a batch through the official SDK in tests: create, poll until ended, read results."""

from __future__ import annotations

import time
from typing import Any

import anthropic


def run_batch(
    client: anthropic.Anthropic, requests: list[dict[str, Any]], timeout: float = 60
) -> dict[str, Any]:
    """The results of a batch of ``requests``, by custom_id, once it has ended."""
    batch = client.messages.batches.create(requests=requests)
    end = time.monotonic() + timeout
    while client.messages.batches.retrieve(batch.id).processing_status != "ended":
        assert time.monotonic() < end, f"batch {batch.id} did not end in {timeout} s"
        time.sleep(0.02)
    return {r.custom_id: r.result for r in client.messages.batches.results(batch.id)}

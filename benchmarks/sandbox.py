"""Throughput and memory of the loopback sandbox, measured through the official `anthropic` SDK.

Starts an in-process ``SandboxServer`` (echo responder, ``batch_latency=0``) on an ephemeral
loopback port and measures, all in this one process (server threads + SDK client):

(a) ``/v1/messages`` requests per second: the async client with 32 requests in flight
    (``--requests``, default 2000), then the sync client one request at a time (a quarter as
    many requests);
(b) one Message Batch of ``--batch-size`` small requests (default 100,000; custom ids ``r0``,
    ``r1``, ...): seconds to create it, seconds until ``processing_status == "ended"`` (polled
    every 50 ms), and seconds to stream every result back with
    ``client.messages.batches.results`` (the count is checked against the batch size);
(c) peak RSS of the whole process (``ru_maxrss``), in MB: client and sandbox together, since
    they share the process (not split; ``benchmarks/scale.py`` gives the sandbox's own).

Client and server share one interpreter, so they compete for the GIL. For every phase the table
also splits the CPU time between the client (the main thread, ``time.thread_time``) and the
sandbox (every other thread: the uvicorn thread and the batch worker), so a slow figure can be
attributed to the side that spends it. The settings (sizes, prompt, model, SDK and Python
versions, the sandbox's /_sandbox/config) are printed first.

Targets: the 100k batch end to end (create + process + stream) under 30 s, and peak memory
under 1 GB.

Usage: ``.venv/bin/python benchmarks/sandbox.py [--requests N] [--batch-size N]``. The last line
printed is machine-readable, e.g. ``sandbox: msgs_per_s=1234 batch100k_s=12.3 peak_rss_mb=456``
(``msgs_per_s`` is the async figure; ``batch<size>_s`` is create + process + stream, named for
the size that ran: ``batch10k_s`` with ``--batch-size 10000``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import anthropic

from evalbatch.sandbox import SandboxConfig, SandboxServer

MODEL = "claude-haiku-5-5"
CONCURRENCY = 32
POLL_S = 0.05
TARGET_BATCH_S = 30.0
TARGET_RSS_MB = 1024.0


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


@dataclass
class Phase:
    name: str
    wall_s: float = 0.0
    client_cpu_s: float = 0.0
    server_cpu_s: float = 0.0
    rate: str = ""
    peak_rss_mb: float = 0.0


@contextmanager
def measure(name: str, phases: list[Phase]) -> Iterator[Phase]:
    """Wall time, client CPU (this thread) and sandbox CPU (all other threads) of a block."""
    phase = Phase(name)
    wall, proc, thread = time.perf_counter(), time.process_time(), time.thread_time()
    yield phase
    phase.wall_s = time.perf_counter() - wall
    phase.client_cpu_s = time.thread_time() - thread
    phase.server_cpu_s = max(0.0, time.process_time() - proc - phase.client_cpu_s)
    phase.peak_rss_mb = peak_rss_mb()
    phases.append(phase)


def params(i: int) -> dict[str, Any]:
    return {
        "model": MODEL,
        "max_tokens": 16,
        "messages": [{"role": "user", "content": f"hello sandbox number {i}"}],
    }


async def async_messages(base_url: str, n: int) -> None:
    """``n`` messages through the async client with CONCURRENCY requests in flight."""
    async with anthropic.AsyncAnthropic(
        base_url=base_url, api_key="bench", max_retries=0
    ) as client:
        pending = iter(range(n))
        done = 0

        async def worker() -> None:
            nonlocal done
            for i in pending:
                message = await client.messages.create(**params(i))
                assert message.content[0].text == f"hello sandbox number {i}", message
                done += 1

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    assert done == n, (done, n)


def sync_messages(client: anthropic.Anthropic, n: int) -> None:
    for i in range(n):
        message = client.messages.create(**params(i))
        assert message.content[0].text == f"hello sandbox number {i}", message


def size_label(n: int) -> str:
    """``100k`` for 100,000, ``2500`` for 2,500: the size in the last line's key."""
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def print_settings(requests: int, batch_size: int, settings: dict[str, Any]) -> None:
    from evalbatch.catalog.tokenizer import count_text

    prompt = count_text("hello sandbox number 99999")
    print(
        f"settings: {requests:,} messages async ({CONCURRENCY} in flight), {max(1, requests // 4):,}"
        f" sync (one at a time); one batch of {batch_size:,} requests; every request {MODEL}, "
        f"'hello sandbox number N' (about {prompt} tokens), max_tokens 16, no cache_control"
    )
    print(
        f"  anthropic {anthropic.__version__}, Python {platform.python_version()}, client and "
        f"sandbox in one process; {os.cpu_count()} cores shared with other jobs (wall times "
        "vary with their load)"
    )
    print(f"  sandbox /_sandbox/config: {json.dumps(settings, separators=(',', ':'))}")


def run(requests: int, batch_size: int) -> tuple[list[Phase], dict[str, Any]]:
    phases: list[Phase] = []
    server = SandboxServer(SandboxConfig(responder="echo", batch_latency=0.0)).start()
    try:
        base = server.base_url
        print_settings(requests, batch_size, server.settings())
        with anthropic.Anthropic(base_url=base, api_key="bench", max_retries=0) as warm:
            sync_messages(warm, 1)  # imports, first connection

        with measure(f"messages async x{CONCURRENCY}: {requests:,} requests", phases) as p:
            asyncio.run(async_messages(base, requests))
        p.rate = f"{requests / p.wall_s:,.0f} req/s"

        sync_n = max(1, requests // 4)
        with anthropic.Anthropic(base_url=base, api_key="bench", max_retries=0) as client:
            sync_messages(client, 1)
            with measure(f"messages sync x1: {sync_n:,} requests", phases) as p:
                sync_messages(client, sync_n)
        p.rate = f"{sync_n / p.wall_s:,.0f} req/s"

        items = [{"custom_id": f"r{i}", "params": params(i)} for i in range(batch_size)]
        with anthropic.Anthropic(
            base_url=base, api_key="bench", max_retries=0, timeout=600
        ) as client:
            with measure(f"batch {batch_size:,}: create", phases) as p:
                batch = client.messages.batches.create(requests=items)  # type: ignore[arg-type]
            p.rate = f"{batch_size / p.wall_s:,.0f} items/s"
            del items

            polls = 0
            with measure(f"batch {batch_size:,}: until ended", phases) as p:
                while batch.processing_status != "ended":
                    time.sleep(POLL_S)
                    batch = client.messages.batches.retrieve(batch.id)
                    polls += 1
            p.rate = f"{batch_size / p.wall_s:,.0f} items/s"
            counts = batch.request_counts
            assert counts.succeeded == batch_size, counts

            count = 0
            with measure(f"batch {batch_size:,}: stream results", phases) as p:
                for result in client.messages.batches.results(batch.id):
                    assert result.result.type == "succeeded", result
                    count += 1
            p.rate = f"{count / p.wall_s:,.0f} items/s"
            assert count == batch_size, (count, batch_size)
        stats = server.stats()
    finally:
        server.stop()
    return phases, {"polls": polls, "results": count, "stats": stats}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Sandbox throughput and memory via the SDK.")
    parser.add_argument(
        "--requests", type=int, default=2000, help="messages for the async rate (default 2000)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=100_000, help="requests in the batch (default 100000)"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.batch_size <= 100_000 or args.requests < 1:
        parser.error("--batch-size must be 1..100000 and --requests at least 1")

    phases, extra = run(args.requests, args.batch_size)
    msgs_per_s = args.requests / phases[0].wall_s
    batch_s = sum(p.wall_s for p in phases[2:5])
    peak = peak_rss_mb()

    header = f"{'phase':<40} {'wall s':>7} {'rate':>15} {'client cpu':>10} {'sandbox cpu':>11}"
    header += f" {'peak rss MB (both)':>18}"
    print(header)
    print("-" * len(header))
    for p in phases:
        print(
            f"{p.name:<40} {p.wall_s:>7.2f} {p.rate:>15} {p.client_cpu_s:>10.2f}"
            f" {p.server_cpu_s:>11.2f} {p.peak_rss_mb:>18.0f}"
        )
    print("-" * len(header))
    b = phases[2:5]
    print(
        f"{f'batch {args.batch_size:,}: total':<40} {batch_s:>7.2f} {'':>15}"
        f" {sum(p.client_cpu_s for p in b):>10.2f} {sum(p.server_cpu_s for p in b):>11.2f}"
        f" {peak:>18.0f}"
    )
    stats = extra["stats"]
    print(
        f"polls={extra['polls']} results={extra['results']:,}"
        f" server messages_served={stats.get('messages_served', 0):,}"
        f" items_succeeded={stats.get('items_succeeded', 0):,}"
    )
    if args.batch_size == 100_000:
        verdict = "met" if batch_s < TARGET_BATCH_S else "MISSED"
        print(f"target 100k batch end to end < {TARGET_BATCH_S:.0f} s: {verdict}")
    print(
        f"target peak RSS (client and sandbox together) < {TARGET_RSS_MB:.0f} MB: "
        f"{'met' if peak < TARGET_RSS_MB else 'MISSED'}"
    )
    print(
        f"sandbox: msgs_per_s={msgs_per_s:.0f} batch{size_label(args.batch_size)}_s={batch_s:.1f} "
        f"peak_rss_mb={peak:.0f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

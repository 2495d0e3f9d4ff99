"""The simulated prompt cache: entries per API key and exact prefix up to each breakpoint, with
TTLs, per-model minimums, commit-after-finish, and each entry's writer (for in-batch misses).
OpenAI's automatic prefix cache (openai_cache.py) keeps its entries here too."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..catalog.models import Catalog
from ..catalog.tokenizer import breakpoints, request_blocks

# Anthropic's breakpoint TTLs, and OpenAI's prompt_cache_retention ("24h" is its default).
TTL_SECONDS = {"5m": 300.0, "1h": 3600.0, "in_memory": 600.0, "24h": 86400.0}


@dataclass
class Accounting:
    input_tokens: int
    cache_read: int
    write_5m: int
    write_1h: int
    writes: list[tuple[bytes, str]]  # what to commit once the request finished
    missed_own: bool = False  # a live entry written by the item's own batch was not read

    def usage(self, output_tokens: int, tier: str) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": output_tokens,
            "cache_creation_input_tokens": self.write_5m + self.write_1h,
            "cache_read_input_tokens": self.cache_read,
            "cache_creation": {
                "ephemeral_5m_input_tokens": self.write_5m,
                "ephemeral_1h_input_tokens": self.write_1h,
            },
            "server_tool_use": None,
            "service_tier": tier,
            "inference_geo": "global",
        }


@dataclass(slots=True)
class Entry:
    expires_at: float
    ttl: float
    writer: str | None  # the batch whose item last wrote it; None for /v1/messages


class PromptCache:
    def __init__(self, catalog: Catalog, clock: Callable[[], float]) -> None:
        self._catalog = catalog
        self._clock = clock
        self._entries: dict[tuple[str, bytes], Entry] = {}

    def account(
        self, api_key: str, params: dict[str, Any], writer: str | None = None, read_own: bool = True
    ) -> Accounting:
        """Usage for a request, reading committed entries only (refreshing their TTL). With
        ``read_own`` false, entries last written by ``writer`` (the item's batch) are missed."""
        model = params["model"]
        blocks = request_blocks(params)
        total = sum(b.tokens for b in blocks)
        minimum = self._catalog.models[model].min_cache_tokens
        points = [p for p in breakpoints(model, blocks) if p.prefix_tokens >= minimum]
        now = self._clock()
        read = skipped = 0
        for point in points:
            found = self.read(api_key, point.key, now, writer, read_own)
            if found == "own":
                skipped = point.prefix_tokens
            elif found == "hit":
                read = point.prefix_tokens
        w5 = w1 = 0
        boundary = read
        writes = []
        for point in points:
            if point.prefix_tokens <= boundary:
                continue
            increment = point.prefix_tokens - boundary
            if point.ttl == "1h":
                w1 += increment
            else:
                w5 += increment
            boundary = point.prefix_tokens
            writes.append((point.key, point.ttl))
        return Accounting(total - boundary, read, w5, w1, writes, skipped > read)

    def read(self, api_key: str, key: bytes, now: float, writer: str | None, read_own: bool) -> str:
        """Look one prefix up: "hit" (its TTL refreshed), "own" (live, but written by
        ``writer``'s batch and ``read_own`` is false), or "miss". Callers hold the lock."""
        entry = self._entries.get((api_key, key))
        if entry is None or entry.expires_at <= now:
            return "miss"
        if not read_own and writer is not None and entry.writer == writer:
            return "own"
        entry.expires_at = now + entry.ttl
        return "hit"

    def commit(
        self, api_key: str, writes: list[tuple[bytes, str]], writer: str | None = None
    ) -> None:
        now = self._clock()
        for key, ttl in writes:
            seconds = TTL_SECONDS.get(ttl, 300.0)
            self._entries[(api_key, key)] = Entry(now + seconds, seconds, writer)

    def clear(self) -> None:
        self._entries.clear()

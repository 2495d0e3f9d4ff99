"""The simulated prompt cache: entries keyed by API key and exact prefix (tools -> system ->
messages) up to each breakpoint, with TTLs, per-model minimums, and entries usable only after
the request that created them finished."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..catalog.models import Catalog
from ..catalog.tokenizer import breakpoints, request_blocks

TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}


@dataclass
class Accounting:
    input_tokens: int
    cache_read: int
    write_5m: int
    write_1h: int
    writes: list[tuple[bytes, str]]  # what to commit once the request finished

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


class PromptCache:
    def __init__(self, catalog: Catalog, clock: Callable[[], float]) -> None:
        self._catalog = catalog
        self._clock = clock
        self._entries: dict[tuple[str, bytes], float] = {}  # -> expires_at
        self._ttls: dict[tuple[str, bytes], float] = {}

    def account(self, api_key: str, params: dict[str, Any]) -> Accounting:
        """Usage for a request, reading committed entries only (refreshing their TTL)."""
        model = params["model"]
        blocks = request_blocks(params)
        total = sum(b.tokens for b in blocks)
        minimum = self._catalog.models[model].min_cache_tokens
        points = [p for p in breakpoints(model, blocks) if p.prefix_tokens >= minimum]
        now = self._clock()
        read = 0
        for point in points:
            slot = (api_key, point.key)
            expires = self._entries.get(slot)
            if expires is not None and expires > now:
                read = point.prefix_tokens
                self._entries[slot] = now + self._ttls[slot]
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
        return Accounting(total - boundary, read, w5, w1, writes)

    def commit(self, api_key: str, writes: list[tuple[bytes, str]]) -> None:
        now = self._clock()
        for key, ttl in writes:
            seconds = TTL_SECONDS.get(ttl, 300.0)
            self._entries[(api_key, key)] = now + seconds
            self._ttls[(api_key, key)] = seconds

    def clear(self) -> None:
        self._entries.clear()
        self._ttls.clear()

"""Automatic prompt caching (OpenAI) as `plan` projects it: a prompt is cached at the model's
minimum length and at every step past it; a request reads the longest such prefix cached before.

No breakpoints and no write price: a prefix that is not read is plain input. Like `CacheModel`,
the best case lets every request read what any earlier one cached, the worst case lets a batch
item read only what was cached outside batches. Written apart from the sandbox's own cache
(`sandbox/openai_cache.py`), as an oracle; a test holds the two together.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Any

from ..catalog import Catalog
from ..catalog.tokenizer import token_ends
from ..records import Usage

Segment = tuple[str, str]  # (role, text), in the order the provider reads the prompt


@lru_cache(maxsize=256)
def _ends(text: str) -> tuple[int, ...]:
    return tuple(token_ends(text))  # a shared prefix comes back with every request


def _text(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [str(b.get("text", "")) for b in content if isinstance(b, dict)]
    return []


def segments(params: dict[str, Any]) -> list[Segment]:
    """A request body's prompt in reading order: the system prefix, then each message."""
    out: list[Segment] = []
    system = params.get("system")
    if system:
        out.append(("system", "\n\n".join(_text(system))))
    for message in params.get("messages") or []:
        out.extend((str(message.get("role", "")), text) for text in _text(message.get("content")))
    return out


def step_keys(model: str, parts: list[Segment], minimum: int, step: int) -> list[tuple[int, bytes]]:
    """(prefix tokens, key) at ``minimum`` tokens and every ``step`` after, up to the prompt's
    length; a key covers the model, the roles and the exact text through that token."""
    running = hashlib.sha256(model.encode())
    keys: list[tuple[int, bytes]] = []
    seen, target = 0, minimum
    for role, text in parts:
        running.update(role.encode() + b"\x00")
        ends = _ends(text)
        done = 0
        while step > 0 and target <= seen + len(ends):
            end = ends[target - seen - 1]
            running.update(text[done:end].encode())
            done = end
            keys.append((target, running.copy().digest()))
            target += step
        running.update(text[done:].encode() + b"\x01")
        seen += len(ends)
    return keys


class AutoCache:
    def __init__(self, catalog: Catalog, *, in_batch_reads: bool = True) -> None:
        self._catalog = catalog
        self._in_batch_reads = in_batch_reads
        self._seen: set[bytes] = set()

    def usage(
        self, params: dict[str, Any], input_total: int, output: int, *, batch_item: bool
    ) -> Usage:
        model = str(params["model"])
        info = self._catalog.model(model)
        keys = step_keys(model, segments(params), info.min_cache_tokens, info.cache_step_tokens)
        read = next((tokens for tokens, key in reversed(keys) if key in self._seen), 0)
        if self._in_batch_reads or not batch_item:
            self._seen.update(key for tokens, key in keys if tokens > read)
        return Usage(input_tokens=input_total - read, output_tokens=output, cache_read=read)

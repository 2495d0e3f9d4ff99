"""OpenAI's automatic prompt caching, simulated: a prompt's token stream is keyed at 1,024 tokens
and every 128 after; a request reads the longest such prefix already cached for its key and model.

The entries live in the shared `PromptCache` (same TTL, commit-after-finish and batch-writer
rules as the Anthropic side); only the keys differ: there are no markers, every step is one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson

from ..catalog.tokenizer import _TOKEN
from .cache import PromptCache
from .openai_models import CACHE_INCREMENT, OpenAIModel

Segment = tuple[str, str]  # (role, text) in prompt order


@lru_cache(maxsize=1024)
def _token_ends(text: str) -> tuple[int, ...]:
    # Shared system prompts come back with every request: their token ends are found once.
    return tuple(match.end() for match in _TOKEN.finditer(text))


def _part_text(part: Any) -> str:
    if isinstance(part, dict) and part.get("type") == "text":
        return str(part.get("text", ""))
    return orjson.dumps(part, option=orjson.OPT_SORT_KEYS).decode()


def prompt_segments(body: dict[str, Any]) -> list[Segment]:
    """The prompt as OpenAI caches it: tools first, then each message's content (each content
    part its own segment), each tagged with its role. Non-text parts count as their JSON."""
    segments: list[Segment] = []
    if body.get("tools"):
        segments.append(("tools", _part_text(body["tools"])))
    for message in body.get("messages") or []:
        role = str(message.get("role", ""))
        content = message.get("content")
        if isinstance(content, str):
            segments.append((role, content))
        elif isinstance(content, list):
            segments.extend((role, _part_text(part)) for part in content)
    return segments


def prompt_tokens(segments: list[Segment]) -> int:
    return sum(len(_token_ends(text)) for _, text in segments)


def prefix_keys(model: str, segments: list[Segment], minimum: int) -> list[tuple[int, bytes]]:
    """(prefix length in tokens, key) at ``minimum`` tokens and every CACHE_INCREMENT after,
    up to the prompt's length. A key covers the roles and the exact text through that token."""
    running = hashlib.blake2b(b"openai\x00" + model.encode(), digest_size=16)
    keys: list[tuple[int, bytes]] = []
    count, step = 0, minimum
    for role, text in segments:
        running.update(role.encode() + b"\x00")
        ends = _token_ends(text)
        done = 0
        while step <= count + len(ends):
            end = ends[step - count - 1]
            running.update(text[done:end].encode())
            done = end
            keys.append((step, running.digest()))
            step += CACHE_INCREMENT
        running.update(text[done:].encode() + b"\x01")
        count += len(ends)
    return keys


@dataclass
class PrefixAccounting:
    prompt_tokens: int
    cached_tokens: int
    writes: list[tuple[bytes, str]]  # to commit once the request finished
    written_tokens: int  # prompt tokens newly cached (for the stats; OpenAI does not report it)
    missed_own: bool  # a longer prefix its own batch wrote was not read (the hit-rate draw)


def account_prefix(
    cache: PromptCache,
    api_key: str,
    model: OpenAIModel,
    body: dict[str, Any],
    now: float,
    writer: str | None = None,
    read_own: bool = True,
) -> PrefixAccounting:
    """Read the longest cached prefix of the request; the caller holds the state lock."""
    segments = prompt_segments(body)
    total = prompt_tokens(segments)
    keys = prefix_keys(model.name, segments, model.min_cache_tokens)
    cached = skipped = 0
    for tokens, key in reversed(keys):
        found = cache.read(api_key, key, now, writer, read_own)
        if found == "hit":
            cached = tokens
            break
        if found == "own" and not skipped:
            skipped = tokens
    retention = "in_memory" if body.get("prompt_cache_retention") == "in_memory" else "24h"
    writes = [(key, retention) for tokens, key in keys if tokens > cached]
    written = keys[-1][0] - cached if writes else 0
    return PrefixAccounting(total, cached, writes, written, skipped > cached)

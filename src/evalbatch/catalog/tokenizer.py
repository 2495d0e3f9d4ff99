"""The approximate, deterministic tokenizer shared by the sandbox and `plan`.

A token is a run of up to 4 word characters, or one punctuation/symbol character; whitespace is
free. English prose comes out near the real tokenizers' ~4 characters per token. A request is
flattened into blocks in the API's cache-prefix order (tools -> system -> messages); the sum of the
blocks' tokens is the request's input tokens, and a cache breakpoint covers every block up to and
including the one that carries `cache_control`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson

_TOKEN = re.compile(r"\w{1,4}|[^\w\s]")


def count_text(text: str) -> int:
    """Tokens in a piece of text."""
    return len(_TOKEN.findall(text))


def token_ends(text: str) -> list[int]:
    """Where each token of ``text`` ends (character offsets): a prefix of N tokens is
    ``text[:ends[N - 1]]``."""
    return [match.end() for match in _TOKEN.finditer(text)]


class Block:
    """One content block of a request, in prefix order. Its digest (sha256 of the canonical
    content, cache_control excluded) is computed only when a breakpoint needs it: most requests
    have none, and counting tokens must stay cheap."""

    __slots__ = ("where", "tokens", "cache_ttl", "_content", "_role", "_digest")

    def __init__(self, where: str, tokens: int, cache_ttl: str | None, content: Any, role: str):
        self.where = where  # "tools[0]", "system[0]", "messages[2].content[0]"
        self.tokens = tokens
        self.cache_ttl = cache_ttl  # "5m" / "1h" when the block carries a breakpoint
        self._content = content
        self._role = role
        self._digest: bytes | None = None

    @property
    def digest(self) -> bytes:
        if self._digest is None:
            c = self._content
            payload = c.encode() if isinstance(c, str) else _canonical(c)
            self._digest = hashlib.sha256(self._role.encode() + b"\x00" + payload).digest()
        return self._digest


def _canonical(value: Any) -> bytes:
    if isinstance(value, dict):
        value = {k: v for k, v in value.items() if k != "cache_control"}
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _ttl(block: Any) -> str | None:
    if isinstance(block, dict) and isinstance(block.get("cache_control"), dict):
        return str(block["cache_control"].get("ttl", "5m"))
    return None


@lru_cache(maxsize=1024)
def _count_shared(text: str) -> int:
    """A system block recurs in every request of its step (a shared prefix): count it once."""
    return count_text(text)


def _block_tokens(block: Any, count: Callable[[str], int] = count_text) -> int:
    if isinstance(block, str):
        return count(block)
    if isinstance(block, dict) and block.get("type") == "text":
        return count(str(block.get("text", "")))
    # tools, images, tool_use...: count their JSON text
    return count_text(_canonical(block).decode())


def _make(where: str, block: Any, prefix_role: str = "") -> Block:
    count = _count_shared if prefix_role == "system" else count_text
    return Block(where, _block_tokens(block, count), _ttl(block), block, prefix_role)


def request_blocks(params: dict[str, Any]) -> list[Block]:
    """Flatten a Messages request body into blocks, tools -> system -> messages."""
    blocks: list[Block] = []
    for i, tool in enumerate(params.get("tools") or []):
        blocks.append(_make(f"tools[{i}]", tool, "tool"))
    system = params.get("system")
    if isinstance(system, str):
        if system:
            blocks.append(_make("system[0]", system, "system"))
    elif isinstance(system, list):
        for i, block in enumerate(system):
            blocks.append(_make(f"system[{i}]", block, "system"))
    for m, message in enumerate(params.get("messages") or []):
        role = str(message.get("role", "")) if isinstance(message, dict) else ""
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            blocks.append(_make(f"messages[{m}].content", content, role))
        elif isinstance(content, list):
            for i, block in enumerate(content):
                blocks.append(_make(f"messages[{m}].content[{i}]", block, role))
    return blocks


def count_request(params: dict[str, Any]) -> int:
    """Input tokens of a Messages request (what count_tokens answers)."""
    return sum(b.tokens for b in request_blocks(params))


def count_messages(messages: list[dict[str, Any]]) -> int:
    """Input tokens of a request's messages alone: ``count_request({"messages": messages})``
    without building its blocks when every message is plain text (what planning sends)."""
    total = 0
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, str):
            return count_request({"messages": messages})
        total += count_text(content)
    return total


@dataclass(frozen=True)
class Breakpoint:
    """A cache breakpoint: the prefix through block ``index``."""

    index: int
    prefix_tokens: int  # tokens from the start through this block
    key: bytes  # sha256 over the model and every block digest through this block
    ttl: str


def breakpoints(model: str, blocks: list[Block]) -> list[Breakpoint]:
    """The request's breakpoints in order, each keyed by its exact prefix."""
    out: list[Breakpoint] = []
    marked = [i for i, block in enumerate(blocks) if block.cache_ttl is not None]
    if not marked:
        return out  # most requests have none: no digest to compute
    running = hashlib.sha256(model.encode())
    total = 0
    for i, block in enumerate(blocks[: marked[-1] + 1]):
        running.update(block.digest)
        total += block.tokens
        if block.cache_ttl is not None:
            out.append(Breakpoint(i, total, running.copy().digest(), block.cache_ttl))
    return out

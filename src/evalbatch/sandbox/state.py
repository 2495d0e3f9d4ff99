"""The sandbox's shared state: answering one Messages request (responder, tokenizer, cache),
rate-limit buckets, fault draws and the counters served at /_sandbox/stats."""

from __future__ import annotations

import fnmatch
import math
import random
import secrets
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

from ..catalog.models import load_catalog
from ..catalog.tokenizer import _TOKEN, count_request
from .cache import PromptCache
from .config import RateLimit, SandboxConfig
from .responders import load_responder


def new_id(prefix: str) -> str:
    return f"{prefix}_01{secrets.token_hex(11)}"


def cut_to_tokens(text: str, limit: int) -> tuple[str, bool]:
    """Cut ``text`` after its ``limit``-th token; returns (text, was_cut)."""
    for i, match in enumerate(_TOKEN.finditer(text), start=1):
        if i == limit:
            end = match.end()
            rest = text[end:]
            return text[:end], bool(_TOKEN.search(rest))
    return text, False


@dataclass
class Bucket:
    capacity: float
    tokens: float
    updated: float

    def refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.capacity / 60.0)
        self.updated = now

    def wait_for(self, amount: float) -> float:
        if amount <= self.tokens:
            return 0.0
        return (amount - self.tokens) * 60.0 / self.capacity


class SandboxState:
    def __init__(self, config: SandboxConfig) -> None:
        config.check()
        self.config = config
        self.catalog = load_catalog()
        self.cache = PromptCache(self.catalog, config.clock)
        self.rng = random.Random(config.seed)
        self.lock = threading.RLock()
        self.stats: Counter[str] = Counter()
        self.responder = load_responder(config.responder, config.seed, self.count)
        self.fault_script = list(config.faults.script)
        self._buckets: dict[tuple[str, str], Bucket] = {}

    def count(self, counter: str) -> None:
        with self.lock:
            self.stats[counter] += 1

    # -- answering ----------------------------------------------------------------------------
    def reply(self, params: dict[str, Any]) -> tuple[str, str, str | None]:
        """The responder's text for a request in the Messages shape, cut at the first of its
        ``stop_sequences`` and at ``max_tokens``: (text, stop_reason, stop_sequence). Both the
        Anthropic and the OpenAI endpoints answer through here."""
        reply = self.responder(params)
        stop_reason = "end_turn"
        stop_sequence = None
        if isinstance(reply, dict):
            text = str(reply.get("text", ""))
            stop_reason = str(reply.get("stop_reason", stop_reason))
        else:
            text = "" if reply is None else str(reply)
        for seq in params.get("stop_sequences") or []:
            at = text.find(seq)
            if at >= 0:
                text, stop_reason, stop_sequence = text[:at], "stop_sequence", seq
        text, cut = cut_to_tokens(text, int(params["max_tokens"]))
        if cut:
            stop_reason, stop_sequence = "max_tokens", None
        return text, stop_reason, stop_sequence

    def answer(
        self,
        params: dict[str, Any],
        api_key: str,
        tier: str,
        writer: str | None = None,
        read_own: bool = True,
    ) -> dict[str, Any]:
        """A full Message for a valid request. Cache entries it writes are committed by the
        caller once the request finished (see ``commit``). A batch item passes its batch id as
        ``writer``, and ``read_own=False`` when it is to miss entries its batch wrote."""
        text, stop_reason, stop_sequence = self.reply(params)
        with self.lock:
            accounting = self.cache.account(api_key, params, writer, read_own)
        output_tokens = len(_TOKEN.findall(text))
        message = {
            "id": new_id("msg"),
            "type": "message",
            "role": "assistant",
            "model": params["model"],
            "content": [{"type": "text", "text": text}],
            "stop_reason": stop_reason,
            "stop_sequence": stop_sequence,
            "usage": accounting.usage(output_tokens, tier),
        }
        return {
            "message": message,
            "writes": accounting.writes,
            "read": accounting.cache_read,
            "written": accounting.write_5m + accounting.write_1h,
            "writer": writer,
            "missed_own": accounting.missed_own,
        }

    def commit(self, api_key: str, answered: dict[str, Any]) -> None:
        """Make a finished request's cache writes readable and count its reads and writes
        (an OpenAI answer carries ``stats_prefix`` "openai_", so the two sides count apart)."""
        prefix = answered.get("stats_prefix", "")
        with self.lock:
            self.cache.commit(api_key, answered["writes"], answered["writer"])
            if answered["missed_own"]:
                self.stats[f"{prefix}batch_cache_misses"] += 1
            if answered["read"]:
                self.stats[f"{prefix}cache_reads"] += 1
                self.stats[f"{prefix}cache_read_tokens"] += answered["read"]
            if answered["written"]:
                self.stats[f"{prefix}cache_writes"] += 1
                self.stats[f"{prefix}cache_write_tokens"] += answered["written"]

    # -- faults -------------------------------------------------------------------------------
    def draw_fault(self, endpoint: str) -> int | None:
        """An HTTP status to fail this request with (0 = drop the connection), or None."""
        faults = self.config.faults
        if endpoint not in faults.endpoints:
            return None
        with self.lock:
            if self.fault_script:
                return self.fault_script.pop(0)
            for status, rate in (
                (429, faults.rate_429),
                (500, faults.rate_500),
                (529, faults.rate_529),
                (0, faults.rate_drop),
            ):
                if rate and self.rng.random() < rate:
                    return status
        return None

    # -- rate limits --------------------------------------------------------------------------
    def limit_for(self, model: str) -> RateLimit | None:
        for limit in self.config.rate_limits:
            if fnmatch.fnmatchcase(model, limit.model):
                return limit
        return None

    def _bucket(self, model: str, kind: str, capacity: int, now: float) -> Bucket:
        key = (model, kind)
        if key not in self._buckets:
            self._buckets[key] = Bucket(float(capacity), float(capacity), now)
        bucket = self._buckets[key]
        bucket.refill(now)
        return bucket

    def take(self, params: dict[str, Any]) -> tuple[float, dict[str, str]]:
        """Charge the model's buckets; returns (seconds to wait if refused, rate-limit headers)."""
        model = str(params.get("model"))
        limit = self.limit_for(model)
        if limit is None:
            return 0.0, {}
        wait, buckets, now = self.charge(
            model,
            {
                "requests": (limit.rpm, 1.0),
                "input-tokens": (limit.itpm, float(count_request(params))),
                "output-tokens": (limit.otpm, 0.0),
            },
        )
        with self.lock:
            return wait, _headers(buckets, now)

    def charge(
        self, model: str, need: dict[str, tuple[int | None, float]]
    ) -> tuple[float, dict[str, Bucket], float]:
        """Take ``amount`` from each configured bucket ``kind: (capacity, amount)`` of the model,
        all or none; returns (seconds to wait if refused, the buckets, now)."""
        now = self.config.clock()
        with self.lock:
            buckets = {
                kind: self._bucket(model, kind, cap, now) for kind, (cap, _) in need.items() if cap
            }
            wait = max((b.wait_for(need[k][1]) for k, b in buckets.items()), default=0.0)
            if wait <= 0:
                for kind, bucket in buckets.items():
                    bucket.tokens -= need[kind][1]
        return wait, buckets, now

    def charge_output(self, model: str, tokens: int) -> None:
        limit = self.limit_for(model)
        if limit is None or not limit.otpm:
            return
        with self.lock:
            self._bucket(model, "output-tokens", limit.otpm, self.config.clock()).tokens -= tokens


def _headers(buckets: dict[str, Bucket], now: float) -> dict[str, str]:
    from datetime import UTC, datetime

    headers = {}
    for kind, bucket in buckets.items():
        missing = bucket.capacity - max(bucket.tokens, 0.0)
        reset = datetime.fromtimestamp(now + missing * 60.0 / bucket.capacity, UTC)
        headers[f"anthropic-ratelimit-{kind}-limit"] = str(int(bucket.capacity))
        remaining = max(0, math.floor(bucket.tokens))
        if kind != "requests":
            remaining = int(round(remaining, -3)) if remaining >= 1000 else remaining
        headers[f"anthropic-ratelimit-{kind}-remaining"] = str(remaining)
        headers[f"anthropic-ratelimit-{kind}-reset"] = reset.isoformat().replace("+00:00", "Z")
    tokens = [k for k in ("input-tokens", "output-tokens") if k in buckets]
    if tokens:
        tightest = min(tokens, key=lambda k: buckets[k].tokens / buckets[k].capacity)
        for part in ("limit", "remaining", "reset"):
            headers[f"anthropic-ratelimit-tokens-{part}"] = headers[
                f"anthropic-ratelimit-{tightest}-{part}"
            ]
    return headers

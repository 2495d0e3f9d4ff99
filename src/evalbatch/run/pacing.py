"""Pacing the sync path: per model, a client-side token bucket seeded from the provider's
rate-limit headers and paused by its retry-after, shared by every worker; and an adaptive
concurrency limit (AIMD: halve on a refusal, grow by one over a window of successes).

The aim is the provider's allowed rate with few refusals: a 429 is never a case result, but each
one is a wasted round trip and a hint that the pacing is off.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ..records import RateLimits

_MIN_WAIT = 0.01


class Bucket:
    """One rate-limit bucket (requests, or input tokens) as the client sees it: the provider's
    last reading of what remains, refilled at limit/60 per second, minus what we sent since."""

    def __init__(self) -> None:
        self.limit: int | None = None
        self.tokens = 0.0
        self.updated = 0.0

    def observe(self, limit: int, remaining: int, now: float) -> None:
        self.limit = limit
        self.tokens = float(remaining)
        self.updated = now

    def wait_for(self, cost: float, now: float) -> float:
        """Seconds until ``cost`` fits; 0 when it fits now (and then it is taken)."""
        if self.limit is None or self.limit <= 0:
            return 0.0
        rate = self.limit / 60.0
        self.tokens = min(float(self.limit), self.tokens + (now - self.updated) * rate)
        self.updated = now
        cost = min(cost, float(self.limit))  # one request larger than the bucket still goes
        if self.tokens >= cost:
            self.tokens -= cost
            return 0.0
        return (cost - self.tokens) / rate


class ModelPacer:
    """Every worker sending to one model waits here first."""

    def __init__(self) -> None:
        self.buckets = {"requests": Bucket(), "input_tokens": Bucket()}
        self.paused_until = 0.0
        self._lock = asyncio.Lock()

    def observe(self, limits: RateLimits | None) -> None:
        if limits is None:
            return
        now = time.monotonic()
        for name, (limit, remaining) in limits.buckets.items():
            if name in self.buckets:
                self.buckets[name].observe(limit, remaining, now)

    def pause(self, seconds: float) -> None:
        """The provider refused: nobody sends to this model for ``seconds``."""
        self.paused_until = max(self.paused_until, time.monotonic() + seconds)
        for bucket in self.buckets.values():
            bucket.tokens = min(bucket.tokens, 0.0)

    async def acquire(self, input_tokens: int) -> None:
        async with self._lock:  # one worker at a time takes from the buckets, in order
            while True:
                now = time.monotonic()
                wait = self.paused_until - now
                if wait <= 0:
                    wait = self.buckets["requests"].wait_for(1, now)
                if wait <= 0:
                    wait = self.buckets["input_tokens"].wait_for(input_tokens, now)
                    if wait > 0:  # give the request token back: we did not send
                        self.buckets["requests"].tokens += 1
                if wait <= 0:
                    return
                await asyncio.sleep(max(wait, _MIN_WAIT))


class AdaptiveLimit:
    """How many requests may be in flight: starts at ``ceiling``, halves on a refusal (at most
    once per in-flight window), and grows by one after ``current`` successes in a row."""

    def __init__(self, ceiling: int) -> None:
        self.ceiling = max(1, ceiling)
        self.current = float(self.ceiling)
        self.in_flight = 0
        self._changed = asyncio.Condition()
        self._last_cut = 0.0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._changed:
            await self._changed.wait_for(lambda: self.in_flight < int(self.current))
            self.in_flight += 1
        try:
            yield
        finally:
            async with self._changed:
                self.in_flight -= 1
                self._changed.notify_all()

    def succeeded(self) -> None:
        self.current = min(float(self.ceiling), self.current + 1.0 / self.current)

    def refused(self) -> None:
        now = time.monotonic()
        if now - self._last_cut < 1.0:  # one cut per burst of refusals, not one per request
            return
        self._last_cut = now
        self.current = max(1.0, self.current / 2.0)

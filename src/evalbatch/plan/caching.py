"""Where cache breakpoints go: on the shared system prefix, with the TTL the mode calls for, and
only where the prefix reaches the model's minimum cacheable length. A model whose provider caches
automatically (OpenAI) gets none: it caches every long enough prompt by itself."""

from __future__ import annotations

from typing import Any

from ..catalog.models import Catalog


def cache_ttl(mode: str, cache: Any) -> str | None:
    """The TTL for this run's breakpoints, or None when caching is off.

    Batch uses 1h: a batch can take longer than 5 minutes, and 5m entries would expire between
    the items that share them."""
    if cache.mode == "off":
        return None
    if cache.ttl:
        return str(cache.ttl)
    return "1h" if mode == "batch" else "5m"


def with_breakpoint(
    system: list[dict[str, Any]] | None,
    prefix_tokens: int,
    model: str,
    ttl: str | None,
    catalog: Catalog,
) -> list[dict[str, Any]] | None:
    """The system blocks, with a breakpoint on the last one when it is worth caching."""
    if not system:
        return None
    info = catalog.model(model)
    if ttl is None or info.caches_automatically or prefix_tokens < info.min_cache_tokens:
        return system
    marked = [dict(block) for block in system]
    marked[-1]["cache_control"] = {"type": "ephemeral", "ttl": ttl}
    return marked


WARM_MESSAGE = "Reply with OK."


def warm_body(params: dict[str, Any]) -> dict[str, Any]:
    """The one cheap synchronous request that writes a request's prefix into the cache."""
    return {
        "model": params["model"],
        "max_tokens": 1,
        "system": params["system"],
        "messages": [{"role": "user", "content": WARM_MESSAGE}],
    }

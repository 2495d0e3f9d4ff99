"""Providers behind one protocol; only this package imports a provider SDK."""

from __future__ import annotations

from ..records import BatchInfo
from .base import Provider

__all__ = ["BatchInfo", "Provider", "open_provider"]


def open_provider(
    name: str = "anthropic", *, base_url: str | None = None, api_key: str | None = None
) -> Provider:
    from .anthropic import AnthropicProvider

    if name != "anthropic":
        from ..errors import ConfigError

        raise ConfigError(f"unknown provider {name!r} (available: anthropic)")
    return AnthropicProvider(base_url=base_url, api_key=api_key)

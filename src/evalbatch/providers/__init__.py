"""Providers behind one protocol; only this package imports a provider SDK."""

from __future__ import annotations

from ..records import BatchInfo
from .base import DEFAULT_PROVIDER, Provider, ProviderFactory

__all__ = ["BatchInfo", "Provider", "ProviderFactory", "open_provider", "PROVIDERS", "api_base_url"]

PROVIDERS = ("anthropic", "openai")


def open_provider(
    name: str = DEFAULT_PROVIDER, *, base_url: str | None = None, api_key: str | None = None
) -> Provider:
    """The provider ``name`` on its official SDK. Without ``base_url`` and ``api_key`` each
    reads its own environment: ANTHROPIC_BASE_URL / ANTHROPIC_API_KEY, OPENAI_BASE_URL /
    OPENAI_API_KEY (MissingCredentials when the key is missing)."""
    if name == "anthropic":
        from .anthropic import AnthropicProvider

        return AnthropicProvider(base_url=base_url, api_key=api_key)
    if name == "openai":
        from .openai import OpenAIProvider

        return OpenAIProvider(base_url=base_url, api_key=api_key)
    from ..errors import ConfigError

    raise ConfigError(f"unknown provider {name!r} (available: {', '.join(PROVIDERS)})")


def api_base_url(name: str, root: str) -> str:
    """A provider's SDK base URL on a server that speaks both APIs at one root (the sandbox):
    the OpenAI SDK's base URL ends in /v1, the Anthropic SDK's does not."""
    return f"{root.rstrip('/')}/v1" if name == "openai" else root

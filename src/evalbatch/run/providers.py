"""Which provider serves a request: the catalog names each model's provider, and a pool opens
each provider once, when a run first needs it (a suite on one vendor never opens the other)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..catalog import Catalog
from ..providers.base import DEFAULT_PROVIDER, Provider


class ProviderPool:
    """The providers of one run or sweep, opened lazily through ``factory``.

    ``factory`` takes a provider name; a factory that knows only the default provider may take
    none (as before mixed-vendor runs), and is then called without one for it."""

    def __init__(self, factory: Callable[..., Provider], catalog: Catalog) -> None:
        self._factory = factory
        self._catalog = catalog
        self._open: dict[str, Provider] = {}

    def named(self, name: str = DEFAULT_PROVIDER) -> Provider:
        provider = self._open.get(name)
        if provider is None:
            provider = self._factory() if name == DEFAULT_PROVIDER else self._factory(name)
            self._open[name] = provider
        return provider

    def for_model(self, model_id: str) -> Provider:
        return self.named(self._catalog.provider_of(model_id))

    def provider_of(self, model_id: str) -> str:
        return self._catalog.provider_of(model_id)

    def count_tokens(self, params: dict[str, Any]) -> int:
        """A request's input tokens, counted by its model's provider (`plan --count-tokens api`)."""
        return self.for_model(str(params["model"])).count_tokens(params)

    def opened(self) -> list[Provider]:
        return list(self._open.values())

    async def aclose(self) -> None:
        """Close the async clients the sync path opened (each provider's, when it has one)."""
        for provider in self.opened():
            aclose: Any = getattr(provider, "aclose", None)
            if aclose is not None:
                await aclose()

    def close(self) -> None:
        for provider in self._open.values():
            provider.close()
        self._open.clear()

"""Cost from usage, and the counterfactuals every report shows (sync rate, no cache, no
routing, naive), plus a Ledger that sums them by key. Rates come from the catalog, never code.

One formula serves both providers: OpenAI's usage has no cache writes (its automatic cache
charges nothing to write: a prefix not read is plain input), and its price table lists write
rates equal to input, so no write premium can appear; its cached input is `cache_read`."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

from ..records import Usage
from .models import Catalog, ModelPrices, PriceBand, load_catalog

_PER_MILLION = 1_000_000.0


@dataclass(frozen=True)
class Cost:
    """USD, split by token bucket; ``cache_write`` holds the 5m and 1h writes together."""

    input: float
    output: float
    cache_write: float
    cache_read: float

    @property
    def total(self) -> float:
        return self.input + self.output + self.cache_write + self.cache_read


@dataclass(frozen=True)
class Counterfactuals:
    """USD for one result: what it cost, and what the same tokens would have cost otherwise.

    ``sync``: same model and cache, synchronous rates. ``no_cache``: same mode, cache reads and
    writes priced as plain input (can be *below* ``actual`` when a request only wrote the
    cache, since a write costs more than input). ``no_routing``: same mode and cache on the
    strongest model (an estimate: the same token counts). ``naive``: sync, no cache, strongest.
    """

    actual: float
    sync: float
    no_cache: float
    no_routing: float
    naive: float


def _components(usage: Usage, band: PriceBand) -> tuple[float, float, float, float]:
    """Sync USD per bucket: (input, output, cache_write, cache_read)."""
    return (
        usage.input_tokens * band.input / _PER_MILLION,
        usage.output_tokens * band.output / _PER_MILLION,
        (usage.cache_write_5m * band.cache_write_5m + usage.cache_write_1h * band.cache_write_1h)
        / _PER_MILLION,
        usage.cache_read * band.cache_read / _PER_MILLION,
    )


def _total(parts: tuple[float, float, float, float], factor: float) -> float:
    # Scale each part before summing, exactly as price_usage builds its Cost, so that
    # counterfactuals().actual == price_usage().total to the last bit for any discount.
    if factor == 1.0:
        return parts[0] + parts[1] + parts[2] + parts[3]
    return parts[0] * factor + parts[1] * factor + parts[2] * factor + parts[3] * factor


def _uncached_total(usage: Usage, prompt_tokens: int, band: PriceBand, factor: float) -> float:
    """Every prompt token at the plain input rate; the band stays the one the prompt chose."""
    parts = (
        prompt_tokens * band.input / _PER_MILLION,
        usage.output_tokens * band.output / _PER_MILLION,
        0.0,
        0.0,
    )
    return _total(parts, factor)


def price_usage(usage: Usage, model: str, *, batch: bool, catalog: Catalog | None = None) -> Cost:
    """The cost of one result of ``model`` (alias or id; ConfigError when it has no prices).

    The band is chosen by every prompt token (input + cache writes + cache reads) and applies to
    the whole request, output included (Haiku 5.5 above 100K). 5m and 1h writes are priced from
    their own rates. Batch scales the sync figure by ``catalog.batch_discount``; with the usual
    0.5 that is exact in floating point, so a batch cost is exactly half the sync cost.
    """
    catalog = load_catalog() if catalog is None else catalog
    band = catalog.prices_for(model).band_for(usage.prompt_tokens)
    inp, out, write, read = _components(usage, band)
    if not batch:
        return Cost(inp, out, write, read)
    d = catalog.batch_discount
    return Cost(inp * d, out * d, write * d, read * d)


def _figures(
    usage: Usage, prices: ModelPrices, strongest: ModelPrices, factor: float
) -> tuple[float, float, float, float, float]:
    """(actual, sync, no_cache, no_routing, naive) in USD; ``factor`` is 1 or the discount."""
    prompt = usage.prompt_tokens
    band = prices.band_for(prompt)
    top = strongest.band_for(prompt)
    parts = _components(usage, band)
    return (
        _total(parts, factor),
        _total(parts, 1.0),
        _uncached_total(usage, prompt, band, factor),
        _total(_components(usage, top), factor),
        _uncached_total(usage, prompt, top, 1.0),
    )


def counterfactuals(
    usage: Usage, model: str, *, batch: bool, strongest: str, catalog: Catalog | None = None
) -> Counterfactuals:
    """What one result cost, and what it would have cost synchronously, without the cache,
    on the ``strongest`` model, and all three at once (see Counterfactuals)."""
    catalog = load_catalog() if catalog is None else catalog
    factor = catalog.batch_discount if batch else 1.0
    return Counterfactuals(
        *_figures(usage, catalog.prices_for(model), catalog.prices_for(strongest), factor)
    )


@dataclass(frozen=True)
class LedgerRow:
    """Tokens and USD summed over the results added under one key (``None`` for the totals)."""

    key: Hashable
    requests: int
    input_tokens: int
    output_tokens: int
    cache_write_tokens: int
    cache_read_tokens: int
    actual: float
    sync: float
    no_cache: float
    no_routing: float
    naive: float

    @property
    def counterfactuals(self) -> Counterfactuals:
        return Counterfactuals(self.actual, self.sync, self.no_cache, self.no_routing, self.naive)


class Ledger:
    """Sums usage and counterfactual costs by key, e.g. ``(step, model, mode)``.

    Built for hot loops (one ``add`` per result): prices are looked up once per model and the
    running sums are plain lists, not dataclasses.
    """

    def __init__(self, catalog: Catalog | None = None) -> None:
        self._catalog = load_catalog() if catalog is None else catalog
        self._prices: dict[str, ModelPrices] = {}
        self._sums: dict[Hashable, list[float]] = {}

    def _prices_for(self, model: str) -> ModelPrices:
        prices = self._prices.get(model)
        if prices is None:
            prices = self._prices[model] = self._catalog.prices_for(model)
        return prices

    def add(self, key: Hashable, usage: Usage, model: str, *, batch: bool, strongest: str) -> None:
        """Add one result's usage of ``model`` under ``key``."""
        factor = self._catalog.batch_discount if batch else 1.0
        figures = _figures(usage, self._prices_for(model), self._prices_for(strongest), factor)
        sums = self._sums.get(key)
        if sums is None:
            sums = self._sums[key] = [0] * 10
        sums[0] += 1
        sums[1] += usage.input_tokens
        sums[2] += usage.output_tokens
        sums[3] += usage.cache_write_5m + usage.cache_write_1h
        sums[4] += usage.cache_read
        sums[5] += figures[0]
        sums[6] += figures[1]
        sums[7] += figures[2]
        sums[8] += figures[3]
        sums[9] += figures[4]

    def __len__(self) -> int:
        return len(self._sums)

    def rows(self) -> list[LedgerRow]:
        """One row per key, in the order the keys were first added."""
        return [_row(key, sums) for key, sums in self._sums.items()]

    def totals(self) -> LedgerRow:
        """Every key summed; ``key`` is None."""
        sums: list[float] = [0] * 10
        for row_sums in self._sums.values():
            for i, value in enumerate(row_sums):
                sums[i] += value
        return _row(None, sums)


def _row(key: Hashable, s: list[float]) -> LedgerRow:
    return LedgerRow(
        key,
        int(s[0]),
        int(s[1]),
        int(s[2]),
        int(s[3]),
        int(s[4]),
        float(s[5]),
        float(s[6]),
        float(s[7]),
        float(s[8]),
        float(s[9]),
    )

"""Cost from usage, and the counterfactuals every report shows (sync rate, no cache, no
routing, naive). Prices come from the catalog; nothing here names a model or a rate."""

from __future__ import annotations

from dataclasses import dataclass

from .catalog import Catalog, load_catalog
from .records import Usage

_M = 1_000_000.0


@dataclass(frozen=True)
class Cost:
    """USD, split by token bucket."""

    input: float
    output: float
    cache_write: float
    cache_read: float

    @property
    def total(self) -> float:
        return self.input + self.output + self.cache_write + self.cache_read


@dataclass(frozen=True)
class Counterfactuals:
    actual: float
    sync: float
    no_cache: float
    no_routing: float
    naive: float


def price_usage(usage: Usage, model: str, *, batch: bool, catalog: Catalog | None = None) -> Cost:
    """The cost of one result. The band (e.g. Haiku 5.5 above 100K prompt tokens) applies to the
    whole request; batch is the sync figure times the discount, so it is exactly half."""
    catalog = catalog or load_catalog()
    band = catalog.prices_for(model).band_for(usage.prompt_tokens)
    cost = Cost(
        input=usage.input_tokens * band.input / _M,
        output=usage.output_tokens * band.output / _M,
        cache_write=(usage.cache_write_5m * band.cache_write_5m
                     + usage.cache_write_1h * band.cache_write_1h) / _M,
        cache_read=usage.cache_read * band.cache_read / _M,
    )
    if not batch:
        return cost
    d = catalog.batch_discount
    return Cost(cost.input * d, cost.output * d, cost.cache_write * d, cost.cache_read * d)


def _uncached(usage: Usage) -> Usage:
    """The same tokens with cache reads and writes priced as plain input."""
    return Usage(input_tokens=usage.prompt_tokens, output_tokens=usage.output_tokens)


def counterfactuals(usage: Usage, model: str, *, batch: bool, strongest: str,
                    catalog: Catalog | None = None) -> Counterfactuals:
    catalog = catalog or load_catalog()
    return Counterfactuals(
        actual=price_usage(usage, model, batch=batch, catalog=catalog).total,
        sync=price_usage(usage, model, batch=False, catalog=catalog).total,
        no_cache=price_usage(_uncached(usage), model, batch=batch, catalog=catalog).total,
        no_routing=price_usage(usage, strongest, batch=batch, catalog=catalog).total,
        naive=price_usage(_uncached(usage), strongest, batch=False, catalog=catalog).total,
    )

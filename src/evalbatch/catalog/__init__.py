"""What evalbatch knows about models: ids and aliases, prices, provider limits (data/*.toml),
and how requests count in tokens. Loaded once; nothing else names a model id or a price."""

from .models import Catalog, ModelInfo, ModelPrices, PriceBand, load_catalog

__all__ = ["Catalog", "ModelInfo", "ModelPrices", "PriceBand", "load_catalog"]

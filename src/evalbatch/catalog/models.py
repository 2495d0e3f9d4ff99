"""The models table and the price table, loaded once from data/*.toml (or user overrides).

Aliases resolve to exact snapshot ids here; nothing else in the code base names a model id.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from ..errors import ConfigError

# How a model's provider caches prompts: at the breakpoints a request marks (Anthropic), or by
# itself, on every prompt long enough, in steps past the minimum (OpenAI).
PromptCache = Literal["breakpoints", "automatic"]


@dataclass(frozen=True)
class ModelInfo:
    id: str
    provider: str
    strength: int
    min_cache_tokens: int
    max_output_tokens: int
    context_tokens: int
    prompt_cache: PromptCache = "breakpoints"
    cache_step_tokens: int = 0  # automatic caching: cached prefixes grow in steps of this many

    @property
    def caches_automatically(self) -> bool:
        return self.prompt_cache == "automatic"


@dataclass(frozen=True)
class PriceBand:
    """USD per million tokens. ``above_prompt_tokens`` is 0 for the base band."""

    above_prompt_tokens: int
    input: float
    output: float
    cache_write_5m: float
    cache_write_1h: float
    cache_read: float


@dataclass(frozen=True)
class ModelPrices:
    model: str
    bands: tuple[PriceBand, ...]  # ascending by above_prompt_tokens; bands[0] is the base

    def band_for(self, prompt_tokens: int) -> PriceBand:
        chosen = self.bands[0]
        for band in self.bands[1:]:
            if prompt_tokens > band.above_prompt_tokens:
                chosen = band
        return chosen


@dataclass(frozen=True)
class Catalog:
    version: str
    pricing_version: str
    aliases: dict[str, str]
    models: dict[str, ModelInfo]
    prices: dict[str, ModelPrices]
    batch_discount: float
    limits: dict[str, Any] = field(default_factory=dict)

    def resolve(self, name: str) -> str:
        """Alias or id -> exact snapshot id; ConfigError naming the choices when unknown."""
        model_id = self.aliases.get(name, name)
        if model_id not in self.models:
            known = (
                ", ".join(sorted(self.aliases))
                + "; or an id such as "
                + ", ".join(sorted(self.models)[:3])
            )
            raise ConfigError(f"unknown model {name!r} (known aliases: {known})")
        return model_id

    def is_known(self, name: str) -> bool:
        return self.aliases.get(name, name) in self.models

    def model(self, model_id: str) -> ModelInfo:
        return self.models[self.resolve(model_id)]

    def prices_for(self, model_id: str) -> ModelPrices:
        resolved = self.resolve(model_id)
        if resolved not in self.prices:
            raise ConfigError(f"no prices for model {resolved!r} in the price table")
        return self.prices[resolved]

    def provider_of(self, model_id: str) -> str:
        """The provider that serves a model (alias or id): "anthropic", "openai"."""
        return self.model(model_id).provider

    def strongest(self, model_ids: list[str]) -> str:
        return max(model_ids, key=lambda m: (self.models[m].strength, m))


def _read_toml(package_file: str, env_var: str) -> dict[str, Any]:
    text = resources.files("evalbatch.data").joinpath(package_file).read_text("utf-8")
    data = tomllib.loads(text)
    override = os.environ.get(env_var)
    if override:
        path = Path(override)
        try:
            extra = tomllib.loads(path.read_text("utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{env_var}={override}: cannot read: {exc}") from exc
        data = _merge(data, extra)
    return data


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _band(raw: dict[str, Any], above: int) -> PriceBand:
    return PriceBand(
        above_prompt_tokens=above,
        input=float(raw["input"]),
        output=float(raw["output"]),
        cache_write_5m=float(raw.get("cache_write_5m", raw["input"] * 1.25)),
        cache_write_1h=float(raw.get("cache_write_1h", raw["input"] * 2.0)),
        cache_read=float(raw.get("cache_read", raw["input"] * 0.1)),
    )


def _prompt_cache(model_id: str, value: Any) -> PromptCache:
    if value not in ("breakpoints", "automatic"):
        raise ConfigError(
            f"models.{model_id}.prompt_cache: {value!r} is not one of breakpoints, automatic"
        )
    return "automatic" if value == "automatic" else "breakpoints"


@cache
def load_catalog() -> Catalog:
    models_raw = _read_toml("models.toml", "EVALBATCH_MODELS")
    prices_raw = _read_toml("pricing.toml", "EVALBATCH_PRICING")
    limits_raw = _read_toml("limits.toml", "EVALBATCH_LIMITS")
    models = {
        mid: ModelInfo(
            id=mid,
            provider=str(m.get("provider", "anthropic")),
            strength=int(m.get("strength", 50)),
            min_cache_tokens=int(m.get("min_cache_tokens", 1024)),
            max_output_tokens=int(m.get("max_output_tokens", 64000)),
            context_tokens=int(m.get("context_tokens", 200000)),
            prompt_cache=_prompt_cache(mid, m.get("prompt_cache", "breakpoints")),
            cache_step_tokens=int(m.get("cache_step_tokens", 0)),
        )
        for mid, m in models_raw.get("models", {}).items()
    }
    prices = {}
    for mid, p in prices_raw.get("models", {}).items():
        bands = [_band(p, 0)] + [
            _band(b, int(b["above_prompt_tokens"])) for b in p.get("bands", [])
        ]
        prices[mid] = ModelPrices(mid, tuple(sorted(bands, key=lambda b: b.above_prompt_tokens)))
    return Catalog(
        version=str(models_raw.get("version", "unknown")),
        pricing_version=str(prices_raw.get("version", "unknown")),
        aliases=dict(models_raw.get("aliases", {})),
        models=models,
        prices=prices,
        batch_discount=float(prices_raw.get("batch_discount", 0.5)),
        limits=limits_raw,
    )

"""Which OpenAI models the sandbox serves: those of the model table with provider "openai", else a
small built-in allowlist; one lookup (`find_openai_model`) that every OpenAI endpoint uses."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..catalog.models import Catalog

PREFIX = "openai:"
MIN_CACHE_TOKENS = 1024  # OpenAI caches prompts of at least this many tokens...
CACHE_INCREMENT = 128  # ...in steps of this many tokens past the minimum

# Used only while data/models.toml lists no model with provider = "openai": name -> (max output
# tokens, context tokens), from OpenAI's model pages (2025-2026). A model of the table always wins.
BUILTIN_MODELS: dict[str, tuple[int, int]] = {
    "gpt-5": (128_000, 400_000),
    "gpt-5-mini": (128_000, 400_000),
    "gpt-5-nano": (128_000, 400_000),
    "gpt-4.1": (32_768, 1_047_576),
    "gpt-4.1-mini": (32_768, 1_047_576),
    "gpt-4.1-nano": (32_768, 1_047_576),
    "gpt-4o": (16_384, 128_000),
    "gpt-4o-mini": (16_384, 128_000),
}
# Reasoning models refuse `max_tokens` and a non-default temperature or top_p.
_REASONING = re.compile(r"^(o\d|gpt-5(?!.*-chat))")


@dataclass(frozen=True)
class OpenAIModel:
    name: str  # as sent to the API: "gpt-5-mini"
    max_output_tokens: int
    context_tokens: int
    min_cache_tokens: int
    reasoning: bool

    @property
    def address(self) -> str:
        """How evalbatch (and so responders, profiles and rate-limit globs) names it."""
        return PREFIX + self.name


def find_openai_model(catalog: Catalog, name: object) -> OpenAIModel | None:
    """The OpenAI model ``name`` (``gpt-5-mini`` or ``openai:gpt-5-mini``), or None when the
    sandbox does not know it. The table is keyed either way; the allowlist serves only while
    the table has no OpenAI model at all."""
    if not isinstance(name, str) or not name:
        return None
    bare = name.removeprefix(PREFIX)
    for key in (PREFIX + bare, bare):
        info = catalog.models.get(key)
        if info is not None and info.provider == "openai":
            return OpenAIModel(
                bare,
                info.max_output_tokens,
                info.context_tokens,
                info.min_cache_tokens,
                bool(_REASONING.match(bare)),
            )
    if any(m.provider == "openai" for m in catalog.models.values()):
        return None
    if bare not in BUILTIN_MODELS:
        return None
    max_output, context = BUILTIN_MODELS[bare]
    return OpenAIModel(bare, max_output, context, MIN_CACHE_TOKENS, bool(_REASONING.match(bare)))


def openai_model_names(catalog: Catalog) -> list[str]:
    """Every OpenAI model name the sandbox serves, for error messages."""
    names = [
        key.removeprefix(PREFIX) for key, m in catalog.models.items() if m.provider == "openai"
    ]
    return sorted(names or BUILTIN_MODELS)

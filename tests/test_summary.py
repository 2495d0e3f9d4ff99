"""The run summary's words about the prompt cache: why a shared prefix was never read depends
on how the model's provider caches (breakpoints and warming, or automatically)."""

from __future__ import annotations

from evalbatch.analysis.summary import never_hit
from evalbatch.catalog import load_catalog
from evalbatch.store.records import PrefixLine


def _line(model: str, tokens: int, requests: int) -> PrefixLine:
    return PrefixLine("generate.system", "085ba650aaaa", model, tokens, requests, 0, 0, 0)


def test_why_a_prefix_never_hit_names_the_minimum_of_either_provider() -> None:
    catalog = load_catalog()
    short = never_hit(_line("openai:gpt-5-mini", 900, 5), catalog)
    assert "below the model's 1,024-token minimum" in short


def test_warming_is_suggested_only_where_it_exists() -> None:
    catalog = load_catalog()
    assert "cache.warm" in never_hit(_line("claude-opus-5-5", 2000, 5), catalog)
    automatic = never_hit(_line("openai:gpt-5-mini", 2000, 5), catalog)
    assert "cache.warm" not in automatic and "best effort" in automatic

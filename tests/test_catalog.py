from __future__ import annotations

from pathlib import Path

import pytest

from evalbatch.catalog.models import load_catalog
from evalbatch.errors import ConfigError


def test_aliases_resolve_to_snapshot_ids() -> None:
    cat = load_catalog()
    assert cat.resolve("opus") == "claude-opus-5-5"
    assert cat.resolve("sonnet") == "claude-sonnet-5-5"
    assert cat.resolve("haiku") == "claude-haiku-5-5"
    assert cat.resolve("claude-sonnet-4-6") == "claude-sonnet-4-6"
    assert cat.strongest(["claude-haiku-5-5", "claude-opus-5-5", "claude-sonnet-5-5"]) == (
        "claude-opus-5-5"
    )


def test_unknown_model_names_the_aliases() -> None:
    with pytest.raises(ConfigError, match="unknown model 'gpt-9'.*haiku, opus, sonnet"):
        load_catalog().resolve("gpt-9")


def test_every_model_has_prices_and_haiku_band() -> None:
    cat = load_catalog()
    for model in cat.models:
        assert cat.prices_for(model).bands[0].input > 0
    haiku = cat.prices_for("haiku")
    assert haiku.band_for(100_000).input == 0.10
    assert haiku.band_for(100_001).input == 0.50


def test_user_override_merges(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    override = tmp_path / "prices.toml"
    override.write_text('[models."claude-opus-5-5"]\ninput = 3.0\n')
    monkeypatch.setenv("EVALBATCH_PRICING", str(override))
    load_catalog.cache_clear()
    try:
        cat = load_catalog()
        assert cat.prices_for("opus").bands[0].input == 3.0
        assert cat.prices_for("opus").bands[0].output == 20.0
    finally:
        monkeypatch.delenv("EVALBATCH_PRICING")
        load_catalog.cache_clear()

from __future__ import annotations

from types import SimpleNamespace

from evalbatch.catalog.models import load_catalog
from evalbatch.plan.caching import cache_ttl, with_breakpoint


def test_ttl_follows_mode_and_settings() -> None:
    assert cache_ttl("batch", SimpleNamespace(mode="auto", ttl=None)) == "1h"
    assert cache_ttl("sync", SimpleNamespace(mode="auto", ttl=None)) == "5m"
    assert cache_ttl("sync", SimpleNamespace(mode="auto", ttl="1h")) == "1h"
    assert cache_ttl("batch", SimpleNamespace(mode="off", ttl=None)) is None


def test_breakpoint_only_at_or_above_the_model_minimum() -> None:
    cat = load_catalog()
    system = [{"type": "text", "text": "x"}]
    assert with_breakpoint(system, 511, "claude-opus-5-5", "1h", cat) == system
    marked = with_breakpoint(system, 512, "claude-opus-5-5", "1h", cat)
    assert marked is not None
    assert marked[-1]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    assert "cache_control" not in system[0]  # the stored prefix is never mutated
    assert with_breakpoint(system, 4000, "claude-opus-5-5", None, cat) == system

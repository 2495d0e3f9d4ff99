from __future__ import annotations

from types import SimpleNamespace

import pytest

from evalbatch.catalog.models import load_catalog
from evalbatch.plan.routing import Router, compile_rule
from evalbatch.records import Case


def _routing(**table: str) -> SimpleNamespace:
    rules = [
        SimpleNamespace(when="tags contains 'safety'", model="opus"),
        SimpleNamespace(when="metadata.lang == 'de'", model="sonnet"),
    ]
    return SimpleNamespace(table=table, default="sonnet", rules=rules)


def test_rules_then_difficulty_then_default() -> None:
    router = Router("route", _routing(easy="haiku", hard="opus"), load_catalog())
    assert router.route(Case(id="1", tags=("safety",), difficulty="easy")).reason == (
        "rule 1: tags contains 'safety'"
    )
    de = router.route(Case(id="2", metadata={"lang": "de"}, difficulty="easy"))
    assert (de.model, de.reason) == ("claude-sonnet-5-5", "rule 2: metadata.lang == 'de'")
    easy = router.route(Case(id="3", difficulty="easy"))
    assert (easy.model, easy.reason) == ("claude-haiku-5-5", "difficulty=easy")
    other = router.route(Case(id="4", difficulty="unknown-label"))
    assert (other.model, other.reason) == ("claude-sonnet-5-5", "default")
    assert router.models() == ["claude-haiku-5-5", "claude-opus-5-5", "claude-sonnet-5-5"]


def test_fixed_model_routes_everything_to_it() -> None:
    router = Router("haiku", None, load_catalog())
    assert router.route(Case(id="1", difficulty="hard")).model == "claude-haiku-5-5"


def test_route_without_table_is_an_error() -> None:
    with pytest.raises(ValueError, match="routing"):
        Router("route", None, load_catalog())


def test_rule_on_missing_field_is_false_not_an_error() -> None:
    check = compile_rule("metadata.region == 'eu'")
    assert check(Case(id="1").context()) is False


def test_invalid_rule_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="invalid routing rule"):
        compile_rule("tags contains (")

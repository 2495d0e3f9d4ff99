"""Routing and the prompt cache as the report shows them: cost and score by route, the cache
per shared prefix, and a warning for a prefix that never hit."""

from __future__ import annotations

import json

from evalbatch.catalog.models import load_catalog
from evalbatch.catalog.tokenizer import count_text

from .conftest import run_cli
from .suites import write_suite

# ~900 tokens: above opus's and sonnet's cache minimum, below haiku's
SYSTEM = "You answer questions about capitals. " + " ".join(
    f"Rule {i}: answer with the capital city only." for i in range(110)
)
CASES = [
    {"id": "e1", "input": "France Paris", "target": "Paris", "difficulty": "easy"},
    {"id": "e2", "input": "Italy Rome", "target": "Rome", "difficulty": "easy"},
    {"id": "h1", "input": "Norway Bergen", "target": "Oslo", "difficulty": "hard"},
    {"id": "h2", "input": "Japan Tokyo", "target": "Tokyo", "difficulty": "hard"},
    {"id": "h3", "input": "Peru Lima", "target": "Lima", "difficulty": "hard"},
    {"id": "s1", "input": "Chile Santiago", "target": "Santiago", "tags": ["safety"]},
]


def test_report_breaks_cost_and_score_down_by_route_and_prefix(tmp_path, cli_env):
    catalog = load_catalog()
    tokens = count_text(SYSTEM)
    assert (
        catalog.models["claude-opus-5-5"].min_cache_tokens
        <= tokens
        < catalog.models["claude-haiku-5-5"].min_cache_tokens
    )
    suite = write_suite(
        tmp_path / "s",
        cases=CASES,
        generate={"system": SYSTEM, "model": "route"},
        routing={
            "easy": "haiku",
            "hard": "opus",
            "default": "sonnet",
            "rules": [{"when": "tags contains 'safety'", "model": "opus"}],
        },
        cache={"mode": "auto", "warm": False},  # the cold batch: what never-hit warnings say
    )
    result = run_cli(["run", str(suite), "--json"], cli_env)
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)

    routes = {(r["route"], r["model"]): r for r in report["routes"] if r["step"] == "generate"}
    assert set(routes) == {
        ("difficulty=easy", "claude-haiku-5-5"),
        ("difficulty=hard", "claude-opus-5-5"),
        ("rule 1: tags contains 'safety'", "claude-opus-5-5"),
    }
    assert routes[("difficulty=easy", "claude-haiku-5-5")]["pass_rate"] == 1.0
    hard = routes[("difficulty=hard", "claude-opus-5-5")]
    assert (hard["requests"], hard["pass_rate"]) == (3, 2 / 3)  # Bergen is not Oslo
    assert sum(r["cost"] for r in report["routes"]) == sum(c["cost"] for c in report["costs"])

    prefixes = {p["model"]: p for p in report["prefixes"]}
    assert {p["source"] for p in report["prefixes"]} == {"generate.system"}
    haiku, opus = prefixes["claude-haiku-5-5"], prefixes["claude-opus-5-5"]
    assert haiku["read"] == 0 and haiku["uncached"] == 2 * tokens
    assert "below the model's 2,048-token minimum" in haiku["warning"]
    # four opus requests share the prefix: the first writes, the rest read
    assert (opus["requests"], opus["written"], opus["read"]) == (4, tokens, 3 * tokens)
    assert opus["read_share"] == 0.75 and opus["warning"] is None

    text = run_cli(["report", report["run"]["id"]], cli_env).stdout
    assert "By route" in text and "Prompt cache by shared prefix" in text
    assert "warning: generate.system" in text and "never hit the cache" in text
    md = run_cli(["report", report["run"]["id"], "--format", "markdown"], cli_env).stdout
    assert "| generate | `difficulty=hard` | `claude-opus-5-5` | 3 |" in md
    assert "> warning: generate.system" in md
    out = tmp_path / "r.html"
    run_cli(["report", report["run"]["id"], "--format", "html", "-o", str(out)], cli_env)
    html = out.read_text()
    assert "<h2>By route</h2>" in html and "<h2>Prompt cache by shared prefix</h2>" in html
    assert "rule 1: tags contains &#39;safety&#39;" in html  # escaped like every value


def test_cache_off_has_no_prefix_warnings(tmp_path, cli_env):
    suite = write_suite(tmp_path / "s", generate={"system": SYSTEM})
    result = run_cli(["run", str(suite), "--json"], cli_env)
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    assert all(p["warning"] is None for p in report["prefixes"])
    assert all(p["read"] == 0 and p["written"] == 0 for p in report["prefixes"])

"""`plan` end to end: the projection against the run it projects, no API calls, the budget guard,
the counterfactual lines, and the run's savings headline. The real CLI (a process) against the
sandbox over HTTP.

What the accuracy check does and does not show: the plan and the sandbox share the tokenizer
and the cache rules (a plan is exact against the sandbox, not against the real API), and with no
comparable run yet `plan` takes each request's output from max_tokens, so the responder below
answers every request with *more* than max_tokens tokens and the sandbox cuts it to exactly
max_tokens (stop_reason max_tokens; the rubric verdict's JSON comes first so the cut reply still
parses). Within 1% holds for the plan's best-case cache assumption only when the sandbox
processes batch items one at a time and every item reads what earlier ones wrote (wave 1, in-batch
hit rate 1.0); at other settings the run must fall inside the plan's best-to-worst range.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from evalbatch.catalog.models import load_catalog
from evalbatch.catalog.tokenizer import count_text
from evalbatch.report.wording import usd
from evalbatch.sandbox import SandboxConfig
from evalbatch.sandbox.responders import last_user_text

from .conftest import run_cli
from .suites import write_suite

GEN_MAX_TOKENS = 48
GRADE_MAX_TOKENS = 40
SYSTEM = " ".join(
    f"Policy {i}: answer the customer politely, cite the relevant rule, and never invent facts."
    for i in range(160)
)
RUBRIC = " ".join(
    f"Criterion {i}: the reply must be correct, specific, polite and complete." for i in range(60)
)
CASES = [
    {"id": f"c{i:02d}", "input": f"Question {i}: where is my order number {1000 + i}?"}
    | {"target": "order", "difficulty": ("easy", "easy", "medium", "hard")[i % 4]}
    for i in range(12)
]

# Caching without the warm-up requests batch mode sends by default: the in-batch cache model
# (best and worst case) is what these tests measure.
COLD = {"mode": "auto", "warm": False}


def fixed_length_responder(params: dict[str, Any]) -> str:
    """Always longer than max_tokens: the sandbox cuts every reply to exactly max_tokens."""
    if "<output>" in last_user_text(params):
        return '{"score": 5, "reasoning": "fine"} ' + "pad " * 1000
    return "word " * 1000


@pytest.fixture
def sandbox_config(request: pytest.FixtureRequest) -> SandboxConfig:
    """Wave size and in-batch cache hit rate from an indirect parameter, else (1, 1.0)."""
    wave, hit_rate = getattr(request, "param", (1, 1.0))
    return SandboxConfig(
        responder=fixed_length_responder,
        batch_latency=0.0,
        batch_concurrency=wave,
        batch_cache_hit_rate=hit_rate,
    )


def plan_suite(folder: Path, **overrides: Any) -> Path:
    suite: dict[str, Any] = {
        "name": "plan-accuracy",
        "cases": CASES,
        "generate": {
            "system": SYSTEM,
            "prompt": "Customer: {{ input }}",
            "max_tokens": GEN_MAX_TOKENS,
            "model": "route",
        },
        "routing": {"easy": "haiku", "medium": "sonnet", "hard": "opus", "default": "sonnet"},
        "grade": [
            {
                "rubric": {
                    "model": "opus",
                    "rubric": RUBRIC,
                    "pass": ">= 4",
                    "max_tokens": GRADE_MAX_TOKENS,
                }
            }
        ],
        "mode": "batch",
        "cache": COLD,
    }
    suite.update(overrides)
    return write_suite(folder, **suite)


def _output_cost(line: dict[str, Any]) -> float:
    """The output side of one report cost line (every prompt here is far below 100K tokens)."""
    catalog = load_catalog()
    rate = catalog.prices_for(line["model"]).band_for(0).output
    factor = catalog.batch_discount if line["mode"] == "batch" else 1.0
    return line["output_tokens"] * rate / 1e6 * factor


def _api_requests(stats: dict[str, Any]) -> int:
    """Every HTTP request to an API endpoint (the stats endpoint itself is `other`)."""
    return sum(
        int(n) for k, n in stats.items() if k.startswith("http ") and not k.startswith("http other")
    )


def test_prompts_are_above_every_cache_minimum() -> None:
    catalog = load_catalog()
    floor = max(catalog.model(m).min_cache_tokens for m in catalog.aliases.values())
    assert count_text(SYSTEM) > floor and count_text(RUBRIC) > 512


def plan_then_run(suite: Path, env: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """`plan --json`, then `run`, then `report --format json`: (the plan, the run's report)."""
    planned = run_cli(["plan", str(suite), "--json"], env)
    assert planned.code == 0, planned.stderr
    plan = json.loads(planned.stdout)
    assert plan["output_source"].startswith("max_tokens")
    ran = run_cli(["run", str(suite), "--json"], env)
    assert ran.code == 0, ran.stderr
    run_id = json.loads(ran.stdout)["run"]["id"]
    reported = run_cli(["report", run_id, "--format", "json"], env)
    assert reported.code == 0, reported.stderr
    return plan, json.loads(reported.stdout)


@pytest.mark.parametrize("cache", [COLD, {"warm": True}], ids=["auto", "warm"])
def test_plan_matches_the_run_within_one_percent(tmp_path, cli_env, sandbox, cache):
    """Best-case cache assumption against the sandbox's defaults: wave 1, in-batch hit rate 1."""
    settings = sandbox.settings()
    assert (settings["batch_concurrency"], settings["batch_cache_hit_rate"]) == (1, 1.0)
    suite = plan_suite(tmp_path / "s", cache=cache)
    plan, report = plan_then_run(suite, cli_env)
    assert plan["cache_assumption"] == "best"
    lines = report["costs"]
    assert {line["step"] for line in lines} == (
        {"generate", "grade", "warm"} if cache != COLD else {"generate", "grade"}
    )
    assert len({line["model"] for line in lines if line["step"] == "generate"}) == 3  # routed

    actual_total = report["totals"]["cost"]
    actual_output = sum(_output_cost(line) for line in lines)
    actual_input = actual_total - actual_output
    assert actual_input > 0 and actual_output > 0
    assert sum(line["cache_read_tokens"] for line in lines) > 0  # the shared prefixes were read

    assert plan["input_side"]["plan"] == pytest.approx(actual_input, rel=0.01)
    assert plan["output_side"]["plan"] == pytest.approx(actual_output, rel=0.01)
    assert plan["strategies"]["plan"] == pytest.approx(actual_total, rel=0.01)
    for strategy, column in (
        ("sync", "sync_cost"),
        ("no_cache", "nocache_cost"),
        ("no_routing", "norouting_cost"),
        ("naive", "naive_cost"),
    ):
        assert plan["strategies"][strategy] == pytest.approx(report["totals"][column], rel=0.01)

    # the token ledger per (step, model) agrees too
    def tokens(rows: list[dict[str, Any]]) -> dict[tuple[str, str], tuple[int, ...]]:
        keys = (
            "requests",
            "input_tokens",
            "cache_write_tokens",
            "cache_read_tokens",
            "output_tokens",
        )
        return {(r["step"], r["model"]): tuple(r[k] for k in keys) for r in rows}

    assert tokens(plan["lines"]) == tokens(lines)


def _cache_tokens(report: dict[str, Any], key: str) -> int:
    return sum(line[key] for line in report["costs"])


# (wave size, in-batch hit rate): 12 cases give batches of 12 items (6 / 3 / 3 generate items
# per model, 12 grade items on one model).
INSIDE = [(4, 0.5)]  # some items read their own batch's writes, some miss
AT_WORST = [(1, 0.0), (50, 1.0)]  # no item reads its own batch's writes: every item writes


@pytest.mark.parametrize(
    "sandbox_config", INSIDE + AT_WORST, indirect=True, ids=lambda p: f"wave{p[0]}-hit{p[1]}"
)
def test_the_run_costs_within_the_plans_cache_range(tmp_path, cli_env, sandbox):
    wave, hit_rate = (sandbox.settings()[k] for k in ("batch_concurrency", "batch_cache_hit_rate"))
    suite = plan_suite(tmp_path / "s")
    plan, report = plan_then_run(suite, cli_env)
    best, worst = (plan["cache_range"][a] for a in ("best", "worst"))
    assert plan["cache_assumption"] == "best"
    assert best["strategies"] == plan["strategies"]  # the headline figures are the best case
    assert "written once" in best["assumption"] and "before its batch" in worst["assumption"]
    # nothing is cheaper to write than to read: the worst case is dearer, without-cache is not
    assert best["strategies"]["plan"] < worst["strategies"]["plan"]
    assert worst["strategies"]["no_cache"] == pytest.approx(best["strategies"]["no_cache"])

    actual = report["totals"]["cost"]
    read = _cache_tokens(report, "cache_read_tokens")
    if (wave, hit_rate) in AT_WORST:
        assert read == worst["cache_read_tokens"] == 0
        assert actual == pytest.approx(worst["strategies"]["plan"], rel=0.01)
        return
    assert best["strategies"]["plan"] * 1.01 < actual < worst["strategies"]["plan"] * 0.99
    assert worst["cache_read_tokens"] < read < best["cache_read_tokens"]
    assert sandbox.stats()["batch_cache_misses"] > 0


def test_plan_says_which_cache_assumption_it_uses(tmp_path, cli_env):
    suite = plan_suite(tmp_path / "s")
    plan = json.loads(run_cli(["plan", str(suite), "--json"], cli_env).stdout)
    result = run_cli(["plan", str(suite)], cli_env)
    assert result.code == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert re.search(r"saves \d+% \(12 cases, mode batch; prompt cache: best case\)", text), text
    worst = plan["cache_range"]["worst"]["strategies"]["plan"]
    assert re.search(
        r"this plan, worst-case cache \(no reads inside a batch\) \S+ " + re.escape(usd(worst)),
        text,
    )
    assert f"the worst case costs {usd(worst)} per run" in text
    assert "typically 30%-98%" in text

    warmed = run_cli(["plan", str(suite), "--set", "cache.warm=true"], cli_env)
    assert warmed.code == 0, warmed.stderr
    assert "best and worst case agree" in " ".join(warmed.stdout.split())


def test_plan_makes_no_api_calls(tmp_path, cli_env, sandbox):
    suite = plan_suite(tmp_path / "s")
    for args in (["plan", str(suite)], ["plan", str(suite), "--json"]):
        result = run_cli(args, cli_env)
        assert result.code == 0, result.stderr
    stats = sandbox.stats()
    assert _api_requests(stats) == 0
    assert stats.get("batches_created", 0) == 0 and stats.get("messages_served", 0) == 0


def test_plan_needs_no_key_and_no_server(tmp_path, cli_env):
    env = {k: v for k, v in cli_env.items() if not k.startswith("ANTHROPIC_")}
    env["ANTHROPIC_BASE_URL"] = "http://127.0.0.1:9"  # nothing listens: any call would fail
    result = run_cli(["plan", str(plan_suite(tmp_path / "s")), "--json"], env)
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["strategies"]["plan"] > 0


def test_budget_below_the_projection_submits_nothing(tmp_path, cli_env, sandbox):
    suite = plan_suite(tmp_path / "s")
    plan = json.loads(run_cli(["plan", str(suite), "--json"], cli_env).stdout)
    budget = plan["strategies"]["plan"] / 2
    result = run_cli(["run", str(suite), "--budget", f"{budget:.6f}"], cli_env)
    assert result.code == 2, result.stdout + result.stderr
    message = " ".join(result.stderr.split())
    assert "is above the budget" in message and "nothing was submitted" in message
    stats = sandbox.stats()
    assert stats.get("batches_created", 0) == 0 and _api_requests(stats) == 0
    assert json.loads(run_cli(["runs", "--json"], cli_env).stdout) == []  # no run was written


def test_budget_above_the_projection_runs(tmp_path, cli_env, sandbox):
    suite = plan_suite(tmp_path / "s")
    plan = json.loads(run_cli(["plan", str(suite), "--json"], cli_env).stdout)
    budget = plan["strategies"]["plan"] * 1.5
    result = run_cli(["run", str(suite), "--budget", f"{budget:.6f}"], cli_env)
    assert result.code == 0, result.stderr
    assert sandbox.stats()["batches_created"] == 2  # generate, then grade


def test_plan_prints_counterfactuals_savings_and_monthly_figures(tmp_path, cli_env):
    suite = plan_suite(tmp_path / "s")
    plan = json.loads(run_cli(["plan", str(suite), "--json"], cli_env).stdout)
    result = run_cli(["plan", str(suite), "--per-month", "30"], cli_env)
    assert result.code == 0, result.stderr
    text = result.stdout
    headline = re.search(r"plan \$([\d,.]+) — naive \$([\d,.]+) — saves (\d+)%", text)
    assert headline, text
    naive = plan["strategies"]["naive"]
    saved = round((1 - plan["strategies"]["plan"] / naive) * 100)
    assert int(headline.group(3)) == saved and saved > 0
    for label in (
        "this plan",
        "the same at sync rates",
        "without prompt caching",
        "without routing",
        "naive baseline",
    ):
        assert label in text, text
    assert "per month (x30)" in text
    for strategy in ("plan", "sync", "no_cache", "no_routing", "naive"):
        cost = plan["strategies"][strategy]
        assert usd(cost) in text and usd(cost * 30) in text, (strategy, text)
    assert re.search(r"-\d+%", text)  # savings vs naive per strategy


def test_run_report_has_the_savings_headline(tmp_path, cli_env):
    suite = plan_suite(tmp_path / "s")
    result = run_cli(["run", str(suite)], cli_env)
    assert result.code == 0, result.stderr
    match = re.search(r"cost \$([\d,.]+) — naive \$([\d,.]+) — saved (\d+)%", result.stdout)
    assert match, result.stdout
    cost, naive = (float(match.group(i).replace(",", "")) for i in (1, 2))
    assert 0 < cost < naive and int(match.group(3)) > 0
    report = run_cli(["report", "latest"], cli_env)
    assert report.code == 0 and match.group(0) in report.stdout


def test_plan_prices_long_context_haiku_output_in_its_band(tmp_path, cli_env):
    """Haiku above 100K prompt tokens pays the long-context rates on the whole request, output
    included: the projection's output side must use that band too."""
    long_system = "Background: " + "the archive lists every order and its history. " * 12_500
    assert count_text(long_system) > 100_000
    suite = plan_suite(
        tmp_path / "s",
        cases=CASES[:2],
        generate={
            "system": long_system,
            "prompt": "Customer: {{ input }}",
            "max_tokens": GEN_MAX_TOKENS,
            "model": "haiku",
        },
        grade=[{"contains": "{{ target }}"}],
    )
    plan = json.loads(run_cli(["plan", str(suite), "--json"], cli_env).stdout)
    long_band = load_catalog().prices_for("claude-haiku-5-5").band_for(100_001)
    expected_output = 2 * GEN_MAX_TOKENS * long_band.output / 1e6 * 0.5
    assert plan["output_side"]["plan"] == pytest.approx(expected_output)
    ran = run_cli(["run", str(suite), "--json"], cli_env)
    assert ran.code == 0, ran.stderr
    report = json.loads(ran.stdout)
    assert plan["strategies"]["plan"] == pytest.approx(report["totals"]["cost"], rel=0.01)
    assert plan["input_side"]["plan"] == pytest.approx(
        report["totals"]["cost"] - expected_output, rel=0.01
    )

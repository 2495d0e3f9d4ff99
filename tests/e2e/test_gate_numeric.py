"""The gate's own significance settings, and numeric (rubric) scores in a comparison."""

from __future__ import annotations

import json

import pytest

from evalbatch.sandbox import SandboxConfig

from .conftest import run_cli
from .suites import write_suite

CASES = [{"id": f"c{i:02d}", "input": f"item {i}", "target": "ok"} for i in range(20)]
STATE = {"new": False}


def _responder(params: dict) -> str:
    text = params["messages"][-1]["content"]
    if "<output>" in text:  # the rubric grader: 5 for "ok", 2 otherwise
        return (
            '{"score": 5, "reasoning": "fine"}'
            if "ok" in text.split("<output>")[1]
            else ('{"score": 2, "reasoning": "wrong"}')
        )
    number = int(text.split()[-1])
    return "nope" if STATE["new"] and number < 6 else "ok"  # 6 of 20 regress


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return SandboxConfig(responder=_responder)


def _suite(tmp_path, **gate):
    return write_suite(
        tmp_path / "s",
        cases=CASES,
        grade=[
            {"contains": "{{ target }}"},
            {"rubric": {"model": "haiku", "rubric": "Is it ok?", "pass": ">= 4"}},
        ],
        gate={"no_regression": True, **gate},
    )


def _two_runs(suite, env):
    STATE["new"] = False
    base = run_cli(["run", str(suite), "--json"], env)
    assert base.code == 0, base.stderr
    STATE["new"] = True
    return json.loads(base.stdout)["run"]["id"], run_cli(["run", str(suite), "--json"], env)


def test_gate_uses_the_suites_alpha(tmp_path, cli_env, sandbox):
    # 6 regressed, 0 fixed: exact McNemar p = 2 * 0.5**6 = 0.031; BH over 2 graders keeps 0.031
    _, strict = _two_runs(_suite(tmp_path, alpha=0.01), cli_env)
    assert strict.code == 0, strict.stdout[-500:]
    gate = json.loads(strict.stdout)["gate"]
    assert gate["comparison_verdict"] == "no significant change"

    base, default = _two_runs(_suite(tmp_path), cli_env)
    assert default.code == 1
    assert json.loads(default.stdout)["gate"]["comparison_verdict"] == "regressed"

    text = run_cli(["compare", base, json.loads(default.stdout)["run"]["id"]], cli_env).stdout
    assert (
        "rubric: mean score 5.00 -> 4.10 (-0.90, 95% bootstrap CI [-1.50, -0.30], "
        "p=0.014 by wilcoxon signed-rank, n=20)"
    ) in text
    md = run_cli(
        ["compare", base, json.loads(default.stdout)["run"]["id"], "--format", "markdown"],
        cli_env,
    ).stdout
    assert "- rubric: mean score 5.00 -> 4.10" in md


def test_gate_alpha_out_of_range_is_a_suite_error(tmp_path, cli_env):
    result = run_cli(["plan", str(_suite(tmp_path, alpha=2))], cli_env)
    assert result.code == 2
    assert "gate" in result.stderr and "alpha" in result.stderr

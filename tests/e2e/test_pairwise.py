"""The pairwise grader compares each output with the baseline run's output for the same case,
end to end: the grading request carries the baseline's text as A, the verdicts follow it, and a
missing or unfinished baseline is refused before anything is written."""

from __future__ import annotations

import json
import re

import pytest

from evalbatch.sandbox import SandboxConfig

from .conftest import run_cli
from .suites import write_suite

CASES = [{"id": f"c{i}", "input": f"question {i}"} for i in range(6)]
STATE = {"version": "old"}
SEEN_A: list[str] = []


def _responder(params: dict) -> str:
    text = params["messages"][-1]["content"]
    if "<A>" in text:  # the pairwise grader: prefer the answer that says "v2"
        a = re.search(r"<A>\n(.*?)\n</A>", text, re.S).group(1)
        b = re.search(r"<B>\n(.*?)\n</B>", text, re.S).group(1)
        SEEN_A.append(a)
        if "v2" in b and "v2" not in a:
            return '{"winner": "B", "reasoning": "B is the newer answer"}'
        if "v2" in a and "v2" not in b:
            return '{"winner": "A", "reasoning": "A is the newer answer"}'
        return '{"winner": "tie", "reasoning": "same"}'
    number = int(text.split()[-1])
    if STATE["version"] == "old":
        return f"answer {number} v1"
    # the new prompt improves even cases and leaves odd ones as they were
    return f"answer {number} v2" if number % 2 == 0 else f"answer {number} v1"


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return SandboxConfig(responder=_responder)


def test_pairwise_compares_against_the_baseline_runs_outputs(tmp_path, cli_env, sandbox):
    STATE["version"] = "old"
    base = run_cli(
        ["run", str(write_suite(tmp_path / "a", cases=CASES, grade=[])), "--json"], cli_env
    )
    assert base.code == 0, base.stderr
    base_id = json.loads(base.stdout)["run"]["id"]

    STATE["version"] = "new"
    SEEN_A.clear()
    suite = write_suite(
        tmp_path / "b",
        cases=CASES,
        grade=[{"pairwise": {"model": "haiku", "baseline_run": base_id}}],
    )
    new = run_cli(["run", str(suite), "--json"], cli_env)
    assert new.code == 0, new.stderr
    report = json.loads(new.stdout)
    # A is the baseline's own output for the same case, never empty
    assert sorted(SEEN_A) == sorted(f"answer {i} v1" for i in range(6))
    (grader,) = report["graders"]
    assert (grader["passed"], grader["failed"], grader["errors"]) == (6, 0, 0)  # wins and ties
    assert grader["mean_value"] == pytest.approx((3 * 1.0 + 3 * 0.5) / 6)


def test_swap_puts_the_new_output_first(tmp_path, cli_env, sandbox):
    STATE["version"] = "new"
    base = run_cli(
        ["run", str(write_suite(tmp_path / "a", cases=CASES, grade=[])), "--json"], cli_env
    )
    base_id = json.loads(base.stdout)["run"]["id"]
    STATE["version"] = "old"  # now the new run is the worse one
    suite = write_suite(
        tmp_path / "b",
        cases=CASES,
        grade=[{"pairwise": {"model": "haiku", "baseline_run": base_id, "swap": True}}],
    )
    new = run_cli(["run", str(suite), "--json"], cli_env)
    (grader,) = json.loads(new.stdout)["graders"]
    # even cases: the baseline (v2) wins over the new output (v1) -> fail; odd: ties -> pass
    assert (grader["passed"], grader["failed"]) == (3, 3)


def test_a_missing_baseline_run_is_refused_before_anything_is_written(tmp_path, cli_env, sandbox):
    suite = write_suite(
        tmp_path / "b",
        cases=CASES,
        grade=[{"pairwise": {"model": "haiku", "baseline_run": "20990101T000000-abcdef"}}],
    )
    result = run_cli(["run", str(suite)], cli_env)
    assert result.code == 2
    assert "no run '20990101T000000-abcdef'" in result.stderr
    assert sandbox.stats().get("batches_created", 0) == 0
    listed = run_cli(["runs", "--json"], cli_env)
    assert json.loads(listed.stdout) == []

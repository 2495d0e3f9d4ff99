"""The pipeline end to end: the real CLI (a process) against the sandbox over HTTP, on SQLite
and on a real PostgreSQL server (``both_stores``)."""

from __future__ import annotations

import json

import pytest

from evalbatch.catalog.models import load_catalog
from evalbatch.catalog.tokenizer import count_text

from ..storedb import dicts, rows, scalar
from .conftest import run_cli
from .suites import CASES, write_suite

pytestmark = pytest.mark.both_stores


def _expected_haiku_cost(text: str, max_tokens: int, batch: bool) -> float:
    prices = load_catalog().prices_for("claude-haiku-5-5").bands[0]
    tokens_in = count_text(text)
    tokens_out = min(tokens_in, max_tokens)
    sync = (tokens_in * prices.input + tokens_out * prices.output) / 1e6
    return sync * 0.5 if batch else sync


def test_batch_run_scores_and_prices_every_result(tmp_path, cli_env, sandbox, store_url):
    suite = write_suite(tmp_path / "s")
    result = run_cli(["run", str(suite)], cli_env)
    assert result.code == 0, result.stderr
    assert "Scoreboard — 75.0% of 4 cases passed every grader" in result.stdout
    assert "cost $" in result.stdout and "naive $" in result.stdout
    stats = sandbox.stats()
    assert stats["batches_created"] == 1  # one generate batch; no model grader, no grade batch
    stored = dicts(store_url, "select * from results order by case_id")
    assert len(stored) == 4
    for row in stored:
        case = next(c for c in CASES if c["id"] == row["case_id"])
        assert row["mode"] == "batch" and row["service_tier"] == "batch"
        assert row["model"] == "claude-haiku-5-5"
        assert row["text"] == case["input"]  # echo responder
        assert row["input_tokens"] == count_text(case["input"])
        assert row["cost_usd"] == pytest.approx(_expected_haiku_cost(case["input"], 64, True))
        assert row["sync_cost_usd"] == pytest.approx(2 * row["cost_usd"])
    scores = dict(rows(store_url, "select case_id, passed from scores"))
    assert scores == {"paris": 1, "rome": 1, "oslo": 0, "tokyo": 1}


def test_batch_and_sync_give_identical_scores_at_half_the_cost(tmp_path, cli_env, store_url):
    suite = write_suite(tmp_path / "s")
    batch = run_cli(["run", str(suite), "--json"], cli_env)
    sync = run_cli(["run", str(suite), "--mode", "sync", "--json"], cli_env)
    assert batch.code == 0 and sync.code == 0, batch.stderr + sync.stderr
    b, s = json.loads(batch.stdout), json.loads(sync.stdout)
    assert b["run"]["mode"] == "batch" and s["run"]["mode"] == "sync"
    assert b["run"]["manifest_hash"] == s["run"]["manifest_hash"]  # mode is not result-changing
    assert b["graders"] == s["graders"]

    def scores(run_id: str) -> list[tuple]:
        return rows(
            store_url,
            "select case_id, grader, passed, value from scores where run_id=? order by case_id",
            run_id,
        )

    def tokens(run_id: str) -> list[tuple]:
        return rows(
            store_url,
            "select case_id, input_tokens, output_tokens from results where "
            "run_id=? order by case_id",
            run_id,
        )

    assert scores(b["run"]["id"]) == scores(s["run"]["id"])
    assert tokens(b["run"]["id"]) == tokens(s["run"]["id"])
    assert b["totals"]["cost"] / s["totals"]["cost"] == 0.5


def _rubric_responder(params: dict) -> str:
    text = params["messages"][-1]["content"]
    if "<output>" in text:
        return (
            '{"score": 2, "reasoning": "wrong city"}'
            if "Bergen" in text
            else 'Looks right. {"score": 5, "reasoning": "correct"}'
        )
    return text


@pytest.fixture
def sandbox_config():
    from evalbatch.sandbox import SandboxConfig

    return SandboxConfig(responder=_rubric_responder, batch_latency=0.0)


def test_rubric_grading_is_its_own_batched_step_with_its_own_ledger(
    tmp_path, cli_env, sandbox, store_url
):
    suite = write_suite(
        tmp_path / "s",
        grade=[
            {"contains": "{{ target }}"},
            {"rubric": {"model": "opus", "rubric": "Is the city right?", "pass": ">= 4"}},
        ],
    )
    result = run_cli(["run", str(suite), "--json"], cli_env)
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    assert sandbox.stats()["batches_created"] == 2  # generate, then grade
    rubric = next(g for g in report["graders"] if g["name"] == "rubric")
    assert (rubric["passed"], rubric["failed"], rubric["errors"]) == (3, 1, 0)
    ledgers = {(c["step"], c["model"]) for c in report["costs"]}
    assert ledgers == {("generate", "claude-haiku-5-5"), ("grade", "claude-opus-5-5")}
    grade_cost = sum(c["cost"] for c in report["costs"] if c["step"] == "grade")
    stored = scalar(store_url, "select sum(cost_usd) from results where step='grade'")
    verdict = rows(
        store_url, "select value, explanation from scores where case_id='oslo' and grader='rubric'"
    )
    assert grade_cost == pytest.approx(stored) and grade_cost > 0
    assert verdict == [(2.0, "wrong city")]


def test_gate_failure_exits_1(tmp_path, cli_env):
    suite = write_suite(tmp_path / "s", gate={"min_pass_rate": 0.9})
    result = run_cli(["run", str(suite)], cli_env)
    assert result.code == 1
    assert "gate: pass rate 75.0% < 90.0%: FAILED" in result.stdout


def test_reports_runs_and_status(tmp_path, cli_env):
    suite = write_suite(tmp_path / "s")
    assert run_cli(["run", str(suite)], cli_env).code == 0
    runs = json.loads(run_cli(["runs", "--json"], cli_env).stdout)
    assert len(runs) == 1 and runs[0]["suite"] == "capitals" and runs[0]["pass_rate"] == 0.75
    run_id = runs[0]["id"]
    text = run_cli(["report", run_id], cli_env)
    assert text.code == 0 and "Scoreboard" in text.stdout
    data = json.loads(run_cli(["report", "latest", "--format", "json"], cli_env).stdout)
    assert data["run"]["id"] == run_id and data["pass_rate"] == 0.75
    status = json.loads(run_cli(["status", run_id, "--json"], cli_env).stdout)
    assert status[0]["status"] == "done"
    assert status[0]["batches"][0]["provider_batch_id"].startswith("msgbatch_")
    assert json.loads(run_cli(["status", "--json"], cli_env).stdout) == []  # nothing open


def test_sandbox_flag_needs_no_key_and_no_server(tmp_path, _isolated_home):
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    env["EVALBATCH_HOME"] = str(_isolated_home)
    suite = write_suite(tmp_path / "s")
    result = run_cli(["run", str(suite), "--sandbox"], env)
    assert result.code == 0, result.stderr
    assert "75.0%" in result.stdout

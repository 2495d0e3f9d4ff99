"""OpenAI end to end: the real CLI against the sandbox's OpenAI side through the official SDK.
Batch and sync agree at half the price; one suite generates on one vendor and grades on the
other; a sweep spans both; a SIGKILL at each new failpoint (upload, its id, create, release) is
recovered by `collect --wait` with no batch created twice and no uploaded file left behind."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
from pathlib import Path

import openai
import pytest

from evalbatch.sandbox import FaultConfig, SandboxConfig, SandboxServer

from .conftest import run_cli
from .suites import write_suite

CASES = [
    {"id": f"c{i}", "input": f"question {i}: is it {'yes' if i % 3 else 'no'}?", "target": "yes"}
    for i in range(6)
]
GENERATE = {"model": "openai:gpt-5-mini", "max_tokens": 32}
RUBRIC = {"rubric": {"model": "openai:gpt-4.1-mini", "rubric": "Says yes?", "pass": ">= 4"}}


def _responder(params: dict) -> str:
    text = params["messages"][-1]["content"]
    if "<output>" in text:
        score = 5 if "yes" in text.split("<output>")[1] else 2
        return f'{{"score": {score}, "reasoning": "graded by {params["model"]}"}}'
    return text


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return SandboxConfig(responder=_responder, batch_latency=0.0)


@pytest.fixture
def env(cli_env: dict[str, str], sandbox: SandboxServer) -> dict[str, str]:
    return {**cli_env, "OPENAI_BASE_URL": f"{sandbox.base_url}/v1", "OPENAI_API_KEY": "test-key"}


def _suite(folder: Path, **overrides) -> Path:
    return write_suite(
        folder,
        cases=overrides.pop("cases", CASES),
        generate=overrides.pop("generate", GENERATE),
        grade=overrides.pop("grade", [{"contains": "{{ target }}"}, RUBRIC]),
        **overrides,
    )


def _query(home: Path, sql: str, *args: object) -> list[tuple]:
    with sqlite3.connect(home / "evalbatch.db") as db:
        return db.execute(sql, args).fetchall()


def _scoreboard(home: Path, run_id: str) -> list[tuple]:
    return _query(
        home,
        "select case_id, grader, passed, value, error from scores where run_id=? "
        "order by case_id, grader",
        run_id,
    )


def _files_left(sandbox: SandboxServer) -> list[str]:
    with openai.OpenAI(base_url=f"{sandbox.base_url}/v1", api_key="k", max_retries=0) as client:
        return [f.filename for f in client.files.list()]


def test_batch_and_sync_give_identical_scores_at_half_the_cost(
    tmp_path, env, sandbox, _isolated_home
):
    suite = _suite(tmp_path / "s")
    batch = run_cli(["run", str(suite), "--json"], env)
    assert batch.code == 0, batch.stderr
    stats = sandbox.stats(reset=True)
    # one batch per step, each of one model; every file deleted once collected
    assert stats["openai_batches_created"] == 2 and "batches_created" not in stats
    assert stats["openai_files_uploaded"] == 2
    assert _files_left(sandbox) == []
    sync = run_cli(["run", str(suite), "--mode", "sync", "--json"], env)
    assert sync.code == 0, sync.stderr
    assert sandbox.stats()["openai_chat_served"] == 12
    b, s = json.loads(batch.stdout), json.loads(sync.stdout)
    assert b["graders"] == s["graders"]
    assert _scoreboard(_isolated_home, b["run"]["id"]) == _scoreboard(
        _isolated_home, s["run"]["id"]
    )
    assert b["totals"]["cost"] / s["totals"]["cost"] == 0.5  # cache off: no prompt reaches 1,024
    tokens = "select step, case_id, input_tokens, output_tokens, cache_read from results "
    tokens += "where run_id=? order by step, case_id"
    assert _query(_isolated_home, tokens, b["run"]["id"]) == _query(
        _isolated_home, tokens, s["run"]["id"]
    )
    models = _query(_isolated_home, "select distinct step, model from results order by step")
    assert models == [("generate", "openai:gpt-5-mini"), ("grade", "openai:gpt-4.1-mini")]


def test_one_suite_generates_on_both_vendors_and_grades_on_both(
    tmp_path, env, sandbox, _isolated_home
):
    suite = _suite(
        tmp_path / "s",
        cases=[{**c, "difficulty": "easy" if i % 2 else "hard"} for i, c in enumerate(CASES)],
        generate={"model": "route", "max_tokens": 32},
        routing={"easy": "openai:gpt-5-nano", "hard": "haiku", "default": "haiku"},
        grade=[
            {"contains": "{{ target }}"},
            RUBRIC,
            {
                "name": "opus-judge",
                "rubric": {"model": "opus", "rubric": "Says yes?", "pass": ">= 4"},
            },
        ],
    )
    result = run_cli(["run", str(suite), "--json"], env)
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    stats = sandbox.stats()
    # each step: one Anthropic batch and one OpenAI batch (one model per OpenAI input file)
    assert (stats["batches_created"], stats["openai_batches_created"]) == (2, 2)
    assert report["cases_passed"] == 4  # the two "no" answers fail
    lines = {(c["step"], c["model"]) for c in report["costs"]}
    assert lines == {
        ("generate", "claude-haiku-5-5"),
        ("generate", "openai:gpt-5-nano"),
        ("grade", "openai:gpt-4.1-mini"),
        ("grade", "claude-opus-5-5"),
    }
    assert _files_left(sandbox) == []


def test_a_sweep_spans_both_vendors(tmp_path, env, sandbox, _isolated_home):
    suite = _suite(tmp_path / "s", grade=[{"contains": "{{ target }}"}])
    result = run_cli(["sweep", str(suite), "--models", "haiku,openai:gpt-5-mini", "--json"], env)
    assert result.code == 0, result.stderr
    table = json.loads(result.stdout)
    assert {v["name"] for v in table["variants"]} == {
        "model=haiku",
        "model=openai:gpt-5-mini",
    }
    stats = sandbox.stats()
    assert (stats["batches_created"], stats["openai_batches_created"]) == (1, 1)


def test_a_missing_openai_key_stops_the_run_before_anything_is_written(
    tmp_path, cli_env, _isolated_home
):
    result = run_cli(["run", str(_suite(tmp_path / "s"))], cli_env)  # no OPENAI_API_KEY
    assert result.code == 2
    assert "OPENAI_API_KEY" in result.stderr
    assert not (_isolated_home / "evalbatch.db").exists() or not _query(
        _isolated_home, "select id from runs"
    )


# -- crashes at the two-step journal's points -----------------------------------------------------
CRASH_POINTS = [
    "submit.after_upload",  # the input file is uploaded; its id never reached the store
    "submit.after_upload_id",  # its id is stored; the batch was never created
    "submit.after_create.grade",  # the grading batch exists; its handle never reached the store
    "collect.before_release",  # results stored; the batch's files not yet deleted
]
_REFERENCE: list[list[tuple]] = []


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_sigkill_at_each_openai_failpoint_then_collect(
    point, tmp_path, env, sandbox, _isolated_home
):
    if not _REFERENCE:
        clean = run_cli(["run", str(_suite(tmp_path / "ref")), "--json"], env)
        assert clean.code == 0, clean.stderr
        _REFERENCE.append(_scoreboard(_isolated_home, json.loads(clean.stdout)["run"]["id"]))
    sandbox.stats(reset=True)
    crashing = {**env, "EVALBATCH_FAILPOINT": point}
    crashed = run_cli(["run", str(_suite(tmp_path / "s")), "--detach"], crashing)
    run_id = re.search(r"run (\S+): 6 cases", crashed.stderr).group(1)
    if crashed.code == 0:  # the point lies past submission: the morning collect crashes there
        crashed = run_cli(["collect", "--wait"], crashing)
    assert crashed.code == -signal.SIGKILL, (crashed.code, crashed.stderr)

    collected = run_cli(["collect", "--wait", "--json"], env)
    assert collected.code == 0, collected.stderr
    assert json.loads(collected.stdout) == [{"run_id": run_id, "status": "done"}]
    stats = sandbox.stats()
    assert stats["openai_batches_created"] == 2, stats  # one generate, one grade: nothing twice
    assert stats["openai_items_completed"] == 12
    assert _files_left(sandbox) == []  # no upload, output or error file leaked
    assert _scoreboard(_isolated_home, run_id) == _REFERENCE[0]
    stored = _query(_isolated_home, "select count(*) from results where run_id=?", run_id)
    assert stored == [(12,)]  # every paid result stored once


def test_attach_adopts_an_openai_batch_and_a_wrong_one_is_refused(
    tmp_path, env, sandbox, _isolated_home
):
    """What a person does when the provider cannot be listed: adopt the batch by its id."""
    crashing = {**env, "EVALBATCH_FAILPOINT": "submit.after_create"}
    crashed = run_cli(["run", str(_suite(tmp_path / "s")), "--detach"], crashing)
    assert crashed.code == -signal.SIGKILL, crashed.stderr
    run_id = re.search(r"run (\S+): 6 cases", crashed.stderr).group(1)
    with openai.OpenAI(base_url=f"{sandbox.base_url}/v1", api_key="k", max_retries=0) as client:
        [batch] = client.batches.list()
        other = client.batches.create(
            input_file_id=client.files.create(file=("x.jsonl", b""), purpose="batch").id,
            endpoint="/v1/chat/completions",
            completion_window="24h",
        )
    refused = run_cli(["collect", run_id, "--attach", other.id], env)
    assert refused.code == 2 and "is not one of run" in refused.stderr, refused.stderr
    adopted = run_cli(["collect", run_id, "--attach", batch.id, "--wait", "--json"], env)
    assert adopted.code == 0, adopted.stderr
    assert json.loads(adopted.stdout) == [{"run_id": run_id, "status": "done"}]
    assert sandbox.stats()["openai_batches_created"] == 3  # ours twice (generate, grade) + other
    assert _files_left(sandbox) == ["x.jsonl"]  # ours are all deleted; the stranger's is kept


class TestFaults:
    @pytest.fixture
    def sandbox_config(self) -> SandboxConfig:
        faults = FaultConfig(errored=0.2, expired=0.1, rate_429=0.05, truncate_results=True)
        return SandboxConfig(responder=_responder, batch_latency=0.0, seed=3, faults=faults)

    def test_failed_and_expired_items_are_sent_again_never_stored(
        self, tmp_path, env, sandbox, _isolated_home
    ):
        suite = _suite(tmp_path / "s", retries=6)
        result = run_cli(["run", str(suite), "--json"], env)
        assert result.code == 0, result.stderr
        stats = sandbox.stats()
        assert stats["openai_items_failed"] + stats["openai_items_expired"] > 0
        assert stats["openai_batches_created"] > 2  # follow-up batches for the failed items
        kinds = _query(_isolated_home, "select kind, count(*) from results group by kind")
        assert kinds == [("succeeded", 12)]
        assert _files_left(sandbox) == []


# -- plan against the run: automatic prefix caching ---------------------------------------------
class TestPlan:
    @pytest.fixture
    def sandbox_config(self) -> SandboxConfig:
        from .test_plan import fixed_length_responder

        return SandboxConfig(responder=fixed_length_responder, batch_latency=0.0)

    def test_plan_projects_automatic_caching_token_for_token(self, tmp_path, env, sandbox):
        """Best case (the sandbox's defaults: items one at a time, every item reads): OpenAI
        reads the shared system prompt in steps of 128 past 1,024 tokens, writes nothing and is
        not warmed; the Anthropic model in the same suite is warmed and written as before."""
        from .test_plan import plan_suite, plan_then_run

        suite = plan_suite(
            tmp_path / "s",
            routing={
                "easy": "openai:gpt-5-nano",
                "medium": "openai:gpt-5-mini",
                "hard": "haiku",
                "default": "haiku",
            },
            grade=[
                {"rubric": {"model": "openai:gpt-4.1-mini", "rubric": "Right?", "pass": ">= 4"}}
            ],
            cache={"mode": "auto", "warm": True},
        )
        plan, report = plan_then_run(suite, env)
        keys = ("requests", "input_tokens", "cache_write_tokens", "cache_read_tokens")
        ledger = {(r["step"], r["model"]): tuple(r[k] for k in keys) for r in report["costs"]}
        assert {(r["step"], r["model"]): tuple(r[k] for k in keys) for r in plan["lines"]} == ledger
        assert {m for step, m in ledger if step == "warm"} == {"claude-haiku-5-5"}
        read = ledger[("generate", "openai:gpt-5-mini")][3]
        assert read > 0 and read % 128 == 0  # 1,024 + 128 k per request that read
        assert ledger[("generate", "openai:gpt-5-mini")][2] == 0  # no write is ever reported
        assert plan["strategies"]["plan"] == pytest.approx(report["totals"]["cost"], rel=0.01)


def test_calibrate_measures_an_openai_candidate_grader_against_opus(
    tmp_path, env, sandbox, _isolated_home
):
    # opus grades the run; a cheaper grader of the other vendor is the candidate. The
    # responder grades alike on every model, so the candidate agrees on every case.
    opus = {"name": "judge", "rubric": {"model": "opus", "rubric": "Says yes?", "pass": ">= 4"}}
    suite = _suite(tmp_path / "s", generate={"model": "haiku", "max_tokens": 32}, grade=[opus])
    ran = run_cli(["run", str(suite), "--json"], env)
    assert ran.code == 0, ran.stderr
    run_id = json.loads(ran.stdout)["run"]["id"]
    result = run_cli(
        ["calibrate", run_id, "--step", "grade", "--candidates", "openai:gpt-4.1-mini", "--json"],
        env,
    )
    assert result.code == 0, result.stderr
    data = json.loads(result.stdout)
    (candidate,) = data["candidates"]
    assert candidate["model"] == "openai:gpt-4.1-mini"
    assert candidate["agreement"] == 1.0 and candidate["n"] == len(CASES)
    assert sandbox.stats()["openai_batches_created"] == 1  # the candidate's grading, batched
    assert _files_left(sandbox) == []

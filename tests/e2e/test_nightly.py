"""The nightly job: detach and collect, crashes at the worst moments, faults, chunking, leases.

A crash is a real SIGKILL of the CLI process at a named point (``EVALBATCH_FAILPOINT``, see
``evalbatch.failpoints``); the sandbox outlives it, so its counters prove that no batch was
created twice, and the store proves that the scoreboard equals an uninterrupted run's. Tests
marked ``both_stores`` run on SQLite and on a real PostgreSQL server.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evalbatch.sandbox import FaultConfig, SandboxConfig
from evalbatch.store.db import open_store

from ..storedb import rows, scalar
from .conftest import run_cli
from .suites import write_suite

CASES = [
    {"id": f"case {i} / ünïcode ✓", "input": f"question {i}: answer {'yes' if i % 3 else 'no'}"}
    for i in range(12)
]


def _rubric_responder(params: dict) -> str:
    text = params["messages"][-1]["content"]
    if "<output>" in text:
        score = 5 if "yes" in text.split("<output>")[1] else 2
        return f'{{"score": {score}, "reasoning": "graded"}}'
    return text


def _suite(folder: Path, **overrides) -> Path:
    return write_suite(
        folder,
        cases=[{**c, "target": "yes"} for c in CASES],
        grade=[
            {"contains": "{{ target }}"},
            {"rubric": {"model": "opus", "rubric": "Does it say yes?", "pass": ">= 4"}},
        ],
        **overrides,
    )


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return SandboxConfig(responder=_rubric_responder, batch_latency=0.0)


def _scoreboard(url: str, run_id: str) -> list[tuple]:
    return rows(
        url,
        "select case_id, epoch, grader, passed, value, error from scores where run_id=? "
        "order by case_id, grader",
        run_id,
    )


def _results(url: str, run_id: str) -> list[tuple]:
    return rows(
        url,
        "select step, case_id, grader, kind, text, input_tokens, output_tokens, cost_usd "
        "from results where run_id=? order by step, case_id, grader",
        run_id,
    )


_REFERENCE: list[list[tuple]] = []


def _count(url: str, table: str, where: str, run_id: str) -> int:
    return int(scalar(url, f"select count(*) from {table} where run_id=? and {where}", run_id))


def _reference(tmp_path: Path, env: dict[str, str], url: str) -> list[tuple]:
    """The uninterrupted run's scoreboard (deterministic: computed once per session)."""
    if not _REFERENCE:
        result = run_cli(["run", str(_suite(tmp_path / "ref")), "--json"], env)
        assert result.code == 0, result.stderr
        _REFERENCE.append(_scoreboard(url, json.loads(result.stdout)["run"]["id"]))
    return _REFERENCE[0]


# -- detach and collect, with the sandbox as a separate process ---------------------------------
@pytest.fixture
def external_sandbox(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "evalbatch", "sandbox", "--batch-latency", "1.5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        assert match, f"sandbox did not start: {line!r}"
        yield match.group(1)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
        assert proc.returncode == 0


@pytest.mark.both_stores
def test_detach_then_collect_finishes_the_run(tmp_path, cli_env, external_sandbox):
    env = {**cli_env, "ANTHROPIC_BASE_URL": external_sandbox}
    suite = write_suite(tmp_path / "s")
    started = time.monotonic()
    submitted = run_cli(["run", str(suite), "--detach"], env)
    assert submitted.code == 0, submitted.stderr
    assert time.monotonic() - started < 20
    run_id = submitted.stdout.strip()
    assert f"evalbatch collect {run_id}" in submitted.stderr

    status = run_cli(["status", run_id, "--json"], env)
    assert status.code == 0, status.stderr
    state = json.loads(status.stdout)
    state = state[0] if isinstance(state, list) else state
    assert state["status"] == "generate"
    assert state["batches"][0]["provider_batch_id"].startswith("msgbatch_")

    collected = run_cli(["collect", "--wait", "--json"], env)
    assert collected.code == 0, collected.stderr
    assert json.loads(collected.stdout) == [{"run_id": run_id, "status": "done"}]
    report = run_cli(["report", run_id, "--format", "json"], env)
    assert json.loads(report.stdout)["cases_passed"] == 3
    again = run_cli(["collect"], env)
    assert again.code == 0 and "no open runs" in again.stderr


def test_detach_with_in_process_sandbox_is_refused(tmp_path, _isolated_home):
    env = {"PATH": os.environ["PATH"], "EVALBATCH_HOME": str(_isolated_home)}
    result = run_cli(["run", str(write_suite(tmp_path / "s")), "--sandbox", "--detach"], env)
    assert result.code == 2
    assert "--detach with --sandbox" in result.stderr


# -- crashes ------------------------------------------------------------------------------------
CRASH_POINTS = [
    "submit.after_intent",  # intent committed, provider never called
    "submit.after_create",  # provider created the batch; the handle never reached the store
    "submit.after_handle",
    "collect.mid_stream",  # some results stored, the rest not
    "grade.after_plan",  # grading planned, nothing submitted
    "submit.after_create.grade",  # the grading batch's create, handle lost
    "collect.mid_stream:5",  # halfway through the grading results
    "score.before",
]
# On PostgreSQL, the points where a transaction is cut: the intent, the lost handle, results
# half stored, scoring. (The others exercise the engine, which is the same on both stores.)
POSTGRES_CRASH_POINTS = [
    "submit.after_intent",
    "submit.after_create",
    "collect.mid_stream",
    "score.before",
]
CRASHES = [pytest.param("sqlite", p, id=f"sqlite-{p}") for p in CRASH_POINTS] + [
    pytest.param("postgresql", p, id=f"postgresql-{p}", marks=pytest.mark.postgres)
    for p in POSTGRES_CRASH_POINTS
]


@pytest.mark.parametrize(("store_url", "point"), CRASHES, indirect=["store_url"])
def test_sigkill_anywhere_then_collect_gives_the_same_scoreboard_and_no_duplicate_batch(
    point, tmp_path, cli_env, sandbox, store_url
):
    reference = _reference(tmp_path, cli_env, store_url)
    sandbox.stats(reset=True)
    env = {**cli_env, "EVALBATCH_FAILPOINT": point, "EVALBATCH_INGEST_CHUNK": "3"}
    crashed = run_cli(["run", str(_suite(tmp_path / "s")), "--detach"], env)
    run_id = re.search(r"run (\S+): 12 cases", crashed.stderr).group(1)
    if crashed.code == 0:  # the point lies past submission: the morning collect crashes there
        crashed = run_cli(["collect", "--wait"], env)
    assert crashed.code == -signal.SIGKILL, (crashed.code, crashed.stderr)

    collected = run_cli(["collect", "--wait", "--json"], cli_env)
    assert collected.code == 0, collected.stderr
    assert json.loads(collected.stdout) == [{"run_id": run_id, "status": "done"}]

    stats = sandbox.stats()
    assert stats["batches_created"] == 2, stats  # one generate, one grade: nothing twice
    assert stats["items_succeeded"] == 24
    assert _scoreboard(store_url, run_id) == reference
    assert len(_results(store_url, run_id)) == 24  # every paid result stored once


# -- faults -------------------------------------------------------------------------------------
@pytest.mark.both_stores
class TestFaults:
    @pytest.fixture
    def sandbox_config(self) -> SandboxConfig:
        return SandboxConfig(
            responder=_rubric_responder,
            seed=7,
            faults=FaultConfig(
                errored=0.05,
                expired=0.02,
                rate_429=0.1,
                rate_529=0.05,
                rate_500=0.05,
                truncate_results=True,
                retry_after_s=0.01,
            ),
        )

    def test_faults_are_retried_and_never_recorded_as_results(
        self, tmp_path, cli_env, sandbox, store_url
    ):
        cases = [{"id": f"c{i}", "input": f"q{i} yes", "target": "yes"} for i in range(200)]
        # 5 tries: 5% errored + 2% expired items almost never fail five times in a row
        suite = _suite(tmp_path / "s", retries=4)
        suite_data = suite.read_text()
        (tmp_path / "s" / "cases.jsonl").write_text("".join(json.dumps(c) + "\n" for c in cases))
        suite.write_text(suite_data)
        result = run_cli(["run", str(suite), "--json"], cli_env, timeout=240)
        assert result.code == 0, result.stderr
        run_id = json.loads(result.stdout)["run"]["id"]
        stats = sandbox.stats()
        assert stats["items_errored"] > 0 and stats["items_expired"] > 0  # faults did happen
        http_faults = sum(n for k, n in stats.items() if re.fullmatch(r"http \S+ (429|500|529)", k))
        assert http_faults > 0
        statuses = dict(
            rows(
                store_url,
                "select status, count(*) from requests where run_id=? and step!='warm' "
                "group by status",
                run_id,
            )
        )
        # an errored (overloaded, api_error) or expired item is not a result: sent again
        assert statuses == {"succeeded": 400}
        kinds = dict(rows(store_url, "select kind, count(*) from results group by kind"))
        assert kinds == {"succeeded": 400}
        decided = "(passed is not null or error is not null)"
        assert _count(store_url, "scores", decided, run_id) == 400
        dupes = scalar(
            store_url,
            "select count(*) - count(distinct request_id) from results where run_id=?",
            run_id,
        )
        assert dupes == 0

    def test_sync_mode_retries_through_429_529_and_500(self, tmp_path, cli_env, sandbox, store_url):
        cases = [{"id": f"c{i}", "input": f"q{i} yes", "target": "yes"} for i in range(60)]
        suite = write_suite(tmp_path / "s", cases=cases, mode="sync", retries=4)
        result = run_cli(["run", str(suite), "--json"], cli_env, timeout=240)
        assert result.code == 0, result.stderr
        report = json.loads(result.stdout)
        stats = sandbox.stats()
        assert sum(n for k, n in stats.items() if re.fullmatch(r"http messages (429|500|529)", k))
        assert report["cases_passed"] == 60  # every request got through in the end
        (counts,) = rows(store_url, "select count(distinct request_id), count(*) from results")
        assert counts == (60, 60)


# -- chunking -----------------------------------------------------------------------------------
@pytest.mark.both_stores
def test_a_step_is_split_to_the_provider_limits_with_valid_custom_ids(
    tmp_path, cli_env, sandbox, store_url
):
    limits = tmp_path / "limits.toml"
    limits.write_text("[anthropic]\nbatch_max_requests = 5\nbatch_max_bytes = 256000000\n")
    env = {**cli_env, "EVALBATCH_LIMITS": str(limits)}
    result = run_cli(["run", str(_suite(tmp_path / "s")), "--json"], env)
    assert result.code == 0, result.stderr
    run_id = json.loads(result.stdout)["run"]["id"]
    assert sandbox.stats()["batches_created"] == 6  # 12 generate + 12 grade, 5 per batch
    assert _scoreboard(store_url, run_id) == _reference(tmp_path, cli_env, store_url)
    sizes = [
        n for (n,) in rows(store_url, "select request_count from batches where run_id=?", run_id)
    ]
    assert sorted(sizes) == [2, 2, 5, 5, 5, 5]


def test_byte_limit_splits_too(tmp_path, cli_env, sandbox, _isolated_home):
    limits = tmp_path / "limits.toml"
    limits.write_text("[anthropic]\nbatch_max_requests = 100000\nbatch_max_bytes = 400\n")
    env = {**cli_env, "EVALBATCH_LIMITS": str(limits)}
    result = run_cli(["run", str(write_suite(tmp_path / "s")), "--json"], env)
    assert result.code == 0, result.stderr
    assert sandbox.stats()["batches_created"] >= 2


# -- leases -------------------------------------------------------------------------------------
@pytest.mark.both_stores
def test_a_second_collector_skips_a_run_that_is_being_advanced(
    tmp_path, cli_env, sandbox, store_url
):
    env = {**cli_env, "EVALBATCH_FAILPOINT": "submit.after_handle"}
    crashed = run_cli(["run", str(_suite(tmp_path / "s")), "--detach"], env)
    run_id = re.search(r"run (\S+): 12 cases", crashed.stderr).group(1)
    live_holder = f"{socket.gethostname()}:{os.getpid()}:other"  # this test process: alive
    with open_store(None) as store:
        assert store.leases.acquire(run_id, live_holder) is None
        skipped = run_cli(["collect", run_id, "--json"], cli_env)
        assert skipped.code == 0, skipped.stderr
        assert json.loads(skipped.stdout)[0]["status"] == "skipped"
        assert f"is being collected by {socket.gethostname()}:{os.getpid()} since" in skipped.stderr
        store.leases.release(run_id, live_holder)
    done = run_cli(["collect", run_id, "--wait", "--json"], cli_env)
    assert json.loads(done.stdout)[0]["status"] == "done"


@pytest.mark.both_stores
def test_a_lease_left_by_a_killed_process_does_not_block_collect(
    tmp_path, cli_env, sandbox, store_url
):
    env = {**cli_env, "EVALBATCH_FAILPOINT": "submit.after_handle"}
    run_cli(["run", str(_suite(tmp_path / "s")), "--detach"], env)
    ((holder,),) = rows(store_url, "select holder from leases")
    assert holder.startswith(socket.gethostname())  # the killed process's lease is still there
    done = run_cli(["collect", "--wait", "--json"], cli_env)
    assert json.loads(done.stdout)[0]["status"] == "done"


# -- needs attention ----------------------------------------------------------------------------
def test_an_unreachable_provider_puts_the_run_in_needs_attention(
    tmp_path, cli_env, sandbox, _isolated_home
):
    submitted = run_cli(
        ["run", str(_suite(tmp_path / "s")), "--detach"],
        {**cli_env, "EVALBATCH_FAILPOINT": "submit.after_handle"},
    )
    assert submitted.code == -signal.SIGKILL
    dead = {**cli_env, "ANTHROPIC_BASE_URL": "http://127.0.0.1:9", "EVALBATCH_UNREACHABLE_S": "0"}
    for _ in range(2):
        attempt = run_cli(["collect", "--json"], dead)
        assert attempt.code == 0, attempt.stderr
        assert "try again later" in json.loads(attempt.stdout)[0]["note"]
    stuck = run_cli(["collect", "--json"], dead)
    assert stuck.code == 3
    entry = json.loads(stuck.stdout)[0]
    assert entry["status"] == "needs_attention" and "unreachable" in entry["note"]
    healed = run_cli(["collect", "--wait", "--json"], cli_env)  # the provider is back
    assert json.loads(healed.stdout)[0]["status"] == "done"


# -- cancel -------------------------------------------------------------------------------------
class TestCancel:
    @pytest.fixture
    def sandbox_config(self) -> SandboxConfig:
        return SandboxConfig(responder=_rubric_responder, batch_latency=30.0)

    @pytest.mark.both_stores
    def test_cancel_stops_the_batches_and_keeps_what_was_finished(
        self, tmp_path, cli_env, sandbox, store_url
    ):
        submitted = run_cli(["run", str(_suite(tmp_path / "s")), "--detach"], cli_env)
        assert submitted.code == 0, submitted.stderr
        run_id = submitted.stdout.strip()
        canceled = run_cli(["cancel", run_id, "--json"], cli_env)
        assert canceled.code == 0, canceled.stderr
        assert json.loads(canceled.stdout) == {
            "run_id": run_id,
            "status": "canceling",
            "batches_canceled": 1,
        }
        done = run_cli(["collect", "--wait", "--json"], cli_env)
        assert json.loads(done.stdout) == [{"run_id": run_id, "status": "canceled"}]
        stats = sandbox.stats()
        assert stats["batches_created"] == 1  # canceled items are terminal: nothing resubmitted
        kinds = rows(store_url, "select kind, count(*) from results group by kind")
        assert kinds == [("canceled", 12)]
        assert run_cli(["collect"], cli_env).stderr.strip() == "no open runs"
        (state,) = json.loads(run_cli(["status", run_id, "--json"], cli_env).stdout)
        (batch,) = state["batches"]
        assert batch["counts"]["processing"] == 0 and batch["counts"]["canceled"] == 12

    def test_latest_in_compare_is_the_newest_done_run_not_a_canceled_one(
        self, tmp_path, cli_env, sandbox
    ):
        suite = _suite(tmp_path / "s")
        done = ["run", str(suite), "--mode", "sync", "--json"]  # not through the slow batches
        first = json.loads(run_cli(done, cli_env).stdout)["run"]["id"]
        second = json.loads(run_cli(done, cli_env).stdout)["run"]["id"]
        third = run_cli(["run", str(suite), "--detach"], cli_env).stdout.strip()
        assert run_cli(["cancel", third], cli_env).code == 0
        compared = run_cli(["compare", first, "latest", "--format", "json"], cli_env)
        assert compared.code == 0, compared.stderr
        assert json.loads(compared.stdout)["new"]["id"] == second


# -- non-retryable item errors ------------------------------------------------------------------
def test_an_invalid_request_is_terminal_at_once_with_the_providers_message(
    tmp_path, cli_env, sandbox, _isolated_home
):
    # evalbatch knows a model the provider (this sandbox) rejects: every item comes back
    # `errored` with invalid_request_error, which no retry can fix.
    models = tmp_path / "models.toml"
    models.write_text(
        '[models."claude-test-0"]\nstrength = 10\nmin_cache_tokens = 1024\n'
        "max_output_tokens = 4096\n"
    )
    pricing = tmp_path / "pricing.toml"
    pricing.write_text('[models."claude-test-0"]\ninput = 1.0\noutput = 1.0\n')
    env = {**cli_env, "EVALBATCH_MODELS": str(models), "EVALBATCH_PRICING": str(pricing)}
    suite = write_suite(tmp_path / "s", generate={"model": "claude-test-0"})
    result = run_cli(["run", str(suite), "--json"], env)
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    assert sandbox.stats()["batches_created"] == 1  # not resubmitted
    assert report["outcomes"]["generate"] == {"errored": 4}
    assert report["errors"][0]["error"] == (
        "invalid_request_error: model: 'claude-test-0' is not a known model"
    )
    text = run_cli(["report", report["run"]["id"]], env).stdout
    assert "is not a known model" in text


# -- a provider that cannot list its batches ----------------------------------------------------
@pytest.mark.both_stores
class TestNoListing:
    @pytest.fixture
    def sandbox_config(self) -> SandboxConfig:
        return SandboxConfig(responder="echo", batch_latency=0.5, list_batches=False)

    def _orphan(self, tmp_path, cli_env) -> str:
        env = {**cli_env, "EVALBATCH_FAILPOINT": "submit.after_create"}
        killed = run_cli(["run", str(_suite(tmp_path / "s")), "--detach"], env)
        assert killed.code != 0
        return re.search(r"run (\S+): 12 cases", killed.stderr).group(1)

    def test_an_orphaned_batch_is_named_and_can_be_attached(self, tmp_path, cli_env, sandbox):
        run_id = self._orphan(tmp_path, cli_env)
        stuck = run_cli(["collect", run_id, "--json"], cli_env)
        assert stuck.code == 3
        (item,) = json.loads(stuck.stdout)
        assert item["status"] == "needs_attention"
        assert "12 requests" in item["note"] and "--attach BATCH_ID" in item["note"]
        # cancel cannot reach a batch it has no id for, and says so instead of "canceled"
        canceled = run_cli(["cancel", run_id, "--json"], cli_env)
        assert json.loads(canceled.stdout)["unconfirmed_batches"] == 1
        assert "--attach BATCH_ID" in canceled.stderr
        (batch_id,) = sandbox.batch_ids()
        wrong = run_cli(["collect", run_id, "--attach", "msgbatch_nope"], cli_env)
        assert wrong.code in (2, 3) and "Traceback" not in wrong.stderr
        attached = run_cli(["collect", run_id, "--attach", batch_id, "--wait", "--json"], cli_env)
        assert attached.code == 0, attached.stderr
        assert json.loads(attached.stdout)[0]["status"] == "canceled"  # the cancel stands
        assert sandbox.stats()["batches_created"] == 1  # adopted, never sent twice

    def test_a_batch_that_never_reached_the_provider_can_be_resubmitted(
        self, tmp_path, cli_env, sandbox
    ):
        env = {**cli_env, "EVALBATCH_FAILPOINT": "submit.after_intent"}
        killed = run_cli(["run", str(_suite(tmp_path / "s")), "--detach"], env)
        run_id = re.search(r"run (\S+): 12 cases", killed.stderr).group(1)
        assert run_cli(["collect", run_id], cli_env).code == 3  # cannot tell: needs a person
        done = run_cli(["collect", run_id, "--resubmit", "--wait", "--json"], cli_env)
        assert done.code == 0, done.stderr
        assert json.loads(done.stdout)[0]["status"] == "done"
        assert sandbox.stats()["batches_created"] == 2  # the generate batch, then grading


# -- two orphans alike ---------------------------------------------------------------------------
class TestOrphansAlike:
    @pytest.fixture
    def sandbox_config(self) -> SandboxConfig:
        return SandboxConfig(responder="echo", batch_latency=15.0)

    def test_two_runs_orphaned_batches_of_one_size_are_each_adopted_by_their_own_run(
        self, tmp_path, cli_env, sandbox, store_url
    ):
        # Both runs lose the handle of a 4-request batch; the first one's batch is the older.
        # Reconciling the second run first must not adopt the first run's batch (both still
        # running, so their custom_ids cannot be checked yet): it waits for them to end.
        env = {**cli_env, "EVALBATCH_FAILPOINT": "submit.after_create"}
        first, second = (
            re.search(
                r"run (\S+): 4 cases",
                run_cli(["run", str(write_suite(tmp_path / name)), "--detach"], env).stderr,
            ).group(1)
            for name in ("a", "b")
        )
        early = run_cli(["collect", second, "--json"], cli_env)  # both batches still running
        assert json.loads(early.stdout)[0]["status"] == "generate", early.stderr
        for run_id in (second, first):
            done = run_cli(["collect", run_id, "--wait", "--json"], cli_env)
            assert json.loads(done.stdout)[0]["status"] == "done", done.stderr
        assert sandbox.stats()["batches_created"] == 2  # one each: nothing sent again
        for run_id in (first, second):
            stored = rows(store_url, "select text from results where run_id=?", run_id)
            assert len(stored) == 4  # its own results, from its own batch

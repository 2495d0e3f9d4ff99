"""What is never a result: a dead URL, a 404 page, a rejected key, a rate limit. Such runs end
needs_attention (exit 3) naming the URL and the error, keep the requests pending, and
`collect RUN` resumes them; a run without graders works; one broken run never stops `collect
--all`; outputs holding any Unicode line separator survive batch and sync intact."""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from evalbatch.sandbox import SandboxConfig, SandboxServer
from evalbatch.sandbox.config import RateLimit

from .conftest import env_for, run_cli
from .suites import write_suite


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _statuses(home: Path) -> dict[str, int]:
    with sqlite3.connect(home / "evalbatch.db") as db:
        return dict(db.execute("select status, count(*) from requests group by status"))


def _results(home: Path) -> int:
    with sqlite3.connect(home / "evalbatch.db") as db:
        return int(db.execute("select count(*) from results").fetchone()[0])


class _Canned(BaseHTTPRequestHandler):
    status = 404
    body = b"<html><body><h1>Not Found</h1></body></html>"
    content_type = "text/html"
    hits = 0

    def _answer(self) -> None:
        type(self).hits += 1
        self.send_response(self.status)
        self.send_header("content-type", self.content_type)
        self.send_header("content-length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def canned() -> Iterator[type[_Canned]]:
    handler = type("Handler", (_Canned,), {"hits": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    handler.url = f"http://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
    try:
        yield handler
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("mode", ["sync", "batch"])
def test_a_dead_url_needs_attention_keeps_everything_pending_and_collect_resumes(
    tmp_path, _isolated_home, mode
):
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = env_for(url, _isolated_home)
    suite = write_suite(tmp_path / "s", mode=mode, retries=1)
    failed = run_cli(["run", str(suite)], env, timeout=240)
    assert failed.code == 3, failed.stdout + failed.stderr
    assert url in failed.stderr
    assert _results(_isolated_home) == 0  # a transport failure is never a result
    listed = json.loads(run_cli(["runs", "--json"], env).stdout)
    run_id = listed[0]["id"]
    if mode == "sync":
        assert listed[0]["status"] == "needs_attention"
        assert _statuses(_isolated_home) == {"pending": 4}
    with SandboxServer(SandboxConfig(port=port)):  # the provider is back at the same URL
        resumed = run_cli(["collect", run_id, "--wait", "--json"], env, timeout=240)
    assert resumed.code == 0, resumed.stderr
    assert json.loads(resumed.stdout)[0]["status"] == "done"
    report = json.loads(run_cli(["report", run_id, "--format", "json"], env).stdout)
    assert report["cases_passed"] == 3 and report["cases_scored"] == 4


@pytest.mark.parametrize("mode", ["sync", "batch"])
def test_a_url_answering_html_404s_stops_at_once_and_says_so(
    tmp_path, _isolated_home, canned, mode
):
    env = env_for(canned.url, _isolated_home)
    started = time.monotonic()
    result = run_cli(["run", str(write_suite(tmp_path / "s", mode=mode))], env)
    assert result.code == 3, result.stderr
    assert time.monotonic() - started < 20
    assert "no Anthropic API there" in result.stderr and canned.url in result.stderr
    assert _results(_isolated_home) == 0
    assert set(_statuses(_isolated_home)) <= {"pending", "queued"}


@pytest.mark.parametrize("mode", ["sync", "batch"])
def test_a_rejected_key_stops_at_once(tmp_path, _isolated_home, canned, mode):
    canned.status, canned.content_type = 401, "application/json"
    canned.body = json.dumps(
        {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}
    ).encode()
    env = env_for(canned.url, _isolated_home)
    started = time.monotonic()
    result = run_cli(["run", str(write_suite(tmp_path / "s", mode=mode))], env)
    assert result.code == 3, result.stderr
    assert time.monotonic() - started < 15  # no minute of retries
    assert "the API key was rejected" in result.stderr
    assert "test-key" not in result.stderr
    assert canned.hits <= 4  # it stopped sending after the first refusals
    assert _results(_isolated_home) == 0


def test_a_suite_without_graders_runs_and_reports_outputs_and_costs(tmp_path, cli_env):
    suite = write_suite(tmp_path / "s", grade=[])
    result = run_cli(["run", str(suite), "--json"], cli_env)
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["run"]["status"] == "done"
    assert report["graders"] == [] and report["pass_rate"] is None
    assert report["totals"]["cost"] > 0
    text = run_cli(["report", "latest"], cli_env)
    assert text.code == 0 and "cost $" in text.stdout


def test_one_broken_run_does_not_stop_collect_all(tmp_path, cli_env, _isolated_home):
    env = {**cli_env, "EVALBATCH_FAILPOINT": "submit.after_handle"}
    first = run_cli(["run", str(write_suite(tmp_path / "a")), "--detach"], env)
    second = run_cli(["run", str(write_suite(tmp_path / "b")), "--detach"], env)
    assert first.code != 0 and second.code != 0  # both killed after submitting
    runs = json.loads(run_cli(["runs", "--json"], cli_env).stdout)
    broken, healthy = runs[1]["id"], runs[0]["id"]
    with sqlite3.connect(_isolated_home / "evalbatch.db") as db:
        db.execute("update runs set suite = '{not json' where id = ?", (broken,))
    collected = run_cli(["collect", "--all", "--wait", "--json"], cli_env)
    assert collected.code == 3, collected.stderr  # one run needs attention
    by_id = {r["run_id"]: r for r in json.loads(collected.stdout)}
    assert by_id[healthy]["status"] == "done"
    assert by_id[broken]["status"] == "needs_attention"
    assert "unexpected error" in by_id[broken]["note"]


SEPARATORS = "\u2028\u2029\x85\x0b\x0c\x1c\x1d\x1e\r\n"


@pytest.mark.parametrize("mode", ["batch", "sync"])
def test_outputs_with_every_unicode_line_separator_survive(tmp_path, cli_env, _isolated_home, mode):
    cases = [
        {"id": f"c{i}", "input": f"line{i}{sep}after{sep}end", "target": "after"}
        for i, sep in enumerate(SEPARATORS)
    ]
    suite = write_suite(tmp_path / "s", cases=cases, mode=mode)
    result = run_cli(["run", str(suite), "--json"], cli_env)
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["cases_passed"] == len(SEPARATORS)
    with sqlite3.connect(_isolated_home / "evalbatch.db") as db:
        stored = dict(db.execute("select case_id, text from results where step = 'generate'"))
    assert stored == {c["id"]: c["input"] for c in cases}  # the echo responder, byte for byte


class TestRateLimits:
    @pytest.fixture
    def sandbox_config(self) -> SandboxConfig:
        return SandboxConfig(rate_limits=[RateLimit(model="*", rpm=120)])

    def test_sync_paces_to_the_limit_and_loses_no_case(self, tmp_path, cli_env, sandbox):
        # 150 requests against 120 per minute: a burst of 120, then 2 per second
        cases = [{"id": f"c{i}", "input": f"q{i} yes", "target": "yes"} for i in range(150)]
        suite = write_suite(tmp_path / "s", cases=cases, mode="sync")
        started = time.monotonic()
        result = run_cli(["run", str(suite), "--json", "--concurrency", "8"], cli_env)
        elapsed = time.monotonic() - started
        assert result.code == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["cases_passed"] == 150 and report["errors"] == []
        stats = sandbox.stats()
        refused = stats.get("http messages 429", 0)
        assert refused < 0.05 * 150, stats  # pacing from the headers, not from refusals
        assert elapsed < 45  # the allowed rate is ~15 s of refill

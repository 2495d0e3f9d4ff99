"""Bad input through the real CLI: exit 2, one line naming the place, nothing in the store."""

from __future__ import annotations

import os
import sqlite3

from .conftest import run_cli
from .suites import write_suite


def _runs(home) -> int:
    db = home / "evalbatch.db"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        return conn.execute("select count(*) from runs").fetchone()[0]


def test_invalid_suite_exits_2_with_place_and_writes_nothing(tmp_path, cli_env, _isolated_home):
    suite = write_suite(tmp_path / "s", generate={"modle": "haiku"})
    result = run_cli(["run", str(suite)], cli_env)
    assert result.code == 2
    assert "unknown key 'modle' in generate (did you mean 'model'?)" in result.stderr
    assert "suite.yaml:" in result.stderr and "Traceback" not in result.stderr
    assert _runs(_isolated_home) == 0


def test_bad_case_exits_2_and_writes_nothing(tmp_path, cli_env, _isolated_home):
    suite = write_suite(
        tmp_path / "s",
        cases=[{"id": "a", "input": "x", "target": "y"}, {"id": "a", "input": "z", "target": "y"}],
    )
    result = run_cli(["run", str(suite)], cli_env)
    assert result.code == 2
    assert "cases.jsonl:2: duplicate case id 'a' (first at line 1)" in result.stderr
    assert _runs(_isolated_home) == 0


def test_missing_api_key_is_caught_before_anything_is_written(tmp_path, _isolated_home):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    env["EVALBATCH_HOME"] = str(_isolated_home)
    result = run_cli(["run", str(write_suite(tmp_path / "s"))], env)
    assert result.code == 2
    assert "no API key: set ANTHROPIC_API_KEY" in result.stderr
    assert _runs(_isolated_home) == 0


def test_bad_flags_exit_2(tmp_path, cli_env):
    suite = write_suite(tmp_path / "s")
    assert run_cli(["run", str(suite), "--mode", "turbo"], cli_env).code == 2
    assert run_cli(["run", str(suite), "--nope"], cli_env).code == 2
    missing = run_cli(["report", "no-such-run"], cli_env)
    assert missing.code == 2 and "no run 'no-such-run'" in missing.stderr


def test_api_key_never_reaches_output_or_store(tmp_path, cli_env, _isolated_home):
    cli_env = {**cli_env, "ANTHROPIC_API_KEY": "sk-ant-secret-1234567890"}
    suite = write_suite(tmp_path / "s")
    result = run_cli(["--debug", "run", str(suite)], cli_env)
    assert result.code == 0
    assert "sk-ant-secret" not in result.stdout + result.stderr
    for path in _isolated_home.iterdir():
        assert b"sk-ant-secret" not in path.read_bytes()


def test_api_key_stays_out_of_provider_errors(tmp_path, cli_env, _isolated_home):
    submitted = run_cli(["run", str(write_suite(tmp_path / "s")), "--detach"], cli_env)
    assert submitted.code == 0, submitted.stderr
    env = {
        **cli_env,
        "ANTHROPIC_API_KEY": "sk-ant-secret-1234567890",
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:9",  # nothing listens: every call fails
    }
    result = run_cli(["--debug", "collect"], env)
    assert "provider error, try again later" in result.stdout
    assert "sk-ant-secret" not in result.stdout + result.stderr
    for path in _isolated_home.iterdir():
        assert b"sk-ant-secret" not in path.read_bytes()

"""The store as a newcomer and a bad day find it: where it is (found upward from the current
folder, else one per user), a folder that cannot be written, a read-only store (reads work),
a damaged file (exit 3 with the recovery hint). Never a traceback."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import run_cli
from .suites import write_suite


def _env_without_home(cli_env: dict[str, str], data_home: Path) -> dict[str, str]:
    env = {k: v for k, v in cli_env.items() if k != "EVALBATCH_HOME"}
    env["XDG_DATA_HOME"] = str(data_home)  # where platformdirs puts the per-user store
    return env


def test_the_store_is_found_upward_like_git_finds_dot_git(tmp_path, cli_env):
    project = tmp_path / "project"
    (project / ".evalbatch").mkdir(parents=True)
    env = _env_without_home(cli_env, tmp_path / "data")
    suite = write_suite(project / "evals" / "support")
    assert run_cli(["run", str(suite)], env, cwd=project).code == 0
    # from a subfolder, the same store: the run is listed
    deeper = project / "evals" / "support"
    listed = json.loads(run_cli(["runs", "--json"], env, cwd=deeper).stdout)
    assert len(listed) == 1
    assert (project / ".evalbatch" / "evalbatch.db").exists()
    assert not (deeper / ".evalbatch").exists()  # no second store made by accident


def test_without_a_project_store_there_is_one_per_user(tmp_path, cli_env):
    env = _env_without_home(cli_env, tmp_path / "data")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert run_cli(["run", str(write_suite(tmp_path / "s"))], env, cwd=elsewhere).code == 0
    assert (tmp_path / "data" / "evalbatch" / "evalbatch.db").exists()
    assert not (elsewhere / ".evalbatch").exists()


def test_an_empty_runs_says_which_store_it_read(tmp_path, cli_env, _isolated_home):
    result = run_cli(["runs"], cli_env)
    assert result.code == 0
    assert f"no runs in the store at sqlite:///{_isolated_home}" in result.stderr


def test_a_store_folder_that_cannot_be_made_is_one_line_exit_3(tmp_path, cli_env):
    env = {**cli_env, "EVALBATCH_HOME": "/proc/evalbatch-store"}
    result = run_cli(["runs"], env)
    assert result.code == 3, result.stderr
    assert "cannot create the store folder /proc/evalbatch-store" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.fixture
def filled_store(tmp_path, cli_env, _isolated_home) -> Path:
    assert run_cli(["run", str(write_suite(tmp_path / "s"))], cli_env).code == 0
    return _isolated_home


def _as_read_only(home: Path, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """The CLI with the store folder mounted read-only (bubblewrap), as a read-only share is."""
    bwrap = shutil.which("bwrap")
    assert bwrap, "bubblewrap is needed (make test installs it)"
    return subprocess.run(
        [bwrap, "--dev-bind", "/", "/", "--ro-bind", str(home), str(home)]
        + [sys.executable, "-m", "evalbatch", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_read_only_commands_work_on_a_read_only_store(filled_store, cli_env):
    listed = _as_read_only(filled_store, ["runs", "--json"], cli_env)
    assert listed.returncode == 0, listed.stderr
    run_id = json.loads(listed.stdout)[0]["id"]
    report = _as_read_only(filled_store, ["report", run_id, "--format", "json"], cli_env)
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)["cases_passed"] == 3
    status = _as_read_only(filled_store, ["status", run_id, "--json"], cli_env)
    assert status.returncode == 0, status.stderr


def test_writing_to_a_read_only_store_says_so(filled_store, cli_env, tmp_path):
    result = _as_read_only(filled_store, ["run", str(write_suite(tmp_path / "t"))], cli_env)
    assert result.returncode == 3, result.stderr
    assert "is read-only" in result.stderr and "Traceback" not in result.stderr


def test_a_damaged_store_is_exit_3_with_the_recovery_hint(filled_store, cli_env):
    db = filled_store / "evalbatch.db"
    with sqlite3.connect(db) as conn:
        conn.execute("pragma wal_checkpoint(truncate)")
    data = bytearray(db.read_bytes())
    for i in range(4096, len(data)):  # keep the header page; wreck every other page
        data[i] = (i * 31) % 256
    db.write_bytes(bytes(data))
    for wal in (filled_store / "evalbatch.db-wal", filled_store / "evalbatch.db-shm"):
        wal.unlink(missing_ok=True)
    for args in (["runs"], ["collect", "--all"], ["report", "latest"]):
        result = run_cli(args, cli_env)
        assert result.code == 3, (args, result.stderr)
        assert "is damaged" in result.stderr and ".recover" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_an_error_message_holding_markup_prints_as_written(tmp_path, cli_env):
    suite = tmp_path / "suite.yaml"
    suite.write_text("name: x\n'[/red][bold]boom': 1\n")
    result = run_cli(["run", str(suite)], cli_env)
    assert result.code == 2
    assert "[/red][bold]boom" in result.stderr
    assert os.linesep.join(result.stderr.splitlines()).count("Traceback") == 0


def test_run_ids_print_whole_and_a_unique_prefix_finds_one(tmp_path, cli_env):
    assert run_cli(["run", str(write_suite(tmp_path / "s"))], cli_env).code == 0
    narrow = {**cli_env, "COLUMNS": "60"}
    listed = run_cli(["runs"], narrow)
    (run_id,) = run_cli(["runs", "--ids"], cli_env).stdout.split()
    assert run_id in listed.stdout.replace("\n", "")  # never cut to "2026…", even at 60 columns
    assert run_id in listed.stdout
    short = run_id[:17]  # date, time and two hex digits
    report = run_cli(["report", short, "--format", "json"], cli_env)
    assert report.code == 0, report.stderr
    assert json.loads(report.stdout)["run"]["id"] == run_id
    assert run_cli(["report", "2099"], cli_env).code == 2

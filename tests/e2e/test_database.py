"""`evalbatch db copy` (a laptop's SQLite store into the team's PostgreSQL store, idempotent)
and `evalbatch db upgrade` (migrations on demand), driven through the real CLI."""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import pytest

from evalbatch.analysis.export import export_run
from evalbatch.analysis.summary import summarize
from evalbatch.store.db import open_store
from evalbatch.store.migrations import MIGRATIONS

from ..storedb import rows
from ..view.fixtures import build_view_store
from .conftest import run_cli
from .suites import write_suite

POSTGRES = [pytest.param("postgresql", marks=pytest.mark.postgres)]


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "EVALBATCH_"))}
    return {**env, "EVALBATCH_HOME": str(home), "NO_COLOR": "1", "COLUMNS": "160"}


def _export(url: str, run_id: str) -> str:
    with open_store(url) as store:
        out = io.StringIO()
        export_run(store, run_id, "jsonl", out)
        return out.getvalue()


def _summary(url: str, run_id: str) -> object:
    with open_store(url) as store:
        return _rounded(summarize(store, run_id).to_dict())


def _rounded(value: object) -> object:
    """Sums of floats differ in the last bits with the order each database adds them in."""
    if isinstance(value, float):
        return float(f"{value:.12g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


@pytest.mark.parametrize("store_url", POSTGRES, indirect=True)
def test_copy_moves_finished_runs_once_and_leaves_open_ones(tmp_path, store_url, _isolated_home):
    local = build_view_store(tmp_path / "laptop")  # two finished runs (hostile text), one open
    env = _env(_isolated_home)
    first = run_cli(["db", "copy", local.url, store_url, "--json"], env)
    assert first.code == 0, first.stderr
    outcome = {item["run_id"]: item for item in json.loads(first.stdout)}
    assert {r for r, item in outcome.items() if item["copied"]} == {local.base, local.new}
    assert "open (generate)" in outcome[local.live]["note"]
    for run_id in (local.base, local.new):
        assert _summary(store_url, run_id) == _summary(local.url, run_id)
        assert _export(store_url, run_id) == _export(local.url, run_id)
    for table in ("requests", "results", "scores", "cases", "batches", "prefixes"):
        query = f"select count(*) from {table} where run_id in (?, ?)"
        assert rows(store_url, query, local.base, local.new) == rows(
            local.url, query, local.base, local.new
        ), table
    joined = "select count(*) from results r join requests q on q.id = r.request_id"
    assert rows(store_url, joined) == rows(store_url, "select count(*) from results")

    again = run_cli(["db", "copy", local.url, store_url, "--include-open", "--json"], env)
    assert again.code == 0, again.stderr
    notes = {item["run_id"]: (item["copied"], item["note"]) for item in json.loads(again.stdout)}
    assert notes == {
        local.base: (False, "already there"),
        local.new: (False, "already there"),
        local.live: (True, None),  # asked for: now it is collected from the team store
    }
    listed = run_cli(["runs", "--json"], {**env, "EVALBATCH_DB": store_url})
    assert {r["id"] for r in json.loads(listed.stdout)} == {local.base, local.new, local.live}


@pytest.mark.both_stores
def test_upgrade_applies_pending_migrations_once(store_url, _isolated_home):
    with open_store(store_url, migrate=False) as store:
        assert store.pending_migrations() == [m.__name__ for m in MIGRATIONS]
    env = {**_env(_isolated_home), "EVALBATCH_DB": store_url}
    first = run_cli(["db", "upgrade", "--json"], env)
    assert first.code == 0, first.stderr
    assert json.loads(first.stdout)["applied"] == [m.__name__ for m in MIGRATIONS]
    second = run_cli(["db", "upgrade"], env)
    assert second.code == 0 and "is up to date" in second.stderr


def test_copy_from_a_path_that_is_not_a_store_is_refused_and_creates_nothing(
    tmp_path, _isolated_home
):
    typo = tmp_path / "evalbatch.bd"
    result = run_cli(
        ["db", "copy", str(typo), f"sqlite:///{tmp_path / 'b.db'}"], _env(_isolated_home)
    )
    assert result.code == 2, result.stderr
    assert f"no store at {typo}" in result.stderr
    assert not typo.exists() and not (tmp_path / "b.db").exists()


@pytest.mark.parametrize("store_url", POSTGRES, indirect=True)
def test_a_finished_run_leaves_the_planner_statistics_on_its_rows(
    store_url, cli_env, sandbox, tmp_path
):
    # Without them the report's joins ran as nested loops: 14.5 s at 10,000 cases.
    # (postgres:// is the form dashboards print; it reaches psycopg 3 as well)
    env = {**cli_env, "EVALBATCH_DB": store_url.replace("postgresql+psycopg://", "postgres://")}
    ran = run_cli(["run", str(write_suite(tmp_path / "s")), "--json"], env)
    assert ran.code == 0, ran.stderr
    analyzed = "select relname from pg_stat_user_tables where last_analyze is not null"
    seen: set[str] = set()
    for _ in range(50):  # the server publishes its statistics within a moment
        seen = {name for (name,) in rows(store_url, analyzed)}
        if {"requests", "results", "scores"} <= seen:
            break
        time.sleep(0.1)
    assert {"requests", "results", "scores"} <= seen


def test_copy_into_the_same_store_is_refused(tmp_path, _isolated_home):
    url = f"sqlite:///{tmp_path / 'a.db'}"
    result = run_cli(["db", "copy", url, url], _env(_isolated_home))
    assert result.code == 2 and "the same store" in result.stderr


def test_copy_takes_a_sweep_and_reference_verdicts_and_reports_them_the_same(
    tmp_path, cli_env, sandbox, _isolated_home
):
    # A sweep's batch belongs to its first run; its other runs' requests point at it. A
    # reference-sampled grader keeps the reference verdicts apart. Both must travel.
    suite = write_suite(tmp_path / "s", grade=[{"contains": "{{ target }}"}])
    swept = run_cli(["sweep", str(suite), "--models", "haiku,sonnet", "--json"], cli_env)
    assert swept.code == 0, swept.stderr
    sweep_id = json.loads(swept.stdout)["sweep"]
    rubric = {"rubric": {"model": "haiku", "rubric": "Is it right?", "pass": ">= 4"}}
    ran = run_cli(["run", str(suite), "--json"], cli_env)
    run_id = json.loads(ran.stdout)["run"]["id"]
    regrade = run_cli(
        [
            "regrade",
            run_id,
            "--set",
            f"grade=[{json.dumps(rubric)}]",
            "--set",
            "grade.rubric.reference={model: opus, sample: 0.5}",
            "--json",
        ],
        cli_env,
    )
    assert regrade.code in (0, 1), regrade.stderr  # its gate may fail: not the point here
    regrade_id = json.loads(regrade.stdout)["run"]["id"]

    team = f"sqlite:///{tmp_path / 'team.db'}"
    env = {k: v for k, v in cli_env.items() if k != "EVALBATCH_DB"}
    copied = run_cli(["db", "copy", f"sqlite:///{_isolated_home / 'evalbatch.db'}", team], env)
    assert copied.code == 0, copied.stderr
    local_env = {**env, "EVALBATCH_DB": f"sqlite:///{_isolated_home / 'evalbatch.db'}"}
    team_env = {**env, "EVALBATCH_DB": team}
    for unit in (sweep_id, regrade_id):
        here = run_cli(["report", unit, "--format", "json"], local_env)
        there = run_cli(["report", unit, "--format", "json"], team_env)
        assert there.code == here.code == 0, there.stderr
        assert json.loads(there.stdout) == json.loads(here.stdout)
    with open_store(local_env["EVALBATCH_DB"]) as here, open_store(team) as there:
        verdicts = here.references.of_run(regrade_id)
        assert verdicts and there.references.of_run(regrade_id) == verdicts
    # every request of every swept run still names the batch it went out in
    unlinked = "select count(*) from requests r join runs u on u.id = r.run_id "
    unlinked += "where u.sweep_id is not null and r.batch_id is null"
    assert rows(team, unlinked) == [(0,)]

"""The store on both databases: migrations, the schema, leases (tests marked ``both_stores`` run
on SQLite and on a throwaway PostgreSQL server)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import create_engine

from evalbatch.errors import RunLeased
from evalbatch.records import custom_id, parse_custom_id
from evalbatch.store.db import driver_url, open_store, redact
from evalbatch.store.migrations import apply_migrations, table_columns
from evalbatch.store.records import NewRun


@pytest.mark.both_stores
def test_migrations_apply_once_and_pin_the_schema(store_url) -> None:
    with open_store(store_url) as store, store.engine.begin() as conn:
        assert apply_migrations(conn) == []  # already applied at open
        cols = table_columns(conn)
    assert set(cols) == {
        "_migrations",
        "batches",
        "calibrations",
        "cases",
        "leases",
        "prefixes",
        "reference_scores",
        "requests",
        "results",
        "runs",
        "scores",
        "steps",
        "sweeps",
    }
    assert cols["reference_scores"] == [
        "run_id",
        "case_idx",
        "epoch",
        "grader",
        "case_id",
        "model",
        "passed",
        "value",
        "explanation",
        "error",
    ]
    assert cols["calibrations"] == [
        "id",
        "run_id",
        "step",
        "key",
        "created_at",
        "settings",
        "sample",
        "runs",
    ]
    assert {
        "cost_usd",
        "sync_cost_usd",
        "nocache_cost_usd",
        "naive_cost_usd",
        "cache_write_5m",
        "cache_write_1h",
        "cache_read",
        "route",
    } <= set(cols["results"])
    assert "provider_batch_id" in cols["batches"]
    assert cols["sweeps"] == [
        "id",
        "suite_name",
        "suite_path",
        "created_at",
        "updated_at",
        "finished_at",
        "status",
        "mode",
        "spec",
        "error",
    ]
    assert {"sweep_id", "variant"} <= set(cols["runs"]) and "sweep_id" in cols["batches"]
    assert {"upload_id", "released_at"} <= set(cols["batches"])  # m007: two-step providers


def test_store_uses_wal(tmp_path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 's.db'}").engine
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_default_store_lives_under_evalbatch_home(_isolated_home) -> None:
    open_store()
    assert (_isolated_home / "evalbatch.db").exists()


def test_password_never_reaches_messages() -> None:
    assert redact("postgresql://me:s3cret@db/x") == "postgresql://me:***@db/x"
    assert redact("postgresql://me@db/x") == "postgresql://me@db/x"  # none to hide: none shown


def test_every_postgresql_url_form_goes_through_psycopg_3() -> None:
    # SQLAlchemy 2.0 maps postgresql:// to psycopg2, which the postgres extra does not install
    assert driver_url("postgresql://me@db/x") == "postgresql+psycopg://me@db/x"
    assert driver_url("postgres://me:pw@db:5433/x") == "postgresql+psycopg://me:pw@db:5433/x"
    assert driver_url("postgresql+psycopg://me@db/x") == "postgresql+psycopg://me@db/x"
    assert driver_url("sqlite:///a.db") == "sqlite:///a.db"


@given(
    st.text(alphabet="0123456789abcdefT-", min_size=1, max_size=30),
    st.sampled_from(["generate", "grade", "warm"]),
    st.integers(0, 10**7),
)
def test_custom_ids_round_trip_and_match_the_api_pattern(run_id, step, idx) -> None:
    import re

    cid = custom_id(run_id, step, idx)
    assert re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", cid)
    assert parse_custom_id(cid) == (run_id, step, idx)


@pytest.mark.both_stores
def test_lease_excludes_a_second_holder(store_url) -> None:
    with open_store(store_url) as one, open_store(store_url) as other:
        assert one.leases.acquire("run1", "a") is None
        assert other.leases.acquire("run1", "b").holder == "a"
        assert one.leases.acquire("run1", "a") is None  # renew
        one.leases.release("run1", "a")
        assert other.leases.acquire("run1", "b") is None
        other.leases.release("run1", "b")


@pytest.mark.both_stores
def test_expired_lease_can_be_taken(store_url) -> None:
    with open_store(store_url) as store:
        assert store.leases.acquire("run1", "a", ttl=-1) is None
        assert store.leases.acquire("run1", "b") is None
        store.leases.release("run1", "b")


def test_evalbatch_db_names_the_store_and_a_run_written_there_is_listed_there(
    tmp_path, monkeypatch, _isolated_home
) -> None:
    monkeypatch.setenv("EVALBATCH_DB", f"sqlite:///{tmp_path / 'team.db'}")
    store = open_store()
    run = NewRun(
        id="20260101T000000-abcdef",
        suite_name="demo",
        suite_path="suite.yaml",
        mode="batch",
        manifest_hash="h" * 64,
        manifest={},
        suite_json="{}",
        options={},
        case_count=0,
    )
    store.runs.create(run, iter(()), iter(()))
    store.close()
    assert (tmp_path / "team.db").exists() and not (_isolated_home / "evalbatch.db").exists()
    again = open_store(f"sqlite:///{tmp_path / 'team.db'}")
    assert [r.id for r in again.history.list_runs("demo")] == ["20260101T000000-abcdef"]
    again.close()


_HOLD = """
import sys, time
from evalbatch.store.db import open_store
store = open_store(sys.argv[1])
assert store.leases.acquire("run1", "elsewhere:1:abc") is None  # a holder on another host
print("held", flush=True)
time.sleep(120)
"""


@pytest.mark.both_stores
def test_a_killed_holder_on_another_host_is_taken_over_at_once_on_postgresql(store_url) -> None:
    # SQLite can only tell that a process on this machine is gone (its pid): the lease of a
    # holder elsewhere stands until it expires. PostgreSQL ends the holder's session, and the
    # advisory lock with it, the moment the process dies: the run is free at once.
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, store_url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.communicate()
    with open_store(store_url) as store:
        taken = None
        for _ in range(50):  # the server notices the closed connection within moments
            taken = store.leases.acquire("run1", "here:2:def")
            if taken is None or store.dialect == "sqlite":
                break
            time.sleep(0.1)
        if store.dialect == "postgresql":
            assert taken is None
            store.leases.release("run1", "here:2:def")
        else:
            assert taken is not None and taken.holder == "elsewhere:1:abc"


@pytest.mark.both_stores
def test_a_holder_that_lost_its_lease_cannot_write_a_batch_intent(store_url) -> None:
    with open_store(store_url) as slow, open_store(store_url) as other:
        assert slow.leases.acquire("run1", "slow:1:a", ttl=-1) is None  # expired at once
        assert other.leases.acquire("run1", "other:2:b") is None  # so it is taken over
        with pytest.raises(RunLeased, match="being collected by other:2"):
            slow.batches.record_intent("run1", "generate", "anthropic", [1, 2], 10)
        assert not slow.leases.renew("run1", "slow:1:a")
        other.leases.release("run1", "other:2:b")


def test_a_store_of_the_previous_schema_upgrades_and_keeps_its_batches(tmp_path) -> None:
    """m007 adds the two-step columns to a store whose batches were written before them."""
    from sqlalchemy import text

    from evalbatch.store import migrations

    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = create_engine(url)
    previous = migrations.MIGRATIONS[: migrations.MIGRATIONS.index(migrations.m007_batch_uploads)]
    with old.begin() as conn:
        migrations._meta.create_all(conn)
        for migration in previous:
            migration(conn)
            conn.execute(
                migrations._migrations_table.insert().values(name=migration.__name__, applied_at=0)
            )
        conn.execute(
            text(
                "INSERT INTO runs (id, suite_name, suite_path, created_at, updated_at, status, "
                "mode, manifest_hash, manifest, suite, options, case_count) VALUES "
                "('r1', 's', 's.yaml', 0, 0, 'generate', 'batch', 'h', '{}', '{}', '{}', 0)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO batches (run_id, step, seq, provider, provider_batch_id, status, "
                "request_count, bytes, created_at, poll_failures) VALUES "
                "('r1', 'generate', 1, 'anthropic', 'msgbatch_1', 'in_progress', 3, 10, 0, 0)"
            )
        )
    old.dispose()
    store = open_store(url)
    [batch] = store.batches.open("r1")
    assert (batch.provider_batch_id, batch.upload_id, batch.released_at) == (
        "msgbatch_1",
        None,
        None,
    )
    assert batch.label == f"evalbatch-r1-b{batch.id}"
    assert store.batches.unreleased("r1") == []

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from evalbatch.records import custom_id, parse_custom_id
from evalbatch.store.db import open_store, redact
from evalbatch.store.migrations import apply_migrations, table_columns
from evalbatch.store.records import NewRun


def test_migrations_apply_once_and_pin_the_schema(tmp_path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 's.db'}").engine
    with engine.begin() as conn:
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


def test_store_uses_wal(tmp_path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 's.db'}").engine
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_default_store_lives_under_evalbatch_home(_isolated_home) -> None:
    open_store()
    assert (_isolated_home / "evalbatch.db").exists()


def test_password_never_reaches_messages() -> None:
    assert redact("postgresql://me:s3cret@db/x") == "postgresql://me:***@db/x"


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


def test_lease_excludes_a_second_holder(tmp_path) -> None:
    leases = open_store(f"sqlite:///{tmp_path / 's.db'}").leases
    assert leases.acquire("run1", "a") is None
    assert leases.acquire("run1", "b").holder == "a"
    assert leases.acquire("run1", "a") is None  # renew
    leases.release("run1", "a")
    assert leases.acquire("run1", "b") is None


def test_expired_lease_can_be_taken(tmp_path) -> None:
    leases = open_store(f"sqlite:///{tmp_path / 's.db'}").leases
    assert leases.acquire("run1", "a", ttl=-1) is None
    assert leases.acquire("run1", "b") is None


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

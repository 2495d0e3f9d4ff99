from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import create_engine

from evalbatch.records import custom_id, parse_custom_id
from evalbatch.store.db import open_store, redact
from evalbatch.store.migrations import apply_migrations, table_columns


def test_migrations_apply_once_and_pin_the_schema(tmp_path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 's.db'}").engine
    with engine.begin() as conn:
        assert apply_migrations(conn) == []  # already applied at open
        cols = table_columns(conn)
    assert set(cols) == {
        "_migrations",
        "batches",
        "cases",
        "leases",
        "prefixes",
        "requests",
        "results",
        "runs",
        "scores",
        "steps",
        "sweeps",
    }
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
    assert {"upload_id", "released_at"} <= set(cols["batches"])  # m005: two-step providers


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


def test_unused_engine_helper() -> None:
    # create_engine import keeps the dialect check honest for in-memory stores
    assert create_engine("sqlite://").dialect.name == "sqlite"


def test_a_store_of_the_previous_schema_upgrades_and_keeps_its_batches(tmp_path) -> None:
    """m005 adds the two-step columns to a store whose batches were written before them."""
    from sqlalchemy import text

    from evalbatch.store import migrations

    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = create_engine(url)
    previous = migrations.MIGRATIONS[: migrations.MIGRATIONS.index(migrations.m005_batch_uploads)]
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

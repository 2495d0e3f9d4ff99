"""The store's calibration parts: a store of the previous schema (m001..m003) upgrades to m004
and m005 keeping its data; the reference sample is a seeded hash, nested across fractions."""

from __future__ import annotations

import time

from sqlalchemy import create_engine, inspect, text

from evalbatch.graders.reference import in_sample, parse_reference
from evalbatch.store.db import open_store
from evalbatch.store.migrations import MIGRATIONS, _migrations_table, pending_migrations


def test_a_store_of_the_previous_schema_upgrades(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:
        _migrations_table.metadata.create_all(conn)
        for migration in MIGRATIONS[:3]:  # as the store was before this branch
            migration(conn)
            conn.execute(
                _migrations_table.insert().values(name=migration.__name__, applied_at=time.time())
            )
        conn.execute(
            text(
                "INSERT INTO runs (id, suite_name, suite_path, created_at, updated_at, status, "
                "mode, manifest_hash, manifest, suite, options, case_count) VALUES "
                "('r1', 's', 's.yaml', 0, 0, 'done', 'batch', 'h', '{}', '{}', '{}', 0)"
            )
        )
        assert pending_migrations(conn) == [
            "m004_sweeps",
            "m005_reference_scores",
            "m006_calibrations",
            "m007_batch_uploads",
        ]
    engine.dispose()
    store = open_store(url)
    try:
        with store.engine.connect() as conn:
            assert pending_migrations(conn) == []
            tables = set(inspect(conn).get_table_names())
        assert {"reference_scores", "calibrations"} <= tables
        assert store.runs.get("r1").status == "done"
        assert store.calibrations.of_run("r1") == [] and store.references.of_run("r1") == []
    finally:
        store.close()


def test_the_reference_sample_is_seeded_about_its_fraction_and_nested() -> None:
    ids = [f"case-{i}" for i in range(20_000)]
    tenth = {i for i in ids if in_sample(i, 0.1, 0)}
    fifth = {i for i in ids if in_sample(i, 0.2, 0)}
    assert 1800 < len(tenth) < 2200 and tenth <= fifth
    assert tenth != {i for i in ids if in_sample(i, 0.1, 1)}
    assert parse_reference({"model": "opus", "sample": 1}).selects("anything")

"""Shared fixtures: every test gets its own EVALBATCH_HOME and no real API key (of either
provider); tests marked ``both_stores`` run twice, on SQLite and on a throwaway PostgreSQL
server (``store_url``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .pgcluster import PostgresCluster

STORES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``both_stores``: the test runs once per store (its CLI gets EVALBATCH_DB)."""
    if "store_url" in metafunc.fixturenames and metafunc.definition.get_closest_marker(
        "both_stores"
    ):
        metafunc.parametrize("store_url", STORES, indirect=True)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "evalbatch-home"
    monkeypatch.setenv("EVALBATCH_HOME", str(home))
    monkeypatch.delenv("EVALBATCH_DB", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    return home


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """One PostgreSQL server per test worker, on a free loopback port, removed at the end.
    Missing binaries fail (with how to install them): never a silent skip."""
    try:
        from .pgcluster import MISSING, PostgresCluster, find_bindir
    except ImportError as exc:  # psycopg
        pytest.fail(f"{exc}: pip install -e '.[dev]' (it pulls psycopg)", pytrace=False)
    bindir = find_bindir()
    if bindir is None:
        pytest.fail(MISSING, pytrace=False)
    cluster = PostgresCluster(bindir).start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def store_url(
    request: pytest.FixtureRequest, _isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """The test's store: SQLite under EVALBATCH_HOME, or (parametrized ``postgresql``) a fresh
    database on the worker's server, also set as EVALBATCH_DB for in-process code."""
    if getattr(request, "param", "sqlite") == "sqlite":
        return f"sqlite:///{_isolated_home / 'evalbatch.db'}"
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    url = cluster.database()
    monkeypatch.setenv("EVALBATCH_DB", url)
    return url

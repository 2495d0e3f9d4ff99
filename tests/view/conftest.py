"""The viewer's fixtures: one store built per worker, and a viewer over it on an ephemeral
loopback port, stopped at the end."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from evalbatch.view.server import ViewConfig, ViewServer

from .fixtures import ViewStore, build_view_store


@pytest.fixture(scope="session")
def view_store(tmp_path_factory: pytest.TempPathFactory) -> ViewStore:
    return build_view_store(tmp_path_factory.mktemp("view"))


@dataclass
class Fetched:
    status: int
    headers: dict[str, str]  # names in lower case
    body: str

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Viewer:
    base_url: str

    def get(self, path: str, headers: dict[str, str] | None = None) -> Fetched:
        request = urllib.request.Request(self.base_url + path, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                return Fetched(resp.status, _lower(resp.headers), resp.read().decode())
        except urllib.error.HTTPError as exc:
            return Fetched(exc.code, _lower(exc.headers), exc.read().decode())


def _lower(headers: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


@pytest.fixture(scope="module")
def viewer(view_store: ViewStore) -> Iterator[Viewer]:
    with ViewServer(ViewConfig(db=view_store.url, port=0, warm_runs=0)) as server:
        yield Viewer(server.base_url)

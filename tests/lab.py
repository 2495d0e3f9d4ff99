"""Runs driven in process, fast: a real SQLite store in tmp_path, a real sandbox on 127.0.0.1
reached through the official SDK, and the library's own entry points (`prepare`,
`create_run`, `Runner`, `collect_runs`) — what the CLI calls, minus the process start.

These are the tests `make mutate` leans on: a mutant in the library is seen by a test that
runs in the same process, and a run here takes a fraction of a second.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from evalbatch.catalog import Catalog, load_catalog
from evalbatch.plan.prepare import prepare
from evalbatch.providers import open_provider
from evalbatch.providers.base import Provider
from evalbatch.run.collect import Collected, collect_runs
from evalbatch.run.create import create_run
from evalbatch.run.engine import Runner
from evalbatch.run.progress import NullProgress
from evalbatch.sandbox import SandboxServer
from evalbatch.store.db import Store

Responder = Callable[[dict[str, Any]], Any]


def write_suite(folder: Path, cases: list[dict[str, Any]], **overrides: Any) -> Path:
    """A suite file over ``cases`` (batch mode, haiku, cache off unless overridden)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cases.jsonl").write_text("".join(json.dumps(c) + "\n" for c in cases))
    suite: dict[str, Any] = {
        "name": "lab",
        "cases": "cases.jsonl",
        "generate": {"prompt": "{{ input }}", "max_tokens": 64, "model": "haiku"},
        "grade": [{"contains": "{{ target }}"}],
        "mode": "batch",
        "cache": "off",
        **overrides,
    }
    path = folder / "suite.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


@dataclass
class Lab:
    store: Store
    sandbox: SandboxServer
    root: Path
    catalog: Catalog = field(default_factory=load_catalog)

    def provider(self) -> Provider:
        return open_provider(base_url=self.sandbox.base_url, api_key="test-key")

    def create(self, suite: Path, **options: Any) -> str:
        return create_run(self.store, prepare(suite), {"retries": 2, **options})

    def runner(self, run_id: str, factory: Callable[[], Provider] | None = None) -> Runner:
        return Runner(self.store, run_id, factory or self.provider, catalog=self.catalog)

    def drive(self, run_id: str, *, detach: bool = False) -> str:
        """Advance the run as `evalbatch run` does; returns its status."""
        return self.runner(run_id).run(detach=detach, poll_s=0.01, max_poll_s=0.05)

    def run(self, suite: Path, **options: Any) -> str:
        """A whole run, created and driven to its end; returns the run id."""
        run_id = self.create(suite, **options)
        self.drive(run_id)
        return run_id

    def collect(self, run_id: str, **kwargs: Any) -> Collected:
        """`evalbatch collect RUN` once (``wait=True``: until done)."""
        (done,) = collect_runs(self.store, [run_id], self.provider, NullProgress(), **kwargs)
        return done

    def batches_created(self) -> int:
        return int(self.sandbox.stats().get("batches_created", 0))


def lab_in(tmp_path: Path, responder: Responder | str = "echo", **config: Any) -> Iterator[Lab]:
    """A Lab over a fresh store and sandbox, stopped afterwards (for fixtures)."""
    from evalbatch.sandbox import SandboxConfig
    from evalbatch.store.db import open_store

    sandbox = SandboxServer(SandboxConfig(responder=responder, **config)).start()
    store = open_store(f"sqlite:///{tmp_path / 'lab.db'}")
    try:
        yield Lab(store, sandbox, tmp_path)
    finally:
        store.close()
        sandbox.stop()


open_lab = contextmanager(lab_in)  # `with open_lab(tmp_path, ...) as lab:` inside a test

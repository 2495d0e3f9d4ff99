"""The public API: every exported name resolves, and the list does not shrink by accident."""

from __future__ import annotations

import subprocess
import sys

import evalbatch

PINNED = {
    "__version__",
    "load_suite",
    "Suite",
    "prepare",
    "create_run",
    "Runner",
    "load_run",
    "open_store",
    "open_provider",
    "project",
    "summarize",
    "render_report",
    "compare_runs",
    "load_catalog",
    "SandboxConfig",
    "SandboxServer",
    "EvalbatchError",
    "InputError",
    "SuiteError",
    "ProviderError",
    "RunNeedsAttention",
}


def test_every_exported_name_resolves():
    assert set(evalbatch.__all__) == PINNED
    for name in evalbatch.__all__:
        assert getattr(evalbatch, name) is not None


def test_importing_the_package_does_not_import_the_heavy_parts():
    code = "import sys, evalbatch; print('anthropic' in sys.modules, 'sqlalchemy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_the_library_runs_a_suite_without_the_cli(tmp_path):
    from .e2e.suites import write_suite

    suite = write_suite(tmp_path / "s")
    with evalbatch.SandboxServer(evalbatch.SandboxConfig()) as server:
        engine = evalbatch.open_store(None)
        run_id = evalbatch.create_run(engine, evalbatch.prepare(suite), {})
        runner = evalbatch.Runner(
            engine,
            run_id,
            lambda: evalbatch.open_provider(base_url=server.base_url, api_key="k"),
        )
        assert runner.run(poll_s=0.05) == "done"
    assert evalbatch.summarize(engine, run_id).cases_passed == 3

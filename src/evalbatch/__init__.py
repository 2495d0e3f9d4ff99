"""evalbatch: run LLM evaluation suites batch-first, at half the price, with nothing lost.

The library behind the CLI. A run in a few lines::

    from evalbatch import Runner, create_run, open_provider, open_store, prepare, summarize

    store = open_store(None)                       # EVALBATCH_DB / EVALBATCH_HOME or ./.evalbatch
    run_id = create_run(store, prepare("suite.yaml"), {})
    Runner(store, run_id, open_provider).run()     # or .advance() once, from a scheduler
    print(summarize(store, run_id).pass_rate)

Names are imported on first use, so ``import evalbatch`` stays cheap for the CLI; type
checkers see them through the ``TYPE_CHECKING`` imports below.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .analysis.compare import compare_runs
    from .analysis.summary import summarize
    from .catalog.models import load_catalog
    from .errors import EvalbatchError, InputError, ProviderError, RunNeedsAttention, SuiteError
    from .plan.prepare import prepare
    from .plan.projection import project
    from .providers import open_provider
    from .report.render import render_report
    from .run.create import create_run
    from .run.engine import Runner, load_run
    from .sandbox import SandboxConfig, SandboxServer
    from .store.db import open_store
    from .suite.load import load_suite
    from .suite.schema import Suite

_EXPORTS = {
    "load_suite": "evalbatch.suite.load",
    "Suite": "evalbatch.suite.schema",
    "prepare": "evalbatch.plan.prepare",
    "create_run": "evalbatch.run.create",
    "Runner": "evalbatch.run.engine",
    "load_run": "evalbatch.run.engine",
    "open_store": "evalbatch.store.db",
    "open_provider": "evalbatch.providers",
    "project": "evalbatch.plan.projection",
    "summarize": "evalbatch.analysis.summary",
    "render_report": "evalbatch.report.render",
    "compare_runs": "evalbatch.analysis.compare",
    "load_catalog": "evalbatch.catalog.models",
    "SandboxConfig": "evalbatch.sandbox",
    "SandboxServer": "evalbatch.sandbox",
    "EvalbatchError": "evalbatch.errors",
    "InputError": "evalbatch.errors",
    "SuiteError": "evalbatch.errors",
    "ProviderError": "evalbatch.errors",
    "RunNeedsAttention": "evalbatch.errors",
}

__all__ = [
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
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'evalbatch' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)

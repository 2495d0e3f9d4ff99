"""evalbatch: run LLM evaluation suites batch-first, at half the price, with nothing lost.

The library behind the CLI. A run in five lines::

    from evalbatch import Runner, create_run, open_store, prepare, summarize

    engine = open_store(None)                      # EVALBATCH_DB / EVALBATCH_HOME or ./.evalbatch
    run_id = create_run(engine, prepare("suite.yaml"), {})
    Runner(engine, run_id, open_provider).run()    # or .advance() once, from a scheduler
    print(summarize(engine, run_id).pass_rate)

Names are imported on first use, so ``import evalbatch`` stays cheap for the CLI.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "load_suite": "evalbatch.suite.load",
    "Suite": "evalbatch.suite.load",
    "prepare": "evalbatch.plan.prepare",
    "create_run": "evalbatch.plan.prepare",
    "Runner": "evalbatch.run.engine",
    "load_run": "evalbatch.run.engine",
    "open_store": "evalbatch.store.db",
    "open_provider": "evalbatch.providers",
    "project": "evalbatch.plan.projection",
    "summarize": "evalbatch.report.summary",
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

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'evalbatch' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)

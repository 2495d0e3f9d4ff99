"""The typer app and what every command shares: the store and JSON options, run id lookup,
output to stdout or a file, and the provider (real, or an in-process sandbox)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer

from .._version import __version__
from ..errors import ConfigError, InputError, NotFound
from .console import err, out

if TYPE_CHECKING:  # imported when a command runs, so `--help` stays fast
    from ..plan.prepare import Prepared
    from ..providers.base import ProviderFactory
    from ..store.db import Store

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Run LLM evaluation suites batch-first: half the price, nothing lost.",
)

DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db", envvar="EVALBATCH_DB", help="Store URL (default: SQLite in $EVALBATCH_HOME)."
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout (data only).")]
# The options `run` and `sweep` share.
ModeOpt = Annotated[str | None, typer.Option("--mode", help="batch | sync (overrides the suite).")]
DetachOpt = Annotated[
    bool,
    typer.Option("--detach", help="Submit, print the id, exit; `evalbatch collect` picks up."),
]
SetsOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a suite key: key=value (dotted keys)."),
]
BudgetOpt = Annotated[
    float | None,
    typer.Option("--budget", help="Refuse to submit above this projected cost (USD)."),
]
SandboxOpt = Annotated[
    bool,
    typer.Option("--sandbox", help="Run against an in-process loopback sandbox (no key, no cost)."),
]
ResponderOpt = Annotated[
    str,
    typer.Option(
        "--responder", help="With --sandbox: echo | script:FILE | python:module:fn | quality:FILE."
    ),
]
BatchLatencyOpt = Annotated[
    float, typer.Option("--batch-latency", help="With --sandbox: seconds a batch takes.")
]


def check_mode(mode: str | None, detach: bool, sandbox: bool) -> None:
    if mode not in (None, "batch", "sync"):
        raise ConfigError(f"--mode must be batch or sync (got {mode!r})")
    if detach and sandbox:
        raise ConfigError(
            "--detach with --sandbox: the in-process sandbox stops when the command "
            "exits; start `evalbatch sandbox` and set ANTHROPIC_BASE_URL instead"
        )


state: dict[str, Any] = {"debug": False}


def _version(value: bool) -> None:
    if value:
        out.print(__version__)
        raise typer.Exit(0)


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", help="Print the version.", callback=_version, is_eager=True),
    ] = False,
) -> None:
    state["debug"] = debug


def print_json(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


def store_at(db: str | None) -> Store:
    from ..store.db import open_store

    return open_store(db)


def resolve_run(
    store: Store,
    run_id: str,
    *,
    done: bool = False,
    suite: str | None = None,
    exclude: str | None = None,
) -> str:
    """A run id as typed: whole, a unique prefix of one, or `latest` (with ``done``: the newest
    done run, of ``suite`` when given)."""
    if run_id == "latest":
        newest = store.runs.newest_id(done=done, suite=suite, exclude=exclude)
        if newest is None:
            which = "done runs" if done else "runs"
            raise NotFound(f"no {which}{f' of suite {suite}' if suite else ''} in the store yet")
        return newest
    matches = store.runs.ids_starting(run_id)
    if run_id in matches or len(matches) == 1:
        return run_id if run_id in matches else matches[0]
    if matches:
        raise InputError(f"run id {run_id!r} is ambiguous: {', '.join(matches)}, ...")
    raise NotFound(f"no run {run_id!r} in the store {store.url} (see `evalbatch runs`)")


def resolve_unit(store: Store, unit: str) -> str:
    """A run id as `resolve_run` reads it, or a sweep id (whole, or a unique prefix)."""
    if unit.startswith("sweep-") or unit == "sweep":
        if unit == "sweep":
            newest = store.sweeps.newest_id()
            if newest is None:
                raise NotFound("no sweeps in the store yet")
            return newest
        matches = store.sweeps.ids_starting(unit)
        if unit in matches or len(matches) == 1:
            return unit if unit in matches else matches[0]
        if matches:
            raise InputError(f"sweep id {unit!r} is ambiguous: {', '.join(matches)}, ...")
        raise NotFound(f"no sweep {unit!r} in the store {store.url}")
    return resolve_run(store, unit)


def emit(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        err.print(f"wrote {output}")


@contextlib.contextmanager
def provider_factory(
    sandbox: bool, responder: str, batch_latency: float
) -> Iterator[ProviderFactory]:
    """The real providers, or both on an in-process sandbox that lives as long as the block."""
    from ..providers import api_base_url, open_provider

    if not sandbox:
        yield open_provider
        return
    from ..sandbox import SandboxConfig, SandboxServer

    server = SandboxServer(SandboxConfig(responder=responder, batch_latency=batch_latency))
    server.start()
    err.print(f"sandbox listening on {server.base_url}", style="dim")
    try:
        yield lambda name="anthropic": open_provider(
            name, base_url=api_base_url(name, server.base_url), api_key="sandbox"
        )
    finally:
        server.stop()


def check_credentials(factory: ProviderFactory, prepared: Iterable[Prepared]) -> None:
    """A missing key (of a provider the suites use, and only those) fails here, before
    anything is written."""
    for name in sorted({name for p in prepared for name in p.provider_names()}):
        factory(name).close()

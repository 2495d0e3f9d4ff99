"""Commands that browse the store: `view` (the local web app) and `export` (a run's rows)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from .app import DbOpt, app, resolve_run, store_at
from .console import err


@app.command()
def view(
    port: Annotated[int, typer.Option("--port", help="Port (0 = any free port).")] = 8321,
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    db: DbOpt = None,
    open_browser: Annotated[
        bool, typer.Option("--open", help="Open the viewer in a web browser.")
    ] = False,
    allow_remote: Annotated[
        bool, typer.Option("--allow-remote", help="Allow a non-loopback host.")
    ] = False,
) -> None:
    """Browse runs, cases and comparisons in a local read-only web app (loopback only)."""
    from ..view.server import ViewConfig, serve

    def ready(url: str) -> None:
        print(f"listening on {url}", file=sys.stderr, flush=True)
        if open_browser:
            import webbrowser

            webbrowser.open(url + "/runs")

    serve(ViewConfig(db=db, host=host, port=port, allow_remote=allow_remote), ready)


@app.command()
def export(
    run_id: Annotated[str, typer.Argument(help="A run id, or `latest`.")],
    fmt: Annotated[str, typer.Option("--format", help="jsonl | csv")] = "jsonl",
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to a file.")] = None,
    db: DbOpt = None,
) -> None:
    """One row per case x grader x epoch: input, target, prompt hash, output, verdict, cost."""
    from ..analysis.export import check_format, export_run

    check_format(fmt)
    store = store_at(db)
    run = resolve_run(store, run_id)
    if output is None:
        export_run(store, run, fmt, sys.stdout)
        sys.stdout.flush()
        return
    with output.open("w", encoding="utf-8", newline="") as fh:
        rows = export_run(store, run, fmt, fh)
    err.print(f"wrote {rows:,} rows to {output}", highlight=False)

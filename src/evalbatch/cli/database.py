"""Commands on the store itself: `db copy SRC DST` (move a local store's runs into the team's)
and `db upgrade` (apply pending migrations explicitly)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer

from ..errors import ConfigError
from .app import DbOpt, JsonOpt, app, print_json
from .console import err, out

db_app = typer.Typer(
    no_args_is_help=True,
    help="The store itself: copy runs into another store, apply migrations.",
)
app.add_typer(db_app, name="db")


def _url(text: str) -> str:
    """A URL as given, or a path to an SQLite file."""
    if "://" in text:
        return text
    if not text:
        raise ConfigError("a store is a URL (postgresql://..., sqlite:///...) or a file path")
    return f"sqlite:///{text}"


@db_app.command("copy")
def copy(
    source: Annotated[str, typer.Argument(help="The store to copy from (URL or SQLite file).")],
    target: Annotated[str, typer.Argument(help="The store to copy into (URL or SQLite file).")],
    include_open: Annotated[
        bool,
        typer.Option(
            "--include-open",
            help="Copy runs still open too (then collect them only from the target).",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Copy every run the target lacks (cases, requests, batches, results, scores); runs
    already there are skipped, so it can be run again."""
    from ..store.db import open_store, sqlite_path
    from ..store.transfer import copy_runs

    src_url, dst_url = _url(source), _url(target)
    if src_url == dst_url:
        raise ConfigError("source and target are the same store")
    missing = sqlite_path(src_url)
    if missing is not None and not missing.is_file():
        raise ConfigError(f"no store at {missing}: nothing to copy (check the path)")
    with open_store(src_url) as src, open_store(dst_url) as dst:
        copied = []
        for item in copy_runs(src, dst, include_open=include_open):
            copied.append(item)
            if not as_json:
                what = "copied" if item.copied else f"skipped: {item.note}"
                out.print(f"{item.run_id}  {item.suite}  {item.status}  {what}", highlight=False)
        target_url = dst.url
    if as_json:
        print_json([asdict(item) for item in copied])
    done = sum(item.copied for item in copied)
    err.print(f"{done} run(s) copied into {target_url}, {len(copied) - done} skipped")


@db_app.command("upgrade")
def upgrade(db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Apply the store's pending migrations now (other commands apply them when they open it)."""
    from ..store.db import open_store

    with open_store(db, migrate=False) as store:
        applied = store.upgrade()
        where = store.url
    if as_json:
        print_json({"store": where, "applied": applied})
    elif applied:
        out.print("\n".join(applied))
        err.print(f"{len(applied)} migration(s) applied to {where}")
    else:
        err.print(f"{where} is up to date")

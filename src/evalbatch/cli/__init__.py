"""The `evalbatch` command. Thin: parses arguments, calls the library, prints what it returns.

Exit codes: 0 ok; 1 the eval failed its gate or regressed; 2 bad input, nothing written;
3 provider or infrastructure failure after retries (state kept: rerun `evalbatch collect`).
"""

from __future__ import annotations

import importlib
import sys

import typer
from rich.markup import escape

from ..errors import EvalbatchError, ProviderError
from .app import app, state
from .console import err

__all__ = ["app", "main"]

# Each module registers its commands on the app; `--help` lists them in this order.
for _module in ("running", "sweeping", "calibrating", "reporting", "browsing", "database"):
    importlib.import_module(f"{__name__}.{_module}")


def _register_sandbox() -> None:
    from ..sandbox.command import sandbox_command

    app.command("sandbox", help="Serve the loopback Anthropic API simulator on 127.0.0.1.")(
        sandbox_command
    )


_register_sandbox()


def main() -> None:
    """Entry point: map our exceptions to exit codes in one place."""
    try:
        code = app(standalone_mode=False, prog_name="evalbatch")
        sys.exit(code if isinstance(code, int) else 0)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("aborted")
        sys.exit(130)
    except EvalbatchError as exc:
        if state["debug"]:
            raise
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, markup=True)
        if isinstance(exc, ProviderError):
            err.print("state is kept; rerun `evalbatch collect` to continue")
        sys.exit(exc.exit_code)
    except Exception as exc:
        if state["debug"]:
            raise
        # Usage errors come from the click that typer bundles; match them by shape.
        show, code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(code, int):
            show()
            sys.exit(code)
        from ..store.db import failure_of

        failure = failure_of(exc)
        if failure is None:
            raise
        err.print(f"[red]error:[/red] {escape(str(failure))}", highlight=False, markup=True)
        sys.exit(failure.exit_code)

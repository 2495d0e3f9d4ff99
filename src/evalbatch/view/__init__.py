"""The web viewer (`evalbatch view`): a read-only starlette app over the store, server-rendered
pages with a JSON mirror each, every asset served locally, loopback by default."""

from __future__ import annotations

from .app import create_app
from .server import ViewConfig, ViewServer, serve

__all__ = ["ViewConfig", "ViewServer", "create_app", "serve"]

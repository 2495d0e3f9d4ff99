"""Serving the viewer: on a background thread (tests, benchmarks) or in the foreground until
SIGINT/SIGTERM (`evalbatch view`). Loopback only unless asked, by the sandbox's bind rule; the
port is bound before anything else so a port in use is a one-line error (exit 2)."""

from __future__ import annotations

import errno
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

import uvicorn

from ..errors import ConfigError
from ..sandbox.server import check_host
from ..store.browse import check_exists
from ..store.db import Store, default_url, open_store
from .app import LOOPBACK_HOSTS, create_app


@dataclass(frozen=True)
class ViewConfig:
    db: str | None = None  # a store URL; default: EVALBATCH_DB or the SQLite file
    host: str = "127.0.0.1"
    port: int = 8321  # 0 = any free port
    allow_remote: bool = False
    warm_runs: int = 3  # finished runs summarized ahead of the first visit


def bind(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"cannot listen on {host}:{port}: the port is in use "
                "(pass --port N, or --port 0 for any free port)"
            ) from None
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


class ViewServer:
    """The viewer on a background thread.

    with ViewServer(ViewConfig(db=url, port=0)) as server:
        urllib.request.urlopen(server.base_url + "/api/runs")
    """

    def __init__(self, config: ViewConfig, store: Store | None = None) -> None:
        check_host(config.host, config.allow_remote, service="the viewer")
        self.config = config
        if store is None:
            url = config.db or default_url()
            check_exists(url)
            store = open_store(url)
            self._owns_store = True
        else:
            self._owns_store = False
        self.store = store
        self.socket = bind(config.host, config.port)
        self.app = create_app(store, None if config.allow_remote else LOOPBACK_HOSTS)
        self._server = uvicorn.Server(
            uvicorn.Config(
                self.app,
                log_level="critical",
                access_log=False,
                lifespan="off",
                ws="none",
                timeout_graceful_shutdown=1,
            )
        )
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def base_url(self) -> str:
        host, port = self.socket.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"

    def start(self) -> ViewServer:
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self.socket]}, daemon=True, name="view"
        )
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise ConfigError(f"the viewer did not start on {self.base_url}")
            self._stop.wait(0.01)
        if self.config.warm_runs:
            threading.Thread(target=self._warm, daemon=True, name="view-warm").start()
        return self

    def _warm(self) -> None:
        try:
            self.app.state.views.cache.warm(self.config.warm_runs, self._stop)
        except Exception:  # noqa: BLE001 - warming is a head start; a page computes it anyway
            return

    def stop(self) -> None:
        self._stop.set()
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.socket.close()
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> ViewServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(config: ViewConfig, on_ready: Callable[[str], None]) -> None:
    """Serve until SIGINT or SIGTERM, then stop cleanly (the caller exits 0)."""
    server = ViewServer(config).start()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        on_ready(server.base_url)
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()

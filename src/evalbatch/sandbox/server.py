"""Running the sandbox: in-process on a background thread (tests, `run --sandbox`) or in the
foreground (`evalbatch sandbox`). Binds loopback unless remote access is asked for."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import threading
import urllib.request
from typing import Any

import uvicorn

from ..errors import ConfigError
from .app import SandboxApp
from .config import SandboxConfig
from .state import SandboxState


def check_host(host: str, allow_remote: bool, service: str = "the sandbox") -> None:
    if allow_remote:
        return
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ConfigError(
            f"refusing to bind {host}: {service} serves loopback only "
            "(pass --allow-remote to bind another address)"
        )


class _Server(uvicorn.Server):
    """uvicorn's server, which `stop()` wakes at once instead of at its next 0.1 s tick (tests
    start and stop hundreds of sandboxes)."""

    _loop: asyncio.AbstractEventLoop | None = None
    _wake: asyncio.Event | None = None

    async def main_loop(self) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.1)
            should_exit = await self.on_tick(counter)

    async def shutdown(self, sockets: list[Any] | None = None) -> None:
        """A forced stop (`SandboxServer.stop`) closes the listener and every connection at once;
        uvicorn's own shutdown first gives connections a tenth of a second to finish."""
        if not self.force_exit:
            await super().shutdown(sockets)
            return
        for server in self.servers:
            server.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        for server in self.servers:
            await server.wait_closed()

    def wake(self) -> None:
        if self._loop is not None and self._wake is not None:
            with contextlib.suppress(RuntimeError):  # its loop has ended already
                self._loop.call_soon_threadsafe(self._wake.set)


def build_server(config: SandboxConfig) -> tuple[_Server, SandboxApp]:
    check_host(config.host, config.allow_remote)
    app = SandboxApp(SandboxState(config))
    uv_config = uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        log_level="critical",
        access_log=False,
        lifespan="off",
        ws="none",
        timeout_graceful_shutdown=1,
    )
    return _Server(uv_config), app


def bound_port(server: uvicorn.Server) -> int:
    return int(server.servers[0].sockets[0].getsockname()[1])


class SandboxServer:
    """The sandbox on a background thread, on an ephemeral loopback port by default.

    with SandboxServer(SandboxConfig(responder="echo")) as sb:
        client = anthropic.Anthropic(base_url=sb.base_url, api_key="test")
    """

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self._server, self.app = build_server(self.config)
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host = f"[{self.config.host}]" if ":" in self.config.host else self.config.host
        return f"http://{host}:{bound_port(self._server)}"

    def start(self) -> SandboxServer:
        self._thread = threading.Thread(target=self._server.run, daemon=True, name="sandbox")
        self._thread.start()
        for _ in range(500):
            if self._server.started:
                return self
            if not self._thread.is_alive():
                break
            threading.Event().wait(0.01)
        raise RuntimeError("the sandbox did not start")

    def stop(self) -> None:
        """Stop at once, as a provider that goes away does: requests in flight are cut."""
        self.app.store.stop()
        self.app.openai.stop()
        self._server.should_exit = True
        self._server.force_exit = True  # no 0.1 s waits for connections to drain
        self._server.wake()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def settings(self) -> dict[str, Any]:
        """The settings it serves with, as /_sandbox/config reports them."""
        with urllib.request.urlopen(f"{self.base_url}/_sandbox/config", timeout=10) as resp:
            return dict(json.loads(resp.read()))

    def stats(self, *, reset: bool = False) -> dict[str, Any]:
        """The counters of /_sandbox/stats; ``reset`` also clears them and the prompt cache."""
        with urllib.request.urlopen(f"{self.base_url}/_sandbox/stats", timeout=10) as resp:
            data = dict(json.loads(resp.read()))
        if reset:
            request = urllib.request.Request(f"{self.base_url}/_sandbox/reset", method="POST")
            urllib.request.urlopen(request, timeout=10).close()
        return data

    def batch_ids(self) -> list[str]:
        """Ids of the Message Batches it holds, oldest first (what a provider's console shows)."""
        return list(self.app.store.order)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

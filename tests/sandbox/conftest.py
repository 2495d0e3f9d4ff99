from __future__ import annotations

from collections.abc import Callable, Iterator

import anthropic
import pytest

from evalbatch.sandbox import SandboxConfig, SandboxServer

Factory = Callable[..., SandboxServer]


@pytest.fixture
def make_sandbox() -> Iterator[Factory]:
    started: list[SandboxServer] = []

    def make(**kwargs: object) -> SandboxServer:
        server = SandboxServer(SandboxConfig(**kwargs)).start()  # type: ignore[arg-type]
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def sb(make_sandbox: Factory) -> SandboxServer:
    return make_sandbox()


@pytest.fixture
def client(sb: SandboxServer) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=sb.base_url, api_key="test-key", max_retries=0) as c:
        yield c


@pytest.fixture
def new_client() -> Iterator[Callable[..., anthropic.Anthropic]]:
    """Extra SDK clients (another version header, no retries...), closed after the test."""
    made: list[anthropic.Anthropic] = []

    def make(base_url: str, **kwargs: object) -> anthropic.Anthropic:
        kwargs.setdefault("api_key", "k")
        client = anthropic.Anthropic(base_url=base_url, **kwargs)  # type: ignore[arg-type]
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()

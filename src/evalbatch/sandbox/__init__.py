"""The loopback API sandbox: Anthropic's Messages, Message Batches and count_tokens, and OpenAI's
Chat Completions, Files and Batches, over real HTTP, as the official SDKs call them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import FaultConfig, RateLimit, SandboxConfig

if TYPE_CHECKING:
    from .server import SandboxServer

__all__ = ["FaultConfig", "RateLimit", "SandboxConfig", "SandboxServer"]


def __getattr__(name: str) -> Any:
    # The server (its HTTP stack) is imported on first use: every CLI command registers
    # `evalbatch sandbox`, and only that command and --sandbox runs serve.
    if name == "SandboxServer":
        from .server import SandboxServer

        return SandboxServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""The loopback Anthropic API sandbox: Messages, Message Batches and count_tokens over real HTTP,
so the official SDK cannot tell it from the real API for everything evalbatch uses."""

from __future__ import annotations

from .config import FaultConfig, RateLimit, SandboxConfig
from .server import SandboxServer

__all__ = ["FaultConfig", "RateLimit", "SandboxConfig", "SandboxServer"]

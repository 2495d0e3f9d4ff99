"""The loopback API sandbox: Anthropic's Messages, Message Batches and count_tokens, and OpenAI's
Chat Completions, Files and Batches, over real HTTP, as the official SDKs call them."""

from __future__ import annotations

from .config import FaultConfig, RateLimit, SandboxConfig
from .server import SandboxServer

__all__ = ["FaultConfig", "RateLimit", "SandboxConfig", "SandboxServer"]

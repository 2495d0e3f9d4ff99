"""Reading a Messages request as responders see it: the text of the last user message and of
the system prompt (text blocks joined; other blocks ignored)."""

from __future__ import annotations

from typing import Any


def last_user_text(params: dict[str, Any]) -> str:
    for message in reversed(params.get("messages") or []):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        return "".join(b.get("text", "") for b in content or [] if b.get("type") == "text")
    return ""


def system_text(params: dict[str, Any]) -> str:
    system = params.get("system")
    if isinstance(system, str):
        return system
    return "".join(b.get("text", "") for b in system or [] if isinstance(b, dict))

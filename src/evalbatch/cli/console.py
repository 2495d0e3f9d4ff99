"""Terminal output: the consoles for stdout (data) and stderr (progress and messages)."""

from __future__ import annotations

from rich.console import Console


def _console(stderr: bool = False) -> Console:
    # Piped output (cron, CI logs) gets 120 columns, not rich's 80, so tables stay readable.
    probe = Console(stderr=stderr)
    width = None if probe.is_terminal else max(120, probe.width)
    # markup=False: what we print holds user and model text; styles are given as `style=`.
    return Console(stderr=stderr, soft_wrap=True, width=width, markup=False)


out = _console()
err = _console(stderr=True)


def age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"

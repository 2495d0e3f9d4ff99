"""Terminal output: consoles for stdout (data) and stderr (progress), and the rich Progress."""

from __future__ import annotations

import time
from collections.abc import Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..records import BatchInfo


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


class RichProgress:
    """Progress on stderr, so stdout stays clean for pipes."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self._bar: Progress | None = None
        self._task: int | None = None
        self._last_line = ""

    def status(self, text: str) -> None:
        if not self.quiet:
            err.print(text, style="dim")

    def batches(self, step: str, infos: Sequence[BatchInfo]) -> None:
        if self.quiet or not infos:
            return
        now = time.time()
        parts = []
        for info in infos:
            c = info.counts
            done = info.request_count - c.get("processing", 0)
            parts.append(
                f"{info.id} {info.status} {done}/{info.request_count} "
                f"age {age(now - info.created_at)}"
            )
        line = f"{step}: " + "; ".join(parts)
        if line != self._last_line:
            err.print(line)
            self._last_line = line

    def start_sync(self, step: str, total: int) -> None:
        if self.quiet or total == 0:
            return
        self._bar = Progress(
            TextColumn(f"{step} (sync)"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        )
        self._bar.start()
        self._task = self._bar.add_task(step, total=total)

    def advance_sync(self, n: int) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.advance(self._task, n)  # type: ignore[arg-type]

    def end_sync(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

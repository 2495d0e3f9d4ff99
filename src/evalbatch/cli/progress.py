"""Progress on stderr while a run advances: on a terminal a live table of each step's batches
(counts, age, time left in the provider's window, an estimated finish from the observed rate)
and a bar for the sync path; in CI and cron logs one plain line per change."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..records import BatchInfo
from ..store.records import IngestCounts
from .console import age, err

_KINDS = ("succeeded", "errored", "expired", "canceled")


@dataclass
class _Seen:
    """When a batch was first polled, and how far along it was then (for the rate)."""

    at: float
    done: int


@dataclass
class BatchLine:
    step: str
    batch: str
    status: str
    done: int
    total: int
    counts: dict[str, int]
    age_s: float
    left_s: float | None  # until the provider's window closes
    eta_s: float | None  # to the end, at the rate seen so far

    def plain(self) -> str:
        counts = " ".join(f"{k} {self.counts[k]}" for k in _KINDS if self.counts.get(k))
        processing = self.counts.get("processing", 0)
        parts = [
            f"{self.step}: {self.batch} {self.status} {self.done}/{self.total}",
            counts,
            f"processing {processing}" if processing else "",
            f"age {age(self.age_s)}",
            f"window closes in {age(self.left_s)}" if self.left_s is not None else "",
            f"done in ~{age(self.eta_s)}" if self.eta_s is not None else "",
        ]
        return " · ".join(p for p in parts if p)


@dataclass
class BatchWatch:
    """Turns polls into lines; pure apart from the clock it is given."""

    seen: dict[str, _Seen] = field(default_factory=dict)

    def lines(self, step: str, infos: Sequence[BatchInfo], now: float) -> list[BatchLine]:
        out = []
        for info in infos:
            processing = info.counts.get("processing", 0)
            done = info.request_count - processing
            first = self.seen.setdefault(info.id, _Seen(now, done))
            eta = None
            if processing and done > first.done and now > first.at:
                eta = processing / ((done - first.done) / (now - first.at))
            out.append(
                BatchLine(
                    step=step,
                    batch=info.id,
                    status=info.status,
                    done=done,
                    total=info.request_count,
                    counts=dict(info.counts),
                    age_s=now - info.created_at,
                    left_s=(info.expires_at - now) if info.expires_at else None,
                    eta_s=eta,
                )
            )
        return out


class RichProgress:
    """Progress on stderr, so stdout stays clean for pipes; silent with ``quiet`` (--json)."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.live_display = err.is_terminal
        self._watch = BatchWatch()
        self._live: Live | None = None
        self._last: dict[str, str] = {}
        self._bar: Progress | None = None
        self._task: int | None = None
        self._sync = IngestCounts()

    def status(self, text: str) -> None:
        if not self.quiet:
            err.print(text, style="dim")

    def batches(self, step: str, infos: Sequence[BatchInfo]) -> None:
        if self.quiet or not infos:
            return
        lines = self._watch.lines(step, infos, time.time())
        if self.live_display:
            self._show_live(lines)
            return
        for line in lines:  # a log: one line per batch whose progress changed
            text = line.plain()
            key = f"{line.step} {line.batch}"
            changed = self._last.get(key, "").split(" · age")[0] != text.split(" · age")[0]
            if changed:
                err.print(text)
                self._last[key] = text

    def _show_live(self, lines: list[BatchLine]) -> None:
        table = Table(
            "step",
            "batch",
            "status",
            "done",
            "succeeded",
            "errored",
            "processing",
            "age",
            "window left",
            "done in",
            box=None,
        )
        for x in lines:
            table.add_row(
                x.step,
                x.batch,
                x.status,
                f"{x.done}/{x.total}",
                str(x.counts.get("succeeded", 0)),
                str(x.counts.get("errored", 0) + x.counts.get("expired", 0)),
                str(x.counts.get("processing", 0)),
                age(x.age_s),
                age(x.left_s) if x.left_s is not None else "-",
                f"~{age(x.eta_s)}" if x.eta_s is not None else "-",
            )
        if self._live is None:
            self._live = Live(table, console=err, transient=True, auto_refresh=False)
            self._live.start()
        self._live.update(table, refresh=True)

    def start_sync(self, step: str, total: int) -> None:
        if self.quiet or total == 0:
            return
        self._sync = IngestCounts()
        self._bar = Progress(
            TextColumn(f"{step} (sync)"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=err,
            transient=True,
            disable=not self.live_display,
        )
        self._bar.start()
        self._task = self._bar.add_task("", total=total)

    def advance_sync(self, counts: IngestCounts) -> None:
        """A flush of the sync path: results stored, and failures sent back to be retried."""
        if self._bar is None or self._task is None:
            return
        self._sync.stored += counts.stored
        self._sync.requeued += counts.requeued
        for kind, n in counts.by_kind.items():
            self._sync.by_kind[kind] = self._sync.by_kind.get(kind, 0) + n
        described = " · ".join(f"{k} {n}" for k, n in sorted(self._sync.by_kind.items()) if n) + (
            f" · retrying {self._sync.requeued}" if self._sync.requeued else ""
        )
        self._bar.update(self._task, advance=counts.stored, description=described)  # type: ignore[arg-type]

    def end_sync(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
            if not self.live_display and not self.quiet:
                err.print(f"sync: stored {self._sync.stored}, retried {self._sync.requeued}")

    def done(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

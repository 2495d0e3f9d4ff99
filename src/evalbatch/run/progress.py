"""Progress reporting hooks the engine calls; the CLI supplies a rich implementation on stderr."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..records import BatchInfo
from ..store.records import IngestCounts


class Progress(Protocol):
    def status(self, text: str) -> None: ...
    def batches(self, step: str, infos: Sequence[BatchInfo]) -> None: ...
    def start_sync(self, step: str, total: int) -> None: ...
    def advance_sync(self, counts: IngestCounts) -> None: ...
    def end_sync(self) -> None: ...
    def done(self) -> None: ...


class NullProgress:
    def status(self, text: str) -> None:
        pass

    def batches(self, step: str, infos: Sequence[BatchInfo]) -> None:
        pass

    def start_sync(self, step: str, total: int) -> None:
        pass

    def advance_sync(self, counts: IngestCounts) -> None:
        pass

    def end_sync(self) -> None:
        pass

    def done(self) -> None:
        pass

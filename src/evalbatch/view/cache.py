"""What the viewer keeps between requests: the summary and filter facets of runs that have stopped
moving (a finished run's summary takes about a second to compute at 100,000 cases and never
changes), and the run listing until the store's mark moves. Live runs are always read afresh.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

from ..analysis.summary import RunSummary, summarize
from ..records import TERMINAL_RUN
from ..store.browse_records import Facets, StoreMark
from ..store.db import Store
from ..store.records import RunListing, RunRecord

LISTING_LIMIT = 500  # runs on the runs page, newest first
_KEPT_RUNS = 64

T = TypeVar("T")


Key = tuple[str, str, str, float]


class ViewCache:
    """Thread-safe. A value is computed once: a request that needs a summary being computed
    (by the start-up warming or another request) waits for it instead of computing it again."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._runs: OrderedDict[Key, object] = OrderedDict()
        self._computing: dict[Key, Future[object]] = {}
        self._listing: tuple[StoreMark, list[RunListing]] | None = None

    def _kept(self, record: RunRecord, part: str, compute: Callable[[], T]) -> T:
        if record.status not in TERMINAL_RUN:
            return compute()
        key = (part, record.id, record.status, record.updated_at)
        with self._lock:
            if key in self._runs:
                self._runs.move_to_end(key)
                return self._runs[key]  # type: ignore[return-value]
            pending = self._computing.get(key)
            if pending is None:
                pending = self._computing[key] = Future()
                mine = True
            else:
                mine = False
        if not mine:
            return pending.result()  # type: ignore[return-value]
        try:
            value = compute()
        except BaseException as exc:
            with self._lock:
                del self._computing[key]
            pending.set_exception(exc)
            raise
        with self._lock:
            self._runs[key] = value
            del self._computing[key]
            while len(self._runs) > _KEPT_RUNS:
                self._runs.popitem(last=False)
        pending.set_result(value)
        return value

    def summary(self, record: RunRecord) -> RunSummary:
        return self._kept(record, "summary", lambda: summarize(self.store, record.id))

    def facets(self, record: RunRecord) -> Facets:
        return self._kept(record, "facets", lambda: self.store.browse.facets(record.id))

    def listing(self) -> list[RunListing]:
        """Every run (up to LISTING_LIMIT), newest first; kept while no run is open and the
        mark has not moved (an open run's pass rate and cost change with every result)."""
        mark = self.store.browse.mark()
        with self._lock:
            kept = self._listing
        if kept is not None and kept[0] == mark and mark.open_runs == 0:
            return kept[1]
        listing = self.store.history.list_runs(limit=LISTING_LIMIT)
        with self._lock:
            self._listing = (mark, listing)
        return listing

    def warm(self, runs: int, stop: threading.Event) -> None:
        """Read the listing and the newest ``runs`` finished runs ahead of the first visit."""
        done = 0
        for item in self.listing():
            if stop.is_set() or done >= runs:
                return
            if item.status in TERMINAL_RUN:
                record = self.store.runs.get(item.id)
                self.summary(record)
                self.facets(record)
                done += 1

"""What the viewer keeps: a finished run's summary once (computed by one thread while others
wait), a live run's never, and the run listing until the store's mark moves."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

from evalbatch.view.cache import ViewCache


def test_a_finished_run_is_computed_once_however_many_ask(view_store):
    cache = ViewCache(view_store.open())
    record = cache.store.runs.get(view_store.new)
    calls = []

    def slow() -> str:
        calls.append(1)
        time.sleep(0.2)
        return "summary"

    results = []
    threads = [
        threading.Thread(target=lambda: results.append(cache._kept(record, "x", slow)))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["summary"] * 4 and len(calls) == 1
    assert cache.summary(record) is cache.summary(record)


def test_a_live_run_is_read_afresh(view_store):
    cache = ViewCache(view_store.open())
    live = cache.store.runs.get(view_store.live)
    assert cache.summary(live) is not cache.summary(live)


def test_the_listing_is_kept_only_while_nothing_is_open(view_store, monkeypatch):
    cache = ViewCache(view_store.open())
    assert cache.listing() is not cache.listing()  # a run is in flight: read afresh
    mark = cache.store.browse.mark()
    quiet = replace(mark, open_runs=0)  # as if the live run had finished
    monkeypatch.setattr(cache.store.browse, "mark", lambda: quiet)
    first = cache.listing()
    assert cache.listing() is first
    moved = replace(quiet, runs=quiet.runs + 1)  # a run was added
    monkeypatch.setattr(cache.store.browse, "mark", lambda: moved)
    assert cache.listing() is not first

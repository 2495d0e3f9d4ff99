"""What a person watching a batch sees: counts, age, the time left in the provider's window and
an estimated finish from the observed rate; in a log, one line per change and no more."""

from __future__ import annotations

from evalbatch.cli.progress import BatchWatch, RichProgress
from evalbatch.records import BatchInfo
from evalbatch.store.records import IngestCounts


def _info(processing: int, succeeded: int, errored: int = 0) -> BatchInfo:
    return BatchInfo(
        id="msgbatch_1",
        status="in_progress" if processing else "ended",
        counts={"processing": processing, "succeeded": succeeded, "errored": errored},
        created_at=1000.0,
        expires_at=1000.0 + 24 * 3600,
        request_count=processing + succeeded + errored,
    )


def test_the_estimate_follows_the_observed_rate_and_the_window_counts_down() -> None:
    watch = BatchWatch()
    (first,) = watch.lines("generate", [_info(100, 0)], now=1010.0)
    assert first.eta_s is None  # nothing observed yet
    assert first.left_s == 24 * 3600 - 10
    (later,) = watch.lines("generate", [_info(50, 48, 2)], now=1030.0)
    assert later.done == 50 and later.total == 100
    assert later.eta_s == 20.0  # 50 done in 20 s: 50 more take 20 s
    text = later.plain()
    assert "50/100" in text and "succeeded 48" in text and "errored 2" in text
    assert "processing 50" in text and "window closes in 23h59m" in text and "done in ~20s" in text


def test_a_log_gets_one_line_per_change(capsys) -> None:
    progress = RichProgress()
    progress.live_display = False  # as under cron or CI: no terminal
    progress.batches("generate", [_info(100, 0)])
    progress.batches("generate", [_info(100, 0)])  # nothing moved: no new line
    progress.batches("generate", [_info(40, 60)])
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(lines) == 2
    assert "0/100" in lines[0] and "60/100" in lines[1]


def test_the_sync_summary_counts_results_and_retries(capsys) -> None:
    progress = RichProgress()
    progress.live_display = False
    progress.start_sync("generate", 10)
    progress.advance_sync(IngestCounts(stored=6, requeued=2, by_kind={"succeeded": 6}))
    progress.advance_sync(IngestCounts(stored=4, requeued=0, by_kind={"succeeded": 4}))
    progress.end_sync()
    assert "sync: stored 10, retried 2" in capsys.readouterr().err

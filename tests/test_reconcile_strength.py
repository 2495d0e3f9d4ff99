"""The batch journal under crashes, in process: a run that died between creating a batch and
storing its handle adopts *its own* batch on the next advance — never another run's batch of
the same size — and is never billed twice; an unconfirmed batch is named and can be attached
(checked) or resubmitted; polls that fail are recorded and end in needs_attention; a step is
chunked to the provider's limits; cancel keeps what was finished.

The crash is a provider that raises after the real `submit_batch` returned (what a SIGKILL
at `submit.after_create` does to the journal); everything underneath is the official SDK over
HTTP to the sandbox.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evalbatch.errors import InputError, ProviderError, RunNeedsAttention
from evalbatch.providers import open_provider
from evalbatch.providers.base import Provider
from evalbatch.records import BatchInfo
from evalbatch.run import batch as batch_module
from evalbatch.run.batch import BatchLimits

from .lab import Lab, lab_in, open_lab, write_suite


class SimulatedCrash(BaseException):
    """The process died here (BaseException: nothing in the library catches it)."""


class CrashAfterCreate:
    """The real provider, but the process 'dies' right after the provider created a batch."""

    def __init__(self, real: Provider) -> None:
        self.real = real
        self.created: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def submit_batch(self, items: list[tuple[str, dict[str, Any]]], **kwargs: Any) -> BatchInfo:
        info = self.real.submit_batch(items, **kwargs)
        self.created.append(info.id)
        raise SimulatedCrash(info.id)


def _cases(prefix: str, n: int = 4) -> list[dict[str, Any]]:
    return [
        {"id": f"{prefix}{i}", "input": f"{prefix} question {i}", "target": "q"} for i in range(n)
    ]


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    yield from lab_in(tmp_path)


@pytest.fixture
def slow_lab(tmp_path: Path) -> Iterator[Lab]:
    """Batches stay in progress for a minute (unless canceled)."""
    yield from lab_in(tmp_path, batch_latency=60.0)


def _crashed_run(lab: Lab, name: str) -> tuple[str, str]:
    """A run whose generate batch was created at the provider, its handle never stored.
    Returns (run id, the provider batch id it created)."""
    run_id = lab.create(write_suite(lab.root / name, _cases(name)))
    crashing = CrashAfterCreate(lab.provider())
    with pytest.raises(SimulatedCrash):
        lab.runner(run_id, lambda: crashing).run(poll_s=0.01)
    (created,) = crashing.created
    (intent,) = lab.store.batches.intents(run_id)
    assert (intent.provider_batch_id, intent.request_count) == (None, 4)
    return run_id, created


def _ended(lab: Lab, *batch_ids: str) -> None:
    provider = lab.provider()
    try:
        deadline = time.monotonic() + 30
        while any(provider.get_batch(b).status != "ended" for b in batch_ids):
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        provider.close()


def _outputs(lab: Lab, run_id: str) -> list[str]:
    return [row.output for row in lab.store.reports.case_rows(run_id)]


def _adopted(lab: Lab, run_id: str) -> list[str | None]:
    return [b.provider_batch_id for b in lab.store.batches.of_run(run_id, ("collected",))]


def test_each_crashed_run_adopts_its_own_batch_not_another_runs_of_the_same_size(
    lab: Lab,
) -> None:
    older, older_batch = _crashed_run(lab, "a")  # same size, created first: listed first
    run_id, own_batch = _crashed_run(lab, "b")
    _ended(lab, older_batch, own_batch)

    assert lab.drive(run_id) == "done"
    assert _adopted(lab, run_id) == [own_batch]
    assert _outputs(lab, run_id) == [f"b question {i}" for i in range(4)]  # its own answers
    (row,) = lab.store.batches.of_run(run_id, ("collected",))
    assert (row.seq, row.step, row.provider, row.request_count) == (1, "generate", "anthropic", 4)
    assert row.bytes > 0 and row.counts["succeeded"] == 4
    assert row.submitted_at is not None and row.submitted_at >= row.created_at
    assert row.ended_at is not None and row.expires_at is not None
    assert row.expires_at > row.created_at + 3600  # the provider's 24 h window
    assert lab.drive(older) == "done"
    assert _adopted(lab, older) == [older_batch]
    assert _outputs(lab, older) == [f"a question {i}" for i in range(4)]
    assert lab.batches_created() == 2  # both adopted: nothing sent (or billed) twice


def test_an_intent_the_provider_never_saw_is_sent_again(lab: Lab) -> None:
    # no retries: a try the provider never saw must be given back, or the run would stop
    run_id = lab.create(write_suite(lab.root / "s", _cases("s")), retries=0)
    batch_id = lab.store.batches.record_intent(run_id, "generate", "anthropic", [], 0)
    lab.store.batches.abandon(batch_id)  # an empty intent is never adopted either
    # what a crash before the provider call leaves: an intent whose requests are queued on it
    ids = lab.store.requests.pending_ids(run_id, "generate", 0)
    lab.store.batches.record_intent(run_id, "generate", "anthropic", ids, 100)
    assert lab.drive(run_id) == "done"
    statuses = [b.status for b in lab.store.batches.of_run(run_id, ("abandoned", "collected"))]
    assert statuses == ["abandoned", "abandoned", "collected"]
    assert lab.batches_created() == 1
    assert _outputs(lab, run_id) == [f"s question {i}" for i in range(4)]


def test_a_batch_of_another_size_is_not_adopted(lab: Lab) -> None:
    other, other_batch = _crashed_run(lab, "a")
    run_id = lab.create(write_suite(lab.root / "b", _cases("b", 3)))  # 3 requests, not 4
    crashing = CrashAfterCreate(lab.provider())
    with pytest.raises(SimulatedCrash):
        lab.runner(run_id, lambda: crashing).run(poll_s=0.01)
    (own_batch,) = crashing.created
    # an in-progress batch cannot show its custom_ids: size and time decide
    assert lab.drive(run_id) == "done"
    assert _adopted(lab, run_id) == [own_batch]
    assert lab.drive(other) == "done" and _adopted(lab, other) == [other_batch]
    assert lab.batches_created() == 2


def test_an_unconfirmed_batch_that_cannot_be_listed_is_named_then_attached(lab: Lab) -> None:
    run_id, created = _crashed_run(lab, "a")
    # a provider that cannot list (wrong endpoint: 404, not retryable) leaves it to a person
    broken = open_provider(base_url=lab.sandbox.base_url + "/wrong", api_key="k")
    with pytest.raises(RunNeedsAttention) as stuck:
        lab.runner(run_id, lambda: broken).advance()
    note = str(stuck.value)
    assert note.startswith("batch(es) #1 (generate, 4 requests, sent ")
    assert "may have been created at the provider, but listing its batches failed" in note
    assert f"evalbatch collect {run_id} --attach BATCH_ID" in note
    assert f"evalbatch collect {run_id} --resubmit" in note
    assert lab.store.runs.status(run_id) == "needs_attention"

    other, other_batch = _crashed_run(lab, "b")
    _ended(lab, created, other_batch)
    with pytest.raises(InputError, match=f"batch {other_batch} \\(4 requests\\) is not one of run"):
        lab.runner(run_id).attach(other_batch)  # the same size, but another run's requests
    attached = lab.collect(run_id, attach=created)
    assert attached.status in ("done", "grade", "generate")
    assert lab.drive(run_id) == "done"
    assert _adopted(lab, run_id) == [created]
    with pytest.raises(InputError, match=f"run {run_id} has no batch waiting"):
        lab.runner(run_id).attach(other_batch)
    with pytest.raises(InputError, match=f"batch {created} is already part of a run"):
        lab.runner(other).attach(created)
    assert lab.batches_created() == 2


def test_resubmit_sends_the_unconfirmed_requests_again(lab: Lab) -> None:
    run_id, _ = _crashed_run(lab, "a")
    assert lab.runner(run_id).resubmit_unconfirmed() == 1
    assert lab.store.batches.intents(run_id) == []
    assert lab.drive(run_id) == "done"
    assert lab.batches_created() == 2  # what a person chose: the first batch is not adopted


def test_chunks_follow_the_providers_request_and_byte_limits(lab: Lab) -> None:
    lab.catalog = dataclasses.replace(
        lab.catalog, limits={"anthropic": {"batch_max_requests": 100, "batch_chunk_requests": 3}}
    )
    assert BatchLimits.from_catalog(lab.catalog) == BatchLimits(3, 256_000_000)
    run_id = lab.run(write_suite(lab.root / "s", _cases("s", 8)))
    batches = lab.store.batches.of_run(run_id, ("collected",))
    assert [(b.seq, b.request_count) for b in batches] == [(1, 3), (2, 3), (3, 2)]
    assert lab.batches_created() == 3

    item = batches[-1].bytes // 2  # every request of these suites is this long in a batch file
    one_item = item + item // 2 + len(b'{"requests":[]}')  # one request fits, two do not
    lab.catalog = dataclasses.replace(
        lab.catalog, limits={"anthropic": {"batch_max_bytes": one_item}}
    )
    assert BatchLimits.from_catalog(lab.catalog) == BatchLimits(100_000, one_item)
    second = lab.run(write_suite(lab.root / "t", _cases("t", 2)))
    assert [b.request_count for b in lab.store.batches.of_run(second, ("collected",))] == [1, 1]

    lab.catalog = dataclasses.replace(lab.catalog, limits={"anthropic": {"batch_max_bytes": 50}})
    third = lab.create(write_suite(lab.root / "u", _cases("u", 1)))
    with pytest.raises(
        RunNeedsAttention,
        match=r"request \S+-g0 \(case 'u0'\) is \d+ bytes, above the batch limit of 50",
    ):
        lab.drive(third)


class _FortyMinutesLater:
    @staticmethod
    def time() -> float:
        return time.time() + 40 * 60


def test_polls_that_fail_are_recorded_then_the_run_needs_attention(
    slow_lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab = slow_lab
    run_id = lab.create(write_suite(lab.root / "s", _cases("s")))
    assert lab.drive(run_id, detach=True) == "generate"
    (batch,) = lab.store.batches.open(run_id)
    broken = open_provider(base_url=lab.sandbox.base_url + "/wrong", api_key="k")
    runner = lab.runner(run_id, lambda: broken)
    with pytest.raises(ProviderError, match=r"could not poll 1 batch\(es\) \(msgbatch_") as e:
        runner.advance()
    assert e.value.retryable
    (row,) = lab.store.batches.open(run_id)
    assert row.poll_failures == 1 and row.last_error is not None and "404" in row.last_error
    # the provider has said nothing for 40 minutes, against a limit of 30
    monkeypatch.setattr(batch_module, "UNREACHABLE_S", 1800.0)
    monkeypatch.setattr(batch_module, "time", _FortyMinutesLater)
    with pytest.raises(ProviderError):
        runner.advance()  # two failures: not yet
    with pytest.raises(RunNeedsAttention) as attention:
        runner.advance()
    assert re.search(r"unreachable for 40 min \(3 polls failed; last: .*404", str(attention.value))
    assert str(attention.value).endswith("fix the cause and run `evalbatch collect`.")
    assert lab.store.runs.status(run_id) == "needs_attention"
    # the handle was kept: a working provider picks the run up where it was
    (row,) = lab.store.batches.open(run_id)
    assert row.provider_batch_id == batch.provider_batch_id
    healthy = lab.runner(run_id)
    assert healthy.advance(resume=True) == "generate"
    (row,) = lab.store.batches.open(run_id)
    assert (row.poll_failures, row.last_error, row.status) == (0, None, "in_progress")
    assert row.polled_at is not None


def test_cancel_stops_in_progress_batches_and_the_run_winds_down(slow_lab: Lab) -> None:
    lab = slow_lab
    run_id = lab.create(write_suite(lab.root / "s", _cases("s")))
    lab.drive(run_id, detach=True)
    runner = lab.runner(run_id)
    assert runner.cancel() == ("canceling", 1)
    assert lab.drive(run_id) == "canceled"
    (batch,) = lab.store.batches.of_run(run_id, ("collected",))
    assert batch.counts["canceled"] == 4
    assert lab.store.reports.outcomes(run_id) == {"generate": {"canceled": 4}}


def test_cancel_counts_every_batch_it_stopped_and_leaves_other_runs_alone(slow_lab: Lab) -> None:
    lab = slow_lab
    lab.catalog = dataclasses.replace(
        lab.catalog, limits={"anthropic": {"batch_chunk_requests": 2}}
    )
    run_id = lab.create(write_suite(lab.root / "s", _cases("s")))
    other = lab.create(write_suite(lab.root / "o", _cases("o")))
    lab.drive(run_id, detach=True)
    lab.drive(other, detach=True)
    assert lab.runner(run_id).cancel() == ("canceling", 2)
    assert [b.status for b in lab.store.batches.open(run_id)] == ["canceling", "canceling"]
    assert [b.status for b in lab.store.batches.open(other)] == ["in_progress", "in_progress"]


def test_a_batch_that_ended_before_the_cancel_reached_it_is_collected(tmp_path: Path) -> None:
    with open_lab(tmp_path, batch_latency=0.3) as lab:
        _cancel_after_the_end(lab)


def _cancel_after_the_end(lab: Lab) -> None:
    run_id = lab.create(write_suite(lab.root / "s", _cases("s")))
    lab.drive(run_id, detach=True)
    (row,) = lab.store.batches.open(run_id)
    assert row.provider_batch_id is not None and row.status == "in_progress"
    _ended(lab, row.provider_batch_id)  # the journal still says in_progress
    assert lab.runner(run_id).cancel() == ("canceling", 0)  # nothing was left to cancel
    (row,) = lab.store.batches.open(run_id)
    assert row.status == "ended" and row.counts["succeeded"] == 4
    assert lab.drive(run_id) == "canceled"
    assert lab.store.reports.outcomes(run_id) == {"generate": {"succeeded": 4}}  # kept


def test_a_batch_created_long_before_the_intent_is_not_the_runs(tmp_path: Path) -> None:
    """The intent is written before the provider call, so a batch the provider says it created
    an hour before it cannot be the one that call made (whatever its custom_ids say)."""
    offset = [0.0]
    with open_lab(tmp_path, clock=lambda: time.time() + offset[0]) as lab:
        offset[0] = -3600.0  # the provider's clock: this batch was created an hour ago
        run_id, old_batch = _crashed_run(lab, "a")
        offset[0] = 0.0
        _ended(lab, old_batch)
        with pytest.raises(InputError, match=f"batch {old_batch} \\(4 requests\\) is not one of"):
            lab.runner(run_id).attach(old_batch)
        assert lab.drive(run_id) == "done"  # listing does not offer it either: sent again
        assert _adopted(lab, run_id) != [old_batch]
        assert lab.batches_created() == 2


def test_with_another_alike_intent_waiting_a_running_batch_is_not_adopted_unchecked(
    tmp_path: Path,
) -> None:
    """Two runs of the same size crashed after creating their batches, which still run: a
    running batch cannot show its custom_ids, so neither run may take the first one listed
    (the other run's); each waits until they end, then adopts its own."""
    with open_lab(tmp_path, batch_latency=1.5) as lab:
        older, older_batch = _crashed_run(lab, "a")  # listed first
        run_id, own_batch = _crashed_run(lab, "b")
        runner = lab.runner(run_id)
        assert runner.advance(resume=True) == "generate"
        (intent,) = lab.store.batches.intents(run_id)
        assert intent.provider_batch_id is None  # waiting, not adopting older_batch
        _ended(lab, older_batch, own_batch)
        assert lab.drive(run_id) == "done"
        assert _adopted(lab, run_id) == [own_batch]
        assert lab.drive(older) == "done"
        assert _adopted(lab, older) == [older_batch]
        assert lab.batches_created() == 2


def test_a_submitted_batch_shows_the_providers_counts_before_its_first_poll(
    slow_lab: Lab,
) -> None:
    lab = slow_lab
    run_id = lab.create(write_suite(lab.root / "s", _cases("s")))
    lab.drive(run_id, detach=True)
    (row,) = lab.store.batches.open(run_id)
    assert row.polled_at is None  # what `evalbatch status` shows right after `run --detach`
    assert row.counts["processing"] == 4 and row.counts["succeeded"] == 0


def test_alone_a_crashed_run_adopts_its_running_batch_at_once(tmp_path: Path) -> None:
    """No other unconfirmed intent looks alike: the running batch of the right size, created
    after the intent, can only be this run's, so it is adopted before it ends."""
    with open_lab(tmp_path, batch_latency=1.5) as lab:
        run_id, created = _crashed_run(lab, "a")
        assert lab.runner(run_id).advance(resume=True) == "generate"
        (row,) = lab.store.batches.open(run_id)
        assert (row.provider_batch_id, row.status) == (created, "in_progress")
        assert lab.drive(run_id) == "done"
        assert lab.batches_created() == 1

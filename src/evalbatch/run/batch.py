"""The batch path: submit pending Requests as journaled Batches, reconcile, poll, collect.

Journal: a batch row is committed as an *intent* before the provider call and gets the
provider's handle right after. An intent without a handle (a crash in between) is reconciled on
the next advance by listing the provider's batches; only when none matches is it resubmitted.
A two-step provider (OpenAI: upload the input file, then create the batch from it) journals the
upload's id on the intent in between; its batch carries the intent's label and its file is named
with it, so reconcile adopts the batch a lost response made, and deletes an upload no batch was
made from. Its files are deleted once the batch is collected (`release_files` finishes a delete
a crash interrupted). A batch holds one provider's requests (and one model's, for OpenAI).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..catalog import Catalog
from ..errors import InputError, ProviderError, RunNeedsAttention
from ..plan.requests import stored_body
from ..records import BatchInfo, Step, UploadInfo, custom_id
from ..store.db import Store
from ..store.records import BatchRecord, batch_label
from . import failpoints
from .ingest import record_outcomes
from .providers import ProviderPool
from .scope import BatchScope

# A batch the provider has not answered for about at least this long (and at least 3 polls in a
# row) puts the run in needs_attention instead of polling forever.
UNREACHABLE_S = float(os.environ.get("EVALBATCH_UNREACHABLE_S", "3600"))
MIN_POLL_FAILURES = 3
# Reconcile: a provider batch created this long before our intent was written cannot be ours.
CLOCK_SLACK_S = 120.0

ENVELOPE = len(b'{"requests":[]}')
# (request id, custom_id, body, bytes in the batch file)
Item = tuple[int, str, dict[str, Any], int]
# What one batch holds: one provider's requests, and one model's where the provider wants that.
ChunkKey = tuple[str, str | None]


@dataclass(frozen=True)
class BatchLimits:
    max_requests: int
    max_bytes: int
    one_model: bool = False  # the provider's batch input holds a single model (OpenAI)

    @classmethod
    def from_catalog(cls, catalog: Catalog, provider: str = "anthropic") -> BatchLimits:
        limits = catalog.limits.get(provider, {})
        provider_max = int(limits.get("batch_max_requests", 100_000))
        chunk = int(limits.get("batch_chunk_requests", provider_max))
        return cls(
            min(provider_max, chunk),
            int(limits.get("batch_max_bytes", 256_000_000)),
            bool(limits.get("batch_one_model", False)),
        )


@dataclass
class BatchPath:
    store: Store
    providers: ProviderPool
    scope: BatchScope

    @property
    def run_id(self) -> str:
        """The run batch rows carry (a sweep's first variant)."""
        return self.scope.lead

    @property
    def catalog(self) -> Catalog:
        return next(iter(self.scope.runs.values())).ingest.catalog

    # -- submit ---------------------------------------------------------------------------
    def limits(self, provider: str) -> BatchLimits:
        return BatchLimits.from_catalog(self.catalog, provider)

    def submit_pending(self, step: Step) -> int:
        """Submit every pending request of ``step``; returns the number of batches created."""
        submitted = 0
        for provider, chunk in self._pending_chunks(step):
            self._submit_chunk(step, provider, chunk)
            submitted += 1
        return submitted

    def _pending_chunks(self, step: Step) -> Iterator[tuple[str, list[Item]]]:
        """Pending requests as chunks within each provider's limits, one chunk per provider
        (and per model where the provider wants one model per batch), shared prefixes together
        in each. Only the ids are held; rows are read a page at a time, so memory stays flat."""
        prefixes = {run_id: self.store.requests.prefixes(run_id) for run_id in self.scope.runs}
        if self.scope.sweep_id is None:
            ids = self.store.requests.pending_ids(
                self.run_id, step, self.scope.runs[self.run_id].ingest.retries
            )
        else:
            ids = self.store.requests.pending_ids_of(self.scope.max_attempts(), step)
        chunks: dict[ChunkKey, list[Item]] = {}
        sizes: dict[ChunkKey, int] = {}
        known: dict[str, BatchLimits] = {}
        for req in self.store.requests.by_ids(ids):
            io = self.scope.runs[req.run_id]
            body = stored_body(req, prefixes[req.run_id], io.ttl, io.ingest.catalog)
            cid = custom_id(req.run_id, step, req.idx)
            name = self.providers.provider_of(req.model)
            limits = known.get(name) or known.setdefault(name, self.limits(name))
            item_bytes = self.providers.named(name).batch_item_bytes(cid, body)
            if item_bytes + ENVELOPE > limits.max_bytes:
                raise ProviderError(
                    f"request {cid} (case {req.case_id!r}) is {item_bytes:,} bytes, above the "
                    f"batch limit of {limits.max_bytes:,}"
                )
            key = (name, req.model if limits.one_model else None)
            chunk = chunks.setdefault(key, [])
            if chunk and (
                len(chunk) >= limits.max_requests
                or sizes[key] + item_bytes + ENVELOPE > limits.max_bytes
            ):
                yield name, chunk
                chunk = chunks[key] = []
            if not chunk:
                sizes[key] = 0
            chunk.append((req.id, cid, body, item_bytes))
            sizes[key] += item_bytes
        for (name, _), chunk in chunks.items():
            if chunk:
                yield name, chunk

    def _submit_chunk(self, step: Step, name: str, chunk: list[Item]) -> None:
        provider = self.providers.named(name)
        batch_id = self.store.batches.record_intent(
            self.run_id,
            step,
            name,
            [rid for rid, *_ in chunk],
            sum(b for *_, b in chunk),
            self.scope.sweep_id,
        )
        failpoints.hit("submit.after_intent", step)
        items = [(cid, body) for _, cid, body, _ in chunk]
        label = batch_label(self.run_id, batch_id)
        upload_id = provider.upload_batch(items, label)
        if upload_id is not None:
            failpoints.hit("submit.after_upload", step)  # a file the journal does not know yet
            self.store.batches.record_upload(batch_id, upload_id)
            failpoints.hit("submit.after_upload_id", step)
        info = provider.submit_batch(items, upload_id=upload_id, label=label)
        failpoints.hit("submit.after_create", step)
        self.store.batches.record_handle(batch_id, info)
        failpoints.hit("submit.after_handle", step)

    # -- reconcile ------------------------------------------------------------------------
    def reconcile_intents(self) -> None:
        """Adopt the provider batch each unconfirmed intent created, or resubmit it; delete
        the uploads no batch was made from, and the files of batches already collected.

        With several collectors on one store, another run's batch can be listed before its
        collector stored the handle, and a running batch cannot show its custom_ids yet. So
        while any other unconfirmed intent in the store looks alike (same request count, same
        time), only an ended batch whose custom_ids are this intent's is adopted, and an intent
        with a running candidate waits for it to end instead of being sent again. (A two-step
        provider labels its batches with their intent: nothing to guess.)"""
        self.release_files()
        intents = self.store.batches.intents(self.run_id, self.scope.sweep_id)
        if not intents:
            return
        known = self.store.batches.known_provider_ids()
        oldest = min(row.created_at for row in intents) - CLOCK_SLACK_S
        candidates: dict[str, list[BatchInfo]] = {}
        uploads: dict[str, list[UploadInfo]] = {}
        try:
            for name in {row.provider for row in intents}:
                provider = self.providers.named(name)
                listed = provider.list_batches(created_after=oldest)
                candidates[name] = [b for b in listed if b.id not in known]
                uploads[name] = list(provider.list_uploads(created_after=oldest))
        except ProviderError as exc:
            if exc.retryable:
                raise
            raise RunNeedsAttention(self._orphans(intents, exc)) from exc
        for intent in sorted(intents, key=lambda r: r.seq):
            self._settle(intent, candidates[intent.provider], uploads[intent.provider])

    def _settle(
        self, intent: BatchRecord, candidates: list[BatchInfo], uploads: list[UploadInfo]
    ) -> None:
        """Adopt the batch this intent made, or send its requests again. Either way, an upload
        of this intent that no batch was made from is deleted first (while the intent still
        names it, so a crash here cannot leak it)."""
        provider = self.providers.named(intent.provider)
        ambiguous = self.store.batches.alike_intents(
            intent.id, intent.request_count, intent.created_at - CLOCK_SLACK_S
        )
        match = self._match(intent, candidates, checked=ambiguous)
        if match is None and ambiguous and self._running_candidate(intent, candidates):
            return  # it may be this intent's batch: wait for it to end, then check
        kept = match.upload_id if match is not None else None
        for upload in uploads:
            if upload.label == intent.label and upload.id != kept:
                provider.release_batch(None, upload.id)
        if match is not None:
            candidates.remove(match)
            self.store.batches.record_handle(intent.id, match)
            return
        self.store.batches.abandon(intent.id)
        if intent.upload_id is not None:
            provider.release_batch(None, intent.upload_id)
            self.store.batches.record_release(intent.id)

    def release_files(self) -> None:
        """Delete the provider's files of batches collected (or abandoned) before a crash
        interrupted the delete."""
        for row in self.store.batches.unreleased(self.run_id, self.scope.sweep_id):
            self._release(row)

    def _release(self, row: BatchRecord) -> None:
        if row.upload_id is None:
            return  # a one-step provider keeps nothing apart from the batch
        self.providers.named(row.provider).release_batch(row.provider_batch_id, row.upload_id)
        self.store.batches.record_release(row.id)

    def _running_candidate(self, intent: BatchRecord, candidates: list[BatchInfo]) -> bool:
        """A batch that may be this intent's but cannot be checked until it ends."""
        return any(
            info.status != "ended"
            and info.label is None  # a labelled batch is matched by its label, never guessed
            and info.upload_id is None
            and info.request_count == intent.request_count
            and info.created_at >= intent.created_at - CLOCK_SLACK_S
            for info in candidates
        )

    def _orphans(self, intents: list[BatchRecord], exc: ProviderError) -> str:
        """What may be running at the provider unknown to us, and how to adopt or drop it."""
        shown = "; ".join(
            f"#{i.seq} ({i.step}, {i.request_count} requests, sent "
            f"{datetime.fromtimestamp(i.created_at):%Y-%m-%d %H:%M:%S})"
            for i in intents
        )
        return (
            f"batch(es) {shown} may have been created at the provider, but listing its batches "
            f"failed ({exc}). If the provider's console shows such a batch, adopt it: "
            f"evalbatch collect {self.scope.label} --attach BATCH_ID; if it shows none, send the "
            f"requests again: evalbatch collect {self.scope.label} --resubmit"
        )

    def attach(self, provider_batch_id: str) -> BatchRecord:
        """Adopt a provider batch for one of the run's unconfirmed intents, after checking it
        is the run's: same request count, created after the intent (allowing clock slack), and,
        when it has results, custom_ids of the requests queued on that intent."""
        intents = self.store.batches.intents(self.run_id, self.scope.sweep_id)
        if not intents:
            raise InputError(f"run {self.scope.label} has no batch waiting for its provider id")
        if provider_batch_id in self.store.batches.known_provider_ids():
            raise InputError(f"batch {provider_batch_id} is already part of a run")
        name, info = self._find(provider_batch_id, {i.provider for i in intents})
        mine = [i for i in intents if i.provider == name]
        match = next((i for i in mine if self._match(i, [info]) is not None), None)
        if match is None:
            raise InputError(
                f"batch {provider_batch_id} ({info.request_count} requests) is not one of run "
                f"{self.scope.label}'s unconfirmed batches: "
                + ", ".join(f"#{i.seq} with {i.request_count} requests" for i in intents)
            )
        self.store.batches.record_handle(match.id, info)
        return match

    def _find(self, provider_batch_id: str, names: set[str]) -> tuple[str, BatchInfo]:
        """The batch at whichever of the intents' providers knows it."""
        error: ProviderError | None = None
        for name in sorted(names):
            try:
                return name, self.providers.named(name).get_batch(provider_batch_id)
            except ProviderError as exc:
                if exc.retryable:
                    raise
                error = exc
        assert error is not None
        raise error

    def resubmit_intents(self) -> int:
        """A person checked that the unconfirmed intents never reached the provider: their
        requests go back to pending and are sent again."""
        intents = self.store.batches.intents(self.run_id, self.scope.sweep_id)
        for intent in intents:
            self.store.batches.abandon(intent.id)
        self.release_files()
        return len(intents)

    def _match(
        self, intent: BatchRecord, candidates: list[BatchInfo], *, checked: bool = False
    ) -> BatchInfo | None:
        """The candidate this intent created: same request count, created after it (with clock
        slack), and for an ended batch custom_ids of its requests. ``checked``: only an ended,
        so checkable, batch will do."""
        for info in sorted(candidates, key=lambda b: b.created_at):
            if info.label is not None or info.upload_id is not None:
                # A two-step provider says which intent made the batch: no guessing needed.
                mine = info.label == intent.label or (
                    intent.upload_id is not None and info.upload_id == intent.upload_id
                )
                if mine:
                    return info
                continue
            if info.request_count != intent.request_count:
                continue
            if info.created_at < intent.created_at - CLOCK_SLACK_S:
                continue
            if checked and info.status != "ended":
                continue
            if info.status == "ended":
                ids = self.providers.named(intent.provider).batch_custom_ids(info.id)
                if not ids or not all(self._is_ours(cid, intent.id) for cid in ids):
                    continue
            return info
        return None

    def _is_ours(self, cid: str, batch_id: int) -> bool:
        """The custom_id names a request of this scope's runs that was queued on this intent."""
        parsed = self.scope.owns(cid)
        if parsed is None:
            return False
        run_id, step, idx = parsed
        return self.store.requests.batch_of(run_id, step, idx) == batch_id  # type: ignore[arg-type]

    # -- poll and collect ------------------------------------------------------------------
    def open_batches(self, step: Step | None = None) -> list[BatchRecord]:
        """Batches that may still deliver results: of ``step``, or of every step."""
        return self.store.batches.open(self.run_id, step, self.scope.sweep_id)

    def poll(self, step: Step) -> list[BatchInfo]:
        """Poll every open batch of ``step`` once and collect the ones that ended."""
        seen, failed = [], []
        for row in self.open_batches(step):
            info = self._poll_one(row)
            if info is None:
                failed.append(str(row.provider_batch_id))
                continue
            seen.append(info)
            if info.status == "ended":
                self.collect(row.id, info.id, row.provider)
                failpoints.hit("collect.before_release")
                self._release(row)
        if failed:
            # Recorded on the batch rows; say so rather than report a quiet "still running".
            raise ProviderError(
                f"could not poll {len(failed)} batch(es) ({', '.join(failed[:3])}); "
                "their handles are kept",
                retryable=True,
            )
        return seen

    def _poll_one(self, row: BatchRecord) -> BatchInfo | None:
        assert row.provider_batch_id is not None
        try:
            info = self.providers.named(row.provider).get_batch(row.provider_batch_id)
        except ProviderError as exc:
            self.store.batches.record_poll_failure(row.id, str(exc))
            silent_s = time.time() - (row.polled_at or row.submitted_at or row.created_at)
            if row.poll_failures + 1 >= MIN_POLL_FAILURES and silent_s >= UNREACHABLE_S:
                raise RunNeedsAttention(
                    f"batch {row.provider_batch_id} unreachable for {silent_s / 60:.0f} min "
                    f"({row.poll_failures + 1} polls failed; last: {exc}). Nothing is lost: "
                    "fix the cause and run `evalbatch collect`."
                ) from exc
            return None
        self.store.batches.record_poll(row.id, info)
        return info

    def collect(self, batch_id: int, provider_batch_id: str, provider: str) -> None:
        """Stream an ended batch's results into the store; safe to repeat after a cut."""
        contexts = {run_id: io.ingest for run_id, io in self.scope.runs.items()}
        outcomes = self.providers.named(provider).iter_results(provider_batch_id)
        record_outcomes(self.store, contexts, outcomes, batch_id)
        self.store.batches.finish_collect(batch_id)

    def cancel(self) -> int:
        canceled = 0
        for row in self.store.batches.of_run(
            self.run_id, ("in_progress",), None, self.scope.sweep_id
        ):
            assert row.provider_batch_id is not None
            provider = self.providers.named(row.provider)
            try:
                info = provider.cancel_batch(row.provider_batch_id)
                canceled += 1
            except ProviderError as exc:
                if exc.retryable:
                    raise
                # It ended before the cancel reached it (a race, not an error): its results
                # are collected like any other.
                info = provider.get_batch(row.provider_batch_id)
                if info.status != "ended":
                    raise
            self.store.batches.set_status(row.id, info.status, info)
        return canceled

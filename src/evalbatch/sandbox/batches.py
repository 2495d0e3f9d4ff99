"""Message Batches in the sandbox: the store, the lifecycle (in_progress -> canceling -> ended)
and processing in a worker thread. Params are validated when an item is processed, so an
invalid request becomes an `errored` item, never a create-time error."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from .config import SandboxConfig
from .draws import draw
from .state import SandboxState, new_id
from .validate import validate_params

RETRYABLE = ("overloaded_error", "api_error")


def rfc3339(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Batch:
    id: str
    seq: int
    api_key: str
    version: str
    requests: list[tuple[str, Any]]
    created_at: float
    status: str = "in_progress"
    ended_at: float | None = None
    cancel_at: float | None = None
    lines: list[bytes] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    downloads: int = 0
    cancel_requested: threading.Event = field(default_factory=threading.Event)

    def to_json(self, base_url: str) -> dict[str, Any]:
        n = len(self.requests) if self.status != "ended" else 0
        counts = {"processing": n, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        if self.status == "ended":
            counts.update(self.counts)
            counts["processing"] = 0
        return {
            "id": self.id,
            "type": "message_batch",
            "processing_status": self.status,
            "request_counts": counts,
            "ended_at": rfc3339(self.ended_at),
            "created_at": rfc3339(self.created_at),
            "expires_at": rfc3339(self.created_at + 86400),
            "archived_at": None,
            "cancel_initiated_at": rfc3339(self.cancel_at),
            "results_url": (
                f"{base_url}/v1/messages/batches/{self.id}/results"
                if self.status == "ended"
                else None
            ),
        }


class BatchStore:
    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.batches: dict[str, Batch] = {}
        self.order: list[str] = []  # creation order
        self._seq = 0
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    def create(self, api_key: str, version: str, requests: list[tuple[str, Any]]) -> Batch:
        with self.state.lock:
            self._seq += 1
            batch = Batch(
                new_id("msgbatch"), self._seq, api_key, version, requests, self.state.config.clock()
            )
            self.batches[batch.id] = batch
            self.order.append(batch.id)
            self.state.stats["batches_created"] += 1
        thread = threading.Thread(
            target=self._process, args=(batch,), daemon=True, name=f"sandbox-{batch.id}"
        )
        self._threads.append(thread)
        thread.start()
        return batch

    def cancel(self, batch: Batch) -> None:
        with self.state.lock:
            if batch.status == "in_progress":
                batch.status = "canceling"
                batch.cancel_at = self.state.config.clock()
                batch.cancel_requested.set()

    def stop(self) -> None:
        self._stopping.set()
        for batch in self.batches.values():
            batch.cancel_requested.set()
        for thread in self._threads:
            thread.join(timeout=5)

    # -- processing ---------------------------------------------------------------------------
    def _process(self, batch: Batch) -> None:
        config = self.state.config
        expired_all = wait_latency(config, batch.cancel_requested)
        results: dict[str, int] = {"succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        lines: list[bytes] = []
        wave: list[tuple[str, dict[str, Any]]] = []
        size = max(1, config.batch_concurrency)
        for custom_id, params in batch.requests:
            if batch.cancel_requested.is_set() or self._stopping.is_set():
                kind, line = "canceled", _line(custom_id, {"type": "canceled"})
            elif expired_all:
                kind, line = "expired", _line(custom_id, {"type": "expired"})
            else:
                kind, line = self._process_item(batch, custom_id, params, wave)
                if len(wave) >= size:
                    flush_wave(self.state, wave)
            results[kind] += 1
            lines.append(line)
        flush_wave(self.state, wave)
        with self.state.lock:
            for kind, n in results.items():
                self.state.stats[f"items_{kind}"] += n
            batch.lines, batch.counts = lines, results
            batch.requests = [(cid, None) for cid, _ in batch.requests]  # free the params
            batch.status, batch.ended_at = "ended", config.clock()

    def _process_item(
        self, batch: Batch, custom_id: str, params: Any, wave: list[tuple[str, dict[str, Any]]]
    ) -> tuple[str, bytes]:
        state = self.state
        error = validate_params(params, batch.version, state.catalog, in_batch=True)
        if error:
            return "errored", _error_line(custom_id, "invalid_request_error", error)
        fault = item_fault(state)
        if fault == "expired":
            return "expired", _line(custom_id, {"type": "expired"})
        if fault is not None:
            return "errored", _error_line(custom_id, fault, "simulated item failure")
        read_own = reads_own_writes(state, batch.seq, custom_id)
        answered = state.answer(params, batch.api_key, "batch", batch.id, read_own)
        wave.append((batch.api_key, answered))
        return "succeeded", _line(custom_id, {"type": "succeeded", "message": answered["message"]})


# -- what both providers' batches share ------------------------------------------------------
def wait_latency(config: SandboxConfig, cancelled: threading.Event) -> bool:
    """Sleep the batch latency (cut short by expire_after or a cancel); True when the whole
    batch expires before any item is processed."""
    deadline = config.expire_after
    wait = config.batch_latency if deadline is None else min(config.batch_latency, deadline)
    if wait > 0:
        cancelled.wait(timeout=wait)
    return deadline is not None and config.batch_latency >= deadline


def item_fault(state: SandboxState) -> str | None:
    """The injected fate of one batch item: a retryable error kind (``overloaded_error`` or
    ``api_error``), ``"expired"``, or None to answer it. One draw from the seeded generator."""
    faults = state.config.faults
    with state.lock:
        roll = state.rng.random()
    if faults.errored and roll < faults.errored:
        return RETRYABLE[int(roll * 1e6) % len(RETRYABLE)]
    if faults.expired and roll < faults.errored + faults.expired:
        return "expired"
    return None


def reads_own_writes(state: SandboxState, seq: int, custom_id: str) -> bool:
    """Whether an item reads cache entries its own batch wrote (the in-batch hit-rate draw)."""
    rate = state.config.batch_cache_hit_rate
    return rate >= 1.0 or draw(state.config.seed, "cache", seq, custom_id) < rate


def flush_wave(state: SandboxState, wave: list[tuple[str, dict[str, Any]]]) -> None:
    """Commit a wave's answers: its cache writes become readable only once all of it finished."""
    for api_key, answered in wave:
        state.commit(api_key, answered)
    wave.clear()


def _line(custom_id: str, result: dict[str, Any]) -> bytes:
    return orjson.dumps({"custom_id": custom_id, "result": result}) + b"\n"


def _error_line(custom_id: str, kind: str, message: str) -> bytes:
    return _line(
        custom_id,
        {
            "type": "errored",
            "error": {
                "type": "error",
                "error": {"type": kind, "message": message},
                "request_id": None,
            },
        },
    )


def results_stream(batch: Batch, state: SandboxState) -> tuple[list[bytes], bool]:
    """The JSONL lines in shuffled (seeded) order, and whether to cut this download short."""
    with state.lock:
        order = list(range(len(batch.lines)))
        state.rng.shuffle(order)
        batch.downloads += 1
        truncate = state.config.faults.truncate_results and batch.downloads == 1
    return [batch.lines[i] for i in order], truncate

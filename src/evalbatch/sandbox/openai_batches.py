"""OpenAI batches in the sandbox: the store and the lifecycle (validating -> in_progress ->
finalizing -> completed, or failed, expired, cancelling -> cancelled), run on a worker thread
with the same latency, item faults, cache waves and hit-rate draw as Message Batches."""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

import orjson

from .batches import flush_wave, item_fault, reads_own_writes, wait_latency
from .openai_chat import OpenAIError, answer_chat, check_chat, new_openai_id
from .openai_files import BatchInput, FileStore, read_batch_input
from .state import SandboxState

ENDED = ("completed", "failed", "expired", "cancelled")
EXPIRED = {
    "code": "batch_expired",
    "message": "This request could not be executed before the completion window expired.",
}
CANCELLED = {
    "code": "batch_cancelled",
    "message": "This request was not executed because the batch was cancelled.",
}
# An injected item failure, by the Anthropic side's kind: (status, OpenAI error type, message).
ITEM_FAULTS = {
    "api_error": (500, "server_error", "The server had an error processing your request."),
    "overloaded_error": (503, "server_error", "The server is overloaded. Please retry."),
}


@dataclass
class OpenAIBatch:
    id: str
    seq: int  # creation number among OpenAI batches: part of the in-batch hit-rate draw
    api_key: str
    input_file_id: str
    endpoint: str
    metadata: dict[str, str] | None
    created_at: int
    status: str = "validating"
    model: str | None = None
    times: dict[str, int] = field(default_factory=dict)  # in_progress_at, completed_at...
    errors: list[dict[str, Any]] | None = None
    counts: dict[str, int] = field(default_factory=lambda: dict(total=0, completed=0, failed=0))
    usage: dict[str, int] | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    cancel_requested: threading.Event = field(default_factory=threading.Event)

    def to_json(self) -> dict[str, Any]:
        stamps = (
            *("in_progress_at", "finalizing_at", "completed_at", "failed_at", "expired_at"),
            *("cancelling_at", "cancelled_at"),
        )
        usage = self.usage
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "model": self.model,
            "errors": None if self.errors is None else {"object": "list", "data": self.errors},
            "input_file_id": self.input_file_id,
            "completion_window": "24h",
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": self.created_at,
            "expires_at": self.created_at + 86400,
            **{stamp: self.times.get(stamp) for stamp in stamps},
            "request_counts": dict(self.counts),
            "usage": None
            if usage is None
            else {
                "input_tokens": usage["input"],
                "input_tokens_details": {"cached_tokens": usage["cached"]},
                "output_tokens": usage["output"],
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": usage["input"] + usage["output"],
            },
            "metadata": self.metadata,
        }


def _line(custom_id: str, response: dict[str, Any] | None, error: Any = None) -> bytes:
    line = {"id": new_openai_id("batch_req"), "custom_id": custom_id}
    return orjson.dumps({**line, "response": response, "error": error}) + b"\n"


def _response(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"status_code": status, "request_id": secrets.token_hex(16), "body": body}


class OpenAIBatchStore:
    def __init__(self, state: SandboxState, files: FileStore) -> None:
        self.state = state
        self.files = files
        self.batches: dict[str, OpenAIBatch] = {}  # creation order
        self._seq = 0
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    def now(self) -> int:
        return int(self.state.config.clock())

    def create(
        self, api_key: str, input_file_id: str, endpoint: str, metadata: dict[str, str] | None
    ) -> dict[str, Any]:
        """The new batch as the create call returns it: still `validating`, whatever the
        worker thread has done since."""
        with self.state.lock:
            self._seq += 1
            batch = OpenAIBatch(
                new_openai_id("batch"),
                self._seq,
                api_key,
                input_file_id,
                endpoint,
                metadata,
                self.now(),
            )
            self.batches[batch.id] = batch
            self.state.stats["openai_batches_created"] += 1
            created = batch.to_json()
        thread = threading.Thread(
            target=self._process, args=(batch,), daemon=True, name=f"sandbox-{batch.id}"
        )
        self._threads.append(thread)
        thread.start()
        return created

    def cancel(self, batch: OpenAIBatch) -> None:
        with self.state.lock:
            if batch.status in ("validating", "in_progress"):
                batch.status = "cancelling"
                batch.times["cancelling_at"] = self.now()
                batch.cancel_requested.set()

    def stop(self) -> None:
        self._stopping.set()
        for batch in list(self.batches.values()):
            batch.cancel_requested.set()
        for thread in self._threads:
            thread.join(timeout=5)

    # -- processing ---------------------------------------------------------------------------
    def _validate(self, batch: OpenAIBatch) -> BatchInput | None:
        config = self.state.config
        try:
            content = self.files.get(batch.input_file_id).content
        except OpenAIError as exc:
            found: BatchInput | list[dict[str, Any]] = [
                {"code": "file_not_found", "message": exc.message, "param": None, "line": None}
            ]
        else:
            found = read_batch_input(
                content,
                batch.endpoint,
                self.state.catalog,
                config.openai_max_batch_requests,
                config.openai_max_batch_bytes,
            )
        with self.state.lock:
            if isinstance(found, BatchInput):
                batch.model = found.model
                batch.counts["total"] = len(found.requests)
                if batch.status == "validating":
                    batch.status = "in_progress"
                batch.times["in_progress_at"] = self.now()
                return found
            batch.status, batch.errors = "failed", found
            batch.times["failed_at"] = self.now()
            self.state.stats["openai_batches_failed"] += 1
        return None

    def _process(self, batch: OpenAIBatch) -> None:
        found = self._validate(batch)
        if found is None:
            return
        state = self.state
        expired_all = wait_latency(state.config, batch.cancel_requested)
        outputs: list[bytes] = []
        errors: list[bytes] = []
        outcomes = dict(completed=0, failed=0, expired=0, cancelled=0)
        usage = dict(input=0, cached=0, output=0)
        wave: list[tuple[str, dict[str, Any]]] = []
        for custom_id, body in found.requests:
            if batch.cancel_requested.is_set() or self._stopping.is_set():
                kind, line = "cancelled", _line(custom_id, None, CANCELLED)
            elif expired_all:
                kind, line = "expired", _line(custom_id, None, EXPIRED)
            else:
                kind, line = self._run_item(batch, custom_id, body, wave, usage)
                if len(wave) >= max(1, state.config.batch_concurrency):
                    flush_wave(state, wave)
            outcomes[kind] += 1
            (outputs if kind == "completed" else errors).append(line)
            with state.lock:
                batch.counts["completed" if kind == "completed" else "failed"] += 1
        flush_wave(state, wave)
        self._finish(batch, outputs, errors, outcomes, usage, expired_all)

    def _run_item(
        self,
        batch: OpenAIBatch,
        custom_id: str,
        body: dict[str, Any],
        wave: list[tuple[str, dict[str, Any]]],
        usage: dict[str, int],
    ) -> tuple[str, bytes]:
        state = self.state
        try:
            model = check_chat(body, state.catalog)
        except OpenAIError as exc:
            return "failed", _line(custom_id, _response(exc.status, exc.body()))
        fault = item_fault(state)
        if fault == "expired":
            return "expired", _line(custom_id, None, EXPIRED)
        if fault is not None:
            status, kind, message = ITEM_FAULTS[fault]
            error = OpenAIError(status, message, type=kind)
            return "failed", _line(custom_id, _response(status, error.body()))
        read_own = reads_own_writes(state, batch.seq, custom_id)
        answered = answer_chat(state, body, model, batch.api_key, batch.id, read_own)
        wave.append((batch.api_key, answered))
        completion = answered["completion"]
        usage["input"] += completion["usage"]["prompt_tokens"]
        usage["cached"] += answered["read"]
        usage["output"] += completion["usage"]["completion_tokens"]
        return "completed", _line(custom_id, _response(200, completion))

    def _finish(
        self,
        batch: OpenAIBatch,
        outputs: list[bytes],
        errors: list[bytes],
        outcomes: dict[str, int],
        usage: dict[str, int],
        expired_all: bool,
    ) -> None:
        state = self.state
        with state.lock:
            batch.status = "cancelling" if batch.status == "cancelling" else "finalizing"
            batch.times["finalizing_at"] = self.now()
            # The output and error files list lines in no particular order (seeded shuffle).
            state.rng.shuffle(outputs)
            state.rng.shuffle(errors)
        truncate = state.config.faults.truncate_results
        for lines, suffix, attr in ((outputs, "output", "output_file_id"), (errors, "error", "")):
            if lines:
                stored = self.files.add(
                    f"batch_{batch.id}_{suffix}.jsonl",
                    "batch_output",
                    b"".join(lines),
                    self.now(),
                    truncate,
                )
                setattr(batch, attr or "error_file_id", stored.id)
        with state.lock:
            for kind, n in outcomes.items():
                if n:
                    state.stats[f"openai_items_{kind}"] += n
            batch.usage = usage
            if batch.status == "cancelling" or outcomes["cancelled"]:
                batch.status, stamp = "cancelled", "cancelled_at"
            elif expired_all:
                batch.status, stamp = "expired", "expired_at"
            else:
                batch.status, stamp = "completed", "completed_at"
            batch.times[stamp] = self.now()

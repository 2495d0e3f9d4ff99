"""The OpenAI provider on the official SDK: the Batch API over Chat Completions (upload the input
file, create the batch, download the output and error files, delete them all after collection)
and the async client for the sync path. Wire forms and error translation live in `openai_wire`."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Generator, Iterator
from typing import Any

import openai
import orjson

from ..errors import MissingCredentials, ProviderError
from ..records import BatchInfo, Outcome, UploadInfo
from .anthropic import split_lines
from .openai_wire import (
    ENDPOINT,
    FILE_SUFFIX,
    LABEL_KEY,
    batch_info,
    batch_line,
    chat_body,
    chat_outcome,
    error_class_of,
    error_type_of,
    failed_batch_outcomes,
    line_outcome,
    rate_limits,
    retry_after,
    translate,
    upload_info,
)

_LIST_PAGE = 100


class OpenAIProvider:
    """Provider on `openai.OpenAI` (files, batches) and `openai.AsyncOpenAI` (sync path).

    Chat Completions rather than Responses: both are Batch API endpoints, but Chat Completions
    is stateless (Responses stores every response unless told not to), is served by every chat
    model and by OpenAI-compatible gateways behind OPENAI_BASE_URL, and maps one to one from the
    Messages shape every request is planned in."""

    name = "openai"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        max_retries: int = 4,
        timeout: float = 600.0,
    ) -> None:
        key = api_key or os.environ.get("OPENAI_API_KEY")
        if not key:
            raise MissingCredentials("OPENAI_API_KEY")
        base = base_url or os.environ.get("OPENAI_BASE_URL") or None
        self._client = openai.OpenAI(
            api_key=key, base_url=base, max_retries=max_retries, timeout=timeout
        )
        self.base_url = str(self._client.base_url).rstrip("/")
        # No idempotency key exists for uploads or batch creation: a retried POST after a lost
        # response would leave a second file or create (and bill) a second batch. The journal
        # retries instead, and reconcile finds what a lost response made.
        self._create_client = self._client.with_options(max_retries=0)
        # The sync path paces and retries itself (run/pacing.py): it must see every 429.
        self._async_args: dict[str, Any] = {
            "api_key": key,
            "base_url": base,
            "max_retries": 0,
            "timeout": timeout,
        }
        self._async: openai.AsyncOpenAI | None = None

    def _translate(self, exc: Exception, action: str) -> ProviderError:
        return translate(exc, action, self.base_url)

    # -- batches: submit ----------------------------------------------------------------------
    def batch_item_bytes(self, custom_id: str, params: dict[str, Any]) -> int:
        return len(batch_line(custom_id, params)) + 1

    def upload_batch(self, items: list[tuple[str, dict[str, Any]]], label: str) -> str | None:
        """Upload the input file, named with the intent's label so that reconcile can find it
        if its id is lost."""
        content = b"".join(batch_line(cid, params) + b"\n" for cid, params in items)
        try:
            uploaded = self._create_client.files.create(
                file=(label + FILE_SUFFIX, content, "application/jsonl"), purpose="batch"
            )
        except openai.OpenAIError as exc:
            raise self._translate(exc, "uploading a batch input file") from exc
        return uploaded.id

    def submit_batch(
        self,
        items: list[tuple[str, dict[str, Any]]],
        *,
        upload_id: str | None = None,
        label: str = "",
    ) -> BatchInfo:
        if upload_id is None:
            raise ValueError("an OpenAI batch is created from an uploaded input file")
        try:
            batch = self._create_client.batches.create(
                input_file_id=upload_id,
                endpoint=ENDPOINT,
                completion_window="24h",
                metadata={LABEL_KEY: label},
            )
        except openai.OpenAIError as exc:
            raise self._translate(exc, "creating a batch") from exc
        return batch_info(batch)

    # -- batches: find, poll, cancel ----------------------------------------------------------
    def get_batch(self, batch_id: str) -> BatchInfo:
        try:
            return batch_info(self._client.batches.retrieve(batch_id))
        except openai.OpenAIError as exc:
            raise self._translate(exc, f"retrieving batch {batch_id}") from exc

    def list_batches(self, *, created_after: float) -> Iterator[BatchInfo]:
        try:
            for batch in self._client.batches.list(limit=_LIST_PAGE):
                if batch.created_at < created_after:
                    return
                yield batch_info(batch)
        except openai.OpenAIError as exc:
            raise self._translate(exc, "listing batches") from exc

    def list_uploads(self, *, created_after: float) -> Iterator[UploadInfo]:
        try:
            for file in self._client.files.list(purpose="batch", order="desc", limit=1000):
                if file.created_at < created_after:
                    return
                yield upload_info(file)
        except openai.OpenAIError as exc:
            raise self._translate(exc, "listing files") from exc

    def cancel_batch(self, batch_id: str) -> BatchInfo:
        try:
            return batch_info(self._client.batches.cancel(batch_id))
        except openai.OpenAIError as exc:
            raise self._translate(exc, f"canceling batch {batch_id}") from exc

    # -- batches: collect ---------------------------------------------------------------------
    def batch_custom_ids(self, batch_id: str, limit: int = 5) -> list[str]:
        ids: list[str] = []
        with contextlib.closing(self.iter_results(batch_id)) as outcomes:
            for outcome in outcomes:
                ids.append(outcome.custom_id)
                if len(ids) >= limit:
                    break
        return ids

    def iter_results(self, batch_id: str) -> Generator[Outcome, None, None]:
        """Every request's outcome: the output file's lines, then the error file's (a batch
        that expired or was cancelled has both); a batch that failed validation has neither,
        so its requests are read back from its input file."""
        try:
            batch = self._client.batches.retrieve(batch_id)
        except openai.OpenAIError as exc:
            raise self._translate(exc, f"retrieving batch {batch_id}") from exc
        if batch.status == "failed":
            errors = list(batch.errors.data or []) if batch.errors else []
            custom_ids = (
                str(line["custom_id"]) for line in self._file_lines(batch.input_file_id, batch_id)
            )
            yield from failed_batch_outcomes(custom_ids, errors)
            return
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id:
                yield from map(line_outcome, self._file_lines(file_id, batch_id))

    def _file_lines(self, file_id: str, batch_id: str) -> Generator[dict[str, Any], None, None]:
        """A JSONL file's lines, streamed and decoded with orjson (about 20x cheaper than SDK
        models, as on the Anthropic side)."""
        try:
            with self._client.files.with_streaming_response.content(file_id) as response:
                for line in split_lines(response.iter_bytes()):
                    if line.strip():
                        yield orjson.loads(line)
        except openai.OpenAIError as exc:
            raise self._translate(exc, f"downloading results of batch {batch_id}") from exc
        except Exception as exc:
            # A cut stream: a broken last line (ValueError) or the transport's own error.
            # Collecting again is idempotent, so retry.
            raise ProviderError(
                f"downloading results of batch {batch_id}: stream cut ({exc.__class__.__name__})",
                retryable=True,
            ) from exc

    def release_batch(self, batch_id: str | None, upload_id: str | None) -> None:
        file_ids = [upload_id]
        if batch_id is not None:
            try:
                batch = self._client.batches.retrieve(batch_id)
            except openai.NotFoundError:
                batch = None
            except openai.OpenAIError as exc:
                raise self._translate(exc, f"retrieving batch {batch_id}") from exc
            if batch is not None:
                file_ids = [batch.input_file_id, batch.output_file_id, batch.error_file_id]
        for file_id in dict.fromkeys(f for f in file_ids if f):
            try:
                self._client.files.delete(file_id)
            except openai.NotFoundError:
                continue  # deleted already (a crash after the delete, before it was recorded)
            except openai.OpenAIError as exc:
                raise self._translate(exc, f"deleting file {file_id}") from exc

    # -- sync path ----------------------------------------------------------------------------
    async def complete(self, custom_id: str, params: dict[str, Any]) -> Outcome:
        """One request, once. A failure comes back as an errored Outcome with its ErrorClass,
        the provider's retry-after and rate-limit readings, for the sync path to act on."""
        if self._async is None:
            self._async = openai.AsyncOpenAI(**self._async_args)
        started = time.monotonic()
        try:
            raw = await self._async.chat.completions.with_raw_response.create(**chat_body(params))
            completion = orjson.loads(raw.content)
        except openai.APIStatusError as exc:
            headers = exc.response.headers
            return Outcome(
                custom_id=custom_id,
                kind="errored",
                error_type=error_type_of(exc),
                error_message=str(self._translate(exc, "sending a request")),
                error_class=error_class_of(exc),
                retry_after=retry_after(headers),
                limits=rate_limits(headers),
            )
        except openai.APIConnectionError as exc:
            return Outcome(
                custom_id=custom_id,
                kind="errored",
                error_type="connection_error",
                error_message=str(self._translate(exc, "sending a request")),
                error_class="transient",
            )
        latency = int((time.monotonic() - started) * 1000)
        return chat_outcome(custom_id, completion, None, latency, rate_limits(raw.headers))

    def count_tokens(self, params: dict[str, Any]) -> int:
        raise ProviderError(
            "OpenAI has no token-counting endpoint: plan an OpenAI model with --count-tokens local",
            retryable=False,
        )

    async def aclose(self) -> None:
        if self._async is not None:
            await self._async.close()
            self._async = None

    def close(self) -> None:
        self._client.close()

"""OpenAI's Files in the sandbox: the store (upload, list, content, delete), the multipart body
the SDK uploads with, and the validation of a batch input file line by line."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import orjson

from ..catalog.models import Catalog
from .openai_chat import OpenAIError, new_openai_id
from .openai_models import find_openai_model

UPLOAD_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
MAX_UPLOAD_BYTES = 512_000_000  # any one file (a batch input file has its own, lower limit)
MAX_VALIDATION_ERRORS = 100  # errors listed on a failed batch; the rest are dropped
DUPLICATE = (
    "The custom_id for this request is a duplicate of another request. The custom_id"
    " parameter must be unique for each request in a batch."
)


@dataclass
class StoredFile:
    id: str
    filename: str
    purpose: str
    created_at: int
    content: bytes
    truncate_next: bool = False  # the truncate-results fault cuts its next download short

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.content),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }


class FileStore:
    """Every file, in upload order. Like the batches, files are not scoped to the API key."""

    def __init__(self) -> None:
        self.files: dict[str, StoredFile] = {}
        self.lock = threading.Lock()

    def add(
        self, filename: str, purpose: str, content: bytes, created_at: int, truncate: bool = False
    ) -> StoredFile:
        stored = StoredFile(new_openai_id("file"), filename, purpose, created_at, content, truncate)
        with self.lock:
            self.files[stored.id] = stored
        return stored

    def get(self, file_id: str) -> StoredFile:
        with self.lock:
            found = self.files.get(file_id)
        if found is None:
            raise OpenAIError(404, f"No such File object: {file_id}", "id")
        return found

    def delete(self, file_id: str) -> None:
        with self.lock:
            if self.files.pop(file_id, None) is None:
                raise OpenAIError(404, f"No such File object: {file_id}", "id")

    def page(
        self, purpose: str | None, limit: int, order: str, after: str | None
    ) -> tuple[list[StoredFile], bool]:
        with self.lock:
            files = [f for f in self.files.values() if purpose is None or f.purpose == purpose]
        if order == "desc":
            files.reverse()
        ids = [f.id for f in files]
        start = ids.index(after) + 1 if after in ids else 0
        return files[start : start + limit], len(files) > start + limit


def parse_multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """Fields of a multipart/form-data body: name -> (filename or None, value)."""
    boundary = ""
    for param in content_type.split(";")[1:]:
        key, _, given = param.strip().partition("=")
        if key.lower() == "boundary":
            boundary = given.strip('"')
    if not content_type.lower().startswith("multipart/form-data") or not boundary:
        raise OpenAIError(400, "The body must be multipart/form-data with file and purpose.")
    fields: dict[str, tuple[str | None, bytes]] = {}
    delimiter = b"--" + boundary.encode()
    at = body.find(delimiter)
    while at >= 0 and not body.startswith(b"--", at + len(delimiter)):
        head_end = body.find(b"\r\n\r\n", at)
        following = body.find(b"\r\n" + delimiter, head_end)
        if head_end < 0 or following < 0:
            break
        name, filename = _disposition(body[at + len(delimiter) : head_end])
        if name is not None:  # one copy of each value: a batch file may be 200 MB
            fields[name] = (filename, body[head_end + 4 : following])
        at = following + 2
    return fields


def _disposition(head: bytes) -> tuple[str | None, str | None]:
    """(name, filename) from a part's Content-Disposition header."""
    name = filename = None
    for line in head.decode("utf-8", "replace").split("\r\n"):
        if line.lower().startswith("content-disposition:"):
            for item in line.split(";")[1:]:
                key, _, raw = item.strip().partition("=")
                if key == "name":
                    name = raw.strip('"')
                elif key == "filename":
                    filename = raw.strip('"')
    return name, filename


@dataclass
class BatchInput:
    """A batch input file that passed validation: (custom_id, body) per request, and its model."""

    requests: list[tuple[str, Any]]
    model: str


def _error(line: int | None, code: str, message: str, param: str | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "param": param, "line": line}


def _check_line(
    number: int, raw: bytes, endpoint: str, catalog: Catalog, seen: set[str], models: set[str]
) -> tuple[dict[str, Any] | None, tuple[str, Any] | None]:
    try:
        item = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _error(
            number, "invalid_json_line", "This line is not parseable as valid JSON."
        ), None
    if not isinstance(item, dict):
        return _error(number, "invalid_json_line", "Each line must be a JSON object."), None
    for key in ("custom_id", "method", "url", "body"):
        if key not in item:
            message = f"Missing required parameter: '{key}'."
            return _error(number, "missing_required_parameter", message, key), None
    custom_id, body = item["custom_id"], item["body"]
    if not isinstance(custom_id, str) or not custom_id:
        return _error(number, "invalid_value", "custom_id: a non-empty string.", "custom_id"), None
    if item["method"] != "POST":
        message = f"Invalid value: {item['method']!r}. Supported values are: 'POST'."
        return _error(number, "invalid_value", message, "method"), None
    if item["url"] != endpoint:
        message = "The URL provided for this request does not match the batch endpoint."
        return _error(number, "invalid_url", message, "url"), None
    if custom_id in seen:
        return _error(number, "duplicate_custom_id", DUPLICATE, "custom_id"), None
    seen.add(custom_id)
    if not isinstance(body, dict):
        return _error(number, "invalid_type", "body: a JSON object.", "body"), None
    model = body.get("model")
    if find_openai_model(catalog, model) is None or str(model).startswith("openai:"):
        message = f"The provided model '{model}' is not supported by the Batch API."
        return _error(number, "model_not_found", message, "body.model"), None
    if models and model not in models:
        message = (
            f"The provided model '{model}' does not match the model '{next(iter(models))}' of"
            " the other requests in this batch. All requests in a batch must use the same model."
        )
        return _error(number, "mismatched_model", message, "body.model"), None
    models.add(str(model))
    return None, (custom_id, body)


def read_batch_input(
    content: bytes, endpoint: str, catalog: Catalog, max_requests: int, max_bytes: int
) -> BatchInput | list[dict[str, Any]]:
    """The requests of a batch input file, or the errors that fail the batch (each with its
    1-based line): size and count limits, JSON, the four fields, one model, unique custom_ids.
    A request body's own fields are checked only when the request runs (an error-file line)."""
    if len(content) > max_bytes:
        message = f"The batch input file is {len(content):,} bytes; the limit is {max_bytes:,}."
        return [_error(None, "file_too_large", message)]
    lines = [(n, raw) for n, raw in enumerate(content.splitlines(), start=1) if raw.strip()]
    if not lines:
        return [_error(None, "empty_file", "The batch input file is empty.")]
    if len(lines) > max_requests:
        message = (
            f"The batch input file has {len(lines):,} requests; the limit is {max_requests:,}."
        )
        return [_error(None, "too_many_requests", message)]
    errors: list[dict[str, Any]] = []
    requests: list[tuple[str, Any]] = []
    seen: set[str] = set()
    models: set[str] = set()
    for number, raw in lines:
        error, request = _check_line(number, raw, endpoint, catalog, seen, models)
        if error is not None:
            errors.append(error)
            if len(errors) >= MAX_VALIDATION_ERRORS:
                break
        elif request is not None:
            requests.append(request)
    if errors:
        return errors
    return BatchInput(requests, next(iter(models)))

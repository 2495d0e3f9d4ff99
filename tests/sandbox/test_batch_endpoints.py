"""The checks shared by every /v1/messages/batches/{id} endpoint: a key first, then the batch."""

from __future__ import annotations

import httpx2
import pytest

ENDPOINTS = [("GET", ""), ("POST", "/cancel"), ("DELETE", ""), ("GET", "/results")]
VERSION = {"anthropic-version": "2026-10-21"}


@pytest.mark.parametrize(("method", "suffix"), ENDPOINTS)
def test_missing_key_is_401_before_an_unknown_batch_is_404(sb, method: str, suffix: str) -> None:
    url = f"{sb.base_url}/v1/messages/batches/msgbatch_nope{suffix}"
    anonymous = httpx2.request(method, url, headers=VERSION)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["type"] == "authentication_error"
    keyed = httpx2.request(method, url, headers={**VERSION, "x-api-key": "k"})
    assert keyed.status_code == 404
    assert keyed.json()["error"] == {"type": "not_found_error", "message": "batch not found"}
    assert keyed.json()["request_id"] == keyed.headers["request-id"]

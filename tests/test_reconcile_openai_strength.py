"""The batch journal of a two-step provider (OpenAI: upload a file, then create the batch from
it), under crashes, in process: a run that died after the provider created its batch adopts
the batch its own intent labelled, never another run's of the same size; one that died after
the upload deletes that file and sends again; nothing is billed twice and no file is left.

The crash is a provider that raises at the named step (what a SIGKILL at `submit.after_create`,
`submit.after_upload` or `submit.after_upload_id` does to the journal); underneath, the
official `openai` SDK over HTTP to the sandbox's OpenAI API.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from evalbatch.providers import api_base_url, open_provider
from evalbatch.providers.base import Provider
from evalbatch.records import BatchInfo

from .lab import Lab, lab_in, write_suite

MODEL = "openai:gpt-5-mini"


class SimulatedCrash(BaseException):
    """The process died here (BaseException: nothing in the library catches it)."""


class Crashing:
    """The real provider, but the process 'dies' at ``at``: right after the upload, right
    before the batch is created (the upload's id stored), or right after it was created."""

    def __init__(self, real: Provider, at: str) -> None:
        self.real, self.at = real, at
        self.created: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def upload_batch(self, items: list[tuple[str, dict[str, Any]]], label: str) -> str | None:
        upload = self.real.upload_batch(items, label)
        if self.at == "after_upload":
            raise SimulatedCrash(upload)
        return upload

    def submit_batch(self, items: list[tuple[str, dict[str, Any]]], **kwargs: Any) -> BatchInfo:
        if self.at == "after_upload_id":
            raise SimulatedCrash("before create")
        info = self.real.submit_batch(items, **kwargs)
        self.created.append(info.id)
        raise SimulatedCrash(info.id)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    yield from lab_in(tmp_path)


def _factory(lab: Lab) -> Callable[..., Provider]:
    def factory(name: str = "anthropic") -> Provider:
        return open_provider(name, base_url=api_base_url(name, lab.sandbox.base_url), api_key="k")

    return factory


def _cases(prefix: str) -> list[dict[str, Any]]:
    return [
        {"id": f"{prefix}{i}", "input": f"{prefix} question {i}", "target": "q"} for i in range(3)
    ]


def _suite(lab: Lab, name: str) -> Path:
    return write_suite(
        lab.root / name,
        _cases(name),
        generate={"prompt": "{{ input }}", "max_tokens": 32, "model": MODEL},
    )


def _crash(lab: Lab, name: str, at: str) -> tuple[str, Crashing]:
    run_id = lab.create(_suite(lab, name))
    crashing = Crashing(_factory(lab)("openai"), at)

    def factory(provider: str = "anthropic") -> Provider:
        return crashing if provider == "openai" else _factory(lab)(provider)

    with pytest.raises(SimulatedCrash):
        lab.runner(run_id, factory).run(poll_s=0.01)
    return run_id, crashing


def _drive(lab: Lab, run_id: str) -> str:
    return lab.runner(run_id, _factory(lab)).run(poll_s=0.01, max_poll_s=0.05)


def _files_left(lab: Lab) -> list[str]:
    base = api_base_url("openai", lab.sandbox.base_url)
    with openai.OpenAI(base_url=base, api_key="k", max_retries=0) as client:
        return [f.filename for f in client.files.list()]


def _outputs(lab: Lab, run_id: str) -> list[str]:
    return [row.output for row in lab.store.reports.case_rows(run_id)]


def test_each_crashed_run_adopts_the_batch_its_own_intent_labelled(lab: Lab) -> None:
    older, first = _crash(lab, "a", "after_create")  # same size, created first: listed first
    run_id, second = _crash(lab, "b", "after_create")
    assert _drive(lab, run_id) == "done"
    (row,) = lab.store.batches.of_run(run_id, ("collected",))
    assert [row.provider_batch_id] == second.created  # its own, by label
    assert row.provider == "openai" and row.upload_id is not None
    assert _outputs(lab, run_id) == [f"b question {i}" for i in range(3)]
    assert _drive(lab, older) == "done"
    (row,) = lab.store.batches.of_run(older, ("collected",))
    assert [row.provider_batch_id] == first.created
    assert _outputs(lab, older) == [f"a question {i}" for i in range(3)]
    stats = lab.sandbox.stats()
    assert stats["openai_batches_created"] == 2  # both adopted: nothing sent (or billed) twice
    assert _files_left(lab) == []  # each batch's upload and output deleted once collected


@pytest.mark.parametrize("at", ["after_upload", "after_upload_id"])
def test_an_upload_no_batch_was_made_from_is_deleted_and_the_requests_sent_again(
    lab: Lab, at: str
) -> None:
    other, _ = _crash(lab, "a", at)  # another run's upload, alike, still waiting
    run_id, _ = _crash(lab, "b", at)
    assert len(_files_left(lab)) == 2
    assert _drive(lab, run_id) == "done"
    assert _outputs(lab, run_id) == [f"b question {i}" for i in range(3)]
    assert lab.sandbox.stats()["openai_batches_created"] == 1
    assert len(_files_left(lab)) == 1  # its own stale upload gone; the other run's kept
    assert _drive(lab, other) == "done"
    assert lab.sandbox.stats()["openai_batches_created"] == 2
    assert _files_left(lab) == []

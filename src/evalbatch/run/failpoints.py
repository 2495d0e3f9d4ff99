"""Crash points for the durability tests: ``EVALBATCH_FAILPOINT=name[:n]`` kills the process
with SIGKILL the n-th time (default the first) execution reaches ``hit(name)``.

This is how the test suite proves that a run killed at the worst moment (between a batch's intent
and its handle, halfway through a results stream...) is recovered by the next ``collect`` with no
duplicate batch and the same scoreboard. Unset, ``hit`` costs one dict lookup.

Names: ``submit.after_intent``, ``submit.after_create``, ``submit.after_handle`` (each also
with the step, e.g. ``submit.after_create.grade``), ``collect.mid_stream``, ``grade.after_plan``,
``score.before``. A two-step provider (OpenAI) adds ``submit.after_upload`` (the input file is
uploaded, its id not yet stored) and ``submit.after_upload_id`` (its id stored, the batch not yet
created), each also with the step, and ``collect.before_release`` (a batch collected, its files
not yet deleted).
"""

from __future__ import annotations

import os
import signal

_hits: dict[str, int] = {}


def hit(name: str, step: str | None = None) -> None:
    """``step`` narrows a point to one step: ``submit.after_create.grade``."""
    spec = os.environ.get("EVALBATCH_FAILPOINT")
    if not spec:
        return
    target, _, nth = spec.partition(":")
    if target not in (name, f"{name}.{step}"):
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)

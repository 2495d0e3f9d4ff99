"""The viewer's URLs, built in one place so every link is percent-encoded the same way.

Stable and shareable: ``/runs``, ``/runs/ID``, ``/runs/ID/cases/CASE``, ``/compare/A/B``, and
``/api/...`` mirrors. A case id is one path segment with every reserved character encoded
(``a/b?c`` -> ``a%2Fb%3Fc``); the ids ``.``, ``..`` and the empty id, which a browser would fold
away as path segments, go through ``/runs/ID/case?id=...`` instead.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

_FOLDED = ("", ".", "..")


def segment(value: str) -> str:
    return quote(value, safe="")


def run_url(run_id: str, api: bool = False) -> str:
    return f"{'/api' if api else ''}/runs/{segment(run_id)}"


def cases_url(run_id: str, api: bool = False) -> str:
    return f"{run_url(run_id, api)}/cases"


def state_url(run_id: str) -> str:
    return f"{run_url(run_id, api=True)}/state"


def case_url(run_id: str, case_id: str, epoch: int | None = None, api: bool = False) -> str:
    anchor = f"#epoch-{epoch}" if epoch and not api else ""
    if case_id in _FOLDED:
        return f"{run_url(run_id, api)}/case?{urlencode({'id': case_id})}{anchor}"
    return f"{cases_url(run_id, api)}/{segment(case_id)}{anchor}"


def compare_url(base: str, new: str, api: bool = False) -> str:
    return f"{'/api' if api else ''}/compare/{segment(base)}/{segment(new)}"

"""A small store for the viewer's tests, built through the real pipeline (in process, against a
sandbox on 127.0.0.1): two finished runs of one suite, the second with a changed prompt whose
model answers some cases with markup and script, and a third run left in flight.

Everything a model or a case file can hold is hostile somewhere: case ids with `/`, `?`, `#`,
`%`, `..` and markup, inputs, targets, tags, outputs and grader explanations with `<script>`,
`onerror`, `javascript:` links and `</textarea>`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from evalbatch.plan.prepare import prepare
from evalbatch.providers import open_provider
from evalbatch.run.create import create_run
from evalbatch.run.engine import Runner
from evalbatch.sandbox import SandboxConfig, SandboxServer
from evalbatch.sandbox.prompts import last_user_text
from evalbatch.store.db import Store, open_store

HOSTILE_OUTPUTS = {
    "xss-script": "<script>window.__pwned=1</script>",
    "xss-img": '<img src=x onerror="window.__pwned=2">',
    "xss-link": '<a href="javascript:window.__pwned=3">click</a>',
    "xss-textarea": "</textarea><script>window.__pwned=4</script>",
    "xss-style": '<style>body{display:none}</style><link rel="stylesheet" href="http://evil.test/x.css">',
}
ODD_IDS = [
    "a/b?c=1#frag",
    "..",
    "100% done",
    "<img src=x onerror=window.__pwned=5>",
    "javascript:window.__pwned=6",
]
EXPLANATION = "<script>window.__pwned=7</script> fine"


def _case(case_id: str, i: int) -> dict[str, Any]:
    return {
        "id": case_id,
        "input": f"case {case_id} </textarea><b>bold</b>",
        "target": "ok",
        "difficulty": "hard" if i % 3 == 0 else "easy",
        "tags": ["safety", "<i>tag</i>"] if i % 2 else ["plain"],
    }


PLAIN = [f"plain-{i}" for i in range(1, 8)]
CASES = [_case(cid, i) for i, cid in enumerate([*PLAIN, *HOSTILE_OUTPUTS, *ODD_IDS])]
NEW_PROMPT = "{{ input }}\nv2 <script>window.__pwned=8</script>"


def responder(params: dict[str, Any]) -> str:
    text = last_user_text(params)
    if "<output>" in text:  # the rubric grader
        return json.dumps({"score": 4, "reasoning": EXPLANATION})
    if "v2" in text:
        for case_id, payload in HOSTILE_OUTPUTS.items():
            if f"case {case_id} " in text:
                return payload
    return "ok, " + text.splitlines()[0]


def write_suite(folder: Path, prompt: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cases.jsonl").write_text("".join(json.dumps(c) + "\n" for c in CASES))
    suite = {
        "name": "hostile",
        "cases": "cases.jsonl",
        "generate": {"prompt": prompt, "max_tokens": 64, "model": "route"},
        "routing": {"easy": "haiku", "hard": "sonnet", "default": "haiku"},
        "grade": [
            {"contains": "{{ target }}"},
            {"rubric": {"model": "haiku", "rubric": "Is it <b>ok</b>?", "pass": ">= 4"}},
        ],
        "mode": "batch",
        "cache": "off",
    }
    path = folder / "suite.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


@dataclass(frozen=True)
class ViewStore:
    url: str
    base: str  # finished, every case answered "ok, ..."
    new: str  # finished, prompt changed, hostile answers
    live: str  # submitted, its batch still in progress

    def open(self) -> Store:
        return open_store(self.url)


def _run(store: Store, suite: Path, base_url: str, *, detach: bool = False) -> str:
    run_id = create_run(store, prepare(suite), {"retries": 2, "concurrency": 4})
    runner = Runner(store, run_id, lambda: open_provider(base_url=base_url, api_key="test"))
    try:
        runner.run(detach=detach, poll_s=0.02)
    finally:
        runner.close()
    return run_id


def build_view_store(root: Path) -> ViewStore:
    url = f"sqlite:///{root / 'store.db'}"
    store = open_store(url)
    try:
        with SandboxServer(SandboxConfig(responder=responder, batch_latency=0.0)) as fast:
            base = _run(store, write_suite(root / "v1", "{{ input }}"), fast.base_url)
            new = _run(store, write_suite(root / "v2", NEW_PROMPT), fast.base_url)
        with SandboxServer(SandboxConfig(responder=responder, batch_latency=3600.0)) as slow:
            live = _run(
                store, write_suite(root / "v3", "{{ input }} v3"), slow.base_url, detach=True
            )
    finally:
        store.close()
    return ViewStore(url, base, new, live)

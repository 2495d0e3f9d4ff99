"""Small suite files the end-to-end tests write into tmp_path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

CASES = [
    {"id": "paris", "input": "The capital of France is Paris", "target": "Paris"},
    {"id": "rome", "input": "The capital of Italy is Rome", "target": "Rome"},
    {"id": "oslo", "input": "The capital of Norway is Bergen", "target": "Oslo"},
    {"id": "tokyo", "input": "The capital of Japan is Tokyo", "target": "Tokyo"},
]


def write_suite(folder: Path, **overrides: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    cases = overrides.pop("cases", CASES)
    (folder / "cases.jsonl").write_text("".join(json.dumps(c) + "\n" for c in cases))
    suite: dict[str, Any] = {
        "name": "capitals",
        "cases": "cases.jsonl",
        "generate": {"prompt": "{{ input }}", "max_tokens": 64, "model": "haiku"},
        "grade": [{"contains": "{{ target }}"}],
        "mode": "batch",
        "cache": "off",
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(suite.get(key), dict):
            suite[key] = {**suite[key], **value}
        else:
            suite[key] = value
    path = folder / "suite.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path

"""What changed between two runs' manifests: prompts, rubrics and routing as unified diffs,
models, parameters, graders, cases, epochs and versions as one-line summaries."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True)
class ManifestChange:
    key: str
    summary: str
    diff: str = ""  # a unified diff for texts


def _text_diff(name: str, old: str | None, new: str | None) -> str:
    lines = difflib.unified_diff(
        (old or "").splitlines(),
        (new or "").splitlines(),
        fromfile=f"base/{name}",
        tofile=f"new/{name}",
        lineterm="",
    )
    text = "\n".join(lines)
    return text + "\n" if text else ""


def diff_manifests(base: dict[str, Any], new: dict[str, Any]) -> list[ManifestChange]:
    changes: list[ManifestChange] = []
    bg, ng = base.get("generate", {}), new.get("generate", {})
    for key in ("system", "prompt"):
        if bg.get(key) != ng.get(key):
            changes.append(
                ManifestChange(
                    f"generate.{key}",
                    f"{key} text changed",
                    _text_diff(key, bg.get(key), ng.get(key)),
                )
            )
    for key in ("model", "max_tokens", "stop_sequences"):
        if bg.get(key) != ng.get(key):
            changes.append(
                ManifestChange(f"generate.{key}", f"{_show(bg.get(key))} -> {_show(ng.get(key))}")
            )
    if base.get("routing") != new.get("routing"):
        changes.append(
            ManifestChange(
                "routing",
                "routing table changed",
                _text_diff("routing", _pretty(base.get("routing")), _pretty(new.get("routing"))),
            )
        )
    changes.extend(_grader_changes(base.get("graders", []), new.get("graders", [])))
    if base.get("cases") != new.get("cases"):
        b, n = base.get("cases", {}), new.get("cases", {})
        changes.append(
            ManifestChange(
                "cases", f"case set changed ({b.get('count')} -> {n.get('count')} cases)"
            )
        )
    for key in ("epochs", "pricing_version", "models_version", "evalbatch_version"):
        if base.get(key) != new.get(key):
            changes.append(ManifestChange(key, f"{base.get(key)} -> {new.get(key)}"))
    return changes


def _show(value: Any) -> str:
    if isinstance(value, dict) and "id" in value:
        return f"{value.get('as_written')} ({value['id']})"
    return str(value)


def _pretty(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n"


def _grader_changes(base: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[ManifestChange]:
    changes = []
    b, n = {g["name"]: g for g in base}, {g["name"]: g for g in new}
    for name in sorted(set(b) - set(n)):
        changes.append(ManifestChange(f"graders.{name}", "grader removed"))
    for name in sorted(set(n) - set(b)):
        changes.append(ManifestChange(f"graders.{name}", "grader added"))
    for name in sorted(set(b) & set(n)):
        if b[name] != n[name]:
            changes.append(
                ManifestChange(
                    f"graders.{name}",
                    "grader changed",
                    _text_diff(name, _pretty(b[name]), _pretty(n[name])),
                )
            )
    return changes

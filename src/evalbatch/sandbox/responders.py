"""Responders decide what text the sandbox answers: `echo`, `script:FILE`, `python:module:fn`,
`quality:PROFILE` (known ground truth, see quality.py)."""

from __future__ import annotations

import fnmatch
import importlib
import importlib.util
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import yaml

from ..userfiles import load_file_module
from .prompts import last_user_text
from .quality import QualityResponder
from .quality_profile import load_profile

Responder = Callable[[dict[str, Any]], Any]


def echo(params: dict[str, Any]) -> str:
    return last_user_text(params)


class ScriptResponder:
    """Rules from YAML ``{rules: [{model, match, response}], default}`` or JSONL (one rule per
    line; a line ``{"default": ...}`` sets the default). First match wins; ``\\1`` in a response
    refers to the match's groups."""

    def __init__(self, path: Path) -> None:
        text = path.read_text("utf-8")
        if path.suffix == ".jsonl":
            rules, default = [], None
            for line in text.splitlines():
                if line.strip():
                    item = orjson.loads(line)
                    if "default" in item and "response" not in item:
                        default = item["default"]
                    else:
                        rules.append(item)
        else:
            data = yaml.safe_load(text) or {}
            rules, default = data.get("rules") or [], data.get("default")
        self.rules = [
            (
                str(r.get("model", "*")),
                re.compile(str(r.get("match", "")), re.S),
                str(r["response"]),
            )
            for r in rules
        ]
        self.default = "" if default is None else str(default)

    def __call__(self, params: dict[str, Any]) -> str:
        text = last_user_text(params)
        model = str(params.get("model", ""))
        for glob, pattern, response in self.rules:
            if not fnmatch.fnmatchcase(model, glob):
                continue
            match = pattern.search(text)
            if match:
                return match.expand(response) if "\\" in response else response
        return self.default


def _python(ref: str) -> Responder:
    module_ref, _, name = ref.rpartition(":")
    try:
        if module_ref.endswith(".py"):
            module = load_file_module(Path(module_ref).resolve(), "sandbox_responder")
        else:
            module = importlib.import_module(module_ref)
    except (ImportError, OSError) as exc:
        raise ValueError(f"responder {ref}: cannot import {module_ref}: {exc}") from None
    func = getattr(module, name, None)
    if not callable(func):
        raise ValueError(f"responder {ref}: no function {name!r}")
    return func  # type: ignore[no-any-return]


def load_responder(
    spec: str | Responder, seed: int = 0, count: Callable[[str], None] | None = None
) -> Responder:
    """The responder for ``spec``; ValueError (one line) when it cannot be loaded. ``seed`` and
    ``count`` (add 1 to a stats counter) serve responders that draw or count."""
    if callable(spec):
        return spec
    if spec == "echo":
        return echo
    if spec.startswith("script:"):
        path = Path(spec[len("script:") :])
        if not path.is_file():
            raise ValueError(f"responder script not found: {path}")
        return ScriptResponder(path)
    if spec.startswith("python:"):
        return _python(spec[len("python:") :])
    if spec.startswith("quality:"):
        return QualityResponder(load_profile(Path(spec[len("quality:") :])), seed, count)
    raise ValueError(
        f"unknown responder {spec!r} "
        "(use echo, script:FILE, python:module:function, quality:PROFILE)"
    )

"""Case loaders (JSONL, CSV, YAML, inline) that stream, and the one validating pass over them.

A case: id, input or vars{}, target?, difficulty?, tags?, metadata?. A case without an id gets
its 1-based position ("1", "2", ...). JSONL and CSV are read line by line, so memory stays flat.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import yaml

from ..errors import SuiteError
from ..graders.base import Grader
from ..records import Case
from ..templates import render
from ..userfiles import CASE_FILE, YAML_CASES, check_file
from .load import _did_you_mean, parse_yaml, read_text
from .schema import Suite

CASE_KEYS = ("id", "input", "vars", "target", "difficulty", "tags", "metadata")


@dataclass
class CaseScan:
    count: int
    content_sha256: str
    difficulties: dict[str, int] = field(default_factory=dict)


def _to_case(raw: Any, position: int, source: str, line: int | None) -> Case:
    where = f"{source}:{line}" if line else source
    if not isinstance(raw, dict):
        raise SuiteError(f"case {position}: must be an object with id and input", where=where)
    for key in raw:
        if key not in CASE_KEYS:
            raise SuiteError(
                f"unknown case key {key!r}"
                + _did_you_mean(key, CASE_KEYS)
                + f" (allowed: {', '.join(CASE_KEYS)})",
                where=where,
            )
    case_id = raw.get("id", position)
    if not isinstance(case_id, str | int) or isinstance(case_id, bool) or str(case_id) == "":
        raise SuiteError(
            f"case id must be a non-empty string or number (got {case_id!r})", where=where
        )
    if raw.get("input") is None and not raw.get("vars"):
        raise SuiteError(f"case {str(case_id)!r}: needs `input` or `vars`", where=where)
    vars_ = raw.get("vars") or {}
    if not isinstance(vars_, dict):
        raise SuiteError(f"case {str(case_id)!r}: field 'vars' must be an object", where=where)
    tags = raw.get("tags") or []
    if isinstance(tags, str):
        tags = [t for t in tags.split(";") if t]
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise SuiteError(
            f"case {str(case_id)!r}: field 'tags' must be a list of strings", where=where
        )
    difficulty = raw.get("difficulty")
    if difficulty is not None and not isinstance(difficulty, str):
        raise SuiteError(f"case {str(case_id)!r}: field 'difficulty' must be a string", where=where)
    metadata = raw.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise SuiteError(f"case {str(case_id)!r}: field 'metadata' must be an object", where=where)
    return Case(
        id=str(case_id),
        input=raw.get("input"),
        target=raw.get("target"),
        vars=vars_,
        difficulty=difficulty,
        tags=tuple(tags),
        metadata=metadata,
        source=source,
        line=line,
    )


def _jsonl(suite: Suite) -> Iterator[Case]:
    spec = suite.cases
    assert spec.path is not None
    read_text_check(suite)
    position = 0
    with open(spec.path, "rb") as fh:
        for line_no, raw_line in enumerate(fh, start=1):
            if not raw_line.strip():
                continue
            try:
                text = raw_line.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise SuiteError(
                    f"not valid UTF-8 at byte {exc.start} of the line",
                    where=f"{spec.display}:{line_no}",
                ) from None
            try:
                raw = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                raise SuiteError(
                    f"invalid JSON: {exc}", where=f"{spec.display}:{line_no}"
                ) from None
            position += 1
            yield _to_case(raw, position, spec.display, line_no)


def read_text_check(suite: Suite) -> None:
    """Size and readability checks before streaming a case file."""
    spec = suite.cases
    assert spec.path is not None
    try:
        check_file(spec.path, CASE_FILE)
        with open(spec.path, "rb"):
            pass
    except ValueError as exc:
        raise SuiteError(str(exc), where=spec.display) from None
    except OSError as exc:
        raise SuiteError(f"cannot read: {exc.strerror}", where=spec.display) from None


def _csv(suite: Suite) -> Iterator[Case]:
    spec = suite.cases
    assert spec.path is not None
    read_text_check(suite)
    try:
        fh = open(spec.path, encoding="utf-8", newline="")  # noqa: SIM115
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
    except UnicodeDecodeError as exc:
        raise SuiteError(f"not valid UTF-8 at byte {exc.start}", where=spec.display) from None
    with fh:
        if "input" not in header and "id" not in header:
            raise SuiteError(
                "CSV needs a header row with at least an `input` column "
                "(columns: id, input, target, difficulty, tags; others become vars)",
                where=f"{spec.display}:1",
            )
        try:
            for position, row in enumerate(reader, start=1):
                raw: dict[str, Any] = {"vars": {}}
                for key, value in row.items():
                    if key in ("id", "input", "target", "difficulty") and value != "":
                        raw[key] = value
                    elif key == "tags" and value:
                        raw["tags"] = [t for t in value.split(";") if t]
                    elif key is not None and key not in (
                        "id",
                        "input",
                        "target",
                        "difficulty",
                        "tags",
                    ):
                        raw["vars"][key] = value
                yield _to_case(raw, position, spec.display, reader.line_num)
        except UnicodeDecodeError as exc:
            raise SuiteError(f"not valid UTF-8 at byte {exc.start}", where=spec.display) from None


def _yaml(suite: Suite) -> Iterator[Case]:
    spec = suite.cases
    assert spec.path is not None
    text = read_text(spec.path, spec.display, YAML_CASES)
    node, data = parse_yaml(text, spec.display)
    if isinstance(data, dict) and isinstance(data.get("cases"), list):
        items, node = data["cases"], _child(node, "cases")
    elif isinstance(data, list):
        items = data
    else:
        raise SuiteError(
            "a YAML case file is a list of cases (or {cases: [...]})", where=spec.display
        )
    lines = (
        [n.start_mark.line + 1 for n in node.value]
        if isinstance(node, yaml.SequenceNode)
        else [None] * len(items)
    )
    for position, (raw, line) in enumerate(zip(items, lines, strict=False), start=1):
        yield _to_case(raw, position, spec.display, line)


def _child(node: Any, key: str) -> Any:
    for key_node, value in node.value:
        if key_node.value == key:
            return value
    return None


def _inline(suite: Suite) -> Iterator[Case]:
    for position, raw in enumerate(suite.cases.inline or [], start=1):
        yield _to_case(raw, position, suite.cases.display or suite.display, suite.cases.line)


def iter_cases(suite: Suite) -> Iterator[Case]:
    loaders = {"jsonl": _jsonl, "csv": _csv, "yaml": _yaml, "inline": _inline}
    return loaders[suite.cases.format](suite)


def scan_cases(suite: Suite, graders: list[Grader]) -> CaseScan:
    """One streaming pass: every case valid, ids unique, every template renders for it."""
    digest = hashlib.sha256()
    first_seen: dict[str, int | None] = {}
    difficulties: dict[str, int] = {}
    templates = [(f"grader {g.name}", t) for g in graders for t in g.template_sources()]
    count = 0
    for case in iter_cases(suite):
        if case.id in first_seen:
            before = first_seen[case.id]
            raise SuiteError(
                f"duplicate case id {case.id!r}" + (f" (first at line {before})" if before else ""),
                where=f"{case.source}:{case.line}" if case.line else case.source,
            )
        first_seen[case.id] = case.line
        context = case.context()
        render(suite.generate.prompt, context, case.where("prompt"))
        for label, template in templates:
            render(template, context, case.where(label))
        digest.update(orjson.dumps(case.content(), option=orjson.OPT_SORT_KEYS))
        digest.update(b"\n")
        if case.difficulty:
            difficulties[case.difficulty] = difficulties.get(case.difficulty, 0) + 1
        count += 1
    if count == 0:
        raise SuiteError(
            "no cases: the case list is empty", where=suite.cases.display or suite.display
        )
    return CaseScan(count, digest.hexdigest(), difficulties)

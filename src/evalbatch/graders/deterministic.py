"""Deterministic graders: exact, contains, regex, json. Values may be templates over the case."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from ..records import Case, Score
from ..templates import render
from ..userfiles import INCLUDE, read_user_text
from .base import Grader

_FENCE = re.compile(r"```(?:json)?\s*\n(.*?)\n```", re.DOTALL)


def _mapping(params: Any, key: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    if isinstance(params, dict):
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise ValueError(f"unknown option {unknown[0]!r} (allowed: {', '.join(allowed)})")
        return params
    if isinstance(params, str | int | float) and not isinstance(params, bool):
        return {key: str(params)}
    raise ValueError(f"expected a value or a mapping with {key!r}")


def _pass(name: str, ok: bool, explanation: str) -> Score:
    return Score(grader=name, passed=ok, value=1.0 if ok else 0.0, explanation=explanation)


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ExactGrader(Grader):
    kind = "exact"

    def __init__(self, name: str, params: Any, base_dir: Path) -> None:
        super().__init__(name, params, base_dir)
        opts = _mapping(params, "value", ("value", "ignore_case", "strip"))
        if "value" not in opts:
            raise ValueError('exact needs a value, e.g. exact: "{{ target }}"')
        self.value = str(opts["value"])
        self.ignore_case = bool(opts.get("ignore_case", False))
        self.strip = bool(opts.get("strip", True))

    def template_sources(self) -> list[str]:
        return [self.value]

    def manifest_entry(self) -> dict[str, Any]:
        return {"value": self.value, "ignore_case": self.ignore_case, "strip": self.strip}

    def _norm(self, text: str) -> str:
        text = text.strip() if self.strip else text
        return text.lower() if self.ignore_case else text

    def grade(self, output: str, case: Case) -> Score:
        expected = render(self.value, case.context(), case.where(self.name))
        ok = self._norm(output) == self._norm(expected)
        return _pass(
            self.name, ok, f"{'equals' if ok else 'expected exactly'} {_short(expected)!r}"
        )


class ContainsGrader(Grader):
    kind = "contains"

    def __init__(self, name: str, params: Any, base_dir: Path) -> None:
        super().__init__(name, params, base_dir)
        opts = _mapping(params, "value", ("value", "all", "any", "ignore_case"))
        self.ignore_case = bool(opts.get("ignore_case", False))
        if "value" in opts:
            self.mode, self.values = "all", [str(opts["value"])]
        elif "all" in opts or "any" in opts:
            self.mode = "all" if "all" in opts else "any"
            values = opts[self.mode]
            if not isinstance(values, list) or not values:
                raise ValueError(f"contains.{self.mode}: a non-empty list of strings")
            self.values = [str(v) for v in values]
        else:
            raise ValueError("contains needs a value, or all: [...] / any: [...]")

    def template_sources(self) -> list[str]:
        return list(self.values)

    def manifest_entry(self) -> dict[str, Any]:
        return {"mode": self.mode, "values": self.values, "ignore_case": self.ignore_case}

    def grade(self, output: str, case: Case) -> Score:
        ctx, hay = case.context(), output.lower() if self.ignore_case else output
        needles = [render(v, ctx, case.where(self.name)) for v in self.values]
        found = [n for n in needles if (n.lower() if self.ignore_case else n) in hay]
        ok = len(found) == len(needles) if self.mode == "all" else bool(found)
        missing = [n for n in needles if n not in found]
        if ok:
            return _pass(self.name, True, f"contains {', '.join(repr(_short(n)) for n in found)}")
        return _pass(
            self.name, False, f"expected {', '.join(repr(_short(n)) for n in missing)} in output"
        )


class RegexGrader(Grader):
    kind = "regex"

    def __init__(self, name: str, params: Any, base_dir: Path) -> None:
        super().__init__(name, params, base_dir)
        opts = _mapping(params, "pattern", ("pattern", "flags"))
        if "pattern" not in opts:
            raise ValueError("regex needs a pattern")
        self.pattern = str(opts["pattern"])
        self.flags = 0
        for letter in str(opts.get("flags", "")):
            flag = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}.get(
                letter
            )
            if flag is None:
                raise ValueError(f"unknown regex flag {letter!r} (use i, m, s, x)")
            self.flags |= flag
        self.templated = "{{" in self.pattern or "{%" in self.pattern
        if not self.templated:
            try:
                self._compiled = re.compile(self.pattern, self.flags)
            except re.error as exc:
                raise ValueError(f"invalid regex {self.pattern!r}: {exc}") from None

    def template_sources(self) -> list[str]:
        return [self.pattern] if self.templated else []

    def manifest_entry(self) -> dict[str, Any]:
        return {"pattern": self.pattern, "flags": self.flags}

    def grade(self, output: str, case: Case) -> Score:
        if self.templated:
            pattern = render(self.pattern, case.context(), case.where(self.name))
            try:
                compiled = re.compile(pattern, self.flags)
            except re.error as exc:
                return Score(grader=self.name, error=f"invalid regex {pattern!r}: {exc}")
        else:
            compiled = self._compiled
        match = compiled.search(output)
        if match:
            return _pass(self.name, True, f"matched {_short(match.group(0))!r}")
        return _pass(self.name, False, f"no match for /{_short(compiled.pattern)}/")


class JsonGrader(Grader):
    kind = "json"

    def __init__(self, name: str, params: Any, base_dir: Path) -> None:
        super().__init__(name, params, base_dir)
        self.schema: dict[str, Any] | None = None
        if params in (True, None, {}):
            return
        if not isinstance(params, dict) or set(params) - {"schema"}:
            raise ValueError("json takes true, or {schema: {...} | file://schema.json}")
        schema = params.get("schema")
        if isinstance(schema, str) and schema.startswith("file://"):
            path = base_dir / schema[len("file://") :]
            try:
                schema = json.loads(read_user_text(path, INCLUDE))
            except ValueError as exc:
                raise ValueError(f"schema {schema}: {exc}") from None
        if not isinstance(schema, dict):
            raise ValueError("json.schema: a JSON schema object or file://path")
        import jsonschema  # here: most suites have no schema, and a detached run starts faster

        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise ValueError(f"invalid JSON schema: {exc.message}") from None
        self.schema = schema

    def manifest_entry(self) -> dict[str, Any]:
        blob = json.dumps(self.schema, sort_keys=True) if self.schema else ""
        return {"schema_sha256": hashlib.sha256(blob.encode()).hexdigest(), "schema": self.schema}

    def grade(self, output: str, case: Case) -> Score:
        fenced = _FENCE.search(output)
        text = fenced.group(1) if fenced else output.strip()
        try:
            value = json.loads(text)
        except ValueError as exc:
            return _pass(self.name, False, f"not valid JSON: {exc}")
        if self.schema is None:
            return _pass(self.name, True, "valid JSON")
        import jsonschema

        error = jsonschema.exceptions.best_match(
            jsonschema.Draft202012Validator(self.schema).iter_errors(value)
        )
        if error is None:
            return _pass(self.name, True, "valid JSON, matches the schema")
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        return _pass(self.name, False, f"schema: at {where}: {error.message}")

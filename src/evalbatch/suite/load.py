"""The suite file: YAML validated into a Suite, every error naming file:line.

Loading resolves `file://` includes relative to the suite file, applies `--set key=value`
overrides, builds every grader once (so a bad grader fails here), and checks model names against
the models table. Nothing is written anywhere until a suite loads cleanly.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ..catalog.models import load_catalog
from ..errors import SuiteError
from ..userfiles import INCLUDE, SUITE_FILE, FileLimit, read_user_text
from .schema import (
    CASE_FORMATS,
    GENERATE_KEYS,
    TOP_KEYS,
    GraderSpec,
    Suite,
)

KeyPath = tuple[str | int, ...]
Lines = dict[KeyPath, int]

# -- YAML with line numbers -------------------------------------------------------------------


def _line_map(node: yaml.Node | None, path: KeyPath = (), out: Lines | None = None) -> Lines:
    """(key path) -> 1-based line, for every mapping key and sequence item."""
    out = {} if out is None else out
    if node is None:
        return out
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            out[path + (key,)] = key_node.start_mark.line + 1
            _line_map(value_node, path + (key,), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out[path + (i,)] = item.start_mark.line + 1
            _line_map(item, path + (i,), out)
    return out


class _Located:
    def __init__(
        self, display: str, lines: Lines, overrides: dict[KeyPath, str] | None = None
    ) -> None:
        self.display, self.lines = display, lines
        self.overrides: dict[KeyPath, str] = overrides or {}  # key path -> "--set key=value"

    def at(self, path: KeyPath) -> str:
        """Where a key path came from: the file's line, or the --set flag that overrode it."""
        while path:
            if path in self.overrides:
                return f"{self.display} ({self.overrides[path]})"
            if path in self.lines:
                return f"{self.display}:{self.lines[path]}"
            path = path[:-1]
        return self.display

    def error(self, path: KeyPath, message: str) -> SuiteError:
        return SuiteError(message, where=self.at(path))


def display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def read_text(path: Path, display: str, limit: FileLimit) -> str:
    """A UTF-8 file's text, with every failure as a one-line SuiteError."""
    try:
        return read_user_text(path, limit)
    except ValueError as exc:
        raise SuiteError(str(exc), where=display) from None


def parse_yaml(text: str, display: str) -> tuple[yaml.Node | None, Any]:
    """(the node tree, for line numbers; the data), with every failure a SuiteError."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader), yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{display}:{mark.line + 1}" if mark else display
        raise SuiteError(
            f"invalid YAML: {getattr(exc, 'problem', None) or exc}", where=where
        ) from None
    except RecursionError:
        raise SuiteError("invalid YAML: nested too deeply", where=display) from None


def _did_you_mean(key: str, choices: tuple[str, ...] | list[str]) -> str:
    match = difflib.get_close_matches(str(key), list(choices), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _check_keys(
    raw: dict[str, Any], allowed: tuple[str, ...], path: KeyPath, loc: _Located, what: str
) -> None:
    for key in raw:
        if key not in allowed:
            raise loc.error(
                path + (key,), f"unknown key {key!r} in {what}" + _did_you_mean(key, allowed)
            )


# -- overrides and includes -------------------------------------------------------------------


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for item in overrides:
        if "=" not in item:
            raise SuiteError(f"--set {item}: expected key=value")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        if parts[0] not in TOP_KEYS:
            raise SuiteError(
                f"--set {key}: unknown key {parts[0]!r}" + _did_you_mean(parts[0], TOP_KEYS)
            )
        target: Any = raw
        for part in parts[:-1]:
            if isinstance(target, list):
                target = _list_item(target, part, key)
                continue
            if not isinstance(target.get(part), dict | list):
                target[part] = {}
            target = target[part]
        if isinstance(target, list):
            raise SuiteError(f"--set {key}: name an entry of the list, then its key")
        target[parts[-1]] = override_value(value)
    return raw


def _list_item(items: list[Any], part: str, key: str) -> Any:
    """A list entry by index (`grade.0`) or, in `grade`, by grader type or name
    (`grade.rubric.model`)."""
    if part.isdigit() and int(part) < len(items):
        return items[int(part)]
    for item in items:
        if isinstance(item, dict) and (part in item or item.get("name") == part):
            return item[part] if part in item and isinstance(item[part], dict) else item
    raise SuiteError(f"--set {key}: no entry {part!r} in the list")


def override_value(value: str) -> Any:
    """A --set value is read as YAML (numbers, booleans, lists); anything that is not valid
    YAML, such as `{{ input }}`, is the string itself."""
    if not value:
        return ""
    try:
        return yaml.safe_load(value)
    except (yaml.YAMLError, RecursionError):
        return value


def _include(value: Any, base_dir: Path, where: str) -> tuple[Any, str]:
    """Resolve ``file://path`` to the file's text; returns (value, source label)."""
    if not isinstance(value, str) or not value.startswith("file://"):
        return value, "inline"
    rel = value[len("file://") :]
    path = (base_dir / rel) if not Path(rel).is_absolute() else Path(rel)
    try:
        text = read_text(path, rel, INCLUDE)
    except SuiteError as exc:
        raise SuiteError(f"include {value}: {exc.detail}", where=where) from None
    return text, value


# -- loading ----------------------------------------------------------------------------------


def load_suite(path: str | Path, overrides: list[str] | None = None) -> Suite:
    path = Path(path)
    display = display_path(path)
    text = read_text(path, display, SUITE_FILE)
    node, raw = parse_yaml(text, display)
    try:
        lines = _line_map(node)
    except RecursionError:
        raise SuiteError("invalid YAML: nested too deeply", where=display) from None
    loc = _Located(
        display,
        lines,
        {
            tuple(item.split("=", 1)[0].strip().split(".")): f"--set {item}"
            for item in overrides or []
        },
    )
    if raw is None:
        raise SuiteError("the suite file is empty", where=display)
    if not isinstance(raw, dict):
        raise SuiteError(
            "the top level must be a mapping of keys (name, cases, generate...)", where=display
        )
    raw = apply_overrides(raw, overrides or [])
    _check_keys(raw, TOP_KEYS, (), loc, "the suite")
    if raw.get("sweep") is not None:
        raw["sweep"] = _sweep(raw["sweep"], loc)
    for required in ("name", "cases", "generate"):
        if required not in raw:
            raise SuiteError(f"missing required key {required!r}", where=display)
    base_dir = path.resolve().parent
    data = dict(raw)
    data["path"], data["base_dir"], data["display"] = path.resolve(), base_dir, display
    data["generate"] = _generate(raw["generate"], base_dir, loc)
    data["cases"] = _cases(raw["cases"], base_dir, loc)
    if "routing" in raw and raw["routing"] is not None:
        data["routing"] = _routing(raw["routing"], loc)
    data["grade"] = _grade(raw.get("grade") or [], loc)
    data["cache"] = _cache(raw.get("cache", "auto"), loc)
    if isinstance(raw.get("gate"), dict):
        _check_keys(
            raw["gate"],
            ("min_pass_rate", "no_regression", "alpha", "min_effect"),
            ("gate",),
            loc,
            "gate",
        )
    try:
        suite = Suite.model_validate(data)
    except ValidationError as exc:
        raise _validation_error(exc, loc) from None
    _check_models(suite, loc)
    _build_graders(suite, loc)
    return suite


def replace_grade(suite: Suite, raw: Any, where: str, node: yaml.Node | None = None) -> Suite:
    """``suite`` with its ``grade:`` list replaced by ``raw`` (the YAML form), validated as a
    suite file's would be; errors name ``where`` (a flag, or a file: with its YAML ``node``,
    the line)."""
    loc = _Located(where, _line_map(node) if node is not None else {})
    specs = _grade(raw or [], loc)
    try:
        new = suite.model_copy(update={"grade": [GraderSpec(**spec) for spec in specs]})
    except ValidationError as exc:
        raise _validation_error(exc, loc) from None
    _check_models(new, loc)
    _build_graders(new, loc)
    return new


def _validation_error(exc: ValidationError, loc: _Located) -> SuiteError:
    err = exc.errors()[0]
    path = tuple(p for p in err["loc"] if p not in ("table",))
    field = ".".join(str(p) for p in path) or "suite"
    got = err.get("input")
    shown = "" if isinstance(got, dict | list) or got is None else f" (got {got!r})"
    ctx = err.get("ctx") or {}
    msg = err["msg"]
    if err["type"] in ("greater_than_equal", "less_than_equal") and "max_tokens" in field:
        msg = "must be between 1 and 128000"
    elif ctx.get("pattern"):
        msg = "may only contain letters, digits, '_', '.' and '-'"
    return loc.error(path, f"{field}: {msg}{shown}")


def _generate(raw: Any, base_dir: Path, loc: _Located) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise loc.error(("generate",), "generate: must be a mapping with prompt and model")
    _check_keys(raw, GENERATE_KEYS, ("generate",), loc, "generate")
    for required in ("prompt", "model"):
        if required not in raw:
            raise loc.error(("generate",), f"generate: missing required key {required!r}")
    out = dict(raw)
    system, system_source = _include(raw.get("system"), base_dir, loc.at(("generate", "system")))
    out["system"] = system
    out["system_source"] = system_source if system is not None else "none"
    out["prompt"], out["prompt_source"] = _include(
        raw["prompt"], base_dir, loc.at(("generate", "prompt"))
    )
    return out


def _cases(raw: Any, base_dir: Path, loc: _Located) -> dict[str, Any]:
    if isinstance(raw, list):
        if not raw:
            raise loc.error(("cases",), "cases: the inline list is empty")
        return {
            "format": "inline",
            "inline": raw,
            "display": loc.display,
            "line": loc.lines.get(("cases",)),
        }
    if not isinstance(raw, str) or not raw:
        raise loc.error(("cases",), "cases: a file path (JSONL, CSV, YAML) or an inline list")
    rel = raw.removeprefix("file://")
    path = base_dir / rel
    fmt = CASE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise loc.error(("cases",), f"cases: {rel}: unknown format (use .jsonl, .csv or .yaml)")
    if not path.exists():
        raise loc.error(("cases",), f"cases: file not found: {rel}")
    return {"format": fmt, "path": path, "display": display_path(path)}


def _routing(raw: Any, loc: _Located) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise loc.error(("routing",), "routing: a mapping of difficulty labels to models")
    if "default" not in raw:
        raise loc.error(("routing",), "routing: missing required key 'default'")
    rules = raw.get("rules") or []
    if not isinstance(rules, list):
        raise loc.error(("routing", "rules"), "routing.rules: a list of {when, model}")
    from .rules import compile_rule

    for i, rule in enumerate(rules):
        if not isinstance(rule, dict) or set(rule) != {"when", "model"}:
            raise loc.error(("routing", "rules", i), "routing.rules: each rule is {when, model}")
        try:
            compile_rule(str(rule["when"]))
        except ValueError as exc:
            raise loc.error(("routing", "rules", i), str(exc)) from None
    table = {str(k): v for k, v in raw.items() if k not in ("default", "rules")}
    for label, model in table.items():
        if not isinstance(model, str):
            raise loc.error(("routing", label), f"routing.{label}: a model name")
    return {"table": table, "default": raw["default"], "rules": rules}


def _grade(raw: Any, loc: _Located) -> list[dict[str, Any]]:
    from ..graders import KNOWN_GRADERS

    if not isinstance(raw, list):
        raise loc.error(("grade",), 'grade: a list of graders, e.g. - contains: "{{ target }}"')
    specs: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(raw):
        path = ("grade", i)
        if not isinstance(entry, dict):
            raise loc.error(path, "grade: each entry is a mapping like - contains: ...")
        kinds = [k for k in entry if k != "name"]
        if len(kinds) != 1:
            raise loc.error(
                path,
                "grade: each entry names exactly one grader type "
                f"(one of {', '.join(KNOWN_GRADERS)})",
            )
        kind = kinds[0]
        if kind not in KNOWN_GRADERS:
            raise loc.error(
                path + (kind,), f"unknown grader type {kind!r}" + _did_you_mean(kind, KNOWN_GRADERS)
            )
        seen[kind] = seen.get(kind, 0) + 1
        name = entry.get("name") or (kind if seen[kind] == 1 else f"{kind}_{seen[kind]}")
        specs.append(
            {
                "type": kind,
                "name": str(name),
                "index": i,
                "params": entry[kind],
                "line": loc.lines.get(path),
            }
        )
    names = [s["name"] for s in specs]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise loc.error(("grade", i), f"grade: duplicate grader name {name!r}")
    return specs


def _sweep(raw: Any, loc: _Located) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise loc.error(("sweep",), "sweep: a mapping {models, matrix, reference, margin}")
    _check_keys(raw, ("models", "matrix", "reference", "margin"), ("sweep",), loc, "sweep")
    models = raw.get("models") or []
    if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
        raise loc.error(("sweep", "models"), "sweep.models: a list of model names")
    matrix = raw.get("matrix") or {}
    if not isinstance(matrix, dict) or not all(isinstance(v, list) and v for v in matrix.values()):
        raise loc.error(("sweep", "matrix"), "sweep.matrix: a mapping of suite keys to lists")
    return {**raw, "models": models, "matrix": {str(k): v for k, v in matrix.items()}}


def _cache(raw: Any, loc: _Located) -> dict[str, Any]:
    if raw is True or raw == "auto":
        return {"mode": "auto"}
    if raw is False or raw == "off":  # YAML reads a bare `off` as false
        return {"mode": "off", "warm": False}
    if isinstance(raw, dict):
        _check_keys(raw, ("mode", "warm", "ttl"), ("cache",), loc, "cache")
        out = dict(raw)
        if out.get("mode") is False:
            out["mode"] = "off"
        return out
    raise loc.error(("cache",), f"cache: auto, off, or a mapping {{mode, warm, ttl}} (got {raw!r})")


def _check_models(suite: Suite, loc: _Located) -> None:
    catalog = load_catalog()
    known = ", ".join(sorted(catalog.aliases))

    def check(name: str, path: KeyPath, allow_route: bool) -> None:
        if allow_route and name == "route":
            return
        if not catalog.is_known(name):
            raise loc.error(path, f"unknown model {name!r} (known aliases: {known})")

    check(suite.generate.model, ("generate", "model"), True)
    if suite.generate.model == "route" and suite.routing is None:
        raise loc.error(("generate", "model"), "model: route needs a routing: table")
    if suite.routing:
        for label, model in suite.routing.table.items():
            check(model, ("routing", label), False)
        check(suite.routing.default, ("routing", "default"), False)
        for i, rule in enumerate(suite.routing.rules):
            check(rule.model, ("routing", "rules", i), False)
    for spec in suite.grade:
        grader_model = spec.params.get("model") if isinstance(spec.params, dict) else None
        if isinstance(grader_model, str):
            model = grader_model
            check(model, ("grade", spec.index, spec.type, "model"), True)
            if model == "route" and suite.routing is None:
                raise loc.error(("grade", spec.index), "model: route needs a routing: table")


def _build_graders(suite: Suite, loc: _Located) -> None:
    from ..graders import build_grader

    for spec in suite.grade:
        try:
            build_grader(spec, suite.base_dir)
        except ValueError as exc:
            raise loc.error(("grade", spec.index), f"{spec.name}: {exc}") from None

"""The quality responder's profile: a YAML file naming a JSONL case file and, per model, how often
it answers right (per difficulty) and judges right; loaded once, every mistake a one-line error."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

from ..catalog import load_catalog
from ..errors import ConfigError
from .openai_models import find_openai_model

PROFILE_KEYS = ("cases", "models", "prompt_template", "truth", "verdict_scores")
MODEL_KEYS = ("answer", "verdict")
CASE_KEYS = ("id", "input", "target", "difficulty", "vars", "tags", "metadata")
TRUTH_RULES = ("contains", "exact")
SCORE_KEYS = ("correct", "wrong")
DEFAULT = "default"  # the difficulty key that covers every other difficulty
_INPUT_SLOT = re.compile(r"\{\{-?\s*input\s*-?\}\}")


@dataclass(frozen=True)
class QualityCase:
    id: str
    input: str  # stripped: the text searched for in prompts
    target: str
    difficulty: str | None


@dataclass(frozen=True)
class ModelQuality:
    answer: dict[str | None, float]  # case difficulty (None: no difficulty) -> P(right answer)
    verdict: float  # P(a rubric verdict matches the truth)


@dataclass(frozen=True)
class QualityProfile:
    path: Path
    cases: tuple[QualityCase, ...]
    models: dict[str, ModelQuality]  # exact model id -> its quality
    template: tuple[str, str] | None  # the literal text before and after {{ input }}
    truth: str  # "contains" or "exact"
    correct_score: int
    wrong_score: int


def _allowed(where: str, data: dict[str, Any], allowed: tuple[str, ...]) -> None:
    for key in data:
        if key not in allowed:
            raise ValueError(f"{where}unknown key {key!r} (allowed: {', '.join(allowed)})")


def _probability(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"{where}: {value!r} is not a probability between 0 and 1")
    return float(value)


def load_profile(path: Path) -> QualityProfile:
    """Read and check a profile; ValueError naming the file and the key on any mistake."""
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except OSError as exc:
        raise ValueError(f"quality profile {path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a mapping with cases and models is required")
    _allowed(f"{path}: ", data, PROFILE_KEYS)
    for key in ("cases", "models"):
        if key not in data:
            raise ValueError(f"{path}: {key}: required")
    if not isinstance(data["cases"], str):
        raise ValueError(f"{path}: cases: a path to a JSONL file, relative to the profile")
    cases = load_cases(path.parent / data["cases"], f"{path}: cases")
    difficulties = {case.difficulty for case in cases}
    truth = data.get("truth", "contains")
    if truth not in TRUTH_RULES:
        raise ValueError(f"{path}: truth: {truth!r} (use {' or '.join(TRUTH_RULES)})")
    correct, wrong = _scores(path, data.get("verdict_scores", {}))
    return QualityProfile(
        path=path,
        cases=cases,
        models=_models(path, data["models"], difficulties),
        template=_template(path, data.get("prompt_template")),
        truth=truth,
        correct_score=correct,
        wrong_score=wrong,
    )


def load_cases(path: Path, where: str) -> tuple[QualityCase, ...]:
    """The JSONL case file: id, input and target required (strings; a target may be a number),
    difficulty optional; ids and stripped inputs unique."""
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise ValueError(f"{where}: cannot read {path}: {exc.strerror}") from None
    cases: list[QualityCase] = []
    ids: set[str] = set()
    inputs: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        case = _case(line, f"{path}:{number}")
        if case.id in ids:
            raise ValueError(f"{path}:{number}: duplicate case id {case.id!r}")
        if case.input in inputs:
            raise ValueError(
                f"{path}:{number}: case {case.id!r} has the same input as case "
                f"{inputs[case.input]!r}; inputs must differ (a prompt is matched by its input)"
            )
        ids.add(case.id)
        inputs[case.input] = case.id
        cases.append(case)
    if not cases:
        raise ValueError(f"{where}: {path} has no cases")
    return tuple(cases)


def _case(line: str, where: str) -> QualityCase:
    try:
        raw = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise ValueError(f"{where}: not a JSON object") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: not a JSON object")
    _allowed(f"{where}: ", raw, CASE_KEYS)
    case_id, given, target = raw.get("id"), raw.get("input"), raw.get("target")
    if not isinstance(case_id, str | int) or isinstance(case_id, bool) or str(case_id) == "":
        raise ValueError(f"{where}: id: a non-empty string or number is required")
    if not isinstance(given, str) or not given.strip():
        raise ValueError(f"{where}: input: a non-empty string is required")
    if isinstance(target, bool) or not isinstance(target, str | int | float):
        raise ValueError(f"{where}: target: a string or number is required")
    if not str(target).strip():
        raise ValueError(f"{where}: target: must not be blank")
    difficulty = raw.get("difficulty")
    if difficulty is not None and not isinstance(difficulty, str):
        raise ValueError(f"{where}: difficulty: a string")
    return QualityCase(str(case_id), given.strip(), str(target), difficulty)


def _models(path: Path, raw: Any, difficulties: set[str | None]) -> dict[str, ModelQuality]:
    if not isinstance(raw, dict) or not raw:
        raise ValueError(f"{path}: models: a mapping of model (alias or id) -> answer, verdict")
    catalog = load_catalog()
    models: dict[str, ModelQuality] = {}
    for name, spec in raw.items():
        where = f"{path}: models.{name}"
        openai_model = find_openai_model(catalog, str(name))
        try:
            # responders see an OpenAI model as openai:NAME, however the profile spells it
            model_id = openai_model.address if openai_model else catalog.resolve(str(name))
        except ConfigError as exc:
            raise ValueError(f"{where}: {exc}") from None
        if model_id in models:
            raise ValueError(f"{where}: {model_id} is listed twice (an alias and its id?)")
        if not isinstance(spec, dict):
            raise ValueError(f"{where}: a mapping with answer and/or verdict")
        _allowed(f"{where}: ", spec, MODEL_KEYS)
        models[model_id] = ModelQuality(
            answer=_answer(f"{where}.answer", spec.get("answer", 1.0), difficulties),
            verdict=_probability(f"{where}.verdict", spec.get("verdict", 1.0)),
        )
    return models


def _answer(where: str, raw: Any, difficulties: set[str | None]) -> dict[str | None, float]:
    """One probability for every difficulty, or a mapping difficulty -> probability."""
    if not isinstance(raw, dict):
        rate = _probability(where, raw)
        return {difficulty: rate for difficulty in difficulties}
    known = sorted(str(d) for d in difficulties if d is not None)
    rates = {str(key): _probability(f"{where}.{key}", value) for key, value in raw.items()}
    for key in rates:
        if key != DEFAULT and key not in difficulties:
            raise ValueError(
                f"{where}.{key}: no case has difficulty {key!r} "
                f"(difficulties: {', '.join(known) or 'none'}; or {DEFAULT})"
            )
    out: dict[str | None, float] = {}
    for difficulty in difficulties:
        chosen = rates.get(difficulty or DEFAULT, rates.get(DEFAULT))
        if chosen is None:
            shown = repr(difficulty) if difficulty else "(none)"
            raise ValueError(
                f"{where}: no probability for difficulty {shown}; add it or a {DEFAULT!r}"
            )
        out[difficulty] = chosen
    return out


def _template(path: Path, raw: Any) -> tuple[str, str] | None:
    if raw is None:
        return None
    where = f"{path}: prompt_template"
    if not isinstance(raw, str) or len(_INPUT_SLOT.findall(raw)) != 1:
        raise ValueError(f"{where}: text with exactly one {{{{ input }}}}")
    before, after = _INPUT_SLOT.split(raw)
    if any(mark in before + after for mark in ("{{", "{%", "{#")):
        raise ValueError(f"{where}: only {{{{ input }}}} may be templated; the rest is literal")
    return before, after


def _scores(path: Path, raw: Any) -> tuple[int, int]:
    where = f"{path}: verdict_scores"
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: a mapping like {{correct: 5, wrong: 1}}")
    _allowed(f"{where}: ", raw, SCORE_KEYS)
    scores = {"correct": 5, "wrong": 1, **raw}
    for key, value in scores.items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where}.{key}: an integer (got {value!r})")
    return scores["correct"], scores["wrong"]

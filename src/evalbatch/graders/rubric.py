"""Model-graded graders: `rubric` (a 1..N score against a rubric) and `pairwise` (A/B against a
baseline run's output). The rubric is the shared, cached prefix; nothing case-specific is in it.
A verdict that cannot be parsed is a recorded grader error, never a silent zero."""

from __future__ import annotations

import hashlib
import json
import operator
import re
from pathlib import Path
from typing import Any

from ..records import Case, Score
from ..userfiles import INCLUDE, read_user_text
from .base import ModelGrader
from .reference import parse_reference

_OPS = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}
_PASS = re.compile(r"^\s*(>=|<=|==|!=|>|<)\s*(-?\d+(?:\.\d+)?)\s*$")
_DECODER = json.JSONDecoder()
_SCORE_KEYS = ("score", "grade", "rating")
_SCORE_LINE = re.compile(r"(?:score|grade|rating)[\"']?\s*[:=]\s*\**\s*(-?\d+(?:\.\d+)?)", re.I)
_FRACTION = re.compile(r"\b(\d+(?:\.\d+)?)\s*/\s*(\d+)\b")

INSTRUCTIONS = """You are a strict, fair grader of model outputs. You will get a task input, \
possibly a reference answer, and the output to grade. Grade the output against the rubric below.

Think briefly, then end your reply with one JSON object on its own line:
{{"score": <integer from {low} to {high}>, "reasoning": "<one or two sentences>"}}

Rubric:
"""


def _text_param(value: Any, base_dir: Path, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what}: text or file://path")
    if value.startswith("file://"):
        path = base_dir / value[len("file://") :]
        try:
            return read_user_text(path, INCLUDE)
        except ValueError as exc:
            raise ValueError(f"{what}: {value}: {exc}") from None
    return value


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, indent=1)


def _last_json(text: str, keys: tuple[str, ...]) -> dict[str, Any] | None:
    """The last JSON object in ``text`` that has one of ``keys`` (nested braces allowed)."""
    found = None
    start = text.find("{")
    while start != -1:
        try:
            value, end = _DECODER.raw_decode(text, start)
        except ValueError:
            start = text.find("{", start + 1)
            continue
        if isinstance(value, dict) and any(k in value for k in keys):
            found = value
        start = text.find("{", end)
    return found


class RubricGrader(ModelGrader):
    kind = "rubric"

    def __init__(self, name: str, params: Any, base_dir: Path) -> None:
        super().__init__(name, params, base_dir)
        allowed = {"model", "rubric", "pass", "scale", "max_tokens", "reference"}
        if not isinstance(params, dict) or "rubric" not in params:
            raise ValueError("rubric needs {model, rubric, pass}")
        unknown = sorted(set(params) - allowed)
        if unknown:
            raise ValueError(
                f"unknown option {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})"
            )
        self.model = str(params.get("model", "opus"))
        self.rubric = _text_param(params["rubric"], base_dir, "rubric")
        scale = params.get("scale", [1, 5])
        if not (
            isinstance(scale, list)
            and len(scale) == 2
            and all(isinstance(x, int) for x in scale)
            and scale[0] < scale[1]
        ):
            raise ValueError("scale: [low, high] integers, e.g. [1, 5]")
        self.low, self.high = scale
        match = _PASS.match(str(params.get("pass", f">= {self.high - 1}")))
        if not match:
            raise ValueError(f"pass: a comparison like '>= 4' (got {params.get('pass')!r})")
        self.pass_expr = f"{match.group(1)} {match.group(2)}"
        self._op, self._bound = _OPS[match.group(1)], float(match.group(2))
        self.max_tokens = int(params.get("max_tokens", 512))
        self.instructions = INSTRUCTIONS.format(low=self.low, high=self.high) + self.rubric
        self.reference = parse_reference(params["reference"]) if "reference" in params else None

    def manifest_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "model": self.model,
            "rubric": self.rubric,
            "pass": self.pass_expr,
            "scale": [self.low, self.high],
            "max_tokens": self.max_tokens,
            "instructions_sha256": hashlib.sha256(self.instructions.encode()).hexdigest(),
        }
        if self.reference is not None:  # only when set: older manifests keep their hash
            entry["reference"] = self.reference.manifest()
        return entry

    def _system(self, cache_ttl: str | None) -> list[dict[str, Any]]:
        block: dict[str, Any] = {"type": "text", "text": self.instructions}
        if cache_ttl:
            block["cache_control"] = {"type": "ephemeral", "ttl": cache_ttl}
        return [block]

    def build_request(
        self, output: str, case: Case, model_id: str, cache_ttl: str | None, **_: Any
    ) -> dict[str, Any]:
        parts = [f"<input>\n{_show(case.input if case.input is not None else case.vars)}\n</input>"]
        if case.target is not None:
            parts.append(f"<reference>\n{_show(case.target)}\n</reference>")
        parts.append(f"<output>\n{output}\n</output>")
        return {
            "model": model_id,
            "max_tokens": self.max_tokens,
            "system": self._system(cache_ttl),
            "messages": [{"role": "user", "content": "\n\n".join(parts)}],
        }

    def parse_verdict(self, text: str, case: Case) -> Score:
        score, reasoning = self._find_score(text, self.high)
        if score is None:
            snippet = " ".join(text.split())[:80]
            return Score(grader=self.name, error=f"unparseable verdict: {snippet!r}")
        if not self.low <= score <= self.high:
            return Score(
                grader=self.name,
                error=f"score {score:g} is outside the scale {self.low}..{self.high}",
            )
        return Score(self.name, bool(self._op(score, self._bound)), score, (reasoning or "")[:500])

    @staticmethod
    def _find_score(text: str, high: float) -> tuple[float | None, str]:
        obj = _last_json(text, _SCORE_KEYS)
        if obj is not None:
            for key in _SCORE_KEYS:
                if key in obj:
                    if isinstance(obj[key], bool):
                        break
                    try:
                        return float(obj[key]), str(obj.get("reasoning", obj.get("reason", "")))
                    except (TypeError, ValueError):
                        break
        line = _SCORE_LINE.findall(text)
        if line:
            return float(line[-1]), ""
        # "4/5" counts only on the rubric's own scale, so "3/10 of attempts" is not a score
        frac = [f for f in _FRACTION.findall(text) if float(f[1]) == high]
        if frac:
            return float(frac[-1][0]), ""
        return None, ""


PAIRWISE_INSTRUCTIONS = """You compare two outputs, A and B, for the same task input. Decide \
which better satisfies the criteria below, or whether they are equally good.

End your reply with one JSON object on its own line:
{"winner": "A" | "B" | "tie", "reasoning": "<one or two sentences>"}

Criteria:
"""


class PairwiseGrader(ModelGrader):
    kind = "pairwise"

    def __init__(self, name: str, params: Any, base_dir: Path) -> None:
        super().__init__(name, params, base_dir)
        if not isinstance(params, dict) or "baseline_run" not in params:
            raise ValueError("pairwise needs {model, baseline_run, rubric?}")
        unknown = sorted(set(params) - {"model", "rubric", "baseline_run", "swap", "max_tokens"})
        if unknown:
            raise ValueError(f"unknown option {unknown[0]!r}")
        self.model = str(params.get("model", "opus"))
        self.criteria = _text_param(
            params.get("rubric", "Helpfulness, correctness and faithfulness to the input."),
            base_dir,
            "rubric",
        )
        self.baseline_run = str(params["baseline_run"])
        self.swap = bool(params.get("swap", False))
        self.max_tokens = int(params.get("max_tokens", 512))
        self.instructions = PAIRWISE_INSTRUCTIONS + self.criteria

    def manifest_entry(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "criteria": self.criteria,
            "baseline_run": self.baseline_run,
            "swap": self.swap,
            "max_tokens": self.max_tokens,
        }

    def build_request(
        self,
        output: str,
        case: Case,
        model_id: str,
        cache_ttl: str | None,
        baseline_output: str | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        first, second = (
            (output, baseline_output or "") if self.swap else (baseline_output or "", output)
        )
        block: dict[str, Any] = {"type": "text", "text": self.instructions}
        if cache_ttl:
            block["cache_control"] = {"type": "ephemeral", "ttl": cache_ttl}
        content = (
            f"<input>\n{_show(case.input if case.input is not None else case.vars)}\n"
            f"</input>\n\n<A>\n{first}\n</A>\n\n<B>\n{second}\n</B>"
        )
        return {
            "model": model_id,
            "max_tokens": self.max_tokens,
            "system": [block],
            "messages": [{"role": "user", "content": content}],
        }

    def parse_verdict(self, text: str, case: Case) -> Score:
        obj = _last_json(text, ("winner",)) or {}
        winner = str(obj.get("winner", "")).strip().upper()
        if winner not in ("A", "B", "TIE"):
            return Score(
                grader=self.name, error=f"unparseable verdict: {' '.join(text.split())[:80]!r}"
            )
        candidate = "A" if self.swap else "B"
        passed = winner in (candidate, "TIE")
        value = 0.5 if winner == "TIE" else (1.0 if winner == candidate else 0.0)
        return Score(self.name, passed, value, str(obj.get("reasoning", ""))[:500])

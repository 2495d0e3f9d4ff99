"""Graders as users meet them: what passes, what fails, and what the explanation says."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from evalbatch.graders import KNOWN_GRADERS, build_grader
from evalbatch.graders.code import CodeGrader
from evalbatch.graders.deterministic import ContainsGrader, ExactGrader, JsonGrader, RegexGrader
from evalbatch.graders.python_grader import PythonGrader
from evalbatch.graders.rubric import PairwiseGrader, RubricGrader
from evalbatch.records import Case, Score

from .lab import Lab, lab_in, write_suite

HERE = Path(__file__).parent
CASE = Case(id="c1", input="What is the capital of France?", target="Paris", vars={"n": 3})


def _grade(cls: type, params: Any, output: str, case: Case = CASE) -> Score:
    return cls(cls.kind, params, HERE).grade(output, case)


# --- build_grader ------------------------------------------------------------------------------


def test_build_grader_knows_every_kind_and_rejects_unknown_ones() -> None:
    assert set(KNOWN_GRADERS) == {
        "exact",
        "contains",
        "regex",
        "json",
        "python",
        "code",
        "rubric",
        "pairwise",
    }
    grader = build_grader(SimpleNamespace(type="exact", name="exact", params="x"), HERE)
    assert isinstance(grader, ExactGrader)
    with pytest.raises(ValueError, match="unknown grader type 'nope'"):
        build_grader(SimpleNamespace(type="nope", name="nope", params="x"), HERE)


# --- exact -------------------------------------------------------------------------------------


def test_exact_renders_the_template_and_strips_whitespace_by_default() -> None:
    score = _grade(ExactGrader, "{{ target }}", "  Paris\n")
    assert (score.passed, score.value, score.error) == (True, 1.0, None)
    assert score.explanation == "equals 'Paris'"


def test_exact_fails_with_the_expected_value_in_the_explanation() -> None:
    score = _grade(ExactGrader, "{{ target }}", "Paris, France")
    assert (score.passed, score.value) == (False, 0.0)
    assert score.explanation == "expected exactly 'Paris'"


def test_exact_is_case_sensitive_unless_ignore_case() -> None:
    assert _grade(ExactGrader, "Paris", "paris").passed is False
    assert _grade(ExactGrader, {"value": "Paris", "ignore_case": True}, "PARIS").passed is True


def test_exact_strip_false_keeps_whitespace_significant() -> None:
    assert _grade(ExactGrader, {"value": "Paris", "strip": False}, " Paris").passed is False
    assert _grade(ExactGrader, {"value": "Paris", "strip": False}, "Paris").passed is True


def test_exact_rejects_unknown_options_and_a_missing_value() -> None:
    with pytest.raises(ValueError, match="unknown option 'trim'"):
        ExactGrader("exact", {"value": "x", "trim": True}, HERE)
    with pytest.raises(ValueError, match="exact needs a value"):
        ExactGrader("exact", {"ignore_case": True}, HERE)


# --- contains ----------------------------------------------------------------------------------


def test_contains_a_single_templated_value() -> None:
    score = _grade(ContainsGrader, "{{ target }}", "It is Paris, of course.")
    assert (score.passed, score.value) == (True, 1.0)
    assert score.explanation == "contains 'Paris'"
    miss = _grade(ContainsGrader, "{{ target }}", "It is Lyon.")
    assert (miss.passed, miss.value) == (False, 0.0)
    assert miss.explanation == "expected 'Paris' in output"


def test_contains_is_case_sensitive_unless_ignore_case() -> None:
    assert _grade(ContainsGrader, "Paris", "it is paris").passed is False
    assert _grade(ContainsGrader, {"value": "Paris", "ignore_case": True}, "it is PARIS").passed


def test_contains_all_names_the_missing_values() -> None:
    params = {"all": ["Paris", "France", "Seine"]}
    assert _grade(ContainsGrader, params, "Paris, France, on the Seine").passed is True
    score = _grade(ContainsGrader, params, "Paris, France")
    assert score.passed is False
    assert score.explanation == "expected 'Seine' in output"


def test_contains_any_passes_on_one_match() -> None:
    params = {"any": ["Paris", "Lutetia"]}
    assert _grade(ContainsGrader, params, "Lutetia, in Latin").passed is True
    score = _grade(ContainsGrader, params, "Lyon")
    assert score.passed is False
    assert "'Paris'" in score.explanation and "'Lutetia'" in score.explanation


def test_contains_rejects_an_empty_list() -> None:
    with pytest.raises(ValueError, match="non-empty list"):
        ContainsGrader("contains", {"any": []}, HERE)


# --- regex -------------------------------------------------------------------------------------


def test_regex_searches_anywhere_unanchored() -> None:
    score = _grade(RegexGrader, r"\d+", "the answer is 42.")
    assert (score.passed, score.explanation) == (True, "matched '42'")


def test_regex_anchors_apply_to_the_whole_output_without_the_m_flag() -> None:
    output = "Reasoning...\nAnswer: 42"
    score = _grade(RegexGrader, r"^Answer: \d+$", output)
    assert score.passed is False
    assert score.explanation == r"no match for /^Answer: \d+$/"
    assert _grade(RegexGrader, {"pattern": r"^Answer: \d+$", "flags": "m"}, output).passed


def test_regex_flags_ignore_case_and_dotall() -> None:
    assert _grade(RegexGrader, "paris", "PARIS").passed is False
    assert _grade(RegexGrader, {"pattern": "paris", "flags": "i"}, "PARIS").passed is True
    assert _grade(RegexGrader, "a.b", "a\nb").passed is False
    assert _grade(RegexGrader, {"pattern": "a.b", "flags": "s"}, "a\nb").passed is True


def test_regex_pattern_may_be_a_template_over_the_case() -> None:
    assert _grade(RegexGrader, r"\b{{ target }}\b", "It is Paris.").passed is True
    assert _grade(RegexGrader, r"^{{ n }}$", " 3 ").passed is False


def test_regex_rejects_bad_patterns_and_unknown_flags() -> None:
    with pytest.raises(ValueError, match="invalid regex"):
        RegexGrader("regex", "(unclosed", HERE)
    with pytest.raises(ValueError, match="unknown regex flag 'q'"):
        RegexGrader("regex", {"pattern": "x", "flags": "iq"}, HERE)


def test_regex_a_template_that_renders_to_a_bad_pattern_is_a_grader_error() -> None:
    case = Case(id="c", vars={"p": "(oops"})
    score = _grade(RegexGrader, "{{ p }}", "anything", case)
    assert score.passed is None and score.value is None
    assert score.error is not None and "invalid regex" in score.error


# --- json --------------------------------------------------------------------------------------

SCHEMA = {
    "type": "object",
    "required": ["name", "items"],
    "properties": {
        "name": {"type": "string"},
        "items": {"type": "array", "items": {"type": "object", "required": ["qty"]}},
    },
}


def test_json_invalid_fails_with_the_parse_error() -> None:
    score = _grade(JsonGrader, True, '{"name": "x",}')
    assert (score.passed, score.value, score.error) == (False, 0.0, None)
    assert score.explanation.startswith("not valid JSON:")
    assert "line 1" in score.explanation


def test_json_valid_passes_plain_or_in_a_fence() -> None:
    assert _grade(JsonGrader, True, '  {"a": [1, 2]}\n').explanation == "valid JSON"
    fenced = 'Here you go:\n```json\n{"a": 1}\n```\nDone.'
    assert _grade(JsonGrader, True, fenced).passed is True


def test_json_schema_valid_passes() -> None:
    output = '{"name": "order", "items": [{"qty": 1}, {"qty": 2}]}'
    score = _grade(JsonGrader, {"schema": SCHEMA}, output)
    assert (score.passed, score.explanation) == (True, "valid JSON, matches the schema")


def test_json_schema_violation_names_the_path() -> None:
    output = '{"name": "order", "items": [{"qty": 1}, {"price": 2}]}'
    score = _grade(JsonGrader, {"schema": SCHEMA}, output)
    assert score.passed is False and score.value == 0.0
    assert score.explanation.startswith("schema: at items/1: ")
    assert "'qty' is a required property" in score.explanation


def test_json_schema_violation_at_the_root() -> None:
    score = _grade(JsonGrader, {"schema": SCHEMA}, '{"name": "x"}')
    assert score.passed is False
    assert score.explanation == "schema: at (root): 'items' is a required property"
    wrong_type = _grade(JsonGrader, {"schema": SCHEMA}, '{"name": 7, "items": []}')
    assert wrong_type.explanation == "schema: at name: 7 is not of type 'string'"


def test_json_schema_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "schema.json").write_text('{"type": "array", "maxItems": 1}')
    grader = JsonGrader("json", {"schema": "file://schema.json"}, tmp_path)
    assert grader.grade("[1]", CASE).passed is True
    assert grader.grade("[1, 2]", CASE).explanation.startswith("schema: at (root):")


def test_json_rejects_an_invalid_schema() -> None:
    with pytest.raises(ValueError, match="invalid JSON schema"):
        JsonGrader("json", {"schema": {"type": "no-such-type"}}, HERE)


# --- python ------------------------------------------------------------------------------------

GRADER_SOURCE = """
def mentions_target(output, case, bonus=0.0):
    ok = case["target"] in output
    return {"score": (1.0 if ok else 0.2) + bonus, "pass": ok,
            "explanation": f"looked for {case['target']} in {case['input'][:12]}"}

def length_ratio(output, case):
    return len(output) / 10

def as_bool(output, case):
    return output == "yes"

def explodes(output, case):
    raise RuntimeError("grader bug: " + output)

def wrong_type(output, case):
    return ["not", "a", "score"]
"""


@pytest.fixture
def grader_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = f"evalbatch_test_grader_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(GRADER_SOURCE)
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield name
    sys.modules.pop(name, None)


def test_python_grader_from_module_function(tmp_path: Path, grader_module: str) -> None:
    grader = PythonGrader("python", f"{grader_module}:mentions_target", tmp_path)
    score = grader.grade("It is Paris.", CASE)
    assert score == Score("python", True, 1.0, "looked for Paris in What is the ")
    assert grader.grade("Lyon", CASE) == Score(
        "python", False, 0.2, "looked for Paris in What is the "
    )
    assert str(tmp_path) not in sys.path  # the suite folder is only on sys.path while importing


def test_python_grader_from_a_file_path_with_args(tmp_path: Path) -> None:
    (tmp_path / "graders").mkdir()
    (tmp_path / "graders" / "check.py").write_text(GRADER_SOURCE)
    grader = PythonGrader(
        "python",
        {"function": "graders/check.py:mentions_target", "args": {"bonus": 0.5}},
        tmp_path,
    )
    assert grader.path == (tmp_path / "graders" / "check.py").resolve()
    score = grader.grade("Paris", CASE)
    assert (score.passed, score.value, score.error) == (True, 1.5, None)
    assert score.explanation.startswith("looked for Paris")


def test_python_grader_numbers_use_the_threshold_and_bools_map_to_0_1(tmp_path: Path) -> None:
    (tmp_path / "g.py").write_text(GRADER_SOURCE)
    ratio = PythonGrader("python", {"function": "g.py:length_ratio", "threshold": 0.8}, tmp_path)
    assert ratio.grade("x" * 9, CASE) == Score("python", True, 0.9, "")
    assert ratio.grade("x" * 7, CASE) == Score("python", False, 0.7, "")
    boolean = PythonGrader("python", "g.py:as_bool", tmp_path)
    assert boolean.grade("yes", CASE) == Score("python", True, 1.0, "")
    assert boolean.grade("no", CASE) == Score("python", False, 0.0, "")


def test_python_grader_that_raises_is_a_recorded_error_not_a_zero(tmp_path: Path) -> None:
    (tmp_path / "g.py").write_text(GRADER_SOURCE)
    score = PythonGrader("python", "g.py:explodes", tmp_path).grade("boom", CASE)
    assert score.passed is None and score.value is None
    assert score.error == "RuntimeError: grader bug: boom"


def test_python_grader_returning_the_wrong_type_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "g.py").write_text(GRADER_SOURCE)
    score = PythonGrader("python", "g.py:wrong_type", tmp_path).grade("x", CASE)
    assert score.passed is None and score.value is None
    assert score.error is not None and "grader returned list" in score.error


def test_python_grader_load_errors_are_one_line_value_errors(tmp_path: Path) -> None:
    (tmp_path / "g.py").write_text(GRADER_SOURCE)
    (tmp_path / "broken.py").write_text("import no_such_module_xyz\n")
    with pytest.raises(ValueError, match="file not found: missing.py"):
        PythonGrader("python", "missing.py:f", tmp_path)
    with pytest.raises(ValueError, match="has no function 'nope'"):
        PythonGrader("python", "g.py:nope", tmp_path)
    with pytest.raises(ValueError, match="importing broken.py failed: ModuleNotFoundError"):
        PythonGrader("python", "broken.py:f", tmp_path)
    with pytest.raises(ValueError, match="cannot import module"):
        PythonGrader("python", "no_such_module_xyz:f", tmp_path)
    with pytest.raises(ValueError, match="use module:function"):
        PythonGrader("python", "just_a_name", tmp_path)


def test_python_grader_file_may_define_dataclasses(tmp_path: Path) -> None:
    # A grader file is an ordinary module: a dataclass with (postponed) annotations must work.
    (tmp_path / "dc.py").write_text(
        textwrap.dedent(
            """
            from __future__ import annotations
            from dataclasses import dataclass

            @dataclass
            class Verdict:
                score: float
                reason: str

            def grade(output, case):
                v = Verdict(1.0 if output else 0.0, "non-empty")
                return {"score": v.score, "explanation": v.reason}
            """
        )
    )
    grader = PythonGrader("python", "dc.py:grade", tmp_path)
    assert grader.grade("x", CASE) == Score("python", True, 1.0, "non-empty")


# --- code --------------------------------------------------------------------------------------

ADD_CASE = Case(
    id="add",
    input='def add(a, b):\n    """Add two numbers."""\n',
    vars={
        "test": "def check(candidate):\n    assert candidate(2, 3) == 5\n"
        "    assert candidate(-1, 1) == 0\n",
        "entry_point": "add",
    },
)
CODE_PARAMS = {"tests": "{{ test }}", "entry_point": "{{ entry_point }}", "timeout_s": 3}


def _code(output: str, **params: Any) -> Score:
    return CodeGrader("code", {**CODE_PARAMS, **params}, HERE).grade(output, ADD_CASE)


def test_code_correct_completion_passes() -> None:
    output = "Sure:\n```python\ndef add(a, b):\n    return a + b\n```\nHope that helps."
    assert _code(output) == Score("code", True, 1.0, "all tests passed")


def test_code_include_prompt_prepends_the_case_input() -> None:
    assert _code("    return a + b\n", include_prompt=True).passed is True


def test_code_wrong_completion_fails_with_the_assertion() -> None:
    score = _code("def add(a, b):\n    return a - b\n")
    assert (score.passed, score.value, score.error) == (False, 0.0, None)
    assert "AssertionError" in score.explanation
    assert "assert candidate(2, 3) == 5" in score.explanation


def test_code_syntax_error_fails() -> None:
    score = _code("def add(a, b) return a + b\n")
    assert score.passed is False and "SyntaxError" in score.explanation


def test_code_infinite_loop_is_killed_by_the_time_limit() -> None:
    started = time.monotonic()
    score = _code("def add(a, b):\n    while True:\n        pass\n", timeout_s=1)
    elapsed = time.monotonic() - started
    assert (score.passed, score.value, score.error) == (False, 0.0, None)
    assert score.explanation == "timed out after 1s"
    assert elapsed < 5


def test_code_time_limit_also_ends_processes_the_completion_started() -> None:
    tag = f"evalbatch-sleeper-{uuid.uuid4().hex}"  # how the host finds the sleeper
    output = textwrap.dedent(
        f"""
        import subprocess, sys
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", {tag!r}])
        def add(a, b):
            while True:
                pass
        """
    )
    score = _code(output, timeout_s=1)
    assert score.explanation == "timed out after 1s"
    deadline = time.monotonic() + 2
    alive = _running(tag)
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = _running(tag)
    for pid in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # don't leak the sleeper this test started
    assert not alive, "a process started by the completion outlived the time limit"


def _running(tag: str) -> list[int]:
    """Processes carrying ``tag`` in their command line, alive and not zombies (a killed
    orphan waits for init to reap it)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if tag.encode() in cmdline and state != "Z":
            found.append(int(proc.name))
    return found


def test_code_memory_bomb_is_stopped_by_the_memory_limit() -> None:
    output = "def add(a, b):\n    hog = []\n    while True:\n        hog.append(bytearray(10**7))\n"
    started = time.monotonic()
    score = _code(output, memory_mb=256, timeout_s=10)
    assert time.monotonic() - started < 8  # stopped by the memory limit, not the clock
    assert (score.passed, score.value, score.error) == (False, 0.0, None)
    assert score.explanation.startswith("memory limit (256 MB):")
    assert "MemoryError" in score.explanation


def test_code_child_does_not_see_api_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-must-not-leak")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp-must-not-leak")
    monkeypatch.setenv("EVALBATCH_TEST_HARMLESS", "visible")
    probe = textwrap.dedent(
        """
        import os
        leaked = sorted(k for k, v in os.environ.items() if "must-not-leak" in v)
        assert not leaked, f"leaked: {leaked}"
        assert "ANTHROPIC_API_KEY" not in os.environ
        assert "EVALBATCH_TEST_HARMLESS" not in os.environ  # an allowlist, not a denylist
        def add(a, b):
            return a + b
        """
    )
    assert _code(probe) == Score("code", True, 1.0, "all tests passed")


def test_code_child_sees_the_key_is_absent_even_when_it_asks_for_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-must-not-leak")
    probe = 'import os\nprint(os.environ["ANTHROPIC_API_KEY"])\ndef add(a, b):\n    return a + b\n'
    score = _code(probe)
    assert score.passed is False
    assert "KeyError: 'ANTHROPIC_API_KEY'" in score.explanation
    assert "sk-ant-must-not-leak" not in score.explanation


def test_code_rejects_bad_params() -> None:
    with pytest.raises(ValueError, match="code needs"):
        CodeGrader("code", {"entry_point": "f"}, HERE)
    with pytest.raises(ValueError, match="unknown option 'timeout'"):
        CodeGrader("code", {"tests": "x", "timeout": 3}, HERE)
    with pytest.raises(ValueError, match="only language: python"):
        CodeGrader("code", {"tests": "x", "language": "ruby"}, HERE)


# --- rubric ------------------------------------------------------------------------------------


@pytest.fixture
def rubric() -> RubricGrader:
    return RubricGrader("rubric", {"rubric": "Is it correct?", "pass": ">= 4"}, HERE)


def test_rubric_plain_json_verdict(rubric: RubricGrader) -> None:
    score = rubric.parse_verdict('{"score": 4, "reasoning": "mostly right"}', CASE)
    assert score == Score("rubric", True, 4.0, "mostly right")


def test_rubric_verdict_in_a_json_fence(rubric: RubricGrader) -> None:
    text = 'Let me check.\n```json\n{"score": 2, "reasoning": "wrong city"}\n```'
    assert rubric.parse_verdict(text, CASE) == Score("rubric", False, 2.0, "wrong city")


def test_rubric_verdict_with_surrounding_prose(rubric: RubricGrader) -> None:
    text = (
        'The answer names Paris, which matches the reference. A draft said {"score": 1}.\n'
        'Final:\n{"score": 5, "reasoning": "exact"}\nThat is my verdict.'
    )
    assert rubric.parse_verdict(text, CASE) == Score("rubric", True, 5.0, "exact")


def test_rubric_pass_threshold_and_scale_are_configurable() -> None:
    grader = RubricGrader("rubric", {"rubric": "r", "scale": [0, 10], "pass": "> 7"}, HERE)
    assert grader.parse_verdict('{"score": 7}', CASE).passed is False
    assert grader.parse_verdict('{"score": 8}', CASE).passed is True
    assert grader.parse_verdict('{"score": 0}', CASE).value == 0.0


@pytest.mark.parametrize("score", [0, 6, -1, 4.5e9])
def test_rubric_score_out_of_range_is_an_error(rubric: RubricGrader, score: float) -> None:
    result = rubric.parse_verdict(f'{{"score": {score}, "reasoning": "x"}}', CASE)
    assert result.passed is None and result.value is None
    assert result.error is not None and "outside the scale 1..5" in result.error


@pytest.mark.parametrize(
    "text",
    ["I cannot grade this output.", "", '{"score": "excellent"}', "```json\n{oops}\n```"],
)
def test_rubric_garbage_is_a_recorded_error_never_a_zero(rubric: RubricGrader, text: str) -> None:
    result = rubric.parse_verdict(text, CASE)
    assert result.passed is None and result.value is None
    assert result.error is not None and result.error.startswith("unparseable verdict")


@pytest.mark.parametrize(
    "text",
    [
        '{"score": 4, "reasoning": "returns a dict like {x: 1} as asked"}',
        '{"score": 4, "reasoning": "good", "criteria": {"correct": true, "clear": true}}',
    ],
    ids=["braces-in-reasoning", "nested-object"],
)
def test_rubric_valid_json_verdicts_with_braces_inside_parse(
    rubric: RubricGrader, text: str
) -> None:
    result = rubric.parse_verdict(text, CASE)
    assert result.error is None, result.error
    assert (result.passed, result.value) == (True, 4.0)


class Seen:
    """A sandbox responder that keeps every grading request it was sent, as sent."""

    def __init__(self) -> None:
        self.grading: list[dict[str, Any]] = []

    def __call__(self, params: dict[str, Any]) -> str:
        content = params["messages"][-1]["content"]
        if "<output>" in content:
            self.grading.append(params)
            return '{"score": 5, "reasoning": "right"}'
        if "<A>" in content:
            self.grading.append(params)
            return '{"winner": "B", "reasoning": "better"}'
        return "Paris v2" if "v2" in content else "Paris"


LONG_RUBRIC = "Is it correct? Check the capital against the reference. " * 60  # > 512 tokens
RUBRIC_CASES = [
    {"id": f"c{i}", "input": f"Capital of France? ({i})", "target": "Paris"} for i in range(2)
]


@pytest.fixture
def seen() -> Seen:
    return Seen()


@pytest.fixture
def lab(tmp_path: Path, seen: Seen) -> Iterator[Lab]:
    yield from lab_in(tmp_path, seen)


@pytest.mark.parametrize(("mode", "ttl"), [("batch", "1h"), ("sync", "5m")])
def test_rubric_request_as_the_pipeline_sends_it_caches_the_rubric_prefix(
    lab: Lab, seen: Seen, mode: str, ttl: str
) -> None:
    rubric = {"rubric": {"model": "opus", "rubric": LONG_RUBRIC, "pass": ">= 4"}}
    suite = write_suite(lab.root / mode, RUBRIC_CASES, grade=[rubric], mode=mode, cache="auto")
    lab.run(suite)
    first, second = seen.grading
    assert first["model"] == "claude-opus-5-5" and first["max_tokens"] == 512
    (system,) = first["system"]
    assert LONG_RUBRIC.strip() in system["text"] and "from 1 to 5" in system["text"]
    assert system["cache_control"] == {"type": "ephemeral", "ttl": ttl}  # batch 1h, sync 5m
    assert second["system"] == first["system"]  # one shared prefix, cached once
    user = first["messages"][0]["content"]
    assert "<reference>\nParis\n</reference>" in user and "<output>\nParis\n</output>" in user


def test_a_short_rubric_is_sent_without_a_breakpoint(lab: Lab, seen: Seen) -> None:
    rubric = {"rubric": {"model": "opus", "rubric": "Is it correct?", "pass": ">= 4"}}
    lab.run(write_suite(lab.root / "s", RUBRIC_CASES, grade=[rubric], cache="auto"))
    (system,) = seen.grading[0]["system"]
    assert "Is it correct?" in system["text"] and "cache_control" not in system


def test_rubric_rejects_bad_params() -> None:
    with pytest.raises(ValueError, match="rubric needs"):
        RubricGrader("rubric", {"model": "opus"}, HERE)
    with pytest.raises(ValueError, match="scale"):
        RubricGrader("rubric", {"rubric": "r", "scale": [5, 1]}, HERE)
    with pytest.raises(ValueError, match="pass: a comparison"):
        RubricGrader("rubric", {"rubric": "r", "pass": "at least 4"}, HERE)


# --- pairwise ----------------------------------------------------------------------------------


def _pairwise(swap: bool = False) -> PairwiseGrader:
    return PairwiseGrader("pairwise", {"baseline_run": "latest", "swap": swap}, HERE)


@pytest.mark.parametrize(
    ("swap", "first", "second"), [(False, "Paris", "Paris v2"), (True, "Paris v2", "Paris")]
)
def test_pairwise_gets_the_baseline_runs_output_as_a_and_the_candidate_as_b(
    lab: Lab, seen: Seen, swap: bool, first: str, second: str
) -> None:
    base = lab.run(write_suite(lab.root / "v1", RUBRIC_CASES, grade=[{"contains": "Paris"}]))
    pairwise = {"pairwise": {"model": "haiku", "baseline_run": base, "swap": swap}}
    generate = {"prompt": "v2 {{ input }}", "max_tokens": 64, "model": "haiku"}
    new = lab.run(write_suite(lab.root / "v2", RUBRIC_CASES, grade=[pairwise], generate=generate))
    assert len(seen.grading) == 2
    for params in seen.grading:
        content = params["messages"][0]["content"]
        assert f"<A>\n{first}\n</A>" in content and f"<B>\n{second}\n</B>" in content
    (line,) = lab.store.reports.grader_lines(new).values()
    # "B" wins every time: the candidate when it is B, the baseline when swapped
    assert (line.passed, line.failed) == ((2, 0) if not swap else (0, 2))


@pytest.mark.parametrize(
    ("swap", "winner", "passed", "value"),
    [
        (False, "B", True, 1.0),
        (False, "A", False, 0.0),
        (False, "tie", True, 0.5),
        (True, "A", True, 1.0),
        (True, "B", False, 0.0),
    ],
)
def test_pairwise_verdicts(swap: bool, winner: str, passed: bool, value: float) -> None:
    text = f'Comparing...\n```json\n{{"winner": "{winner}", "reasoning": "why"}}\n```'
    assert _pairwise(swap).parse_verdict(text, CASE) == Score("pairwise", passed, value, "why")


@pytest.mark.parametrize("text", ["Both are fine.", '{"winner": "C"}', ""])
def test_pairwise_garbage_is_an_error(text: str) -> None:
    result = _pairwise().parse_verdict(text, CASE)
    assert result.passed is None and result.value is None
    assert result.error is not None and result.error.startswith("unparseable verdict")

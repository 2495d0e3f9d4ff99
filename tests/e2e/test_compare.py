"""`compare` and the regression gate end to end: a prompt change that breaks 25 of 60 cases.

One store per module: a baseline run, the same suite with a changed prompt (the sandbox's
script answers 25 formerly right cases wrong when it sees the added sentence), a repeat of the
changed run, and a run whose case set differs. Every command is the real CLI as a process.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from evalbatch.sandbox import SandboxConfig, SandboxServer

from .conftest import CliResult, env_for, run_cli
from .suites import write_suite

BASE_PROMPT = "Q: {{ input }}"
NEW_PROMPT = "Q: {{ input }}\nAnswer tersely."
CASES = [
    {"id": f"c{i:02d}", "input": f"Question {i:02d}", "target": f"ans{i:02d}"} for i in range(60)
]
REGRESSED = [f"c{i:02d}" for i in range(25)]  # right before, wrong after the prompt change
ALWAYS_WRONG = [f"c{i:02d}" for i in range(55, 60)]

SCRIPT = r"""
rules:
  - match: 'Question (0\d|1\d|2[0-4])\b.*Answer tersely'
    response: 'I am not sure.'
  - match: 'Question (5[5-9])\b'
    response: 'no idea'
  - match: 'Question (\d+)\b'
    response: 'The answer is ans\1.'
default: ''
"""


@dataclass
class Store:
    env: dict[str, str]
    suite: Path
    base: str
    new: str
    repeat: str
    other_cases: str
    moved: str  # the changed suite again, unchanged, run from another working directory
    new_result: CliResult  # the changed suite's run, gate no_regression: true, after the base
    repeat_result: CliResult  # the changed suite again, --baseline BASE


def _write(folder: Path, prompt: str, cases: list[dict] | None = None) -> Path:
    return write_suite(
        folder,
        name="regress",
        cases=cases or CASES,
        generate={"prompt": prompt},
        gate={"no_regression": True},
    )


def _run(
    env: dict[str, str], suite: Path, *extra: str, cwd: Path | None = None
) -> tuple[str, CliResult]:
    result = run_cli(["run", str(suite), "--json", *extra], env, cwd=cwd)
    assert result.code in (0, 1), result.stderr
    return json.loads(result.stdout)["run"]["id"], result


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    root = tmp_path_factory.mktemp("compare")
    script = root / "script.yaml"
    script.write_text(SCRIPT)
    server = SandboxServer(SandboxConfig(responder=f"script:{script}", batch_latency=0.0))
    server.start()
    try:
        env = env_for(server.base_url, root / "home")
        suite = _write(root / "s", BASE_PROMPT)
        base, first = _run(env, suite)
        assert first.code == 0, first.stdout
        _write(root / "s", NEW_PROMPT)  # edit the suite file in place, as a user would
        new, new_result = _run(env, suite)
        repeat, repeat_result = _run(env, suite, "--baseline", base)
        moved, _ = _run(env, Path("s/suite.yaml"), cwd=root)  # same files, another cwd
        # Then the user drops the last five cases and appends one.
        other = [c for c in CASES if c["id"] not in ALWAYS_WRONG] + [
            {"id": "c60", "input": "Question 60", "target": "ans60"}
        ]
        other_cases, _ = _run(env, _write(root / "s", BASE_PROMPT, other))
        yield Store(env, suite, base, new, repeat, other_cases, moved, new_result, repeat_result)
    finally:
        server.stop()


def _compare(store: Store, *args: str) -> CliResult:
    return run_cli(["compare", *args], store.env)


def test_prompt_change_regresses_with_exit_1_and_names_the_cases(store):
    result = _compare(store, store.base, store.new)
    assert result.code == 1, result.stdout + result.stderr
    first_line = result.stdout.splitlines()[0]
    assert first_line.startswith("regressed:")
    assert store.new in first_line and store.base in first_line and "60 common cases" in first_line
    assert "generate.prompt" in result.stdout and "prompt text changed" in result.stdout
    for case_id in REGRESSED[:10]:
        assert f"regressed: {case_id} " in result.stdout
    for case_id in ["c30", *ALWAYS_WRONG]:  # unchanged verdicts are not listed
        assert f"regressed: {case_id} " not in result.stdout
    assert "I am not sure." in result.stdout  # the new output of a regressed case
    row = next(line for line in result.stdout.splitlines() if line.startswith("│ contains"))
    cells = [c.strip() for c in row.strip("│").split("│")]
    assert cells[0] == "contains" and cells[1] == "60"
    assert cells[2:5] == ["91.7%", "50.0%", "-41.7pp"]
    assert cells[6:8] == ["0", "25"] and cells[-1] == "regressed"


def test_prompt_diff_is_a_well_formed_unified_diff(store):
    result = _compare(store, store.base, store.new)
    lines = [line.rstrip() for line in result.stdout.splitlines()]
    assert "--- base/prompt" in lines and "+++ new/prompt" in lines
    # The unchanged first line is context, the added line is its own "+" line: no line is glued
    # to the next one even though the old one-line prompt had no trailing newline.
    at = lines.index("--- base/prompt")
    assert lines[at + 2 : at + 5] == ["@@ -1 +1,2 @@", " Q: {{ input }}", "+Answer tersely."]


def test_json_markdown_and_junit_agree(store):
    data = json.loads(_compare(store, store.base, store.new, "--format", "json").stdout)
    assert data["verdict"] == "regressed" and data["comparable"] is True
    assert (data["base"]["id"], data["new"]["id"]) == (store.base, store.new)
    assert [c["key"] for c in data["changes"]] == ["generate.prompt"]
    (grader,) = data["graders"]
    assert (grader["grader"], grader["n"], grader["regressed"], grader["fixed"]) == (
        "contains",
        60,
        25,
        0,
    )
    assert grader["p_adjusted"] < 0.05 and grader["verdict"] == "regressed"
    regressed = sorted(c["case_id"] for c in data["cases"] if c["change"] == "regressed")
    assert regressed == REGRESSED
    case = next(c for c in data["cases"] if c["case_id"] == "c07")
    assert case["base_output"] == "The answer is ans07." and case["new_output"] == "I am not sure."
    assert case["input"] == "Question 07" and case["target"] == "ans07"

    md = _compare(store, store.base, store.new, "--format", "markdown")
    assert md.code == 1
    assert "evalbatch compare: regressed" in md.stdout
    assert "25 regressed case(s)" in md.stdout
    assert "```diff" in md.stdout and "+Answer tersely." in md.stdout
    assert "| `c00` | `contains` |" in md.stdout  # case data sits in code spans

    junit = _compare(store, store.base, store.new, "--format", "junit")
    assert junit.code == 1
    root = ET.fromstring(junit.stdout.split("?>", 1)[1])
    suite = root.find("testsuite")
    assert suite is not None
    failed = {
        (tc.get("classname"), tc.get("name"))
        for tc in suite.iter("testcase")
        if tc.find("failure") is not None
    }
    assert ("evalbatch.compare", "contains") in failed
    assert {name for cls, name in failed if cls == "evalbatch.compare.contains"} == set(REGRESSED)
    assert int(suite.get("failures")) == len(failed) == 26
    assert int(suite.get("tests")) == len(list(suite.iter("testcase")))


def test_output_file(store, tmp_path):
    target = tmp_path / "cmp.json"
    result = _compare(store, store.base, store.new, "--format", "json", "-o", str(target))
    assert result.code == 1 and result.stdout == ""
    assert json.loads(target.read_text())["verdict"] == "regressed"


def test_identical_runs_show_no_significant_change(store):
    result = _compare(store, store.new, store.repeat)
    assert result.code == 0, result.stderr
    assert result.stdout.startswith("no significant change:")
    assert "Manifests are identical" in result.stdout
    assert "regressed: c" not in result.stdout
    data = json.loads(_compare(store, store.new, store.repeat, "--format", "json").stdout)
    assert data["verdict"] == "no significant change" and data["changes"] == []
    assert data["cases"] == [] and data["graders"][0]["regressed"] == 0


def test_significance_options(store):
    # A 41.7pp drop is not a regression when at least 50pp is required.
    assert _compare(store, store.base, store.new, "--min-effect", "0.5").code == 0
    # The reversed comparison is an improvement, not a failure.
    reverse = _compare(store, store.new, store.base)
    assert reverse.code == 0 and reverse.stdout.startswith("improved:")


def test_different_case_sets(store):
    loose = _compare(store, store.base, store.other_cases)
    assert loose.code == 0, loose.stderr
    assert "55 common cases" in loose.stdout
    assert "5 removed, 1 added, 0 changed" in loose.stdout
    assert "case set changed (60 -> 56 cases)" in loose.stdout

    strict = _compare(store, store.base, store.other_cases, "--strict")
    assert strict.code == 2  # bad input: the runs are not comparable
    assert "--strict" in strict.stderr and "6 added/removed" in strict.stderr
    assert strict.stdout == ""
    assert "Traceback" not in strict.stderr
    assert _compare(store, store.new, store.repeat, "--strict").code == 0


def test_same_suite_run_from_another_directory_is_fully_compared(store):
    """Nothing about the cases changed, only the working directory the CLI ran in: every case
    is common, and the prompt regression against the base is still found."""
    same = json.loads(_compare(store, store.new, store.moved, "--format", "json").stdout)
    assert same["new"]["manifest_hash"] == same["base"]["manifest_hash"]
    assert same["changed_cases"] == [] and same["common_cases"] == 60
    against_base = _compare(store, store.base, store.moved)
    assert against_base.code == 1, against_base.stdout
    assert against_base.stdout.startswith("regressed:") and "60 common cases" in against_base.stdout


def test_unknown_run_is_exit_2(store):
    result = _compare(store, store.base, "20000101T000000-000000")
    assert result.code == 2 and "Traceback" not in result.stderr


def test_gate_with_explicit_baseline_fails_the_run(store):
    assert store.repeat_result.code == 1, store.repeat_result.stdout
    gate = json.loads(store.repeat_result.stdout)["gate"]
    assert gate["failed"] is True
    assert gate["baseline"] == store.base and gate["comparison_verdict"] == "regressed"


def test_gate_no_regression_catches_the_prompt_change(store):
    """`gate: {no_regression: true}` (i.e. `--baseline latest`) exists to fail the run that
    changed the prompt and broke 25 cases; a baseline with the old prompt must be used."""
    gate = json.loads(store.new_result.stdout)["gate"]
    assert gate["baseline"] == store.base, gate
    assert gate["comparison_verdict"] == "regressed" and gate["failed"] is True
    assert store.new_result.code == 1


def test_runs_lists_both_manifests_and_marks_the_change(store):
    items = json.loads(run_cli(["runs", "--suite", "regress", "--json"], store.env).stdout)
    by_id = {i["id"]: i for i in items}
    assert {store.base, store.new, store.repeat} <= set(by_id)
    base, new, repeat = by_id[store.base], by_id[store.new], by_id[store.repeat]
    assert base["manifest_hash"] != new["manifest_hash"] == repeat["manifest_hash"]
    assert (base["pass_rate"], new["pass_rate"]) == (pytest.approx(55 / 60), 0.5)
    assert new["manifest_changed"] is True and repeat["manifest_changed"] is False
    assert base["manifest_changed"] is False  # the first run has nothing to change from

    text = run_cli(["runs", "--suite", "regress"], store.env)
    assert text.code == 0
    new_row = next(line for line in text.stdout.splitlines() if store.new in line)
    base_row = next(line for line in text.stdout.splitlines() if store.base in line)
    assert new["manifest_hash"][:12] + " *" in new_row
    assert base["manifest_hash"][:12] in base_row and "*" not in base_row
    assert "the manifest changed from the run before" in text.stdout
    assert run_cli(["runs", "--suite", "nope", "--json"], store.env).stdout.strip() == "[]"

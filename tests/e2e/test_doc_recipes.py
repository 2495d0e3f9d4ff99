"""Every shell recipe in the README and docs/, run as written under `bash -e` against a sandbox:
a recipe a newcomer copies must work, and a CI recipe must keep its summary when the gate fails.

Placeholders a reader fills in (RUN_ID, BASE_RUN, NEW_RUN) are replaced by runs made first.
Lines left out, each for its reason (LEFT_OUT): commands that start a server that runs until
stopped (`evalbatch sandbox`, `evalbatch view`) or a benchmark that runs for minutes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from evalbatch.sandbox import SandboxConfig, SandboxServer

from .conftest import ROOT, env_for

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
QUICKSTART = ROOT / "examples" / "quickstart"
LEFT_OUT = {
    r"^\$? ?evalbatch view\b": "starts a server that runs until stopped (tests/e2e/test_view_browser.py)",
    r"^\$? ?evalbatch sandbox\b": "starts a server that runs until stopped (tests/sandbox/)",
    r"benchmarks/": "a benchmark runs for minutes; its figures are in the README",
    r"^curl -s 'http://127\.0\.0\.1:8321": "needs a running viewer (tested in tests/view/)",
    r"^make setup": "the test runs inside the environment `make setup` makes",
}


def _blocks() -> list[tuple[str, int, str]]:
    found = []
    for doc in DOCS:
        text = doc.read_text("utf-8")
        for match in re.finditer(r"```(bash|cron)\n(.*?)```", text, re.S):
            line = text[: match.start()].count("\n") + 1
            found.append((doc.relative_to(ROOT).as_posix(), line, _script(match)))
    return found


def _script(match: re.Match[str]) -> str:
    if match.group(1) == "bash":
        return match.group(2)
    commands = []  # a cron line: its command, as cron would run it from /bin/sh
    for line in match.group(2).splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            commands.append(line.split(None, 5)[5])
    return "\n".join(commands) + "\n"


def _runnable(script: str) -> str:
    """The script with left-out commands (and their continuation lines) dropped, and the
    placeholders a reader fills in replaced by variables the test sets."""
    kept, dropping = [], False
    for line in script.splitlines():
        if dropping or any(re.search(pattern, line) for pattern in LEFT_OUT):
            dropping = line.rstrip().endswith("\\")
            continue
        kept.append(line)
    script = "\n".join(kept) + "\n"
    script = re.sub(r"\bRUN_ID\b", '"$RUN_ID"', script)
    script = re.sub(r"\bBASE_RUN\b", '"$BASE_RUN"', script)
    script = re.sub(r"\bNEW_RUN\b", '"$NEW_RUN"', script)
    return script.replace("/srv/evals", ".").replace(".venv/bin/evalbatch", "evalbatch")


def _has_commands(script: str) -> bool:
    return any(line.strip() and not line.lstrip().startswith("#") for line in script.splitlines())


BLOCKS = [(d, n, s) for d, n, s in _blocks() if _has_commands(_runnable(s))]


@pytest.fixture(scope="module")
def external(tmp_path_factory) -> SandboxServer:
    config = SandboxConfig(responder=f"script:{QUICKSTART / 'responses.yaml'}", batch_latency=0.2)
    with SandboxServer(config) as server:
        yield server


def _workspace(tmp: Path) -> Path:
    """A copy of the repository's examples, with suites/nightly.yaml as the docs name it."""
    repo = tmp / "repo"
    shutil.copytree(ROOT / "examples", repo / "examples")
    nightly = yaml.safe_load((QUICKSTART / "suite.yaml").read_text())
    nightly["name"] = "support-nightly"
    for key in ("system",):
        nightly["generate"][key] = nightly["generate"][key].replace(
            "file://", "file://../examples/quickstart/"
        )
    nightly["cases"] = "../examples/quickstart/cases.jsonl"
    nightly["grade"][1]["rubric"]["rubric"] = "file://../examples/quickstart/prompts/rubric.md"
    (repo / "suites").mkdir()
    (repo / "suites" / "nightly.yaml").write_text(yaml.safe_dump(nightly, sort_keys=False))
    return repo


def _bash(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-e", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def _env(external: SandboxServer, home: Path, summary: Path) -> dict[str, str]:
    env = env_for(external.base_url, home)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["GITHUB_STEP_SUMMARY"] = str(summary)
    return env


def _seed_runs(cwd: Path, env: dict[str, str]) -> dict[str, str]:
    """Two done runs of the quickstart, for the recipes' RUN_ID, BASE_RUN and NEW_RUN."""
    first = _bash("evalbatch run suite.yaml --sandbox --responder script:responses.yaml", cwd, env)
    second = _bash("evalbatch run suite.yaml --sandbox --responder script:responses.yaml", cwd, env)
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    ids = _bash("evalbatch runs --ids --limit 2", cwd, env).stdout.split()
    return {"RUN_ID": ids[0], "NEW_RUN": ids[0], "BASE_RUN": ids[1]}


def test_the_recipes_are_found_and_only_servers_and_benchmarks_are_left_out() -> None:
    docs = {doc for doc, _, _ in BLOCKS}
    assert {"README.md", "docs/nightly.md", "docs/compare.md", "docs/view.md"} <= docs
    assert any("collect --all" in script for _, _, script in BLOCKS)
    left_out = [
        line
        for _, _, script in _blocks()
        for line in script.splitlines()
        if any(re.search(pattern, line) for pattern in LEFT_OUT)
    ]
    assert left_out and all(
        re.search(r"evalbatch (view|sandbox)|benchmarks/|:8321|make setup", line)
        for line in left_out
    )


@pytest.fixture(scope="module")
def seeded(tmp_path_factory, external) -> tuple[Path, dict[str, str]]:
    """A store holding two done quickstart runs, made once; each test works on a copy."""
    root = tmp_path_factory.mktemp("seeded")
    repo = _workspace(root)
    env = _env(external, root / "home", root / "summary.md")
    return root / "home", _seed_runs(repo / "examples" / "quickstart", env)


@pytest.mark.parametrize(("doc", "line", "script"), BLOCKS, ids=[f"{d}:{n}" for d, n, _ in BLOCKS])
def test_a_recipe_runs_under_bash_e(doc, line, script, tmp_path, external, seeded) -> None:
    repo = _workspace(tmp_path)
    at_root = "cd examples/quickstart" in script or "suites/" in script
    cwd = repo if at_root else repo / "examples" / "quickstart"
    shutil.copytree(seeded[0], tmp_path / "home")
    env = {**_env(external, tmp_path / "home", tmp_path / "summary.md"), **seeded[1]}
    result = _bash(_runnable(script), cwd, env)
    assert result.returncode == 0, f"{doc}:{line} failed:\n{result.stdout}\n{result.stderr}"


def _workflow_steps() -> dict[str, str]:
    text = (ROOT / "docs" / "nightly.md").read_text()
    workflow = yaml.safe_load(re.search(r"```yaml\n(name: nightly-evals.*?)```", text, re.S)[1])
    return {s["name"]: s["run"] for s in workflow["jobs"]["evals"]["steps"] if "name" in s}


def test_the_github_workflow_keeps_its_summary_when_the_gate_fails(tmp_path, external) -> None:
    steps = _workflow_steps()
    repo = _workspace(tmp_path)
    summary = tmp_path / "summary.md"
    env = _env(external, tmp_path / "home", summary)
    env["EVALBATCH_HOME"] = str(repo / ".evalbatch")
    submit = _bash(steps["Submit (evening)"], repo, env)
    assert submit.returncode == 0, submit.stderr
    morning = steps["Collect, compare with the previous night, gate (morning)"]
    first = _bash(morning, repo, env)
    assert first.returncode == 0, first.stderr  # one night only: compared with itself
    # the next night the model answers worse
    bad = tmp_path / "bad.yaml"
    bad.write_text('default: "I am not sure about that; let me connect you with a colleague."\n')
    with SandboxServer(SandboxConfig(responder=f"script:{bad}", batch_latency=0.2)) as worse:
        env_bad = {**env, "ANTHROPIC_BASE_URL": worse.base_url}
        assert _bash(steps["Submit (evening)"], repo, env_bad).returncode == 0
        summary.write_text("")
        second = _bash(morning, repo, env_bad)
    assert second.returncode == 1, second.stderr  # the regression fails the job ...
    assert "evalbatch compare: regressed" in summary.read_text()  # ... after the summary
    assert (repo / "report.xml").exists()

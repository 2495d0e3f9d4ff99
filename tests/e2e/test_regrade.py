"""`regrade` end to end, the real CLI against a `quality:` sandbox: a run's stored generations
graded again (not resubmitted, not billed: the sandbox saw no generation request and the
ledger's generate lines are zero), `compare` on the pair shows only grader changes, reference-
sampled grading reports a prediction-powered estimate that the gate uses, and bad input is one
line, exit 2, nothing written."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from evalbatch.sandbox import SandboxConfig, SandboxServer
from evalbatch.store.db import open_store

from ..sandbox.quality_cases import make_cases, write_profile
from .conftest import CliResult, env_for, run_cli

MODELS = {
    "haiku": {"answer": 0.5, "verdict": 0.95},
    "sonnet": {"answer": 0.6, "verdict": 0.99},
    "opus": {"answer": 0.7, "verdict": 1.0},
}
RUBRIC = "5 if the output gives the reference code word, else 1."


@dataclass
class World:
    root: Path
    env: dict[str, str]
    server: SandboxServer
    suite: Path
    run: str


def _suite(folder: Path, **grade: object) -> Path:
    suite = {
        "name": "ledger",
        "cases": "cases.jsonl",
        "generate": {"prompt": "Q: {{ input }}", "max_tokens": 20, "model": "sonnet"},
        "grade": [
            {"contains": "{{ target }}"},
            {"rubric": {"model": "opus", "rubric": RUBRIC, "max_tokens": 60, **grade}},
        ],
        "cache": "off",
    }
    path = folder / "suite.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("regrade")
    profile = write_profile(root, MODELS, make_cases(240), prompt_template="Q: {{ input }}")
    server = SandboxServer(SandboxConfig(responder=f"quality:{profile}", batch_latency=0.0, seed=3))
    server.start()
    try:
        env = env_for(server.base_url, root / "home")
        suite = _suite(root)
        result = run_cli(["run", str(suite), "--json"], env)
        assert result.code == 0, result.stderr
        yield World(root, env, server, suite, json.loads(result.stdout)["run"]["id"])
    finally:
        server.stop()


def _generations(server: SandboxServer) -> int:
    stats = server.stats()
    return stats.get("quality_right_answers", 0) + stats.get("quality_wrong_answers", 0)


def _runs(world: World) -> int:
    store = open_store(f"sqlite:///{world.root / 'home' / 'evalbatch.db'}")
    try:
        return len(store.history.list_runs(None, 1000))
    finally:
        store.close()


def _regrade(world: World, *args: str) -> CliResult:
    return run_cli(["regrade", world.run, *args], world.env)


def test_regrade_bills_nothing_for_generation_and_compare_shows_only_graders(world: World):
    generations, batches = _generations(world.server), world.server.stats()["batches_created"]
    result = _regrade(world, "--set", "grade.rubric.model=haiku", "--json")
    assert result.code == 0, result.stderr
    summary = json.loads(result.stdout)
    new = summary["run"]["id"]
    assert summary["run"]["generations_from"] == world.run
    assert f"generations from {world.run} (not billed)" in result.stderr
    # Nothing was generated again: the sandbox answered no generation request, one batch.
    assert _generations(world.server) == generations
    assert world.server.stats()["batches_created"] == batches + 1
    ledger = {(c["step"], c["model"]): c for c in summary["costs"]}
    generate = [c for (step, _), c in ledger.items() if step == "generate"]
    assert generate and all(c["cost"] == 0 and c["input_tokens"] == 0 for c in generate)
    assert sum(c["requests"] for c in generate) == 240
    assert ledger[("grade", "claude-haiku-5-5")]["cost"] > 0
    assert summary["totals"]["cost"] == ledger[("grade", "claude-haiku-5-5")]["cost"]

    cmp = run_cli(["compare", world.run, new, "--format", "json"], world.env)
    assert cmp.code in (0, 1), cmp.stderr
    data = json.loads(cmp.stdout)
    assert [c["key"] for c in data["changes"]] == ["graders.rubric"]
    assert data["common_cases"] == 240 and data["comparable"] is True
    contains = next(g for g in data["graders"] if g["grader"] == "contains")
    assert (contains["fixed"], contains["regressed"]) == (0, 0)  # identical outputs
    text = run_cli(["compare", world.run, new], world.env).stdout
    assert f"{new} grades the generations of {world.run}: the outputs are identical" in text
    assert "generate." not in text


def test_regrade_takes_the_graders_of_a_file(world: World):
    graders = world.root / "graders.yaml"  # a file with only grade: (and gate:) is enough
    graders.write_text(
        yaml.safe_dump(
            {"grade": [{"rubric": {"model": "sonnet", "rubric": RUBRIC, "pass": ">= 5"}}]}
        )
    )
    result = _regrade(world, "--suite", str(graders), "--json")
    assert result.code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["run"]["mode"] == "batch" and summary["run"]["suite"] == "ledger.regrade"
    assert [g["name"] for g in summary["graders"]] == ["rubric"]
    assert {c["model"] for c in summary["costs"] if c["step"] == "grade"} == {"claude-sonnet-5-5"}
    report = run_cli(["report", summary["run"]["id"]], world.env).stdout
    assert f"generations from {world.run} (reused: not sent again, not billed)" in report


def test_reference_sampling_estimates_the_reference_and_gates_on_it(world: World):
    result = _regrade(
        world,
        "--set",
        "grade.rubric.model=haiku",
        "--set",
        "grade.rubric.reference={model: opus, sample: 0.25}",
        "--set",
        "gate.min_pass_rate=0.99",
        "--json",
    )
    assert result.code == 1, result.stderr  # the gate, on the estimate
    summary = json.loads(result.stdout)
    (line,) = summary["references"]
    assert line["grader"] == "rubric" and line["reference_model"] == "claude-opus-5-5"
    assert 35 <= line["labeled"] <= 85 and line["cases"] == 240
    assert line["ci_low"] <= line["estimate"] <= line["ci_high"]
    assert line["ci_high"] - line["ci_low"] < line["sample_only_high"] - line["sample_only_low"]
    assert line["reference_cost"] > 0 and line["all_reference_cost"] > line["reference_cost"]
    # The truth: opus grades without error, so its rate on all cases is the contains rate.
    contains = next(g for g in summary["graders"] if g["name"] == "contains")
    assert line["ci_low"] <= contains["pass_rate"] <= line["ci_high"]
    gate = summary["gate"]
    assert gate["estimated"] is True and gate["pass_rate"] == summary["reference_pass"]["estimate"]
    costs = {(c["step"], c["model"]): c["requests"] for c in summary["costs"]}
    assert costs[("grade", "claude-opus-5-5")] == line["labeled"]  # its own ledger line
    report = run_cli(["report", summary["run"]["id"]], world.env).stdout
    assert "prediction-powered estimate" in report and "(reference-estimated)" in report

    # compare uses the estimate: same outputs, same reference verdicts -> the reference's pass
    # rate cannot have moved, whatever the cheap graders disagree on.
    other = _regrade(
        world,
        "--set",
        "grade.rubric.model=sonnet",
        "--set",
        "grade.rubric.reference={model: opus, sample: 0.25}",
        "--json",
    )
    assert other.code == 0, other.stderr
    new = json.loads(other.stdout)["run"]["id"]
    cmp = run_cli(["compare", summary["run"]["id"], new, "--format", "json"], world.env)
    rubric = next(g for g in json.loads(cmp.stdout)["graders"] if g["grader"] == "rubric")
    assert rubric["reference"]["estimate"] == "ppi"
    assert rubric["reference"]["labeled_pairs"] == line["labeled"]
    assert (rubric["diff"], rubric["p_value"], rubric["verdict"]) == (
        0.0, 1.0, "no significant change"
    )  # fmt: skip


@pytest.mark.parametrize(
    "args,message",
    [
        (["--set", "generate.model=opus"], "--set generate.model=opus: a regrade changes only"),
        (["--set", "grade.nope.model=haiku"], "no grader named 'nope' (graders: contains, rubric)"),
        (["--set", "grade.rubric.reference={model: opus, sample: 2}"], "reference.sample"),
        (["--suite", "missing.yaml"], "missing.yaml"),
    ],
)
def test_bad_input_is_one_line_exit_2_nothing_written(world: World, args, message):
    before = _runs(world)
    result = _regrade(world, *args)
    assert result.code == 2, result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert _runs(world) == before

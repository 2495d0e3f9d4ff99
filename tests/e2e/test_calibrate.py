"""`calibrate --step grade` end to end on 2,000 cases, the real CLI against a `quality:` sandbox
whose ground truth is known: haiku's verdicts match the truth 97% of the time, sonnet's 99%, the
reference opus's always. The answers are right about half the time, so a 3% verdict error is a
kappa of about 0.94 and a 1% one about 0.98: at --min-kappa 0.9 haiku (the cheapest) is the
right choice, at 0.95 it must be refused and sonnet recommended.

The whole run is the sample (--sample 2000), graded by both candidates in one batch; the second
calibration with other thresholds reuses it and sends nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from evalbatch.sandbox import SandboxConfig, SandboxServer

from ..sandbox.quality_cases import CALIBRATION_MODELS as MODELS
from ..sandbox.quality_cases import CALIBRATION_SUITE as SUITE
from ..sandbox.quality_cases import make_cases, write_profile
from .conftest import CliResult, env_for, run_cli


@dataclass
class World:
    env: dict[str, str]
    server: SandboxServer
    run: str


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("calibrate")
    profile = write_profile(root, MODELS, make_cases(2000), prompt_template="Q: {{ input }}")
    (root / "suite.yaml").write_text(yaml.safe_dump(SUITE, sort_keys=False))
    server = SandboxServer(SandboxConfig(responder=f"quality:{profile}", batch_latency=0.0, seed=1))
    server.start()
    try:
        env = env_for(server.base_url, root / "home")
        result = run_cli(["run", str(root / "suite.yaml"), "--json"], env)
        assert result.code == 0, result.stderr
        yield World(env, server, json.loads(result.stdout)["run"]["id"])
    finally:
        server.stop()


def _calibrate(world: World, *args: str) -> CliResult:
    return run_cli(
        ["calibrate", world.run, "--step", "grade", "--candidates", "haiku,sonnet", *args],
        world.env,
    )


def _by_model(data: dict) -> dict[str, dict]:
    return {c["model"]: c for c in data["candidates"]}


def test_recommends_haiku_at_0_9_and_refuses_it_at_0_95(world: World):
    batches = world.server.stats()["batches_created"]
    first = _calibrate(world, "--sample", "2000", "--min-kappa", "0.9", "--json")
    assert first.code == 0, first.stderr
    data = json.loads(first.stdout)
    assert world.server.stats()["batches_created"] == batches + 1  # both candidates, one batch
    assert (data["run"], data["step"], data["sample"]) == (world.run, "grade", 2000)
    assert data["reference"]["model"] == "claude-opus-5-5"
    found = _by_model(data)
    haiku, sonnet = found["haiku"], found["sonnet"]
    assert {k: haiku[k] for k in ("n", "verdict")} == {"n": 2000, "verdict": "trustworthy"}
    assert sonnet["verdict"] == "trustworthy"
    assert 0.91 < haiku["kappa"] < 0.96 and 0.96 < sonnet["kappa"] <= 1.0
    assert haiku["kappa_ci"][0] >= 0.9 and haiku["kappa_ci"][1] < 0.97
    assert abs(haiku["bias"]) < 0.01 and -0.02 <= haiku["bias_ci"][0] <= haiku["bias_ci"][1] <= 0.02
    assert 0.95 < haiku["agreement"] < 0.985 and sonnet["agreement"] > 0.98
    assert sum(map(sum, haiku["confusion"])) == 2000
    assert 0 < haiku["cost_usd"] < sonnet["cost_usd"] < data["reference"]["cost_usd"]
    assert data["recommended"] == "haiku"
    assert haiku["saving_per_month_usd"] == pytest.approx(30 * haiku["saving_per_run_usd"])
    print(
        f"min-kappa 0.9: haiku kappa {haiku['kappa']:.3f} {haiku['kappa_ci']}, sonnet kappa "
        f"{sonnet['kappa']:.3f} {sonnet['kappa_ci']} -> {data['recommended']}"
    )

    second = _calibrate(world, "--sample", "2000", "--min-kappa", "0.95", "--json")
    assert second.code == 0, second.stderr
    assert "reusing the stored one" in second.stderr
    assert world.server.stats()["batches_created"] == batches + 1  # nothing sent again
    data = json.loads(second.stdout)
    found = _by_model(data)
    assert found["haiku"]["verdict"] in ("not trustworthy", "inconclusive")
    assert found["sonnet"]["verdict"] == "trustworthy"
    assert data["recommended"] == "sonnet"
    print(f"min-kappa 0.95: haiku {found['haiku']['verdict']} -> {data['recommended']}")


def test_the_text_report_prints_the_snippet_that_adopts_it(world: World):
    result = _calibrate(world, "--sample", "2000", "--min-kappa", "0.95", "--per-month", "60")
    assert result.code == 0, result.stderr
    out = result.stdout
    assert "recommended: sonnet — saves $" in out and "at 60 runs a month" in out
    assert "  - rubric:\n      model: sonnet\n" in out
    assert "# reference: {model: opus, sample: 0.1}" in out
    assert "sample: 2,000 of 2,000 cases" in out and "the whole run" in out


@pytest.mark.parametrize(
    "args,message",
    [
        (["--candidates", "haiku,gpt-9"], "--candidates: unknown model 'gpt-9'"),
        (["--candidates", "opus"], "only claude-opus-5-5, which is the grader's own model"),
        (["--step", "judge"], "--step must be grade or generate"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(world: World, args: list[str], message: str):
    result = run_cli(["calibrate", world.run, *args], world.env)
    assert result.code == 2, result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_the_calibration_is_stored_for_later(world: World, tmp_path: Path):
    from evalbatch.store.db import open_store

    # the calibration of the test above (reused when this worker ran it, made when not)
    made = _calibrate(world, "--sample", "2000", "--min-kappa", "0.95", "--per-month", "60")
    assert made.code == 0, made.stderr
    store = open_store(f"sqlite:///{Path(world.env['EVALBATCH_HOME']) / 'evalbatch.db'}")
    try:
        records = store.calibrations.of_run(world.run)
    finally:
        store.close()
    assert records and records[0].step == "grade"
    assert records[0].settings["candidates"] == [
        ["haiku", "claude-haiku-5-5"],
        ["sonnet", "claude-sonnet-5-5"],
    ]
    assert records[0].sample["size"] == 2000 and set(records[0].runs) == {"grade"}

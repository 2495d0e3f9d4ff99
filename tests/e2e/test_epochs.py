"""Epochs: a case whose verdict varies across epochs is flaky, reported apart from regressions,
and each case is one paired observation however many epochs ran."""

from __future__ import annotations

import itertools
import json

import pytest

from evalbatch.sandbox import SandboxConfig

from .conftest import run_cli
from .suites import write_suite

CASES = [{"id": f"c{i}", "input": f"city {i}", "target": "Paris"} for i in range(6)]
STATE = {"new": False}
_flip = itertools.count()


def _responder(params: dict) -> str:
    text = params["messages"][-1]["content"]
    if not STATE["new"]:
        return "Paris"
    if text == "city 1":  # regressed in every epoch
        return "Rome"
    if text == "city 2":  # wobbles from epoch to epoch
        return "Paris" if next(_flip) % 2 else "Rome"
    return "Paris"


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return SandboxConfig(responder=_responder)


def test_flaky_cases_are_reported_apart_from_regressions(tmp_path, cli_env, sandbox):
    suite = write_suite(tmp_path / "s", cases=CASES, epochs=3, mode="sync")
    STATE["new"] = False
    base = json.loads(run_cli(["run", str(suite), "--json"], cli_env).stdout)["run"]["id"]
    STATE["new"] = True
    new = json.loads(run_cli(["run", str(suite), "--json"], cli_env).stdout)["run"]["id"]

    result = run_cli(["compare", base, new, "--format", "json"], cli_env)
    data = json.loads(result.stdout)
    assert [(f["case_id"], f["base_passed"]) for f in data["flaky"]] == [("c2", "3/3")]
    assert data["flaky"][0]["new_passed"] in ("1/3", "2/3")
    regressed = {c["case_id"] for c in data["cases"] if c["change"] == "regressed"}
    assert regressed == {"c1"}
    (grader,) = data["graders"]
    assert (grader["n"], grader["regressed"], grader["fixed"]) == (5, 1, 0)  # c2 left out

    text = run_cli(["compare", base, new], cli_env).stdout
    assert "flaky: c2 [contains]" in text
    assert "1 flaky case(s)" in text
    out = tmp_path / "cmp.html"
    run_cli(["compare", base, new, "--format", "html", "-o", str(out)], cli_env)
    assert "c2 (contains): passed 3/3 epochs in base" in out.read_text()

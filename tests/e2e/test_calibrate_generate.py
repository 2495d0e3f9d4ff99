"""`calibrate --step generate` end to end: per route, a candidate model on a sample of the
route's cases, paired with the run's own verdicts, tested for non-inferiority; the `routing:`
block that adopts the cheapest non-inferior model per route, with the projected cost change.

Ground truth (a `quality:` sandbox): on easy cases haiku is as right as sonnet (always), on
medium and hard cases it is far worse. The suite routes easy cases to sonnet, so haiku is the
right model for easy cases only."""

from __future__ import annotations

import json

import pytest
import yaml

from evalbatch.sandbox import SandboxConfig, SandboxServer

from ..sandbox.quality_cases import make_cases, write_profile
from .conftest import env_for, run_cli

MODELS = {
    "haiku": {"answer": {"easy": 1.0, "medium": 0.5, "hard": 0.1}},
    "sonnet": {"answer": {"easy": 1.0, "medium": 0.95, "hard": 0.5}},
    "opus": {"answer": 0.95},
}
SUITE = {
    "name": "ledger",
    "cases": "cases.jsonl",
    "generate": {"prompt": "Q: {{ input }}", "max_tokens": 20, "model": "route"},
    "routing": {"easy": "sonnet", "medium": "sonnet", "hard": "opus", "default": "sonnet"},
    "grade": [{"contains": "{{ target }}"}],
    "cache": "off",
    "runs_per_month": 20,
}


def test_haiku_holds_on_easy_cases_only(tmp_path: pytest.TempPathFactory) -> None:
    root = tmp_path
    profile = write_profile(root, MODELS, make_cases(600), prompt_template="Q: {{ input }}")
    (root / "suite.yaml").write_text(yaml.safe_dump(SUITE, sort_keys=False))
    server = SandboxServer(SandboxConfig(responder=f"quality:{profile}", batch_latency=0.0))
    server.start()
    try:
        env = env_for(server.base_url, root / "home")
        first = run_cli(["run", str(root / "suite.yaml"), "--json"], env)
        assert first.code == 0, first.stderr
        run = json.loads(first.stdout)["run"]["id"]
        result = run_cli(
            ["calibrate", run, "--step", "generate", "--candidates", "haiku", "--json"], env
        )
        assert result.code == 0, result.stderr
        text = run_cli(["calibrate", run, "--step", "generate", "--candidates", "haiku"], env)
    finally:
        server.stop()
    data = json.loads(result.stdout)
    assert (data["run"], data["step"], data["margin"], data["per_month"]) == (
        run, "generate", 0.02, 20
    )  # fmt: skip
    routes = {r["route"]: r for r in data["routes"]}
    assert set(routes) == {"difficulty=easy", "difficulty=medium", "difficulty=hard"}
    easy, medium, hard = (routes[f"difficulty={k}"] for k in ("easy", "medium", "hard"))
    assert (easy["cases"], easy["sampled"], medium["sampled"], hard["sampled"]) == (
        360,
        200,
        180,
        60,
    )
    ((cand,),) = [easy["candidates"]]
    assert cand["model"] == "haiku" and cand["verdict"] == "non-inferior"
    assert cand["diff"] == 0.0 and cand["lower_bound"] > -0.02
    assert easy["recommended"] == "haiku"
    assert medium["candidates"][0]["verdict"] == "inferior"
    assert medium["recommended"] == "claude-sonnet-5-5"
    assert (
        hard["candidates"][0]["verdict"] == "inferior" and hard["recommended"] == "claude-opus-5-5"
    )
    assert yaml.safe_load(data["routing"]) == {
        "routing": {"easy": "haiku", "medium": "sonnet", "hard": "opus", "default": "sonnet"}
    }
    assert data["cost_change_per_run_usd"] < 0
    assert data["cost_change_per_month_usd"] == pytest.approx(20 * data["cost_change_per_run_usd"])
    assert "reusing the stored one" in text.stderr
    assert "difficulty=easy: sonnet -> haiku" in text.stdout
    assert "routing:\n  easy: haiku\n" in text.stdout

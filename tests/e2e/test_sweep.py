"""Sweeps end to end: variants submitted as one batch with the shared prompt cached across
them, the recommendation right against a profile whose answer is known, crash recovery with no
duplicate batch, and the table in every format."""

from __future__ import annotations

import json
import re
import sqlite3
import urllib.request
from pathlib import Path

import pytest
import yaml

from evalbatch.sandbox import SandboxConfig
from evalbatch.view.server import ViewConfig, ViewServer

from ..sandbox.quality_cases import make_cases, write_profile
from .conftest import run_cli

# about 3,000 tokens: above every model's cache minimum
SYSTEM = " ".join(f"Rule {i}: answer with the code word, exactly as recorded." for i in range(250))


def _suite(folder: Path, cases: list[dict], **extra) -> Path:
    (folder / "cases.jsonl").write_text("".join(json.dumps(c) + "\n" for c in cases))
    suite = {
        "name": "codewords",
        "cases": "cases.jsonl",
        "generate": {"prompt": "{{ input }}", "max_tokens": 32, "model": "haiku"},
        "grade": [{"contains": "{{ target }}"}],
        "mode": "batch",
        "cache": "off",
        **extra,
    }
    path = folder / "suite.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


class TestRecommendation:
    CASES = make_cases(2000)

    @pytest.fixture
    def sandbox_config(self, tmp_path_factory) -> SandboxConfig:
        folder = tmp_path_factory.mktemp("profile")
        models = {"opus": {"answer": 1.0}, "sonnet": {"answer": 0.99}, "haiku": {"answer": 0.9}}
        profile = write_profile(folder, models, self.CASES)
        return SandboxConfig(responder=f"quality:{profile}", batch_latency=0.0)

    def test_sonnet_holds_quality_and_haiku_does_not(self, tmp_path, cli_env, sandbox):
        suite = _suite(tmp_path, self.CASES)
        result = run_cli(
            ["sweep", str(suite), "--models", "haiku,sonnet,opus", "--json"], cli_env, timeout=300
        )
        assert result.code == 0, result.stderr
        table = json.loads(result.stdout)
        rates = {v["name"]: v["pass_rate"] for v in table["variants"]}
        assert rates["model=opus"] == 1.0 and 0.98 <= rates["model=sonnet"] < 1.0
        assert 0.87 <= rates["model=haiku"] <= 0.93
        flags = {v["name"]: v["non_inferior"] for v in table["variants"]}
        assert flags == {"model=haiku": False, "model=sonnet": True, "model=opus": True}
        assert table["recommended"] == "model=sonnet"
        assert table["reference"] == "model=opus"  # the dearest by projection
        assert table["saving_per_run_usd"] > 0
        assert table["saving_per_month_usd"] == pytest.approx(30 * table["saving_per_run_usd"])
        sonnet = next(v for v in table["variants"] if v["name"] == "model=sonnet")
        assert sonnet["pareto"] and sonnet["settings"] == {"generate.model": "sonnet"}
        stats = sandbox.stats()
        assert stats["batches_created"] == 1  # 3,000 requests, one submission
        # every variant is an ordinary run: compare works between any two
        compared = run_cli(
            [
                "compare",
                table["variants"][2]["run"],
                table["variants"][0]["run"],
                "--format",
                "json",
            ],
            cli_env,
        )
        assert compared.code in (0, 1) and "generate.model" in compared.stdout


class TestOneSubmission:
    CASES = make_cases(500)

    @pytest.fixture
    def sandbox_config(self) -> SandboxConfig:
        return SandboxConfig(responder="echo", batch_latency=0.0)

    def test_two_models_by_two_prompts_go_out_as_one_batch_with_cache_reads(
        self, tmp_path, cli_env, sandbox, _isolated_home
    ):
        (tmp_path / "a.md").write_text("Version A. " + SYSTEM)
        (tmp_path / "b.md").write_text("Version B. " + SYSTEM)
        suite = _suite(tmp_path, self.CASES, cache="auto")
        result = run_cli(
            [
                "sweep",
                str(suite),
                "--models",
                "haiku,sonnet",
                "--matrix",
                "generate.system=file://a.md,file://b.md",
                "--json",
            ],
            cli_env,
            timeout=300,
        )
        assert result.code == 0, result.stderr
        table = json.loads(result.stdout)
        assert len(table["variants"]) == 4
        assert {v["name"] for v in table["variants"]} == {
            "model=haiku, system=a.md",
            "model=haiku, system=b.md",
            "model=sonnet, system=a.md",
            "model=sonnet, system=b.md",
        }
        assert sandbox.stats()["batches_created"] == 1  # 2,000 requests, one chunk
        with sqlite3.connect(_isolated_home / "evalbatch.db") as db:
            reads = dict(
                db.execute(
                    "select r.variant, sum(s.cache_read > 0) from results s "
                    "join runs r on r.id = s.run_id group by r.variant"
                )
            )
        # each (system prompt, model) prefix is warmed once before the batch: every item reads
        assert reads == {v["name"]: 500 for v in table["variants"]}
        # what each variant changed against the reference shows next to its effect
        text = run_cli(["report", table["sweep"]], cli_env).stdout
        assert "generate.system" in text and "recommended:" in text


class TestCrash:
    @pytest.fixture
    def sandbox_config(self) -> SandboxConfig:
        return SandboxConfig(responder="echo", batch_latency=0.2)

    def test_a_sweep_killed_mid_submission_recovers_without_a_second_batch(
        self, tmp_path, cli_env, sandbox
    ):
        cases = make_cases(40)
        suite = _suite(tmp_path, cases)
        env = {**cli_env, "EVALBATCH_FAILPOINT": "submit.after_create"}
        killed = run_cli(["sweep", str(suite), "--models", "haiku,sonnet", "--detach"], env)
        assert killed.code != 0
        sweep_id = re.search(r"sweep (sweep-\S+):", killed.stderr).group(1)
        done = run_cli(["collect", sweep_id, "--wait", "--json"], cli_env, timeout=240)
        assert done.code == 0, done.stderr
        assert json.loads(done.stdout) == [{"run_id": sweep_id, "status": "done"}]
        assert sandbox.stats()["batches_created"] == 1  # adopted, never sent twice
        report = json.loads(run_cli(["report", sweep_id, "--format", "json"], cli_env).stdout)
        assert all(v["cases"] == 40 for v in report["variants"])


class TestFormats:
    @pytest.fixture
    def sandbox_config(self) -> SandboxConfig:
        return SandboxConfig(responder="echo", batch_latency=0.0)

    def test_every_format_and_bad_input(self, tmp_path, cli_env, sandbox):
        cases = [
            {**c, "tags": ["jailbreak" if i % 2 else "privacy"]}
            for i, c in enumerate(make_cases(20))
        ]
        suite = _suite(tmp_path, cases, sweep={"models": ["haiku", "sonnet"], "margin": 0.05})
        result = run_cli(["sweep", str(suite), "--json"], cli_env)
        assert result.code == 0, result.stderr
        sweep_id = json.loads(result.stdout)["sweep"]
        md = run_cli(["report", sweep_id, "--format", "markdown"], cli_env).stdout
        assert "| `jailbreak` |" in md and "recommended:" in md
        html = run_cli(["report", sweep_id, "--format", "html"], cli_env).stdout
        assert "<svg" in html and "Pass rate by tag" in html
        assert run_cli(["report", sweep_id, "--format", "junit"], cli_env).code == 2
        bad = run_cli(["sweep", str(suite), "--models", "haiku,haiku"], cli_env)
        assert bad.code == 2 and "repeated" in bad.stderr
        unknown = run_cli(["sweep", str(suite), "--models", "haiku,gpt-9"], cli_env)
        assert unknown.code == 2 and "gpt-9" in unknown.stderr
        no_axis = _suite(tmp_path / "n", cases) if (tmp_path / "n").mkdir() is None else None
        none = run_cli(["sweep", str(no_axis)], cli_env)
        assert none.code == 2 and "at least one axis" in none.stderr
        reference = run_cli(["sweep", str(suite), "--reference", "model=opus"], cli_env)
        assert reference.code == 2 and "not a variant" in reference.stderr

    def test_the_viewer_shows_the_sweep(self, tmp_path, cli_env, sandbox, _isolated_home):
        cases = [{**c, "tags": ["<b>cat</b>"]} for c in make_cases(10)]
        suite = _suite(tmp_path, cases)
        result = run_cli(["sweep", str(suite), "--models", "haiku,sonnet", "--json"], cli_env)
        sweep_id = json.loads(result.stdout)["sweep"]
        db = f"sqlite:///{_isolated_home / 'evalbatch.db'}"
        with ViewServer(ViewConfig(db=db, port=0, warm_runs=0)) as server:
            listing = urllib.request.urlopen(f"{server.base_url}/sweeps").read().decode()
            page = urllib.request.urlopen(f"{server.base_url}/sweeps/{sweep_id}").read().decode()
            api = json.loads(
                urllib.request.urlopen(f"{server.base_url}/api/sweeps/{sweep_id}").read()
            )
        assert sweep_id in listing
        assert "recommended:" in page and "<svg" in page and "&lt;b&gt;cat&lt;/b&gt;" in page
        assert {v["name"] for v in api["variants"]} == {"model=haiku", "model=sonnet"}

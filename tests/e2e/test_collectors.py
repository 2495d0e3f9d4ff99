"""Many collectors on one PostgreSQL store: four `collect --forever` workers advance twenty runs
while they are killed at random (SIGKILL at random moments, and at the journal's worst ones
through failpoints) and restarted. Every run ends done, the provider made exactly the batches
the runs need (the sandbox counts them), and no result is stored twice.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evalbatch.plan.prepare import prepare
from evalbatch.run.create import create_run
from evalbatch.sandbox import SandboxConfig
from evalbatch.store.db import open_store

from ..storedb import rows
from .suites import write_suite

RUNS, CASES, COLLECTORS = 20, 12, 4
FAILPOINTS = [
    "submit.after_intent",
    "submit.after_create",
    "submit.after_create.grade",
    "submit.after_handle",
    "collect.mid_stream:2",
    "grade.after_plan",
    "score.before",
]


def _rubric_responder(params: dict) -> str:
    text = params["messages"][-1]["content"]
    if "<output>" in text:
        return '{"score": 5, "reasoning": "fine"}'
    return text


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return SandboxConfig(responder=_rubric_responder, batch_latency=1.0)


class Collectors:
    """Four `evalbatch collect --forever` processes; a dead one is replaced. A replacement is
    started, half the time, with a failpoint that kills it at one of the journal's worst
    moments."""

    def __init__(self, env: dict[str, str], logs: Path, rng: random.Random) -> None:
        self.env, self.logs, self.rng = env, logs, rng
        self.started = 0
        self.slots = [self._start() for _ in range(COLLECTORS)]

    def _start(self) -> tuple[subprocess.Popen[bytes], Path]:
        self.started += 1
        env = dict(self.env)
        if self.started > COLLECTORS and self.rng.random() < 0.5:
            env["EVALBATCH_FAILPOINT"] = self.rng.choice(FAILPOINTS)
        log = self.logs / f"collector-{self.started}.log"
        with log.open("wb") as fh:
            proc = subprocess.Popen(
                [sys.executable, "-m", "evalbatch", "collect", "--forever", "--poll", "0.3"],
                env=env,
                stdout=fh,
                stderr=subprocess.STDOUT,
            )
        return proc, log

    def replace_dead(self) -> int:
        dead = [i for i, (proc, _) in enumerate(self.slots) if proc.poll() is not None]
        for i in dead:
            self.slots[i] = self._start()
        return len(dead)

    def kill_one(self) -> None:
        i = self.rng.randrange(len(self.slots))
        proc, _ = self.slots[i]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        self.slots[i] = self._start()

    def stop(self) -> list[int | None]:
        """SIGTERM each worker once it serves (while it starts it has nothing to finish)."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(
            proc.poll() is not None or "serving" in log.read_text(errors="replace")
            for proc, log in self.slots
        ):
            time.sleep(0.2)
        for proc, _ in self.slots:
            proc.send_signal(signal.SIGTERM)
        codes: list[int | None] = []
        for proc, _ in self.slots:
            try:
                codes.append(proc.wait(timeout=60))
            except subprocess.TimeoutExpired:
                proc.kill()
                codes.append(None)
        return codes


@pytest.mark.parametrize(
    "store_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_four_collectors_killed_at_random_finish_every_run_exactly_once(
    tmp_path, cli_env, sandbox, store_url
):
    rng = random.Random(int(os.environ.get("EVALBATCH_TEST_SEED", "16")))
    cases = [{"id": f"c{i}", "input": f"q{i} yes", "target": "yes"} for i in range(CASES)]
    suite = write_suite(
        tmp_path / "s",
        cases=cases,
        grade=[
            {"contains": "{{ target }}"},
            {"rubric": {"model": "opus", "rubric": "Does it say yes?", "pass": ">= 4"}},
        ],
    )
    prepared = prepare(suite)
    with open_store(store_url) as store:  # created, not submitted: the collectors submit
        run_ids = [create_run(store, prepared, {"retries": 2}) for _ in range(RUNS)]

    env = {**cli_env, "EVALBATCH_INGEST_CHUNK": "3"}
    logs = tmp_path / "logs"
    logs.mkdir()
    collectors = Collectors(env, logs, rng)
    kills, deaths = 0, 0
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and _open_runs(store_url):
            time.sleep(rng.uniform(0.3, 1.5))  # often enough to land inside every step
            deaths += collectors.replace_dead()  # those that hit their failpoint
            if kills < 12:
                collectors.kill_one()
                kills += 1
    finally:
        codes = collectors.stop()
    log_text = "".join(p.read_text(errors="replace") for p in sorted(logs.iterdir()))
    assert not _open_runs(store_url), log_text[-3000:]
    assert codes == [0] * COLLECTORS, log_text[-3000:]  # SIGTERM ends a worker cleanly

    statuses = rows(store_url, "select status, count(*) from runs group by status")
    assert statuses == [("done", RUNS)]
    assert sandbox.stats()["batches_created"] == 2 * RUNS  # one generate, one grade, per run
    adopted = rows(
        store_url,
        "select count(*), count(distinct provider_batch_id) from batches "
        "where provider_batch_id is not null",
    )
    assert adopted == [(2 * RUNS, 2 * RUNS)]  # and each adopted by one run only
    stored = rows(store_url, "select count(*), count(distinct request_id) from results")
    assert stored == [(2 * RUNS * CASES, 2 * RUNS * CASES)]  # nothing stored twice
    with open_store(store_url) as store:  # and each run has its own, all of them
        assert [store.results.count(r) for r in run_ids] == [2 * CASES] * RUNS
    scores = rows(store_url, "select run_id, count(*) from scores group by run_id")
    assert sorted(scores) == sorted((run_id, 2 * CASES) for run_id in run_ids)
    assert kills + deaths >= 6  # the runs finished with collectors dying under them


def _open_runs(url: str) -> int:
    return int(rows(url, "select count(*) from runs where status != 'done'")[0][0])

"""Scale: a generated N-case suite (generation + rubric grading = 2N requests) through the
sandbox with zero batch latency; wall time and peak RSS of the *harness* for each phase.

    .venv/bin/python benchmarks/scale.py                 # 10,000 then 100,000 cases
    .venv/bin/python benchmarks/scale.py --cases 20000   # one size only

The sandbox runs in this process (a thread); the harness runs in a child process (this same file
with ``--driver``) so its peak RSS is its own. Phases: plan (validate, manifest, write the run and
its requests), submit (the generate batches), collect (poll, stream the results in), grade
(plan, submit and collect the rubric batch), score, report (summary and text report).
Peak RSS is the child's high-water mark at the end of each phase (it only grows).

Targets on a 2-core machine: 100k cases end to end under 120 s, peak RSS under 500 MB, and
memory flat as the suite grows. The last line reads
``scale-100k: wall_s=… peak_rss_mb=… rss_10k_over_100k=…``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _rubric_or_echo(params: dict[str, Any]) -> str:
    text = params["messages"][-1]["content"]
    if isinstance(text, list):
        text = "".join(b.get("text", "") for b in text)
    if "<output>" in text:
        return '{"score": 4, "reasoning": "fine"}'
    return text


def write_suite(folder: Path, cases: int) -> Path:
    with (folder / "cases.jsonl").open("w") as fh:
        for i in range(cases):
            answer = "yes" if i % 4 else "no"
            fh.write(
                json.dumps({"id": f"c{i}", "input": f"Question {i}: {answer}", "target": "yes"})
            )
            fh.write("\n")
    (folder / "suite.yaml").write_text(
        "name: scale\n"
        "cases: cases.jsonl\n"
        "generate: {prompt: '{{ input }}', max_tokens: 32, model: haiku}\n"
        "grade:\n"
        "  - contains: '{{ target }}'\n"
        "  - rubric: {model: haiku, rubric: 'Does the reply answer yes?', pass: '>= 4'}\n"
        "mode: batch\n"
        "cache: off\n"
    )
    return folder / "suite.yaml"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def driver(suite: Path) -> None:
    """The harness, phase by phase, printing one JSON line per phase."""
    from rich.console import Console

    from evalbatch.analysis.summary import summarize
    from evalbatch.plan.prepare import prepare
    from evalbatch.providers import open_provider
    from evalbatch.report.text import print_text
    from evalbatch.run.create import create_run
    from evalbatch.run.engine import Runner
    from evalbatch.run.scoring import score_run
    from evalbatch.store.db import open_store

    marks: list[tuple[str, float]] = []

    def mark(phase: str, started: float) -> float:
        now = time.perf_counter()
        print(json.dumps({"phase": phase, "wall_s": now - started, "peak_rss_mb": _rss_mb()}))
        sys.stdout.flush()
        marks.append((phase, now))
        return now

    t = time.perf_counter()
    store = open_store(None)
    prepared = prepare(suite)
    run_id = create_run(store, prepared, {"retries": 2, "concurrency": 16})
    t = mark("plan", t)

    class Timed(Runner):
        def _finish_generate(self) -> Any:
            nonlocal t
            t = mark("collect", t)
            return super()._finish_generate()

    runner = Timed(store, run_id, lambda: open_provider())
    status = runner.advance()
    t = mark("submit", t)
    while status not in ("score", "done"):
        time.sleep(0.2)
        # stop before scoring so it is its own phase
        status = runner.status()
        # the benchmark drives the steps itself to time each phase
        if status in ("generate", "grade") and runner._advance_step(status):  # noqa: SLF001
            status = runner._finish_generate() if status == "generate" else "score"
            if status == "score":
                store.runs.set_status(run_id, "score")
    t = mark("grade", t)
    score_run(store, run_id, runner.graders, prepared.suite.epochs)
    store.runs.set_status(run_id, "done")
    t = mark("score", t)
    summary = summarize(store, run_id)
    print_text(summary, Console(file=io.StringIO(), width=120))
    mark("report", t)
    runner.close()
    print(json.dumps({"cases_passed": summary.cases_passed, "cases_scored": summary.cases_scored}))


def measure(cases: int) -> dict[str, Any]:
    from evalbatch.sandbox import SandboxConfig, SandboxServer

    with tempfile.TemporaryDirectory(prefix="evalbatch-scale-") as tmp:
        folder = Path(tmp)
        suite = write_suite(folder, cases)
        server = SandboxServer(SandboxConfig(responder=_rubric_or_echo, batch_latency=0.0))
        server.start()
        try:
            env = {
                **os.environ,
                "ANTHROPIC_BASE_URL": server.base_url,
                "ANTHROPIC_API_KEY": "bench",
                "EVALBATCH_HOME": str(folder / "home"),
            }
            started = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, __file__, "--driver", str(suite)],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            wall = time.perf_counter() - started
        finally:
            server.stop()
    if proc.returncode != 0:
        raise SystemExit(f"driver failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    phases = [line for line in lines if "phase" in line]
    final = lines[-1]
    assert final["cases_scored"] == cases, final
    return {
        "cases": cases,
        "wall_s": wall,
        "phases": phases,
        "peak_rss_mb": phases[-1]["peak_rss_mb"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=None, help="one size only")
    parser.add_argument("--driver", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.driver:
        driver(args.driver)
        return
    sizes = [args.cases] if args.cases else [10_000, 100_000]
    results = []
    for n in sizes:
        res = measure(n)
        results.append(res)
        print(f"\n{n:,} cases ({2 * n:,} requests): wall {res['wall_s']:.1f} s")
        print(f"  {'phase':<8} {'wall_s':>8} {'peak_rss_mb':>12}")
        for p in res["phases"]:
            print(f"  {p['phase']:<8} {p['wall_s']:>8.1f} {p['peak_rss_mb']:>12.0f}")
    big = results[-1]
    ratio = results[0]["peak_rss_mb"] / big["peak_rss_mb"] if len(results) > 1 else 1.0
    label = f"{big['cases'] // 1000}k" if big["cases"] >= 1000 else str(big["cases"])
    print(
        f"scale-{label}: wall_s={big['wall_s']:.1f} peak_rss_mb={big['peak_rss_mb']:.0f} "
        f"rss_10k_over_100k={ratio:.2f}"
    )


if __name__ == "__main__":
    main()

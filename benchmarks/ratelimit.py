"""The sync path against a rate limit: how close it runs to the allowed rate, and how many
refusals (429) it draws on the way.

A suite of ``--cases`` cases runs with ``--mode sync --concurrency C`` (the real CLI as a
process) against a sandbox in this process limited to ``--rpm`` requests per minute per model
(a token bucket: a burst of RPM, then RPM/60 per second, as the sandbox documents). The
allowed time is what a perfect client needs: (cases - rpm) / (rpm / 60) seconds after the burst.

Printed: the settings, the wall time, the run's own time (created to finished, without the
process start), the allowed time, their ratio (the share of the allowed rate achieved), the refusals per request, and the cases that did not end with an answer. Last
line: ``ratelimit: rate_share=.. refusals_per_request=.. failed_cases=.. wall_s=..``.

    .venv/bin/python benchmarks/ratelimit.py [--cases 240] [--rpm 120] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from evalbatch.sandbox import SandboxConfig, SandboxServer
from evalbatch.sandbox.config import RateLimit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=240)
    parser.add_argument("--rpm", type=int, default=120)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    print(
        f"settings: cases={args.cases} rpm={args.rpm} concurrency={args.concurrency} "
        "model=haiku responder=echo mode=sync sandbox=in-process (another process than the CLI)"
    )
    with (
        tempfile.TemporaryDirectory() as tmp,
        SandboxServer(SandboxConfig(rate_limits=[RateLimit(model="*", rpm=args.rpm)])) as server,
    ):
        folder = Path(tmp)
        with (folder / "cases.jsonl").open("w") as fh:
            for i in range(args.cases):
                fh.write(json.dumps({"id": f"c{i}", "input": f"q{i} yes", "target": "yes"}) + "\n")
        (folder / "suite.yaml").write_text(
            yaml.safe_dump(
                {
                    "name": "ratelimit",
                    "cases": "cases.jsonl",
                    "generate": {"prompt": "{{ input }}", "max_tokens": 16, "model": "haiku"},
                    "grade": [{"contains": "{{ target }}"}],
                    "mode": "sync",
                    "cache": "off",
                }
            )
        )
        env = {
            **os.environ,
            "ANTHROPIC_BASE_URL": server.base_url,
            "ANTHROPIC_API_KEY": "bench",
            "EVALBATCH_HOME": str(folder / "home"),
        }
        started = time.monotonic()
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "evalbatch",
                "run",
                str(folder / "suite.yaml"),
                "--json",
                "--concurrency",
                str(args.concurrency),
            ],
            env=env,
            capture_output=True,
            text=True,
        )
        wall = time.monotonic() - started
        if proc.returncode not in (0, 1):
            raise SystemExit(f"evalbatch run failed ({proc.returncode}): {proc.stderr[-2000:]}")
        report = json.loads(proc.stdout)
        stats = server.stats()
    refused = stats.get("http messages 429", 0)
    sent = refused + stats.get("http messages 200", 0)
    allowed = max(0.0, (args.cases - args.rpm) / (args.rpm / 60.0))
    failed = report["cases_scored"] - report["cases_passed"]
    run_s = report["run"]["finished_at"] - report["run"]["created_at"]
    share = allowed / run_s if run_s and allowed else 1.0
    print(
        f"wall {wall:.1f} s (the process); the run {run_s:.1f} s (created to finished); "
        f"allowed {allowed:.1f} s (a perfect client after the burst)"
    )
    print(f"requests sent {sent}, refused (429) {refused}; cases without an answer {failed}")
    print(
        f"ratelimit: rate_share={share:.2f} refusals_per_request={refused / max(1, sent):.3f} "
        f"failed_cases={failed} wall_s={wall:.1f}"
    )


if __name__ == "__main__":
    main()

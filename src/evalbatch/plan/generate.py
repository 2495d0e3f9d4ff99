"""The generate step: one Request per case and epoch, the prompt rendered from the case."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from ..records import Case
from ..templates import render
from .routing import Router
from .steps import GENERATE, PlannedRequest


def plan_generate(
    suite: Any, cases: Iterable[tuple[int, Case]], router: Router
) -> Iterator[PlannedRequest]:
    gen = suite.generate
    system = [{"type": "text", "text": gen.system}] if gen.system else None
    extra = {"stop_sequences": gen.stop_sequences} if gen.stop_sequences else None
    for case_idx, case in cases:
        prompt = render(gen.prompt, case.context(), case.where("prompt"))
        route = router.route(case)
        for epoch in range(suite.epochs):
            yield PlannedRequest(
                step=GENERATE,
                case_idx=case_idx,
                case_id=case.id,
                epoch=epoch,
                grader=None,
                model=route.model,
                route=route.reason,
                system=system,
                source="generate.system",
                messages=[{"role": "user", "content": prompt}],
                max_tokens=gen.max_tokens,
                extra=extra,
            )

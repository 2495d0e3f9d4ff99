"""The grade step: one Request per generated output and model-graded grader."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from ..graders.base import ModelGrader
from ..records import Case
from .routing import Router
from .steps import GRADE, PlannedRequest, split_params

# (case_idx, case, epoch, output text)
Generated = tuple[int, Case, int, str]


def plan_grade(
    graders: list[ModelGrader],
    routers: dict[str, Router],
    generated: Iterable[Generated],
    baseline_output: Callable[[str, str], str | None] | None = None,
) -> Iterator[PlannedRequest]:
    for case_idx, case, epoch, output in generated:
        for grader in graders:
            route = routers[grader.name].route(case)
            kwargs = {}
            if grader.kind == "pairwise" and baseline_output is not None:
                kwargs["baseline_output"] = baseline_output(grader.name, case.id)
            params = grader.build_request(output, case, route.model, None, **kwargs)
            system, rest = split_params(params)
            extra = {k: v for k, v in rest.items() if k not in ("model", "messages", "max_tokens")}
            yield PlannedRequest(
                step=GRADE,
                case_idx=case_idx,
                case_id=case.id,
                epoch=epoch,
                grader=grader.name,
                model=route.model,
                route=route.reason,
                system=system,
                source=f"grade.{grader.name}",
                messages=rest["messages"],
                max_tokens=int(rest["max_tokens"]),
                extra=extra or None,
            )

"""Requests: what each step sends. `plan_generate` makes one per case and epoch (the prompt
rendered from the case), `plan_grade` one per generated output and model-graded grader; and
`request_body` is the one place a stored or planned Request becomes a Messages API body."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson

from ..catalog import Catalog
from ..catalog.tokenizer import count_messages, count_request
from ..graders.base import ModelGrader
from ..records import Case, PlannedRequest, Prefix
from ..store.records import StoredPrefix, StoredRequest
from ..suite.schema import Suite
from ..templates import render
from .caching import with_breakpoint
from .routing import Router

# (case_idx, case, epoch, output text)
GeneratedCase = tuple[int, Case, int, str]
BaselineLookup = Callable[[str, str, int], "str | None"]  # (grader, case id, epoch) -> output


def make_prefix(blocks: list[dict[str, Any]], source: str) -> Prefix:
    """A shared prefix from system blocks (cache_control stripped), its tokens counted once."""
    clean = tuple({k: v for k, v in block.items() if k != "cache_control"} for block in blocks)
    return Prefix(clean, count_request({"system": list(clean)}), source)


def split_params(params: dict[str, Any]) -> tuple[list[dict[str, Any]] | None, dict[str, Any]]:
    """A Messages body -> (system blocks, the remaining params)."""
    rest = {k: v for k, v in params.items() if k != "system"}
    system = params.get("system")
    if system is None or system == "":
        return None, rest
    if isinstance(system, str):
        return [{"type": "text", "text": system}], rest
    return list(system), rest


def _estimate(prefix: Prefix | None, messages: list[dict[str, Any]]) -> int:
    return (prefix.tokens if prefix else 0) + count_messages(messages)


def plan_generate(
    suite: Suite, cases: Iterable[tuple[int, Case]], router: Router
) -> Iterator[PlannedRequest]:
    gen = suite.generate
    prefix = (
        make_prefix([{"type": "text", "text": gen.system}], "generate.system")
        if gen.system
        else None
    )
    extra = {"stop_sequences": gen.stop_sequences} if gen.stop_sequences else None
    for case_idx, case in cases:
        prompt = render(gen.prompt, case.context(), case.where("prompt"))
        messages = [{"role": "user", "content": prompt}]
        estimate = _estimate(prefix, messages)
        route = router.route(case)
        for epoch in range(suite.epochs):
            yield PlannedRequest(
                step="generate",
                case_idx=case_idx,
                case_id=case.id,
                epoch=epoch,
                grader=None,
                model=route.model,
                route=route.reason,
                prefix=prefix,
                messages=messages,
                max_tokens=gen.max_tokens,
                input_estimate=estimate,
                extra=extra,
            )


def plan_grade(
    graders: list[ModelGrader],
    routers: dict[str, Router],
    generated: Iterable[GeneratedCase],
    baseline_output: BaselineLookup | None = None,
) -> Iterator[PlannedRequest]:
    """Grade requests for each generated output. A pairwise grader with no baseline output for
    a case plans nothing for it (scoring records why)."""
    prefixes: dict[str, Prefix] = {}
    for case_idx, case, epoch, output in generated:
        for grader in graders:
            if not grader.selects(case):
                continue
            kwargs: dict[str, Any] = {}
            if grader.kind == "pairwise":
                baseline = baseline_output(grader.name, case.id, epoch) if baseline_output else None
                if baseline is None:
                    continue
                kwargs["baseline_output"] = baseline
            route = routers[grader.name].route(case)
            params = grader.build_request(output, case, route.model, None, **kwargs)
            system, rest = split_params(params)
            prefix = _shared_prefix(prefixes, grader.name, system)
            messages = rest["messages"]
            extra = {k: v for k, v in rest.items() if k not in ("model", "messages", "max_tokens")}
            yield PlannedRequest(
                step="grade",
                case_idx=case_idx,
                case_id=case.id,
                epoch=epoch,
                grader=grader.name,
                model=route.model,
                route=route.reason,
                prefix=prefix,
                messages=messages,
                max_tokens=int(rest["max_tokens"]),
                input_estimate=_estimate(prefix, messages),
                extra=extra or None,
            )


def _shared_prefix(
    known: dict[str, Prefix], grader: str, system: list[dict[str, Any]] | None
) -> Prefix | None:
    """A grader's system blocks are the same for every case: count them once."""
    if not system:
        return None
    clean = tuple({k: v for k, v in block.items() if k != "cache_control"} for block in system)
    prefix = known.get(grader)
    if prefix is None or prefix.blocks != clean:
        prefix = known[grader] = make_prefix(list(clean), f"grade.{grader}")
    return prefix


def request_body(
    *,
    model: str,
    max_tokens: int,
    messages: list[dict[str, Any]],
    prefix_blocks: list[dict[str, Any]] | None,
    prefix_tokens: int,
    extra: dict[str, Any] | None,
    ttl: str | None,
    catalog: Catalog,
) -> dict[str, Any]:
    """The Messages API body, with a cache breakpoint on the shared prefix when it is worth it."""
    params: dict[str, Any] = {"model": model, "max_tokens": max_tokens}
    if prefix_blocks:
        params["system"] = with_breakpoint(prefix_blocks, prefix_tokens, model, ttl, catalog)
    params["messages"] = messages
    if extra:
        params.update(extra)
    return params


def planned_body(req: PlannedRequest, ttl: str | None, catalog: Catalog) -> dict[str, Any]:
    return request_body(
        model=req.model,
        max_tokens=req.max_tokens,
        messages=req.messages,
        prefix_blocks=list(req.prefix.blocks) if req.prefix else None,
        prefix_tokens=req.prefix.tokens if req.prefix else 0,
        extra=req.extra,
        ttl=ttl,
        catalog=catalog,
    )


def stored_body(
    req: StoredRequest, prefixes: dict[int, StoredPrefix], ttl: str | None, catalog: Catalog
) -> dict[str, Any]:
    """The body of a stored request (what the batch and sync paths send)."""
    prefix = prefixes[req.prefix_id] if req.prefix_id is not None else None
    return request_body(
        model=req.model,
        max_tokens=req.max_tokens,
        messages=orjson.loads(req.messages),
        prefix_blocks=prefix.blocks if prefix else None,
        prefix_tokens=prefix.tokens if prefix else 0,
        extra=orjson.loads(req.extra) if req.extra else None,
        ttl=ttl,
        catalog=catalog,
    )

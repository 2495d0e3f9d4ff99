"""What a run's outcomes mean to the person reading its report, on real runs in process: what
each result cost (and would have cost) by the price table, the headline, which cases passed
(every grader, every epoch), how failed generations and grader errors show, and that a failure
which is never a result (a retryable error, an expiry) is sent again and never stored."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evalbatch.analysis.summary import summarize
from evalbatch.catalog import load_catalog
from evalbatch.errors import RunNeedsAttention
from evalbatch.records import Outcome, Usage, custom_id
from evalbatch.report.wording import headline
from evalbatch.run.ingest import IngestContext, record_outcomes
from evalbatch.sandbox.config import FaultConfig
from evalbatch.sandbox.prompts import last_user_text

from .lab import Lab, lab_in, open_lab, write_suite

# c0-c3 easy (haiku), c4-c5 hard (sonnet). The answer decides the verdicts:
# "ok" passes both graders, "no" fails both, "ok meh" passes contains but the rubric gives 2.
ANSWERS = {0: "ok", 1: "no", 2: "ok meh", 3: "ok", 4: "ok", 5: "no"}
CASES = [
    {
        "id": f"c{i}",
        "input": f"question {i}",
        "target": "ok",
        "difficulty": "hard" if i >= 4 else "easy",
    }
    for i in ANSWERS
]
ROUTING = {"easy": "haiku", "hard": "sonnet", "default": "haiku"}
GENERATE = {"prompt": "{{ input }}", "max_tokens": 64, "model": "route"}
CONTAINS = {"contains": "{{ target }}"}
RUBRIC = {"rubric": {"model": "haiku", "rubric": "Is it ok?", "pass": ">= 4"}}
# per million tokens (data/pricing.toml): haiku 0.10 in / 0.50 out, sonnet 2.00 / 10.00
RATES = {"claude-haiku-5-5": (0.10, 0.50), "claude-sonnet-5-5": (2.0, 10.0)}


def respond(params: dict[str, Any]) -> str:
    text = last_user_text(params)
    if "<output>" in text:
        score = 2 if ("meh" in text or "<output>\nno" in text) else 5
        return json.dumps({"score": score, "reasoning": f"gave {score}"})
    return ANSWERS[int(text.split()[-1])]


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    yield from lab_in(tmp_path, respond)


def _suite(lab: Lab, name: str = "s", **overrides: Any) -> Path:
    settings: dict[str, Any] = {
        "generate": GENERATE,
        "routing": ROUTING,
        "grade": [CONTAINS, RUBRIC],
    }
    return write_suite(lab.root / name, CASES, **{**settings, **overrides})


def _usd(tokens_in: int, tokens_out: int, model: str) -> float:
    rate_in, rate_out = RATES[model]
    return (tokens_in * rate_in + tokens_out * rate_out) / 1e6


def test_every_cost_line_is_the_price_table_applied_to_its_tokens(lab: Lab) -> None:
    summary = summarize(lab.store, lab.run(_suite(lab)))
    lines = {(c.step, c.model): c for c in summary.costs}
    assert sorted(lines) == [
        ("generate", "claude-haiku-5-5"),
        ("generate", "claude-sonnet-5-5"),
        ("grade", "claude-haiku-5-5"),
    ]
    assert [lines[k].requests for k in sorted(lines)] == [4, 2, 6]
    for (_, model), line in lines.items():
        assert line.mode == "batch"
        assert line.input_tokens > 0 and line.output_tokens > 0
        sync = _usd(line.input_tokens, line.output_tokens, model)
        top = _usd(line.input_tokens, line.output_tokens, "claude-sonnet-5-5")  # the strongest
        assert line.cost == pytest.approx(sync / 2, rel=1e-9)  # batch: half
        assert line.sync_cost == pytest.approx(sync, rel=1e-9)
        assert line.nocache_cost == pytest.approx(sync / 2, rel=1e-9)  # cache off: the same
        assert line.norouting_cost == pytest.approx(top / 2, rel=1e-9)
        assert line.naive_cost == pytest.approx(top, rel=1e-9)
    cost = sum(line.cost for line in lines.values())
    naive = sum(line.naive_cost for line in lines.values())
    assert summary.total("cost") == pytest.approx(cost) and summary.total(
        "naive_cost"
    ) == pytest.approx(naive)
    saved = round(100 * (1 - cost / naive))
    assert 50 < saved < 100
    assert headline(summary).endswith(f"saved {saved}%")
    assert lab.store.results.spent(summary.run.id) == pytest.approx(cost)
    totals = summary.to_dict()["totals"]
    assert totals["cost"] == pytest.approx(cost) and totals["sync_cost"] == pytest.approx(2 * cost)


def test_a_case_passes_only_when_every_grader_passed_it(lab: Lab) -> None:
    summary = summarize(lab.store, lab.run(_suite(lab)))
    graders = {g.name: g for g in summary.graders}
    assert [g.name for g in summary.graders] == ["contains", "rubric"]  # the suite's order
    assert (graders["contains"].passed, graders["contains"].failed, graders["contains"].errors) == (
        4,
        2,
        0,
    )
    assert (graders["rubric"].passed, graders["rubric"].failed) == (3, 3)
    assert graders["rubric"].mean_value == pytest.approx((5 + 2 + 2 + 5 + 5 + 2) / 6)
    assert (summary.cases_scored, summary.cases_passed) == (6, 3)  # c0, c3, c4
    assert summary.pass_rate == 0.5
    assert summary.outcomes == {"generate": {"succeeded": 6}, "grade": {"succeeded": 6}}
    rows = {row.case_id: row for row in lab.store.reports.case_rows(summary.run.id)}
    assert rows["c2"].output == "ok meh"
    assert [(s.grader, s.passed, s.value) for s in rows["c2"].scores] == [
        ("contains", True, 1.0),
        ("rubric", False, 2.0),
    ]
    assert rows["c4"].model == "claude-sonnet-5-5"


def test_epochs_are_scored_apart(lab: Lab) -> None:
    summary = summarize(lab.store, lab.run(_suite(lab, grade=[CONTAINS], epochs=2)))
    assert (summary.cases_scored, summary.cases_passed) == (12, 8)
    scores = lab.store.scores.of_run(summary.run.id)
    assert sorted({epoch for _, epoch, _ in scores}) == [0, 1]
    assert len(scores) == 12


@pytest.fixture
def unknown_to_the_provider(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """claude-test-0: in evalbatch's models and prices (EVALBATCH_MODELS / _PRICING), not in
    the provider's (the sandbox read its catalog when it started)."""
    models, pricing = tmp_path / "models.toml", tmp_path / "pricing.toml"
    models.write_text(
        '[models."claude-test-0"]\nstrength = 99\nmin_cache_tokens = 1024\nmax_output_tokens = 4096\n'
    )
    pricing.write_text('[models."claude-test-0"]\ninput = 1.0\noutput = 1.0\n')
    monkeypatch.setenv("EVALBATCH_MODELS", str(models))
    monkeypatch.setenv("EVALBATCH_PRICING", str(pricing))
    load_catalog.cache_clear()
    lab.catalog = load_catalog()
    yield "claude-test-0"
    monkeypatch.undo()
    load_catalog.cache_clear()


def test_a_generation_the_provider_refused_is_a_result_and_every_grader_errors(
    lab: Lab, unknown_to_the_provider: str
) -> None:
    # the hard cases come back errored with invalid_request_error, which no retry can fix
    routing = {**ROUTING, "hard": "claude-test-0"}
    run_id = lab.run(_suite(lab, routing=routing))
    summary = summarize(lab.store, run_id)
    assert summary.run.status == "done"
    assert summary.outcomes == {
        "generate": {"succeeded": 4, "errored": 2},
        "grade": {"succeeded": 4},  # nothing to grade for c4 and c5
    }
    assert lab.batches_created() == 2  # refused items are final: not sent again
    refused = "invalid_request_error: model: 'claude-test-0' is not a known model"
    generate_errors = [(e.case_id, e.kind, e.error) for e in summary.errors if e.step == "generate"]
    assert generate_errors == [("c4", "errored", refused), ("c5", "errored", refused)]
    score_errors = {(e.case_id, e.grader): e.error for e in summary.errors if e.step == "score"}
    assert (
        score_errors[("c4", "contains")]
        == f"generation errored (invalid_request_error): {refused.split(': ', 1)[1]}"
    )
    assert score_errors[("c4", "rubric")] == score_errors[("c4", "contains")]
    assert {g.name: g.errors for g in summary.graders} == {"contains": 2, "rubric": 2}
    assert (summary.cases_scored, summary.cases_passed) == (6, 2)  # an error is not a pass
    assert [c.model for c in summary.costs if c.step == "generate"] == [
        "claude-haiku-5-5"
    ]  # refused: not billed
    rows = {row.case_id: row for row in lab.store.reports.case_rows(run_id)}
    assert rows["c4"].output.startswith("[errored] model: 'claude-test-0'")
    # a refused request is not billed: not in the spend the budget sees, nor on its route
    assert lab.store.results.spent(run_id) == pytest.approx(summary.total("cost"))
    (refused_route,) = [r for r in summary.routes if r.model == "claude-test-0"]
    assert (refused_route.requests, refused_route.cost, refused_route.naive_cost) == (2, 0.0, 0.0)
    (detail,) = lab.store.browse.case_detail(run_id, "c4").epochs
    assert detail.generation is not None and detail.generation.result is not None
    assert detail.generation.result.cost_usd == 0.0


@pytest.mark.parametrize(
    ("fault", "last_error"),
    [("errored", "overloaded_error: simulated item failure"), ("expired", "expired")],
)
def test_failures_that_are_never_results_are_sent_again_then_stop_for_a_person(
    tmp_path: Path, fault: str, last_error: str
) -> None:
    with open_lab(tmp_path, respond, faults=FaultConfig(**{fault: 1.0})) as lab:
        run_id = lab.create(_suite(lab, grade=[CONTAINS]), retries=1)
        with pytest.raises(RunNeedsAttention) as stop:
            lab.drive(run_id)
        message = str(stop.value)
        assert message.startswith(
            "generate: 6 request(s) failed 2 times and are kept pending (not counted as "
            f"results); last error: {last_error}. Nothing is lost"
        )  # the person is told what went wrong: the provider's error, or that it expired
        assert f"fix the cause, then: evalbatch collect {run_id}" in message
        assert lab.batches_created() == 2  # the first try and one retry
        summary = summarize(lab.store, run_id)
        assert summary.outcomes == {"generate": {"pending": 6}}
        assert summary.costs == [] and summary.errors == []  # nothing stored as a result
        assert (summary.cases_scored, summary.gate) == (0, None)


def test_a_grading_request_the_provider_refused_is_a_grader_error_not_a_fail(
    lab: Lab, unknown_to_the_provider: str
) -> None:
    rubric = {"rubric": {"model": unknown_to_the_provider, "rubric": "Is it ok?", "pass": ">= 4"}}
    summary = summarize(lab.store, lab.run(_suite(lab, grade=[CONTAINS, rubric])))
    assert summary.outcomes["grade"] == {"errored": 6}
    errors = {(e.step, e.case_id): e.error for e in summary.errors}
    assert errors[("score", "c0")] == (
        "grading errored (invalid_request_error): model: 'claude-test-0' is not a known model"
    )
    assert {g.name: (g.passed, g.failed, g.errors) for g in summary.graders} == {
        "contains": (4, 2, 0),
        "rubric": (0, 0, 6),
    }
    assert summary.cases_passed == 0


def test_an_empty_verdict_is_named_as_such(tmp_path: Path) -> None:
    def silent_grader(params: dict[str, Any]) -> str:
        return "" if "<output>" in last_user_text(params) else respond(params)

    with open_lab(tmp_path, silent_grader) as lab:
        summary = summarize(lab.store, lab.run(_suite(lab)))
    errors = {e.error for e in summary.errors if e.step == "score"}
    assert errors == {"unparseable verdict: ''"}


def test_a_run_in_flight_has_no_scores_and_no_gate_yet(tmp_path: Path) -> None:
    with open_lab(tmp_path, respond, batch_latency=60.0) as lab:
        run_id = lab.create(_suite(lab, gate={"min_pass_rate": 0.5}))
        lab.drive(run_id, detach=True)
        summary = summarize(lab.store, run_id)
    assert [
        (g.name, g.scored, g.passed, g.failed, g.errors, g.mean_value) for g in summary.graders
    ] == [
        ("contains", 0, 0, 0, 0, None),
        ("rubric", 0, 0, 0, 0, None),
    ]
    assert (summary.run.status, summary.run.finished_at, summary.run.error) == (
        "generate",
        None,
        None,
    )
    assert (summary.pass_rate, summary.gate, summary.gate_failed) == (None, None, False)


def test_a_stopped_run_says_why_and_a_done_run_when(tmp_path: Path) -> None:
    with open_lab(tmp_path, respond, faults=FaultConfig(errored=1.0)) as lab:
        run_id = lab.create(_suite(lab, grade=[CONTAINS]), retries=0)
        with pytest.raises(RunNeedsAttention) as stop:
            lab.drive(run_id)
        summary = summarize(lab.store, run_id)
        assert (summary.run.status, summary.run.error) == ("needs_attention", str(stop.value))
    with open_lab(tmp_path / "2", respond) as lab:
        done = summarize(lab.store, lab.run(_suite(lab, grade=[CONTAINS])))
    assert done.run.finished_at is not None and done.run.finished_at >= done.run.created_at


def test_a_suite_without_graders_passes_nothing_and_fails_a_pass_rate_gate(lab: Lab) -> None:
    summary = summarize(lab.store, lab.run(_suite(lab, grade=[], gate={"min_pass_rate": 0.5})))
    assert (summary.cases_scored, summary.pass_rate) == (0, None)
    assert summary.gate is not None and (summary.gate.pass_rate, summary.gate.failed) == (0.0, True)


def test_the_case_page_shows_each_result_as_the_provider_returned_it(lab: Lab) -> None:
    run_id = lab.run(_suite(lab))
    (epoch,) = lab.store.browse.case_detail(run_id, "c2").epochs
    assert epoch.generation is not None and epoch.generation.result is not None
    result = epoch.generation.result
    assert (result.kind, result.mode, result.text, result.stop_reason) == (
        "succeeded",
        "batch",
        "ok meh",
        "end_turn",
    )
    (grading,) = epoch.grading
    assert grading.result is not None and grading.result.stop_reason == "end_turn"


def test_costs_follow_the_catalogs_batch_discount(lab: Lab) -> None:
    lab.catalog = dataclasses.replace(lab.catalog, batch_discount=0.25)
    summary = summarize(lab.store, lab.run(_suite(lab, grade=[CONTAINS])))
    for line in summary.costs:
        assert line.cost == pytest.approx(line.sync_cost * 0.25, rel=1e-12)


def test_an_empty_answer_is_graded_as_empty(tmp_path: Path) -> None:
    def mute(params: dict[str, Any]) -> str:
        return ""

    with open_lab(tmp_path, mute) as lab:
        summary = summarize(lab.store, lab.run(_suite(lab, grade=[{"regex": "^$"}])))
    assert (summary.cases_scored, summary.cases_passed) == (6, 6)


def test_a_sync_runs_case_page_shows_how_long_each_request_took(lab: Lab) -> None:
    batch = lab.store.browse.case_detail(lab.run(_suite(lab, "b")), "c2").epochs[0]
    sync = lab.store.browse.case_detail(lab.run(_suite(lab, "s", mode="sync")), "c2").epochs[0]
    assert batch.generation is not None and batch.generation.result is not None
    assert batch.generation.result.latency_ms is None  # a batch item has no latency of its own
    assert sync.generation is not None and sync.generation.result is not None
    result = sync.generation.result
    assert (result.mode, result.text) == ("sync", "ok meh")
    assert isinstance(result.latency_ms, int) and result.latency_ms >= 0


def _answer(run_id: str, idx: int) -> Outcome:
    usage = Usage(input_tokens=10, output_tokens=2)
    generate = custom_id(run_id, "generate", idx)
    return Outcome(
        custom_id=generate, kind="succeeded", model="claude-haiku-5-5", text="ok", usage=usage
    )


def test_a_results_stream_stores_its_runs_items_past_one_that_is_not_ours(lab: Lab) -> None:
    run_id = lab.create(_suite(lab, grade=[CONTAINS]))
    ctx = IngestContext(run_id, "batch", 2, "claude-haiku-5-5", lab.catalog)
    stream = [_answer(run_id, 0), Outcome(custom_id="someone-elses", kind="succeeded")]
    stream += [_answer(run_id, i) for i in range(1, 6)]
    counts = record_outcomes(lab.store, ctx, stream)
    assert counts.stored == 6
    assert summarize(lab.store, run_id).outcomes == {"generate": {"succeeded": 6}}


def test_results_from_a_batch_the_requests_are_not_in_are_not_stored(lab: Lab) -> None:
    run_id = lab.create(_suite(lab, grade=[CONTAINS]))
    ctx = IngestContext(run_id, "batch", 2, "claude-haiku-5-5", lab.catalog)
    # No batch was submitted yet: a late results file of batch 1 holds none of these requests.
    counts = record_outcomes(lab.store, ctx, [_answer(run_id, i) for i in range(6)], batch_id=1)
    assert counts.stored == 0
    assert summarize(lab.store, run_id).outcomes == {"generate": {"pending": 6}}

"""The run summary a report is built from, on real runs in process: the prompt cache per shared
prefix and why a prefix never hit, what warming cost against its break-even, routes, the JSON
form's derived figures, and scoring that pages through the cases and names what went wrong."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evalbatch.analysis.summary import MinPassRate, run_report, summarize
from evalbatch.run import scoring
from evalbatch.run.regrade import create_regrade, plan_regrade
from evalbatch.sandbox.prompts import last_user_text

from .lab import Lab, lab_in, open_lab, write_suite

SYSTEM = "You answer questions about European capitals, briefly and exactly. " * 70  # ~700 tokens
CASES = [{"id": f"c{i}", "input": f"question {i}", "target": "question"} for i in range(3)]


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    yield from lab_in(tmp_path)


def _suite(
    lab: Lab, name: str, model: str, cases: list[dict[str, Any]] = CASES, **over: Any
) -> Path:
    """Caching on, cold (no warming request) unless ``cache`` says otherwise: what a prefix
    does in a batch left to itself."""
    generate = {"system": SYSTEM, "prompt": "{{ input }}", "max_tokens": 64, "model": model}
    cold = {"mode": "auto", "warm": False}
    return write_suite(lab.root / name, cases, generate=generate, **{"cache": cold, **over})


def test_a_prefix_below_the_models_minimum_is_named_with_both_sizes(lab: Lab) -> None:
    summary = summarize(lab.store, lab.run(_suite(lab, "s", "haiku")))
    (line,) = summary.prefixes
    assert (line.model, line.requests, line.read, line.written) == ("claude-haiku-5-5", 3, 0, 0)
    assert 600 < line.tokens < 2048
    assert line.uncached == 3 * line.tokens and line.uncached_share == 1.0
    assert line.warning == (
        f"generate.system ({line.sha256[:8]}) on claude-haiku-5-5 never hit the cache: "
        f"{line.tokens:,} tokens is below the model's 2,048-token minimum"
    )


def test_a_prefix_used_once_cannot_hit(lab: Lab) -> None:
    summary = summarize(lab.store, lab.run(_suite(lab, "s", "sonnet", CASES[:1])))
    (line,) = summary.prefixes
    assert (line.requests, line.read, line.written) == (1, 0, line.tokens)
    assert line.warning is not None and line.warning.endswith(
        "never hit the cache: only one request used it"
    )


def test_a_prefix_every_request_wrote_and_none_read_is_a_question_for_the_user(
    tmp_path: Path,
) -> None:
    with open_lab(tmp_path, batch_cache_hit_rate=0.0) as lab:  # no item reads its batch's writes
        summary = summarize(lab.store, lab.run(_suite(lab, "s", "sonnet")))
    (line,) = summary.prefixes
    assert (line.requests, line.read, line.written) == (3, 0, 3 * line.tokens)
    assert line.warning is not None and line.warning.endswith(
        "never hit the cache across 3 requests: does the prefix change per case, or did every "
        "request start before the first write finished (try cache.warm)?"
    )


def test_a_prefix_that_hit_has_no_warning_and_its_shares_add_up(lab: Lab) -> None:
    summary = summarize(lab.store, lab.run(_suite(lab, "s", "sonnet")))
    (line,) = summary.prefixes
    assert (line.read, line.written, line.uncached) == (2 * line.tokens, line.tokens, 0)
    assert line.warning is None
    assert (line.read_share, line.written_share) == pytest.approx((2 / 3, 1 / 3))
    (cost,) = [c for c in summary.costs if c.step == "generate"]
    assert cost.cache_read_tokens == 2 * line.tokens and cost.cache_write_tokens == line.tokens
    data = summary.to_dict()
    assert data["prefixes"][0]["read_share"] == pytest.approx(2 / 3)
    assert data["prefixes"][0]["written_share"] == pytest.approx(1 / 3)
    assert data["prefixes"][0]["uncached_share"] == 0.0
    assert data["costs"][0]["cache_read_share"] == pytest.approx(cost.cache_read_share)
    assert 0 < cost.cache_read_share < 1


def test_with_the_cache_off_a_prefix_is_never_warned_about(lab: Lab) -> None:
    summary = summarize(lab.store, lab.run(_suite(lab, "s", "haiku", cache="off")))
    (line,) = summary.prefixes
    assert line.read == 0 and line.warning is None


def test_warming_states_its_cost_and_break_even(lab: Lab) -> None:
    suite = _suite(lab, "s", "sonnet", cache={"mode": "auto", "warm": True})
    summary = summarize(lab.store, lab.run(suite))
    warming = summary.warming
    assert warming is not None
    assert warming.requests == 1 and warming.writes_after_warming == 0
    (warm,) = [c for c in summary.costs if c.step == "warm"]
    assert warm.mode == "sync" and warming.cost == pytest.approx(warm.cost)
    (line,) = summary.prefixes
    # each write warming spares saves (write 1h - read) at the batch rate: (4.00 - 0.10) / 2 per M
    spared = line.tokens * (4.0 - 0.10) / 1e6 * 0.5
    assert warming.break_even_writes_per_prefix == pytest.approx(warming.cost / spared)
    assert 2.0 < warming.break_even_writes_per_prefix < 2.2
    assert summarize(lab.store, lab.run(_suite(lab, "t", "sonnet"))).warming is None


def test_routes_carry_their_own_cost_and_pass_rate(lab: Lab) -> None:
    cases = [{**c, "difficulty": "hard" if c["id"] == "c2" else "easy"} for c in CASES]
    cases[1]["target"] = "not in the answer"
    routing = {"easy": "haiku", "hard": "sonnet", "default": "haiku"}
    suite = write_suite(
        lab.root / "s",
        cases,
        generate={"prompt": "{{ input }}", "max_tokens": 64, "model": "route"},
        routing=routing,
    )
    run_id = lab.create(suite, api_key="sk-not-for-reports")
    lab.drive(run_id)
    summary = summarize(lab.store, run_id)
    assert summary.routed
    routes = {(r.route, r.model): r for r in summary.routes}
    easy, hard = (
        routes[("difficulty=easy", "claude-haiku-5-5")],
        routes[("difficulty=hard", "claude-sonnet-5-5")],
    )
    assert (easy.requests, easy.cases_scored, easy.cases_passed, easy.pass_rate) == (2, 2, 1, 0.5)
    assert (hard.requests, hard.cases_scored, hard.cases_passed, hard.pass_rate) == (1, 1, 1, 1.0)
    assert 0 < easy.cost < easy.naive_cost and 0 < hard.cost < hard.naive_cost
    data = summary.to_dict()
    assert sorted(r["pass_rate"] for r in data["routes"]) == [0.5, 1.0]
    assert data["pass_rate"] == pytest.approx(2 / 3)
    assert data["graders"][0]["pass_rate"] == pytest.approx(2 / 3)
    assert data["gate"] == {}
    assert set(data["totals"]) == {
        "cost",
        "sync_cost",
        "nocache_cost",
        "norouting_cost",
        "naive_cost",
    }
    assert data["totals"]["naive_cost"] == pytest.approx(summary.total("naive_cost"))
    assert "api_key" not in summary.run.options and summary.run.options["retries"] == 2
    assert (summary.run.cases, summary.run.status, summary.run.mode) == (3, "done", "batch")
    single = summarize(lab.store, lab.run(_suite(lab, "t", "haiku", cache="off")))
    assert not single.routed


def test_scoring_pages_through_every_case(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scoring, "_PAGE", 2)  # 5 cases: pages of 2, 2 and 1
    cases = [{"id": f"c{i}", "input": f"question {i}", "target": "question"} for i in range(5)]
    run_id = lab.run(write_suite(lab.root / "s", cases, epochs=2))
    assert len(lab.store.scores.of_run(run_id)) == 10
    summary = summarize(lab.store, run_id)
    assert (summary.cases_scored, summary.cases_passed) == (10, 10)


def test_a_pairwise_case_missing_from_the_baseline_is_a_grader_error(lab: Lab) -> None:
    base = lab.run(write_suite(lab.root / "v1", CASES[:2]))  # c2 did not exist yet
    pairwise = {"pairwise": {"model": "haiku", "baseline_run": base}}
    new = lab.run(write_suite(lab.root / "v2", CASES, grade=[pairwise]))
    errors = {e.case_id: e.error for e in summarize(lab.store, new).errors if e.step == "score"}
    assert errors["c2"] == "the baseline run has no output for this case"
    assert errors["c0"].startswith("unparseable verdict")  # the echo is no verdict: graded, though


def test_two_requests_that_never_read_are_not_called_a_single_use(tmp_path: Path) -> None:
    with open_lab(tmp_path, batch_cache_hit_rate=0.0) as lab:
        run_id = lab.run(_suite(lab, "s", "sonnet", CASES[:2]))
        (line,) = summarize(lab.store, run_id).prefixes
        assert line.warning is not None and "never hit the cache across 2 requests" in line.warning
        # a model whose minimum is exactly this prefix's size: the prefix is not below it
        catalog = lab.catalog
        info = catalog.models["claude-sonnet-5-5"]
        at_minimum = dataclasses.replace(
            catalog,
            models={
                **catalog.models,
                "claude-sonnet-5-5": dataclasses.replace(info, min_cache_tokens=line.tokens),
            },
        )
        (same,) = summarize(lab.store, run_id, at_minimum).prefixes
        assert same.warning == line.warning


def test_a_file_report_carries_the_summary_the_cases_and_the_suites_history(lab: Lab) -> None:
    first = lab.run(write_suite(lab.root / "a", CASES))
    lab.run(write_suite(lab.root / "b", CASES, name="another-suite"))
    second = lab.run(write_suite(lab.root / "a", CASES))
    report = run_report(lab.store, second)
    assert report.summary.run.id == second
    assert [row.case_id for row in report.rows] == ["c0", "c1", "c2"]
    assert [r.id for r in report.history] == [first, second]  # this suite's runs, oldest first
    assert [r.id for r in run_report(lab.store, second, history=1).history] == [second]


def test_warming_two_prefixes_averages_the_writes_it_spares(lab: Lab) -> None:
    rubric = {"rubric": {"model": "opus", "rubric": SYSTEM, "pass": ">= 4"}}  # a second prefix
    suite = _suite(lab, "s", "sonnet", grade=[rubric], cache={"mode": "auto", "warm": True})
    summary = summarize(lab.store, lab.run(suite))
    warming = summary.warming
    assert warming is not None and warming.requests == 2
    tokens = {line.model: line.tokens for line in summary.prefixes}
    # per spared write: (write 1h - read) at the batch rate; sonnet 4.00 - 0.10, opus 8.00 - 0.20
    spared = (tokens["claude-sonnet-5-5"] * 3.9 + tokens["claude-opus-5-5"] * 7.8) / 1e6 * 0.5
    per_prefix = spared / 2
    assert warming.break_even_writes_per_prefix == pytest.approx(warming.cost / per_prefix / 2)


def _cheap_passes_reference_fails(params: dict[str, Any]) -> str:
    """Generation echoes; the rubric passes every output on haiku, fails it on opus."""
    text = last_user_text(params)
    if "<output>" not in text:
        return "ok"
    score = 2 if "opus" in params["model"] else 5
    return json.dumps({"score": score, "reasoning": f"scored {score}"})


def test_a_reference_sampled_run_is_gated_on_the_references_estimate(tmp_path: Path) -> None:
    rubric = {
        "rubric": {
            "model": "haiku",
            "rubric": "Is it ok?",
            "pass": ">= 4",
            "reference": {"model": "opus", "sample": 1.0},
        }
    }
    with open_lab(tmp_path, _cheap_passes_reference_fails) as lab:
        suite = write_suite(lab.root / "s", CASES, grade=[rubric], gate={"min_pass_rate": 0.5})
        summary = summarize(lab.store, lab.run(suite))
    assert (summary.cases_scored, summary.cases_passed) == (3, 3)  # the cheap grader: 100%
    (line,) = summary.references
    assert (line.grader, line.labeled, line.cheap_rate, line.reference_rate) == (
        "rubric",
        3,
        1.0,
        0.0,
    )
    estimate = summary.reference_pass
    assert estimate is not None and (estimate.estimate, estimate.labeled) == (0.0, 3)
    # The gate takes what the reference would have said, and says so.
    assert summary.gate == MinPassRate(0.5, 0.0, True, estimated=True)
    assert summary.warnings == [
        "rubric: only 3 reference verdicts: the estimate's interval is a normal approximation "
        "and too narrow this small (raise reference.sample)"
    ]


def test_without_a_reference_the_gate_is_the_runs_own_pass_rate(lab: Lab) -> None:
    suite = write_suite(lab.root / "s", CASES, gate={"min_pass_rate": 0.5})
    summary = summarize(lab.store, lab.run(suite))
    assert summary.gate == MinPassRate(0.5, 1.0, False, estimated=False)
    assert (summary.references, summary.reference_pass) == ([], None)


def test_an_unisolated_code_grader_is_warned_about_in_the_summary(lab: Lab) -> None:
    code = {"code": {"tests": "assert True", "entry_point": "f", "isolation": "none"}}
    summary = summarize(lab.store, lab.run(write_suite(lab.root / "s", CASES, grade=[code])))
    assert summary.warnings == [
        "grader 'code' runs model-written code UNISOLATED (isolation: none): it can read your "
        "files and environment and reach the network"
    ]


def test_a_regrades_summary_names_the_run_whose_outputs_it_graded(lab: Lab) -> None:
    source = lab.run(write_suite(lab.root / "s", CASES))
    graders = ["grade=[{regex: 'question'}]"]
    regrade = create_regrade(lab.store, plan_regrade(lab.store, source, overrides=graders), {})
    lab.drive(regrade)
    assert summarize(lab.store, regrade).run.generations_from == source
    assert summarize(lab.store, source).run.generations_from is None


def test_a_report_shows_the_suites_last_30_runs(lab: Lab) -> None:
    suite = write_suite(lab.root / "s", CASES)
    runs = [lab.create(suite) for _ in range(31)]
    assert [r.id for r in run_report(lab.store, runs[-1]).history] == runs[1:]

"""`compare` and the gate on real runs (in process, against the sandbox): which verdict a person
gets, with Benjamini-Hochberg applied as soon as two graders are compared, the regressed
cases with both outputs, flaky cases apart, cases and graders that are not shared left out,
and the gate failing exactly when the run regressed or missed its pass rate."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evalbatch.analysis.compare import compare_runs
from evalbatch.analysis.gate import check_gate
from evalbatch.analysis.summary import summarize
from evalbatch.errors import InputError
from evalbatch.report.wording import scope_notes
from evalbatch.run.regrade import create_regrade, plan_regrade
from evalbatch.sandbox.prompts import last_user_text

from .lab import Lab, lab_in, open_lab, write_suite

CASES = [{"id": f"c{i}", "input": f"question {i}", "target": "ok"} for i in range(8)]
CONTAINS = {"contains": "{{ target }}"}
ANYTHING = {"regex": ".+"}  # passes every answer: this grader never moves
RUBRIC = {"rubric": {"model": "haiku", "rubric": "Is it ok?", "pass": ">= 4"}}


class Answers:
    """The model: "ok" unless told that a prompt gets "no"; flaky prompts alternate."""

    def __init__(self) -> None:
        self.wrong: set[str] = set()
        self.flaky: set[str] = set()
        self.calls: Counter[str] = Counter()
        self.garbled: set[str] = set()

    def __call__(self, params: dict[str, Any]) -> str:
        text = last_user_text(params)
        if "<output>\ngarble" in text:  # a grader answer that is no verdict: a grader error
            return "I cannot say."
        if "<output>" in text:  # the rubric grader: 5 for "ok", 2 otherwise
            score = 5 if "<output>\nok\n</output>" in text else 2
            return json.dumps({"score": score, "reasoning": f"scored {score}"})
        self.calls[text] += 1
        if text in self.wrong or (text in self.flaky and self.calls[text] % 2 == 0):
            return "no"
        return "garble" if text in self.garbled else "ok"


@pytest.fixture
def answers() -> Answers:
    return Answers()


@pytest.fixture
def lab(tmp_path: Path, answers: Answers) -> Iterator[Lab]:
    yield from lab_in(tmp_path, answers)


def _pair(
    lab: Lab, answers: Answers, wrong: range, grade: list[Any], **suite: Any
) -> tuple[str, str]:
    """A base run (every answer right) and a new run whose prompt change breaks ``wrong``."""
    base = lab.run(write_suite(lab.root / "v1", CASES, grade=grade, **suite))
    generate = {"prompt": "v2 {{ input }}", "max_tokens": 64, "model": "haiku"}
    answers.wrong = {f"v2 question {i}" for i in wrong}
    new = lab.run(write_suite(lab.root / "v2", CASES, grade=grade, generate=generate, **suite))
    assert lab.store.runs.status(base) == lab.store.runs.status(new) == "done"
    return base, new


def test_two_graders_are_bh_adjusted_and_a_lone_p_of_0_03_is_not_a_regression(
    lab: Lab, answers: Answers
) -> None:
    base, new = _pair(lab, answers, range(6), [CONTAINS, ANYTHING])
    cmp = compare_runs(lab.store, base, new)
    moved, steady = cmp.graders
    assert (moved.grader, moved.regressed, moved.fixed, moved.n) == ("contains", 6, 0, 8)
    assert moved.p_value == pytest.approx(2 * 0.5**6)  # exact McNemar: 0.03125
    assert moved.p_adjusted == pytest.approx(2 * 2 * 0.5**6)  # BH over two graders: 0.0625
    assert (steady.grader, steady.p_value, steady.p_adjusted) == ("regex", 1.0, 1.0)
    assert cmp.adjusted
    assert cmp.verdict == moved.verdict == "no significant change"
    assert cmp.verdict_line() == (
        f"no significant change: {new} vs {base} on 8 common cases (alpha 0.05, BH-adjusted)"
    )


def test_one_grader_is_not_adjusted_and_the_same_change_regresses(
    lab: Lab, answers: Answers
) -> None:
    base, new = _pair(lab, answers, range(6), [CONTAINS])
    cmp = compare_runs(lab.store, base, new)
    (grader,) = cmp.graders
    assert not cmp.adjusted
    assert grader.p_adjusted == grader.p_value == pytest.approx(0.03125)
    assert cmp.verdict == grader.verdict == "regressed"
    assert cmp.verdict_line() == f"regressed: {new} vs {base} on 8 common cases (alpha 0.05)"
    assert cmp.comparable and cmp.common_cases == 8
    assert [c.key for c in cmp.changes] == ["generate.prompt"]
    assert [(d.case_id, d.change, d.base_output, d.new_output) for d in cmp.cases] == [
        (f"c{i}", "regressed", "ok", "no") for i in range(6)
    ]
    first = cmp.cases[0]
    assert (first.epoch, first.grader, first.input, first.target) == (
        0,
        "contains",
        "question 0",
        "ok",
    )
    assert cmp.to_dict()["verdict"] == "regressed"
    # the other way round it is an improvement, with the same cases marked fixed
    back = compare_runs(lab.store, new, base)
    assert back.verdict == "improved"
    assert {d.change for d in back.cases} == {"fixed"}
    # --min-effect above the observed 6/8 drop: not a regression any more
    tolerant = compare_runs(lab.store, base, new, min_effect=0.8)
    assert tolerant.verdict == "no significant change"
    assert (tolerant.min_effect, tolerant.to_dict()["min_effect"]) == (0.8, 0.8)
    assert compare_runs(lab.store, base, new, alpha=0.01).verdict == "no significant change"


def test_the_gate_fails_on_a_regression_against_the_latest_run(lab: Lab, answers: Answers) -> None:
    base, new = _pair(lab, answers, range(6), [CONTAINS], gate={"no_regression": True})
    verdict = check_gate(lab.store, summarize(lab.store, new), None)
    assert verdict.failed
    assert verdict.baseline == base
    assert verdict.lines == [f"regressed: {new} vs {base} on 8 common cases (alpha 0.05)"]
    assert verdict.to_dict() == {
        "failed": True,
        "messages": verdict.lines,
        "baseline": base,
        "comparison_verdict": "regressed",
    }
    # the first run of the suite has nothing to compare with: it passes, and says so
    first = check_gate(lab.store, summarize(lab.store, base), None)
    assert (first.failed, first.baseline, first.comparison) == (False, None, None)
    assert first.lines == ["no comparable baseline run yet: regression check skipped"]


def test_the_gate_passes_when_bh_says_no_significant_change(lab: Lab, answers: Answers) -> None:
    base, new = _pair(lab, answers, range(6), [CONTAINS, ANYTHING])
    verdict = check_gate(lab.store, summarize(lab.store, new), base)  # `run --baseline BASE`
    assert not verdict.failed
    assert verdict.comparison is not None and verdict.comparison.verdict == "no significant change"


def test_without_no_regression_the_gate_compares_only_when_asked(
    lab: Lab, answers: Answers
) -> None:
    base, new = _pair(lab, answers, range(6), [CONTAINS])
    unasked = check_gate(lab.store, summarize(lab.store, new), None)
    assert (unasked.failed, unasked.lines, unasked.comparison) == (False, [], None)
    asked = check_gate(lab.store, summarize(lab.store, new), base)
    assert asked.failed and asked.baseline == base


def test_min_pass_rate_fails_the_gate_below_and_passes_at_it(lab: Lab, answers: Answers) -> None:
    base, new = _pair(lab, answers, range(2), [CONTAINS], gate={"min_pass_rate": 0.75})
    at = summarize(lab.store, new)  # 6 of 8 passed: exactly the minimum
    assert (at.cases_scored, at.cases_passed, at.pass_rate) == (8, 6, 0.75)
    assert at.gate is not None and (at.gate.pass_rate, at.gate.failed) == (0.75, False)
    assert not check_gate(lab.store, at, None).failed
    answers.wrong = {f"v2 question {i}" for i in range(3)}
    generate = {"prompt": "v2 {{ input }}", "max_tokens": 64, "model": "haiku"}
    suite = write_suite(
        lab.root / "v3", CASES, generate=generate, gate={"min_pass_rate": 0.75}, grade=[CONTAINS]
    )
    below = summarize(lab.store, lab.run(suite))  # 5 of 8
    assert below.gate is not None and (below.gate.pass_rate, below.gate.failed) == (0.625, True)
    assert below.gate_failed and check_gate(lab.store, below, None).failed
    assert summarize(lab.store, base).gate_failed is False


def test_a_rubric_compares_its_scores_as_numbers_too(lab: Lab, answers: Answers) -> None:
    base, new = _pair(lab, answers, range(6), [RUBRIC], epochs=2)  # a mean over epochs
    (grader,) = compare_runs(lab.store, base, new).graders
    assert (grader.type, grader.regressed, grader.verdict) == ("rubric", 6, "regressed")
    numeric = grader.numeric
    assert numeric is not None
    assert (numeric["n"], numeric["base_mean"], numeric["new_mean"]) == (8, 5.0, 2.75)
    assert numeric["mean_diff"] == pytest.approx(-2.25)
    assert numeric["test"] == "wilcoxon signed-rank"
    assert numeric["ci_high"] < 0  # every resample's mean is a drop
    diffs = compare_runs(lab.store, base, new).cases
    assert diffs[0].base_explanation == "scored 5" and diffs[0].new_explanation == "scored 2"


def test_pass_fail_graders_have_no_numeric_comparison(lab: Lab, answers: Answers) -> None:
    base, new = _pair(lab, answers, range(6), [CONTAINS])
    (grader,) = compare_runs(lab.store, base, new).graders
    assert grader.numeric is None


def test_flaky_cases_are_reported_apart_and_are_not_pairs(lab: Lab, answers: Answers) -> None:
    answers.flaky = {"v2 question 7"}
    base, new = _pair(lab, answers, range(1), [CONTAINS], epochs=2)
    cmp = compare_runs(lab.store, base, new)
    (grader,) = cmp.graders
    assert (grader.n, grader.regressed, grader.both_pass) == (7, 1, 6)  # c7 left out
    assert [(f.case_id, f.grader, f.base_passed, f.new_passed) for f in cmp.flaky] == [
        ("c7", "contains", "2/2", "1/2")
    ]
    assert [(d.case_id, d.epoch) for d in cmp.cases] == [("c0", 0)]


def test_only_shared_cases_and_graders_are_compared(lab: Lab, answers: Answers) -> None:
    base = lab.run(write_suite(lab.root / "v1", CASES, grade=[CONTAINS, ANYTHING]))
    changed = [
        *CASES[:6],
        {**CASES[6], "target": "other"},
        {"id": "c9", "input": "x", "target": "ok"},
    ]
    new = lab.run(write_suite(lab.root / "v2", changed, grade=[CONTAINS]))
    cmp = compare_runs(lab.store, base, new)
    assert (cmp.only_base, cmp.only_new, cmp.changed_cases) == (["c7"], ["c9"], ["c6"])
    assert cmp.common_cases == 6
    assert [g.grader for g in cmp.graders] == ["contains"] and cmp.skipped_graders == ["regex"]
    assert not cmp.comparable and not cmp.adjusted
    with pytest.raises(InputError) as strict:
        compare_runs(lab.store, base, new, strict=True)
    assert str(strict.value) == (
        "--strict: the runs differ in cases or graders (1 changed, 2 added/removed cases; "
        "graders not shared: regex)"
    )


@pytest.mark.parametrize(
    ("new_cases", "new_grade", "why"),
    [
        (CASES, [CONTAINS], "a grader"),
        ([*CASES[:7], {**CASES[7], "input": "changed"}], [CONTAINS, ANYTHING], "a changed case"),
        (CASES[:7], [CONTAINS, ANYTHING], "a removed case"),
    ],
)
def test_any_one_difference_makes_runs_not_comparable(
    lab: Lab, new_cases: list[dict[str, Any]], new_grade: list[Any], why: str
) -> None:
    base = lab.run(write_suite(lab.root / "v1", CASES, grade=[CONTAINS, ANYTHING]))
    same = lab.run(write_suite(lab.root / "v2", CASES, grade=[CONTAINS, ANYTHING]))
    assert compare_runs(lab.store, base, same).comparable
    assert compare_runs(lab.store, base, same, strict=True).comparable
    new = lab.run(write_suite(lab.root / "v3", new_cases, grade=new_grade))
    assert not compare_runs(lab.store, base, new).comparable, why
    with pytest.raises(
        InputError, match="graders not shared: " + ("regex" if why == "a grader" else "-")
    ):
        compare_runs(lab.store, base, new, strict=True)


def test_a_grader_without_an_explanation_shows_an_empty_one(lab: Lab, answers: Answers) -> None:
    for folder in ("v1", "v2"):
        (lab.root / folder).mkdir(parents=True, exist_ok=True)
        (lab.root / folder / "checks.py").write_text(
            "def ok(output, case):\n    return output == 'ok'\n"
        )
    base, new = _pair(lab, answers, range(1), [{"python": "checks.py:ok"}])
    (diff,) = compare_runs(lab.store, base, new).cases
    assert (diff.case_id, diff.base_explanation, diff.new_explanation) == ("c0", "", "")


def test_a_run_that_is_not_done_cannot_be_compared(lab: Lab) -> None:
    done = lab.run(write_suite(lab.root / "v1", CASES))
    open_run = lab.create(write_suite(lab.root / "v2", CASES))
    with pytest.raises(InputError, match=f"run {open_run} is generate, not done"):
        compare_runs(lab.store, done, open_run)


def test_each_side_is_described_as_compare_json_shows_it(lab: Lab, answers: Answers) -> None:
    base, new = _pair(lab, answers, range(6), [CONTAINS], epochs=2)
    cmp = compare_runs(lab.store, base, new)
    record = lab.store.runs.get(new)
    assert cmp.new == {
        "id": new,
        "suite": "lab",
        "mode": "batch",
        "status": "done",
        "manifest_hash": record.manifest_hash,
        "created_at": record.created_at,
        "epochs": 2,
        "generations_from": None,  # a regrade names the run whose outputs it graded
    }
    assert cmp.base["id"] == base and cmp.base["manifest_hash"] != record.manifest_hash


def test_a_grader_error_on_either_side_leaves_the_case_out_and_is_counted(
    lab: Lab, answers: Answers
) -> None:
    answers.garbled = {"v2 question 3", "v2 question 5"}  # the new run's rubric cannot judge
    base, new = _pair(lab, answers, range(2), [RUBRIC])
    (grader,) = compare_runs(lab.store, base, new).graders
    assert (grader.excluded_errors, grader.n, grader.regressed, grader.both_pass) == (2, 6, 2, 4)
    back = compare_runs(lab.store, new, base).graders[0]  # the errors are on the base side now
    assert (back.excluded_errors, back.n, back.fixed) == (2, 6, 2)


def test_a_case_flaky_in_the_base_run_is_left_out_too(lab: Lab, answers: Answers) -> None:
    answers.flaky = {"question 3"}  # the base run's prompt
    base, new = _pair(lab, answers, range(1), [CONTAINS], epochs=2)
    cmp = compare_runs(lab.store, base, new)
    assert [(f.case_id, f.base_passed, f.new_passed) for f in cmp.flaky] == [("c3", "1/2", "2/2")]
    (grader,) = cmp.graders
    assert (grader.n, grader.regressed, grader.both_pass) == (7, 1, 6)  # c4-c7 still counted


def test_an_explicit_baseline_is_compared_even_when_a_newer_run_exists(
    lab: Lab, answers: Answers
) -> None:
    base, broken = _pair(lab, answers, range(6), [CONTAINS])
    generate = {"prompt": "v2 {{ input }}", "max_tokens": 64, "model": "haiku"}
    again = lab.run(write_suite(lab.root / "v3", CASES, grade=[CONTAINS], generate=generate))
    against_base = check_gate(lab.store, summarize(lab.store, again), base)
    assert (against_base.baseline, against_base.failed) == (base, True)
    latest = check_gate(lab.store, summarize(lab.store, again), "latest")
    assert (latest.baseline, latest.failed) == (broken, False)  # as broken as the last one


def test_the_gate_uses_the_suites_alpha_and_min_effect(lab: Lab, answers: Answers) -> None:
    strict = {"no_regression": True, "alpha": 0.01}
    base, new = _pair(lab, answers, range(6), [CONTAINS], gate=strict)
    verdict = check_gate(lab.store, summarize(lab.store, new), None)
    assert not verdict.failed  # p = 0.031 is not below 0.01
    assert verdict.lines == [
        f"no significant change: {new} vs {base} on 8 common cases (alpha 0.01)"
    ]
    tolerant = {"no_regression": True, "min_effect": 0.8}
    generate = {"prompt": "v2 {{ input }}", "max_tokens": 64, "model": "haiku"}
    third = lab.run(
        write_suite(lab.root / "v3", CASES, grade=[CONTAINS], gate=tolerant, generate=generate)
    )
    assert not check_gate(lab.store, summarize(lab.store, third), base).failed  # a 75% drop < 0.8


def test_a_regrade_is_compared_as_grading_the_same_outputs(lab: Lab, answers: Answers) -> None:
    _, source = _pair(lab, answers, range(2), [CONTAINS])
    graders = ["grade=[{contains: '{{ target }}'}, {regex: 'k'}]"]
    regrade = create_regrade(lab.store, plan_regrade(lab.store, source, overrides=graders), {})
    assert lab.drive(regrade) == "done"
    cmp = compare_runs(lab.store, source, regrade)
    assert (cmp.base["generations_from"], cmp.new["generations_from"]) == (None, source)
    (contains,) = cmp.graders  # the same outputs, the same grader: nothing moved
    assert (contains.n, contains.both_fail, contains.regressed, cmp.cases) == (8, 2, 0, [])
    assert scope_notes(cmp) == [
        f"{regrade} grades the generations of {source}: the outputs are identical, only the "
        "graders differ",
        "graders not in both runs (not compared): regex",
    ]


def test_the_strict_refusal_names_every_grader_not_shared(lab: Lab) -> None:
    base = lab.run(write_suite(lab.root / "v1", CASES, grade=[CONTAINS, ANYTHING, RUBRIC]))
    new = lab.run(write_suite(lab.root / "v2", CASES, grade=[CONTAINS]))
    with pytest.raises(InputError) as strict:
        compare_runs(lab.store, base, new, strict=True)
    assert str(strict.value).endswith("graders not shared: regex, rubric)")


class ReferenceAnswers(Answers):
    """The reference model (opus) passes every output the cheap rubric (haiku) fails, and fails
    c6's, which the cheap rubric passes."""

    def __call__(self, params: dict[str, Any]) -> str:
        text = last_user_text(params)
        if "<output>" in text and "opus" in params["model"]:
            score = 2 if "<input>\nquestion 6\n</input>" in text else 5
            return json.dumps({"score": score, "reasoning": f"scored {score} by the reference"})
        return super().__call__(params)


def test_a_reference_sampled_grader_is_compared_on_the_references_estimate(
    tmp_path: Path,
) -> None:
    answers = ReferenceAnswers()
    rubric = {"rubric": {**RUBRIC["rubric"], "reference": {"model": "opus", "sample": 0.5}}}
    with open_lab(tmp_path, answers) as lab:
        base, new = _pair(lab, answers, range(6), [rubric])
        (grader,) = compare_runs(lab.store, base, new).graders
    # The cheap grader sees 6 of 8 regress; the reference fails c6 in both runs and passes the
    # rest, so its estimated rates stay at 75% and the verdict is no change.
    assert (grader.regressed, grader.n) == (6, 8)
    assert (grader.base_rate, grader.new_rate, grader.diff) == (0.75, 0.75, 0.0)
    assert (grader.ci_low, grader.ci_high, grader.p_value) == (0.0, 0.0, 1.0)
    assert grader.verdict == "no significant change"
    assert grader.reference == {
        "estimate": "ppi",
        "labeled_pairs": 4,
        "pairs": 8,
        "grader": {
            "base_rate": 1.0,
            "new_rate": 0.25,
            "diff": -0.75,
            "ci_low": pytest.approx(-0.9285, abs=1e-4),
            "ci_high": pytest.approx(-0.2795, abs=1e-4),
            "p_value": 0.03125,
        },
    }


def test_a_case_scored_on_one_side_only_is_left_out_of_the_numeric_comparison(
    lab: Lab, answers: Answers
) -> None:
    checks = (
        "def graded(output, case):\n"
        "    # a score only when the answer is right; a wrong one just fails\n"
        "    return {'pass': True, 'score': 0.75} if output == 'ok' else {'pass': False}\n"
    )
    for folder in ("v1", "v2"):
        (lab.root / folder).mkdir(parents=True, exist_ok=True)
        (lab.root / folder / "checks.py").write_text(checks)
    base, new = _pair(lab, answers, range(1), [{"python": "checks.py:graded"}])
    (grader,) = compare_runs(lab.store, base, new).graders
    assert (grader.n, grader.regressed) == (8, 1)
    assert grader.numeric is not None
    assert (grader.numeric["n"], grader.numeric["mean_diff"]) == (7, 0.0)  # c0 has no new score

"""The pieces of calibration that need no provider: stratified sampling, the trust verdict and
"how many more samples would decide", non-inferiority's routing block, and `--set` on graders."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evalbatch.analysis.calibrate_generate import RouteResult, routing_block
from evalbatch.analysis.calibrate_grade import (
    Criterion,
    bias_criterion,
    decide,
    kappa_criterion,
)
from evalbatch.errors import SuiteError
from evalbatch.plan.sampling import allocate, stratified_sample
from evalbatch.suite.grade_overrides import graders_from_file, on_model, override_grade
from evalbatch.suite.load import load_suite


@given(
    st.dictionaries(st.sampled_from("abcdefg"), st.integers(0, 300), min_size=1),
    st.integers(0, 2000),
)
def test_allocation_sums_to_the_sample_and_never_exceeds_a_stratum(sizes, total):
    out = allocate(sizes, total)
    assert sum(out.values()) == min(total, sum(sizes.values()))
    assert all(0 <= out[k] <= sizes[k] for k in sizes)


def test_allocation_is_proportional_with_one_for_small_strata():
    assert allocate({"a": 600, "b": 300, "c": 100}, 100) == {"a": 60, "b": 30, "c": 10}
    assert allocate({"a": 990, "b": 10}, 50)["b"] == 1  # its share (0.5) rounds to one
    assert allocate({"a": 5, "b": 5}, 100) == {"a": 5, "b": 5}


def test_the_sample_is_seeded_stratified_and_in_the_units_order():
    units = [
        (i, f"{'pass' if i % 3 else 'fail'}|{'easy' if i < 700 else 'hard'}") for i in range(1000)
    ]
    a, b = stratified_sample(units, 200, seed=4), stratified_sample(units, 200, seed=4)
    assert a.units == b.units and a.units == sorted(a.units) and len(a.units) == 200
    assert a.units != stratified_sample(units, 200, seed=5).units
    assert a.strata["fail|easy"] == (47, 234) and not a.whole
    whole = stratified_sample(units, 5000, seed=0)
    assert whole.whole and whole.units == list(range(1000))


def test_trustworthy_not_trustworthy_and_inconclusive():
    good = [
        kappa_criterion(0.95, 0.93, 0.97, 1000, 0.9),
        bias_criterion(0.0, -0.01, 0.01, 1000, 0.02),
    ]
    assert decide(good, 1000) == ("trustworthy", None)
    assert decide([kappa_criterion(0.85, 0.82, 0.88, 1000, 0.9), *good[1:]], 1000)[0] == (
        "not trustworthy"
    )
    assert decide([bias_criterion(-0.05, -0.07, -0.03, 1000, 0.02)], 1000)[0] == "not trustworthy"


def test_inconclusive_projects_the_sample_that_would_decide():
    # kappa 0.92 +- 0.04 at n=400 against 0.9: the half-width must shrink to 0.02, so n * 4.
    k = kappa_criterion(0.92, 0.88, 0.96, 400, 0.9)
    assert k.passed is None and k.toward_pass and k.needed == pytest.approx(1600)
    b = bias_criterion(0.0, -0.01, 0.01, 400, 0.02)
    assert decide([k, b], 400) == ("inconclusive", 1600)
    # Failing sides decide first: the smallest n that shows one criterion fails.
    f = kappa_criterion(0.88, 0.84, 0.92, 400, 0.9)
    assert not f.toward_pass and decide([f, k], 400) == ("inconclusive", 1600)
    assert decide([Criterion(None, None, True)], 400) == ("inconclusive", None)


def test_routing_block_keeps_the_suite_and_changes_only_the_recommended_routes(tmp_path: Path):
    (tmp_path / "cases.jsonl").write_text('{"id": "a", "input": "x", "difficulty": "easy"}\n')
    (tmp_path / "s.yaml").write_text(
        "name: s\ncases: cases.jsonl\ngenerate: {prompt: '{{ input }}', model: route}\n"
        "routing:\n  easy: sonnet\n  hard: opus\n  default: sonnet\n  rules:\n"
        "    - {when: \"tags contains 'x'\", model: opus}\n"
    )
    suite = load_suite(tmp_path / "s.yaml")
    routes = [
        RouteResult("difficulty=easy", "claude-sonnet-5-5", "sonnet", 10, 10, 1.0, [], "haiku"),
        RouteResult(
            "rule 1: tags contains 'x'", "claude-opus-5-5", "opus", 5, 5, 1.0, [], "sonnet"
        ),
        RouteResult("default", "claude-sonnet-5-5", "sonnet", 5, 5, 1.0, [], "claude-sonnet-5-5"),
    ]
    assert routing_block(suite, routes) == (
        "routing:\n  easy: haiku\n  hard: opus\n  default: sonnet\n  rules:\n"
        "  - when: tags contains 'x'\n    model: sonnet\n"
    )


@pytest.fixture
def suite(tmp_path: Path):
    (tmp_path / "cases.jsonl").write_text('{"id": "a", "input": "x", "target": "y"}\n')
    (tmp_path / "s.yaml").write_text(
        "name: s\ncases: cases.jsonl\ngenerate: {prompt: '{{ input }}', model: haiku}\n"
        "grade:\n  - contains: '{{ target }}'\n  - rubric: {model: opus, rubric: Be fair., pass: '>= 4'}\n"
    )
    return load_suite(tmp_path / "s.yaml")


def test_set_changes_graders_by_name(suite):
    changed = override_grade(
        suite,
        ["grade.rubric.model=haiku", "grade.rubric.reference={model: opus, sample: 0.1}",
         "gate.min_pass_rate=0.5"],
    )  # fmt: skip
    rubric = changed.grade[1]
    assert rubric.params["model"] == "haiku" and rubric.params["reference"]["sample"] == 0.1
    assert changed.gate.min_pass_rate == 0.5
    replaced = override_grade(suite, ["grade=[{exact: '{{ target }}'}]"])
    assert [(g.type, g.name) for g in replaced.grade] == [("exact", "exact")]


@pytest.mark.parametrize(
    "item,message",
    [
        ("generate.model=opus", "a regrade changes only graders and the gate"),
        ("grade.nope.model=x", "no grader named 'nope'"),
        ("grade.contains.value=x", "written as a single value"),
        ("grade.rubric.model=gpt-9", "unknown model 'gpt-9'"),
        ("grade.rubric.reference={model: opus}", "reference: {model: opus, sample: 0.1}"),
        ("gate.min_pass_rate=3", "gate:"),
    ],
)
def test_set_errors_name_the_flag(suite, item, message):
    with pytest.raises(SuiteError, match=message.replace("{", r"\{").replace("}", r"\}")):
        override_grade(suite, [item])


def test_a_graders_file_and_a_grader_on_another_model(suite, tmp_path: Path):
    path = tmp_path / "graders.yaml"
    path.write_text(
        "grade:\n  - rubric: {model: sonnet, rubric: Be kind.}\ngate: {min_pass_rate: 0.7}\n"
    )
    changed = graders_from_file(suite, path)
    assert [g.params["model"] for g in changed.grade] == ["sonnet"]
    assert changed.gate.min_pass_rate == 0.7
    path.write_text("grade:\n  - rubrik: {}\n")
    with pytest.raises(SuiteError, match="graders.yaml:2: unknown grader type 'rubrik'"):
        graders_from_file(suite, path)
    entry = on_model(
        override_grade(suite, ["grade.rubric.reference={model: opus, sample: 0.5}"]).grade[1],
        "haiku",
        "rubric@haiku",
    )
    assert entry == {
        "name": "rubric@haiku",
        "rubric": {"model": "haiku", "rubric": "Be fair.", "pass": ">= 4"},
    }

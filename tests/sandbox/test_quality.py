"""The `quality:PROFILE` responder through the official SDK, sync and batch: answer and verdict
accuracy at the profile's rates, determinism, wrong answers, unmatched prompts."""

from __future__ import annotations

import math
from pathlib import Path

import anthropic
import pytest
import yaml

from evalbatch.catalog import load_catalog
from evalbatch.graders.rubric import RubricGrader
from evalbatch.records import Case

from .quality_cases import make_cases, write_profile
from .sdk import run_batch

ALIASES = ("haiku", "sonnet", "opus")
HAIKU, SONNET, OPUS = (load_catalog().resolve(a) for a in ALIASES)
SHORT = dict(zip((HAIKU, SONNET, OPUS), ALIASES, strict=True))
SYSTEM = "You are a support agent. Reply with the code word only."


def _generation(case: dict, model: str) -> dict:
    """A batch item whose prompt wraps the case's input, as a suite's prompt template does."""
    params = {
        "model": model,
        "max_tokens": 50,
        "system": SYSTEM,
        "messages": [{"role": "user", "content": f"Customer: {case['input']}\n\nCode word?"}],
    }
    return {"custom_id": f"{SHORT[model]}-{case['id']}", "params": params}


def _rubric_params(case: dict, output: str, model: str) -> dict:
    """The request evalbatch's rubric grader builds (its real builder, not a copy)."""
    grader = RubricGrader("judge", {"rubric": "Is the output the reference code word?"}, Path("."))
    record = Case(id=case["id"], input=case["input"], target=case["target"])
    return grader.build_request(output, record, model, "1h")


def _within(observed: int, n: int, p: float) -> bool:
    """Within 4 binomial standard deviations (exact when p is 0 or 1)."""
    return abs(observed - n * p) <= 4 * math.sqrt(n * p * (1 - p))


@pytest.fixture
def quality(make_sandbox, new_client, tmp_path):
    """start(models, cases) -> (sandbox, SDK client, the cases), cases a list or a count."""

    def start(models: dict, cases: list[dict] | int = 500, seed: int = 0, **options: object):
        cases = make_cases(cases) if isinstance(cases, int) else cases
        profile = write_profile(tmp_path, models, cases, **options)
        sb = make_sandbox(responder=f"quality:{profile}", seed=seed)
        return sb, new_client(sb.base_url, max_retries=0), cases

    return start


def test_answers_are_right_at_each_model_and_difficulty_rate(quality) -> None:
    haiku_rates = {"easy": 0.7, "medium": 0.4, "hard": 0.1}
    sb, client, cases = quality({"haiku": {"answer": haiku_rates}, "opus": {"answer": 1.0}})
    requests = [_generation(c, m) for c in cases for m in (HAIKU, OPUS)]
    results = run_batch(client, requests)
    reply = {cid: r.message.content[0].text for cid, r in results.items()}
    for model, rates in ((HAIKU, haiku_rates), (OPUS, dict.fromkeys(haiku_rates, 1.0))):
        for difficulty, rate in rates.items():
            group = [c for c in cases if c["difficulty"] == difficulty]
            right = sum(reply[f"{SHORT[model]}-{c['id']}"] == c["target"] for c in group)
            assert _within(right, len(group), rate), (model, difficulty, right, len(group))
    # haiku over all 500 cases (60/30/10 easy/medium/hard): 0.6*0.7 + 0.3*0.4 + 0.1*0.1 = 0.55
    right = sum(reply[f"haiku-{c['id']}"] == c["target"] for c in cases)
    assert _within(right, 500, 0.55), right
    wrong = [
        (reply[f"{SHORT[m]}-{c['id']}"], c["target"])
        for c in cases
        for m in (HAIKU, OPUS)
        if reply[f"{SHORT[m]}-{c['id']}"] != c["target"]
    ]
    assert wrong and all(target.lower() not in text.lower() for text, target in wrong)
    stats = sb.stats()
    assert stats["quality_wrong_answers"] == len(wrong)
    assert stats["quality_right_answers"] == 1000 - len(wrong)
    assert "quality_unmatched" not in stats


def test_verdicts_match_the_truth_at_each_model_rate(quality) -> None:
    sb, client, cases = quality({"opus": {"verdict": 0.97}, "haiku": {"verdict": 0.8}}, 1000)
    outputs = {}  # custom_id -> (case, output, truth, model)
    for i, case in enumerate(cases):
        wrong = cases[(i + 1) % len(cases)]["target"]
        for model in (OPUS, HAIKU):
            outputs[f"{SHORT[model]}-r-{case['id']}"] = (case, case["target"], True, model)
            outputs[f"{SHORT[model]}-w-{case['id']}"] = (case, wrong, False, model)
    requests = [
        {"custom_id": cid, "params": _rubric_params(case, output, model)}
        for cid, (case, output, _, model) in outputs.items()
    ]
    results = run_batch(client, requests)
    grader = RubricGrader("judge", {"rubric": "-"}, Path("."))
    anyone = Case(id="-", input="-")  # the rubric verdict parser does not look at the case
    for model, rate in ((OPUS, 0.97), (HAIKU, 0.8)):
        verdicts = [
            (grader.parse_verdict(results[cid].message.content[0].text, anyone), truth)
            for cid, (_, _, truth, m) in outputs.items()
            if m == model
        ]
        assert len(verdicts) == 2000 and all(score.error is None for score, _ in verdicts)
        assert {score.value for score, _ in verdicts} == {1.0, 5.0}
        agree = sum(score.passed == truth for score, truth in verdicts)
        assert _within(agree, 2000, rate), (model, agree)
    stats = sb.stats()
    assert stats["quality_right_verdicts"] + stats["quality_wrong_verdicts"] == 4000


def test_same_request_same_reply_in_sync_in_batch_and_after_a_restart(quality) -> None:
    models = {"haiku": {"answer": 0.5, "verdict": 0.5}}
    _, client, cases = quality(models, cases=30, seed=11)
    params = [_generation(c, HAIKU)["params"] for c in cases]
    params += [_rubric_params(c, c["target"], HAIKU) for c in cases]
    params += [_rubric_params(c, "meadow-99999", HAIKU) for c in cases]

    def sync(c: anthropic.Anthropic) -> list[str]:
        return [c.messages.create(**p).content[0].text for p in params]

    first = sync(client)
    assert sync(client) == first
    batch = run_batch(client, [{"custom_id": f"r{i}", "params": p} for i, p in enumerate(params)])
    assert [batch[f"r{i}"].message.content[0].text for i in range(len(params))] == first
    _, again, _ = quality(models, cases=30, seed=11)
    assert sync(again) == first
    _, reseeded, _ = quality(models, cases=30, seed=12)
    assert sync(reseeded) != first
    assert len(set(first[:30])) > 1  # a mix of right and wrong answers, not one fixed reply


def test_wrong_answers_never_contain_the_target_even_when_every_other_target_does(
    quality,
) -> None:
    # Every other target contains "a" (and so does "I am not sure."): the reply must be empty.
    cases = [
        {"id": "short", "input": "Say the first letter.", "target": "a"},
        {"id": "mid", "input": "Say the first two letters.", "target": "ab"},
        {"id": "long", "input": "Say the first three letters.", "target": "abc"},
        {"id": "sure", "input": "Are you sure?", "target": "I am sure"},
    ]
    _, client, _ = quality({"sonnet": {"answer": 0.0}}, cases=cases)
    replies = {
        c["id"]: client.messages.create(**_generation(c, SONNET)["params"]).content[0].text
        for c in cases
    }
    assert replies["short"] == ""
    for case in cases:
        assert case["target"].lower() not in replies[case["id"]].lower()
    assert replies["sure"] in ("a", "ab", "abc")  # another case's target is the usual wrong answer


def test_the_longest_input_in_the_prompt_wins_and_a_template_is_a_fast_path(quality) -> None:
    cases = [
        {"id": "inner", "input": "2 + 2", "target": "four"},
        {"id": "outer", "input": "What is 2 + 2?", "target": "FOUR!"},
        {"id": "other", "input": "What is 3 + 3?", "target": "six"},
    ]

    def reply(client: anthropic.Anthropic, prompt: str) -> str:
        params = {"model": OPUS, "max_tokens": 9, "messages": [{"role": "user", "content": prompt}]}
        return client.messages.create(**params).content[0].text

    _, plain, _ = quality({"opus": {"answer": 1.0}}, cases=cases)
    assert reply(plain, "Q: What is 2 + 2?\nA:") == "FOUR!"
    assert reply(plain, "Compute 2 + 2 please") == "four"
    assert reply(plain, "2 + 2") == "four"
    _, templated, _ = quality(
        {"opus": {"answer": 1.0}}, cases=cases, prompt_template="Q: {{ input }}"
    )
    assert reply(templated, "Q: What is 3 + 3?") == "six"
    assert reply(templated, "Compute 2 + 2 please") == "four"  # does not fit: searched


def test_unmatched_prompts_get_a_fixed_reply_and_are_counted(quality) -> None:
    sb, client, _ = quality({"opus": {"answer": 1.0}}, cases=20)
    user = [{"role": "user", "content": "Tell me a joke."}]
    joke = client.messages.create(model=OPUS, max_tokens=50, messages=user)
    assert joke.content[0].text.startswith("sandbox quality responder: no case")
    other_model = client.messages.create(model=HAIKU, max_tokens=50, messages=user)
    assert "claude-haiku-5-5 is not in the profile" in other_model.content[0].text
    pairwise = client.messages.create(
        model=OPUS, max_tokens=50, system="You compare two outputs, A and B.", messages=user
    )
    assert "pairwise" in pairwise.content[0].text
    assert sb.stats()["quality_unmatched"] == 3


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"cases": "missing.jsonl"}, "cases: cannot read"),
        ({"models": {"gpt-9": {"answer": 0.5}}}, "models.gpt-9: unknown model 'gpt-9'"),
        ({"models": {"haiku": {"answer": {"easy": 1.5}}}}, "models.haiku.answer.easy: 1.5 is not"),
        ({"models": {"haiku": {"verdict": -0.1}}}, "models.haiku.verdict: -0.1 is not"),
        ({"models": {"haiku": {"accuracy": 0.5}}}, "models.haiku: unknown key 'accuracy'"),
        ({"model": {}}, "unknown key 'model'"),
        ({"models": {"haiku": {"answer": {"eazy": 1}}}}, "answer.eazy: no case has difficulty"),
        ({"models": {"haiku": {"answer": {"easy": 1}}}}, "no probability for difficulty 'hard'"),
        ({"prompt_template": "Q: {{ question }}"}, "prompt_template: text with exactly one"),
        ({"truth": "fuzzy"}, "truth: 'fuzzy'"),
    ],
)
def test_a_bad_profile_is_a_one_line_error_naming_file_and_key(
    make_sandbox, tmp_path, change: dict, needle: str
) -> None:
    cases = [
        {"id": "1", "input": "easy one", "target": "x", "difficulty": "easy"},
        {"id": "2", "input": "hard one", "target": "y", "difficulty": "hard"},
    ]
    profile = write_profile(tmp_path, {"haiku": {"answer": 0.5}}, cases)
    data = {**yaml.safe_load(profile.read_text()), **change}
    profile.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError) as info:
        make_sandbox(responder=f"quality:{profile}")
    message = str(info.value)
    assert needle in message and str(profile) in message and "\n" not in message


def test_a_bad_case_file_names_its_line(make_sandbox, tmp_path) -> None:
    cases = [
        {"id": "1", "input": "same", "target": "x"},
        {"id": "2", "input": "same", "target": "y"},
    ]
    profile = write_profile(tmp_path, {"haiku": {}}, cases)
    with pytest.raises(ValueError, match=r"cases\.jsonl:2: case '2' has the same input"):
        make_sandbox(responder=f"quality:{profile}")

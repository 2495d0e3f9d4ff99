"""docs/sandbox.md shows the example quality profile and case file as they are in
tests/sandbox/data, and the replies it shows are the ones the sandbox gives."""

from __future__ import annotations

import re
from pathlib import Path

import orjson

from evalbatch.catalog import load_catalog

DATA = Path(__file__).parent / "data"
DOC = (Path(__file__).parents[2] / "docs" / "sandbox.md").read_text("utf-8")
SECTION = DOC[DOC.index("### `quality:PROFILE`") :]


def _block(language: str) -> str:
    match = re.search(rf"```{language}\n(.*?)```", SECTION, re.S)
    assert match, f"no {language} block in the quality section"
    return match.group(1)


def test_the_example_files_are_the_ones_in_the_docs() -> None:
    assert _block("yaml") == (DATA / "quality_profile.yaml").read_text("utf-8")
    assert _block("json") == (DATA / "quality_cases.jsonl").read_text("utf-8")


def test_the_example_replies_are_what_the_sandbox_says(make_sandbox, new_client) -> None:
    sb = make_sandbox(responder=f"quality:{DATA / 'quality_profile.yaml'}", seed=1)
    client = new_client(sb.base_url)
    lines = (DATA / "quality_cases.jsonl").read_bytes().splitlines()
    cases = [orjson.loads(line) for line in lines]
    table = SECTION[SECTION.index("<!-- quality-example -->") :].splitlines()[3:6]
    for row in table:
        alias, *shown = [cell.strip() for cell in row.strip("|").split("|")]
        model = load_catalog().resolve(alias)
        for case, cell in zip(cases, shown, strict=True):
            prompt = (
                f"Customer: {case['input']}\nAnswer with one word: refund, shipping or account."
            )
            reply = (
                client.messages.create(
                    model=model, max_tokens=20, messages=[{"role": "user", "content": prompt}]
                )
                .content[0]
                .text
            )
            wrong = " ✗" if reply != case["target"] else ""
            assert cell == reply + wrong, (alias, case["id"])

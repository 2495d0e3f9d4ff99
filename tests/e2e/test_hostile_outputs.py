"""A model output full of control characters and markup, through the CI formats: JUnit stays
well-formed XML with the characters shown, markdown keeps every output inside code. (The HTML
report and the viewer have their own browser tests.) On both stores: PostgreSQL's text cannot
hold NUL, so there the output is stored with U+FFFD in its place, and the run still completes."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest

from evalbatch.sandbox import SandboxConfig

from .conftest import run_cli
from .suites import write_suite

pytestmark = pytest.mark.both_stores

HOSTILE = (
    "\x1b[31mred\x1b[0m \x00nul\x07 <img src=x onerror=alert(1)> </details> "
    "| pipe | ``` fence ` tick [/red][bold]x <script>alert(2)</script>"
)


def _responder(params: dict) -> str:
    return HOSTILE


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return SandboxConfig(responder=_responder)


@pytest.fixture
def run_id(tmp_path, cli_env, sandbox) -> str:
    result = run_cli(["run", str(write_suite(tmp_path / "s")), "--json"], cli_env)
    assert result.code == 0, result.stderr
    return str(json.loads(result.stdout)["run"]["id"])


def test_junit_is_well_formed_and_shows_the_control_characters(run_id, cli_env, store_url):
    result = run_cli(["report", run_id, "--format", "junit"], cli_env)
    assert result.code == 0, result.stderr
    root = ET.fromstring(result.stdout.encode())
    failures = list(root.iter("failure"))
    assert len(failures) == 4  # the output never contains a capital's name
    text = failures[0].text or ""
    nul = "\\x00" if store_url.startswith("sqlite") else "\ufffd"
    assert "\\x1b[31mred" in text and f"{nul}nul\\x07" in text
    assert "<img src=x onerror=alert(1)>" in text  # kept, as XML text


def _outside_code(markdown: str) -> str:
    """The markdown with every code span and fenced block taken out."""
    without_blocks = re.sub(r"(`{3,})[^\n]*\n.*?\n\1", "", markdown, flags=re.S)
    return re.sub(r"(`+)(?!`).*?(?<!`)\1(?!`)", "", without_blocks)


def test_markdown_keeps_every_output_inside_code(run_id, cli_env):
    result = run_cli(["report", run_id, "--format", "markdown"], cli_env)
    assert result.code == 0, result.stderr
    outside = _outside_code(result.stdout)
    for dangerous in ("<img", "<script", "onerror", "\x1b", "\x00"):
        assert dangerous not in outside, outside
    assert outside.count("</details>") == outside.count("<details>") == 1  # ours only
    rows = [line for line in result.stdout.splitlines() if "red" in line and "| `" in line]
    assert rows and all(line.count(" | ") == 3 for line in rows)  # 4 cells: no pipe escaped

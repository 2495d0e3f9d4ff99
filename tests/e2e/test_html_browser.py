"""The HTML reports in a real browser: hostile model output stays text, the file is offline.

Two runs of one suite; in the second the prompt changed (and itself carries markup) and the
model answers three cases with script-injection attempts. `report --format html` and
`compare --format html` are opened in headless Chromium (Debian's, driven by playwright).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from evalbatch.sandbox import SandboxConfig, SandboxServer
from evalbatch.sandbox.responders import last_user_text

from .conftest import env_for, run_cli
from .suites import write_suite

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
HOSTILE = {
    "xss-script": "<script>window.__pwned=1</script>",
    "xss-img": '<img src=x onerror="window.__pwned=2">',
    "xss-svg": '"><svg onload=window.__pwned=3>',
    "xss-alert": "<script>alert('xss')</script>",
}
PLAIN = [f"plain-{i}" for i in range(1, 6)]
CASES = [{"id": cid, "input": f"case {cid}", "target": "ok"} for cid in [*PLAIN, *HOSTILE]]
PROMPT_MARKUP = "<script>window.__pwned=4</script>"
NEW_PROMPT = "{{ input }}\nv2 " + PROMPT_MARKUP


def _responder(params: dict[str, Any]) -> str:
    text = last_user_text(params)
    if "v2" in text:
        for case_id, payload in HOSTILE.items():
            if f"case {case_id}" in text:
                return payload
    return "ok, " + text.splitlines()[0]


@dataclass
class Runs:
    env: dict[str, str]
    root: Path
    base: str
    new: str
    files: dict[str, Path] = field(default_factory=dict)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    root = tmp_path_factory.mktemp("html")
    server = SandboxServer(SandboxConfig(responder=_responder, batch_latency=0.0))
    server.start()
    try:
        env = env_for(server.base_url, root / "home")
        ids = []
        for prompt in ("{{ input }}", NEW_PROMPT):
            suite = write_suite(
                root / "s", name="hostile", cases=CASES, generate={"prompt": prompt}
            )
            result = run_cli(["run", str(suite), "--json"], env)
            assert result.code == 0, result.stderr
            ids.append(json.loads(result.stdout)["run"]["id"])
        yield Runs(env, root, ids[0], ids[1])
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's chromium "
            "(apt-get install -y chromium, as .ci/run does)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Opened:
    page: Any
    url: str
    requests: list[str]
    dialogs: list[str]
    errors: list[str]


@pytest.fixture
def open_file(browser: Any) -> Iterator[Any]:
    contexts = []

    def open_(path: Path) -> Opened:
        context = browser.new_context(java_script_enabled=True)
        contexts.append(context)
        page = context.new_page()
        opened = Opened(page, path.resolve().as_uri(), [], [], [])
        page.on("request", lambda r: opened.requests.append(r.url))
        page.on("dialog", lambda d: (opened.dialogs.append(d.message), d.dismiss()))
        page.on("pageerror", lambda e: opened.errors.append(str(e)))
        page.goto(opened.url, wait_until="load")
        page.wait_for_timeout(200)  # let any injected handler (onerror, onload) fire
        return opened

    yield open_
    for context in contexts:
        context.close()


def _assert_inert(opened: Opened, scripts: int) -> None:
    page = opened.page
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert opened.dialogs == []
    assert opened.requests == [opened.url], opened.requests  # nothing but the file itself
    assert page.locator("script").count() == scripts  # only the report's own
    assert page.locator("body img, body svg[onload], [onerror], [onload]").count() == 0


def test_run_report_escapes_hostile_output_and_works_offline(runs, open_file):
    out = runs.root / "out.html"
    result = run_cli(["report", runs.new, "--format", "html", "-o", str(out)], runs.env)
    assert result.code == 0, result.stderr
    opened = open_file(out)
    page = opened.page
    _assert_inert(opened, scripts=1)
    assert opened.errors == []  # the report's own script ran cleanly

    table = page.locator("#cases")
    text = table.inner_text()
    for payload in HOSTILE.values():
        assert payload in text  # shown as text, exactly as the model wrote it
    rows = page.locator("#cases tr.case")
    assert rows.count() == len(CASES)
    xss_row = rows.filter(has_text="case xss-img")
    assert xss_row.locator("td.fail").count() == 1
    assert HOSTILE["xss-img"] in xss_row.inner_text()

    def visible() -> list[str]:
        return [
            r.locator("td").first.inner_text().splitlines()[0] for r in rows.all() if r.is_visible()
        ]

    assert len(visible()) == len(CASES)
    page.fill("#q", "xss-svg")
    assert visible() == ["xss-svg"]
    assert page.locator("#count").inner_text() == f"1 of {len(CASES)} shown"
    page.fill("#q", "plain")
    assert visible() == PLAIN
    page.fill("#q", "")
    page.select_option("#f", "fail")
    assert sorted(visible()) == sorted(HOSTILE)

    charts = page.locator('svg[aria-label="pass rate over runs"]')
    assert charts.count() == 1
    assert charts.locator("polyline").count() == 1  # two done runs: a line
    assert charts.locator("circle").count() == 2
    assert page.locator('svg[aria-label="cost breakdown"] rect').count() >= 1


def test_compare_report_escapes_hostile_output_and_prompt_diff(runs, open_file):
    out = runs.root / "cmp.html"
    result = run_cli(["compare", runs.base, runs.new, "--format", "html", "-o", str(out)], runs.env)
    # 4 of 9 regressed, none fixed: exact McNemar p = 2 * 0.5**4 = 0.125, so exit 0, not 1
    assert result.code == 0, result.stderr
    opened = open_file(out)
    page = opened.page
    _assert_inert(opened, scripts=0)

    body = page.locator("body").inner_text()
    assert "no significant change" in body and "0.125" in body  # the p-value, shown
    for case_id, payload in HOSTILE.items():
        assert f"regressed: {case_id}" in body
        assert payload in body
    assert "generate.prompt" in body
    added = [s.inner_text() for s in page.locator("pre span.add").all()]
    assert "+v2 " + PROMPT_MARKUP in added  # the prompt's own markup, shown in the diff
    assert page.locator("pre span.del").count() == 0  # nothing removed: "{{ input }}" is context

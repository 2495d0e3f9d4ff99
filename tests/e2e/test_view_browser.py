"""`evalbatch view` in a real browser (Debian's chromium, headless, through playwright):
runs -> a run -> its failed cases -> a case -> compare, by mouse and by keyboard, with and
without JavaScript. Hostile outputs, case ids and fields render as text: no script runs, no
dialog opens, nothing is requested from anywhere but the viewer, and the console stays clean.

Screenshots of the main pages go to $EVALBATCH_SCREENSHOTS (docs/img for the README:
``EVALBATCH_SCREENSHOTS=docs/img pytest tests/e2e/test_view_browser.py``), else a temp folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from evalbatch.view.server import ViewConfig, ViewServer

from ..view.fixtures import HOSTILE_OUTPUTS, ODD_IDS, ViewStore, build_view_store
from .test_html_browser import browser  # noqa: F401  (the module-scoped Debian chromium)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> ViewStore:
    return build_view_store(tmp_path_factory.mktemp("view-browser"))


@pytest.fixture(scope="module")
def base_url(store: ViewStore) -> Iterator[str]:
    with ViewServer(ViewConfig(db=store.url, port=0)) as server:
        yield server.base_url


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = os.environ.get("EVALBATCH_SCREENSHOTS")
    return Path(folder) if folder else tmp_path_factory.mktemp("shots")


@dataclass
class Watched:
    page: Any
    base: str
    requests: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        """Nothing ran, nothing left the server, nothing complained."""
        page = self.page
        assert page.evaluate("typeof window.__pwned") == "undefined"
        assert self.dialogs == []
        assert self.errors == []
        assert self.console == []
        outside = [u for u in self.requests if not u.startswith(self.base + "/")]
        assert outside == []
        assert (
            page.locator("body script, body style, body link, body img, body iframe").count() == 0
        )
        found = page.locator('[onerror], [onload], [onclick], [style]:not([style=""])')
        assert found.count() == 0, found.evaluate_all(
            "els => els.map(e => e.outerHTML.slice(0, 200))"
        )
        assert page.locator('a[href^="javascript:" i]').count() == 0
        assert page.evaluate("getComputedStyle(document.body).display") == "block"
        scripts = page.locator("script").evaluate_all("els => els.map(e => e.getAttribute('src'))")
        assert scripts == ["/static/view.js"]


@pytest.fixture
def watched(browser: Any, base_url: str) -> Iterator[Any]:  # noqa: F811
    contexts = []

    def open_(javascript: bool = True) -> Watched:
        context = browser.new_context(
            java_script_enabled=javascript, viewport={"width": 1360, "height": 900}
        )
        contexts.append(context)
        page = context.new_page()
        w = Watched(page, base_url)
        page.on("request", lambda r: w.requests.append(r.url))
        page.on("console", lambda m: w.console.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: w.errors.append(str(e)))
        page.on("dialog", lambda d: (w.dialogs.append(d.message), d.dismiss()))
        return w

    yield open_
    for context in contexts:
        context.close()


def test_runs_to_a_failed_case_to_compare(watched, base_url, store, shots):
    w = watched()
    page = w.page
    page.goto(base_url + "/")
    assert page.url == base_url + "/runs"
    charts = page.locator('svg[aria-label="pass rate over runs"]')
    assert charts.locator("circle").count() == 2  # finished runs; the live one is listed above
    assert charts.locator("circle.changed").count() == 1  # the prompt changed
    assert page.locator("tr.live-run").count() == 1
    page.screenshot(path=str(shots / "view-runs.png"), full_page=True)
    w.assert_clean()

    page.locator("#runs").get_by_role("link", name=store.new, exact=True).click()
    page.wait_for_url(f"**/runs/{store.new}")
    assert "cost $" in page.locator(".headline").inner_text()
    page.select_option("select[name=status]", "fail")  # applies on change
    page.wait_for_url("**status=fail**")
    rows = page.locator("#case-table tr.case")
    assert rows.count() == len(HOSTILE_OUTPUTS)
    assert page.locator("#case-table tr.case[data-status=fail]").count() == len(HOSTILE_OUTPUTS)
    table = page.locator("#case-table").inner_text()
    for payload in HOSTILE_OUTPUTS.values():
        assert payload in table  # shown exactly as the model wrote it
    page.screenshot(path=str(shots / "view-run.png"), full_page=True)
    w.assert_clean()

    # the keyboard: j/k (or arrows) move through the cases, Enter opens one
    links = page.locator("#case-table a.case-link")
    page.keyboard.press("j")
    assert page.evaluate("document.activeElement.textContent") == links.nth(0).inner_text()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("j")
    page.keyboard.press("k")
    second = links.nth(1).inner_text()
    assert page.evaluate("document.activeElement.textContent") == second
    page.keyboard.press("Enter")
    page.wait_for_url("**/cases/**")
    assert page.locator("h1 .case-id").inner_text() == second
    assert page.locator("pre.output").inner_text() == HOSTILE_OUTPUTS[second]
    assert "__pwned=8" in page.locator("#epoch-0").inner_text()  # the prompt's own markup
    page.screenshot(path=str(shots / "view-case.png"), full_page=True)
    w.assert_clean()

    page.goto(base_url + "/runs")
    page.check(f'input[name=base][value="{store.base}"]')
    page.check(f'input[name=new][value="{store.new}"]')
    page.click("#compare-button")
    page.wait_for_url(f"**/compare/{store.base}/{store.new}")
    regressed = page.locator("article.case-diff.regressed")
    assert regressed.count() == len(HOSTILE_OUTPUTS)
    shown = "\n".join(regressed.all_inner_texts())
    for payload in HOSTILE_OUTPUTS.values():
        assert payload in shown
    assert page.locator("pre.diff span.add").count() >= 1
    page.screenshot(path=str(shots / "view-compare.png"), full_page=True)
    w.assert_clean()


def test_every_odd_case_id_opens_its_own_page(watched, base_url, store):
    w = watched()
    page = w.page
    for case_id in [*ODD_IDS, *HOSTILE_OUTPUTS]:
        page.goto(f"{base_url}/runs/{store.new}?limit=500")
        link = page.locator("#case-table a.case-link").filter(has_text=case_id).first
        with page.expect_navigation():  # wait for the case page itself, not the old one
            link.evaluate("a => a.click()")  # the link the page holds, followed as it is
        assert page.locator("h1 .case-id").inner_text() == case_id
        assert page.locator("#case-input").inner_text() == f"case {case_id} </textarea><b>bold</b>"
    w.assert_clean()


def test_pages_work_without_javascript(watched, base_url, store):
    w = watched(javascript=False)
    page = w.page
    page.goto(f"{base_url}/runs/{store.new}?limit=5")
    page.select_option("select[name=status]", "pass")
    page.click("#filters button[type=submit]")
    page.wait_for_url("**status=pass**")
    assert page.locator("#case-table tr.case[data-status=pass]").count() == 5
    page.click(".pager a[rel=next]")
    page.wait_for_url("**offset=5**")
    assert page.locator("#case-table tr.case").count() == 5
    page.goto(f"{base_url}/runs/{store.live}")
    assert page.locator("noscript").count() >= 1
    w.assert_clean()


def test_a_live_run_polls_its_state_and_a_finished_one_does_not(watched, base_url, store):
    w = watched()
    page = w.page
    with page.expect_request(f"**/api/runs/{store.live}/state", timeout=10_000):
        page.goto(f"{base_url}/runs/{store.live}")
    assert page.locator("#live-counts [data-count='generate.queued']").inner_text() != ""
    page.goto(f"{base_url}/runs/{store.new}")
    page.wait_for_timeout(2500)
    assert not [u for u in w.requests if u.endswith(f"/runs/{store.new}/state")]
    w.assert_clean()

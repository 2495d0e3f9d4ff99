"""The viewer on a 100,000-case run: time to first byte and full load of the run page and of
the case API's first and last pages, a case page, filtered pages, and the server's peak RSS.

    .venv/bin/python benchmarks/view.py                  # build the run through the sandbox
    .venv/bin/python benchmarks/view.py --db sqlite:///path/evalbatch.db   # reuse a store

The run is built the way `scale.py` builds it (generation + rubric grading of N cases through
the sandbox, about a minute at 100,000). The viewer runs in a child process (this file with
``--serve``) so its peak RSS is its own, with no start-up warming, so the first visit of the run
page is cold: its summary is computed then (about a second at 100,000 cases) and kept, since a
finished run never changes. Each figure is the median of 5 requests after one untimed request,
except the cold one. "ttfb" is until the response headers arrive, "total" until the last byte;
"browser load" is the run page's load event in headless chromium (CSS and JS included).

Targets: run page < 300 ms, any case page < 100 ms, server RSS < 200 MB. The last line reads
``view-100k: run_page_ms=… cases_first_ms=… cases_last_ms=… rss_mb=… run_page_cold_ms=…``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).parent))
import scale  # noqa: E402  (the same suite and sandbox driver)

REPEAT = 5
CHROMIUM = Path("/usr/bin/chromium")


def build_store(folder: Path, cases: int) -> str:
    from evalbatch.sandbox import SandboxConfig, SandboxServer

    suite = scale.write_suite(folder, cases)
    home = folder / "home"
    with SandboxServer(SandboxConfig(responder=scale._rubric_or_echo, batch_latency=0.0)) as sb:
        env = {
            **os.environ,
            "ANTHROPIC_BASE_URL": sb.base_url,
            "ANTHROPIC_API_KEY": "bench",
            "EVALBATCH_HOME": str(home),
        }
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, scale.__file__, "--driver", str(suite)],
            env=env,
            check=True,
            capture_output=True,
        )
        print(f"built a {cases:,}-case run in {time.perf_counter() - started:.0f} s", flush=True)
    return f"sqlite:///{home / 'evalbatch.db'}"


def serve(db: str) -> None:
    """The child: the viewer until stdin closes; prints its URL, then its peak RSS."""
    from evalbatch.view.server import ViewConfig, ViewServer

    with ViewServer(ViewConfig(db=db, port=0, warm_runs=0)) as server:
        print(server.base_url, flush=True)
        sys.stdin.read()
    print(peak_rss_mb(os.getpid()), flush=True)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def fetch(base: str, path: str) -> tuple[float, float, int]:
    """(ms to the response headers, ms to the last byte, bytes)."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    started = time.perf_counter()
    conn.request("GET", path)
    response = conn.getresponse()
    first = time.perf_counter()
    body = response.read()
    done = time.perf_counter()
    conn.close()
    assert response.status == 200, (path, response.status, body[:200])
    return (first - started) * 1000, (done - started) * 1000, len(body)


def timed(base: str, path: str) -> dict[str, float]:
    fetch(base, path)
    runs = [fetch(base, path) for _ in range(REPEAT)]
    return {
        "ttfb_ms": statistics.median(r[0] for r in runs),
        "total_ms": statistics.median(r[1] for r in runs),
        "kb": runs[0][2] / 1024,
    }


def browser_load_ms(url: str) -> float | None:
    if not CHROMIUM.exists():
        return None
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page()
        loads = []
        for _ in range(REPEAT + 1):
            page.goto(url, wait_until="load")
            loads.append(
                page.evaluate(
                    "(() => { const n = performance.getEntriesByType('navigation')[0];"
                    " return n.loadEventEnd - n.startTime; })()"
                )
            )
        browser.close()
    return float(statistics.median(loads[1:]))


def measure(db: str) -> dict[str, Any]:
    from evalbatch.store.db import open_store

    store = open_store(db)
    run_id = store.runs.newest_id()
    assert run_id is not None, "the store has no run"
    total = store.runs.get(run_id).case_count
    store.close()
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", db],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdin is not None
    base = child.stdout.readline().strip()
    figures: dict[str, Any] = {"cases": total}
    try:
        run = f"/runs/{run_id}"
        ttfb, full, _ = fetch(base, run)
        figures["run_page_cold"] = {"ttfb_ms": ttfb, "total_ms": full}
        figures["run_page"] = timed(base, run)
        last = (total - 1) // 50 * 50
        figures["cases_first"] = timed(base, f"/api/runs/{run_id}/cases?offset=0&limit=50")
        figures["cases_last"] = timed(base, f"/api/runs/{run_id}/cases?offset={last}&limit=50")
        figures["run_page_last"] = timed(base, f"{run}?offset={last}")
        figures["case_page"] = timed(base, f"{run}/cases/c{total // 2}")
        figures["case_api"] = timed(base, f"/api/runs/{run_id}/cases/c{total // 2}")
        fails = json.loads(fetch_body(base, f"/api/runs/{run_id}/cases?status=fail&limit=1"))
        figures["failed_last"] = timed(
            base, f"/api/runs/{run_id}/cases?status=fail&offset={max(0, fails['total'] - 50)}"
        )
        figures["search"] = timed(base, f"/api/runs/{run_id}/cases?q=c{total - 1}")
        figures["run_page_browser_load_ms"] = browser_load_ms(base + run)
    finally:
        child.stdin.close()
        figures["rss_mb"] = float(child.stdout.readline() or 0)
        child.wait(timeout=30)
    return figures


def fetch_body(base: str, path: str) -> bytes:
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    conn.request("GET", path)
    body = conn.getresponse().read()
    conn.close()
    return body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--db", help="measure this store's newest run instead of building one")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    with tempfile.TemporaryDirectory(prefix="evalbatch-view-") as tmp:
        db = args.db or build_store(Path(tmp), args.cases)
        figures = measure(db)
    print(f"\n{figures['cases']:,} cases")
    print(f"  {'request':<22} {'ttfb_ms':>9} {'total_ms':>9} {'kb':>8}")
    for name, value in figures.items():
        if isinstance(value, dict):
            kb = f"{value['kb']:8.1f}" if "kb" in value else ""
            print(f"  {name:<22} {value['ttfb_ms']:9.1f} {value['total_ms']:9.1f} {kb}")
    load = figures["run_page_browser_load_ms"]
    print(f"  run page browser load: {'-' if load is None else f'{load:.0f} ms'}")
    print(f"  server peak RSS: {figures['rss_mb']:.0f} MB")
    n = figures["cases"]
    label = f"{n // 1000}k" if n >= 1000 else str(n)
    print(
        f"view-{label}: run_page_ms={figures['run_page']['total_ms']:.0f} "
        f"cases_first_ms={figures['cases_first']['total_ms']:.0f} "
        f"cases_last_ms={figures['cases_last']['total_ms']:.0f} "
        f"rss_mb={figures['rss_mb']:.0f} "
        f"run_page_cold_ms={figures['run_page_cold']['total_ms']:.0f}"
    )


if __name__ == "__main__":
    main()

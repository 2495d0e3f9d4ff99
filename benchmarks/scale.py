"""Scale: a generated N-case suite (generation + rubric grading = 2N requests) through the
sandbox with zero batch latency; wall time, CPU time and peak RSS of the harness and of the
sandbox, apart, for each phase.

    .venv/bin/python benchmarks/scale.py                       # 10,000 then 100,000 cases
    .venv/bin/python benchmarks/scale.py --cases 2000 20000    # other sizes, smallest first
    .venv/bin/python benchmarks/scale.py --postgres            # on a throwaway PostgreSQL server
    .venv/bin/python benchmarks/scale.py --db postgresql+psycopg://user@host/db   # a store of yours

What it measures, and on what: the harness's own overhead on tiny requests. Each case's prompt
is ``Question {i}: yes`` (about 5 tokens, no system prompt), generation and grading both on
haiku with ``cache: off``, outputs of a few tokens (the sandbox's echo, and a one-line rubric
verdict). Real suites send longer prompts: they cost the harness more per request (rendering,
JSON, storage) and the provider far more. The settings are printed first.

Three processes: this one (writes the suite, starts the others, prints), the sandbox (this
file with ``--serve``) and the harness (this file with ``--driver``), so that each one's CPU
time and peak RSS are its own. Phases: plan (validate, manifest, write the run and its
requests), submit (the generate batches), collect (poll, stream the results in), grade (plan,
submit and collect the rubric batch), score, report (summary and text report). The harness
reads its own CPU (user + sys) and high-water RSS at the end of each phase, and the sandbox's
from /proc (Linux).

The store: by default a new SQLite file in a temp folder for each size. ``--postgres`` starts
a throwaway PostgreSQL server (``tests/pgcluster.py``, Debian's server binaries, with its
default fsync and synchronous commit: ``durable=True``) and gives each size a new database;
the server's CPU time (postmaster and backends) is then printed too. ``--db URL`` writes into a
store you name, every size into the same one (its existing runs stay; the figures then include
its indexes' size).

Targets on a 2-core machine: 100k cases end to end under 120 s, harness peak RSS under 500 MB,
and memory flat as the suite grows. The last line reads ``scale-100k: wall_s=…
harness_cpu_s=… peak_rss_mb=… rss_10k_over_100k=…``, labelled by the largest size run:
peak_rss_mb is the harness's, and the rss ratio is the harness's peak RSS at the smallest size
over that at the largest (named by the two sizes; ``rss_10k_over_…=n/a`` when only one size
ran: a ratio near 1 says memory does not grow with the suite). The line before it names the
store and gives the sandbox's (and the server's) figures and the load average at the end.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RUBRIC = "Does the reply answer yes?"
MAX_TOKENS = 32


def _rubric_or_echo(params: dict[str, Any]) -> str:
    text = params["messages"][-1]["content"]
    if isinstance(text, list):
        text = "".join(b.get("text", "") for b in text)
    if "<output>" in text:
        return '{"score": 4, "reasoning": "fine"}'
    return text


def write_suite(folder: Path, cases: int) -> Path:
    with (folder / "cases.jsonl").open("w") as fh:
        for i in range(cases):
            answer = "yes" if i % 4 else "no"
            fh.write(
                json.dumps({"id": f"c{i}", "input": f"Question {i}: {answer}", "target": "yes"})
            )
            fh.write("\n")
    (folder / "suite.yaml").write_text(
        "name: scale\n"
        "cases: cases.jsonl\n"
        f"generate: {{prompt: '{{{{ input }}}}', max_tokens: {MAX_TOKENS}, model: haiku}}\n"
        "grade:\n"
        "  - contains: '{{ target }}'\n"
        f"  - rubric: {{model: haiku, rubric: '{RUBRIC}', pass: '>= 4'}}\n"
        "mode: batch\n"
        "cache: off\n"
    )
    return folder / "suite.yaml"


def _own() -> tuple[float, float]:
    """This process's CPU seconds (user + sys) and peak RSS in MB (ru_maxrss is KiB on Linux)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def _other(pid: int) -> tuple[float, float]:
    """Another process's CPU seconds and peak RSS in MB, from /proc (NaN where unreadable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
        status = Path(f"/proc/{pid}/status").read_text()
        hwm = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
        return cpu, int(hwm.split()[1]) / 1024
    except (OSError, StopIteration, IndexError, ValueError):
        return float("nan"), float("nan")


def serve() -> None:
    """The sandbox process: print its address and settings, serve until stdin closes, then
    print its own CPU time and peak RSS."""
    from evalbatch.sandbox import SandboxConfig, SandboxServer

    server = SandboxServer(SandboxConfig(responder=_rubric_or_echo, batch_latency=0.0)).start()
    print(json.dumps({"base_url": server.base_url, "settings": server.settings()}), flush=True)
    sys.stdin.read()
    server.stop()
    cpu, rss = _own()
    print(json.dumps({"cpu_s": cpu, "peak_rss_mb": rss}), flush=True)


def driver(suite: Path, sandbox_pid: int) -> None:
    """The harness, phase by phase, printing one JSON line per phase."""
    from rich.console import Console

    from evalbatch.analysis.summary import summarize
    from evalbatch.plan.prepare import prepare
    from evalbatch.providers import open_provider
    from evalbatch.report.text import print_text
    from evalbatch.run.create import create_run
    from evalbatch.run.engine import Runner
    from evalbatch.run.scoring import score_run
    from evalbatch.store.db import open_store

    # harness CPU from process start (plan includes start-up and imports); sandbox CPU from now
    last = [0.0, 0.0, _other(sandbox_pid)[0]]

    def mark(phase: str, started: float) -> float:
        now = time.perf_counter()
        cpu, rss = _own()
        sandbox_cpu, sandbox_rss = _other(sandbox_pid)
        line = {"phase": phase, "wall_s": now - started, "cpu_s": cpu - last[1]}
        line |= {"peak_rss_mb": rss, "sandbox_cpu_s": sandbox_cpu - last[2]}
        line |= {"sandbox_peak_rss_mb": sandbox_rss}
        last[1:] = [cpu, sandbox_cpu]
        print(json.dumps(line), flush=True)
        return now

    t = time.perf_counter()
    store = open_store(None)
    prepared = prepare(suite)
    run_id = create_run(store, prepared, {"retries": 2, "concurrency": 16})
    t = mark("plan", t)

    class Timed(Runner):
        def _finish_generate(self) -> Any:
            nonlocal t
            t = mark("collect", t)
            return super()._finish_generate()

    runner = Timed(store, run_id, lambda: open_provider())
    status = runner.advance()
    t = mark("submit", t)
    while status not in ("score", "done"):
        time.sleep(0.2)
        # stop before scoring so it is its own phase
        status = runner.status()
        # the benchmark drives the steps itself to time each phase
        if status in ("generate", "grade") and runner._advance_step(status):  # noqa: SLF001
            status = runner._finish_generate() if status == "generate" else "score"
            if status == "score":
                store.runs.set_status(run_id, "score")
    t = mark("grade", t)
    score_run(store, run_id, runner.graders, prepared.suite.epochs)
    store.runs.set_status(run_id, "done")
    store.refresh_statistics()  # as the engine does when a run is done
    t = mark("score", t)
    summary = summarize(store, run_id)
    print_text(summary, Console(file=io.StringIO(), width=120))
    mark("report", t)
    runner.close()
    steps = {
        line.step: {
            "requests": line.requests,
            "input": line.input_tokens,
            "out": line.output_tokens,
        }
        for line in summary.costs
    }
    print(json.dumps({"cases_scored": summary.cases_scored, "steps": steps}))


def _stat(pid: int | str) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _tree_cpu(pid: int) -> float:
    """CPU seconds of a server process, its live children and the children it has reaped
    (PostgreSQL's backends end when their connection does), from /proc (NaN where unreadable)."""
    try:
        ticks = sum(int(f) for f in _stat(pid)[11:15])  # utime, stime, cutime, cstime
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = _stat(entry.name)
            except OSError:
                continue  # ended while we looked
            if fields[1] == str(pid):  # ppid
                ticks += int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return float("nan")
    return ticks / os.sysconf("SC_CLK_TCK")


class Stores:
    """Where each size's run is stored: a temp SQLite file (``url`` None), a URL given, or a
    new database on a throwaway PostgreSQL server."""

    def __init__(self, url: str | None, postgres: bool) -> None:
        self.url, self.cluster = url, None
        if postgres:
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
            from tests.pgcluster import MISSING, PostgresCluster, find_bindir

            bindir = find_bindir()
            if bindir is None:
                raise SystemExit(MISSING)
            self.cluster = PostgresCluster(bindir, durable=True).start()

    def next_url(self) -> str | None:
        return self.cluster.database() if self.cluster is not None else self.url

    def describe(self) -> str:
        if self.cluster is not None:
            return f"a throwaway PostgreSQL server (fsync on), {self.cluster.bindir}"
        if self.url is not None:
            from evalbatch.store.db import redact

            return redact(self.url)
        return "a new SQLite file per size (WAL, synchronous=NORMAL)"

    def server_cpu(self) -> float | None:
        proc = self.cluster._proc if self.cluster is not None else None  # noqa: SLF001
        return _tree_cpu(proc.pid) if proc is not None else None

    def close(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()


def measure(cases: int, stores: Stores) -> dict[str, Any]:
    here = [sys.executable, __file__]
    url = stores.next_url()
    with tempfile.TemporaryDirectory(prefix="evalbatch-scale-") as tmp:
        folder = Path(tmp)
        suite = write_suite(folder, cases)
        sandbox = subprocess.Popen(
            [*here, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert sandbox.stdout is not None and sandbox.stdin is not None
        served = json.loads(sandbox.stdout.readline())
        try:
            env = {k: v for k, v in os.environ.items() if k != "EVALBATCH_DB"}
            env |= {
                "ANTHROPIC_BASE_URL": served["base_url"],
                "ANTHROPIC_API_KEY": "bench",
                "EVALBATCH_HOME": str(folder / "home"),
            }
            if url is not None:
                env["EVALBATCH_DB"] = url
            server_started = stores.server_cpu()
            started = time.perf_counter()
            proc = subprocess.run(
                [*here, "--driver", str(suite), "--sandbox-pid", str(sandbox.pid)],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            wall = time.perf_counter() - started
            server_ended = stores.server_cpu()
        finally:
            sandbox.stdin.close()
            sandbox_end = json.loads(sandbox.stdout.readline())
            sandbox.wait()
    if proc.returncode != 0:
        raise SystemExit(f"driver failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    phases = [line for line in lines if "phase" in line]
    final = lines[-1]
    assert final["cases_scored"] == cases, final
    return {
        "cases": cases,
        "wall_s": wall,
        "phases": phases,
        "steps": final["steps"],
        "peak_rss_mb": phases[-1]["peak_rss_mb"],
        "harness_cpu_s": sum(p["cpu_s"] for p in phases),
        "sandbox": {**sandbox_end, "settings": served["settings"]},
        "server_cpu_s": (
            None
            if server_started is None or server_ended is None
            else server_ended - server_started
        ),
    }


def print_settings(sizes: list[int], store: str) -> None:
    from evalbatch.catalog.tokenizer import count_text

    prompts = [count_text(f"Question {i}: yes") for i in (0, 999, 99_999)]
    print(
        f"settings: sizes {', '.join(f'{n:,}' for n in sizes)} cases (2 requests each); "
        f"prompts 'Question N: yes' ({min(prompts)}-{max(prompts)} tokens, no system prompt); "
        f"rubric '{RUBRIC}' ({count_text(RUBRIC)} tokens); generate and grade on haiku; "
        f"max_tokens {MAX_TOKENS}; cache off; mode batch; sandbox echo responder (rubric "
        "verdicts for grading), batch_latency 0, batch_concurrency 1"
    )
    print(f"  store: {store}")
    print(
        f"  Python {platform.python_version()}, {os.cpu_count()} cores shared with other jobs "
        "(wall times vary with their load; CPU times much less); load average "
        f"{_load()} at the start"
    )


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def print_size(res: dict[str, Any]) -> None:
    n = res["cases"]
    sandbox = res["sandbox"]
    print(f"\n{n:,} cases ({2 * n:,} requests): wall {res['wall_s']:.1f} s")
    for step, s in res["steps"].items():
        note = " (grader instructions, rubric and the output)" if step == "grade" else ""
        print(
            f"  {step}: {s['requests']:,} requests, {s['input'] / s['requests']:.1f} input "
            f"tokens each{note}, {s['out'] / s['requests']:.1f} output tokens"
        )
    print(
        f"  {'phase':<8} {'wall_s':>7} {'harness cpu_s':>13} {'harness rss_mb':>14} "
        f"{'sandbox cpu_s':>13} {'sandbox rss_mb':>14}"
    )
    for p in res["phases"]:
        print(
            f"  {p['phase']:<8} {p['wall_s']:>7.1f} {p['cpu_s']:>13.1f} {p['peak_rss_mb']:>14.0f} "
            f"{p['sandbox_cpu_s']:>13.1f} {p['sandbox_peak_rss_mb']:>14.0f}"
        )
    print("  (the harness's plan phase includes its start-up and imports)")
    print(
        f"  harness (evalbatch): CPU {res['harness_cpu_s']:.1f} s, peak RSS "
        f"{res['peak_rss_mb']:.0f} MB; sandbox (whole process life, startup included): CPU "
        f"{sandbox['cpu_s']:.1f} s, peak RSS {sandbox['peak_rss_mb']:.0f} MB "
        "(it keeps every batch's result lines until it stops)"
    )
    if res["server_cpu_s"] is not None:
        print(f"  PostgreSQL server (postmaster and its backends): CPU {res['server_cpu_s']:.1f} s")
    print(f"  load average at the end: {res['load']}")


def _label(n: int) -> str:
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, nargs="+", help="sizes (default 10000 100000)")
    parser.add_argument("--db", help="store URL (default: a new temp SQLite file per size)")
    parser.add_argument(
        "--postgres", action="store_true", help="a throwaway PostgreSQL server, new db per size"
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--driver", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--sandbox-pid", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return
    if args.driver:
        driver(args.driver, args.sandbox_pid)
        return
    if args.db and args.postgres:
        parser.error("--db and --postgres are alternatives")
    sizes = sorted(args.cases or [10_000, 100_000])
    stores = Stores(args.db, args.postgres)
    try:
        print_settings(sizes, stores.describe())
        results = [measure(n, stores) | {"load": _load()} for n in sizes]
    finally:
        stores.close()
    for res in results:
        print_size(res)
    print_last(results, stores.describe())


def print_last(results: list[dict[str, Any]], store: str) -> None:
    """The store and the sandbox's figures, then the one-line summary of the largest size."""
    small, big = results[0], results[-1]
    server = big["server_cpu_s"]
    print(
        f"\nstore: {store}; sandbox_cpu_s={big['sandbox']['cpu_s']:.1f} "
        f"sandbox_peak_rss_mb={big['sandbox']['peak_rss_mb']:.0f}"
        + (f" server_cpu_s={server:.1f}" if server is not None else "")
        + f" load_at_end={big['load'].replace(' ', ',')}"
    )
    if len(results) > 1:
        ratio = f"rss_{_label(small['cases'])}_over_{_label(big['cases'])}="
        ratio += f"{small['peak_rss_mb'] / big['peak_rss_mb']:.2f}"
    else:  # the name it has in a default run, so a script finds the field either way
        ratio = f"rss_10k_over_{_label(big['cases'])}=n/a"
    print(
        f"scale-{_label(big['cases'])}: wall_s={big['wall_s']:.1f} "
        f"harness_cpu_s={big['harness_cpu_s']:.1f} peak_rss_mb={big['peak_rss_mb']:.0f} {ratio}"
    )


if __name__ == "__main__":
    main()

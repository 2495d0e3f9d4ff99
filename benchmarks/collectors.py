"""A large run advanced by several collector processes sharing one store, the way a team runs
it: `evalbatch run --detach` from one host, then N `evalbatch collect --all --forever` workers.

    .venv/bin/python benchmarks/collectors.py --postgres                 # 1,000,000 cases, 4 collectors
    .venv/bin/python benchmarks/collectors.py --postgres --cases 100000 --collectors 2
    .venv/bin/python benchmarks/collectors.py --cases 20000              # SQLite, for a quick look

The suite and the sandbox are `scale.py`'s (prompts of about 5 tokens, rubric grading on haiku,
``cache: off``, batch latency 0; the sandbox keeps every batch's result lines until it stops, so
its memory grows with the run). Every process is a real command in its own process: the
detached run (plan, write the run and its requests, submit the generation batches, exit) and
the collectors (each round: every open run once, under a lease, so one collector at a time
advances a given run and the others skip it or take over when its lease expires). The store is
a throwaway PostgreSQL server (``--postgres``, fsync on), a URL (``--db``), or a new SQLite
file. This process polls the run's status every 2 s; when it is done it stops the collectors
with SIGTERM and reads each process's peak RSS and CPU time from the kernel (wait4).

Target (issue 16): 1,000,000 cases (2,000,000 requests) on PostgreSQL with 4 collectors
completes, peak RSS < 300 MB per process. The last line reads ``collectors-1m: wall_s=…
detach_s=… collectors=4 peak_rss_mb_max=… results=…`` (labelled by the size run).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import scale  # noqa: E402  (the same suite, sandbox and stores)

BIN = Path(sys.executable).parent


def wait_rusage(proc: subprocess.Popen[Any]) -> tuple[int, float, float]:
    """Reap a child: its exit status, peak RSS in MB and CPU seconds (user + sys)."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--collectors", type=int, default=4)
    parser.add_argument("--poll", type=float, default=1.0, help="the collectors' --poll")
    parser.add_argument("--db", help="store URL (default: a new SQLite file)")
    parser.add_argument("--postgres", action="store_true", help="a throwaway PostgreSQL server")
    args = parser.parse_args()
    if args.db and args.postgres:
        parser.error("--db and --postgres are alternatives")
    stores = scale.Stores(args.db, args.postgres)
    label = scale._label(args.cases)  # noqa: SLF001
    try:
        print(
            f"settings: {args.cases:,} cases ({2 * args.cases:,} requests), {args.collectors} "
            f"collectors (collect --all --forever --poll {args.poll}); scale.py's suite and "
            f"sandbox; store: {stores.describe()}; load average {scale._load()}",  # noqa: SLF001
            flush=True,
        )
        result = measure(args, stores)
    finally:
        stores.close()
    print(f"\nrun {result['run_id']}: {result['status']}, {result['results']:,} results")
    print(f"  {'process':<12} {'wall_s':>8} {'cpu_s':>8} {'peak_rss_mb':>12} exit")
    for name, wall, cpu, rss, code in result["processes"]:
        print(f"  {name:<12} {wall:>8.1f} {cpu:>8.1f} {rss:>12.0f} {code}")
    sandbox = result["sandbox"]
    print(
        f"  sandbox: CPU {sandbox['cpu_s']:.1f} s, peak RSS {sandbox['peak_rss_mb']:.0f} MB"
        + (
            f"; PostgreSQL server CPU {result['server_cpu_s']:.1f} s"
            if result["server_cpu_s"] is not None
            else ""
        )
    )
    print(f"  load average at the end: {result['load']}")
    peak = max(p[3] for p in result["processes"])
    print(
        f"collectors-{label}: wall_s={result['wall_s']:.1f} detach_s={result['detach_s']:.1f} "
        f"collectors={args.collectors} peak_rss_mb_max={peak:.0f} results={result['results']}"
    )
    if result["status"] != "done":
        sys.exit(1)


def measure(args: argparse.Namespace, stores: scale.Stores) -> dict[str, Any]:
    from evalbatch.store.db import open_store

    url = stores.next_url()
    with tempfile.TemporaryDirectory(prefix="evalbatch-collectors-") as tmp:
        folder = Path(tmp)
        suite = scale.write_suite(folder, args.cases)
        url = url or f"sqlite:///{folder / 'evalbatch.db'}"
        sandbox = subprocess.Popen(
            [sys.executable, scale.__file__, "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert sandbox.stdout is not None and sandbox.stdin is not None
        served = json.loads(sandbox.stdout.readline())
        env = {k: v for k, v in os.environ.items() if not k.startswith(("EVALBATCH_", "ANTH"))}
        env |= {
            "ANTHROPIC_BASE_URL": served["base_url"],
            "ANTHROPIC_API_KEY": "bench",
            "EVALBATCH_HOME": str(folder / "home"),
            "EVALBATCH_DB": url,
        }
        processes: list[tuple[str, float, float, float, int]] = []
        workers: list[tuple[subprocess.Popen[str], float]] = []
        try:
            server_started = stores.server_cpu()
            started = time.perf_counter()
            detach = subprocess.Popen(
                [str(BIN / "evalbatch"), "run", str(suite), "--detach"],
                env=env,
                cwd=folder,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            out, err = detach.stdout.read(), detach.stderr.read()  # type: ignore[union-attr]
            code, rss, cpu = wait_rusage(detach)
            detach_s = time.perf_counter() - started
            processes.append(("run --detach", detach_s, cpu, rss, code))
            if code != 0:
                raise SystemExit(f"run --detach exited {code}:\n{err[-3000:]}")
            run_id = out.strip().splitlines()[-1]
            print(f"run --detach: {detach_s:.1f} s, run {run_id}", flush=True)
            for i in range(args.collectors):
                log = (folder / f"collector{i}.log").open("w")
                cmd = [str(BIN / "evalbatch"), "collect", "--all", "--forever"]
                cmd += ["--poll", str(args.poll)]
                proc = subprocess.Popen(
                    cmd, env=env, cwd=folder, stdout=log, stderr=subprocess.STDOUT, text=True
                )
                workers.append((proc, time.perf_counter()))
            store = open_store(url)
            status = store.runs.status(run_id)
            last_print = time.perf_counter()
            while status not in ("done", "failed", "canceled", "needs_attention"):
                time.sleep(2)
                status = store.runs.status(run_id)
                if time.perf_counter() - last_print > 60:
                    last_print = time.perf_counter()
                    print(
                        f"  {last_print - started:6.0f} s: {status}, load {scale._load()}",  # noqa: SLF001
                        flush=True,
                    )
                if any(proc.poll() is not None for proc, _ in workers):
                    break
            wall = time.perf_counter() - started
            server_ended = stores.server_cpu()
            results = store.results.count(run_id)
            store.close()
        finally:
            for proc, _ in workers:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for i, (proc, begun) in enumerate(workers):
                code, rss, cpu = wait_rusage(proc)
                processes.append((f"collector {i}", time.perf_counter() - begun, cpu, rss, code))
            sandbox.stdin.close()
            sandbox_end = json.loads(sandbox.stdout.readline())
            sandbox.wait()
            for i in range(len(workers)):
                tail = (folder / f"collector{i}.log").read_text()[-600:].strip()
                if tail:
                    print(f"  collector {i} said: {tail}")
    return {
        "run_id": run_id,
        "status": status,
        "results": results,
        "wall_s": wall,
        "detach_s": detach_s,
        "processes": processes,
        "sandbox": sandbox_end,
        "server_cpu_s": (
            None
            if server_started is None or server_ended is None
            else server_ended - server_started
        ),
        "load": scale._load(),  # noqa: SLF001
    }


if __name__ == "__main__":
    main()

"""The cost reference benchmark: what routing + batch + prompt caching save on a realistic suite.

It writes, in a temporary folder, a reference suite of 5,000 cases (``--cases N``): difficulty
60% easy / 30% medium / 10% hard, routed easy -> haiku, medium -> sonnet, hard -> opus; a shared
system prompt of ~3,000 tokens; rubric grading on opus with a ~1,500-token rubric; mode batch,
cache auto. Prompts are sized with the sandbox's own tokenizer (evalbatch.tokenizer), so the
figures are exact against the sandbox. A script responder fixes every output's length (the
answer is GEN_OUTPUT tokens, the verdict GRADE_OUTPUT tokens), so the runs are deterministic.

The suite runs twice through the loopback sandbox, each time on a fresh sandbox (empty prompt
cache) and a fresh store: once with ``cache: {warm: true}`` (one synchronous warm-up request per
shared prefix before each batch) and once without (cold). Each run is the real CLI as a process,
``evalbatch run suite.yaml --json``, pointed at a sandbox started in this process through the
Python API. Why not ``run --sandbox``: the CLI's in-process sandbox uses the default
``SandboxConfig.batch_concurrency`` of 1, i.e. batch items are processed one at a time and every
item reads what the previous one wrote, so a cold batch would look as good as a warmed one. The
real Batches API runs items concurrently (hits are "typically 30%-98%"), so here the sandbox
processes ``--wave`` items together (default 1,000): a wave cannot read its own writes, so a cold
batch's first wave of each prefix writes the cache. ``--wave 1`` reproduces ``run --sandbox``.

Printed, from each run's JSON report: the actual cost and each counterfactual (sync rates, no
cache, no routing, naive = sync + strongest model + no cache), and the prefix cache hit rate.

Prefix cache hit rate: the share of shared-prefix tokens that were read from the cache, computed
from the stored results joined to their requests and shared prefixes (store tables ``results``,
``requests``, ``prefixes``). For every succeeded result whose request carries a shared prefix of
P tokens (the system prompt or the rubric), with usage ``cache_read`` = R and
``cache_write_5m + cache_write_1h`` = W (the breakpoint sits at the end of the prefix, so R + W is
P or 0), the prefix tokens that went uncached are U = max(0, P - R - W), and

    prefix_hit = sum(R) / (sum(R) + sum(W) + sum(U))

over the whole run: generate and grade batch items plus the synchronous warm-up requests (their
writes count against the warmed run; "batch items only" is printed too). A prefix below a model's
cache minimum counts as uncached.

The last line is machine-readable:
``cost-ref: actual/naive=0.068 prefix_hit_warm=1.00 prefix_hit_cold=0.67`` where actual/naive
is the warmed run's actual cost over its naive counterfactual.

    .venv/bin/python benchmarks/cost.py [--cases 5000] [--wave 1000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import and_, create_engine, func, select

from evalbatch.catalog.tokenizer import count_text
from evalbatch.sandbox import SandboxConfig, SandboxServer
from evalbatch.store import schema

SYSTEM_TOKENS = 3_000
RUBRIC_TOKENS = 1_500
GEN_MAX_TOKENS = 400
GEN_OUTPUT = 180  # tokens of every answer (below max_tokens: the responder decides)
GRADE_MAX_TOKENS = 256
GRADE_OUTPUT = 40  # tokens of every verdict
MIX = (("easy", 0.6), ("medium", 0.3), ("hard", 0.1))
ROUTING = {"easy": "haiku", "medium": "sonnet", "hard": "opus", "default": "sonnet"}

_TOPICS = (
    "refunds",
    "shipping",
    "warranty",
    "passwords",
    "invoices",
    "subscriptions",
    "damaged items",
    "privacy requests",
    "chargebacks",
    "gift cards",
    "returns abroad",
    "loyalty points",
)


def sized_text(target: int, sentence: Any) -> str:
    """Sentences from ``sentence(i)`` until the text is ``target`` tokens (the sandbox's count)."""
    parts: list[str] = []
    tokens = 0
    i = 0
    while tokens < target:
        s = sentence(i)
        parts.append(s)
        tokens += count_text(s)  # space-separated sentences: the counts add up
        i += 1
    text = " ".join(parts)
    while count_text(text) > target:  # trim word by word to the exact size
        text = text.rsplit(" ", 1)[0]
    return text


def system_prompt() -> str:
    def sentence(i: int) -> str:
        topic = _TOPICS[i % len(_TOPICS)]
        return (
            f"Policy {i + 1} on {topic}: greet the customer, restate the question about {topic} "
            f"in one line, cite rule {i % 17 + 1} of the handbook, give the concrete next step, "
            "and never promise what the handbook does not allow."
        )

    return "You are the support assistant of an online shop. " + sized_text(
        SYSTEM_TOKENS - 10, sentence
    )


def rubric_text() -> str:
    def sentence(i: int) -> str:
        topic = _TOPICS[i % len(_TOPICS)]
        return (
            f"Check {i + 1} ({topic}): the reply must match the handbook rule on {topic}, "
            "state the next step precisely, stay polite, and contain no invented fact."
        )

    return sized_text(RUBRIC_TOKENS, sentence)


def exact_tokens(prefix: str, tokens: int) -> str:
    """``prefix`` padded with filler words to exactly ``tokens`` tokens."""
    text = prefix
    filler = iter(["please", "note", "that", "this", "is", "all", "we", "need"] * 10_000)
    while count_text(text) < tokens:
        text += " " + next(filler)
    assert count_text(text) == tokens, (count_text(text), tokens)
    return text


def write_cases(path: Path, n: int, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    labels = [label for label, share in MIX for _ in range(round(share * n))]
    labels = (labels + ["easy"] * n)[:n]
    rng.shuffle(labels)
    counts: dict[str, int] = {}
    with path.open("w", encoding="utf-8") as fh:
        for i, label in enumerate(labels):
            topic = _TOPICS[i % len(_TOPICS)]
            case = {
                "id": f"case-{i:05d}",
                "input": f"Order {100000 + i}: I have a question about {topic}. What do I do now?",
                "target": topic,
                "difficulty": label,
            }
            fh.write(json.dumps(case) + "\n")
            counts[label] = counts.get(label, 0) + 1
    return counts


def write_responder(path: Path) -> None:
    """Script rules: opus grading requests get the verdict, everything else the answer."""
    verdict_json = ' {"score": 4, "reasoning": "Correct and polite."}'
    # The filler goes before the JSON: the grader reads the last JSON object of the reply.
    verdict = (
        exact_tokens("The reply follows the handbook.", GRADE_OUTPUT - count_text(verdict_json))
        + verdict_json
    )
    answer = exact_tokens(
        "Thanks for reaching out. Here is what the handbook says and what to do next:",
        GEN_OUTPUT,
    )
    assert count_text(verdict) == GRADE_OUTPUT and count_text(answer) == GEN_OUTPUT
    rules = {
        "rules": [{"model": "claude-opus-*", "match": "(?s)<output>", "response": verdict}],
        "default": answer,
    }
    path.write_text(yaml.safe_dump(rules, sort_keys=False, width=10_000), encoding="utf-8")


def write_suite(folder: Path, warm: bool) -> Path:
    prompts = folder / "prompts"
    prompts.mkdir(parents=True, exist_ok=True)
    (prompts / "system.md").write_text(system_prompt(), encoding="utf-8")
    (prompts / "rubric.md").write_text(rubric_text(), encoding="utf-8")
    suite = {
        "name": "cost-reference",
        "description": "Reference suite for the cost benchmark (benchmarks/cost.py)",
        "cases": "cases.jsonl",
        "generate": {
            "system": "file://prompts/system.md",
            "prompt": "Customer: {{ input }}",
            "max_tokens": GEN_MAX_TOKENS,
            "model": "route",
        },
        "routing": ROUTING,
        "grade": [
            {
                "rubric": {
                    "model": "opus",
                    "rubric": "file://prompts/rubric.md",
                    "pass": ">= 4",
                    "max_tokens": GRADE_MAX_TOKENS,
                }
            }
        ],
        "mode": "batch",
        "cache": {"mode": "auto", "warm": True} if warm else "auto",
    }
    path = folder / ("suite-warm.yaml" if warm else "suite-cold.yaml")
    path.write_text(yaml.safe_dump(suite, sort_keys=False), encoding="utf-8")
    return path


def prefix_hit(db: Path, run_id: str) -> dict[str, float]:
    """Prefix cache hit rate over the run, and over its batch items only (see the docstring)."""
    engine = create_engine(f"sqlite:///{db}")
    r, q, p = schema.results.c, schema.requests.c, schema.prefixes.c
    uncached = func.max(p.tokens - r.cache_read - r.cache_write_5m - r.cache_write_1h, 0)
    out: dict[str, float] = {}
    with engine.connect() as conn:
        for label, extra in (("all", True), ("batch", r.mode == "batch")):
            row = conn.execute(
                select(
                    func.coalesce(func.sum(r.cache_read), 0),
                    func.coalesce(func.sum(r.cache_write_5m + r.cache_write_1h), 0),
                    func.coalesce(func.sum(uncached), 0),
                    func.count(),
                )
                .select_from(
                    schema.results.join(schema.requests, r.request_id == q.id).join(
                        schema.prefixes, q.prefix_id == p.id
                    )
                )
                .where(and_(r.run_id == run_id, r.kind == "succeeded", extra))
            ).one()
            read, write, cold, _ = (int(v) for v in row)
            total = read + write + cold
            out[label] = read / total if total else 0.0
    engine.dispose()
    return out


def run_once(suite: Path, responder: Path, home: Path, wave: int) -> tuple[dict[str, Any], float]:
    """Run the suite on a fresh sandbox and store; (the run's JSON report, seconds)."""
    config = SandboxConfig(
        responder=f"script:{responder}", batch_latency=0.0, batch_concurrency=wave
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "EVALBATCH_"))}
    env.update({"EVALBATCH_HOME": str(home), "ANTHROPIC_API_KEY": "sandbox", "NO_COLOR": "1"})
    started = time.monotonic()
    with SandboxServer(config) as server:
        env["ANTHROPIC_BASE_URL"] = server.base_url
        proc = subprocess.run(
            [sys.executable, "-m", "evalbatch", "run", str(suite), "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    elapsed = time.monotonic() - started
    if proc.returncode not in (0, 1):  # 1: the gate failed, which the cost figures ignore
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"evalbatch run failed with exit code {proc.returncode}")
    return json.loads(proc.stdout), elapsed


def print_report(label: str, report: dict[str, Any], hit: dict[str, float], secs: float) -> None:
    totals = report["totals"]
    naive = totals["naive_cost"]
    print(f"== {label}: run {report['run']['id']} ({report['run']['cases']} cases, {secs:.0f}s)")
    for name, key in (
        ("actual", "cost"),
        ("sync rates", "sync_cost"),
        ("no cache", "nocache_cost"),
        ("no routing", "norouting_cost"),
        ("naive", "naive_cost"),
    ):
        value = totals[key]
        share = value / naive if naive else 0.0
        print(f"   {name:<11} ${value:>10,.4f}   {share:6.1%} of naive")
    for line in report["costs"]:
        print(
            f"   {line['step']:<8} {line['model']:<18} {line['mode']:<5} "
            f"{line['requests']:>6} req  in {line['input_tokens']:>10,}  "
            f"write {line['cache_write_tokens']:>9,}  read {line['cache_read_tokens']:>11,}  "
            f"out {line['output_tokens']:>9,}  ${line['cost']:,.4f}"
        )
    print(f"   prefix cache hit rate: {hit['all']:.4f} (batch items only: {hit['batch']:.4f})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=5_000, help="cases in the suite")
    parser.add_argument(
        "--wave",
        type=int,
        default=1_000,
        help="batch items the sandbox processes together (SandboxConfig.batch_concurrency)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="keep the suite and stores in this folder")
    args = parser.parse_args(argv)

    root = args.keep or Path(tempfile.mkdtemp(prefix="evalbatch-cost-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        folder = root / "suite"
        folder.mkdir(parents=True, exist_ok=True)
        counts = write_cases(folder / "cases.jsonl", args.cases, args.seed)
        warm_suite = write_suite(folder, warm=True)
        cold_suite = write_suite(folder, warm=False)
        responder = folder / "responses.yaml"
        write_responder(responder)
        mix = ", ".join(f"{label} {counts.get(label, 0)}" for label, _ in MIX)
        print(
            f"reference suite: {args.cases} cases ({mix}); system prompt "
            f"{count_text((folder / 'prompts/system.md').read_text())} tokens, rubric "
            f"{count_text((folder / 'prompts/rubric.md').read_text())} tokens; outputs "
            f"{GEN_OUTPUT} / {GRADE_OUTPUT} tokens; sandbox wave {args.wave}"
        )
        results = {}
        for label, suite in (("warm", warm_suite), ("cold", cold_suite)):
            home = root / f"home-{label}"
            shutil.rmtree(home, ignore_errors=True)
            report, secs = run_once(suite, responder, home, args.wave)
            hit = prefix_hit(home / "evalbatch.db", report["run"]["id"])
            print_report(
                f"{label} (cache: {'{warm: true}' if label == 'warm' else 'auto'})",
                report,
                hit,
                secs,
            )
            results[label] = (report, hit)
        warm_totals = results["warm"][0]["totals"]
        ratio = warm_totals["cost"] / warm_totals["naive_cost"]
        print(
            f"cost-ref: actual/naive={ratio:.3f} prefix_hit_warm={results['warm'][1]['all']:.2f} "
            f"prefix_hit_cold={results['cold'][1]['all']:.2f}"
        )
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

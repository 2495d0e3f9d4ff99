"""The cost reference benchmark: what routing + batch + prompt caching save on a realistic suite,
over a range of in-batch cache behaviour (best case, typical, worst case), every setting printed.

The reference suite (written in a temporary folder): 5,000 cases (``--cases N``), difficulty
60% easy / 30% medium / 10% hard routed to haiku / sonnet / opus; a shared system prompt of
3,000 tokens; rubric grading on opus with a 1,500-token rubric; mode batch, cache auto (1h TTL
in batch). Prompts are sized with the sandbox's own tokenizer, so token counts are exact against
the sandbox (about ±15% against the real API). A script responder fixes every output's length
(answers GEN_OUTPUT tokens, verdicts GRADE_OUTPUT tokens).

Cache hits inside a batch are best-effort on the real API ("typically 30%-98%", Anthropic's batch
docs), so one figure would hide the main unknown. The suite runs once per scenario, each on a
fresh sandbox (empty prompt cache) and a fresh store, with the sandbox's ``batch_concurrency``
(W, the wave size: a wave cannot read its own writes) and ``batch_cache_hit_rate`` (H, the chance
that an item reads an entry an earlier wave of its own batch wrote; entries from before the
batch are always read) set per scenario:

* best: no warming, W 1, H 1.0. Every item after a prefix's first write reads it: what ``plan``
  calls the best case, and what ``run --sandbox`` does.
* typical: no warming, W ``--wave`` (100), H ``--hit-rate`` (0.64, the middle of 30%-98%). The
  real API's concurrency is not published; at 5,000 cases the first wave is 2% of the items.
  The only figure that moves between repeats: the sandbox draws each hit from the seed, the
  batch and the item's custom_id, which holds the run id (a binomial spread, ~0.5 points).
* worst: no warming, H 0.0. No item reads what its own batch wrote, so every item writes its
  prefix: what ``plan`` calls the worst case. Below the quoted 30% low end: a bound, not a
  forecast.
* warmed: ``cache: {warm: true}`` (one synchronous warm-up request per prefix and model before
  each batch) at the typical W and H. The sandbox reads every warmed entry whatever H is; that
  the real API does too is an assumption.

Each run is the real CLI as a process (``evalbatch run suite.yaml --json``) against a sandbox
started in this process; its CPU time is the CLI's (the harness), this process's is the
sandbox's. Then ``evalbatch plan --json`` is asked, against the best run's store (so it uses
that run's actual outputs), for its best- and worst-case projection, printed beside the runs.

Prefix cache hit rate: the share of shared-prefix tokens read from the cache, from the run's JSON
report: sum(read) / (sum(read) + sum(written) + sum(uncached prefix tokens)) over its per-prefix
table (batch items), with the warm-up requests' writes added for the whole-run figure.

Then the sweep figure: the first ``--sweep-cases`` (1,000) cases swept over haiku, sonnet and
opus in one submission (typical W and H), against the same three models as three separate
sync runs: what a model-selection study costs each way.

The last line is machine-readable: ``cost-ref: actual/naive_best=.. typical=.. worst=..
prefix_hit_warm=.. prefix_hit_cold=.. sweep_vs_sync=..`` (actual cost over the naive
counterfactual: sync rates, strongest model, no cache; prefix_hit_warm is the warmed run's,
prefix_hit_cold the typical run's; sweep_vs_sync the sweep's cost over the three sync runs').

    .venv/bin/python benchmarks/cost.py [--cases 5000] [--wave 100] [--hit-rate 0.64] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from evalbatch.catalog import load_catalog
from evalbatch.catalog.tokenizer import count_text
from evalbatch.sandbox import SandboxConfig, SandboxServer

SYSTEM_TOKENS = 3_000
RUBRIC_TOKENS = 1_500
GEN_MAX_TOKENS = 400
GEN_OUTPUT = 180  # tokens of every answer (below max_tokens: the responder decides)
GRADE_MAX_TOKENS = 256
GRADE_OUTPUT = 40  # tokens of every verdict
MIX = (("easy", 0.6), ("medium", 0.3), ("hard", 0.1))
ROUTING = {"easy": "haiku", "medium": "sonnet", "hard": "opus", "default": "sonnet"}
COUNTERFACTUALS = (("actual", "cost"), ("sync rates", "sync_cost"), ("no cache", "nocache_cost"))
COUNTERFACTUALS += (("no routing", "norouting_cost"), ("naive", "naive_cost"))


@dataclass(frozen=True)
class Scenario:
    name: str
    warm: bool
    wave: int  # SandboxConfig.batch_concurrency
    hit_rate: float  # SandboxConfig.batch_cache_hit_rate
    why: str


def scenarios(wave: int, hit_rate: float) -> list[Scenario]:
    return [
        Scenario("best", False, 1, 1.0, "every item reads what earlier items wrote: plan's best"),
        Scenario("typical", False, wave, hit_rate, "H mid-range of the quoted 30%-98%"),
        Scenario("worst", False, 1, 0.0, "no item reads its own batch's writes: plan's worst"),
        Scenario("warmed", True, wave, hit_rate, "warm-up requests first, typical W and H"),
    ]


_TOPICS = ("refunds", "shipping", "warranty", "passwords", "invoices", "subscriptions")
_TOPICS += ("damaged items", "privacy requests", "chargebacks", "gift cards", "returns abroad")
_TOPICS += ("loyalty points",)


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
        "cache": {"mode": "auto", "warm": warm},
    }
    path = folder / ("suite-warm.yaml" if warm else "suite-cold.yaml")
    path.write_text(yaml.safe_dump(suite, sort_keys=False), encoding="utf-8")
    return path


def prefix_hit(report: dict[str, Any]) -> dict[str, float]:
    """Prefix cache hit rate from the run's JSON report: over its batch items (the report's
    per-prefix table) and over the whole run (warm-up requests' writes added)."""
    read = sum(p["read"] for p in report["prefixes"])
    batch = sum(p["read"] + p["written"] + p["uncached"] for p in report["prefixes"])
    warm = sum(x["cache_write_tokens"] for x in report["costs"] if x["step"] == "warm")
    return {"batch": read / batch if batch else 0.0, "all": read / (batch + warm) if batch else 0.0}


def cli_env(home: Path, base_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "EVALBATCH_"))}
    env.update(
        {
            "EVALBATCH_HOME": str(home),
            "ANTHROPIC_API_KEY": "sandbox",
            "ANTHROPIC_BASE_URL": base_url,
            "NO_COLOR": "1",
        }
    )
    return env


def run_cli(args: list[str], env: dict[str, str], out: Path) -> tuple[int, float]:
    """The CLI as a child process, stdout to ``out``: (exit code, its CPU seconds, user+sys)."""
    with out.open("w") as stdout, out.with_suffix(".err").open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "evalbatch", *args], env=env, stdout=stdout, stderr=stderr
        )
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_utime + usage.ru_stime


def cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_scenario(scenario: Scenario, suite: Path, responder: Path, home: Path, seed: int) -> Any:
    """Run the suite on a fresh sandbox and store; the run's JSON report plus measurements."""
    config = SandboxConfig(
        responder=f"script:{responder}",
        batch_latency=0.0,
        batch_concurrency=scenario.wave,
        batch_cache_hit_rate=scenario.hit_rate,
        seed=seed,
    )
    out = home.parent / f"run-{scenario.name}.json"
    started, cpu = time.monotonic(), cpu_self()
    with SandboxServer(config) as server:
        settings = server.settings()
        code, harness_cpu = run_cli(
            ["run", str(suite), "--json"], cli_env(home, server.base_url), out
        )
        stats = server.stats()
    elapsed, sandbox_cpu = time.monotonic() - started, cpu_self() - cpu
    if code not in (0, 1):  # 1: the gate failed, which the cost figures ignore
        sys.stderr.write(out.with_suffix(".err").read_text())
        raise SystemExit(f"evalbatch run failed with exit code {code}")
    report = json.loads(out.read_text())
    return {
        "report": report,
        "hit": prefix_hit(report),
        "settings": settings,
        "misses": stats.get("batch_cache_misses", 0),
        "wall_s": elapsed,
        "harness_cpu_s": harness_cpu,
        "sandbox_cpu_s": sandbox_cpu,
    }


def plan_range(suite: Path, home: Path) -> dict[str, Any]:
    """`plan --json` against a store holding a finished run of the suite (its actual outputs)."""
    out = home.parent / "plan.json"
    code, _ = run_cli(["plan", str(suite), "--json"], cli_env(home, "http://127.0.0.1:9"), out)
    if code != 0:
        raise SystemExit(f"evalbatch plan failed: {out.with_suffix('.err').read_text()}")
    return dict(json.loads(out.read_text()))


def print_run(scenario: Scenario, res: dict[str, Any]) -> None:
    report, hit, totals = res["report"], res["hit"], res["report"]["totals"]
    naive = totals["naive_cost"]
    print(
        f"== {scenario.name}: warming {'on' if scenario.warm else 'off'}, wave W={scenario.wave}, "
        f"in-batch hit rate H={scenario.hit_rate} ({scenario.why})"
    )
    print(f"   sandbox /_sandbox/config: {json.dumps(res['settings'], separators=(',', ':'))}")
    for name, key in COUNTERFACTUALS:
        value = totals[key]
        print(f"   {name:<11} ${value:>10,.4f}   {value / naive if naive else 0:6.1%} of naive")
    for line in report["costs"]:
        print(
            f"   {line['step']:<8} {line['model']:<18} {line['mode']:<5} "
            f"{line['requests']:>6} req  in {line['input_tokens']:>10,}  "
            f"write {line['cache_write_tokens']:>9,}  read {line['cache_read_tokens']:>11,}  "
            f"out {line['output_tokens']:>9,}  ${line['cost']:,.4f}"
        )
    print(
        f"   prefix cache hit rate {hit['all']:.4f} (batch items only {hit['batch']:.4f}); "
        f"sandbox batch_cache_misses {res['misses']:,}"
    )
    print(
        f"   run {report['run']['id']}: wall {res['wall_s']:.0f} s, CPU harness (CLI process) "
        f"{res['harness_cpu_s']:.1f} s, sandbox (this process) {res['sandbox_cpu_s']:.1f} s"
    )


def sweep_figure(
    folder: Path, responder: Path, root: Path, cases: int, seed: int
) -> dict[str, Any]:
    """A 3-model sweep (one batch submission, typical in-batch caching) against the same three
    models run separately on the sync path: what a model-selection study costs each way."""
    suite = folder / "suite-cold.yaml"
    sample = folder / "sweep"
    sample.mkdir(exist_ok=True)
    lines = (folder / "cases.jsonl").read_text().splitlines()[:cases]
    (sample / "cases.jsonl").write_text("\n".join(lines) + "\n")
    shutil.copytree(folder / "prompts", sample / "prompts", dirs_exist_ok=True)
    data = yaml.safe_load(suite.read_text())
    data["name"] = "cost-sweep"
    data["cache"] = "auto"  # the defaults a user gets: warming on in batch mode
    sweep_suite = sample / "suite.yaml"
    sweep_suite.write_text(yaml.safe_dump(data, sort_keys=False))
    config = SandboxConfig(
        responder=f"script:{responder}",
        batch_latency=0.0,
        batch_concurrency=100,
        batch_cache_hit_rate=0.64,
        seed=seed,
    )
    models = ("haiku", "sonnet", "opus")
    with SandboxServer(config) as server:
        home = root / "sweep-home"
        out = root / "sweep.json"
        code, _ = run_cli(
            ["sweep", str(sweep_suite), "--models", ",".join(models), "--json"],
            cli_env(home, server.base_url),
            out,
        )
        if code != 0:
            raise SystemExit(f"evalbatch sweep failed: {out.with_suffix('.err').read_text()}")
        swept = sum(v["cost_usd"] for v in json.loads(out.read_text())["variants"])
        batches = server.stats().get("batches_created", 0)
        separate = 0.0
        for model in models:
            out = root / f"sync-{model}.json"
            code, _ = run_cli(
                [
                    "run",
                    str(sweep_suite),
                    "--mode",
                    "sync",
                    "--set",
                    f"generate.model={model}",
                    "--json",
                ],
                cli_env(root / f"sync-{model}-home", server.base_url),
                out,
            )
            if code not in (0, 1):
                raise SystemExit(f"evalbatch run failed: {out.with_suffix('.err').read_text()}")
            separate += json.loads(out.read_text())["totals"]["cost"]
    print(
        f"== sweep: {cases} cases x {len(models)} models ({', '.join(models)}), rubric on opus: "
        f"one sweep (batch, cache auto = warmed, {batches} batches, W 100, H 0.64) ${swept:,.4f}; "
        f"three separate sync "
        f"runs ${separate:,.4f}; ratio {swept / separate:.3f}"
    )
    return {"swept": swept, "separate": separate, "ratio": swept / separate}


def print_settings(args: argparse.Namespace, folder: Path, counts: dict[str, int]) -> None:
    catalog = load_catalog()
    mix = ", ".join(f"{label} {counts.get(label, 0)}" for label, _ in MIX)
    routes = ", ".join(f"{k} -> {catalog.resolve(v)}" for k, v in ROUTING.items())
    print(f"settings: cases {args.cases} ({mix}); seed {args.seed} (case order, sandbox draws)")
    print(f"  routing: {routes}; rubric grader on {catalog.resolve('opus')}")
    print(
        f"  shared prefixes: system prompt {count_text((folder / 'prompts/system.md').read_text())}"
        f" tokens, rubric {count_text((folder / 'prompts/rubric.md').read_text())} tokens "
        "(sandbox tokenizer); mode batch, cache auto, 1h TTL in batch"
    )
    print(
        f"  outputs: answers {GEN_OUTPUT} tokens (max_tokens {GEN_MAX_TOKENS}), verdicts "
        f"{GRADE_OUTPUT} tokens (max_tokens {GRADE_MAX_TOKENS}); sandbox batch_latency 0"
    )
    print(
        "  in-batch cache hits on the real API: best-effort, 'typically 30%-98%' (Anthropic); "
        "machine: shared with other jobs, wall and CPU times vary with its load"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=5_000, help="cases in the suite")
    parser.add_argument("--wave", type=int, default=100, help="W of the typical and warmed runs")
    parser.add_argument(
        "--hit-rate", type=float, default=0.64, help="H of the typical and warmed runs"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--sweep-cases", type=int, default=1_000, help="cases of the 3-model sweep figure"
    )
    parser.add_argument("--keep", type=Path, help="keep the suite and stores in this folder")
    args = parser.parse_args(argv)

    root = args.keep or Path(tempfile.mkdtemp(prefix="evalbatch-cost-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        folder = root / "suite"
        folder.mkdir(parents=True, exist_ok=True)
        counts = write_cases(folder / "cases.jsonl", args.cases, args.seed)
        suites = {warm: write_suite(folder, warm=warm) for warm in (True, False)}
        responder = folder / "responses.yaml"
        write_responder(responder)
        print_settings(args, folder, counts)
        results: dict[str, dict[str, Any]] = {}
        for scenario in scenarios(args.wave, args.hit_rate):
            home = root / scenario.name / "home"
            shutil.rmtree(home.parent, ignore_errors=True)
            home.mkdir(parents=True)
            res = run_scenario(scenario, suites[scenario.warm], responder, home, args.seed)
            print_run(scenario, res)
            results[scenario.name] = res
        ratio = {
            name: res["report"]["totals"]["cost"] / res["report"]["totals"]["naive_cost"]
            for name, res in results.items()
        }
        plan = plan_range(suites[False], root / "best" / "home")
        cost = {name: res["report"]["totals"]["cost"] for name, res in results.items()}
        best, worst = (plan["cache_range"][a]["strategies"]["plan"] for a in ("best", "worst"))
        inside = "inside" if best <= cost["typical"] <= worst else "OUTSIDE"
        print(
            f"== plan, with the best run's outputs: best case ${best:,.4f} (best run "
            f"${cost['best']:,.4f}), worst case ${worst:,.4f} (worst run ${cost['worst']:,.4f}); "
            f"the typical run's ${cost['typical']:,.4f} is {inside} the range"
        )
        print("== actual/naive: " + ", ".join(f"{k} {v:.3f}" for k, v in ratio.items()))
        sweep = sweep_figure(folder, responder, root, min(args.sweep_cases, args.cases), args.seed)
        print(
            f"cost-ref: actual/naive_best={ratio['best']:.3f} typical={ratio['typical']:.3f} "
            f"worst={ratio['worst']:.3f} prefix_hit_warm={results['warmed']['hit']['all']:.4f} "
            f"prefix_hit_cold={results['typical']['hit']['all']:.4f} "
            f"sweep_vs_sync={sweep['ratio']:.3f}"
        )
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

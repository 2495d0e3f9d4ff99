"""The calibration figures quoted in docs/calibrate.md, on a known ground truth.

A `quality:` sandbox profile over 2,000 generated cases (60/30/10 easy/medium/hard, routed to
haiku/sonnet/opus): each model answers right with a per-difficulty probability (about half the
answers are right, so a grader's kappa is not flattered by an easy majority class), and grades
with a fixed verdict accuracy: haiku 97%, sonnet 99%, opus (the reference) 100%. In a temporary
folder, with the real CLI as a process against a sandbox started here (seed ``--seed``):

1. `run` the suite (rubric on opus);
2. `calibrate --step grade --candidates haiku,sonnet --sample 2000` at --min-kappa 0.9 and 0.95
   (the second reuses the first's verdicts);
3. `regrade` with the rubric on haiku and `reference: {model: opus, sample: 0.1}`: the PPI
   estimate of opus's pass rate against opus's actual pass rate on every case (step 1), and the
   regrade's generation ledger;
4. the PPI estimator alone, in-process, over ``--reps`` seeded repetitions of that setting
   (what tests/test_ppi.py asserts): coverage of the true reference rate and mean widths.

    .venv/bin/python benchmarks/calibrate.py [--seed 1] [--reps 100]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.sandbox.quality_cases import CALIBRATION_MODELS as MODELS  # noqa: E402
from tests.sandbox.quality_cases import CALIBRATION_SUITE as SUITE  # noqa: E402
from tests.sandbox.quality_cases import make_cases, write_profile  # noqa: E402

from evalbatch.analysis.ppi import ppi_mean  # noqa: E402
from evalbatch.graders.reference import in_sample  # noqa: E402
from evalbatch.sandbox import SandboxConfig, SandboxServer  # noqa: E402


def cli(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "evalbatch", *args, "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode not in (0, 1):
        raise SystemExit(f"evalbatch {' '.join(args)} failed: {proc.stderr}")
    return dict(json.loads(proc.stdout))


def coverage(reps: int) -> tuple[int, float, float]:
    covered, ppi_w, alone_w = 0, [], []
    for seed in range(reps):
        rng = np.random.default_rng(seed)
        truth = (rng.random(2000) < 0.7).astype(float)
        cheap = np.where(rng.random(2000) < 0.03, 1.0 - truth, truth)
        labeled = np.array([in_sample(f"case-{i:05d}", 0.1, seed) for i in range(2000)])
        est = ppi_mean(truth[labeled], cheap[labeled], cheap)
        covered += est.ppi.low <= truth.mean() <= est.ppi.high
        ppi_w.append(est.ppi.width)
        alone_w.append(est.classical.width)
    return covered, float(np.mean(ppi_w)), float(np.mean(alone_w))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1, help="the sandbox's seed")
    parser.add_argument("--reps", type=int, default=100, help="PPI repetitions")
    args = parser.parse_args()
    print(
        f"settings: 2,000 cases, verdict accuracy { ({m: v['verdict'] for m, v in MODELS.items()}) }"
    )
    print(f"settings: sandbox seed {args.seed}, PPI repetitions {args.reps}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        profile = write_profile(root, MODELS, make_cases(2000), prompt_template="Q: {{ input }}")
        (root / "suite.yaml").write_text(yaml.safe_dump(SUITE, sort_keys=False))
        config = SandboxConfig(responder=f"quality:{profile}", batch_latency=0.0, seed=args.seed)
        with SandboxServer(config) as server:
            env = {k: v for k, v in os.environ.items() if not k.startswith("EVALBATCH_")}
            env.update(
                ANTHROPIC_BASE_URL=server.base_url,
                ANTHROPIC_API_KEY="sandbox",
                EVALBATCH_HOME=str(root / "home"),
            )
            run = cli(["run", str(root / "suite.yaml")], env)
            run_id, truth = run["run"]["id"], run["graders"][0]["pass_rate"]
            print(f"run: opus's pass rate on all 2,000 cases {truth:.4f}")
            for minimum in ("0.9", "0.95"):
                cal = cli(
                    ["calibrate", run_id, "--candidates", "haiku,sonnet", "--sample", "2000",
                     "--min-kappa", minimum],
                    env,
                )  # fmt: skip
                for c in cal["candidates"]:
                    lo, hi = c["kappa_ci"]
                    blo, bhi = c["bias_ci"]
                    print(
                        f"calibrate --min-kappa {minimum}: {c['model']} agreement "
                        f"{c['agreement']:.4f} kappa {c['kappa']:.3f} [{lo:.3f}, {hi:.3f}] bias "
                        f"{c['bias'] * 100:+.2f}pp [{blo * 100:+.2f}, {bhi * 100:+.2f}] "
                        f"{c['verdict']}, ${c['cost_usd']:.4f}/run"
                    )
                print(
                    f"calibrate --min-kappa {minimum}: recommended {cal['recommended']} "
                    f"(opus ${cal['reference']['cost_usd']:.4f}/run)"
                )
            regrade = cli(
                ["regrade", run_id, "--set", "grade.rubric.model=haiku", "--set",
                 "grade.rubric.reference={model: opus, sample: 0.1}"],
                env,
            )  # fmt: skip
            line = regrade["references"][0]
            generate = [c for c in regrade["costs"] if c["step"] == "generate"]
            print(
                f"regrade: generation ledger {sum(c['requests'] for c in generate)} requests, "
                f"${sum(c['cost'] for c in generate):.2f}, "
                f"{sum(c['input_tokens'] + c['output_tokens'] for c in generate)} tokens"
            )
            print(
                f"reference sampling: haiku {line['cheap_rate']:.4f} on {line['cases']} cases; "
                f"opus {line['reference_rate']:.4f} on {line['labeled']}; PPI "
                f"{line['estimate']:.4f} [{line['ci_low']:.4f}, {line['ci_high']:.4f}] "
                f"(width {line['ci_high'] - line['ci_low']:.4f}; the sample alone "
                f"[{line['sample_only_low']:.4f}, {line['sample_only_high']:.4f}], width "
                f"{line['sample_only_high'] - line['sample_only_low']:.4f}); truth {truth:.4f}"
            )
            print(
                f"reference sampling cost: ${line['cost'] + line['reference_cost']:.4f} "
                f"(haiku ${line['cost']:.4f} + opus ${line['reference_cost']:.4f}) against "
                f"${line['all_reference_cost']:.4f} for opus on every case"
            )
    covered, ppi_w, alone_w = coverage(args.reps)
    print(
        f"ppi coverage: {covered}/{args.reps}, mean width {ppi_w:.4f} vs {alone_w:.4f} for the "
        f"reference sample alone ({ppi_w / alone_w:.2f}x)"
    )


if __name__ == "__main__":
    main()

"""Markdown, sized for a pull-request comment: headline, scoreboard, cost, the first failures."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from .cases import iter_case_rows
from .summary import RunSummary
from .text import headline, pct, usd

MAX_FAILURES = 10


def _cell(value: object, limit: int = 120) -> str:
    text = str(value if value is not None else "").replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_markdown(engine: Engine, summary: RunSummary) -> str:
    run = summary.run
    lines = [
        f"### evalbatch: {run['suite']} — {pct(summary.pass_rate)} passed",
        "",
        f"**{headline(summary)}** · run `{run['id']}` · mode {run['mode']} · "
        f"manifest `{run['manifest_hash'][:12]}` · {run['cases']} cases",
        "",
        "| grader | type | pass rate | passed | failed | errors |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for g in summary.graders:
        lines.append(
            f"| {g.name} | {g.type} | {pct(g.pass_rate)} | {g.passed} | {g.failed} | {g.errors} |"
        )
    lines += [
        "",
        "| step | model | mode | requests | cache read | cost | sync-rate |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for c in summary.costs:
        lines.append(
            f"| {c.step} | {c.model} | {c.mode} | {c.requests:,} | "
            f"{pct(c.cache_read_share)} | {usd(c.cost)} | {usd(c.sync_cost)} |"
        )
    if summary.routed:
        lines += ["", "| step | route | model | requests | cost | pass rate |"]
        lines += ["|---|---|---|---:|---:|---:|"]
        for r in summary.routes:
            rate = pct(r.pass_rate) if r.step == "generate" else ""
            lines.append(
                f"| {r.step} | {_cell(r.route)} | {r.model} | {r.requests:,} | {usd(r.cost)} | "
                f"{rate} |"
            )
    lines += [f"\n> warning: {p.warning}" for p in summary.prefixes if p.warning]
    if summary.gate:
        state = "failed" if summary.gate_failed else "passed"
        lines += [
            "",
            f"Gate: pass rate {pct(summary.gate['pass_rate'])} vs minimum "
            f"{pct(summary.gate['min_pass_rate'])}: **{state}**",
        ]
    failing = [row for row in iter_case_rows(engine, str(run["id"])) if row.status != "pass"]
    if failing:
        lines += [
            "",
            f"<details><summary>{len(failing)} failing case(s)</summary>",
            "",
            "| case | grader | output | explanation |",
            "|---|---|---|---|",
        ]
        for row in failing[:MAX_FAILURES]:
            for s in row.scores:
                if not s["passed"]:
                    lines.append(
                        f"| {_cell(row.case_id)} | {s['grader']} | "
                        f"{_cell(row.output, 80)} | "
                        f"{_cell(s['error'] or s['explanation'])} |"
                    )
        if len(failing) > MAX_FAILURES:
            lines.append(f"| … {len(failing) - MAX_FAILURES} more | | | |")
        lines += ["", "</details>"]
    return "\n".join(lines) + "\n"

"""Markdown, sized for a pull-request comment: a run's headline, scoreboard, cost and first
failures; a comparison's verdict, per-grader table, manifest diff and regressed cases."""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..analysis.compare import Comparison
from ..analysis.summary import RunSummary
from ..store.records import CaseRow
from .wording import (
    MAX_CASES,
    gate_rate,
    headline,
    numeric_lines,
    p_value,
    pct,
    reference_compare_lines,
    reference_lines,
    scope_notes,
    usd,
)

MAX_FAILURES = 10


def _cell(value: object, limit: int = 120) -> str:
    """A table cell holding what a case or a model wrote: an inline code span on one line, so a
    PR comment can neither be restyled nor made to load anything by an output's markup."""
    text = " ".join(str(value if value is not None else "").split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    if not text:
        return ""
    text = text.replace("|", "\\|")  # a pipe would end the cell, even inside code
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _fenced(text: str, language: str) -> list[str]:
    """A fenced block longer than any backtick run inside, so the text cannot close it."""
    fence = "`" * max(3, max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    return [f"{fence}{language}", text, fence]


def render_markdown(summary: RunSummary, rows: Iterable[CaseRow]) -> str:
    run = summary.run
    lines = [
        f"### evalbatch: {run.suite} — {pct(summary.pass_rate)} passed",
        "",
        f"**{headline(summary)}** · run `{run.id}` · mode {run.mode} · "
        f"manifest `{run.manifest_hash[:12]}` · {run.cases} cases",
        *[f"\n> generations from `{run.generations_from}` (not billed)"]
        * bool(run.generations_from),
        *[f"\n> **warning:** {w}" for w in summary.warnings],
        "",
        "| grader | type | pass rate | passed | failed | errors |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for g in summary.graders:
        lines.append(
            f"| {_cell(g.name)} | {g.type} | {pct(g.pass_rate)} | {g.passed} | {g.failed} | "
            f"{g.errors} |"
        )
    lines += [f"\n> {line}" for line in reference_lines(summary)]
    lines += [
        "",
        "| step | model | mode | requests | cache read | cost | sync-rate |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for c in summary.costs:
        lines.append(
            f"| {c.step} | {_cell(c.model)} | {c.mode} | {c.requests:,} | "
            f"{pct(c.cache_read_share)} | {usd(c.cost)} | {usd(c.sync_cost)} |"
        )
    if summary.routed:
        lines += ["", "| step | route | model | requests | cost | pass rate |"]
        lines += ["|---|---|---|---:|---:|---:|"]
        for r in summary.routes:
            rate = pct(r.pass_rate) if r.step == "generate" else ""
            lines.append(
                f"| {r.step} | {_cell(r.route)} | {_cell(r.model)} | {r.requests:,} | "
                f"{usd(r.cost)} | "
                f"{rate} |"
            )
    lines += [f"\n> warning: {p.warning}" for p in summary.prefixes if p.warning]
    if summary.gate:
        state = "failed" if summary.gate_failed else "passed"
        lines += [
            "",
            f"Gate: pass rate {gate_rate(summary)} vs minimum "
            f"{pct(summary.gate.min_pass_rate)}: **{state}**",
        ]
    failing = [row for row in rows if row.status != "pass"]
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
                if not s.passed:
                    lines.append(
                        f"| {_cell(row.case_id)} | {_cell(s.grader)} | "
                        f"{_cell(row.output, 80)} | "
                        f"{_cell(s.error or s.explanation)} |"
                    )
        if len(failing) > MAX_FAILURES:
            lines.append(f"| … {len(failing) - MAX_FAILURES} more | | | |")
        lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


def render_comparison_markdown(cmp: Comparison) -> str:
    icon = {"regressed": "🔴", "improved": "🟢"}.get(cmp.verdict, "⚪")
    lines = [f"### {icon} evalbatch compare: {cmp.verdict}", "", cmp.verdict_line(), ""]
    lines += [f"> {n}" for n in scope_notes(cmp)]
    lines += [
        "",
        "| grader | n | base | new | diff | 95% CI | fixed | regressed | p | verdict |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for g in cmp.graders:
        lines.append(
            f"| {g.grader} | {g.n} | {pct(g.base_rate)} | {pct(g.new_rate)} | "
            f"{g.diff * 100:+.1f}pp | [{g.ci_low * 100:+.1f}, {g.ci_high * 100:+.1f}] | "
            f"{g.fixed} | {g.regressed} | {p_value(g.p_adjusted)} | {g.verdict} |"
        )
    numeric = reference_compare_lines(cmp) + numeric_lines(cmp)
    if numeric:
        lines += [""] + [f"- {line}" for line in numeric]
    if cmp.changes:
        lines += ["", "<details><summary>What changed in the manifest</summary>", ""]
        for change in cmp.changes:
            lines.append(f"- `{change.key}`: {change.summary}")
            if change.diff:
                lines += ["", *_fenced(change.diff.rstrip()[:3000], "diff"), ""]
        lines += ["</details>"]
    regressed = [c for c in cmp.cases if c.change == "regressed"]
    if regressed:
        lines += [
            "",
            f"<details><summary>{len(regressed)} regressed case(s)</summary>",
            "",
            "| case | grader | base output | new output | why |",
            "|---|---|---|---|---|",
        ]
        for d in regressed[:MAX_CASES]:
            lines.append(
                f"| {_cell(d.case_id, 100)} | {_cell(d.grader)} | {_cell(d.base_output, 100)} | "
                f"{_cell(d.new_output, 100)} | {_cell(d.new_explanation, 100)} |"
            )
        if len(regressed) > MAX_CASES:
            lines.append(f"\n… and {len(regressed) - MAX_CASES} more (see the JSON or HTML report)")
        lines += ["", "</details>"]
    return "\n".join(lines) + "\n"

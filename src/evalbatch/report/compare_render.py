"""Renderings of a Comparison: text, json, markdown (PR comment), junit, html."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import orjson
from rich.console import Console, Group
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from ..analysis.compare import Comparison
from ..errors import ConfigError
from .text import pct

FORMATS = ("text", "json", "markdown", "junit", "html")
MAX_CASES = 20


def _p(value: float) -> str:
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def verdict_line(cmp: Comparison) -> str:
    return (
        f"{cmp.verdict}: {cmp.new['id']} vs {cmp.base['id']} on {cmp.common_cases} common "
        f"cases (alpha {cmp.alpha}{', BH-adjusted' if cmp.adjusted else ''})"
    )


def _scope_notes(cmp: Comparison) -> list[str]:
    notes = []
    if cmp.only_base or cmp.only_new or cmp.changed_cases:
        notes.append(
            f"compared on common cases only: {len(cmp.only_base)} removed, "
            f"{len(cmp.only_new)} added, {len(cmp.changed_cases)} changed"
        )
    if cmp.skipped_graders:
        notes.append(f"graders not in both runs (not compared): {', '.join(cmp.skipped_graders)}")
    if cmp.flaky:
        notes.append(
            f"{len(cmp.flaky)} flaky case(s) (verdict varies across epochs), "
            "reported apart from regressions"
        )
    return notes


def numeric_lines(cmp: Comparison) -> list[str]:
    """Graders with numeric scores (a rubric's 1-5): the paired mean difference, its seeded
    bootstrap interval and the signed-rank p-value."""
    out = []
    for g in cmp.graders:
        x = g.numeric
        if not x:
            continue
        out.append(
            f"{g.grader}: mean score {x['base_mean']:.2f} -> {x['new_mean']:.2f} "
            f"({x['mean_diff']:+.2f}, 95% bootstrap CI [{x['ci_low']:+.2f}, {x['ci_high']:+.2f}], "
            f"p={_p(x['p_value'])} by {x['test']}, n={x['n']})"
        )
    return out


def render_text(cmp: Comparison) -> Group:
    style = {"regressed": "bold red", "improved": "bold green"}.get(cmp.verdict, "bold")
    parts: list[object] = [Text(verdict_line(cmp), style=style)]
    parts += [Text(n, style="yellow") for n in _scope_notes(cmp)]
    if cmp.changes:
        parts.append(Text("What changed:", style="bold"))
        for change in cmp.changes:
            parts.append(Text(f"  {change.key}: {change.summary}"))
            if change.diff:
                parts.append(Syntax(change.diff, "diff", theme="ansi_dark"))
    else:
        parts.append(Text("Manifests are identical: same models, prompts, graders and cases."))
    table = Table(title="Per grader (paired)", title_justify="left")
    for col in (
        "grader",
        "n",
        "base",
        "new",
        "diff",
        "95% CI",
        "fixed",
        "regressed",
        "p",
        "verdict",
    ):
        table.add_column(col, justify="left" if col in ("grader", "verdict") else "right")
    for g in cmp.graders:
        table.add_row(
            g.grader,
            str(g.n),
            pct(g.base_rate),
            pct(g.new_rate),
            f"{g.diff * 100:+.1f}pp",
            f"[{g.ci_low * 100:+.1f}, {g.ci_high * 100:+.1f}]",
            str(g.fixed),
            str(g.regressed),
            _p(g.p_adjusted),
            g.verdict,
        )
    parts.append(table)
    parts.extend(Text(line) for line in numeric_lines(cmp))
    regressed = [c for c in cmp.cases if c.change == "regressed"]
    for d in regressed[:MAX_CASES]:
        parts.append(Text(f"regressed: {d.case_id} [{d.grader}]", style="red"))
        parts.append(
            Text(
                f"  base: {d.base_output[:200]!r}\n  new:  {d.new_output[:200]!r}\n"
                f"  why:  {d.new_explanation[:200]}"
            )
        )
    if len(regressed) > MAX_CASES:
        parts.append(
            Text(f"… and {len(regressed) - MAX_CASES} more regressed (--format json lists all)")
        )
    for f in cmp.flaky[:MAX_CASES]:
        parts.append(
            Text(
                f"flaky: {f['case_id']} [{f['grader']}] passed {f['base_passed']} epochs in base, "
                f"{f['new_passed']} in new",
                style="yellow",
            )
        )
    return Group(*parts)  # type: ignore[arg-type]


def render_markdown(cmp: Comparison) -> str:
    icon = {"regressed": "🔴", "improved": "🟢"}.get(cmp.verdict, "⚪")
    lines = [f"### {icon} evalbatch compare: {cmp.verdict}", "", verdict_line(cmp), ""]
    lines += [f"> {n}" for n in _scope_notes(cmp)]
    lines += [
        "",
        "| grader | n | base | new | diff | 95% CI | fixed | regressed | p | verdict |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for g in cmp.graders:
        lines.append(
            f"| {g.grader} | {g.n} | {pct(g.base_rate)} | {pct(g.new_rate)} | "
            f"{g.diff * 100:+.1f}pp | [{g.ci_low * 100:+.1f}, {g.ci_high * 100:+.1f}] | "
            f"{g.fixed} | {g.regressed} | {_p(g.p_adjusted)} | {g.verdict} |"
        )
    numeric = numeric_lines(cmp)
    if numeric:
        lines += [""] + [f"- {line}" for line in numeric]
    if cmp.changes:
        lines += ["", "<details><summary>What changed in the manifest</summary>", ""]
        for change in cmp.changes:
            lines.append(f"- `{change.key}`: {change.summary}")
            if change.diff:
                lines += ["", "```diff", change.diff.rstrip()[:3000], "```", ""]
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
                f"| {_cell(d.case_id)} | {d.grader} | {_cell(d.base_output)} | "
                f"{_cell(d.new_output)} | {_cell(d.new_explanation)} |"
            )
        if len(regressed) > MAX_CASES:
            lines.append(f"\n… and {len(regressed) - MAX_CASES} more (see the JSON or HTML report)")
        lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


def _cell(value: object, limit: int = 100) -> str:
    text = str(value).replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_junit(cmp: Comparison) -> str:
    suite = ET.Element("testsuite", name=f"compare {cmp.base['suite']}")
    regressed = {(c.case_id, c.epoch, c.grader): c for c in cmp.cases if c.change == "regressed"}
    tests = 0
    for g in cmp.graders:
        tests += 1
        case = ET.SubElement(suite, "testcase", classname="evalbatch.compare", name=g.grader)
        if g.verdict == "regressed":
            ET.SubElement(
                case,
                "failure",
                message=f"{g.grader} regressed: {g.diff * 100:+.1f}pp, p={_p(g.p_adjusted)}",
            )
    for (case_id, epoch, grader), d in regressed.items():
        tests += 1
        name = case_id if epoch == 0 else f"{case_id}#epoch{epoch}"
        case = ET.SubElement(suite, "testcase", classname=f"evalbatch.compare.{grader}", name=name)
        node = ET.SubElement(case, "failure", message=(d.new_explanation or "regressed")[:500])
        node.text = f"base output:\n{d.base_output}\n\nnew output:\n{d.new_output}"
    suite.set("tests", str(tests))
    suite.set("failures", str(sum(1 for _ in suite.iter("failure"))))
    root = ET.Element("testsuites", name="evalbatch")
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def render_comparison(cmp: Comparison, fmt: str) -> str:
    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)} (got {fmt!r})")
    if fmt == "json":
        return orjson.dumps(cmp.to_dict(), option=orjson.OPT_INDENT_2).decode() + "\n"
    if fmt == "markdown":
        return render_markdown(cmp)
    if fmt == "junit":
        return render_junit(cmp)
    if fmt == "html":
        from .html import render_compare_html

        return render_compare_html(cmp)
    buffer = io.StringIO()
    Console(file=buffer, width=120, color_system=None).print(render_text(cmp))
    return buffer.getvalue()

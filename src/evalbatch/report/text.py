"""The terminal rendering: a run's headline, scoreboard and cost tables, and a comparison's
verdict, manifest diff and per-grader table. Pure functions of records."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console, Group
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from ..analysis.summary import RunSummary
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

if TYPE_CHECKING:  # the comparison's statistics (scipy) load only where one is rendered
    from ..analysis.compare import Comparison


def render_text(summary: RunSummary) -> Group:
    run = summary.run
    parts: list[object] = [
        Text(headline(summary), style="bold"),
        Text(
            f"run {run.id}  suite {run.suite}  mode {run.mode}  status {run.status}"
            f"  manifest {run.manifest_hash[:12]}  cases {run.cases}"
        ),
    ]
    if run.generations_from:
        parts.append(
            Text(f"generations from {run.generations_from} (reused: not sent again, not billed)")
        )
    if run.error:
        parts.append(Text(f"needs attention: {run.error}", style="bold red"))
    parts.extend(Text(f"warning: {w}", style="bold yellow") for w in summary.warnings)
    parts.append(_scoreboard(summary))
    parts.extend(Text(line) for line in reference_lines(summary))
    parts.append(_costs(summary))
    if summary.routed:
        parts.append(_routes(summary))
    if summary.prefixes:
        parts.append(_prefixes(summary))
        for line in summary.prefixes:
            if line.warning:
                parts.append(Text(f"warning: {line.warning}", style="yellow"))
    if summary.warming:
        w = summary.warming
        even = w.break_even_writes_per_prefix
        parts.append(
            Text(
                f"cache warming: {w.requests} request(s) cost {usd(w.cost)}; it pays for "
                f"itself once it spares {even:.1f} cache write(s) per prefix; the steps it warmed "
                f"wrote the cache {w.writes_after_warming} time(s)"
                if even is not None
                else f"cache warming: {w.requests} request(s) cost {usd(w.cost)}"
            )
        )
    if summary.errors:
        parts.append(_errors(summary))
    if summary.gate:
        ok = not summary.gate_failed
        parts.append(
            Text(
                f"gate: pass rate {gate_rate(summary)} "
                f"{'>=' if ok else '<'} {pct(summary.gate.min_pass_rate)}: "
                f"{'passed' if ok else 'FAILED'}",
                style="green" if ok else "bold red",
            )
        )
    return Group(*parts)  # type: ignore[arg-type]


def _scoreboard(summary: RunSummary) -> Table:
    table = Table(
        title=f"Scoreboard — {pct(summary.pass_rate)} of {summary.cases_scored} "
        "cases passed every grader",
        title_justify="left",
    )
    for col in ("grader", "type", "pass rate", "passed", "failed", "errors", "mean"):
        table.add_column(col, justify="left" if col in ("grader", "type") else "right")
    for line in summary.graders:
        table.add_row(
            line.name,
            line.type,
            pct(line.pass_rate),
            str(line.passed),
            str(line.failed),
            str(line.errors),
            "-" if line.mean_value is None else f"{line.mean_value:.2f}",
        )
    return table


def _costs(summary: RunSummary) -> Table:
    table = Table(title="Cost by step and model", title_justify="left")
    for col in (
        "step",
        "model",
        "mode",
        "requests",
        "input",
        "output",
        "cache read",
        "cost",
        "sync-rate",
        "saved",
    ):
        table.add_column(col, justify="left" if col in ("step", "model", "mode") else "right")
    for c in summary.costs:
        saved = c.sync_cost - c.cost
        table.add_row(
            c.step,
            c.model,
            c.mode,
            f"{c.requests:,}",
            f"{c.input_tokens + c.cache_write_tokens + c.cache_read_tokens:,}",
            f"{c.output_tokens:,}",
            pct(c.cache_read_share),
            usd(c.cost),
            usd(c.sync_cost),
            usd(saved),
        )
    total, sync = summary.total("cost"), summary.total("sync_cost")
    table.add_row(
        "total", "", "", "", "", "", "", usd(total), usd(sync), usd(sync - total), style="bold"
    )
    return table


def _routes(summary: RunSummary) -> Table:
    table = Table(title="By route", title_justify="left")
    for col in ("step", "route", "model", "requests", "cost", "naive", "pass rate"):
        table.add_column(col, justify="left" if col in ("step", "route", "model") else "right")
    for r in summary.routes:
        table.add_row(
            r.step,
            r.route,
            r.model,
            f"{r.requests:,}",
            usd(r.cost),
            usd(r.naive_cost),
            pct(r.pass_rate) if r.step == "generate" else "",
        )
    return table


def _prefixes(summary: RunSummary) -> Table:
    table = Table(title="Prompt cache by shared prefix", title_justify="left")
    for col in ("prefix", "hash", "model", "tokens", "requests", "read", "written", "uncached"):
        table.add_column(col, justify="left" if col in ("prefix", "hash", "model") else "right")
    for p in summary.prefixes:
        table.add_row(
            p.source,
            p.sha256[:8],
            p.model,
            f"{p.tokens:,}",
            f"{p.requests:,}",
            pct(p.read_share),
            pct(p.written_share),
            pct(p.uncached_share),
        )
    return table


def _errors(summary: RunSummary) -> Table:
    table = Table(title="Errors (first 20)", title_justify="left")
    for col in ("step", "case", "grader", "error"):
        table.add_column(col)
    for e in summary.errors[:20]:
        table.add_row(e.step, str(e.case_id), e.grader or "", str(e.error)[:120])
    return table


def print_text(summary: RunSummary, console: Console) -> None:
    console.print(render_text(summary))


def render_comparison_text(cmp: Comparison) -> Group:
    style = {"regressed": "bold red", "improved": "bold green"}.get(cmp.verdict, "bold")
    parts: list[object] = [Text(cmp.verdict_line(), style=style)]
    parts += [Text(n, style="yellow") for n in scope_notes(cmp)]
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
            p_value(g.p_adjusted),
            g.verdict,
        )
    parts.append(table)
    parts.extend(Text(line) for line in reference_compare_lines(cmp))
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
                f"flaky: {f.case_id} [{f.grader}] passed {f.base_passed} epochs in base, "
                f"{f.new_passed} in new",
                style="yellow",
            )
        )
    return Group(*parts)  # type: ignore[arg-type]

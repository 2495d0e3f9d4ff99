"""The terminal rendering of a calibration: per candidate grader its agreement, kappa, bias,
verdict and cost, the recommendation and the suite snippet that adopts it; per route the
non-inferiority of each candidate model and the `routing:` block. Pure functions of records."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from ..analysis.calibrate_generate import GenerateCalibration
from ..analysis.calibrate_grade import GradeCalibration
from .wording import pct, usd


def _pp(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:+.1f}pp"


def _ci(bounds: list[float] | None, percent: bool = False) -> str:
    if bounds is None:
        return "-"
    lo, hi = bounds
    return f"[{lo * 100:+.1f}, {hi * 100:+.1f}]" if percent else f"[{lo:.3f}, {hi:.3f}]"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def _sample_line(sample: dict[str, object], what: str) -> str:
    line = f"sample: {sample['size']:,} of {sample['population']:,} {what}"
    if sample.get("whole"):
        line += " (the whole run: the sample asked for is at least its size)"
    excluded = int(str(sample.get("excluded", 0)))
    if excluded:
        line += f"; {excluded:,} left out (no verdict from the reference grader)"
    return line


def render_grade_calibration(cal: GradeCalibration) -> Group:
    parts: list[object] = [
        Text(
            f"calibrate {cal.run} --step grade: grader {cal.grader}, reference {cal.reference}",
            style="bold",
        ),
        Text(
            f"calibration {cal.calibration} (run {cal.calibration_run}); "
            + _sample_line(cal.sample, "cases, stratified by verdict and route, seeded")
        ),
        Text(
            f"trustworthy: kappa's lower bound >= {cal.min_kappa:g} and the bias interval "
            f"inside ±{cal.max_bias * 100:g}pp (95% intervals)"
        ),
    ]
    table = Table(title="Candidates against the reference", title_justify="left")
    for col in ("model", "n", "agree", "kappa", "95% CI", "bias", "95% CI ", "verdict", "cost/run"):
        table.add_column(col, justify="left" if col in ("model", "verdict") else "right")
    table.add_row(cal.reference, "", "", "", "", "", "", "reference", usd(cal.reference_cost_usd))
    for c in cal.candidates:
        table.add_row(
            c.model,
            f"{c.n:,}",
            pct(c.agreement),
            "-" if c.kappa is None else f"{c.kappa:.3f}",
            _ci(c.kappa_ci),
            _pp(c.bias),
            _ci(c.bias_ci, percent=True),
            c.verdict,
            "-" if c.cost_usd is None else usd(c.cost_usd),
        )
    parts.append(table)
    for c in cal.candidates:
        (rp, rf), (fp, ff) = c.confusion
        detail = (
            f"{c.model}: {c.verdict} — {c.reason}. Confusion (reference rows pass/fail x "
            f"candidate pass/fail): [[{rp}, {rf}], [{fp}, {ff}]]"
        )
        if c.spearman is not None:
            detail += f"; Spearman {c.spearman:.3f}"
        if c.mean_abs_diff is not None:
            detail += f"; mean |score difference| {c.mean_abs_diff:.3f}"
        if c.errors:
            detail += f"; {c.errors} grader error(s) left out"
        detail += f"; calibration cost {usd(c.calibration_cost_usd)}"
        parts.append(Text(detail))
    parts.extend(_grade_recommendation(cal))
    return Group(*parts)  # type: ignore[arg-type]


def _grade_recommendation(cal: GradeCalibration) -> list[object]:
    best = next((c for c in cal.candidates if c.model == cal.recommended), None)
    if best is None:
        return [
            Text(
                f"recommended: none — no candidate cheaper than {cal.reference} is trustworthy "
                f"at min-kappa {cal.min_kappa:g}, max-bias {cal.max_bias * 100:g}pp: keep it",
                style="bold",
            )
        ]
    saving, monthly = best.saving_per_run_usd or 0.0, best.saving_per_month_usd or 0.0
    return [
        Text(
            f"recommended: {best.model} — saves {usd(saving)} per run, {usd(monthly)} per month "
            f"at {cal.per_month} runs a month (this grader: {usd(cal.reference_cost_usd)} -> "
            f"{usd(best.cost_usd or 0.0)} per run)",
            style="bold green",
        ),
        Text(f"to adopt it, in the suite's grade: list, the {cal.grader} entry becomes:"),
        Text(cal.snippet or ""),
    ]


def render_generate_calibration(cal: GenerateCalibration) -> Group:
    parts: list[object] = [
        Text(f"calibrate {cal.run} --step generate", style="bold"),
        Text(
            f"calibration {cal.calibration} (runs "
            + ", ".join(f"{m}: {r}" for m, r in cal.calibration_runs.items())
            + f"); non-inferior: the one-sided {100 - cal.alpha * 100:g}% lower bound of "
            f"(candidate - current) above -{cal.margin * 100:g}pp, paired per case"
        ),
    ]
    table = Table(
        title="Per route (n: cases, then sampled; pass rates: the current model -> the candidate)",
        title_justify="left",
    )
    for col in ("route", "model", "n", "pass rates", "diff", "bound", "verdict", "cost/run"):
        table.add_column(
            col,
            justify="left" if col in ("route", "model", "verdict") else "right",
            no_wrap=col in ("route", "model", "verdict", "pass rates"),
        )
    for route in cal.routes:
        table.add_row(
            route.route, route.model, f"{route.cases:,}", "", "", "", "current", usd(route.cost_usd)
        )
        for c in route.candidates:
            verdict = c.verdict + (f" (n≈{c.decide_at:,})" if c.decide_at else "")
            table.add_row(
                "",
                c.model,
                f"{c.n:,}",
                f"{_rate(c.current_rate)} -> {_rate(c.candidate_rate)}",
                _pp(c.diff),
                _pp(c.lower_bound),
                verdict,
                "-" if c.cost_usd is None else usd(c.cost_usd),
            )
    parts.append(table)
    if any(c.decide_at for r in cal.routes for c in r.candidates):
        parts.append(
            Text("inconclusive (n≈N): about N sampled cases would decide, if the estimates hold")
        )
    for route in cal.routes:
        if route.recommended != route.model_id:
            parts.append(Text(f"{route.route}: {route.model} -> {route.recommended}"))
    change = cal.change_per_run
    parts.append(
        Text(
            f"generation per run: {usd(cal.cost_now_usd)} -> {usd(cal.cost_after_usd)} "
            f"({'+' if change > 0 else '-' if change < 0 else '±'}{usd(abs(change))} per run, "
            f"{usd(abs(change) * cal.per_month)} per month at {cal.per_month} runs a month)",
            style="bold",
        )
    )
    parts.append(Text("the suite's routing with the recommended models:"))
    parts.append(Text(cal.routing))
    return Group(*parts)  # type: ignore[arg-type]

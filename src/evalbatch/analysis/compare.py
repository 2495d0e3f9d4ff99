"""`compare`: what changed between two runs' manifests, and whether scores regressed.

Runs are compared on the cases and graders they share (a case whose content changed is not
shared). Per grader: paired pass/fail statistics (exact McNemar) and, for numeric scores, a
paired bootstrap; with several graders the p-values are adjusted (Benjamini-Hochberg).
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from sqlalchemy import and_, select
from sqlalchemy.engine import Engine

from ..errors import InputError
from ..run.engine import load_run
from ..store import schema
from .stats import benjamini_hochberg, compare_numeric, compare_pass_fail, verdict

RESULT_KEYS = (
    "generate",
    "routing",
    "graders",
    "cases",
    "epochs",
    "pricing_version",
    "models_version",
    "evalbatch_version",
)


@dataclass
class ManifestChange:
    key: str
    summary: str
    diff: str = ""  # a unified diff for texts


@dataclass
class CaseDiff:
    case_id: str
    epoch: int
    grader: str
    change: str  # "regressed" | "fixed"
    input: Any
    target: Any
    base_output: str
    new_output: str
    base_explanation: str
    new_explanation: str


@dataclass
class GraderComparison:
    grader: str
    type: str
    n: int
    both_pass: int
    both_fail: int
    fixed: int
    regressed: int
    base_rate: float
    new_rate: float
    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    p_adjusted: float
    excluded_errors: int
    verdict: str
    numeric: dict[str, Any] | None = None


@dataclass
class Comparison:
    base: dict[str, Any]
    new: dict[str, Any]
    comparable: bool
    changes: list[ManifestChange]
    common_cases: int
    only_base: list[str]
    only_new: list[str]
    changed_cases: list[str]
    graders: list[GraderComparison]
    skipped_graders: list[str]
    cases: list[CaseDiff] = field(default_factory=list)
    flaky: list[dict[str, Any]] = field(default_factory=list)
    alpha: float = 0.05
    min_effect: float = 0.0
    adjusted: bool = False

    @property
    def verdict(self) -> str:
        verdicts = {g.verdict for g in self.graders}
        if "regressed" in verdicts:
            return "regressed"
        if "improved" in verdicts:
            return "improved"
        return "no significant change"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["verdict"] = self.verdict
        return data


def _manifest(engine: Engine, run_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    state = load_run(engine, run_id)
    with engine.connect() as conn:
        row = conn.execute(select(schema.runs).where(schema.runs.c.id == run_id)).one()
    info = {
        "id": row.id,
        "suite": row.suite_name,
        "mode": row.mode,
        "status": row.status,
        "manifest_hash": row.manifest_hash,
        "created_at": row.created_at,
        "epochs": state.suite.epochs,
    }
    if row.status != "done":
        raise InputError(f"run {run_id} is {row.status}, not done: collect it first")
    return orjson.loads(row.manifest), info


def _text_diff(name: str, old: str | None, new: str | None) -> str:
    lines = difflib.unified_diff(
        (old or "").splitlines(),
        (new or "").splitlines(),
        fromfile=f"base/{name}",
        tofile=f"new/{name}",
        lineterm="",
    )
    text = "\n".join(lines)
    return text + "\n" if text else ""


def diff_manifests(base: dict[str, Any], new: dict[str, Any]) -> list[ManifestChange]:
    changes: list[ManifestChange] = []
    bg, ng = base.get("generate", {}), new.get("generate", {})
    for key in ("system", "prompt"):
        if bg.get(key) != ng.get(key):
            changes.append(
                ManifestChange(
                    f"generate.{key}",
                    f"{key} text changed",
                    _text_diff(key, bg.get(key), ng.get(key)),
                )
            )
    for key in ("model", "max_tokens", "stop_sequences"):
        if bg.get(key) != ng.get(key):
            changes.append(
                ManifestChange(f"generate.{key}", f"{_show(bg.get(key))} -> {_show(ng.get(key))}")
            )
    if base.get("routing") != new.get("routing"):
        changes.append(
            ManifestChange(
                "routing",
                "routing table changed",
                _text_diff("routing", _pretty(base.get("routing")), _pretty(new.get("routing"))),
            )
        )
    changes.extend(_grader_changes(base.get("graders", []), new.get("graders", [])))
    if base.get("cases") != new.get("cases"):
        b, n = base.get("cases", {}), new.get("cases", {})
        changes.append(
            ManifestChange(
                "cases", f"case set changed ({b.get('count')} -> {n.get('count')} cases)"
            )
        )
    for key in ("epochs", "pricing_version", "models_version", "evalbatch_version"):
        if base.get(key) != new.get(key):
            changes.append(ManifestChange(key, f"{base.get(key)} -> {new.get(key)}"))
    return changes


def _show(value: Any) -> str:
    if isinstance(value, dict) and "id" in value:
        return f"{value.get('as_written')} ({value['id']})"
    return str(value)


def _pretty(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n"


def _grader_changes(base: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[ManifestChange]:
    changes = []
    b, n = {g["name"]: g for g in base}, {g["name"]: g for g in new}
    for name in sorted(set(b) - set(n)):
        changes.append(ManifestChange(f"graders.{name}", "grader removed"))
    for name in sorted(set(n) - set(b)):
        changes.append(ManifestChange(f"graders.{name}", "grader added"))
    for name in sorted(set(b) & set(n)):
        if b[name] != n[name]:
            changes.append(
                ManifestChange(
                    f"graders.{name}",
                    "grader changed",
                    _text_diff(name, _pretty(b[name]), _pretty(n[name])),
                )
            )
    return changes


# Where a case sits (file, line) is not what it is: moving it must not make it "changed".
_PLACE_FIELDS = ("source", "line")


def _cases(engine: Engine, run_id: str) -> dict[str, tuple[int, dict[str, Any]]]:
    """case id -> (index, what the case is); dicts compare by content."""
    c = schema.cases.c
    with engine.connect() as conn:
        out = {}
        for row in conn.execute(select(c.case_id, c.idx, c.data).where(c.run_id == run_id)):
            data = {k: v for k, v in orjson.loads(row.data).items() if k not in _PLACE_FIELDS}
            out[row.case_id] = (row.idx, data)
        return out


def _scores(engine: Engine, run_id: str) -> dict[tuple[str, int, str], Any]:
    s = schema.scores.c
    with engine.connect() as conn:
        return {
            (row.case_id, row.epoch, row.grader): row
            for row in conn.execute(select(schema.scores).where(s.run_id == run_id))
        }


def _outputs(engine: Engine, run_id: str, keys: set[tuple[str, int]]) -> dict[tuple[str, int], str]:
    r = schema.results.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(r.case_id, r.epoch, r.text).where(and_(r.run_id == run_id, r.step == "generate"))
        )
        return {(x.case_id, x.epoch): x.text or "" for x in rows if (x.case_id, x.epoch) in keys}


def compare_runs(
    engine: Engine,
    base_id: str,
    new_id: str,
    *,
    alpha: float = 0.05,
    min_effect: float = 0.0,
    strict: bool = False,
) -> Comparison:
    base_m, base_info = _manifest(engine, base_id)
    new_m, new_info = _manifest(engine, new_id)
    changes = diff_manifests(base_m, new_m)
    base_cases, new_cases = _cases(engine, base_id), _cases(engine, new_id)
    changed = sorted(
        k for k in set(base_cases) & set(new_cases) if base_cases[k][1] != new_cases[k][1]
    )
    common = sorted(set(base_cases) & set(new_cases) - set(changed))
    base_graders = {g["name"]: g["type"] for g in base_m.get("graders", [])}
    new_graders = {g["name"]: g["type"] for g in new_m.get("graders", [])}
    shared = [g for g in base_graders if new_graders.get(g) == base_graders[g]]
    skipped = sorted((set(base_graders) | set(new_graders)) - set(shared))
    comparable = not (changed or skipped or set(base_cases) ^ set(new_cases))
    if strict and not comparable:
        raise InputError(
            "--strict: the runs differ in cases or graders "
            f"({len(changed)} changed, {len(set(base_cases) ^ set(new_cases))} "
            f"added/removed cases; graders not shared: {', '.join(skipped) or '-'})"
        )
    epochs = min(base_info["epochs"], new_info["epochs"])
    base_scores, new_scores = _scores(engine, base_id), _scores(engine, new_id)
    graders: list[GraderComparison] = []
    diffs: list[CaseDiff] = []
    flaky: list[dict[str, Any]] = []
    for name in shared:
        pairs, values, errors, moved = [], [], 0, []
        for case_id in common:
            b_eps = _valid(base_scores, case_id, name, epochs)
            n_eps = _valid(new_scores, case_id, name, epochs)
            if not b_eps or not n_eps:
                errors += 1
                continue
            b_seen, n_seen = {bool(x.passed) for x in b_eps}, {bool(x.passed) for x in n_eps}
            if len(b_seen) > 1 or len(n_seen) > 1:
                # Its verdict varies across epochs: noise, reported apart, not a regression.
                flaky.append(
                    {
                        "case_id": case_id,
                        "grader": name,
                        "base_passed": f"{sum(bool(x.passed) for x in b_eps)}/{len(b_eps)}",
                        "new_passed": f"{sum(bool(x.passed) for x in n_eps)}/{len(n_eps)}",
                    }
                )
                continue
            b_pass, n_pass = b_seen.pop(), n_seen.pop()
            pairs.append((b_pass, n_pass))  # one pair per case, however many epochs
            b_vals = [float(x.value) for x in b_eps if x.value is not None]
            n_vals = [float(x.value) for x in n_eps if x.value is not None]
            if b_vals and n_vals:
                values.append((sum(b_vals) / len(b_vals), sum(n_vals) / len(n_vals)))
            if b_pass != n_pass:
                moved.append((case_id, b_eps[0].epoch, b_eps[0], n_eps[0]))
        pf = compare_pass_fail(pairs)
        numeric = None
        if values and any(v not in (0.0, 1.0) for pair in values for v in pair):
            numeric = asdict(compare_numeric(values))
        graders.append(
            GraderComparison(
                name,
                base_graders[name],
                pf.n,
                pf.both_pass,
                pf.both_fail,
                pf.fixed,
                pf.regressed,
                pf.base_rate,
                pf.new_rate,
                pf.diff,
                pf.ci_low,
                pf.ci_high,
                pf.p_value,
                pf.p_value,
                errors,
                "no significant change",
                numeric,
            )
        )
        diffs.extend(_case_diffs(moved, name, base_cases))
    adjusted = len(graders) > 1
    if adjusted:
        for g, q in zip(graders, benjamini_hochberg([g.p_value for g in graders]), strict=True):
            g.p_adjusted = q
    for g in graders:
        g.verdict = verdict(g.diff, g.p_adjusted, alpha=alpha, min_effect=min_effect)
    _attach_outputs(engine, base_id, new_id, diffs)
    only_base = sorted(set(base_cases) - set(new_cases))
    only_new = sorted(set(new_cases) - set(base_cases))
    return Comparison(
        base_info,
        new_info,
        comparable,
        changes,
        len(common),
        only_base,
        only_new,
        changed,
        graders,
        skipped,
        diffs,
        flaky,
        alpha,
        min_effect,
        adjusted,
    )


def _case_diffs(
    moved: list, grader: str, cases: dict[str, tuple[int, dict[str, Any]]]
) -> list[CaseDiff]:
    out = []
    for case_id, epoch, b, n in moved:
        data = cases[case_id][1]
        out.append(
            CaseDiff(
                case_id,
                epoch,
                grader,
                "fixed" if n.passed else "regressed",
                data.get("input") if data.get("input") is not None else data.get("vars"),
                data.get("target"),
                "",
                "",
                b.explanation or "",
                n.explanation or "",
            )
        )
    return out


def _attach_outputs(engine: Engine, base_id: str, new_id: str, diffs: list[CaseDiff]) -> None:
    keys = {(d.case_id, d.epoch) for d in diffs}
    if not keys:
        return
    base_out, new_out = _outputs(engine, base_id, keys), _outputs(engine, new_id, keys)
    for d in diffs:
        d.base_output = base_out.get((d.case_id, d.epoch), "")
        d.new_output = new_out.get((d.case_id, d.epoch), "")


def _valid(scores: dict[tuple[str, int, str], Any], case_id: str, grader: str, epochs: int) -> list:
    """The case's decided verdicts (no error) from this grader, one per epoch."""
    rows = (scores.get((case_id, epoch, grader)) for epoch in range(epochs))
    return [r for r in rows if r is not None and not r.error and r.passed is not None]

"""The `code` grader: run the output against the case's tests inside a bubblewrap sandbox (or,
only when the suite says `isolation: none`, unisolated), and read the verdict from the harness."""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..records import Case, Score
from ..templates import render
from .base import Grader
from .execution import Execution, Limits, Program, execute
from .isolation import require_bwrap

_FENCE = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.DOTALL)
_ISOLATION = ("bwrap", "none")
_RESERVED = ("/proc", "/dev", "/evalbatch")  # the sandbox's own mounts
_OPTIONS = {
    "tests",
    "entry_point",
    "prompt",
    "include_prompt",
    "timeout_s",
    "memory_mb",
    "language",
    "isolation",
    "extra_paths",
    "workers",
}


def extract_code(output: str) -> str:
    blocks = _FENCE.findall(output)
    return max(blocks, key=len) if blocks else output


def _extra_paths(value: Any, base_dir: Path) -> tuple[str, ...]:
    """Host paths to show the program read-only (at the same place, and on sys.path)."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("extra_paths: a list of paths")
    paths = []
    for raw in value:
        path = (base_dir / raw).resolve()
        if not path.exists():
            raise ValueError(f"extra_paths: {raw} does not exist")
        text = str(path)
        if text == "/" or any(text == r or text.startswith(r + "/") for r in _RESERVED):
            raise ValueError(f"extra_paths: {raw} cannot be shown to the program")
        paths.append(text)
    return tuple(paths)


def _positive(params: dict[str, Any], key: str, default: float) -> float:
    value = params.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"{key}: a positive number (got {value!r})")
    return float(value)


class CodeGrader(Grader):
    """Runs model-written code. ``isolation`` is "bwrap" (the default: the OS sandbox, required
    at load time) or "none" (the suite opted out: the run must warn, see isolation_warning)."""

    kind = "code"

    def __init__(self, name: str, params: Any, base_dir: Path) -> None:
        super().__init__(name, params, base_dir)
        if not isinstance(params, dict) or "tests" not in params:
            raise ValueError("code needs {tests: ..., entry_point: ...}")
        unknown = sorted(set(params) - _OPTIONS)
        if unknown:
            raise ValueError(
                f"unknown option {unknown[0]!r} (allowed: {', '.join(sorted(_OPTIONS))})"
            )
        if params.get("language", "python") != "python":
            raise ValueError("code: only language: python is supported")
        self.tests = str(params["tests"])
        self.entry_point = str(params.get("entry_point", ""))
        self.prompt = str(params.get("prompt", "{{ input }}"))
        self.include_prompt = bool(params.get("include_prompt", False))
        self.timeout_s = _positive(params, "timeout_s", 10)
        self.memory_mb = int(_positive(params, "memory_mb", 512))
        self.workers = int(_positive(params, "workers", os.cpu_count() or 1))
        self.extra_paths = _extra_paths(params.get("extra_paths"), base_dir)
        self.isolation = str(params.get("isolation", "bwrap"))
        if self.isolation not in _ISOLATION:
            raise ValueError(f"isolation: bwrap or none (got {self.isolation!r})")
        # No silent downgrade: without a working sandbox the suite does not load.
        self._bwrap = require_bwrap() if self.isolation == "bwrap" else None
        self.limits = Limits(timeout_s=self.timeout_s, memory_mb=self.memory_mb)

    def template_sources(self) -> list[str]:
        return [self.tests, self.entry_point] + ([self.prompt] if self.include_prompt else [])

    def manifest_entry(self) -> dict[str, Any]:
        return {
            "tests": self.tests,
            "entry_point": self.entry_point,
            "include_prompt": self.include_prompt,
            "timeout_s": self.timeout_s,
            "memory_mb": self.memory_mb,
            "isolation": self.isolation,
            "extra_paths": list(self.extra_paths),
            "limits": self.limits.manifest_entry(),
        }

    def isolation_warning(self) -> str | None:
        """The line every run must print (and every report show) when this grader runs
        model-written code without the sandbox; None when it is isolated."""
        return unisolated_warning(self.name) if self.isolation == "none" else None

    def warnings(self) -> list[str]:
        warning = self.isolation_warning()
        return [warning] if warning else []

    def program(self, output: str, case: Case) -> Program:
        ctx, where = case.context(), case.where(self.name)
        parts = [render(self.prompt, ctx, where)] if self.include_prompt else []
        parts.append(extract_code(output))
        tests = render(self.tests, ctx, where)
        entry = render(self.entry_point, ctx, where) if self.entry_point else ""
        if entry:
            tests += f"\n\ncheck({entry})\n"
        return Program("\n\n".join(parts) + "\n", tests, self.extra_paths)

    def execute(self, output: str, case: Case) -> Execution:
        """Run the output's code and the case's tests once, in the sandbox unless opted out."""
        return execute(self.program(output, case), self.limits, self._bwrap)

    def grade(self, output: str, case: Case) -> Score:
        return self.verdict(self.execute(output, case))

    def grade_many(
        self, items: Sequence[tuple[str, Case]], workers: int | None = None
    ) -> list[Score]:
        """Scores for (output, case) pairs, in order, up to ``workers`` (default: the grader's
        ``workers`` option, itself defaulting to the CPU count) at a time. Each execution is a
        subprocess, so threads suffice; a grader bug is that item's Score(error=...)."""
        count = max(1, min(workers or self.workers, len(items)))
        if count == 1:
            return [self._grade_safely(item) for item in items]
        with ThreadPoolExecutor(max_workers=count, thread_name_prefix="code-grader") as pool:
            return list(pool.map(self._grade_safely, items))

    def _grade_safely(self, item: tuple[str, Case]) -> Score:
        try:
            return self.grade(*item)
        except Exception as exc:
            return Score(grader=self.name, error=f"{exc.__class__.__name__}: {exc}")

    def verdict(self, run: Execution) -> Score:
        """Pass only on the harness's completion marker; otherwise a one-line reason."""
        if run.timed_out:
            return self._fail(f"timed out after {self.timeout_s:g}s")
        if run.phase == "passed":
            return Score(self.name, True, 1.0, "all tests passed")
        tail = " | ".join([ln for ln in run.stderr.strip().splitlines() if ln.strip()][-3:])
        if run.phase == "setup":
            return Score(grader=self.name, error=f"sandbox failed to start: {tail[:400]}")
        where = "before the tests ran" if run.phase == "candidate" else "during the tests"
        if "MemoryError" in run.stderr:
            return self._fail(f"memory limit ({self.memory_mb} MB): {tail}")
        if run.signal is not None:
            return self._fail(f"killed by {_signal_name(run.signal)} {where}")
        if run.exit_code == 0 or not tail:
            return self._fail(f"exited {where} (exit {run.exit_code})")
        return self._fail(tail)

    def _fail(self, why: str) -> Score:
        return Score(self.name, False, 0.0, why[:500])


def unisolated_warning(grader: str) -> str:
    return (
        f"grader {grader!r} runs model-written code UNISOLATED (isolation: none): "
        "it can read your files and environment and reach the network"
    )


def manifest_warnings(graders: Sequence[dict[str, Any]]) -> list[str]:
    """The warnings a stored manifest's graders call for (reports read them from there)."""
    return [
        unisolated_warning(str(g.get("name")))
        for g in graders
        if g.get("type") == "code" and g.get("isolation") == "none"
    ]


def _signal_name(number: int) -> str:
    try:
        return f"signal {number} ({signal.Signals(number).name})"
    except ValueError:
        return f"signal {number}"

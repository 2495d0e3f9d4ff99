"""The `code` grader: run the output against the case's tests in a subprocess with time and
memory limits (as HumanEval does). Secrets never reach the child's environment."""

from __future__ import annotations

import contextlib
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..records import Case, Score
from ..templates import render
from .base import Grader

_FENCE = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.DOTALL)
_SECRET = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|^ANTHROPIC_|^OPENAI_", re.IGNORECASE)


def extract_code(output: str) -> str:
    blocks = _FENCE.findall(output)
    return max(blocks, key=len) if blocks else output


def _kill_group(proc: subprocess.Popen[str]) -> None:
    """The program runs in its own session (setsid): kill every process in it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _limits(memory_mb: int, cpu_s: int) -> Any:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
        os.setsid()

    return apply


class CodeGrader(Grader):
    kind = "code"

    def __init__(self, name: str, params: Any, base_dir: Path) -> None:
        super().__init__(name, params, base_dir)
        allowed = {
            "tests",
            "entry_point",
            "prompt",
            "include_prompt",
            "timeout_s",
            "memory_mb",
            "language",
        }
        if not isinstance(params, dict) or "tests" not in params:
            raise ValueError("code needs {tests: ..., entry_point: ...}")
        unknown = sorted(set(params) - allowed)
        if unknown:
            raise ValueError(
                f"unknown option {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})"
            )
        if params.get("language", "python") != "python":
            raise ValueError("code: only language: python is supported")
        self.tests = str(params["tests"])
        self.entry_point = str(params.get("entry_point", ""))
        self.prompt = str(params.get("prompt", "{{ input }}"))
        self.include_prompt = bool(params.get("include_prompt", False))
        self.timeout_s = float(params.get("timeout_s", 10))
        self.memory_mb = int(params.get("memory_mb", 512))

    def template_sources(self) -> list[str]:
        return [self.tests, self.entry_point] + ([self.prompt] if self.include_prompt else [])

    def manifest_entry(self) -> dict[str, Any]:
        return {
            "tests": self.tests,
            "entry_point": self.entry_point,
            "include_prompt": self.include_prompt,
            "timeout_s": self.timeout_s,
            "memory_mb": self.memory_mb,
        }

    def program(self, output: str, case: Case) -> str:
        ctx = case.context()
        parts = []
        if self.include_prompt:
            parts.append(render(self.prompt, ctx, case.where(self.name)))
        parts.append(extract_code(output))
        parts.append(render(self.tests, ctx, case.where(self.name)))
        entry = render(self.entry_point, ctx, case.where(self.name)) if self.entry_point else ""
        if entry:
            parts.append(f"check({entry})")
        return "\n\n".join(parts) + "\n"

    def grade(self, output: str, case: Case) -> Score:
        program = self.program(output, case)
        env = {k: v for k, v in os.environ.items() if not _SECRET.search(k)}
        with tempfile.TemporaryDirectory(prefix="evalbatch-code-") as tmp:
            script = Path(tmp, "program.py")
            script.write_text(program, encoding="utf-8")
            proc = subprocess.Popen(
                [sys.executable, "-I", str(script)],
                cwd=tmp,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                preexec_fn=_limits(self.memory_mb, int(self.timeout_s) + 1),  # noqa: PLW1509
            )
            try:
                _, stderr = proc.communicate(timeout=self.timeout_s)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                proc.communicate()
                return Score(self.name, False, 0.0, f"timed out after {self.timeout_s:g}s")
            _kill_group(proc)  # whatever the program started in the background goes too
        if proc.returncode == 0:
            return Score(self.name, True, 1.0, "all tests passed")
        tail = [line for line in stderr.strip().splitlines() if line.strip()][-3:]
        why = " | ".join(tail) or f"exit code {proc.returncode}"
        if "MemoryError" in stderr:
            why = f"memory limit ({self.memory_mb} MB): {why}"
        elif proc.returncode < 0:
            why = f"killed by signal {-proc.returncode} (time or memory limit)"
        return Score(self.name, False, 0.0, why[:500])

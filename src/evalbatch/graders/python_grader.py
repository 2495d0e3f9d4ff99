"""The `python` grader: a user function (`module:function` or `path/file.py:function`) that gets
the output and the case and returns a bool, a number, a dict or a Score."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..records import Case, Score
from ..userfiles import load_file_module
from .base import Grader


def _load(target: str, base_dir: Path) -> tuple[Callable[..., Any], Path | None]:
    module_ref, sep, func_name = target.rpartition(":")
    if not sep or not module_ref or not func_name:
        raise ValueError(f"python grader {target!r}: use module:function or file.py:function")
    if module_ref.endswith(".py"):
        path = (base_dir / module_ref).resolve()
        if not path.is_file():
            raise ValueError(f"python grader file not found: {module_ref}")
        try:
            module = load_file_module(path, "evalbatch_grader")
        except Exception as exc:
            raise ValueError(
                f"importing {module_ref} failed: {exc.__class__.__name__}: {exc}"
            ) from None
    else:
        added = str(base_dir) not in sys.path
        if added:
            sys.path.insert(0, str(base_dir))
        try:
            module = importlib.import_module(module_ref)
        except ImportError as exc:
            raise ValueError(f"cannot import module {module_ref!r}: {exc}") from None
        finally:
            if added:
                sys.path.remove(str(base_dir))
        file = getattr(module, "__file__", None)
        return _checked(module, func_name, module_ref), Path(file) if file else None
    return _checked(module, func_name, module_ref), path


def _checked(module: Any, func_name: str, module_ref: str) -> Callable[..., Any]:
    func = getattr(module, func_name, None)
    if not callable(func):
        raise ValueError(f"{module_ref} has no function {func_name!r}")
    return func  # type: ignore[no-any-return]


class PythonGrader(Grader):
    kind = "python"

    def __init__(self, name: str, params: Any, base_dir: Path) -> None:
        super().__init__(name, params, base_dir)
        opts = params if isinstance(params, dict) else {"function": params}
        if set(opts) - {"function", "args", "threshold"} or not isinstance(
            opts.get("function"), str
        ):
            raise ValueError("python takes module:function, or {function, args, threshold}")
        self.target = opts["function"]
        self.args = dict(opts.get("args") or {})
        self.threshold = float(opts.get("threshold", 0.5))
        self.func, self.path = _load(self.target, base_dir)

    def manifest_entry(self) -> dict[str, Any]:
        source = ""
        if self.path is not None and self.path.is_file():
            source = self.path.read_text("utf-8", errors="replace")
        else:
            try:
                source = inspect.getsource(self.func)
            except (OSError, TypeError):
                source = self.target
        return {
            "function": self.target,
            "args": self.args,
            "threshold": self.threshold,
            "source_sha256": hashlib.sha256(source.encode()).hexdigest(),
        }

    def grade(self, output: str, case: Case) -> Score:
        try:
            result = self.func(output, case.context(), **self.args)
        except Exception as exc:
            return Score(grader=self.name, error=f"{exc.__class__.__name__}: {exc}")
        return self._to_score(result)

    def _to_score(self, result: Any) -> Score:
        if isinstance(result, Score):
            return Score(self.name, result.passed, result.value, result.explanation, result.error)
        if isinstance(result, bool):
            return Score(self.name, result, 1.0 if result else 0.0, "")
        if isinstance(result, int | float):
            return Score(self.name, float(result) >= self.threshold, float(result), "")
        if isinstance(result, dict):
            passed = result.get("pass", result.get("passed"))
            value = result.get("score")
            if passed is None and value is not None:
                passed = float(value) >= self.threshold
            return Score(
                self.name,
                None if passed is None else bool(passed),
                None if value is None else float(value),
                str(result.get("explanation", result.get("reason", ""))),
            )
        return Score(
            grader=self.name,
            error=f"grader returned {type(result).__name__}; expected bool, number, dict or Score",
        )

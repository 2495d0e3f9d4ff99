"""Reading the user's files: text with a size cap (suites, `file://` includes, rubrics, schemas,
case files), and importing a ``.py`` file (python graders, sandbox responders)."""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType


@dataclass(frozen=True)
class FileLimit:
    """How large a kind of file may be; ``env`` raises it."""

    what: str
    default: int
    env: str

    @property
    def bytes(self) -> int:
        return int(os.environ.get(self.env, self.default))


SUITE_FILE = FileLimit("suite-file", 10 << 20, "EVALBATCH_MAX_SUITE_BYTES")
INCLUDE = FileLimit("file:// include", 10 << 20, "EVALBATCH_MAX_INCLUDE_BYTES")
YAML_CASES = FileLimit("YAML case-file", 64 << 20, "EVALBATCH_MAX_YAML_CASE_BYTES")
CASE_FILE = FileLimit("case-file", 1 << 30, "EVALBATCH_MAX_CASE_FILE_BYTES")


def size_text(n: int) -> str:
    if n >= 1 << 30:
        return f"{n / (1 << 30):.1f} GB"
    if n >= 1 << 20:
        return f"{n / (1 << 20):.1f} MB"
    return f"{n:,} bytes"


def check_file(path: Path, limit: FileLimit) -> None:
    """A regular file within the limit, or ValueError with a one-line reason."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ValueError("file not found") from None
    except OSError as exc:
        raise ValueError(f"cannot read: {exc.strerror}") from None
    if path.is_dir():
        raise ValueError("is a folder, not a file")
    if not path.is_file():  # /dev/zero, a pipe, a socket: reading it may never end
        raise ValueError("is not a regular file")
    if info.st_size > limit.bytes:
        raise ValueError(
            f"{size_text(info.st_size)} is larger than the {limit.what} limit of "
            f"{size_text(limit.bytes)} (set {limit.env} to raise it)"
        )


def read_user_text(path: Path, limit: FileLimit) -> str:
    """A UTF-8 file's text; ValueError with a one-line reason when it cannot be had."""
    check_file(path, limit)
    try:
        with path.open("rb") as fh:
            raw = fh.read(limit.bytes + 1)  # the file may have grown since the check
    except OSError as exc:
        raise ValueError(f"cannot read: {exc.strerror}") from None
    if len(raw) > limit.bytes:
        raise ValueError(f"is larger than the {limit.what} limit of {size_text(limit.bytes)}")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not valid UTF-8 at byte {exc.start}") from None


def load_file_module(path: Path, prefix: str) -> ModuleType:
    """Import ``path`` as a module named ``{prefix}_{stem}``.

    The module is registered in ``sys.modules`` while it runs (dataclasses and pickling need
    that) and its folder is importable, so it may import the files next to it. Raises whatever
    the module raises; nothing is left registered when it fails.
    """
    name = f"{prefix}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    folder = str(path.parent)
    sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    finally:
        sys.path.remove(folder)
    return module

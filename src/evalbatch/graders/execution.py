"""One run of the `code` grader's harness, sandboxed (bwrap) or unisolated: a wall-clock deadline
for the whole process tree, output captured up to a cap, and the phase the harness reached."""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .isolation import (
    HARNESS,
    SANDBOX_ID,
    BwrapLaunch,
    bwrap_launch,
    drops_privileges,
    python_runtime,
)

Phase = Literal["setup", "candidate", "tests", "passed"]
_GRACE_S = 0.25  # after the program ended, how long a pipe may stay open before we stop reading
_MARKER_CAP = 4096


@dataclass(frozen=True)
class Limits:
    """Per-execution limits. ``timeout_s`` is wall time for the whole process tree; the others
    are rlimits set inside the sandbox before the candidate runs (``processes`` only when
    isolated: unisolated, RLIMIT_NPROC would count every process of the user)."""

    timeout_s: float
    memory_mb: int
    file_mb: int = 16
    open_files: int = 256
    processes: int = 64
    tmpfs_mb: int = 64
    output_kb: int = 64

    def rlimits(self, isolated: bool) -> dict[str, int | None]:
        return {
            "cpu_s": math.ceil(self.timeout_s) + 1,
            "memory_mb": self.memory_mb,
            "file_mb": self.file_mb,
            "open_files": self.open_files,
            "processes": self.processes if isolated else None,
        }


@dataclass(frozen=True)
class Program:
    """What runs: the candidate (the model's code, maybe after the prompt), then the tests."""

    candidate: str
    tests: str
    extra_paths: tuple[str, ...] = ()


@dataclass(frozen=True)
class Execution:
    """What happened. ``phase`` is how far the harness got; only "passed" (the completion
    marker with this execution's token) means the tests ran to the end."""

    phase: Phase
    exit_code: int | None
    signal: int | None
    timed_out: bool
    stdout: str
    stderr: str
    elapsed_s: float


class _Capture:
    """Keeps the first and last halves of a stream up to ``cap`` bytes; drops the middle."""

    def __init__(self, cap: int) -> None:
        self.half, self.total = cap // 2, 0
        self.head, self.tail = bytearray(), bytearray()

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.half - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        self.tail += chunk
        del self.tail[: max(0, len(self.tail) - self.half)]

    def text(self) -> str:
        dropped = self.total - len(self.head) - len(self.tail)
        head, tail = self.head.decode(errors="replace"), self.tail.decode(errors="replace")
        if dropped <= 0:
            return head + tail
        return (
            f"{head}\n[... output truncated: {dropped} of {self.total} bytes dropped ...]\n{tail}"
        )


def execute(program: Program, limits: Limits, bwrap: str | None) -> Execution:
    """Run ``program`` in the bwrap sandbox (``bwrap`` is its path) or, with None, unisolated."""
    token = secrets.token_hex(16)
    marker_r, marker_w = os.pipe()
    workdir = None if bwrap else tempfile.mkdtemp(prefix="evalbatch-code-")
    try:
        config = {
            "token": token,
            "marker_fd": marker_w,
            "candidate": program.candidate,
            "tests": program.tests,
            "paths": list(program.extra_paths),
            "limits": limits.rlimits(isolated=bwrap is not None),
        }
        stdin = _stdin(json.dumps(config).encode())
        started = time.monotonic()
        try:
            proc, launch = _spawn(bwrap, program, limits, workdir, stdin, marker_w)
        finally:
            os.close(stdin)
        os.close(marker_w)
        marker_w = -1
        launch.after_spawn()
        streams, timed_out = _collect(proc, marker_r, limits, started)
    finally:
        for fd in (marker_r, marker_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        if workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    code = proc.returncode
    return Execution(
        phase=_phase(streams[2], token),
        exit_code=None if timed_out else code,
        signal=_signal(code, isolated=bwrap is not None) if not timed_out else None,
        timed_out=timed_out,
        stdout=streams[0],
        stderr=streams[1],
        elapsed_s=time.monotonic() - started,
    )


def _stdin(data: bytes) -> int:
    """The config as an in-memory file: no pipe to feed while the child starts, nothing on disk."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("evalbatch-harness-config")
    else:  # pragma: no cover - non-Linux, unisolated only
        fd = os.open(tempfile.gettempdir(), os.O_TMPFILE | os.O_RDWR, 0o600)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _spawn(
    bwrap: str | None,
    program: Program,
    limits: Limits,
    workdir: str | None,
    stdin: int,
    marker_w: int,
) -> tuple[subprocess.Popen[bytes], BwrapLaunch]:
    runtime = python_runtime()
    if bwrap is None:
        harness = str(Path(__file__).with_name("_harness.py"))
        launch = BwrapLaunch([runtime.python, "-I", "-S", "-B", harness])
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(workdir),
            "TMPDIR": str(workdir),
            "LANG": "C.UTF-8",
            "PYTHONIOENCODING": "utf-8",
        }
    else:
        command = [runtime.python, "-I", "-S", "-B", HARNESS]
        if drops_privileges():
            command.append(json.dumps([SANDBOX_ID, SANDBOX_ID]))
        launch = bwrap_launch(bwrap, runtime, command, list(program.extra_paths), limits.tmpfs_mb)
        env = {"PATH": "/usr/bin:/bin"}  # bwrap's own; the sandbox gets SANDBOX_ENV
    try:
        proc = subprocess.Popen(
            launch.argv,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(marker_w, *launch.pass_fds),
            env=env,
            cwd=workdir,
            start_new_session=True,  # one process group to kill (all the tree, when isolated)
        )
    except BaseException:
        launch.close()
        raise
    return proc, launch


def _collect(
    proc: subprocess.Popen[bytes], marker_r: int, limits: Limits, started: float
) -> tuple[list[str], bool]:
    """Read stdout, stderr and the marker until the program ended and its pipes closed. At the
    deadline the tree is killed; after the end, a pipe still held open (by a process that
    escaped, unisolated) is abandoned after a short grace, so this never blocks on it."""
    assert proc.stdout is not None and proc.stderr is not None
    cap = limits.output_kb << 10
    captures = {proc.stdout.fileno(): _Capture(cap), proc.stderr.fileno(): _Capture(cap)}
    captures[marker_r] = _Capture(_MARKER_CAP)
    order = list(captures)
    timed_out, ended_at = False, None
    with selectors.DefaultSelector() as sel:
        for fd in captures:
            os.set_blocking(fd, False)
            sel.register(fd, selectors.EVENT_READ)
        pidfd = _pidfd(proc.pid)
        if pidfd is not None:
            sel.register(pidfd, selectors.EVENT_READ)
        try:
            while True:
                if ended_at is None and proc.poll() is not None:
                    ended_at = time.monotonic()
                open_pipes = [fd for fd in sel.get_map() if fd in captures]
                if ended_at is not None and not open_pipes:
                    break
                now = time.monotonic()
                limit = started + limits.timeout_s if ended_at is None else ended_at + _GRACE_S
                if now >= limit:
                    if ended_at is not None:
                        break
                    timed_out = True
                    _kill(proc)
                    continue
                wait = limit - now if pidfd is not None else min(limit - now, 0.05)
                for key, _ in sel.select(wait):
                    fd = int(key.fd)
                    if fd == pidfd:
                        sel.unregister(fd)
                        continue
                    chunk = _read(fd)
                    if chunk:
                        captures[fd].add(chunk)
                    elif chunk is not None:
                        sel.unregister(fd)
        finally:
            if pidfd is not None:
                os.close(pidfd)
            if proc.poll() is None:
                _kill(proc)
            proc.stdout.close()
            proc.stderr.close()
    return [captures[fd].text() for fd in order], timed_out


def _read(fd: int) -> bytes | None:
    """A chunk, b"" at end of file, None when nothing is there after all."""
    try:
        return os.read(fd, 65536)
    except BlockingIOError:
        return None


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):  # pragma: no cover - old kernel or non-Linux
        return None


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group. Isolated, that is bwrap: its PID-1 child dies with it
    (--die-with-parent), and with PID 1 the kernel kills everything in the PID namespace."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    proc.wait()


def _phase(marker: str, token: str) -> Phase:
    """How far the harness got; lines without this execution's token are not its own."""
    reached = {line[len(token) + 1 :] for line in marker.splitlines() if line.startswith(token)}
    if "pass" in reached:
        return "passed"
    if "tests" in reached:
        return "tests"
    return "candidate" if "ready" in reached else "setup"


def _signal(code: int | None, isolated: bool) -> int | None:
    """The signal that ended the program: negative return codes unisolated; bwrap reports a
    signalled child as 128 + signal."""
    if code is None:
        return None
    if code < 0:
        return -code
    if isolated and code > 128:
        return code - 128
    return None


def describe(limits: Limits) -> dict[str, Any]:
    """The limits as the manifest records them."""
    return {
        "file_mb": limits.file_mb,
        "open_files": limits.open_files,
        "processes": limits.processes,
        "tmpfs_mb": limits.tmpfs_mb,
        "output_kb": limits.output_kb,
    }

"""One run of the `code` grader's harness, sandboxed (bwrap) or unisolated: a wall-clock deadline
for the whole process tree, output captured up to a cap, and the phase the harness reached."""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import secrets
import selectors
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .isolation import (
    HARNESS,
    SANDBOX_ID,
    Launch,
    bwrap_launch,
    drops_privileges,
    python_runtime,
)

Phase = Literal["setup", "candidate", "tests", "passed"]
_GRACE_S = 0.25  # after the program ended, how long a pipe may stay open before we stop reading
_MARKER_CAP = 4096
_PIPE_MAX = 1 << 20  # fs.pipe-max-size's default: the largest pipe an unprivileged user gets


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

    def manifest_entry(self) -> dict[str, Any]:
        """What the manifest records beyond ``timeout_s`` and ``memory_mb``."""
        return {
            "file_mb": self.file_mb,
            "open_files": self.open_files,
            "processes": self.processes,
            "tmpfs_mb": self.tmpfs_mb,
            "output_kb": self.output_kb,
        }

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
    # Two tokens: progress lines carry the first; only the pass line carries the second, so
    # nothing the program can read from the marker pipe before the end helps it forge a pass.
    tokens = _Tokens(secrets.token_hex(16), secrets.token_hex(16))
    workdir = None if bwrap else tempfile.mkdtemp(prefix="evalbatch-code-")
    fds = _Fds()
    try:
        marker_r, marker_w = fds.one_way_channel()
        token_r = _filled_pipe(fds, f"{tokens.progress} {tokens.passed}".encode())
        config = {
            "marker_fd": marker_w,
            "token_fd": token_r,
            "candidate": program.candidate,
            "tests": program.tests,
            "paths": list(program.extra_paths),
            "limits": limits.rlimits(isolated=bwrap is not None),
        }
        stdin = _filled_pipe(fds, json.dumps(config).encode())
        started = time.monotonic()
        proc, launch = _spawn(bwrap, program, limits, workdir, stdin, (marker_w, token_r))
        fds.close(stdin, marker_w, token_r)
        try:
            launch.after_spawn()
            streams, timed_out = _collect(proc, marker_r, limits, started)
        except BaseException:
            _kill(proc)
            raise
    finally:
        fds.close_all()
        if workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    code = proc.returncode
    return Execution(
        phase=tokens.phase(streams[2]),
        exit_code=None if timed_out else code,
        signal=_signal(code, isolated=bwrap is not None) if not timed_out else None,
        timed_out=timed_out,
        stdout=streams[0],
        stderr=streams[1],
        elapsed_s=time.monotonic() - started,
    )


@dataclass(frozen=True)
class _Tokens:
    """One execution's secrets: the harness's progress lines carry ``progress``; its last line,
    written only after the tests returned, is ``passed`` alone."""

    progress: str
    passed: str

    def phase(self, marker: str) -> Phase:
        """How far the harness got; lines without this execution's tokens are not its own."""
        lines = marker.splitlines()
        if self.passed in lines:
            return "passed"
        prefix = f"{self.progress} "
        reached = {line.removeprefix(prefix) for line in lines if line.startswith(prefix)}
        if "tests" in reached:
            return "tests"
        return "candidate" if "ready" in reached else "setup"


class _Fds:
    """The file descriptors one execution owns, each closed exactly once: with workers, a
    number closed twice may already belong to another execution's pipe."""

    def __init__(self) -> None:
        self._open: set[int] = set()

    def add(self, fd: int) -> int:
        self._open.add(fd)
        return fd

    def pipe(self) -> tuple[int, int]:
        read, write = os.pipe()
        return self.add(read), self.add(write)

    def one_way_channel(self) -> tuple[int, int]:
        """(read, write) of a socket pair that only carries data towards ``read``. Unlike a
        pipe, the writing side cannot reopen it for reading through /proc/self/fd, so the
        program cannot take the harness's progress lines (and their token) out of it."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        ours.shutdown(socket.SHUT_WR)
        theirs.shutdown(socket.SHUT_RD)
        return self.add(ours.detach()), self.add(theirs.detach())

    def close(self, *fds: int) -> None:
        for fd in fds:
            if fd in self._open:
                self._open.discard(fd)
                os.close(fd)

    def close_all(self) -> None:
        self.close(*sorted(self._open))


def _filled_pipe(fds: _Fds, data: bytes) -> int:
    """The read end of a pipe that already holds ``data`` and has no writer left. The harness
    drains it, so nothing stays behind for the program to read from bwrap's PID 1 (which
    holds a copy of every fd the sandbox starts with)."""
    read, write = fds.pipe()
    if len(data) > _PIPE_MAX:
        raise ValueError(f"the program and its tests exceed {_PIPE_MAX >> 20} MB")
    if len(data) > 65536:
        fcntl.fcntl(write, fcntl.F_SETPIPE_SZ, _PIPE_MAX)
    view = memoryview(data)
    while view:
        view = view[os.write(write, view) :]
    fds.close(write)
    return read


def _spawn(
    bwrap: str | None,
    program: Program,
    limits: Limits,
    workdir: str | None,
    stdin: int,
    child_fds: tuple[int, ...],
) -> tuple[subprocess.Popen[bytes], Launch]:
    runtime = python_runtime()
    if bwrap is None:
        harness = str(Path(__file__).with_name("_harness.py"))
        launch = Launch([runtime.python, "-I", "-S", "-B", harness])
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
            pass_fds=(*child_fds, *launch.pass_fds),
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

"""The test harness the `code` grader runs inside the sandbox: limits, then the candidate, then
the tests, then the completion marker. Standard library only; it runs under the bare runtime.

Protocol: a JSON config arrives on stdin and two random tokens on their own pipe (both drained,
so nothing is left there to read); progress lines ``<progress> ready`` and ``<progress> tests``
go to the marker fd, and ``<passed>`` alone only after the tests returned. A program that exits
(or is killed) before that never writes the pass token, so it cannot pass by exiting early.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import resource
import site
import sys
from typing import Any

# Bound before any candidate code runs, so monkeypatching os or sys cannot silence the marker.
_write = os.write
_exit = os._exit

_LIMITS = {
    "cpu_s": resource.RLIMIT_CPU,
    "memory_mb": resource.RLIMIT_AS,
    "file_mb": resource.RLIMIT_FSIZE,
    "open_files": resource.RLIMIT_NOFILE,
    "processes": resource.RLIMIT_NPROC,
}
_MB = ("memory_mb", "file_mb")


def drop_privileges(ids: list[int] | None) -> None:
    """Under a root caller the sandbox starts as uid 0 with CAP_SETUID/SETGID (so that
    RLIMIT_NPROC, which never binds uid 0, can bind us); become the unprivileged id for good."""
    if not ids:
        return
    uid, gid = ids
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)  # from uid 0 to non-zero: the kernel clears every capability
    if os.getuid() != uid or os.geteuid() != uid:
        raise SystemExit("harness: could not drop privileges")


def read_config() -> dict[str, Any]:
    raw = sys.stdin.buffer.read()
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    config: dict[str, Any] = json.loads(raw)
    return config


def read_tokens(fd: int) -> tuple[str, str]:
    """(progress, passed), from a pipe drained to the end and closed."""
    data = b""
    while chunk := os.read(fd, 256):
        data += chunk
    os.close(fd)
    progress, passed = data.decode().split()
    return progress, passed


def close_other_fds(keep: int) -> None:
    """Only stdio and the marker fd reach the candidate."""
    os.closerange(3, keep)
    os.closerange(keep + 1, 65536)


def apply_limits(limits: dict[str, int | None]) -> None:
    for name, value in limits.items():
        if value is None:
            continue
        amount = value << 20 if name in _MB else value
        resource.setrlimit(_LIMITS[name], (amount, amount))


def source_file(name: str, text: str) -> str:
    """Written to the working directory so tracebacks can show the failing source line."""
    path = os.path.abspath(name)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return path


def run(config: dict[str, Any]) -> None:
    marker = int(config["marker_fd"])
    progress, passed = read_tokens(int(config["token_fd"]))
    close_other_fds(marker)
    for path in config["paths"]:  # -S: no site-packages but these (with their .pth files)
        site.addsitedir(str(path))
    candidate = source_file("candidate.py", config["candidate"])
    apply_limits(config["limits"])
    namespace: dict[str, Any] = {
        "__name__": "__main__",
        "__file__": candidate,
        "__builtins__": builtins,
    }
    sys.argv = [candidate]
    _write(marker, f"{progress} ready\n".encode())
    exec(compile(config["candidate"], candidate, "exec"), namespace)
    _write(marker, f"{progress} tests\n".encode())
    # On disk only now, and only for tracebacks: what runs is the source in memory.
    tests = config.pop("tests")
    exec(compile(tests, source_file("tests.py", tests), "exec"), namespace)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a stream the candidate broke; the tests ran
            stream.flush()
    _write(marker, f"{passed}\n".encode())
    _exit(0)  # skip atexit hooks and threads the candidate left behind


def main() -> None:
    # First, before reading anything: only the first instructions of the process run privileged.
    drop_privileges(json.loads(sys.argv[1]) if len(sys.argv) > 1 else None)
    run(read_config())


if __name__ == "__main__":
    main()

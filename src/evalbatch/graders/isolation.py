"""Isolation for the `code` grader: finding bubblewrap, the bwrap command line (fresh namespaces,
a read-only Python runtime, one writable tmpfs) and the uid-map handshake under a root caller."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import select
import shutil
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass, field
from pathlib import Path

INSTALL_HINT = "apt-get install bubblewrap"
SANDBOX_ID = 65534  # nobody: the only user inside the sandbox, and (under root) outside too
SANDBOX_ROOT = "/evalbatch"
WORKDIR = f"{SANDBOX_ROOT}/work"  # the one writable place: a fresh tmpfs, also HOME and TMPDIR
HARNESS = f"{SANDBOX_ROOT}/harness.py"
# The whole environment inside the sandbox; nothing from the host's crosses over.
SANDBOX_ENV = {
    "PATH": "/usr/bin",
    "HOME": WORKDIR,
    "TMPDIR": WORKDIR,
    "LANG": "C.UTF-8",
    "PYTHONIOENCODING": "utf-8",
}
_SYSTEM_LIBS = ("/usr/lib", "/usr/lib64")
_HANDSHAKE_S = 10.0


@dataclass(frozen=True)
class Runtime:
    """The interpreter the candidate runs under, and the host paths it needs (read-only)."""

    python: str
    paths: tuple[str, ...]


@functools.cache
def python_runtime() -> Runtime:
    """The base interpreter behind this process (a venv's packages are not part of it)."""
    prefix = Path(sys.base_prefix)
    python = prefix / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    if not python.is_file():
        python = Path(os.path.realpath(sys.executable))
    needed = [str(python), sysconfig.get_paths()["stdlib"]]
    libdir = sysconfig.get_config_var("LIBDIR")
    if isinstance(libdir, str) and Path(libdir).is_dir():
        needed.append(libdir)
    if prefix != Path("/usr"):
        needed.insert(0, str(prefix))
    return Runtime(str(python), _uncovered(needed, list(_SYSTEM_LIBS)))


def _covered(path: str, roots: list[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def _uncovered(paths: list[str], roots: list[str]) -> tuple[str, ...]:
    """``paths`` minus those already inside ``roots`` or an earlier path, in order."""
    kept: list[str] = []
    for path in paths:
        if not _covered(path, roots + kept):
            kept.append(path)
    return tuple(kept)


def drops_privileges() -> bool:
    """Under root the sandbox starts as uid 0 and the harness must drop to SANDBOX_ID itself."""
    return os.geteuid() == 0


def find_bwrap() -> str | None:
    return shutil.which("bwrap")


@functools.cache
def _supports_disable_userns(bwrap: str) -> bool:
    out = subprocess.run([bwrap, "--version"], capture_output=True, text=True, timeout=10).stdout
    parts = out.split()[-1].split(".") if out.split() else []
    try:
        return tuple(int(p) for p in parts[:2]) >= (0, 8)
    except ValueError:
        return False


def require_bwrap() -> str:
    """The bwrap to use, after proving it can build a sandbox here; else a ValueError that says
    exactly what to do (the suite loader turns it into a file:line error, exit 2)."""
    bwrap = find_bwrap()
    if bwrap is None:
        raise ValueError(
            "no isolation backend: bubblewrap (bwrap) is not installed; "
            f"install it with `{INSTALL_HINT}`, or set `isolation: none` on this grader "
            "to run model-written code unisolated"
        )
    problem = _probe(bwrap, python_runtime())
    if problem:
        raise ValueError(
            f"bubblewrap cannot build a sandbox here ({problem}); unprivileged user namespaces "
            "must be allowed (sysctl kernel.unprivileged_userns_clone=1), or set "
            "`isolation: none` on this grader to run model-written code unisolated"
        )
    return bwrap


@functools.cache
def _probe(bwrap: str, runtime: Runtime) -> str:
    """Run a no-op in exactly the sandbox the grader uses; '' when it works, else bwrap's reason."""
    launch = bwrap_launch(bwrap, runtime, [runtime.python, "-I", "-S", "-c", "pass"], [])
    try:
        proc = subprocess.Popen(
            launch.argv,
            pass_fds=launch.pass_fds,
            env=SANDBOX_ENV,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
    except OSError as exc:
        launch.close()
        return str(exc)
    try:
        launch.after_spawn()
        _, stderr = proc.communicate(timeout=_HANDSHAKE_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        proc.kill()
        proc.communicate()
        return str(exc)
    finally:
        launch.close()
    if proc.returncode == 0:
        return ""
    return stderr.strip().splitlines()[-1] if stderr.strip() else f"exit {proc.returncode}"


@dataclass
class Launch:
    """A command line plus the fds it needs (none, unisolated). Under root, bwrap waits
    (``--userns-block-fd``)
    until ``after_spawn`` maps uid 0 and nobody into its user namespace: the harness then drops to
    nobody, a real unprivileged uid on the host, so RLIMIT_NPROC binds (it never binds uid 0)."""

    argv: list[str]
    pass_fds: tuple[int, ...] = ()
    info_fd: int | None = None
    block_fd: int | None = None
    _to_close: list[int] = field(default_factory=list)

    def after_spawn(self) -> None:
        """Call right after starting ``argv``: closes the child's ends; under root, maps the
        sandbox's uids and lets bwrap go on."""
        spawned, self.pass_fds = self.pass_fds, ()
        for fd in spawned:
            os.close(fd)
        try:
            if self.info_fd is not None and self.block_fd is not None:
                pid = _child_pid(self.info_fd)
                if pid is not None:  # None: bwrap already failed; its stderr says why
                    mapping = f"0 0 1\n{SANDBOX_ID} {SANDBOX_ID} 1\n"
                    for name in ("uid_map", "gid_map"):
                        Path(f"/proc/{pid}/{name}").write_text(mapping)
                    os.write(self.block_fd, b"1")
        finally:
            self.close()

    def close(self) -> None:
        """Close every fd still held, each once (a number closed twice may be reused by now)."""
        fds = (*self.pass_fds, *self._to_close)
        self.pass_fds, self._to_close, self.info_fd, self.block_fd = (), [], None, None
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)


def _child_pid(fd: int) -> int | None:
    """The sandbox's pid, from the JSON bwrap writes to ``--info-fd``."""
    deadline, data = time.monotonic() + _HANDSHAKE_S, b""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while (left := deadline - time.monotonic()) > 0:
        chunk = os.read(fd, 65536) if poller.poll(left * 1000) else b""
        if not chunk:
            return None
        data += chunk
        try:
            return int(json.loads(data)["child-pid"])
        except (ValueError, KeyError, TypeError):  # not all of it yet
            continue
    return None


def bwrap_launch(
    bwrap: str, runtime: Runtime, command: list[str], extra_paths: list[str], tmpfs_mb: int = 64
) -> Launch:
    """The bwrap command that runs ``command`` with: new user, PID, network, IPC, UTS (and
    cgroup) namespaces; no network; only the system libraries, the runtime and ``extra_paths``,
    read-only; one size-capped tmpfs as the working directory; the environment SANDBOX_ENV."""
    argv = [bwrap, "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc"]
    argv += ["--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox"]
    argv += ["--die-with-parent", "--new-session", "--cap-drop", "ALL", "--clearenv"]
    for key, value in SANDBOX_ENV.items():
        argv += ["--setenv", key, value]
    launch = Launch(argv)
    if drops_privileges():
        info_r, info_w = os.pipe()
        block_r, block_w = os.pipe()
        argv += ["--info-fd", str(info_w), "--userns-block-fd", str(block_r)]
        argv += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        launch.pass_fds, launch.info_fd, launch.block_fd = (info_w, block_r), info_r, block_w
        launch._to_close = [info_r, block_w]
    else:
        argv += ["--uid", str(SANDBOX_ID), "--gid", str(SANDBOX_ID)]
        if _supports_disable_userns(bwrap):
            argv.append("--disable-userns")
    argv += _mounts(runtime, extra_paths, tmpfs_mb)
    argv += ["--", *command]
    return launch


def _mounts(runtime: Runtime, extra_paths: list[str], tmpfs_mb: int) -> list[str]:
    args: list[str] = []
    bound: list[str] = []
    created: set[str] = set()
    for lib in _SYSTEM_LIBS:
        if Path(lib).is_dir():
            args += _parents(lib, bound, created) + ["--ro-bind", lib, lib]
            bound.append(lib)
    for link in ("/lib", "/lib64"):  # merged /usr: symlinks; otherwise real directories
        if Path(link).is_symlink():
            args += ["--symlink", os.readlink(link), link]
        elif Path(link).is_dir():
            args += ["--ro-bind", link, link]
            bound.append(link)
    harness = str(Path(__file__).with_name("_harness.py"))
    args += ["--perms", "0755", "--dir", SANDBOX_ROOT, "--ro-bind", harness, HARNESS]
    for path in _uncovered([*runtime.paths, *extra_paths], bound):
        args += _parents(path, bound, created) + ["--ro-bind", path, path]
        bound.append(path)
    args += ["--proc", "/proc", "--dev", "/dev", "--remount-ro", "/dev"]
    args += ["--perms", "0777", "--size", str(tmpfs_mb << 20), "--tmpfs", WORKDIR]
    args += ["--chdir", WORKDIR]
    return args + ["--remount-ro", "/"]


def _parents(path: str, bound: list[str], created: set[str]) -> list[str]:
    """Traversable (0755) directories down to ``path``: bwrap would otherwise create them 0700,
    which nobody cannot enter once the harness dropped to it."""
    args: list[str] = []
    for parent in reversed(Path(path).parents):
        text = str(parent)
        if text == "/" or _covered(text, bound) or text in created:
            continue
        created.add(text)
        args += ["--perms", "0755", "--dir", text]
    return args

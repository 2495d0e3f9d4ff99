"""A throwaway PostgreSQL cluster for the tests: `initdb` in a temp dir, `postgres` on a free
127.0.0.1 port, one fresh database per test, everything removed at the end.

PostgreSQL refuses to run as root, and the tests often run as root (CI containers): the server
then runs as ``nobody`` in a folder it owns. The binaries are Debian's (`postgresql` package,
``/usr/lib/postgresql/N/bin``) or ``EVALBATCH_PG_BINDIR``. When they are missing this is a test
failure that says how to install them, never a skip: CI must not pass without PostgreSQL.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

NOBODY = 65534
USER = "evalbatch"
MISSING = (
    "PostgreSQL's server binaries (initdb, postgres) were not found in "
    "/usr/lib/postgresql/*/bin or $EVALBATCH_PG_BINDIR. The PostgreSQL tests need them: "
    "`make system-deps` installs them as root (or: sudo apt-get install -y postgresql); "
    "deselect them with -m 'not postgres' only on a machine that cannot have them"
)


def find_bindir() -> Path | None:
    env = os.environ.get("EVALBATCH_PG_BINDIR")
    candidates = [env] if env else sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for folder in candidates:
        if folder and (Path(folder) / "initdb").exists() and (Path(folder) / "postgres").exists():
            return Path(folder)
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresCluster:
    """One server; ``database()`` gives a new empty database's SQLAlchemy URL."""

    def __init__(self, bindir: Path, *, durable: bool = False) -> None:
        self.bindir = bindir
        # Tests trade durability for speed (the server outlives every test's crash); a
        # benchmark keeps PostgreSQL's defaults (fsync, synchronous commit).
        self._speed = [] if durable else [
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
        ]  # fmt: skip
        self.root = Path(tempfile.mkdtemp(prefix="evalbatch-pg-"))
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._names = itertools.count(1)
        self._as_user: dict[str, object] = {}
        if os.geteuid() == 0:  # PostgreSQL refuses root: run it as nobody in a folder it owns
            os.chown(self.root, NOBODY, NOBODY)
            self._as_user = {"user": NOBODY, "group": NOBODY, "extra_groups": []}

    def _run(self, *args: str) -> None:
        done = subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            cwd=self.root,
            check=False,
            **self._as_user,  # type: ignore[arg-type]
        )
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr[-2000:]}")

    def start(self) -> PostgresCluster:
        data = self.root / "data"
        self._run(
            "initdb", "-D", str(data), "-U", USER, "--auth=trust", "--no-locale",
            "-E", "UTF8", "--no-sync",
        )  # fmt: skip
        for _attempt in range(5):
            self.port = _free_port()
            with open(self.root / "server.log", "ab") as log:
                self._proc = subprocess.Popen(
                    [
                        str(self.bindir / "postgres"), "-D", str(data), "-p", str(self.port),
                        "-h", "127.0.0.1", "-k", "", *self._speed,
                        "-c", "max_connections=300", "-c", "shared_buffers=128MB",
                        "-c", "log_min_messages=fatal",
                    ],
                    cwd=self.root,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                    **self._as_user,  # type: ignore[arg-type]
                )  # fmt: skip
            if self._wait_ready():
                return self
            self._proc.kill()
            self._proc.wait()
        log = (self.root / "server.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"postgres did not start: {log}")

    def _wait_ready(self, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                return False  # e.g. the port was taken between the probe and the bind
            try:
                with psycopg.connect(self._dsn("postgres"), connect_timeout=2):
                    return True
            except psycopg.OperationalError:
                time.sleep(0.1)
        return False

    def _dsn(self, dbname: str) -> str:
        return f"host=127.0.0.1 port={self.port} user={USER} dbname={dbname}"

    def url(self, dbname: str) -> str:
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{dbname}"

    def database(self) -> str:
        """A new, empty database; returns its SQLAlchemy URL."""
        name = f"t{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self._dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" STRATEGY FILE_COPY')  # type: ignore[arg-type]
        return self.url(name)

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT)  # fast shutdown: clients are disconnected
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        with contextlib.suppress(OSError):
            shutil.rmtree(self.root)

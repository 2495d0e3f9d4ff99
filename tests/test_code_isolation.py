"""The `code` grader against hostile programs: each test runs the real grader on a completion that
tries one harm and asserts, from outside, that the harm did not happen."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evalbatch.graders.code import CodeGrader
from evalbatch.graders.execution import Limits
from evalbatch.graders.isolation import SANDBOX_ENV
from evalbatch.records import Case, Score

ADD_CASE = Case(
    id="add",
    input='def add(a, b):\n    """Add two numbers."""\n',
    vars={
        "test": "def check(candidate):\n    assert candidate(2, 3) == 5\n",
        "entry_point": "add",
    },
)
PARAMS = {"tests": "{{ test }}", "entry_point": "{{ entry_point }}", "timeout_s": 5}
ADD = "def add(a, b):\n    return a + b\n"


def _grader(base_dir: Path, **params: Any) -> CodeGrader:
    return CodeGrader("code", {**PARAMS, **params}, base_dir)


def _grade(base_dir: Path, output: str, **params: Any) -> Score:
    return _grader(base_dir, **params).grade(output, ADD_CASE)


def hostile(body: str) -> str:
    """A completion that tries ``body`` at import time (outcomes in ``report``) and then fails
    on purpose with the report as its last line, so whatever it obtained shows in the verdict."""
    prelude = "import json, os, socket, sys, time\nreport = {}\n"
    ending = "\nraise SystemExit('REPORT ' + json.dumps(report))\n"
    return prelude + textwrap.dedent(body) + ending


def _report(score: Score) -> dict[str, Any]:
    match = re.search(r"REPORT (\{.*\})", score.explanation)
    assert match, score
    report: dict[str, Any] = json.loads(match.group(1))
    return report


def _alive_with(tag: str) -> list[int]:
    """Host processes (not zombies) whose command line carries ``tag``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if tag.encode() in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


@contextlib.contextmanager
def _no_survivors(tag: str, within_s: float = 2.0) -> Iterator[None]:
    """After the block, no process carrying ``tag`` may be alive (briefly allowing the kernel
    to finish killing); whatever is found is killed so the test leaves nothing behind."""
    yield
    deadline = time.monotonic() + within_s
    while _alive_with(tag) and time.monotonic() < deadline:
        time.sleep(0.05)
    survivors = _alive_with(tag)
    for pid in survivors:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert not survivors, f"processes started by the completion outlived the grader: {survivors}"


def _sleeper(tag: str, seconds: int, keep_pipes: bool) -> str:
    """Code that starts a detached (double fork + setsid) process carrying ``tag``, which keeps
    the program's stdout and stderr open or lets go of them."""
    return textwrap.dedent(
        f"""
        import os, sys
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                if not {keep_pipes}:
                    null = os.open(os.devnull, os.O_RDWR)
                    for fd in (0, 1, 2):
                        os.dup2(null, fd)
                    os.closerange(3, 1024)
                os.execv(sys.executable, [sys.executable, "-c",
                         "import time; time.sleep({seconds})", {tag!r}])
            os._exit(0)
        os.wait()
        """
    )


# --- what the program can read ----------------------------------------------------------------


def test_host_files_and_the_store_are_invisible(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tag = uuid.uuid4().hex
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text(f"PRIVATE-{tag}")
    store = tmp_path / "store.db"
    with contextlib.closing(sqlite3.connect(store)) as db, db:
        db.execute("create table t (v text)")
        db.execute("insert into t values (?)", (f"STORE-{tag}",))
    (tmp_path / "suite.yaml").write_text(f"name: SUITE-{tag}\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("EVALBATCH_DB", str(store))
    body = f"""
        for name, path in [("passwd", "/etc/passwd"), ("ssh", {str(home / ".ssh/id_rsa")!r}),
                           ("store", {str(store)!r}), ("suite", {str(tmp_path / "suite.yaml")!r}),
                           ("home", os.path.expanduser("~/.ssh/id_rsa"))]:
            try:
                report[name] = open(path, "rb").read().decode("latin-1")[-60:]
            except OSError as exc:
                report[name] = type(exc).__name__
        report["db_env"] = os.environ.get("EVALBATCH_DB", "")
    """
    score = _grade(tmp_path, hostile(body))
    report = _report(score)
    assert tag not in score.explanation
    assert "root:" not in report["passwd"]
    assert report["db_env"] == ""
    assert {report[k] for k in ("ssh", "store", "suite")} == {"FileNotFoundError"}


def test_the_environment_is_only_the_allowlist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-must-not-leak")
    monkeypatch.setenv("EVALBATCH_DB", "/somewhere/store.db")
    monkeypatch.setenv("EVALBATCH_TEST_HARMLESS", "harmless")
    score = _grade(Path.cwd(), hostile("report['env'] = dict(os.environ)"))
    env = _report(score)["env"]
    env.pop("PWD", None)  # bwrap's --chdir sets it to the working directory
    assert env == SANDBOX_ENV


def test_other_processes_environments_are_invisible() -> None:
    """A host process holding a secret in its environment, as the evalbatch CLI holds the key."""
    secret = f"sk-ant-{uuid.uuid4().hex}"
    with subprocess.Popen(
        ["sleep", "30"], env={"ANTHROPIC_API_KEY": secret, "PATH": os.environ["PATH"]}
    ) as holder:
        try:
            body = """
                seen = []
                for pid in os.listdir("/proc"):
                    for part in ("environ", "cmdline"):
                        try:
                            data = open(f"/proc/{pid}/{part}", "rb").read()
                        except (OSError, ValueError):
                            continue
                        if b"ANTHROPIC_API_KEY=" in data:
                            seen.append(data.split(b"ANTHROPIC_API_KEY=")[1][:60].decode())
                report["keys"] = seen
                report["pids"] = len([p for p in os.listdir("/proc") if p.isdigit()])
            """
            score = _grade(Path.cwd(), hostile(body))
        finally:
            holder.kill()
    assert secret not in score.explanation
    report = _report(score)
    assert report["keys"] == []
    assert report["pids"] <= 3  # bwrap's init, the harness, and nothing of the host


# --- what the program can change --------------------------------------------------------------


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_nothing_is_written_outside_the_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    store = tmp_path / "store.db"
    with contextlib.closing(sqlite3.connect(store)) as db, db:
        db.execute("create table t (v text)")
    (tmp_path / "suite.yaml").write_text("name: mine\n")
    monkeypatch.setenv("HOME", str(home))
    outside = Path("/tmp") / f"evalbatch-hostile-{uuid.uuid4().hex}"
    before = _tree(tmp_path)
    body = f"""
        import sqlite3
        targets = {{"suite": {str(tmp_path / "suite.yaml")!r},
                    "suite_dir": {str(tmp_path / "dropped.py")!r},
                    "home": {str(home / ".bashrc")!r}, "tmp": {str(outside)!r},
                    "harness": "/evalbatch/harness.py", "usr": "/usr/lib/dropped",
                    "root": "/dropped", "shm": "/dev/shm/dropped"}}
        for name, path in targets.items():
            try:
                with open(path, "a") as fh:
                    fh.write("owned\\n")
                report[name] = "written"
            except OSError as exc:
                report[name] = type(exc).__name__
        try:
            with sqlite3.connect({str(store)!r}) as db:
                db.execute("insert into t values ('owned')")
            report["store"] = "written"
        except sqlite3.Error as exc:
            report["store"] = type(exc).__name__
        open("scratch.txt", "w").write("the working directory is writable")
        report["scratch"] = open("scratch.txt").read()
    """
    score = _grade(tmp_path, hostile(body))
    assert _tree(tmp_path) == before
    assert not outside.exists()
    report = _report(score)
    assert "written" not in report.values(), report
    assert report["scratch"] == "the working directory is writable"


def test_a_large_file_is_stopped_by_the_file_size_limit(tmp_path: Path) -> None:
    body = """
        written = 0
        try:
            with open("big.bin", "wb") as fh:
                for _ in range(50):
                    fh.write(b"x" * (1 << 20))
                    written += 1 << 20
        except OSError as exc:
            report["error"] = type(exc).__name__
        report["written"] = written
    """
    report = _report(_grade(tmp_path, hostile(body)))
    assert report["written"] <= Limits(1, 1).file_mb << 20
    assert report["error"] == "OSError"  # EFBIG: File too large


# --- network and signals ----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_no_connection_reaches_the_host(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        port, exposed = listener.getsockname()[1], _free_port()
        body = f"""
            for name, addr in [("loopback", ("127.0.0.1", {port})), ("outside", ("1.1.1.1", 53))]:
                try:
                    socket.create_connection(addr, timeout=1).close()
                    report[name] = "connected"
                except OSError as exc:
                    report[name] = type(exc).__name__
            try:
                socket.getaddrinfo("pypi.org", 443)
                report["dns"] = "resolved"
            except OSError as exc:
                report["dns"] = type(exc).__name__
            server = socket.socket()
            server.bind(("0.0.0.0", {exposed}))
            server.listen(1)
            time.sleep(1.5)  # the test tries to reach this listener from the host meanwhile
        """
        result: list[Score] = []
        worker = threading.Thread(target=lambda: result.append(_grade(tmp_path, hostile(body))))
        worker.start()
        reached = False
        while worker.is_alive():
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", exposed), timeout=0.2),
            ):
                reached = True
            time.sleep(0.05)
        worker.join()
        with pytest.raises(BlockingIOError):
            listener.accept()[0].close()
    assert not reached, "a listener the program opened was reachable from the host"
    report = _report(result[0])
    assert "connected" not in report.values() and report["dns"] != "resolved", report


def test_the_grader_process_cannot_be_signalled(tmp_path: Path) -> None:
    received: list[int] = []
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: received.append(signum))
    try:
        body = f"""
            for name, pid in [("grader", {os.getpid()}), ("parent", os.getppid())]:
                try:
                    os.kill(pid, 0)
                    report[name] = "reachable"
                except OSError as exc:
                    report[name] = type(exc).__name__
            try:
                os.kill({os.getpid()}, 10)  # SIGUSR1 to the grader's pid, as seen from the host
            except OSError:
                pass
        """
        score = _grade(tmp_path, hostile(body))
        time.sleep(0.1)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert received == []
    assert _report(score)["grader"] == "ProcessLookupError"


# --- processes and time -----------------------------------------------------------------------


def test_a_fork_bomb_is_stopped_by_the_process_limit(tmp_path: Path) -> None:
    tag = f"evalbatch-fork-{uuid.uuid4().hex}"
    body = f"""
        forked = 0
        try:
            for _ in range(200):
                if os.fork() == 0:
                    os.execv(sys.executable, [sys.executable, "-c",
                             "import time; time.sleep(20)", {tag!r}])
                forked += 1
        except OSError as exc:
            report["error"] = type(exc).__name__
        report["forked"] = forked
    """
    with _no_survivors(tag):
        report = _report(_grade(tmp_path, hostile(body)))
    assert report["forked"] < Limits(1, 1).processes
    assert report["error"] == "BlockingIOError"  # EAGAIN from fork: the process limit


def test_a_detached_grandchild_dies_with_the_timeout(tmp_path: Path) -> None:
    tag = f"evalbatch-detached-{uuid.uuid4().hex}"
    output = _sleeper(tag, 30, keep_pipes=False) + "def add(a, b):\n    while True:\n        pass\n"
    started = time.monotonic()
    with _no_survivors(tag):
        score = _grade(tmp_path, output, timeout_s=1)
        elapsed = time.monotonic() - started
    assert score.explanation == "timed out after 1s"
    assert elapsed < 1 + 1, f"grade() took {elapsed:.1f}s"


def test_a_grandchild_holding_the_pipes_does_not_block_the_grader(tmp_path: Path) -> None:
    tag = f"evalbatch-pipes-{uuid.uuid4().hex}"
    started = time.monotonic()
    with _no_survivors(tag):
        score = _grade(tmp_path, _sleeper(tag, 15, keep_pipes=True) + ADD, timeout_s=2)
        elapsed = time.monotonic() - started
    assert elapsed < 2 + 1, f"grade() took {elapsed:.1f}s"
    assert score == Score("code", True, 1.0, "all tests passed")  # the tests did run


# --- a pass must be earned --------------------------------------------------------------------

EARLY_EXITS = {
    "os._exit(0) before the tests": (
        "import os\nos._exit(0)\n",
        "exited before the tests ran (exit 0)",
    ),
    "sys.exit(0) before the tests": (
        "import sys\nsys.exit(0)\n",
        "exited before the tests ran (exit 0)",
    ),
    "SystemExit raised at import": ("raise SystemExit\n", "exited before the tests ran (exit 0)"),
    "SystemExit raised by the candidate during the tests": (
        "def add(a, b):\n    raise SystemExit(0)\n",
        "exited during the tests (exit 0)",
    ),
    "os._exit(0) during the tests": (
        "import os\ndef add(a, b):\n    os._exit(0)\n",
        "exited during the tests (exit 0)",
    ),
    "an atexit hook turns a failed test into exit 0": (
        "import atexit, os\natexit.register(os._exit, 0)\ndef add(a, b):\n    return 0\n",
        "exited during the tests (exit 0)",
    ),
    "the harness killed": (
        "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n",
        "killed by signal 9 (SIGKILL) before the tests ran",
    ),
    "a forged completion marker": (
        "import os\nfor fd in range(3, 64):\n    try:\n"
        "        os.write(fd, b'ready\\ntests\\npass ' + b'0' * 32 + b'\\n')\n"
        "    except OSError:\n        pass\nos._exit(0)\n",
        "exited before the tests ran (exit 0)",
    ),
    "a pass forged from what the marker channel shows": (
        textwrap.dedent(
            """
            import os, socket
            seen = set()
            for fd in range(3, 64):  # read every fd back, as a pipe reopened or as a socket
                try:
                    h = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_NONBLOCK)
                    seen.update(os.read(h, 4096).decode(errors="ignore").split())
                    os.close(h)
                except OSError:
                    pass
                try:
                    s = socket.socket(fileno=os.dup(fd))
                    s.setblocking(False)
                    seen.update(s.recv(4096).decode(errors="ignore").split())
                    s.close()
                except OSError:
                    pass
            for fd in range(3, 64):
                for word in seen:
                    for line in (word, f"{word} tests", f"{word} pass"):
                        try:
                            os.write(fd, f"{line}\\n".encode())
                        except OSError:
                            pass
            os._exit(0)
            """
        ),
        "exited before the tests ran (exit 0)",
    ),
}


@pytest.mark.parametrize("cheat", sorted(EARLY_EXITS))
def test_an_early_exit_grades_as_fail_with_the_reason(cheat: str, tmp_path: Path) -> None:
    output, reason = EARLY_EXITS[cheat]
    assert _grade(tmp_path, output) == Score("code", False, 0.0, reason)


def test_output_is_captured_up_to_the_cap(tmp_path: Path) -> None:
    flood = (
        "import sys\nsys.stdout.write('o' * 5_000_000)\nsys.stderr.write('e' * 5_000_000)\n"
        "def add(a, b):\n    raise ValueError('the real reason')\n"
    )
    grader = _grader(tmp_path)
    run = grader.execute(flood, ADD_CASE)
    cap = Limits(1, 1).output_kb << 10
    for stream in (run.stdout, run.stderr):
        assert len(stream) < cap + 200
        assert "output truncated" in stream
    assert grader.verdict(run).explanation.endswith("ValueError: the real reason")


# --- throughput -------------------------------------------------------------------------------


def test_grade_many_runs_in_parallel_and_keeps_the_order(tmp_path: Path) -> None:
    slow_pass = "import time\ntime.sleep(0.6)\n" + ADD
    slow_fail = "import time\ntime.sleep(0.6)\ndef add(a, b):\n    return 0\n"
    items = [(slow_pass, ADD_CASE), (slow_fail, ADD_CASE)] * 2
    started = time.monotonic()
    scores = _grader(tmp_path).grade_many(items, workers=4)
    elapsed = time.monotonic() - started
    assert [s.passed for s in scores] == [True, False, True, False]
    assert elapsed < 4 * 0.6, f"4 executions of 0.6s took {elapsed:.2f}s with 4 workers"


# --- no silent downgrade ----------------------------------------------------------------------


def test_without_bubblewrap_the_grader_refuses_to_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on it
    with pytest.raises(ValueError, match=r"`apt-get install bubblewrap`.*`isolation: none`"):
        _grader(tmp_path)


def test_a_bubblewrap_that_cannot_build_a_sandbox_refuses_to_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "bwrap"  # as on a host where unprivileged user namespaces are off
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ValueError, match=r"cannot build a sandbox here \(bwrap: No permissions"):
        _grader(tmp_path)


def test_isolation_none_is_recorded_and_warned_about(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # opting out needs no bwrap
    grader = _grader(tmp_path, isolation="none")
    assert grader.manifest_entry()["isolation"] == "none"
    assert "UNISOLATED" in (grader.isolation_warning() or "")
    assert grader.grade(ADD, ADD_CASE).passed is True
    # Unisolated, a pass must still be earned.
    assert grader.grade("import os\nos._exit(0)\n", ADD_CASE) == Score(
        "code", False, 0.0, "exited before the tests ran (exit 0)"
    )


def test_the_sandbox_is_the_default_and_is_recorded(tmp_path: Path) -> None:
    grader = _grader(tmp_path)
    assert grader.isolation == "bwrap" and grader.isolation_warning() is None
    entry = grader.manifest_entry()
    assert entry["isolation"] == "bwrap" and entry["extra_paths"] == []


def test_extra_paths_are_readable_and_importable_but_read_only(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "helper.py").write_text("def add(a, b):\n    return a + b\n")
    output = "import helper\nadd = helper.add\nopen(helper.__file__, 'a').write('# owned')\n"
    score = _grade(tmp_path, output, extra_paths=["lib"])
    assert score.passed is False
    assert re.search(r"Read-only file system|Permission denied", score.explanation), score
    assert (lib / "helper.py").read_text().endswith("return a + b\n")
    assert _grade(tmp_path, "import helper\nadd = helper.add\n", extra_paths=["lib"]).passed


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"isolation": "docker"}, "isolation: bwrap or none"),
        ({"extra_paths": ["missing"]}, "extra_paths: missing does not exist"),
        ({"extra_paths": ["/"]}, "cannot be shown to the program"),
        ({"extra_paths": "lib"}, "extra_paths: a list of paths"),
        ({"workers": 0}, "workers: a positive number"),
        ({"timeout_s": "soon"}, "timeout_s: a positive number"),
    ],
)
def test_bad_sandbox_options_are_rejected(
    params: dict[str, Any], message: str, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        _grader(tmp_path, **params)

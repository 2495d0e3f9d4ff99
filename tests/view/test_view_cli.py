"""`evalbatch view` as a user runs it: it says where it listens on stderr, serves, and stops
cleanly (exit 0) on SIGINT or SIGTERM; a port in use, a remote host or a missing store is a
one-line error with exit 2."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from evalbatch.errors import ConfigError, NotFound
from evalbatch.view.server import ViewConfig, ViewServer


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVALBATCH_")}
    return {**env, "EVALBATCH_HOME": str(tmp_path / "home"), "NO_COLOR": "1", "COLUMNS": "200"}


def _view(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "evalbatch", "view", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_view_listens_on_loopback_and_stops_cleanly(view_store, tmp_path, sig):
    with _view(["--db", view_store.url, "--port", "0"], _env(tmp_path)) as proc:
        try:
            assert proc.stderr is not None
            line = proc.stderr.readline()
            match = re.fullmatch(r"listening on (http://127\.0\.0\.1:(\d+))\n", line)
            assert match, line
            with urllib.request.urlopen(match.group(1) + "/api/runs", timeout=30) as resp:
                assert len(json.loads(resp.read())["runs"]) == 3
            proc.send_signal(sig)
            out, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, err
    assert out == ""  # stdout stays clean


def test_a_port_in_use_is_a_one_line_error(view_store, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = _view(["--db", view_store.url, "--port", str(port)], _env(tmp_path))
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert err.strip().splitlines() == [
        f"error: cannot listen on 127.0.0.1:{port}: the port is in use "
        "(pass --port N, or --port 0 for any free port)"
    ]


def test_a_remote_host_needs_allow_remote(view_store, tmp_path):
    proc = _view(["--db", view_store.url, "--host", "0.0.0.0"], _env(tmp_path))
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "refusing to bind 0.0.0.0: the viewer serves loopback only" in err
    with pytest.raises(ConfigError, match="loopback only"):
        ViewServer(ViewConfig(db=view_store.url, host="192.0.2.1", port=0))


def test_a_store_that_does_not_exist_is_a_clear_error_and_is_not_created(tmp_path):
    missing = tmp_path / "nowhere" / "store.db"
    proc = _view(["--db", f"sqlite:///{missing}", "--port", "0"], _env(tmp_path))
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert f"no store at {missing}" in err and len(err.strip().splitlines()) == 1
    assert not missing.exists() and not missing.parent.exists()
    with pytest.raises(NotFound):
        ViewServer(ViewConfig(port=0))  # the default store under an empty EVALBATCH_HOME

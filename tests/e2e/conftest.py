"""End-to-end fixtures: a real sandbox on 127.0.0.1 and the real CLI, in-process or as a process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from evalbatch.sandbox import SandboxConfig, SandboxServer

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    """Override in a test module to change the sandbox (responder, faults...)."""
    return SandboxConfig(responder="echo", batch_latency=0.0)


@pytest.fixture
def sandbox(sandbox_config: SandboxConfig) -> Iterator[SandboxServer]:
    server = SandboxServer(sandbox_config)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def env_for(base_url: str, home: Path, store_url: str | None = None) -> dict[str, str]:
    """The CLI's environment: this sandbox, this store (EVALBATCH_HOME, or ``store_url`` when
    it is not the SQLite file there), no real key, no colour."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANTHROPIC_", "OPENAI_", "EVALBATCH_"))
    }
    env.update(
        {
            "ANTHROPIC_BASE_URL": base_url,
            "ANTHROPIC_API_KEY": "test-key",
            "EVALBATCH_HOME": str(home),
            "COLUMNS": "160",
            "NO_COLOR": "1",
        }
    )
    if store_url is not None and not store_url.startswith("sqlite:"):
        env["EVALBATCH_DB"] = store_url
    return env


@pytest.fixture
def cli_env(sandbox: SandboxServer, _isolated_home: Path, store_url: str) -> dict[str, str]:
    return env_for(sandbox.base_url, _isolated_home, store_url)


def run_cli(
    args: list[str], env: dict[str, str], cwd: Path | None = None, timeout: float = 120
) -> CliResult:
    """The real CLI as a process, the way a cron line or CI runs it."""
    proc = subprocess.run(
        [sys.executable, "-m", "evalbatch", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)

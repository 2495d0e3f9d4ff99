"""`evalbatch sandbox` as a process: prints its address, serves, stops on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys

import anthropic
import httpx2


def test_serves_until_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "evalbatch", "sandbox", "--port", "0", "--batch-latency", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline().strip()  # type: ignore[union-attr]
        assert line.startswith("listening on http://127.0.0.1:")
        with anthropic.Anthropic(base_url=line.removeprefix("listening on "), api_key="k") as c:
            msg = c.messages.create(
                model="claude-haiku-5-5",
                max_tokens=5,
                messages=[{"role": "user", "content": "ping"}],
            )
        assert msg.content[0].text == "ping"
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=10)
        proc.stdout.close()  # type: ignore[union-attr]
    assert code == 0


def test_refuses_non_loopback_without_allow_remote() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "evalbatch", "sandbox", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2 and "--allow-remote" in proc.stderr


def test_bad_fault_flag_is_exit_2() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "evalbatch", "sandbox", "--fault", "418=0.1"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2 and "unknown fault '418'" in proc.stderr


def test_cache_flags_reach_the_served_settings() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "evalbatch",
            "sandbox",
            "--batch-concurrency",
            "3",
            "--batch-cache-hit-rate",
            "0.4",
            "--seed",
            "9",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        base_url = proc.stdout.readline().strip().removeprefix("listening on ")  # type: ignore[union-attr]
        settings = httpx2.get(f"{base_url}/_sandbox/config").json()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
        proc.stdout.close()  # type: ignore[union-attr]
    assert settings["batch_concurrency"] == 3 and settings["batch_cache_hit_rate"] == 0.4
    assert settings["seed"] == 9


def test_hit_rate_above_one_is_exit_2() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "evalbatch", "sandbox", "--batch-cache-hit-rate", "1.5"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2 and "--batch-cache-hit-rate" in proc.stderr


def test_bad_quality_profile_is_exit_2_naming_file_and_key(tmp_path) -> None:
    (tmp_path / "cases.jsonl").write_text('{"id": "1", "input": "hi", "target": "x"}\n')
    profile = tmp_path / "profile.yaml"
    profile.write_text("cases: cases.jsonl\nmodels:\n  haiku:\n    answer: 1.5\n")
    proc = subprocess.run(
        [sys.executable, "-m", "evalbatch", "sandbox", "--responder", f"quality:{profile}"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"error: {profile}: models.haiku.answer: 1.5 is not a probability between 0 and 1"
    )

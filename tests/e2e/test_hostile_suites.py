"""Suites written to hurt: deep YAML, templates that reach for files or build huge values,
includes of devices and giant files, `--set` values that are not YAML. Each ends in one line
naming the file and place, exit 2, and nothing written."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from .conftest import run_cli
from .suites import write_suite


def _no_runs(env: dict[str, str]) -> bool:
    return json.loads(run_cli(["runs", "--json"], env).stdout) == []


def _refused(result, env, *needles: str) -> None:
    assert result.code == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr
    assert _no_runs(env)


def test_deeply_nested_yaml_is_a_one_line_error(tmp_path, cli_env):
    suite = tmp_path / "suite.yaml"
    suite.write_text("name: deep\nextra: " + "[" * 5000 + "]" * 5000 + "\n")
    _refused(run_cli(["run", str(suite)], cli_env), cli_env, "suite.yaml", "nested too deeply")


def test_deeply_nested_yaml_case_file_is_a_one_line_error(tmp_path, cli_env):
    suite = write_suite(tmp_path / "s")
    (tmp_path / "s" / "cases.yaml").write_text(
        "- {id: a, input: " + "[" * 5000 + "]" * 5000 + "}\n"
    )
    text = suite.read_text().replace("cases.jsonl", "cases.yaml")
    suite.write_text(text)
    _refused(run_cli(["run", str(suite)], cli_env), cli_env, "cases.yaml", "nested too deeply")


@pytest.mark.parametrize(
    ("prompt", "needle"),
    [
        ('{% include "/etc/passwd" %}', "{% include %} is not available"),
        ('{% import "x.j2" as x %}{{ input }}', "{% import %} is not available"),
        ('{% extends "base.j2" %}', "{% extends %} is not available"),
        ('{{ "{0[9]}".format_map({}) }}', "IndexError"),
        ("{{ range(10**6) | list | length }}", "Range too big"),
        ('{{ "a" * 10**9 }}', "a value longer than"),
        ('{{ "{:>2000000000}".format(input) }}', "format width"),
        ('{% for i in range(99999) %}{{ "x" * 100 }}{% endfor %}', "renders to more than"),
    ],
)
def test_templates_cannot_reach_files_or_build_huge_values(tmp_path, cli_env, prompt, needle):
    suite = write_suite(tmp_path / "s", generate={"prompt": prompt})
    _refused(run_cli(["run", str(suite)], cli_env), cli_env, "cases.jsonl:1", "'prompt'", needle)


def test_an_include_of_a_device_is_refused_at_once(tmp_path, cli_env):
    suite = write_suite(tmp_path / "s", generate={"system": "file:///dev/zero"})
    _refused(
        run_cli(["run", str(suite)], cli_env, timeout=20),
        cli_env,
        "suite.yaml:",
        "is not a regular file",
    )


def test_a_giant_include_is_refused_with_the_limit(tmp_path, cli_env):
    big = tmp_path / "s" / "big.md"
    big.parent.mkdir(parents=True)
    with big.open("wb") as fh:
        fh.truncate(11 << 20)  # sparse: 11 MB without writing them
    suite = write_suite(tmp_path / "s", generate={"system": "file://big.md"})
    result = run_cli(["run", str(suite)], cli_env)
    _refused(
        result, cli_env, "suite.yaml:", "include limit of 10.0 MB", "EVALBATCH_MAX_INCLUDE_BYTES"
    )


def test_a_rubric_file_that_is_a_device_is_refused(tmp_path, cli_env):
    suite = write_suite(
        tmp_path / "s", grade=[{"rubric": {"model": "haiku", "rubric": "file:///dev/zero"}}]
    )
    _refused(run_cli(["run", str(suite)], cli_env, timeout=20), cli_env, "is not a regular file")


def test_a_set_value_that_is_not_yaml_is_taken_as_a_string(tmp_path, cli_env):
    suite = write_suite(tmp_path / "s")
    result = run_cli(
        ["plan", str(suite), "--set", "generate.prompt={{ input }} please", "--json"], cli_env
    )
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["cases"] == 4


def test_a_set_value_that_is_yaml_keeps_its_type(tmp_path, cli_env):
    suite = write_suite(tmp_path / "s")
    result = run_cli(["plan", str(suite), "--set", "generate.max_tokens=[1, 2]"], cli_env)
    assert result.code == 2
    assert re.search(r"suite\.yaml \(--set generate\.max_tokens=\[1, 2\]\)", result.stderr)


def test_the_suite_file_itself_has_a_size_limit(tmp_path, cli_env):
    suite = Path(write_suite(tmp_path / "s"))
    with suite.open("a") as fh:
        fh.write("#" * (11 << 20) + "\n")
    _refused(run_cli(["run", str(suite)], cli_env), cli_env, "suite-file limit")

"""Suite loading: the happy paths and every bad input, each a one-line error naming file:line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalbatch.errors import SuiteError
from evalbatch.graders import build_grader
from evalbatch.suite.cases import iter_cases, scan_cases
from evalbatch.suite.load import display_path, load_suite

BASE = """name: demo
cases: cases.jsonl
generate:
  prompt: "Q: {{ input }}"
  model: haiku
grade:
  - contains: "{{ target }}"
"""


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cases.jsonl").write_text(
        '{"id": "a", "input": "one", "target": "1"}\n{"id": "b", "input": "two", "target": "2"}\n'
    )
    return tmp_path


def _write(folder: Path, text: str, name: str = "suite.yaml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def _scan(path: Path) -> int:
    suite = load_suite(path)
    graders = [build_grader(s, suite.base_dir) for s in suite.grade]
    return scan_cases(suite, graders).count


def _error(path: Path) -> str:
    with pytest.raises(SuiteError) as info:
        _scan(path)
    return str(info.value)


def test_happy_path_resolves_everything(folder: Path) -> None:
    (folder / "system.md").write_text("You are terse.\n")
    path = _write(folder, BASE.replace("generate:\n", "generate:\n  system: file://system.md\n"))
    suite = load_suite(path)
    assert suite.name == "demo" and suite.mode == "batch" and suite.cache.mode == "auto"
    assert suite.generate.system == "You are terse.\n"
    assert suite.generate.system_source == "file://system.md"
    assert [g.name for g in suite.grade] == ["contains"]
    assert _scan(path) == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            BASE.replace("  model: haiku", "  modle: haiku"),
            "suite.yaml:5: unknown key 'modle' in generate (did you mean 'model'?)",
        ),
        (
            BASE + "grde: []\n",
            "suite.yaml:8: unknown key 'grde' in the suite (did you mean 'grade'?)",
        ),
        (
            BASE.replace("cases.jsonl", "missing.jsonl"),
            "suite.yaml:2: cases: file not found: missing.jsonl",
        ),
        (
            BASE.replace("  model: haiku", "  model: haiku\n  max_tokens: 0"),
            "suite.yaml:6: generate.max_tokens: must be between 1 and 128000 (got 0)",
        ),
        (
            BASE.replace("model: haiku", "model: gpt-9"),
            "suite.yaml:5: unknown model 'gpt-9' (known aliases: haiku, opus, sonnet)",
        ),
        (
            BASE.replace("- contains:", "- contians:"),
            "suite.yaml:7: unknown grader type 'contians' (did you mean 'contains'?)",
        ),
        (
            BASE.replace('- contains: "{{ target }}"', "- regex: '(unclosed'"),
            "suite.yaml:7: regex: invalid regex '(unclosed'",
        ),
        (
            BASE.replace("model: haiku", "model: route"),
            "suite.yaml:5: model: route needs a routing",
        ),
        ("name: demo\n", "suite.yaml: missing required key 'cases'"),
        ("", "suite.yaml: the suite file is empty"),
        ("- a\n- b\n", "suite.yaml: the top level must be a mapping"),
        ("name: demo\ncases: [\n", "suite.yaml:3: invalid YAML"),
        (BASE.replace("name: demo", "name: 'has spaces'"), "suite.yaml:1: name: may only contain"),
        (BASE + "mode: turbo\n", "suite.yaml:8: mode: Input should be 'batch' or 'sync'"),
        (
            BASE.replace("generate:\n", "generate:\n  system: file://nope.md\n"),
            "suite.yaml:4: include file://nope.md: file not found",
        ),
    ],
)
def test_bad_suites_name_file_and_line(folder: Path, text: str, expected: str) -> None:
    assert expected in _error(_write(folder, text))


@pytest.mark.parametrize(
    ("cases", "expected"),
    [
        (
            '{"id": "a", "input": "one"}\n{"id": "a", "input": "two"}\n',
            "cases.jsonl:2: duplicate case id 'a' (first at line 1)",
        ),
        (
            '{"id": "a", "input": "one"}\n{"id": "b", "input": "two",}\n',
            "cases.jsonl:2: invalid JSON",
        ),
        (
            '{"id": "a", "inptu": "one"}\n',
            "cases.jsonl:1: unknown case key 'inptu' (did you mean 'input'?)",
        ),
        ('{"id": "a", "target": "x"}\n', "cases.jsonl:1: case 'a': needs `input` or `vars`"),
        (
            '{"id": "a", "input": "one", "tags": "x"}\n{"id": "b", "vars": {"q": 1}}\n',
            "cases.jsonl:2 (case 'b', field 'prompt'): template: 'input' is undefined",
        ),
        ("", "cases.jsonl: no cases"),
    ],
)
def test_bad_cases_name_file_line_and_case(folder: Path, cases: str, expected: str) -> None:
    (folder / "cases.jsonl").write_text(cases)
    assert expected in _error(_write(folder, BASE.replace('"{{ target }}"', "ok")))


def test_missing_template_variable_names_case_and_variable(folder: Path) -> None:
    path = _write(folder, BASE.replace("{{ input }}", "{{ question }}"))
    assert _error(path) == (
        "cases.jsonl:1 (case 'a', field 'prompt'): template: 'question' is undefined"
    )


def test_invalid_utf8_in_suite_and_cases(folder: Path) -> None:
    path = folder / "suite.yaml"
    path.write_bytes(BASE.encode() + b"description: caf\xe9\n")
    assert _error(path).startswith("suite.yaml: not valid UTF-8 at byte")
    path.write_text(BASE)
    (folder / "cases.jsonl").write_bytes(b'{"id": "a", "input": "caf\xe9"}\n')
    assert _error(path).startswith("cases.jsonl:1: not valid UTF-8")


def test_huge_case_file_is_refused_before_reading(folder: Path) -> None:
    huge = folder / "cases.jsonl"
    with open(huge, "wb") as fh:
        fh.truncate(2 * 1024**3)  # sparse: no disk used
    assert _error(_write(folder, BASE)) == (
        "cases.jsonl: 2.0 GB is larger than the case-file limit of 1.0 GB (set "
        "EVALBATCH_MAX_CASE_FILE_BYTES to raise it)"
    )


def test_unreadable_case_file(folder: Path) -> None:
    (folder / "cases.jsonl").unlink()
    (folder / "cases.jsonl").mkdir()
    assert _error(_write(folder, BASE)) == "cases.jsonl: is a folder, not a file"


def test_template_sandbox_blocks_attribute_escapes(folder: Path) -> None:
    path = _write(folder, BASE.replace("{{ input }}", "{{ input.__class__.__mro__ }}"))
    assert "not allowed" in _error(path) or "unsafe" in _error(path)


def test_overrides_apply_before_validation(folder: Path) -> None:
    path = _write(folder, BASE)
    suite = load_suite(
        path, ["generate.model=opus", "mode=sync", "generate.max_tokens=64", "budget_usd=2.5"]
    )
    assert (suite.generate.model, suite.mode, suite.generate.max_tokens, suite.budget_usd) == (
        "opus",
        "sync",
        64,
        2.5,
    )
    with pytest.raises(
        SuiteError,
        match=r"--set modee: unknown key 'modee' \(did you mean "
        r"'mode'\?\)",
    ):
        load_suite(path, ["modee=sync"])


def test_a_bad_override_is_blamed_on_the_flag_not_a_line(folder: Path) -> None:
    path = _write(folder, BASE)
    with pytest.raises(SuiteError) as err:
        load_suite(path, ["generate.max_tokens=0"])
    assert err.value.where == f"{display_path(path)} (--set generate.max_tokens=0)"


def test_cache_forms(folder: Path) -> None:
    for text, (mode, warm) in [
        ("cache: off\n", ("off", False)),
        ("cache: auto\n", ("auto", True)),  # batch mode warms shared prefixes by default
        ("cache: {warm: true}\n", ("auto", True)),
        ("cache: {warm: false}\n", ("auto", False)),
    ]:
        suite = load_suite(_write(folder, BASE + text))
        assert (suite.cache.mode, suite.cache.warm) == (mode, warm)


def test_repeated_graders_get_numbered_names(folder: Path) -> None:
    path = _write(
        folder, BASE + "  - contains: \"{{ input }}\"\n  - name: short\n    regex: '^.{0,80}$'\n"
    )
    assert [g.name for g in load_suite(path).grade] == ["contains", "contains_2", "short"]


def test_csv_yaml_and_inline_cases(folder: Path) -> None:
    (folder / "cases.csv").write_text("id,input,target,tags,lang\nx,hello,hi,a;b,en\n")
    suite = load_suite(_write(folder, BASE.replace("cases.jsonl", "cases.csv")))
    (case,) = list(iter_cases(suite))
    assert (case.id, case.input, case.tags, case.vars) == ("x", "hello", ("a", "b"), {"lang": "en"})
    (folder / "cases.yaml").write_text("- id: y\n  input: yaml case\n  difficulty: hard\n")
    suite = load_suite(_write(folder, BASE.replace("cases.jsonl", "cases.yaml")))
    (case,) = list(iter_cases(suite))
    assert (case.id, case.difficulty, case.line) == ("y", "hard", 1)
    inline = BASE.replace(
        "cases: cases.jsonl",
        "cases:\n  - {input: first, target: f}\n  - {input: second, target: s}",
    )
    assert [c.id for c in iter_cases(load_suite(_write(folder, inline)))] == ["1", "2"]
    (folder / "bad.csv").write_text("question,answer\nq,a\n")
    assert "CSV needs a header row" in _error(
        _write(folder, BASE.replace("cases.jsonl", "bad.csv"))
    )


def test_scan_streams_a_large_case_file(folder: Path) -> None:
    with open(folder / "cases.jsonl", "w") as fh:
        for i in range(50_000):
            fh.write(json.dumps({"id": f"c{i}", "input": f"question {i}", "target": "x"}) + "\n")
    assert _scan(_write(folder, BASE)) == 50_000


def test_max_case_file_bytes_env(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    size = (folder / "cases.jsonl").stat().st_size
    monkeypatch.setenv("EVALBATCH_MAX_CASE_FILE_BYTES", "10")
    assert (
        f"{size} bytes is larger than the case-file limit of 10 bytes "
        "(set EVALBATCH_MAX_CASE_FILE_BYTES to raise it)"
    ) in _error(_write(folder, BASE))
    monkeypatch.setenv("EVALBATCH_MAX_CASE_FILE_BYTES", str(size))  # raised to fit: it loads
    assert _scan(_write(folder, BASE)) == 2


@pytest.mark.parametrize(
    "source",
    [
        "{{ input }}",
        "Customer: {{ input }}\n",
        "{{input}}-{{ target }}",
        "{{ target }}{{ target }}",
        "{{ n }}",
        "{{ none }}",
        "{{ true }}",
        "a}b {{ input }}",
        "{{- input }}",
        "{{ input|upper }}",
        "x\r\n{{ input }}\r",
        "{{ input }} {# note #}",
    ],
)
def test_render_matches_jinja(source: str) -> None:
    """`render` skips Jinja for text and `{{ name }}` templates: the output is Jinja's."""
    from evalbatch.templates import _ENV, render

    context = {"input": "Q {{ x }}\r\n} 1", "target": "yes", "n": 3, "true": "T", "none": "N"}
    assert render(source, context, "here") == _ENV.from_string(source).render(context)


def test_render_of_plain_template_names_a_missing_variable() -> None:
    from evalbatch.templates import render

    with pytest.raises(SuiteError, match="'target' is undefined") as info:
        render("{{ input }} {{ target }}", {"input": "x"}, "cases.jsonl:3")
    assert "cases.jsonl:3" in str(info.value)

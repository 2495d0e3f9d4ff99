"""Keep the docs honest: links resolve, CLI invocations in code blocks use real commands and
flags, and the YAML suites in docs/suite.md load.

Fast and offline: `--help` goes through typer's CliRunner (in process, cached per command) and
suites are loaded with evalbatch.suite.load_suite in a temp folder, then prepared as `plan` does
(every case validated, every template rendered for every case).

A YAML block in docs/suite.md preceded by ``<!-- partial -->`` (on the line before the fence,
blank lines allowed) is a deliberate fragment (a case file, a grader snippet) and is only
checked to be valid YAML. Every other YAML block is loaded: a block with ``name:`` as a suite on
its own, a block without it merged over a minimal suite (so each of its keys must be a suite key).
"""

from __future__ import annotations

import re
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from evalbatch.cli import app
from evalbatch.errors import SuiteError
from evalbatch.plan.prepare import prepare
from evalbatch.suite.load import load_suite

ROOT = Path(__file__).resolve().parent.parent
PARTIAL = "<!-- partial -->"


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


# -- markdown parsing -------------------------------------------------------------------------

_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)")


class Block:
    def __init__(self, lang: str, text: str, line: int, partial: bool) -> None:
        self.lang, self.text, self.line, self.partial = lang, text, line, partial


def code_blocks(text: str) -> list[Block]:
    """Fenced code blocks (also indented ones inside list items), with the partial marker."""
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, lang = m.group(1), m.group(2), m.group(3).lower()
        j = i - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        partial = j >= 0 and lines[j].strip() == PARTIAL
        body: list[str] = []
        k = i + 1
        while k < len(lines) and not lines[k].strip().startswith(fence):
            line = lines[k]
            body.append(line[len(indent) :] if line.startswith(indent) else line)
            k += 1
        blocks.append(Block(lang, "\n".join(body) + "\n", i + 1, partial))
        i = k + 1
    return blocks


def prose(text: str) -> str:
    """The text without fenced blocks and inline code, so links in code are not checked."""
    out, in_fence, fence = [], False, ""
    for line in text.splitlines():
        m = _FENCE.match(line)
        if m and not in_fence:
            in_fence, fence = True, m.group(2)
            out.append("")
            continue
        if in_fence:
            if line.strip().startswith(fence):
                in_fence = False
            out.append("")
            continue
        out.append(re.sub(r"`[^`]*`", "", line))
    return "\n".join(out)


# -- (a) links --------------------------------------------------------------------------------

_INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REF_LINK = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M)


def relative_links(path: Path) -> list[str]:
    text = prose(path.read_text("utf-8"))
    targets = _INLINE_LINK.findall(text) + _REF_LINK.findall(text)
    return [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:|^#|^//", t, re.I)]


@pytest.mark.parametrize("doc", doc_files(), ids=_rel)
def test_relative_links_resolve(doc: Path) -> None:
    assert doc.exists(), f"{_rel(doc)} is missing"
    broken = []
    for target in relative_links(doc):
        file_part = target.split("#", 1)[0].split("?", 1)[0]
        if not file_part:
            continue
        if not (doc.parent / file_part).exists():
            broken.append(target)
    assert not broken, f"{_rel(doc)}: broken relative links: {broken}"


def test_docs_linked_from_readme_exist() -> None:
    """README links every doc the lead asked for; each must be there."""
    links = {t.split("#")[0] for t in relative_links(ROOT / "README.md")}
    for name in ("suite", "costs", "compare", "nightly", "cli", "sandbox"):
        assert f"docs/{name}.md" in links, f"README.md does not link docs/{name}.md"
        assert (ROOT / "docs" / f"{name}.md").exists(), f"docs/{name}.md is missing"


# -- (b) CLI invocations in code blocks -------------------------------------------------------

_RUNNER = CliRunner()
_OPTION = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")
_INVOCATION = re.compile(r"(?:^|(?<=[\s/;&|(`$]))evalbatch((?:\s+[^\s#|;&<>]+)*)")


@cache
def help_text(command: str | None) -> str:
    args = [*command.split(), "--help"] if command else ["--help"]
    result = _RUNNER.invoke(app, args, env={"COLUMNS": "200", "TERMINAL_WIDTH": "200"})
    assert result.exit_code == 0, f"evalbatch {' '.join(args)} failed:\n{result.output}"
    return result.output


@cache
def commands() -> frozenset[str]:
    text = help_text(None)
    section = text.split("Commands:", 1)[1] if "Commands:" in text else ""
    names = re.findall(r"^\s{2,}([a-z][\w-]*)\s", section, re.M)
    # `sandbox` is registered at startup by main(); the help run through the runner may omit it
    return frozenset(names)


@cache
def subcommands(command: str) -> frozenset[str]:
    """A command group's own commands (`db` -> copy, upgrade); empty for a plain command."""
    text = help_text(command)
    section = text.split("Commands", 1)[1] if "Commands" in text else ""
    return frozenset(re.findall(r"^[\s│]{2,}([a-z][\w-]*)\s", section, re.M))


@cache
def flags(command: str | None) -> frozenset[str]:
    return frozenset(_OPTION.findall(help_text(command))) | {"--help"}


def _logical_lines(block: str) -> list[str]:
    """Lines with backslash continuations joined."""
    out, current = [], ""
    for line in block.splitlines():
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        out.append(current + line)
        current = ""
    if current:
        out.append(current)
    return out


def invocations(doc: Path) -> list[tuple[int, str, list[str], list[str]]]:
    """(block line, text, leading options, [command, *args]) for each `evalbatch ...` in code."""
    found = []
    for block in code_blocks(doc.read_text("utf-8")):
        for line in _logical_lines(block.text):
            for m in _INVOCATION.finditer(line):
                rest = m.group(1)
                # a comment ends the command
                rest = re.split(r"\s#", " " + rest, maxsplit=1)[0]
                words = rest.split()
                leading = []
                while words and words[0].startswith("-"):
                    leading.append(words.pop(0))
                if not words and not leading:
                    continue
                found.append((block.line, line.strip(), leading, words))
    return found


def _sandbox_registered() -> None:
    from evalbatch import cli

    register = getattr(cli, "_register_sandbox", None)
    if register is not None and "sandbox" not in commands():
        register()
        help_text.cache_clear()
        commands.cache_clear()
        subcommands.cache_clear()
        flags.cache_clear()


@pytest.mark.parametrize("doc", doc_files(), ids=_rel)
def test_cli_invocations_use_real_commands_and_flags(doc: Path) -> None:
    assert doc.exists(), f"{_rel(doc)} is missing"
    _sandbox_registered()
    problems = []
    for line_no, text, leading, words in invocations(doc):
        for opt in leading:
            if opt.split("=", 1)[0] not in flags(None):
                problems.append(f"block at line {line_no}: `{text}`: no global option {opt}")
        if not words:
            continue
        command = words[0].rstrip(":;,.`)")
        if not re.fullmatch(r"[a-z][a-z-]*", command):
            continue  # e.g. "evalbatch.db", a path, or prose like "evalbatch's"
        if command not in commands():
            problems.append(f"block at line {line_no}: `{text}`: no command {command!r}")
            continue
        if len(words) > 1 and words[1] in subcommands(command):
            command, words = f"{command} {words[1]}", words[1:]  # `db copy`: its own flags
        known = flags(command)
        for word in words[1:]:
            if not _OPTION.fullmatch(word.split("=", 1)[0]):
                continue
            opt = word.split("=", 1)[0]
            if opt not in known:
                problems.append(f"block at line {line_no}: `{text}`: {command} has no {opt}")
    assert not problems, f"{_rel(doc)}:\n" + "\n".join(problems)


def test_invocation_parser_sees_commands_and_flags(tmp_path: Path) -> None:
    """Guard the checker itself: it must find commands, flags and comments correctly."""
    sample = tmp_path / "sample.md"
    sample.write_text(
        "```bash\n"
        "evalbatch run suite.yaml --sandbox --responder script:r.yaml  # a --comment\n"
        ".venv/bin/evalbatch plan s.yaml \\\n  --per-month 60\n"
        "```\n",
        "utf-8",
    )
    found = [(lead, words) for _, _, lead, words in invocations(sample)]
    assert found == [
        ([], ["run", "suite.yaml", "--sandbox", "--responder", "script:r.yaml"]),
        ([], ["plan", "s.yaml", "--per-month", "60"]),
    ]
    assert {"run", "plan", "compare", "runs"} <= commands()
    assert {"--sandbox", "--baseline", "--set", "--budget"} <= flags("run")
    assert "--min-effect" in flags("compare")


# -- (c) YAML suites in docs/suite.md ---------------------------------------------------------

SUITE_DOC = ROOT / "docs" / "suite.md"
BASE_SUITE: dict[str, Any] = {
    "name": "docs-base",
    "cases": [{"id": "1", "input": "hello", "target": "hello"}],
    "generate": {"prompt": "{{ input }}", "model": "haiku"},
}
CASE = {
    "id": "1",
    "input": "x",
    "target": "y",
    "difficulty": "easy",
    "tags": ["t"],
    "vars": {"test": "def check(f):\n    pass\n", "entry_point": "f"},
}


def _yaml_blocks() -> list[Block]:
    if not SUITE_DOC.exists():
        return []
    return [b for b in code_blocks(SUITE_DOC.read_text("utf-8")) if b.lang in ("yaml", "yml")]


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _provide_files(data: dict[str, Any], folder: Path) -> None:
    """Create the case file, every file:// include and every python grader the suite names."""
    import json

    cases = data.get("cases")
    if isinstance(cases, str):
        path = folder / cases.removeprefix("file://")
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".csv":
            path.write_text("id,input,target\n1,x,y\n", "utf-8")
        elif path.suffix in (".yaml", ".yml"):
            path.write_text(yaml.safe_dump([CASE]), "utf-8")
        else:
            path.write_text(json.dumps(CASE) + "\n", "utf-8")
    for text in _strings(data):
        if text.startswith("file://"):
            path = folder / text[len("file://") :]
            path.parent.mkdir(parents=True, exist_ok=True)
            body = '{"type": "object"}' if path.suffix == ".json" else "Included text.\n"
            path.write_text(body, "utf-8")
    for entry in data.get("grade") or []:
        target = entry.get("python") if isinstance(entry, dict) else None
        if isinstance(target, dict):
            target = target.get("function")
        if not isinstance(target, str) or ":" not in target:
            continue
        module, func = target.rsplit(":", 1)
        file = folder / (module if module.endswith(".py") else module.replace(".", "/") + ".py")
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(f"def {func}(output, context, **kwargs):\n    return True\n", "utf-8")
        sys.modules.pop(module, None)


@pytest.mark.parametrize("block", _yaml_blocks(), ids=lambda b: f"suite.md:{b.line}")
def test_suite_doc_yaml_blocks_load(block: Block, tmp_path: Path) -> None:
    where = f"docs/suite.md:{block.line}"
    try:
        data = yaml.safe_load(block.text)
    except yaml.YAMLError as exc:
        pytest.fail(f"{where}: invalid YAML: {exc}")
    if block.partial:
        return  # a deliberate fragment, marked <!-- partial -->: valid YAML is all we ask
    assert isinstance(data, dict), f"{where}: not a mapping; mark it {PARTIAL} if deliberate"
    if "name" not in data:
        data = {**BASE_SUITE, **data}
    _provide_files(data, tmp_path)
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), "utf-8")
    try:
        load_suite(path)
        # what `plan` does first: every case valid, every template renders for every case
        prepare(path)
    except SuiteError as exc:
        pytest.fail(f"{where}: does not load: {exc}")


def test_suite_doc_has_checked_blocks() -> None:
    """The checker must actually check something: suite.md exists and has full suites."""
    blocks = _yaml_blocks()
    assert SUITE_DOC.exists(), "docs/suite.md is missing"
    full = [b for b in blocks if not b.partial and "name:" in b.text]
    assert len(full) >= 3, "docs/suite.md should have complete example suites"


def test_partial_marker_only_before_code_blocks() -> None:
    """A stray <!-- partial --> (not right before a fenced block) is a mistake."""
    for doc in doc_files():
        if not doc.exists():
            continue
        lines = doc.read_text("utf-8").splitlines()
        for i, line in enumerate(lines):
            if line.strip() != PARTIAL:
                continue
            j = i + 1
            while j < len(lines) and not lines[j].strip():
                j += 1
            assert j < len(lines) and _FENCE.match(lines[j]), (
                f"{_rel(doc)}:{i + 1}: {PARTIAL} is not followed by a code block"
            )

"""`evalbatch export`: one row per case x grader x epoch in JSONL or CSV, streamed by windows
of cases, with the rendered prompt's hash as documented and nothing a spreadsheet would run."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import subprocess
import sys
from dataclasses import replace

import orjson
import pytest

from evalbatch.analysis.export import COLUMNS, write_rows
from evalbatch.store import browse_export
from evalbatch.store.browse_records import prompt_sha256

from .fixtures import CASES, HOSTILE_OUTPUTS


def export(args, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVALBATCH_")}
    env["EVALBATCH_HOME"] = str(tmp_path / "home")
    proc = subprocess.run(
        [sys.executable, "-m", "evalbatch", "export", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc


def test_jsonl_has_a_row_per_case_grader_and_epoch(view_store, tmp_path):
    proc = export([view_store.new, "--db", view_store.url], tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(rows) == len(CASES) * 2
    assert list(rows[0]) == list(COLUMNS)
    by_key = {(r["case_id"], r["grader"]): r for r in rows}
    contains = by_key[("xss-img", "contains")]
    assert contains["output"] == HOSTILE_OUTPUTS["xss-img"]
    assert (contains["verdict"], contains["passed"], contains["score"]) == ("fail", False, 0.0)
    assert contains["grade_model"] is None and contains["cost_usd"] > 0
    assert contains["input"] == "case xss-img </textarea><b>bold</b>"
    assert contains["tags"] == ["plain"] and contains["route"] == "difficulty=easy"
    rubric = by_key[("xss-img", "rubric")]
    assert rubric["verdict"] == "pass" and rubric["grade_model"] and rubric["grade_cost_usd"] > 0
    assert rubric["explanation"] == "<script>window.__pwned=7</script> fine"
    # the generation's hash, tokens and cost repeat on each grader's row of the case
    assert rubric["prompt_sha256"] == contains["prompt_sha256"]
    assert rubric["output_tokens"] == contains["output_tokens"] > 0


def test_the_prompt_hash_is_the_documented_one(view_store, tmp_path):
    proc = export([view_store.base, "--db", view_store.url], tmp_path)
    row = json.loads(proc.stdout.splitlines()[0])
    # the base suite sends the input as the one user message, with no system prompt
    body = {"messages": [{"role": "user", "content": CASES[0]["input"]}], "system": None}
    expected = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
    assert row["prompt_sha256"] == expected
    block = {"type": "text", "text": "You grade."}
    cached = {**block, "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    messages = [{"role": "user", "content": "hi"}]
    assert prompt_sha256([cached], messages) == prompt_sha256([block], messages)
    assert prompt_sha256([block], messages) != prompt_sha256(None, messages)


def test_csv_to_a_file(view_store, tmp_path):
    out = tmp_path / "rows.csv"
    proc = export(
        [view_store.new, "--db", view_store.url, "--format", "csv", "-o", str(out)], tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and f"wrote {len(CASES) * 2} rows to {out}" in proc.stderr
    with out.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(CASES) * 2 and list(rows[0]) == list(COLUMNS)
    row = next(r for r in rows if r["case_id"] == "xss-textarea" and r["grader"] == "contains")
    assert row["output"] == HOSTILE_OUTPUTS["xss-textarea"]
    assert json.loads(row["tags"]) == next(c["tags"] for c in CASES if c["id"] == "xss-textarea")
    assert row["grade_model"] == ""  # a missing value is an empty cell


def test_csv_cells_a_spreadsheet_would_run_stay_text(view_store):
    row = next(iter(view_store.open().browse.export_rows(view_store.new)))
    hostile = replace(row, output='=HYPERLINK("http://evil.test","x")', case_id="@SUM(A1)")
    buffer = io.StringIO()
    write_rows([hostile], "csv", buffer)
    (parsed,) = csv.DictReader(io.StringIO(buffer.getvalue()))
    assert parsed["output"] == '\'=HYPERLINK("http://evil.test","x")'
    assert parsed["case_id"] == "'@SUM(A1)"
    buffer = io.StringIO()
    write_rows([hostile], "jsonl", buffer)
    assert json.loads(buffer.getvalue())["output"].startswith("=HYPERLINK")  # JSONL is exact


def test_rows_stream_by_windows_of_cases(view_store, monkeypatch):
    store = view_store.open()
    whole = list(store.browse.export_rows(view_store.new))
    monkeypatch.setattr(browse_export, "_EXPORT_CASES", 3)
    assert list(store.browse.export_rows(view_store.new)) == whole
    assert [(r.case_id, r.grader) for r in whole] == [
        (c["id"], g) for c in CASES for g in ("contains", "rubric")
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no-such-run"], "no run 'no-such-run'"),
        (["latest", "--format", "parquet"], "pandas.read_json(FILE, lines=True).to_parquet"),
        (["latest", "--format", "xml"], "--format must be one of jsonl, csv"),
    ],
)
def test_bad_input_is_exit_2(view_store, tmp_path, args, message):
    proc = export([*args, "--db", view_store.url], tmp_path)
    assert proc.returncode == 2 and message in proc.stderr
    assert proc.stdout == ""

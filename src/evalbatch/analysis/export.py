"""`export`: a run's scores as rows (one per case x grader x epoch) in JSONL or CSV, written as
they stream from the store, so memory stays flat at any run size.

Columns are `ExportRow`'s fields in order. JSONL keeps every value exactly. In CSV, lists and
objects (an input given as vars, tags) are JSON text, a missing value is an empty cell, and a
text cell that a spreadsheet would run as a formula gets a leading apostrophe.
"""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Iterable
from typing import IO, Any, Final

import orjson

from ..errors import ConfigError
from ..store.browse_records import ExportRow
from ..store.db import Store

FORMATS: Final = ("jsonl", "csv")
COLUMNS: Final[tuple[str, ...]] = tuple(f.name for f in dataclasses.fields(ExportRow))


def check_format(fmt: str) -> None:
    if fmt == "parquet":
        raise ConfigError(
            "--format parquet is not built in: export jsonl and convert it, e.g. "
            "pandas.read_json(FILE, lines=True).to_parquet(...)"
        )
    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)} (got {fmt!r})")


def export_run(store: Store, run_id: str, fmt: str, out: IO[str]) -> int:
    """Write the run's rows to ``out``; returns how many."""
    check_format(fmt)
    store.runs.get(run_id)  # NotFound before anything is written
    return write_rows(store.browse.export_rows(run_id), fmt, out)


def write_rows(rows: Iterable[ExportRow], fmt: str, out: IO[str]) -> int:
    check_format(fmt)
    if fmt == "jsonl":
        return _jsonl(rows, out)
    return _csv(rows, out)


def _jsonl(rows: Iterable[ExportRow], out: IO[str]) -> int:
    count = 0
    for row in rows:
        out.write(orjson.dumps(row).decode())
        out.write("\n")
        count += 1
    return count


# A spreadsheet runs a cell that starts with one of these as a formula: a model's output
# "=HYPERLINK(...)" must stay text (OWASP's CSV injection advice: a leading apostrophe).
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dict | list | tuple):
        value = orjson.dumps(value).decode()
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _csv(rows: Iterable[ExportRow], out: IO[str]) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    count = 0
    for row in rows:
        writer.writerow([_cell(getattr(row, name)) for name in COLUMNS])
        count += 1
    return count

"""The tables of m005 and m006 as they were when those migrations landed (frozen: never edit;
a later change to them is a new migration). `schema.py` holds their current form."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

reference_scores = Table(
    "reference_scores",
    metadata,
    Column("run_id", String(40), primary_key=True),
    Column("case_idx", Integer, primary_key=True),
    Column("epoch", Integer, primary_key=True),
    Column("grader", String(100), primary_key=True),  # the graded grader's name ("rubric")
    Column("case_id", Text, nullable=False),
    Column("model", String(100), nullable=False),  # the reference model's id
    Column("passed", Boolean),
    Column("value", Float),
    Column("explanation", Text),
    Column("error", Text),
)

calibrations = Table(
    "calibrations",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("run_id", String(40), nullable=False),  # the calibrated run
    Column("step", String(16), nullable=False),
    Column("key", String(64), nullable=False),  # hash of what was run: the same key is reused
    Column("created_at", Float, nullable=False),
    Column("settings", Text, nullable=False),  # JSON
    Column("sample", Text, nullable=False),  # JSON
    Column("runs", Text, nullable=False),  # JSON {label: run id}
)
Index("ix_calibrations_run", calibrations.c.run_id, calibrations.c.step, calibrations.c.key)

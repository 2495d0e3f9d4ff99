"""The store's current tables (SQLAlchemy Core). Migrations build them; queries use them.

Vocabulary: a Run has Cases and Steps; a Step has Requests sent in Batches; each Request gets at
most one Result; Scores are per case, epoch and grader. Shared system prefixes live once in Prefixes.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

runs = Table(
    "runs",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("suite_name", String(200), nullable=False),
    Column("suite_path", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("finished_at", Float),
    Column("status", String(32), nullable=False),
    Column("mode", String(8), nullable=False),
    Column("manifest_hash", String(64), nullable=False),
    Column("manifest", Text, nullable=False),
    Column(
        "suite", Text, nullable=False
    ),  # the resolved Suite as JSON: collect never rereads files
    Column("options", Text, nullable=False),
    Column("error", Text),
    Column("case_count", Integer, nullable=False, default=0),
    Column("sweep_id", String(48)),  # m004: the sweep this run is a variant of
    Column("variant", String(200)),  # m004: its name in the sweep ("model=haiku")
)
Index("ix_runs_sweep", runs.c.sweep_id)

sweeps = Table(  # m004
    "sweeps",
    metadata,
    Column("id", String(48), primary_key=True),
    Column("suite_name", String(200), nullable=False),
    Column("suite_path", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("finished_at", Float),
    Column("status", String(32), nullable=False),
    Column("mode", String(8), nullable=False),
    Column("spec", Text, nullable=False),  # JSON: axes, variants, reference, margin, options
    Column("error", Text),
)

cases = Table(
    "cases",
    metadata,
    Column("run_id", String(40), ForeignKey("runs.id"), primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("case_id", Text, nullable=False),
    Column("data", Text, nullable=False),
)
Index("ix_cases_case_id", cases.c.run_id, cases.c.case_id)  # m003

steps = Table(
    "steps",
    metadata,
    Column("run_id", String(40), ForeignKey("runs.id"), primary_key=True),
    Column("name", String(16), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("planned_at", Float),
    Column("done_at", Float),
)

prefixes = Table(
    "prefixes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(40), ForeignKey("runs.id"), nullable=False),
    Column("step", String(16), nullable=False),
    Column("source", Text, nullable=False),  # "generate.system", "grade.rubric"...
    Column("sha256", String(64), nullable=False),
    Column("system", Text, nullable=False),  # JSON list of system blocks, no cache_control
    Column("tokens", Integer, nullable=False),
    UniqueConstraint("run_id", "sha256", name="uq_prefix"),
)

requests = Table(
    "requests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(40), ForeignKey("runs.id"), nullable=False),
    Column("step", String(16), nullable=False),
    Column("idx", Integer, nullable=False),
    Column("case_idx", Integer, nullable=False),
    Column("case_id", Text, nullable=False),
    Column("epoch", Integer, nullable=False, default=0),
    Column("grader", String(100)),
    Column("model", String(100), nullable=False),
    Column(
        "route", Text
    ),  # why this model: "model", "difficulty=hard", "rule 1: tags contains ..."
    Column("prefix_id", Integer, ForeignKey("prefixes.id")),
    Column("messages", Text, nullable=False),  # JSON
    Column("max_tokens", Integer, nullable=False),
    Column("extra", Text),  # JSON of other params (stop_sequences...)
    Column("input_estimate", Integer, nullable=False, default=0),
    Column(
        "status", String(16), nullable=False
    ),  # pending queued succeeded errored expired canceled
    Column("attempts", Integer, nullable=False, default=0),
    Column("batch_id", Integer),
    Column("last_error", Text),
    UniqueConstraint("run_id", "step", "idx", name="uq_request"),
)
Index("ix_requests_status", requests.c.run_id, requests.c.step, requests.c.status)
Index("ix_requests_batch", requests.c.batch_id)
Index("ix_requests_case", requests.c.run_id, requests.c.case_idx)  # m003

batches = Table(
    "batches",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(40), ForeignKey("runs.id"), nullable=False),
    Column("step", String(16), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("provider", String(32), nullable=False),
    Column("provider_batch_id", String(100)),  # null = intent not yet confirmed by the provider
    Column(
        "status", String(16), nullable=False
    ),  # intent in_progress canceling ended collected failed
    Column("request_count", Integer, nullable=False),
    Column("bytes", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("submitted_at", Float),
    Column("ended_at", Float),
    Column("expires_at", Float),
    Column("counts", Text),  # JSON request_counts as last polled
    Column("polled_at", Float),
    Column("poll_failures", Integer, nullable=False, default=0),
    Column("last_error", Text),
    # m004: a sweep's batch holds requests of several runs; run_id is then its first variant
    Column("sweep_id", String(48)),
    # m007: a two-step provider's uploaded input file (set between upload and create), and
    # when the provider's files of the batch (input, output, errors) were deleted
    Column("upload_id", String(100)),
    Column("released_at", Float),
    UniqueConstraint("run_id", "step", "seq", name="uq_batch"),
)
Index("ix_batches_sweep", batches.c.sweep_id, batches.c.status)

results = Table(
    "results",
    metadata,
    Column("request_id", Integer, ForeignKey("requests.id"), primary_key=True),
    Column("run_id", String(40), nullable=False),
    Column("step", String(16), nullable=False),
    Column("case_id", Text, nullable=False),
    Column("epoch", Integer, nullable=False),
    Column("grader", String(100)),
    Column("model", String(100), nullable=False),
    Column("mode", String(8), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("text", Text),
    Column("stop_reason", String(40)),
    Column("input_tokens", Integer, nullable=False, default=0),
    Column("output_tokens", Integer, nullable=False, default=0),
    Column("cache_write_5m", Integer, nullable=False, default=0),
    Column("cache_write_1h", Integer, nullable=False, default=0),
    Column("cache_read", Integer, nullable=False, default=0),
    Column("service_tier", String(16)),
    Column("cost_usd", Float, nullable=False, default=0.0),
    # counterfactuals from the same usage (see pricing.counterfactuals)
    Column("sync_cost_usd", Float, nullable=False, default=0.0),
    Column("nocache_cost_usd", Float, nullable=False, default=0.0),
    Column("norouting_cost_usd", Float, nullable=False, default=0.0),
    Column("naive_cost_usd", Float, nullable=False, default=0.0),
    Column("route", Text),
    Column("error_type", String(64)),
    Column("error_message", Text),
    Column("latency_ms", Integer),
    Column("batch_id", Integer),
    Column("created_at", Float, nullable=False),
)
Index("ix_results_run", results.c.run_id, results.c.step)

scores = Table(
    "scores",
    metadata,
    Column("run_id", String(40), ForeignKey("runs.id"), primary_key=True),
    Column("case_idx", Integer, primary_key=True),
    Column("epoch", Integer, primary_key=True),
    Column("grader", String(100), primary_key=True),
    Column("case_id", Text, nullable=False),
    Column("grader_type", String(32), nullable=False),
    Column("passed", Boolean),
    Column("value", Float),
    Column("explanation", Text),
    Column("error", Text),
)

leases = Table(
    "leases",
    metadata,
    Column("run_id", String(40), primary_key=True),
    Column("holder", String(100), nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("acquired_at", Float),  # m002
)

# m005: the reference grader's verdicts on its sample (reference-sampled grading).
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

# m006: what a calibration ran, so its report can be rebuilt (and the same one reused).
calibrations = Table(
    "calibrations",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("run_id", String(40), nullable=False),
    Column("step", String(16), nullable=False),
    Column("key", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("settings", Text, nullable=False),
    Column("sample", Text, nullable=False),
    Column("runs", Text, nullable=False),
)
Index("ix_calibrations_run", calibrations.c.run_id, calibrations.c.step, calibrations.c.key)

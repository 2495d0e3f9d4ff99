"""The manifest: every resolved value that can change a result, pinned and hashed.

Two runs with the same manifest hash are comparable. Mode (batch/sync), cache settings,
concurrency, retries and budget do not change a result and stay out of the hash.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from .._version import __version__
from ..catalog.models import Catalog
from ..graders.base import Grader


@dataclass(frozen=True)
class Manifest:
    data: dict[str, Any]
    hash: str

    @property
    def short(self) -> str:
        return self.hash[:12]


def _sha(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode()).hexdigest()


def _model_entry(name: str, catalog: Catalog) -> dict[str, str]:
    return {"as_written": name, "id": catalog.resolve(name)}


def _routing_entry(routing: Any, catalog: Catalog) -> dict[str, Any] | None:
    if routing is None:
        return None
    return {
        "table": {label: _model_entry(m, catalog) for label, m in sorted(routing.table.items())},
        "rules": [{"when": r.when, "model": _model_entry(r.model, catalog)} for r in routing.rules],
        "default": _model_entry(routing.default, catalog),
    }


def build_manifest(
    suite: Any, graders: list[Grader], case_count: int, case_sha256: str, catalog: Catalog
) -> Manifest:
    gen = suite.generate
    data: dict[str, Any] = {
        "evalbatch_version": __version__,
        "suite": suite.name,
        "generate": {
            "model": gen.model if gen.model == "route" else _model_entry(gen.model, catalog),
            "system": gen.system,
            "system_sha256": _sha(gen.system),
            "system_source": gen.system_source,
            "prompt": gen.prompt,
            "prompt_source": gen.prompt_source,
            "max_tokens": gen.max_tokens,
            "stop_sequences": gen.stop_sequences,
        },
        "routing": _routing_entry(suite.routing, catalog),
        "graders": [{"name": g.name, "type": g.kind, **g.manifest_entry()} for g in graders],
        "cases": {"count": case_count, "sha256": case_sha256},
        "epochs": suite.epochs,
        "models_version": catalog.version,
        "pricing_version": catalog.pricing_version,
    }
    return Manifest(data, manifest_hash(data))


def manifest_hash(data: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()

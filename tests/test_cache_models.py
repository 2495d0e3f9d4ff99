"""`plan`'s prompt-cache model and the sandbox's cache are written apart (the sandbox is the
oracle), but for requests sent one after another they must agree token for token: the same
reads, the same 5m and 1h writes, the same uncached input."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from evalbatch.catalog import load_catalog
from evalbatch.catalog.tokenizer import count_request
from evalbatch.plan.projection import CacheModel
from evalbatch.sandbox.cache import PromptCache

CATALOG = load_catalog()
# One model per distinct cache minimum, and prefixes on both sides of each minimum (models with
# breakpoints: automatic caching has its own test, tests/test_auto_cache.py).
_BY_MINIMUM = {
    m.min_cache_tokens: m.id for m in CATALOG.models.values() if not m.caches_automatically
}
MODELS = sorted(_BY_MINIMUM.values())
PREFIXES = [
    " ".join(f"w{i}x" for i in range(n))
    for n in sorted({max(1, k + d) for k in _BY_MINIMUM for d in (-200, 200)})
]


def _body(
    model: str, prefix: int, ttl: str | None, second: int | None, user: str
) -> dict[str, Any]:
    system: list[dict[str, Any]] = [{"type": "text", "text": PREFIXES[prefix]}]
    if ttl:
        system[0]["cache_control"] = {"type": "ephemeral", "ttl": ttl}
    if second is not None:  # a second breakpoint further on
        block: dict[str, Any] = {"type": "text", "text": PREFIXES[second]}
        if ttl:
            block["cache_control"] = {"type": "ephemeral", "ttl": "5m"}
        system.append(block)
    return {
        "model": model,
        "max_tokens": 10,
        "system": system,
        "messages": [{"role": "user", "content": user}],
    }


requests = st.lists(
    st.tuples(
        st.sampled_from(MODELS),
        st.integers(0, len(PREFIXES) - 1),
        st.sampled_from([None, "5m", "1h"]),
        st.one_of(st.none(), st.integers(0, len(PREFIXES) - 1)),
        st.sampled_from(["hello", "a question about refunds", "x"]),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(requests)
def test_plan_and_sandbox_account_a_sequence_of_requests_alike(sequence) -> None:
    assert len(MODELS) >= 2  # the table has models with different minimums
    plan = CacheModel(CATALOG)
    oracle = PromptCache(CATALOG, clock=lambda: 1000.0)
    for model, prefix, ttl, second, user in sequence:
        body = _body(model, prefix, ttl, second, user)
        projected = plan.usage(body, count_request(body), 0)
        seen = oracle.account("key", body)
        oracle.commit("key", seen.writes)
        assert (
            projected.cache_read,
            projected.cache_write_5m,
            projected.cache_write_1h,
            projected.input_tokens,
        ) == (seen.cache_read, seen.write_5m, seen.write_1h, seen.input_tokens), body["system"]


def test_a_prefix_is_written_once_then_read() -> None:
    plan = CacheModel(CATALOG)
    body = _body(MODELS[0], len(PREFIXES) - 1, "1h", None, "hi")
    first = plan.usage(body, count_request(body), 0)
    second = plan.usage(body, count_request(body), 0)
    assert first.cache_write_1h > 0 and first.cache_read == 0
    assert second.cache_read == first.cache_write_1h and second.cache_write == 0

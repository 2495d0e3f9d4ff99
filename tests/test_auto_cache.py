"""`plan`'s model of OpenAI's automatic prompt cache and the sandbox's (the oracle) are written
apart, but for requests sent one after another they must agree token for token: the same cached
tokens (0, or the minimum plus whole steps), the same uncached input, and never a write."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from evalbatch.catalog import load_catalog
from evalbatch.catalog.tokenizer import count_request, count_text
from evalbatch.plan.auto_cache import AutoCache, step_keys
from evalbatch.plan.caching import with_breakpoint
from evalbatch.plan.projection import CacheModel
from evalbatch.providers.openai_wire import chat_body
from evalbatch.sandbox.cache import PromptCache
from evalbatch.sandbox.openai_cache import account_prefix
from evalbatch.sandbox.openai_models import find_openai_model

CATALOG = load_catalog()
MODELS = ["openai:gpt-5-mini", "openai:gpt-4.1"]
PREFIXES = [" ".join(f"w{i}x" for i in range(n)) for n in (300, 1000, 1100, 1500, 2400)]
USERS = ["hello", "a question about refunds", "w0x w1x w2x " * 60]


def _body(model: str, prefix: int, second: int | None, user: str) -> dict[str, Any]:
    system = [{"type": "text", "text": PREFIXES[prefix]}]
    if second is not None:
        system.append({"type": "text", "text": PREFIXES[second]})
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
        st.one_of(st.none(), st.integers(0, len(PREFIXES) - 1)),
        st.sampled_from(USERS),
    ),
    min_size=1,
    max_size=10,
)


@settings(max_examples=100, deadline=None)
@given(requests)
def test_plan_and_sandbox_cache_a_sequence_of_requests_alike(sequence) -> None:
    plan = CacheModel(CATALOG)  # dispatches OpenAI models to the automatic cache
    oracle = PromptCache(CATALOG, clock=lambda: 1000.0)
    for model, prefix, second, user in sequence:
        body = _body(model, prefix, second, user)
        projected = plan.usage(body, count_request(body), 0)
        served = find_openai_model(CATALOG, model)
        assert served is not None
        seen = account_prefix(oracle, "key", served, chat_body(body), 1000.0)
        oracle.commit("key", seen.writes)
        assert (projected.cache_read, projected.input_tokens) == (
            seen.cached_tokens,
            seen.prompt_tokens - seen.cached_tokens,
        )
        assert projected.cache_write == 0


def test_steps_start_at_the_minimum_and_grow_by_128() -> None:
    body = _body("openai:gpt-5-mini", 4, None, "q")
    keys = step_keys(body["model"], [("system", PREFIXES[4])], 1024, 128)
    assert [tokens for tokens, _ in keys][:3] == [1024, 1152, 1280]
    cache = AutoCache(CATALOG)
    total = count_request(body)
    assert cache.usage(body, total, 5, batch_item=True).cache_read == 0
    again = cache.usage(_body("openai:gpt-5-mini", 4, None, "r"), total, 5, batch_item=True)
    shared = count_text(PREFIXES[4])  # the system prompt; the user messages differ
    assert again.cache_read == 1024 + 128 * ((shared - 1024) // 128)


def test_the_worst_case_reads_nothing_a_batch_wrote() -> None:
    cache = AutoCache(CATALOG, in_batch_reads=False)
    body = _body("openai:gpt-5-mini", 4, None, "q")
    for _ in range(3):
        assert cache.usage(body, count_request(body), 5, batch_item=True).cache_read == 0


def test_no_breakpoint_is_set_for_a_model_that_caches_by_itself() -> None:
    system = [{"type": "text", "text": PREFIXES[4]}]
    assert with_breakpoint(system, 4800, "openai:gpt-5-mini", "1h", CATALOG) == system
    marked = with_breakpoint(system, 4800, "claude-opus-5-5", "1h", CATALOG)
    assert marked is not None and "cache_control" in marked[-1]

"""Cost arithmetic: hand-computed examples from data/pricing.toml, the Haiku 5.5 band, exact batch
halving, the counterfactuals' true invariants, and the Ledger's sums."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evalbatch.catalog.models import Catalog, load_catalog
from evalbatch.catalog.pricing import Cost, Ledger, counterfactuals, price_usage
from evalbatch.errors import ConfigError
from evalbatch.records import Usage

CATALOG = load_catalog()
ALL_MODELS = sorted(CATALOG.prices)
FLAT_MODELS = [m for m in ALL_MODELS if len(CATALOG.prices[m].bands) == 1]
# Opus 5.5 costs at least as much as these in every bucket and band.
CHEAPER_THAN_OPUS = ["claude-haiku-5-5", "claude-sonnet-5-5", "claude-opus-5-5"]

tokens = st.integers(min_value=0, max_value=1_000_000)
usages = st.builds(
    Usage,
    input_tokens=tokens,
    output_tokens=tokens,
    cache_write_5m=tokens,
    cache_write_1h=tokens,
    cache_read=tokens,
)
no_write_usages = st.builds(Usage, input_tokens=tokens, output_tokens=tokens, cache_read=tokens)


def _close(a: float, b: float) -> bool:
    return a == pytest.approx(b, rel=1e-12, abs=1e-15)


def test_opus_batch_example_from_the_price_table() -> None:
    usage = Usage(input_tokens=1_000, output_tokens=500, cache_write_1h=2_000, cache_read=10_000)
    cost = price_usage(usage, "claude-opus-5-5", batch=True)
    # (1000*4 + 500*20 + 2000*8 + 10000*0.2) / 1e6 * 0.5
    assert cost.total == pytest.approx(0.016, rel=1e-12)
    assert cost.input == pytest.approx(0.002)
    assert cost.output == pytest.approx(0.005)
    assert cost.cache_write == pytest.approx(0.008)
    assert cost.cache_read == pytest.approx(0.001)
    assert price_usage(usage, "claude-opus-5-5", batch=False).total == pytest.approx(0.032)


def test_five_minute_and_one_hour_writes_use_their_own_rates() -> None:
    five = Usage(cache_write_5m=1_000_000)
    hour = Usage(cache_write_1h=1_000_000)
    assert price_usage(five, "claude-sonnet-5-5", batch=False).cache_write == pytest.approx(2.5)
    assert price_usage(hour, "claude-sonnet-5-5", batch=False).cache_write == pytest.approx(4.0)
    mixed = Usage(input_tokens=2_000, output_tokens=1_000, cache_write_5m=3_000)
    # (2000*2 + 1000*10 + 3000*2.5) / 1e6
    assert price_usage(mixed, "sonnet", batch=False).total == pytest.approx(0.0215, rel=1e-12)


def test_aliases_price_like_their_snapshot_and_unknown_models_are_refused() -> None:
    usage = Usage(input_tokens=123, output_tokens=45, cache_read=6_789)
    assert price_usage(usage, "haiku", batch=True) == price_usage(
        usage, "claude-haiku-5-5", batch=True
    )
    with pytest.raises(ConfigError, match="unknown model 'gpt-9'"):
        price_usage(usage, "gpt-9", batch=False)


def test_haiku_band_switches_just_above_100k_prompt_tokens_for_the_whole_request() -> None:
    at_limit = Usage(input_tokens=40_000, cache_read=60_000, output_tokens=1_000)
    above = dataclasses.replace(at_limit, input_tokens=40_001)
    # base band: (40000*0.10 + 60000*0.01 + 1000*0.50) / 1e6
    assert price_usage(at_limit, "haiku", batch=False).total == pytest.approx(0.0051, rel=1e-12)
    # long band, output included: (40001*0.50 + 60000*0.05 + 1000*2.50) / 1e6
    assert price_usage(above, "haiku", batch=False).total == pytest.approx(0.0255005, rel=1e-12)
    # cache writes count towards the prompt too
    written = Usage(input_tokens=1, cache_write_1h=100_000, output_tokens=1_000_000)
    assert price_usage(written, "haiku", batch=False).output == pytest.approx(2.5)


@given(
    input_tokens=st.integers(0, 150_000),
    cache_read=st.integers(0, 150_000),
    cache_write_5m=st.integers(0, 150_000),
)
def test_haiku_band_follows_prompt_tokens(
    input_tokens: int, cache_read: int, cache_write_5m: int
) -> None:
    usage = Usage(input_tokens, 1_000_000, cache_write_5m, 0, cache_read)
    long_context = usage.prompt_tokens > 100_000
    expected = 2.5 if long_context else 0.5
    assert price_usage(usage, "claude-haiku-5-5", batch=False).output == pytest.approx(expected)


@given(usage=usages, model=st.sampled_from(ALL_MODELS))
def test_batch_is_exactly_half_of_sync(usage: Usage, model: str) -> None:
    sync = price_usage(usage, model, batch=False)
    batch = price_usage(usage, model, batch=True)
    assert batch == Cost(
        sync.input * 0.5, sync.output * 0.5, sync.cache_write * 0.5, sync.cache_read * 0.5
    )
    assert batch.total == sync.total * 0.5


@given(usage=usages, k=st.integers(0, 50), model=st.sampled_from(FLAT_MODELS), batch=st.booleans())
def test_cost_scales_with_tokens(usage: Usage, k: int, model: str, batch: bool) -> None:
    scaled = Usage(
        usage.input_tokens * k,
        usage.output_tokens * k,
        usage.cache_write_5m * k,
        usage.cache_write_1h * k,
        usage.cache_read * k,
    )
    one = price_usage(usage, model, batch=batch).total
    assert _close(price_usage(scaled, model, batch=batch).total, k * one)


@given(a=usages, b=usages, model=st.sampled_from(FLAT_MODELS), batch=st.booleans())
def test_cost_adds_over_requests(a: Usage, b: Usage, model: str, batch: bool) -> None:
    both = Usage(
        a.input_tokens + b.input_tokens,
        a.output_tokens + b.output_tokens,
        a.cache_write_5m + b.cache_write_5m,
        a.cache_write_1h + b.cache_write_1h,
        a.cache_read + b.cache_read,
    )
    total = price_usage(both, model, batch=batch).total
    parts = price_usage(a, model, batch=batch).total + price_usage(b, model, batch=batch).total
    assert _close(total, parts)


def test_counterfactuals_by_hand() -> None:
    usage = Usage(input_tokens=1_000, output_tokens=500, cache_write_1h=2_000, cache_read=10_000)
    cf = counterfactuals(usage, "claude-opus-5-5", batch=True, strongest="claude-opus-5-5")
    assert cf.actual == pytest.approx(0.016)
    assert cf.sync == pytest.approx(0.032)
    assert cf.no_cache == pytest.approx((13_000 * 4 + 500 * 20) / 1e6 * 0.5)  # 0.031
    assert cf.no_routing == cf.actual
    assert cf.naive == pytest.approx((13_000 * 4 + 500 * 20) / 1e6)  # 0.062

    routed = counterfactuals(usage, "haiku", batch=True, strongest="opus")
    # Haiku 5.5 base band: (1000*0.1 + 500*0.5 + 2000*0.2 + 10000*0.01) / 1e6 * 0.5
    assert routed.actual == pytest.approx(0.000425)
    assert routed.no_routing == pytest.approx(0.016)
    assert routed.naive == pytest.approx(0.062)


@given(
    usage=usages,
    model=st.sampled_from(ALL_MODELS),
    strongest=st.sampled_from(ALL_MODELS),
    batch=st.booleans(),
)
def test_counterfactuals_agree_with_price_usage(
    usage: Usage, model: str, strongest: str, batch: bool
) -> None:
    cf = counterfactuals(usage, model, batch=batch, strongest=strongest)
    uncached = Usage(input_tokens=usage.prompt_tokens, output_tokens=usage.output_tokens)
    assert cf.actual == price_usage(usage, model, batch=batch).total
    assert cf.sync == price_usage(usage, model, batch=False).total
    assert cf.no_cache == price_usage(uncached, model, batch=batch).total
    assert cf.no_routing == price_usage(usage, strongest, batch=batch).total
    assert cf.naive == price_usage(uncached, strongest, batch=False).total
    assert cf.sync >= cf.actual


@given(usage=no_write_usages, model=st.sampled_from(ALL_MODELS), batch=st.booleans())
def test_without_cache_writes_no_cache_never_costs_less(
    usage: Usage, model: str, batch: bool
) -> None:
    cf = counterfactuals(usage, model, batch=batch, strongest=model)
    assert cf.no_cache >= cf.actual
    if usage.cache_read == 0:
        assert cf.no_cache == cf.actual


def test_no_cache_is_cheaper_when_a_request_only_wrote_the_cache() -> None:
    # A write costs more than input: a cache that was never read back was a loss.
    usage = Usage(input_tokens=10, cache_write_1h=5_000, output_tokens=100)
    cf = counterfactuals(usage, "opus", batch=False, strongest="opus")
    assert cf.no_cache < cf.actual


@given(usage=no_write_usages, model=st.sampled_from(CHEAPER_THAN_OPUS), batch=st.booleans())
def test_naive_costs_at_least_the_actual_when_strongest_is_dearest(
    usage: Usage, model: str, batch: bool
) -> None:
    cf = counterfactuals(usage, model, batch=batch, strongest="claude-opus-5-5")
    assert cf.naive >= cf.actual
    assert cf.no_routing >= cf.actual


def test_other_batch_discounts_scale_every_bucket() -> None:
    catalog: Catalog = dataclasses.replace(CATALOG, batch_discount=0.6)
    usage = Usage(input_tokens=777, output_tokens=333, cache_write_5m=111, cache_read=999)
    sync = price_usage(usage, "sonnet", batch=False, catalog=catalog)
    batch = price_usage(usage, "sonnet", batch=True, catalog=catalog)
    assert batch.input == sync.input * 0.6
    assert batch.cache_read == sync.cache_read * 0.6
    cf = counterfactuals(usage, "sonnet", batch=True, strongest="opus", catalog=catalog)
    assert cf.actual == batch.total


def test_ledger_sums_counterfactuals_and_tokens_by_key() -> None:
    ledger = Ledger()
    adds = [
        (
            ("generate", "claude-haiku-5-5", "batch"),
            Usage(1_000, 200, 0, 3_000, 500),
            "haiku",
            True,
        ),
        (("grade", "claude-opus-5-5", "batch"), Usage(500, 50, 0, 0, 3_000), "opus", True),
        (("generate", "claude-haiku-5-5", "batch"), Usage(900, 250, 0, 0, 2_000), "haiku", True),
        (("grade", "claude-opus-5-5", "sync"), Usage(400, 40, 2_000, 0, 0), "opus", False),
    ]
    for key, usage, model, batch in adds:
        ledger.add(key, usage, model, batch=batch, strongest="opus")

    rows = ledger.rows()
    assert [r.key for r in rows] == [adds[0][0], adds[1][0], adds[3][0]]  # first-seen order
    gen = rows[0]
    expected = [counterfactuals(u, m, batch=b, strongest="opus") for _, u, m, b in adds]
    assert gen.requests == 2
    assert (gen.input_tokens, gen.output_tokens) == (1_900, 450)
    assert (gen.cache_write_tokens, gen.cache_read_tokens) == (3_000, 2_500)
    assert gen.actual == pytest.approx(expected[0].actual + expected[2].actual)
    assert gen.naive == pytest.approx(expected[0].naive + expected[2].naive)
    assert rows[2].counterfactuals == expected[3]

    totals = ledger.totals()
    assert totals.key is None and totals.requests == 4 and len(ledger) == 3
    for name in ("actual", "sync", "no_cache", "no_routing", "naive"):
        assert getattr(totals, name) == pytest.approx(sum(getattr(e, name) for e in expected))
    assert Ledger().totals().actual == 0.0


def test_a_ledger_prices_from_the_catalog_it_is_given() -> None:
    catalog = dataclasses.replace(CATALOG, batch_discount=0.25)
    ledger = Ledger(catalog)
    usage = Usage(input_tokens=1_000_000)
    ledger.add("k", usage, "sonnet", batch=True, strongest="opus")
    ledger.add("k", usage, "sonnet", batch=True, strongest="opus")  # a second model lookup
    (row,) = ledger.rows()
    assert (row.actual, row.sync, row.naive) == (2 * 0.5, 2 * 2.0, 2 * 4.0)  # 2.00/M at 0.25


def test_ledger_refuses_models_without_prices() -> None:
    with pytest.raises(ConfigError, match="unknown model"):
        Ledger().add("k", Usage(input_tokens=1), "gpt-9", batch=True, strongest="opus")

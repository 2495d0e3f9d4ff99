"""Cache hits inside a batch through the official SDK: waves (`batch_concurrency`) and the
per-item hit rate (`batch_cache_hit_rate`) for entries the same batch wrote."""

from __future__ import annotations

import math

import anthropic
import pytest

from .sdk import run_batch

MODEL = "claude-sonnet-5-5"
SYSTEM = [
    {
        "type": "text",
        "text": "shared policy text " * 200,  # ~600 tokens: above Sonnet 5.5's 512 minimum
        "cache_control": {"type": "ephemeral", "ttl": "1h"},
    }
]


def _requests(n: int) -> list[dict]:
    return [
        {
            "custom_id": f"item-{i}",
            "params": {
                "model": MODEL,
                "max_tokens": 5,
                "system": SYSTEM,
                "messages": [{"role": "user", "content": f"question {i}"}],
            },
        }
        for i in range(n)
    ]


def _run_batch(client: anthropic.Anthropic, n: int) -> dict[str, anthropic.types.Usage]:
    return {cid: result.message.usage for cid, result in run_batch(client, _requests(n)).items()}


def _readers(usages: dict[str, anthropic.types.Usage]) -> set[str]:
    return {cid for cid, u in usages.items() if u.cache_read_input_tokens > 0}


@pytest.mark.parametrize(("rate", "wave"), [(0.3, 1), (0.6, 1), (0.85, 10)])
def test_share_of_items_reading_matches_the_hit_rate(
    make_sandbox, new_client, rate: float, wave: int
) -> None:
    n = 400
    sb = make_sandbox(batch_cache_hit_rate=rate, batch_concurrency=wave)
    usages = _run_batch(new_client(sb.base_url), n)
    # The first wave finds nothing to read; every later item reads with probability `rate`.
    eligible = n - wave
    reads = len(_readers(usages))
    tolerance = 4 * math.sqrt(eligible * rate * (1 - rate))
    assert abs(reads - rate * eligible) <= tolerance, (reads, rate * eligible, tolerance)
    # An item that did not read wrote the prefix again, as a real miss does.
    writes = sum(u.cache_creation.ephemeral_1h_input_tokens > 0 for u in usages.values())
    assert reads + writes == n
    stats = sb.stats()
    assert stats["cache_reads"] == reads and stats["batch_cache_misses"] == eligible - reads


@pytest.mark.parametrize("wave", [1, 4])
def test_rate_one_keeps_every_in_batch_read(make_sandbox, new_client, wave: int) -> None:
    sb = make_sandbox(batch_concurrency=wave)  # batch_cache_hit_rate defaults to 1.0
    usages = _run_batch(new_client(sb.base_url), 40)
    assert len(_readers(usages)) == 40 - wave
    assert "batch_cache_misses" not in sb.stats()


def test_rate_zero_reads_only_entries_written_before_the_batch(make_sandbox, new_client) -> None:
    sb = make_sandbox(batch_cache_hit_rate=0.0)
    client = new_client(sb.base_url)
    cold = _run_batch(client, 50)
    assert _readers(cold) == set()
    assert all(u.cache_creation.ephemeral_1h_input_tokens > 0 for u in cold.values())

    sb.stats(reset=True)  # empties the cache; a synchronous request warms it again
    warm = client.messages.create(
        model=MODEL, max_tokens=5, system=SYSTEM, messages=[{"role": "user", "content": "warm"}]
    )
    assert warm.usage.cache_creation_input_tokens > 0
    warmed = _run_batch(client, 50)
    assert len(_readers(warmed)) == 50
    assert all(u.cache_creation_input_tokens == 0 for u in warmed.values())


def test_which_items_read_is_seeded(make_sandbox, new_client) -> None:
    def readers(seed: int) -> set[str]:
        sb = make_sandbox(batch_cache_hit_rate=0.5, seed=seed)
        return _readers(_run_batch(new_client(sb.base_url), 60))

    assert readers(7) == readers(7)
    assert readers(7) != readers(8)


def test_settings_are_reported(make_sandbox) -> None:
    sb = make_sandbox(batch_cache_hit_rate=0.7, batch_concurrency=8, seed=3)
    settings = sb.settings()
    assert settings["batch_cache_hit_rate"] == 0.7 and settings["batch_concurrency"] == 8
    assert settings["seed"] == 3 and settings["responder"] == "echo"
    assert settings["faults"]["rate_429"] == 0.0


def test_a_hit_rate_outside_0_1_is_refused(make_sandbox) -> None:
    with pytest.raises(ValueError, match="batch_cache_hit_rate: a probability between 0 and 1"):
        make_sandbox(batch_cache_hit_rate=1.2)

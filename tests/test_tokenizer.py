from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from evalbatch.catalog.tokenizer import (
    breakpoints,
    count_messages,
    count_request,
    count_text,
    request_blocks,
)


def test_count_text_words_and_punctuation() -> None:
    assert count_text("") == 0
    assert count_text("Hello, world!") == 6  # "Hell" "o" "," "worl" "d" "!"
    assert count_text("a b c") == 3
    assert count_text("   \n\t ") == 0


@given(st.text(), st.text())
def test_count_is_additive_over_whitespace_joins(a: str, b: str) -> None:
    assert count_text(a + " " + b) == count_text(a) + count_text(b)


_content = st.one_of(
    st.text(),
    st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": st.text()}), max_size=3),
)


@given(
    st.lists(
        st.fixed_dictionaries(
            {"role": st.sampled_from(["user", "assistant"]), "content": _content}
        ),
        max_size=4,
    )
)
def test_messages_alone_count_as_the_request_counts_them(messages: list[dict[str, object]]) -> None:
    # plan counts a request's messages this way (and skips tokenizing it again): the two must
    # agree on text and on block content alike
    assert count_messages(messages) == count_request({"messages": messages})


def test_request_blocks_order_is_tools_system_messages() -> None:
    params = {
        "tools": [{"name": "t", "input_schema": {}}],
        "system": [{"type": "text", "text": "sys one"}, {"type": "text", "text": "sys two"}],
        "messages": [{"role": "user", "content": "hi there"}],
    }
    blocks = request_blocks(params)
    assert [b.where for b in blocks] == [
        "tools[0]",
        "system[0]",
        "system[1]",
        "messages[0].content",
    ]
    assert count_request(params) == sum(b.tokens for b in blocks)


def test_breakpoint_keys_depend_on_exact_prefix_not_on_cache_control() -> None:
    sys_block = {"type": "text", "text": "shared rubric " * 50}
    marked = {**sys_block, "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    a = {"system": [marked], "messages": [{"role": "user", "content": "case 1"}]}
    b = {"system": [marked], "messages": [{"role": "user", "content": "case 2"}]}
    c = {
        "system": [{**marked, "text": "other rubric " * 50}],
        "messages": [{"role": "user", "content": "case 1"}],
    }
    ka = breakpoints("m", request_blocks(a))
    kb = breakpoints("m", request_blocks(b))
    kc = breakpoints("m", request_blocks(c))
    assert len(ka) == 1 and ka[0].ttl == "1h"
    assert ka[0].key == kb[0].key
    assert ka[0].key != kc[0].key
    assert breakpoints("other-model", request_blocks(a))[0].key != ka[0].key
    assert ka[0].prefix_tokens == count_text(sys_block["text"])

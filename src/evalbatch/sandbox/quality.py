"""The `quality:PROFILE` responder: answers with a case's target (or a wrong one) and gives rubric
verdicts that match the truth, at the profile's per-model rates, drawn from a hash per request."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

from .draws import draw, pick
from .prompts import last_user_text, system_text
from .quality_profile import ModelQuality, QualityCase, QualityProfile

# How evalbatch's graders open their system prompts (graders/rubric.py).
RUBRIC_SYSTEM = "You are a strict, fair grader"
PAIRWISE_SYSTEM = "You compare two outputs"
UNMATCHED = "sandbox quality responder: no case of the profile matches this prompt"
UNKNOWN_MODEL = "sandbox quality responder: model {model} is not in the profile"
NO_PAIRWISE = "sandbox quality responder: pairwise verdicts are not simulated"
NOT_SURE = "I am not sure."
WRONG_TRIES = 8  # other cases' targets tried as a wrong answer before NOT_SURE
ANCHOR = 8  # characters of a short input's start that index it for the substring search
_WORD = re.compile(r"\S+")


def _norm(text: str) -> str:
    return text.strip().casefold()


def _contains(text: str, target: str) -> bool:
    return _norm(target) in _norm(text)


def parse_rubric_request(text: str) -> tuple[str, str] | None:
    """(input, output) from the user content evalbatch's rubric grader builds, or None."""
    if not text.startswith("<input>\n"):
        return None
    end = text.find("\n</input>\n\n")
    if end < 0:
        return None
    given, rest = text[len("<input>\n") : end], text[end + len("\n</input>\n\n") :]
    if rest.startswith("<reference>\n"):
        at = rest.find("\n</reference>\n\n<output>\n")
        if at < 0:
            return None
        rest = rest[at + len("\n</reference>\n\n") :]
    if not rest.startswith("<output>\n"):
        return None
    output = rest[len("<output>\n") :]
    return given, output.removesuffix("\n</output>")


class CaseIndex:
    """Finds the case whose input occurs in a prompt; the longest such input wins.

    An input of three or more words is indexed by its longest inner word, which occurs as a
    whole word of any prompt that embeds the input, so one set intersection of the prompt's
    words finds every candidate. Shorter inputs are indexed by their first characters.
    """

    def __init__(self, cases: tuple[QualityCase, ...], template: tuple[str, str] | None) -> None:
        self.by_input = {case.input: case for case in cases}
        self.template = template
        by_word: dict[str, set[tuple[int, int]]] = {}  # word -> (its offset, the input's length)
        by_start: dict[int, dict[str, set[int]]] = {}  # width -> first characters -> lengths
        for key in self.by_input:
            words = list(_WORD.finditer(key))[1:-1]
            if words:
                word = max(words, key=lambda m: len(m.group()))
                by_word.setdefault(word.group(), set()).add((word.start(), len(key)))
            else:
                width = min(ANCHOR, len(key))
                by_start.setdefault(width, {}).setdefault(key[:width], set()).add(len(key))
        # longest input first, so a search stops at the first match that cannot be beaten
        self.by_word = {w: sorted(spots, key=lambda s: -s[1]) for w, spots in by_word.items()}
        self.by_start = {
            width: {a: sorted(lengths, reverse=True) for a, lengths in table.items()}
            for width, table in by_start.items()
        }

    def find(self, prompt: str) -> QualityCase | None:
        if self.template is not None:
            before, after = self.template
            if prompt.startswith(before) and prompt.endswith(after):
                case = self.by_input.get(prompt[len(before) : len(prompt) - len(after)].strip())
                if case is not None:
                    return case
        whole = self.by_input.get(prompt.strip())
        if whole is not None:
            return whole
        return self._by_inner_word(prompt, self._by_first_characters(prompt, None))

    def _by_inner_word(self, prompt: str, best: QualityCase | None) -> QualityCase | None:
        longest = len(best.input) if best else 0
        for word in set(prompt.split()).intersection(self.by_word):
            spots = self.by_word[word]
            at = prompt.find(word)
            while at >= 0:
                for offset, length in spots:
                    if length <= longest:
                        break
                    start = at - offset
                    case = self.by_input.get(prompt[start : start + length]) if start >= 0 else None
                    if case is not None:
                        best, longest = case, length
                        break
                at = prompt.find(word, at + 1)
        return best

    def _by_first_characters(self, prompt: str, best: QualityCase | None) -> QualityCase | None:
        longest = len(best.input) if best else 0
        for width, table in self.by_start.items():
            for start in range(len(prompt) - width + 1):
                lengths = table.get(prompt[start : start + width])
                for length in lengths or ():
                    if length <= longest:
                        break
                    case = self.by_input.get(prompt[start : start + length])
                    if case is not None:
                        best, longest = case, length
                        break
        return best


class QualityResponder:
    """``responder(params) -> text``. ``count`` adds 1 to a /_sandbox/stats counter."""

    def __init__(
        self, profile: QualityProfile, seed: int, count: Callable[[str], None] | None = None
    ) -> None:
        self.profile = profile
        self.seed = seed
        self.count = count or (lambda _name: None)
        self.index = CaseIndex(profile.cases, profile.template)
        self.cases = profile.cases

    def __call__(self, params: dict[str, Any]) -> str:
        model_id = str(params.get("model", ""))
        quality = self.profile.models.get(model_id)
        if quality is None:
            self.count("quality_unmatched")
            return UNKNOWN_MODEL.format(model=model_id)
        system = system_text(params)
        if system.startswith(RUBRIC_SYSTEM):
            return self._verdict(model_id, quality, last_user_text(params))
        if system.startswith(PAIRWISE_SYSTEM):
            self.count("quality_unmatched")
            return NO_PAIRWISE
        case = self.index.find(last_user_text(params))
        if case is None:
            self.count("quality_unmatched")
            return UNMATCHED
        return self._generation(model_id, quality, case)

    def is_right(self, output: str, target: str) -> bool:
        """The truth a verdict is judged against: the output is (or contains) the target."""
        if self.profile.truth == "exact":
            return _norm(output) == _norm(target)
        return _contains(output, target)

    def _generation(self, model_id: str, quality: ModelQuality, case: QualityCase) -> str:
        if draw(self.seed, model_id, case.id, "answer") < quality.answer[case.difficulty]:
            self.count("quality_right_answers")
            return case.target
        self.count("quality_wrong_answers")
        return self._wrong_answer(model_id, case)

    def _wrong_answer(self, model_id: str, case: QualityCase) -> str:
        """Another case's target (a plausible answer) that does not contain this case's target."""
        for attempt in range(WRONG_TRIES):
            other = self.cases[
                pick(self.seed, len(self.cases), model_id, case.id, "wrong", attempt)
            ]
            if other is not case and not _contains(other.target, case.target):
                return other.target
        if not _contains(NOT_SURE, case.target):
            return NOT_SURE
        return ""  # contains no non-blank target

    def _verdict(self, model_id: str, quality: ModelQuality, content: str) -> str:
        parsed = parse_rubric_request(content)
        case = self.index.by_input.get(parsed[0].strip()) if parsed else None
        if parsed is None or case is None:
            self.count("quality_unmatched")
            return UNMATCHED
        output = parsed[1]
        truth = self.is_right(output, case.target)
        honest = draw(self.seed, model_id, case.id, "verdict", output) < quality.verdict
        self.count("quality_right_verdicts" if honest else "quality_wrong_verdicts")
        says_right = truth if honest else not truth
        score = self.profile.correct_score if says_right else self.profile.wrong_score
        reasoning = (
            "The output gives the reference answer."
            if says_right
            else "The output does not give the reference answer."
        )
        return reasoning + "\n" + orjson.dumps({"score": score, "reasoning": reasoning}).decode()

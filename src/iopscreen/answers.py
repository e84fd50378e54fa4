"""The one place raw values (a prompt, a CSV cell, JSON or YAML) become typed answers.

An answer is either a value or "declined"; a question with no answer is simply absent.
Error messages never include the raw value unless ``show_values`` is set: answers are health data.
"""

from __future__ import annotations

import re
import reprlib
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from .errors import AnswerError, Diagnostic, did_you_mean
from .ruleset.model import DECLINED_TOKENS, Question, Ruleset

ANSWERED = "answered"
DECLINED = "declined"

YES_TOKENS = frozenset({"yes", "y", "true", "t", "1"})
NO_TOKENS = frozenset({"no", "n", "false", "f", "0"})
NONE_TOKENS = frozenset({"none", "none of these"})
MULTI_SEPARATORS = ("|", ";", ",")
WHOLE_NUMBER = re.compile(r"([+-]?[0-9]+)(?:\.0+)?")


@dataclass(frozen=True)
class Answer:
    """A typed answer: ``value`` is None exactly when the question was declined."""

    value: Any
    status: str = ANSWERED

    @property
    def declined(self) -> bool:
        return self.status == DECLINED


DECLINED_ANSWER = Answer(None, DECLINED)


class InvalidAnswer(ValueError):
    """Raised by :meth:`AnswerParser.parse`; carries a code, a message and a hint."""

    def __init__(self, code: str, name: str, message: str, hint: str = ""):
        super().__init__(message)
        self.code, self.name, self.message, self.hint = code, name, message, hint


class AnswerParser:
    """Turns raw values for one question into an :class:`Answer` (None = unanswered).

    Text forms are looked up in a table built once, so parsing a CSV cell is one dict lookup.
    """

    def __init__(self, question: Question):
        self.question = question
        table: dict[str, Answer] = {tok: DECLINED_ANSWER for tok in DECLINED_TOKENS}
        if question.type == "yesno":
            table.update({t: Answer(True) for t in YES_TOKENS})
            table.update({t: Answer(False) for t in NO_TOKENS})
        elif question.type == "choice":
            for c in question.choices:
                table[str(c.code).casefold()] = Answer(c.code)
            for c in question.choices:  # labels never shadow a code
                table.setdefault(c.label.strip().casefold(), Answer(c.code))
            for c in question.choices:  # nor aliases (the loader refuses any clash)
                for alias in c.aliases:
                    table.setdefault(alias.casefold(), Answer(c.code))
        self.table = table
        # Every spelling of each choice (code, label, aliases): the one table that the SQL
        # compiler and the lane engine read too, so an alias means the same everywhere.
        self._codes = {str(c.code).casefold(): c.code for c in question.choices}
        for c in question.choices:
            self._codes.setdefault(c.label.strip().casefold(), c.code)
        for c in question.choices:
            for alias in c.aliases:
                self._codes.setdefault(alias.casefold(), c.code)

    def likely_texts(self) -> set[str]:
        """The cell texts a column of answers to this question is likely to hold: the
        parser's own forms in the usual cases, codes, labels and, for a small range of
        numbers, each number (batch screening parses them all up front)."""
        q = self.question
        texts = {""}
        for key in self.table:
            texts.update((key, key.upper(), key.capitalize(), key.title()))
        for c in q.choices:
            texts.update((str(c.code), c.label, c.label.strip(), c.label.upper(),
                          c.label.lower()))
            for alias in c.aliases:
                texts.update((alias, alias.upper(), alias.lower(), alias.capitalize()))
        if q.type == "integer" and q.min is not None and q.max is not None \
                and q.max - q.min <= 2000:
            texts.update(str(n) for n in range(q.min, q.max + 1))
        return texts

    # -- the one entry point
    def parse(self, raw: Any) -> Answer | None:
        """Return the typed answer, or None for unanswered. Raises :class:`InvalidAnswer`."""
        if raw is None:
            return None
        if isinstance(raw, Answer):
            return raw
        if isinstance(raw, str):
            text = raw.strip()
            if not text:
                return None
            hit = self.table.get(text.casefold())
            if hit is not None:
                return hit
            return self._parse_text(text)
        return self._parse_value(raw)

    def _parse_text(self, text: str) -> Answer:
        q = self.question
        if q.type == "text":
            return Answer(text)
        if q.type == "integer":
            # Plain digits only (a spreadsheet's "12.0" too): not 1e2, 1_00 or other scripts'
            # digits, which Python's int() and float() would take but no person writes.
            whole = WHOLE_NUMBER.fullmatch(text)
            if whole is None:
                raise self._bad("E401", "not-a-number", "is not a whole number",
                                f"give a number from {q.min} to {q.max}, or 'declined'")
            return self._in_range(int(whole.group(1)))
        if q.type == "multi":
            return self._parse_multi([text])
        if q.type == "yesno":
            raise self._bad("E402", "not-yes-no", "is not yes or no",
                            "use yes/no, y/n, true/false or 1/0, or 'declined'")
        raise self._not_a_choice()

    def _parse_value(self, raw: Any) -> Answer:
        q = self.question
        if q.type == "yesno":
            if isinstance(raw, bool):
                return Answer(raw)
            if isinstance(raw, int) and raw in (0, 1):
                return Answer(bool(raw))
            raise self._bad("E402", "not-yes-no", "is not yes or no",
                            "use yes/no, y/n, true/false or 1/0, or 'declined'")
        if q.type == "integer":
            if isinstance(raw, bool):
                raise self._bad("E401", "not-a-number", "is not a whole number")
            if isinstance(raw, float) and raw.is_integer():
                raw = int(raw)
            if not isinstance(raw, int):
                raise self._bad("E401", "not-a-number", "is not a whole number",
                                f"give a number from {q.min} to {q.max}, or 'declined'")
            return self._in_range(raw)
        if q.type == "choice":
            if isinstance(raw, bool) or not isinstance(raw, (int, float)):
                raise self._not_a_choice()  # a list or mapping is never one choice
            if isinstance(raw, float) and raw.is_integer():
                raw = int(raw)
            for c in q.choices:
                if c.code == raw and not isinstance(c.code, bool):
                    return Answer(c.code)
            hit = self.table.get(str(raw).casefold())
            if hit is not None and not hit.declined:
                return hit
            raise self._not_a_choice()
        if q.type == "multi":
            if isinstance(raw, (list, tuple, set, frozenset)):
                return self._parse_multi(list(raw))
            return self._parse_multi([raw])
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            return Answer(str(raw))
        raise self._bad("E403", "not-text", "is not text")

    def _parse_multi(self, raw: list[Any]) -> Answer:
        q = self.question
        items: list[Any] = []
        for item in raw:
            if isinstance(item, str):
                text = item.strip()
                if text.casefold() in self._codes:
                    items.append(text)
                    continue
                if text.casefold() in NONE_TOKENS and len(raw) == 1:
                    return Answer(frozenset())
                for sep in MULTI_SEPARATORS:
                    if sep in text:
                        items.extend(p.strip() for p in text.split(sep) if p.strip())
                        break
                else:
                    items.append(text)
            elif isinstance(item, (int, float)) and not isinstance(item, bool):
                items.append(item)
            else:  # a nested list or mapping, or true/false: never a choice's code
                raise self._not_a_choice(multi=True)
        codes = set()
        for item in items:
            key = str(item).strip().casefold()
            if key in self._codes:
                codes.add(self._codes[key])
            else:
                raise self._not_a_choice(multi=True)
        del q
        return Answer(frozenset(codes))

    def _in_range(self, number: int) -> Answer:
        q = self.question
        assert q.min is not None and q.max is not None
        if not q.min <= number <= q.max:
            raise self._bad("E404", "out-of-range", f"is outside {q.min}-{q.max}",
                            f"give a number from {q.min} to {q.max}, or 'declined'")
        return Answer(number)

    def _not_a_choice(self, multi: bool = False) -> InvalidAnswer:
        q = self.question
        shown = ", ".join(c.spellings for c in q.choices[:8])
        if len(q.choices) > 8:
            shown += ", ..."
        what = "has a value that is not one of its choices" if multi else "is not one of its choices"
        sep = " (separate several with |)" if multi else ""
        return self._bad("E405", "not-a-choice", what, f"use a code or label: {shown}{sep}")

    def _bad(self, code: str, name: str, what: str, hint: str = "") -> InvalidAnswer:
        return InvalidAnswer(code, name, f"answer to '{self.question.id}' {what}", hint)


def parsers_for(ruleset: Ruleset) -> dict[str, AnswerParser]:
    """One parser per question, in question order."""
    return {qid: AnswerParser(q) for qid, q in ruleset.questions.items()}


def read_answers(
    ruleset: Ruleset,
    raw: Mapping[Any, Any],
    *,
    source: str = "answers",
    show_values: bool = False,
) -> tuple[dict[str, Answer], list[tuple[str, Diagnostic]]]:
    """Turn a mapping of question id -> raw value into typed answers, keeping the good ones.

    Returns the answered and declined questions, and a (key, problem) pair for every invalid
    or unknown entry (the key as it may be shown; values only with ``show_values``). Never
    raises for bad input: an invalid answer is left out, so it counts as unanswered.
    """
    parsers = parsers_for(ruleset)
    out: dict[str, Answer] = {}
    problems: list[tuple[str, Diagnostic]] = []
    for key, value in raw.items():
        parser = parsers.get(str(key))
        if parser is None:
            shown = shown_key(key)
            problems.append((shown, Diagnostic(
                "E406", "unknown-question", f"'{shown}' is not a question of this rule set",
                source, hint=did_you_mean(str(key)[:200], parsers)
                or "see 'iopscreen rules show' for the question ids")))
            continue
        try:
            answer = parser.parse(value)
        except InvalidAnswer as exc:
            message = exc.message + (f" (got {_VALUE_REPR.repr(value)})" if show_values else "")
            problems.append((parser.question.id,
                             Diagnostic(exc.code, exc.name, message, source, hint=exc.hint)))
            continue
        if answer is not None:
            out[parser.question.id] = answer
    return out, problems


def coerce_answers(
    ruleset: Ruleset,
    raw: Mapping[Any, Any],
    *,
    source: str = "answers",
    show_values: bool = False,
) -> dict[str, Answer]:
    """Turn a mapping of question id -> raw value into typed answers, all or nothing.

    Returns only the answered and declined questions. Raises :class:`AnswerError` listing
    every invalid or unknown entry (values shown only with ``show_values``).
    """
    out, problems = read_answers(ruleset, raw, source=source, show_values=show_values)
    if problems:
        raise AnswerError(f"{len(problems)} invalid answer(s) in {source}",
                          diagnostics=[d for _, d in problems])
    return out


# --show-values prints a value bounded in length and depth (a file may hold anything).
_VALUE_REPR = reprlib.Repr()
_VALUE_REPR.maxstring = _VALUE_REPR.maxother = 80
_VALUE_REPR.maxlevel = 3


def shown_key(key: Any) -> str:
    """A key of an answers file as it may be printed: as written when it looks like an id
    (printable, short), else a bounded escaped form, so no control character reaches the
    terminal and no huge key floods it."""
    text = str(key) if isinstance(key, (str, int, float, bool)) else _VALUE_REPR.repr(key)
    if text.isprintable() and len(text) <= 80:
        return text
    return ascii(text[:60])[1:-1] + ("..." if len(text) > 60 else "")


def display_value(question: Question, answer: Answer | None) -> str:
    """A short readable form of an answer (for review screens and reports)."""
    if answer is None:
        return "(unanswered)"
    if answer.declined:
        return "declined"
    v = answer.value
    if question.type == "yesno":
        return "yes" if v else "no"
    if question.type == "choice":
        return f"{question.label_of(v)} ({v})" if isinstance(v, int) else question.label_of(v)
    if question.type == "multi":
        if not v:
            return "none"
        return ", ".join(question.label_of(c) for c in _ordered(question, v))
    return str(v)


def _ordered(question: Question, codes: Iterable[Any]) -> list[Any]:
    chosen = set(codes)
    return [c.code for c in question.choices if c.code in chosen]


def to_plain(question: Question, answer: Answer) -> Any:
    """JSON-ready form of an answer that :meth:`AnswerParser.parse` reads back unchanged."""
    if answer.declined:
        return "declined"
    if question.type == "multi":
        return _ordered(question, answer.value)
    return answer.value

"""The questionary adapter (the only module that imports questionary).

It turns one :class:`~iopscreen.ruleset.model.Question` into one prompt and returns a
:class:`Reply`; all decisions about what to ask next live in :mod:`iopscreen.interview`.
Every prompt has keyboard shortcuts so a counselor on the phone can go fast: the code or the first
letter, then Enter. Ctrl-C raises KeyboardInterrupt (we use ``unsafe_ask``) so the caller can
offer to keep the draft.
"""

from __future__ import annotations

import shutil
from typing import Any, Sequence

import questionary
from questionary import Choice, Separator, Style

from .answers import DECLINED_ANSWER, Answer, AnswerParser, InvalidAnswer, display_value
from .interview import FINISH, Position, Reply
from .ruleset.model import Question

BACK = "__back__"
SKIP = "__skip__"
DECLINE = "__declined__"
HELP = "__help__"

# Plain text marks the pointer and selection, so colour is never needed.
STYLE = Style([("qmark", "bold"), ("question", "bold"), ("pointer", "bold"),
               ("highlighted", "bold"), ("instruction", "italic")])


class QuestionaryPrompter:
    """Asks questions with questionary; ``io`` may carry prompt_toolkit input/output for tests."""

    def __init__(self, say: Any, **io: Any):
        self.say = say  # callable(text) printing a line (the console)
        self.io = io

    # ------------------------------------------------------------------------ questions
    def ask(self, question: Question, position: Position, current: Answer | None,
            can_back: bool, skipped: bool = False) -> Reply:
        self.say("")
        self.say(f"{position.section_title} · {position.index_in_section} of "
                 f"{position.section_total}    (question {position.answered + 1} of about "
                 f"{position.total})")
        self.say(question.text)
        while True:
            if question.type in ("yesno", "choice"):
                value = self._select(question, current, can_back, skipped)
            elif question.type == "multi":
                value = self._checkbox(question, current, can_back)
            else:
                value = self._typed(question, current, can_back)
            if value == HELP:
                self.say(f"  Help: {question.help or 'No help text for this question.'}")
                continue
            if value == BACK:
                return Reply("back")
            if value == SKIP:
                return Reply("answer", None)
            if value == DECLINE:
                return Reply("answer", DECLINED_ANSWER)
            assert isinstance(value, Answer)
            return Reply("answer", value)

    def _specials(self, question: Question, can_back: bool) -> list[Any]:
        out: list[Any] = [Separator(" ")]
        out.append(Choice("Declined to answer", value=DECLINE, shortcut_key="d"))
        if not question.required:
            out.append(Choice("Skip (optional)", value=SKIP, shortcut_key="s"))
        if question.help:
            out.append(Choice("Help for this question", value=HELP, shortcut_key="h"))
        if can_back:
            out.append(Choice("<- Back to the previous question", value=BACK, shortcut_key="b"))
        return out

    def _select(self, question: Question, current: Answer | None, can_back: bool,
                skipped: bool) -> Any:
        choices: list[Any] = []
        if question.type == "yesno":
            choices = [Choice("Yes", value=Answer(True), shortcut_key="y"),
                       Choice("No", value=Answer(False), shortcut_key="n")]
        else:
            used = {"d", "s", "h", "b"}
            for i, c in enumerate(question.choices):
                key = str(c.code) if isinstance(c.code, int) and 0 <= c.code <= 9 else (
                    str(i + 1) if i < 9 else None)
                if key in used:
                    key = None
                if key:
                    used.add(key)
                title = f"{c.label}" + (f" ({c.code})" if isinstance(c.code, int) else "")
                choices.append(Choice(title, value=Answer(c.code), shortcut_key=key or True))
        choices += self._specials(question, can_back)
        default = None
        if current is not None:
            default = DECLINE if current.declined else current
            if default not in [c.value for c in choices if isinstance(c, Choice)]:
                default = None
        elif skipped:
            default = SKIP
        return questionary.select(
            "Answer", choices=choices, default=default, use_shortcuts=True,
            use_arrow_keys=True, instruction="(key or arrows, then Enter)", style=STYLE,
            qmark=">", **self.io,
        ).unsafe_ask()

    def _checkbox(self, question: Question, current: Answer | None, can_back: bool) -> Any:
        chosen = set(current.value) if current is not None and not current.declined else set()
        choices: list[Any] = [Choice(c.label, value=c.code, checked=c.code in chosen)
                              for c in question.choices]
        specials = [c for c in self._specials(question, can_back) if isinstance(c, Choice)]
        choices.append(Separator(" "))
        choices += [Choice(c.title, value=c.value) for c in specials]
        special_values = {DECLINE, SKIP, HELP, BACK}

        def validate(picked: Sequence[Any]) -> bool | str:
            special = [p for p in picked if p in special_values]
            if special and len(picked) > 1:
                return "Choose either answers or one of the options below them, not both"
            return True

        picked = questionary.checkbox(
            "Answer", choices=choices, validate=validate, style=STYLE, qmark=">",
            instruction="(Space to tick, Enter when done; none ticked = none of these)",
            **self.io,
        ).unsafe_ask()
        if picked and picked[0] in special_values:
            return picked[0]
        return Answer(frozenset(picked))

    def _typed(self, question: Question, current: Answer | None, can_back: bool) -> Any:
        parser = AnswerParser(question)
        keys = ["? help", "- declined"]
        if can_back:
            keys.append("< back")
        if not question.required:
            keys.append("empty = skip")
        what = f"a number {question.min}-{question.max}" if question.type == "integer" else "text"
        default = ""
        if current is not None:
            default = "-" if current.declined else str(current.value)

        def validate(text: str) -> bool | str:
            text = text.strip()
            if text in ("?", "-", "<") or (not text and not question.required):
                if text == "<" and not can_back:
                    return "This is the first question"
                return True
            if not text:
                return "This question needs an answer (or - for declined)"
            try:
                parser.parse(text)
            except InvalidAnswer as exc:
                return exc.hint or exc.message
            return True

        text = questionary.text(
            "Answer", default=default, validate=validate, style=STYLE, qmark=">",
            instruction=f"({what}; {', '.join(keys)})", **self.io,
        ).unsafe_ask().strip()
        if text == "?":
            return HELP
        if text == "-":
            return DECLINE
        if text == "<":
            return BACK
        if not text:
            return SKIP
        return parser.parse(text)

    # --------------------------------------------------------------------- other prompts
    def review(self, items: Sequence[tuple[str, str, str]], missing: Sequence[str]) -> str:
        """Pick a question to change, or FINISH. ``items``: (qid, question text, answer)."""
        choices: list[Any] = [Choice("Finish and show the result", value=FINISH,
                                     shortcut_key="f")]
        if missing:
            choices = [Choice(f"Answer the {len(missing)} required question(s) still open",
                              value=missing[0], shortcut_key="a")]
        choices.append(Separator("-- or change an answer --"))
        # One line per answer: questionary does not wrap, so fit the terminal's width.
        width = max(shutil.get_terminal_size((80, 24)).columns - 8, 40)
        for i, (qid, text, shown) in enumerate(items, 1):
            answer = shown if len(shown) <= 22 else shown[:21] + "~"
            room = width - 22 - 7
            short = text if len(text) <= room else text[: room - 3] + "..."
            choices.append(Choice(f"{i:>2}. {short.ljust(room)} = {answer}", value=qid,
                                  shortcut_key=True))
        return str(questionary.select("Review the answers", choices=choices, style=STYLE,
                                      qmark=">", use_shortcuts=False, use_arrow_keys=True,
                                      instruction="(arrows, then Enter)",
                                      **self.io).unsafe_ask())

    def confirm(self, message: str, default: bool = True) -> bool:
        return bool(questionary.confirm(message, default=default, style=STYLE, qmark=">",
                                        **self.io).unsafe_ask())

    def pick(self, message: str, options: Sequence[tuple[str, str]]) -> str:
        """Choose one of (value, title)."""
        return str(questionary.select(message, choices=[Choice(t, value=v) for v, t in options],
                                      style=STYLE, qmark=">", **self.io).unsafe_ask())


def shown_answer(question: Question, answer: Answer | None, skipped: bool) -> str:
    return "skipped" if skipped and answer is None else display_value(question, answer)

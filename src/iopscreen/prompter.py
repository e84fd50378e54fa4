"""The terminal prompter (the only module that imports prompt_toolkit).

It turns one :class:`~iopscreen.ruleset.model.Question` into one prompt and returns a
:class:`Reply`; all decisions about what to ask next live in :mod:`iopscreen.interview`.

One input contract holds on every prompt, because a stray key must never become an answer in a
safety screen: a choice is made by its shown key or by an arrow movement, and recorded only by
Enter after that. Enter alone on a question not answered yet only shows a hint; an unknown key is
refused with a hint and clears the choice; re-asking a question pre-selects its earlier answer.
Keys typed while a banner or notice was on screen are thrown away before each prompt.
Ctrl-C raises KeyboardInterrupt so the caller can offer to keep the draft.
"""

from __future__ import annotations

import sys
import textwrap
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from prompt_toolkit.application import Application, get_app
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.keys import Keys
from prompt_toolkit.filters import is_done
from prompt_toolkit.layout import ConditionalContainer, FormattedTextControl, HSplit, Layout, Window
from prompt_toolkit.output import create_output
from prompt_toolkit.shortcuts import PromptSession
from prompt_toolkit.styles import Style
from prompt_toolkit.validation import ValidationError, Validator

from .answers import DECLINED_ANSWER, Answer, AnswerParser, InvalidAnswer, display_value
from .interview import FINISH, Position, Reply
from .ruleset.model import Question

BACK = "__back__"
SKIP = "__skip__"
DECLINE = "__declined__"
HELP = "__help__"
FINISH_NOW = "__finish_now__"
NOTHING_CHOSEN = "Nothing chosen yet: press a key shown, or an arrow, then Enter"

# Plain marks (the '>' pointer, [x] ticks) carry the meaning, so colour is never needed.
STYLE = Style([("title", "bold"), ("pointer", "bold"), ("chosen", "bold reverse"),
               ("legend", "italic"), ("hint", "bold"), ("answer", "")])


@dataclass(frozen=True)
class Row:
    """One answer of a menu: its shown key ('' = arrows only), its label and its value."""

    key: str
    label: str
    value: Any
    exclusive: bool = False  # multi: "None of these", which clears the other ticks
    hang: int = 0  # wrapped lines start this far in (under the text after a "12. " number)


@dataclass(frozen=True)
class Action:
    """A key that is not an answer (declined, back, help, finish now): key, then Enter."""

    key: str
    label: str
    value: Any
    short: str = ""  # its name in the legend line (default: the label)


def flush_typeahead() -> None:
    """Drop keys typed before this prompt appeared (while a banner was on screen)."""
    if not sys.stdin.isatty():
        return
    try:
        import termios

        termios.tcflush(sys.stdin.fileno(), termios.TCIFLUSH)
    except (ImportError, OSError):  # pragma: no cover - not a POSIX terminal
        pass


class Menu:
    """A list of answers chosen by key or arrows, then Enter (see the module docstring).

    ``multi``: rows are ticked (key or Space) and Enter records the ticked set. ``selected``:
    the row pre-selected because it is the earlier answer (``ticked`` for multi). Returns the
    chosen row's or action's value from :meth:`run`.
    """

    def __init__(self, title: str, rows: Sequence[Row], actions: Sequence[Action] = (), *,
                 multi: bool = False, selected: int | None = None,
                 ticked: frozenset[int] = frozenset(), legend: str = "",
                 echo: Callable[[Any], str] | None = None, io: dict[str, Any] | None = None):
        self.title, self.rows, self.actions, self.multi = title, list(rows), list(actions), multi
        self.pointer: int | None = selected
        self.ticked: set[int] = set(ticked)
        self.action: Action | None = None
        self.hint = ""
        self.legend = legend
        self.echo = echo
        self.io = io or {}
        self.result: Any = None
        self.chosen = False  # Enter confirmed a choice

    # ------------------------------------------------------------------------ keys
    def _keys(self) -> KeyBindings:
        kb = KeyBindings()

        @kb.add(Keys.ControlC, eager=True)
        def _(event: KeyPressEvent) -> None:
            event.app.exit(exception=KeyboardInterrupt())

        @kb.add(Keys.Up)
        def _(event: KeyPressEvent) -> None:
            self._move(-1)

        @kb.add(Keys.Down)
        def _(event: KeyPressEvent) -> None:
            self._move(1)

        @kb.add(Keys.Enter)
        @kb.add(Keys.ControlJ)
        def _(event: KeyPressEvent) -> None:
            self._enter(event)

        @kb.add(Keys.Any)
        def _(event: KeyPressEvent) -> None:
            self._key(event.data)

        return kb

    def _move(self, step: int) -> None:
        self.hint, self.action = "", None
        if not self.rows:
            return
        if self.pointer is None:
            self.pointer = 0 if step > 0 else len(self.rows) - 1
        else:
            self.pointer = (self.pointer + step) % len(self.rows)

    def _key(self, data: str) -> None:
        self.hint = ""
        key = data.lower() if len(data) == 1 else ""
        if self.multi and data == " " and self.pointer is not None:
            self.action = None
            self._tick(self.pointer)
            return
        for i, row in enumerate(self.rows):
            if row.key and row.key == key:
                self.action = None
                self.pointer = i
                if self.multi:
                    self._tick(i)
                return
        for action in self.actions:
            if action.key == key:
                self.action = action
                return
        if not (len(data) == 1 and data.isprintable()):
            return  # Tab, Backspace, left/right arrows...: nothing to choose or refuse
        self.hint = (f"'{data}' is not a choice here: press a key shown, or an arrow, "
                     "then Enter")
        self.action = None
        if not self.multi:
            self.pointer = None  # a wrong key means the intent is unclear: nothing chosen

    def _tick(self, i: int) -> None:
        if i in self.ticked:
            self.ticked.discard(i)
            return
        if self.rows[i].exclusive:
            self.ticked = {i}
        else:
            self.ticked = {t for t in self.ticked if not self.rows[t].exclusive} | {i}

    def _enter(self, event: KeyPressEvent) -> None:
        if self.action is not None:
            self.result = self.action.value
        elif not self.multi and self.pointer is not None:
            self.result = self.rows[self.pointer].value
        elif self.multi and self.ticked:
            picked = [self.rows[i].value for i in sorted(self.ticked)]
            self.result = frozenset(v for v in picked if v is not None)
        else:
            self.hint = (NOTHING_CHOSEN if not self.multi else
                         "Nothing ticked yet: press the key of each answer that applies (or "
                         "Space on it), then Enter")
            return
        self.chosen = True
        event.app.exit(result=self.result)

    # ---------------------------------------------------------------------- drawing
    def _width(self) -> int:
        try:
            return max(get_app().output.get_size().columns - 1, 30)
        except Exception:  # noqa: BLE001 - no size (a dummy output): a safe width
            return 79

    def _title(self) -> StyleAndTextTuples:
        if get_app().is_done:
            if not self.chosen:
                return [("class:title", f"> {self.title}: "), ("", "(interrupted)")]
            shown = self.echo(self.result) if self.echo else self._echo()
            return [("class:title", f"> {self.title}: "), ("class:answer", shown)]
        return [("class:title", f"> {self.title}")]

    def _lines(self) -> StyleAndTextTuples:
        """The rows, wrapped whole to the width; the cursor marks the chosen row, so a list
        longer than the screen scrolls to it."""
        if get_app().is_done:
            return []
        width = self._width()
        out: StyleAndTextTuples = []
        key_room = max((len(r.key) for r in self.rows), default=0)
        for i, row in enumerate(self.rows):
            here = i == self.pointer and self.action is None
            tick = ("[x] " if i in self.ticked else "[ ] ") if self.multi else ""
            key = f"{row.key:>{key_room}}  " if key_room else ""
            lead = f" {'>' if here else ' '} {key}{tick}"
            lines = textwrap.wrap(row.label, max(width - len(lead), 20),
                                  subsequent_indent=" " * row.hang) or [""]
            if here:
                out.append(("[SetCursorPosition]", ""))
            style = "class:chosen" if here and not self.multi else ""
            out.append(("class:pointer" if here else "", lead))
            out.append((style, lines[0]))
            for more in lines[1:]:
                out.append(("", "\n" + " " * len(lead)))
                out.append((style, more))
            if i < len(self.rows) - 1:
                out.append(("", "\n"))
        return out

    def _footer(self) -> StyleAndTextTuples:
        if get_app().is_done:
            return []
        width = self._width()
        lines: list[tuple[str, str]] = []
        if self.action is not None:
            lines.append(("class:hint", f" Chosen: {self.action.label} - press Enter"))
        if self.hint:
            lines.append(("class:hint", f" {self.hint}"))
        legend = self.legend
        if self.actions:
            legend += "   " + "  ".join(f"{a.key} {a.short or a.label.lower()}"
                                        for a in self.actions)
        lines += [("class:legend", f" {line}") for line in textwrap.wrap(legend, width - 1)]
        out: StyleAndTextTuples = []
        for i, line in enumerate(lines):
            out.append((line[0], line[1] + ("\n" if i < len(lines) - 1 else "")))
        return out

    def _echo(self) -> str:
        if self.action is not None:
            return self.action.label
        if self.multi:
            labels = [self.rows[i].label for i in sorted(self.ticked)]
            return ", ".join(labels)
        assert self.pointer is not None
        return self.rows[self.pointer].label

    def run(self) -> Any:
        """Ask until a choice is confirmed with Enter; returns its value."""
        if "input" not in self.io:
            flush_typeahead()
        rows = FormattedTextControl(self._lines, show_cursor=False, focusable=True)
        # Once answered only the title line stays, with the answer (no blank lines below).
        layout = HSplit([
            Window(FormattedTextControl(self._title), dont_extend_height=True, wrap_lines=True),
            ConditionalContainer(Window(rows, wrap_lines=False, always_hide_cursor=True,
                                        dont_extend_height=True), filter=~is_done),
            ConditionalContainer(Window(FormattedTextControl(self._footer),
                                        dont_extend_height=True, wrap_lines=True),
                                 filter=~is_done),
        ])
        app: Application[Any] = Application(
            layout=Layout(layout, focused_element=rows),
            key_bindings=self._keys(), style=STYLE, full_screen=False, erase_when_done=False,
            **self.io)
        return app.run()


class TerminalPrompter:
    """Asks questions in the terminal; ``io`` may carry prompt_toolkit input/output for tests."""

    def __init__(self, say: Any, terminal: Any = None, **io: Any):
        self.say = say  # callable(text) printing a line (the interview's console)
        if terminal is not None and "output" not in io:
            # stdout is a pipe: draw the prompts on the terminal the interview talks on
            io["output"] = create_output(stdout=terminal)
        self.io = io

    # ------------------------------------------------------------------------ questions
    def ask(self, question: Question, position: Position, current: Answer | None,
            can_back: bool, skipped: bool = False) -> Reply:
        self.say("")
        self.say(f"{position.section_title} · {position.index_in_section} of "
                 f"{position.section_total}    (question {position.number} of about "
                 f"{position.total})")
        self.say(question.text)
        while True:
            if question.type in ("yesno", "choice", "multi"):
                value = self._menu(question, current, can_back, skipped)
            else:
                value = self._typed(question, current, can_back, skipped)
            if value == HELP:
                self.say(f"  Help: {question.help or 'No help text for this question.'}")
                continue
            if value == FINISH_NOW:
                if self.confirm_finish():
                    return Reply("finish")
                continue
            if value == BACK:
                return Reply("back")
            if value == SKIP:
                return Reply("answer", None)
            if value == DECLINE:
                return Reply("answer", DECLINED_ANSWER)
            assert isinstance(value, Answer)
            return Reply("answer", value)

    def _actions(self, question: Question, can_back: bool) -> list[Action]:
        out = [Action("d", "Declined to answer", DECLINE, "declined")]
        if not question.required:
            out.append(Action("s", "Skip (optional)", SKIP, "skip"))
        out.append(Action("h", "Help", HELP))
        if can_back:
            out.append(Action("b", "Back", BACK))
        out.append(Action("f", "Finish now", FINISH_NOW))
        return out

    def _menu(self, question: Question, current: Answer | None, can_back: bool,
              skipped: bool) -> Any:
        actions = self._actions(question, can_back)
        rows = answer_rows(question, {a.key for a in actions})
        multi = question.type == "multi"
        selected: int | None = None
        ticked: frozenset[int] = frozenset()
        if current is not None and not current.declined:
            if multi:
                ticked = frozenset(i for i, r in enumerate(rows)
                                   if r.value in current.value
                                   or (r.exclusive and not current.value))
            else:
                selected = next((i for i, r in enumerate(rows) if r.value == current.value),
                                None)
        menu = Menu("Answer", rows, actions, multi=multi, selected=selected, ticked=ticked,
                    legend=("Tick: key shown (or Space), then Enter." if multi
                            else "Key shown or arrow, then Enter."),
                    io=self.io)
        if current is not None and current.declined:
            menu.action = actions[0]  # the earlier answer was "declined": keep it chosen
        elif skipped and not question.required:
            menu.action = next(a for a in actions if a.value == SKIP)
        value = menu.run()
        if isinstance(value, str) and value.startswith("__"):
            return value
        return Answer(value)

    def _typed(self, question: Question, current: Answer | None, can_back: bool,
               skipped: bool) -> Any:
        parser = AnswerParser(question)
        keys = ["? help", "- declined"]
        if can_back:
            keys.append("< back")
        if not question.required:
            keys.append("> skip")
        keys.append("! finish now")
        what = f"a number {question.min}-{question.max}" if question.type == "integer" else "text"
        specials = {"?": HELP, "-": DECLINE, "!": FINISH_NOW, "<": BACK, ">": SKIP}
        default = ""
        if current is not None:
            default = "-" if current.declined else str(current.value)
        elif skipped:
            default = ">"

        def check(text: str) -> None:
            text = text.strip()
            if text == "<" and not can_back:
                raise ValidationError(message="This is the first question: there is no back")
            if text == ">" and question.required:
                raise ValidationError(message="This question needs an answer (or - for "
                                              "declined)")
            if text in specials:
                return
            if not text:
                raise ValidationError(message=f"Nothing typed yet: type {what} (or a key "
                                              "shown), then Enter")
            try:
                parser.parse(text)
            except InvalidAnswer as exc:
                raise ValidationError(message=exc.hint or exc.message) from None

        if "input" not in self.io:
            flush_typeahead()
        session: PromptSession[str] = PromptSession(**self.io)
        text = session.prompt(
            [("class:legend", f" Type {what}, then Enter ({', '.join(keys)})\n"),
             ("class:title", "> Answer: ")],
            default=default, validator=_CheckValidator(check), validate_while_typing=False,
            style=STYLE).strip()
        if text in specials:
            return specials[text]
        answer = parser.parse(text)
        assert answer is not None
        return answer

    # --------------------------------------------------------------------- other prompts
    def confirm_finish(self) -> bool:
        """Ask whether to end the interview now and save what was asked so far."""
        return self.yes_no("Finish now and save a record with the answers so far "
                           "(unasked questions are listed as not asked)?", None)

    def after_crisis(self) -> str:
        """The crisis acknowledgement: 'continue' the interview or 'finish' it now."""
        rows = [Row("c", "Continue the interview (when it is safe to)", "continue"),
                Row("f", "Finish now: save a record with the crisis result and the answers "
                         "so far", "finish")]
        return str(Menu("Crisis protocol started. What next?", rows,
                        legend="Key shown or arrow, then Enter.",
                        io=self.io).run())

    def yes_no(self, message: str, default: bool | None) -> bool:
        """A yes/no question on the same key + Enter contract; ``default`` is pre-selected."""
        rows = [Row("y", "Yes", True), Row("n", "No", False)]
        selected = None if default is None else (0 if default else 1)
        return bool(Menu(message, rows, selected=selected,
                         legend="Choose: y or n (or an arrow), then Enter.", io=self.io).run())

    def confirm(self, message: str, default: bool = True) -> bool:
        return self.yes_no(message, default)

    def review(self, items: Sequence[tuple[str, str, str]], missing: Sequence[str]) -> str:
        """Pick a question to change, or FINISH. ``items``: (qid, question text, answer)."""
        # Whole question texts, wrapped: the nine PHQ-9 items differ only at their ends.
        rows = [Row("", f"{i:>2}. {' '.join(text.split())}  = {shown}", qid, hang=4)
                for i, (qid, text, shown) in enumerate(items, 1)]
        if missing:
            actions = [Action("a", f"Answer the {len(missing)} required question(s) still "
                                   "open", missing[0])]
        else:
            actions = [Action("f", "Finish and show the result", FINISH)]
        return str(Menu("Review the answers", rows, actions,
                        legend="Change an answer: arrows, then Enter. Or:",
                        echo=lambda v: "finish" if v == FINISH else f"change {v}",
                        io=self.io).run())

    def pick(self, message: str, options: Sequence[tuple[str, str]]) -> str:
        """Choose one of (value, title)."""
        rows = [Row(str(i) if i <= 9 else "", title, value)
                for i, (value, title) in enumerate(options, 1)]
        return str(Menu(message, rows, legend="Choose: the number shown or an arrow, "
                                              "then Enter.", io=self.io).run())


class _CheckValidator(Validator):
    def __init__(self, check: Callable[[str], None]):
        self.check = check

    def validate(self, document: Any) -> None:
        try:
            self.check(document.text)
        except ValidationError as exc:
            # keep the cursor at the end, so Backspace corrects what was typed
            raise ValidationError(cursor_position=len(document.text),
                                  message=exc.message) from None


def answer_rows(question: Question, reserved: set[str]) -> list[Row]:
    """The answer rows of a list question, each with a key that is not one of ``reserved``."""
    if question.type == "yesno":
        return [Row("y", "Yes", True), Row("n", "No", False)]
    used = set(reserved)
    spare = iter("123456789" + "".join(c for c in "abceghijklmopqrtuvwxz" if c not in used))
    rows: list[Row] = []
    for c in question.choices:
        key = str(c.code) if isinstance(c.code, int) and 0 <= c.code <= 9 else ""
        if not key or key in used:
            key = next((k for k in spare if k not in used), "")
        used.add(key)
        title = f"{c.label}" + (f" ({c.code})" if isinstance(c.code, int) else "")
        rows.append(Row(key, title, c.code, exclusive=question.type == "multi"
                        and str(c.code).casefold() == "none"))
    if question.type == "multi" and not any(r.exclusive for r in rows):
        key = "0" if "0" not in used else next((k for k in spare if k not in used), "")
        rows.append(Row(key, "None of these", None, exclusive=True))
    return rows


def shown_answer(question: Question, answer: Answer | None, skipped: bool) -> str:
    return "skipped" if skipped and answer is None else display_value(question, answer)

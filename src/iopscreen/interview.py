"""The interview as a plain state machine: which question next, back, review, applying answers.

No terminal code lives here; :mod:`iopscreen.prompter` asks the questions and the CLI loops.
Skip logic comes from the rule set and is re-evaluated after every answer, so answers that no
longer apply (after going back and changing an earlier one) are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

from .answers import Answer, to_plain
from .engine import Screening, applicable, screen
from .errors import AnswerError
from .ruleset.model import Question, Ruleset


FINISH = "__finish__"


@dataclass(frozen=True)
class Reply:
    """What the counselor did at a prompt: ``answer`` (None = skipped), ``back``, or
    ``finish`` (end the interview now with the answers so far)."""

    kind: str  # answer | back | finish
    answer: Answer | None = None


class Prompter(Protocol):
    """What the interview needs from a user interface (the terminal prompter, or a script in tests)."""

    def ask(self, question: Question, position: "Position", current: Answer | None,
            can_back: bool, skipped: bool = False) -> Reply: ...

    def review(self, items: Sequence[tuple[str, str, str]], missing: Sequence[str]) -> str: ...


@dataclass(frozen=True)
class Position:
    """Where the interview is: for 'Safety · 3 of 7' and overall progress."""

    section_title: str
    index_in_section: int  # 1-based, among applicable questions of the section
    section_total: int
    answered: int  # questions answered, declined or skipped so far
    total: int  # applicable questions now (changes with skip logic)
    number: int = 0  # this question's place among the applicable ones (1-based)

    def __post_init__(self) -> None:
        if not self.number:
            object.__setattr__(self, "number", self.answered + 1)


@dataclass
class Interview:
    """An interview in progress. Mutable on purpose: it is the state of one session."""

    ruleset: Ruleset
    answers: dict[str, Answer] = field(default_factory=dict)
    skipped: set[str] = field(default_factory=set)
    cursor: str | None = None  # a visited question being revisited (after back/edit)
    to_review: bool = False  # after answering the revisited question, return to the review
    crisis_shown: set[str] = field(default_factory=set)  # crisis rule ids already announced

    # ------------------------------------------------------------------------ queries
    def applicable(self) -> dict[str, bool]:
        return applicable(self.ruleset, self.answers)

    def visited(self, qid: str) -> bool:
        return qid in self.answers or qid in self.skipped

    def current(self) -> Question | None:
        """The question to ask now, or None when every applicable question is visited."""
        if self.cursor is not None:
            return self.ruleset.questions[self.cursor]
        app = self.applicable()
        for qid in self.ruleset.questions:
            if app[qid] and not self.visited(qid):
                return self.ruleset.questions[qid]
        return None

    @property
    def done(self) -> bool:
        return self.current() is None

    def position(self, question: Question) -> Position:
        app = self.applicable()
        section = self.ruleset.section_of(question.id)
        in_section = [q for q in section.questions if app[q]]
        index = in_section.index(question.id) + 1 if question.id in in_section else 1
        order = [q for q in self.ruleset.questions if app[q]]
        answered = sum(1 for q in order if self.visited(q))
        number = order.index(question.id) + 1 if question.id in order else answered + 1
        return Position(section.title, index, len(in_section), answered, len(order), number)

    def can_go_back(self) -> bool:
        return self._previous_visited() is not None

    # ------------------------------------------------------------------------- changes
    def answer(self, qid: str, answer: Answer | None) -> None:
        """Record an answer (None = skip, only for optional questions) and move on."""
        question = self.ruleset.questions[qid]
        if answer is None:
            if question.required:
                raise AnswerError(f"'{qid}' is required",
                                  hint="answer it, or mark it as declined")
            self.answers.pop(qid, None)
            self.skipped.add(qid)
        else:
            self.answers[qid] = answer
            self.skipped.discard(qid)
        self._prune()
        if self.cursor == qid:
            self.cursor = None if self.to_review else self._next_visited_after(qid)
            self.to_review = False

    def back(self) -> bool:
        """Step back to the previous visited question; False when there is none."""
        target = self._previous_visited()
        if target is None:
            return False
        self.cursor = target
        self.to_review = False
        return True

    def edit(self, qid: str, return_to_review: bool = False) -> None:
        """Revisit one question (from the review screen)."""
        if not self.applicable()[qid]:
            raise AnswerError(f"'{qid}' does not apply to this client's answers")
        self.cursor = qid
        self.to_review = return_to_review

    def stop_editing(self) -> None:
        self.cursor = None

    def new_crisis_rules(self) -> list[str]:
        """Crisis-flag rules that fired since the last call (so each is announced once)."""
        result = self.result()
        crisis_flags = self.ruleset.crisis_flags
        fired = [r.id for r in result.fired if crisis_flags & set(r.flags)]
        new = [r for r in fired if r not in self.crisis_shown]
        self.crisis_shown.update(new)
        return new

    def result(self) -> Screening:
        return screen(self.ruleset, self.answers)

    def review(self) -> list[str]:
        """Applicable questions in order, for the review screen."""
        app = self.applicable()
        return [q for q in self.ruleset.questions if app[q]]

    def not_asked(self) -> list[str]:
        """Applicable questions never answered, declined or skipped (after finishing early)."""
        app = self.applicable()
        return [q for q in self.ruleset.questions if app[q] and not self.visited(q)]

    def unanswered_required(self) -> list[str]:
        app = self.applicable()
        return [q for q, question in self.ruleset.questions.items()
                if app[q] and question.required and q not in self.answers]

    # ----------------------------------------------------------------------- snapshots
    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready state that :meth:`restore` reads back."""
        return {
            "answers": {q: to_plain(self.ruleset.questions[q], a) for q, a in self.answers.items()},
            "skipped": sorted(self.skipped),
            "crisis_shown": sorted(self.crisis_shown),
        }

    @classmethod
    def restore(cls, ruleset: Ruleset, state: dict[str, Any]) -> "Interview":
        """Rebuild an interview from :meth:`snapshot`; answers that no longer fit the rule set
        (unknown question, invalid value) are dropped so they are asked again."""
        from .answers import AnswerParser, InvalidAnswer

        answers: dict[str, Answer] = {}
        for qid, raw in state.get("answers", {}).items():
            question = ruleset.questions.get(qid)
            if question is None:
                continue
            try:
                parsed = AnswerParser(question).parse(raw)
            except InvalidAnswer:
                continue
            if parsed is not None:
                answers[qid] = parsed
        skipped = {q for q in state.get("skipped", []) if q in ruleset.questions
                   and not ruleset.questions[q].required}
        interview = cls(ruleset, answers, skipped, None, False,
                        set(state.get("crisis_shown", [])))
        interview._prune()
        return interview

    # ------------------------------------------------------------------------ internals
    def _prune(self) -> None:
        app = self.applicable()
        for qid in [q for q in self.answers if not app[q]]:
            del self.answers[qid]
        self.skipped = {q for q in self.skipped if app[q]}
        if self.cursor is not None and not app[self.cursor]:
            self.cursor = None

    def _order_index(self, qid: str) -> int:
        return list(self.ruleset.questions).index(qid)

    def _previous_visited(self) -> str | None:
        app = self.applicable()
        order = list(self.ruleset.questions)
        here = self.current()
        stop = self._order_index(here.id) if here is not None else len(order)
        for qid in reversed(order[:stop]):
            if app[qid] and self.visited(qid):
                return qid
        return None

    def _next_visited_after(self, qid: str) -> str | None:
        """The next already-visited question after ``qid``, before the first unvisited one."""
        app = self.applicable()
        order = list(self.ruleset.questions)
        for later in order[self._order_index(qid) + 1:]:
            if not app[later]:
                continue
            return later if self.visited(later) else None
        return None


def drive(
    interview: Interview,
    prompter: Prompter,
    on_crisis: Callable[[list[str]], bool | None],
    on_change: Callable[[], None],
) -> Screening:
    """Run the interview to the end: ask, apply, announce crises at once, review, finish.

    ``on_crisis`` gets newly fired crisis rules right after the answer that fired them (before
    the next question); when it returns False the interview ends there. A ``finish`` reply ends
    it too. ``on_change`` runs after every change (the caller saves a draft). KeyboardInterrupt
    from the prompter propagates to the caller. Returns the screening of the answers given
    (:meth:`Interview.not_asked` then lists what was never asked).
    """
    from .answers import display_value

    while True:
        question = interview.current()
        if question is None:
            items = [(q, interview.ruleset.questions[q].text,
                      "skipped" if q in interview.skipped
                      else display_value(interview.ruleset.questions[q], interview.answers.get(q)))
                     for q in interview.review()]
            choice = prompter.review(items, interview.unanswered_required())
            if choice == FINISH:
                return interview.result()
            interview.edit(choice, return_to_review=True)
            continue
        reply = prompter.ask(question, interview.position(question),
                             interview.answers.get(question.id), interview.can_go_back(),
                             question.id in interview.skipped)
        if reply.kind == "back":
            interview.back()
            continue
        if reply.kind == "finish":
            interview.stop_editing()
            return interview.result()
        interview.answer(question.id, reply.answer)
        on_change()
        new = interview.new_crisis_rules()
        if new and on_crisis(new) is False:
            interview.stop_editing()
            return interview.result()

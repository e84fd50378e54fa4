"""Real questionary prompts fed through prompt_toolkit's pipe input (no terminal needed)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from iopscreen.answers import DECLINED_ANSWER, Answer
from iopscreen.interview import FINISH, Position
from iopscreen.prompter import QuestionaryPrompter
from iopscreen.ruleset import load_ruleset

RS = load_ruleset(Path(__file__).parent / "data" / "minimal.yaml")
POS = Position("Safety", 1, 2, 0, 12)
DOWN = "\x1b[B"


@pytest.fixture(autouse=True)
def timeout() -> Iterator[None]:
    """Too few keys would make a prompt wait forever: fail after 10 s instead."""
    def fail(*_: Any) -> None:
        raise TimeoutError("prompt still waiting for keys")

    old = signal.signal(signal.SIGALRM, fail)
    signal.alarm(10)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def ask(keys: str, qid: str, current: Answer | None = None, can_back: bool = True) -> tuple[
        Any, list[str]]:
    said: list[str] = []
    with create_pipe_input() as inp:
        inp.send_text(keys)
        prompter = QuestionaryPrompter(said.append, input=inp, output=DummyOutput())
        reply = prompter.ask(RS.questions[qid], POS, current, can_back)
    return reply, said


def test_yes_no_by_shortcut() -> None:
    reply, said = ask("y\r", "danger")
    assert reply.kind == "answer" and reply.answer == Answer(True)
    assert "Safety · 1 of 2    (question 1 of about 12)" in said
    assert RS.questions["danger"].text in said


def test_choice_by_code_key() -> None:
    reply, _ = ask("2\r", "mood_1")
    assert reply.answer == Answer(2)


def test_declined_and_back() -> None:
    assert ask("d\r", "danger")[0].answer == DECLINED_ANSWER
    assert ask("b\r", "danger")[0].kind == "back"


def test_current_answer_is_the_default() -> None:
    reply, _ = ask("\r", "mood_1", current=Answer(1))
    assert reply.answer == Answer(1)


def test_optional_question_can_be_skipped() -> None:
    reply, _ = ask("s\r", "trauma")
    assert reply.kind == "answer" and reply.answer is None


def test_integer_reasks_until_valid() -> None:
    reply, _ = ask("150\r" + "\x7f" * 3 + "34\r", "drinks")
    assert reply.answer == Answer(34)


def test_typed_commands_for_declined_and_back_and_help() -> None:
    assert ask("-\r", "drinks")[0].answer == DECLINED_ANSWER
    assert ask("<\r", "drinks")[0].kind == "back"
    reply, said = ask("?\r12\r", "drinks")
    assert reply.answer == Answer(12)
    assert any(line.startswith("  Help:") for line in said)


def test_multi_choice_ticks() -> None:
    reply, _ = ask(" " + DOWN + " \r", "concerns")
    assert reply.answer == Answer(frozenset({"cost", "time"}))
    reply, _ = ask("\r", "concerns")
    assert reply.answer == Answer(frozenset())


def test_free_text() -> None:
    reply, _ = ask("feels better\r", "comment")
    assert reply.answer == Answer("feels better")
    reply, _ = ask("\r", "comment")
    assert reply.answer is None  # optional: empty skips


def test_review_finish_and_edit() -> None:
    items = [("danger", "Is the person in danger now?", "no"), ("mood_1", "Low mood?", "0")]
    with create_pipe_input() as inp:
        inp.send_text("\r")
        prompter = QuestionaryPrompter(lambda _: None, input=inp, output=DummyOutput())
        assert prompter.review(items, []) == FINISH
    with create_pipe_input() as inp:
        inp.send_text(DOWN + DOWN + "\r")
        prompter = QuestionaryPrompter(lambda _: None, input=inp, output=DummyOutput())
        assert prompter.review(items, []) == "mood_1"


def test_ctrl_c_raises_keyboard_interrupt() -> None:
    with pytest.raises(KeyboardInterrupt):
        ask("\x03", "danger")

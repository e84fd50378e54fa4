"""The real prompts fed through prompt_toolkit's pipe input (no terminal needed).

The input contract: a choice is a shown key or an arrow, recorded only by Enter after it."""

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
from iopscreen.prompter import TerminalPrompter
from iopscreen.ruleset import load_ruleset

RS = load_ruleset(Path(__file__).parent / "data" / "minimal.yaml")
POS = Position("Safety", 1, 2, 0, 12)
DOWN = "\x1b[B"
UP = "\x1b[A"


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
        prompter = TerminalPrompter(said.append, input=inp, output=DummyOutput())
        reply = prompter.ask(RS.questions[qid], POS, current, can_back)
    return reply, said


def prompter_for(inp: Any, said: list[str] | None = None) -> TerminalPrompter:
    return TerminalPrompter((said if said is not None else []).append, input=inp,
                            output=DummyOutput())


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
    assert ask("\r", "danger", current=DECLINED_ANSWER)[0].answer == DECLINED_ANSWER


def test_bare_enter_on_a_fresh_question_records_nothing() -> None:
    # The Enters only bring hints; the answer is the key chosen after them.
    reply, _ = ask("\r\r" + "n\r", "danger")
    assert reply.answer == Answer(False)
    reply, _ = ask("\r" + "1\r", "mood_1")
    assert reply.answer == Answer(1)


def test_an_unknown_key_is_refused_and_clears_the_choice() -> None:
    # '7' on a 0-2 item is no choice: the Enter after it records nothing, not choice one.
    reply, _ = ask("7\r" + "2\r", "mood_1")
    assert reply.answer == Answer(2)
    # a key chosen, then a wrong one: the choice is gone, so Enter records nothing
    reply, _ = ask("1x\r" + "0\r", "mood_1")
    assert reply.answer == Answer(0)
    # the earlier answer is pre-selected, but a wrong key clears it too
    reply, _ = ask("9\r" + "2\r", "mood_1", current=Answer(1))
    assert reply.answer == Answer(2)


def test_arrows_choose_then_enter() -> None:
    reply, _ = ask(DOWN + DOWN + "\r", "mood_1")
    assert reply.answer == Answer(1)
    reply, _ = ask(UP + "\r", "mood_1")
    assert reply.answer == Answer(2)  # from nothing, up starts at the last answer


def test_a_key_alone_records_nothing_until_enter() -> None:
    # 'y' then 'n': the last key chosen is the one Enter records.
    reply, _ = ask("yn\r", "danger")
    assert reply.answer == Answer(False)


def test_finish_now_asks_for_confirmation() -> None:
    reply, _ = ask("f\r" + "y\r", "danger")
    assert reply.kind == "finish"
    # 'n' goes back to the question, which is then answered
    reply, _ = ask("f\r" + "\r" + "n\r" + "y\r", "danger")
    assert reply.kind == "answer" and reply.answer == Answer(True)
    reply, _ = ask("!\r" + "y\r", "drinks")
    assert reply.kind == "finish"


def test_crisis_acknowledgement_is_a_choice() -> None:
    for keys, expected in (("c\r", "continue"), ("f\r", "finish"),
                           ("\r" + "y\r" + "n\r" + "c\r", "continue")):
        with create_pipe_input() as inp:
            inp.send_text(keys)
            assert prompter_for(inp).after_crisis() == expected


def test_optional_question_can_be_skipped() -> None:
    reply, _ = ask("s\r", "trauma")
    assert reply.kind == "answer" and reply.answer is None
    reply, _ = ask(">\r", "drinks" if not RS.questions["drinks"].required else "comment")
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
    reply, _ = ask(DOWN + " " + DOWN + " \r", "concerns")
    assert reply.answer == Answer(frozenset({"cost", "time"}))
    reply, _ = ask("12\r", "concerns")
    assert reply.answer == Answer(frozenset({"cost", "time"}))
    reply, _ = ask("122\r", "concerns")  # ticked and unticked again
    assert reply.answer == Answer(frozenset({"cost"}))
    # nothing ticked: Enter only hints; "None of these" is an explicit choice
    reply, _ = ask("\r" + "0\r", "concerns")
    assert reply.answer == Answer(frozenset())
    reply, _ = ask("10\r", "concerns")  # "None of these" clears the other ticks
    assert reply.answer == Answer(frozenset())
    reply, _ = ask("\r", "concerns", current=Answer(frozenset({"time"})))
    assert reply.answer == Answer(frozenset({"time"}))


def test_multi_choice_keys_for_declined_and_back_are_not_ticks() -> None:
    assert ask("1d\r", "concerns")[0].answer == DECLINED_ANSWER
    assert ask("b\r", "concerns")[0].kind == "back"


def test_free_text() -> None:
    reply, _ = ask("feels better\r", "comment")
    assert reply.answer == Answer("feels better")
    reply, _ = ask("\r" + ">\r", "comment")
    assert reply.answer is None  # optional: '>' skips; Enter alone only hints


def test_review_finish_and_edit() -> None:
    items = [("danger", "Is the person in danger now?", "no"), ("mood_1", "Low mood?", "0")]
    with create_pipe_input() as inp:
        inp.send_text("\r" + "f\r")  # Enter alone does not finish
        assert prompter_for(inp).review(items, []) == FINISH
    with create_pipe_input() as inp:
        inp.send_text(DOWN + DOWN + "\r")
        assert prompter_for(inp).review(items, []) == "mood_1"
    with create_pipe_input() as inp:
        inp.send_text("a\r")
        assert prompter_for(inp).review(items, ["tr_1"]) == "tr_1"


def test_ctrl_c_raises_keyboard_interrupt() -> None:
    with pytest.raises(KeyboardInterrupt):
        ask("\x03", "danger")


def test_hints_say_what_to_do() -> None:
    from iopscreen.prompter import NOTHING_CHOSEN, Menu, Row

    for keys, hint in (("\r", NOTHING_CHOSEN), ("7", "'7' is not a choice here")):
        with create_pipe_input() as inp:
            inp.send_text(keys + "\x03")
            menu = Menu("Answer", [Row("1", "One", 1)], io={"input": inp,
                                                             "output": DummyOutput()})
            with pytest.raises(KeyboardInterrupt):
                menu.run()
        assert menu.hint.startswith(hint)


def test_keys_typed_before_a_prompt_are_thrown_away(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys pressed while a banner was on screen never reach the next prompt."""
    import os
    import pty
    import select

    from iopscreen.prompter import flush_typeahead

    master, slave = pty.openpty()
    try:
        with open(slave, "r", closefd=False) as tty:
            monkeypatch.setattr("sys.stdin", tty)
            os.write(master, b"y\r")
            assert select.select([slave], [], [], 5)[0]  # the keys are waiting to be read
            flush_typeahead()
            assert not select.select([slave], [], [], 0)[0]  # and now they are gone
    finally:
        os.close(master)
        os.close(slave)

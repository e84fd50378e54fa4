"""The interview state machine, driven by a scripted prompter (no terminal)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import pytest

from iopscreen.answers import DECLINED_ANSWER, Answer, AnswerParser
from iopscreen.errors import AnswerError
from iopscreen.interview import FINISH, Interview, Position, Reply, drive
from iopscreen.ruleset import default_ruleset_path, load_ruleset
from iopscreen.ruleset.model import Question, Ruleset

MINIMAL = load_ruleset(Path(__file__).parent / "data" / "minimal.yaml")


class ScriptedPrompter:
    """Plays a script of (question id, action); fails loudly when the interview goes elsewhere.

    Actions: a raw answer ("yes", 2, "cost|time"), "<back>", "<skip>", "<declined>";
    at the review screen the id is "review" and the action a question id or FINISH.
    """

    def __init__(self, script: Sequence[tuple[str, Any]]):
        self.script = list(script)
        self.asked: list[str] = []
        self.positions: list[Position] = []
        self.seen_current: list[tuple[str, Answer | None]] = []
        self.review_items: list[list[tuple[str, str, str]]] = []

    def _next(self, where: str) -> Any:
        assert self.script, f"script ended but the interview asked {where}"
        qid, action = self.script.pop(0)
        assert qid == where, f"expected {qid}, the interview asked {where}"
        return action

    def ask(self, question: Question, position: Position, current: Answer | None,
            can_back: bool, skipped: bool = False) -> Reply:
        self.asked.append(question.id)
        self.positions.append(position)
        self.seen_current.append((question.id, current))
        action = self._next(question.id)
        if action == "<back>":
            assert can_back
            return Reply("back")
        if action == "<skip>":
            return Reply("answer", None)
        if action == "<declined>":
            return Reply("answer", DECLINED_ANSWER)
        if action == "<finish>":
            return Reply("finish")
        return Reply("answer", AnswerParser(question).parse(action))

    def review(self, items: Sequence[tuple[str, str, str]], missing: Sequence[str]) -> str:
        self.review_items.append(list(items))
        return str(self._next("review"))


def play(ruleset: Ruleset, script: Sequence[tuple[str, Any]]) -> tuple[Any, ScriptedPrompter,
                                                                       list[list[str]], int]:
    prompter = ScriptedPrompter(script)
    crises: list[list[str]] = []
    saves = [0]

    def on_change() -> None:
        saves[0] += 1

    result = drive(Interview(ruleset), prompter, crises.append, on_change)
    assert prompter.script == [], f"unused script: {prompter.script}"
    return result, prompter, crises, saves[0]


CALM = [("danger", "no"), ("mood_1", 0), ("mood_2", 0), ("mood_3", 2), ("trauma", "no"),
        ("sex", "female"), ("drinks", 0), ("concerns", "none"), ("comment", "<skip>")]


def test_full_interview_follows_skip_logic() -> None:
    result, prompter, crises, saves = play(MINIMAL, CALM + [("review", FINISH)])
    assert "danger_plan" not in prompter.asked and "tr_1" not in prompter.asked
    assert result.level == "low" and not result.provisional
    assert crises == []
    assert saves == len(CALM)


def test_positions_count_sections_and_progress() -> None:
    _, prompter, _, _ = play(MINIMAL, CALM + [("review", FINISH)])
    first, mood2 = prompter.positions[0], prompter.positions[2]
    # Before 'danger' is answered its follow-up may still apply, so the section counts 2.
    assert (first.section_title, first.index_in_section, first.section_total) == ("Safety", 1, 2)
    assert (mood2.section_title, mood2.index_in_section) == ("Symptoms", 2)
    assert mood2.answered == 2
    # 'danger: no' removes the follow-up and the trauma items are gated too
    assert prompter.positions[-1].total == len(CALM)


def test_crisis_is_announced_at_once_before_the_next_question() -> None:
    script = [("danger", "yes"), ("danger_plan", "yes")] + CALM[1:] + [("review", FINISH)]
    prompter = ScriptedPrompter(script)
    events: list[str] = []
    original_ask = prompter.ask

    def ask(question: Question, *args: Any, **kwargs: Any) -> Reply:
        events.append(question.id)
        return original_ask(question, *args, **kwargs)

    prompter.ask = ask  # type: ignore[method-assign]
    result = drive(Interview(MINIMAL), prompter, lambda rules: events.append(f"CRISIS{rules}"),
                   lambda: None)
    assert events[:3] == ["danger", "danger_plan", "CRISIS['crisis_plan']"]
    assert events.count("CRISIS['crisis_plan']") == 1  # announced once, interview continues
    assert result.level == "high"


def test_back_changes_an_answer_and_drops_answers_that_no_longer_apply() -> None:
    script = [("danger", "yes"), ("danger_plan", "no"), ("mood_1", "<back>"),
              ("danger_plan", "<back>"), ("danger", "no"), ("mood_1", 1)] + CALM[2:] + [
        ("review", FINISH)]
    result, prompter, _, _ = play(MINIMAL, script)
    assert "danger_plan" not in result.answers
    assert result.answers["danger"] is False
    # going back showed the earlier answers as the current ones
    assert prompter.seen_current[:5] == [("danger", None), ("danger_plan", None), ("mood_1", None),
                                         ("danger_plan", Answer(False)), ("danger", Answer(True))]


def test_after_back_the_wizard_steps_forward_through_answered_questions() -> None:
    script = [("danger", "no"), ("mood_1", 1), ("mood_2", "<back>"), ("mood_1", "<back>"),
              ("danger", "no"), ("mood_1", 2), ("mood_2", 0)] + CALM[3:] + [("review", FINISH)]
    result, prompter, _, _ = play(MINIMAL, script)
    assert result.answers["mood_1"] == 2
    # back twice, change 'danger' (same answer), then forward through 'mood_1' showing its answer
    assert prompter.seen_current[4:6] == [("danger", Answer(False)), ("mood_1", Answer(1))]


def test_review_edit_reopens_follow_ups_and_returns_to_review() -> None:
    script = CALM + [("review", "danger"), ("danger", "yes"), ("danger_plan", "yes"),
                     ("review", FINISH)]
    result, prompter, crises, _ = play(MINIMAL, script)
    assert crises == [["crisis_plan"]]
    assert result.level == "high"
    first_review_ids = [qid for qid, _, _ in prompter.review_items[0]]
    assert "danger_plan" not in first_review_ids
    assert ("comment", MINIMAL.questions["comment"].text, "skipped") in prompter.review_items[0]
    second_review_ids = [qid for qid, _, _ in prompter.review_items[1]]
    assert second_review_ids.index("danger_plan") == second_review_ids.index("danger") + 1


def test_declined_safety_answer_stays_unknown() -> None:
    script = [("danger", "<declined>"), ("danger_plan", "no")] + CALM[1:] + [("review", FINISH)]
    result, prompter, _, _ = play(MINIMAL, script)
    assert "danger_plan" in prompter.asked  # unknown upstream: the follow-up is still asked
    assert result.answers["danger"] == "declined"
    assert result.provisional


def test_required_questions_cannot_be_skipped() -> None:
    interview = Interview(MINIMAL)
    with pytest.raises(AnswerError):
        interview.answer("danger", None)
    interview.answer("trauma", None)  # optional
    assert "trauma" in interview.skipped


def test_snapshot_round_trip() -> None:
    interview = Interview(MINIMAL)
    interview.answer("danger", Answer(True))
    interview.answer("danger_plan", DECLINED_ANSWER)
    interview.answer("concerns", Answer(frozenset({"cost"})))
    interview.answer("trauma", None)
    again = Interview.restore(MINIMAL, interview.snapshot())
    assert again.answers == interview.answers
    assert again.skipped == interview.skipped
    assert again.current() == interview.current()


def test_restore_drops_answers_that_no_longer_fit() -> None:
    state = {"answers": {"danger": "yes", "mood_1": 9, "gone": "x"}, "skipped": ["danger"]}
    again = Interview.restore(MINIMAL, state)
    assert again.answers == {"danger": Answer(True)}
    assert again.skipped == set()  # a required question cannot stay skipped


def test_default_ruleset_item9_follow_up_and_crisis_mid_interview() -> None:
    rs = load_ruleset(default_ruleset_path())
    interview = Interview(rs)
    announced: list[list[str]] = []
    asked: list[str] = []

    class AllNo:
        def ask(self, question: Question, position: Position, current: Answer | None,
                can_back: bool, skipped: bool = False) -> Reply:
            asked.append(question.id)
            if question.id == "phq9_9":
                return Reply("answer", Answer(1))
            if question.id == "phq9_9_safe":
                return Reply("answer", Answer(False))  # cannot keep themselves safe
            if question.type == "yesno":
                return Reply("answer", Answer(False))
            if question.type == "choice":
                return Reply("answer", Answer(question.choices[0].code))
            if question.type == "integer":
                return Reply("answer", Answer(max(question.min or 0, 30)))
            if question.type == "multi":
                return Reply("answer", Answer(frozenset()))
            return Reply("answer", None if not question.required else Answer("n/a"))

        def review(self, items: Sequence[tuple[str, str, str]], missing: Sequence[str]) -> str:
            return FINISH

    result = drive(interview, AllNo(), announced.append, lambda: None)
    assert "phq9_9_today" in asked and "phq9_9_safe" in asked
    assert announced and len(announced) == 1
    assert result.crisis and result.level == "inpatient"
    assert "clinician_review" in result.flag_ids


def test_finish_now_ends_with_the_answers_so_far_and_lists_the_rest() -> None:
    script = [("danger", "no"), ("mood_1", 2), ("mood_2", "<finish>")]
    prompter = ScriptedPrompter(script)
    interview = Interview(MINIMAL)
    result = drive(interview, prompter, lambda rules: None, lambda: None)
    assert prompter.script == []
    assert result.answers == {"danger": False, "mood_1": 2}
    assert interview.not_asked() == ["mood_2", "mood_3", "trauma", "tr_1", "tr_2", "sex", "drinks",
                                     "concerns", "comment"]
    assert result.provisional  # the unasked items could still change the result


def test_a_crisis_can_end_the_interview_at_once() -> None:
    prompter = ScriptedPrompter([("danger", "yes"), ("danger_plan", "yes")])
    interview = Interview(MINIMAL)
    seen: list[list[str]] = []

    def finish(rules: list[str]) -> bool:
        seen.append(rules)
        return False

    result = drive(interview, prompter, finish, lambda: None)
    assert seen == [["crisis_plan"]] and prompter.script == []
    assert result.crisis and result.level == "high"
    assert "mood_1" in interview.not_asked()


def test_question_number_is_the_place_in_the_interview_after_going_back() -> None:
    script = [("danger", "no"), ("mood_1", 1), ("mood_2", "<back>"), ("mood_1", 1),
              ("mood_2", 0)] + CALM[3:] + [("review", FINISH)]
    _, prompter, _, _ = play(MINIMAL, script)
    numbers = [(q, p.number) for q, p in zip(prompter.asked, prompter.positions)]
    assert numbers[:5] == [("danger", 1), ("mood_1", 2), ("mood_2", 3), ("mood_1", 2),
                           ("mood_2", 3)]

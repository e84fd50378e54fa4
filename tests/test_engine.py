"""The engine on its own, without the CLI, on the minimal rule set that uses every feature."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from iopscreen.answers import coerce_answers
from iopscreen.engine import applicable, screen
from iopscreen.ruleset import load_ruleset
from iopscreen.ruleset.model import Ruleset

DATA = Path(__file__).parent / "data"

BASE = {"danger": "no", "mood_1": 0, "mood_2": 0, "mood_3": 2, "trauma": "no", "sex": "female",
        "drinks": 0, "concerns": "none", "comment": "ok"}


@pytest.fixture(scope="module")
def rs() -> Ruleset:
    return load_ruleset(DATA / "minimal.yaml")


def run(rs: Ruleset, **changes: Any):  # type: ignore[no-untyped-def]
    raw = {**BASE, **changes}
    raw = {k: v for k, v in raw.items() if v is not None}
    return screen(rs, coerce_answers(rs, raw))


def test_no_rule_fired_gives_lowest_level(rs: Ruleset) -> None:
    result = run(rs)
    assert result.level == "low"
    assert not result.provisional
    assert result.fired == ()
    assert result.score("mood").score == 0


def test_highest_min_level_wins_never_an_average(rs: Ruleset) -> None:
    # Mood alone -> mid; a crisis plan -> high. Many mild answers never average the crisis away.
    result = run(rs, danger="yes", danger_plan="yes", mood_1=2, mood_2=2, mood_3=0)
    assert result.level == "high"
    assert result.flag_ids[0] == "crisis"
    assert {r.id for r in result.fired} == {"crisis_plan", "mood_high"}
    crisis = next(r for r in result.fired if r.id == "crisis_plan")
    assert [(e.name, e.value) for e in crisis.evidence] == [("danger", "yes"),
                                                            ("danger_plan", "yes")]


def test_declined_safety_answer_is_unknown_and_makes_result_provisional(rs: Ruleset) -> None:
    result = run(rs, danger="yes", danger_plan="declined")
    assert result.level == "low"
    assert result.provisional
    assert result.possible_level == "high"
    assert result.deciding == ("danger_plan",)
    assert "crisis" not in result.flag_ids


def test_unanswered_is_unknown_too(rs: Ruleset) -> None:
    result = run(rs, danger=None)
    assert result.provisional
    assert "danger" in result.deciding


def test_skip_logic_makes_followups_not_applicable(rs: Ruleset) -> None:
    answers = coerce_answers(rs, {**BASE, "danger": "no", "danger_plan": "yes"})
    result = screen(rs, answers)
    assert result.ignored == ("danger_plan",)
    assert "danger_plan" not in result.answers
    assert result.level == "low" and not result.provisional
    assert applicable(rs, answers)["danger_plan"] is False


def test_skip_logic_asks_when_upstream_is_unknown(rs: Ruleset) -> None:
    answers = coerce_answers(rs, {"danger": "declined"})
    assert applicable(rs, answers)["danger_plan"] is True


def test_reverse_scoring_and_bands(rs: Ruleset) -> None:
    result = run(rs, mood_1=1, mood_2=1, mood_3=1)  # 1 + 1 + (2 - 1)
    assert result.score("mood").score == 3
    assert result.score("mood").band == "high"
    assert result.level == "mid"


def test_prorating_one_missing_item(rs: Ruleset) -> None:
    result = run(rs, mood_1=2, mood_2=None, mood_3=2)  # 2 + 0 over 2 items -> 3 of 3 items
    assert result.score("mood").score == 3
    assert result.score("mood").missing_items == ("mood_2",)


def test_too_many_missing_items_make_the_score_unknown(rs: Ruleset) -> None:
    result = run(rs, mood_1=None, mood_2=None, mood_3=2)
    assert result.score("mood").score is None
    assert result.score("mood").band is None
    assert result.provisional
    assert set(result.deciding) >= {"mood_1", "mood_2"}


def test_gate_false_scores_zero_without_items(rs: Ruleset) -> None:
    result = run(rs, trauma="no")
    assert result.score("trauma_score").score == 0
    assert result.score("trauma_score").band == "negative"


def test_gate_true_sums_items(rs: Ruleset) -> None:
    result = run(rs, trauma="yes", tr_1="yes", tr_2="yes")
    assert result.score("trauma_score").score == 2
    assert "trauma_positive" in {r.id for r in result.fired}
    assert "review" in result.flag_ids


def test_derived_cutoff_uses_lower_value_when_sex_missing(rs: Ruleset) -> None:
    # men 10, everyone else (and unknown) 7
    assert "heavy" in {r.id for r in run(rs, sex=None, drinks=8, mood_1=1).fired}
    assert "heavy" not in {r.id for r in run(rs, sex="male", drinks=8, mood_1=1).fired}
    assert "heavy" in {r.id for r in run(rs, sex="male", drinks=10, mood_1=1).fired}


def test_misconceptions_and_engagement_notes(rs: Ruleset) -> None:
    result = run(rs, concerns=["cost"])
    assert [m.id for m in result.misconceptions] == ["too_expensive"]
    note = next(r for r in result.fired if r.id == "cost_note")
    assert note.category == "engagement" and note.min_level is None
    assert result.level == "low"


def test_note_flags_do_not_make_a_result_provisional(rs: Ruleset) -> None:
    result = run(rs, concerns=None)
    assert not result.provisional


def test_result_is_deterministic_and_json_serialisable(rs: Ruleset) -> None:
    a = run(rs, danger="yes", danger_plan="no", mood_1=1).to_json()
    b = run(rs, danger="yes", danger_plan="no", mood_1=1).to_json()
    assert a == b
    text = json.dumps(a)
    back = json.loads(text)
    assert back["schema"] == "iopscreen.screening" and back["schema_version"] == 1
    assert back["ruleset"]["id"] == "minimal-test" and len(back["ruleset"]["sha256"]) == 64
    assert back["flags"][0]["id"] == "review"
    assert back["disclaimer"].startswith("This is a screening aid")


def test_answers_round_trip_through_json(rs: Ruleset) -> None:
    first = run(rs, concerns=["time", "cost"], danger="yes", danger_plan="declined")
    again = screen(rs, coerce_answers(rs, first.answers))
    assert again.to_json() == first.to_json()


def test_flags_are_ordered_by_severity(rs: Ruleset) -> None:
    result = run(rs, danger="yes", danger_plan="yes", concerns=["cost"], trauma="yes",
                 tr_1="yes", tr_2="yes")
    assert [f.severity for f in result.flags] == ["crisis", "review", "note"]


def test_works_for_any_number_of_levels(tmp_path: Path) -> None:
    text = (DATA / "minimal.yaml").read_text()
    text = text.replace("  - id: high\n    label: High\n    description: Highest level.\n",
                        "  - id: high\n    label: High\n    description: Highest level.\n"
                        "  - id: top\n    label: Top\n    description: Fourth level.\n")
    text = text.replace("    when: \"'cost' in concerns or count(concerns) >= 2\"\n    flags: [note]",
                        "    when: \"'cost' in concerns or count(concerns) >= 2\"\n"
                        "    min_level: top\n    flags: [note]")
    path = tmp_path / "four.yaml"
    path.write_text(text)
    four = load_ruleset(path)
    assert [lv.id for lv in four.levels] == ["low", "mid", "high", "top"]
    result = screen(four, coerce_answers(four, {**BASE, "concerns": ["cost"]}))
    assert result.level == "top"



def test_a_coalesced_question_still_decides_when_it_can_change_the_cutoff(rs: Ruleset) -> None:
    # With 8 drinks, answering sex = male would raise the cutoff to 10 and clear the rule.
    result = run(rs, sex=None, drinks=None, mood_1=1)
    assert result.provisional
    assert {"drinks", "sex"} <= set(result.deciding)

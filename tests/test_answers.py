"""One place turns raw values into typed answers: prompt text, CSV cells, JSON values."""

from __future__ import annotations

from pathlib import Path

import pytest

from iopscreen.answers import DECLINED_ANSWER, Answer, AnswerParser, InvalidAnswer, coerce_answers
from iopscreen.errors import AnswerError
from iopscreen.ruleset import load_ruleset

RS = load_ruleset(Path(__file__).parent / "data" / "minimal.yaml")


def parse(qid: str, raw: object) -> Answer | None:
    return AnswerParser(RS.questions[qid]).parse(raw)


@pytest.mark.parametrize("raw", ["yes", "Y", "TRUE", "true", "1", " yes ", True, 1])
def test_yes_forms(raw: object) -> None:
    assert parse("danger", raw) == Answer(True)


@pytest.mark.parametrize("raw", ["no", "N", "False", "0", False, 0])
def test_no_forms(raw: object) -> None:
    assert parse("danger", raw) == Answer(False)


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_blank_is_unanswered(raw: object) -> None:
    assert parse("danger", raw) is None


@pytest.mark.parametrize("raw", ["declined", "DECLINED", "refused"])
def test_declined_token(raw: str) -> None:
    assert parse("mood_1", raw) == DECLINED_ANSWER


def test_choice_codes_and_labels() -> None:
    assert parse("mood_1", 2) == Answer(2)
    assert parse("mood_1", "2") == Answer(2)
    assert parse("mood_1", 2.0) == Answer(2)
    assert parse("mood_1", "most days") == Answer(2)
    assert parse("sex", "Male") == Answer("male")


def test_multi_forms() -> None:
    assert parse("concerns", ["cost", "time"]) == Answer(frozenset({"cost", "time"}))
    assert parse("concerns", "cost|Time") == Answer(frozenset({"cost", "time"}))
    assert parse("concerns", "cost; time") == Answer(frozenset({"cost", "time"}))
    assert parse("concerns", "none") == Answer(frozenset())
    assert parse("concerns", []) == Answer(frozenset())


def test_integer_range() -> None:
    assert parse("drinks", "12") == Answer(12)
    assert parse("drinks", 12.0) == Answer(12)
    with pytest.raises(InvalidAnswer) as info:
        parse("drinks", "101")
    assert info.value.code == "E404"
    with pytest.raises(InvalidAnswer):
        parse("drinks", "1.5")
    with pytest.raises(InvalidAnswer):
        parse("drinks", True)
    assert parse("drinks", "12.0") == Answer(12)  # as some spreadsheets export numbers
    assert parse("drinks", "+7") == Answer(7)


@pytest.mark.parametrize("raw", ["1e1", "1_0", "\uff11\uff10", "12.", "0x10", "1 0", "12,0"])
def test_only_plain_digits_make_a_whole_number(raw: str) -> None:
    """Python's int()/float() take these; a person writing a count does not."""
    with pytest.raises(InvalidAnswer) as info:
        parse("drinks", raw)
    assert info.value.code == "E401" and "'declined'" in info.value.hint


@pytest.mark.parametrize("qid, raw, code", [
    ("danger", "maybe", "E402"),
    ("mood_1", 7, "E405"),
    ("mood_1", "often", "E405"),
    ("concerns", "cost|fish", "E405"),
    ("drinks", "lots", "E401"),
])
def test_invalid_values(qid: str, raw: object, code: str) -> None:
    with pytest.raises(InvalidAnswer) as info:
        parse(qid, raw)
    assert info.value.code == code
    assert info.value.hint


def test_errors_never_echo_values_unless_asked() -> None:
    secret = "my-secret-answer"
    with pytest.raises(AnswerError) as info:
        coerce_answers(RS, {"mood_1": secret})
    assert secret not in info.value.render()
    with pytest.raises(AnswerError) as info:
        coerce_answers(RS, {"mood_1": secret}, show_values=True)
    assert secret in info.value.render()


def test_all_errors_are_collected_with_did_you_mean() -> None:
    with pytest.raises(AnswerError) as info:
        coerce_answers(RS, {"mood_1": 9, "dangr": "yes", "drinks": -1})
    codes = sorted(d.code for d in info.value.diagnostics)
    assert codes == ["E404", "E405", "E406"]
    unknown = next(d for d in info.value.diagnostics if d.code == "E406")
    assert "did you mean 'danger'" in unknown.hint


LANES = load_ruleset(Path(__file__).parent / "data" / "lanes.yaml")


@pytest.mark.parametrize("raw, code", [("M", "male"), ("m", "male"), (" man ", "male"),
                                       ("MALE", "male"), ("F", "female"), ("woman", "female"),
                                       ("Female", "female")])
def test_choice_aliases_read_as_their_choice(raw: str, code: str) -> None:
    assert AnswerParser(LANES.questions["sex"]).parse(raw) == Answer(code)


def test_aliases_of_numbered_choices_and_of_multiple_choices() -> None:
    assert AnswerParser(LANES.questions["mood_3"]).parse("No times") == Answer(0)
    assert AnswerParser(LANES.questions["mood_3"]).parse("0 times") == Answer(0)
    multi = AnswerParser(LANES.questions["concerns"])
    assert multi.parse("money|Hours") == Answer(frozenset({"cost", "time"}))
    assert multi.parse(["co-pay", "time"]) == Answer(frozenset({"cost", "time"}))
    with pytest.raises(InvalidAnswer) as bad:
        multi.parse("money|cash")
    assert "cost=Cost (also money, co-pay)" in bad.value.hint

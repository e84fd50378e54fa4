"""The shipped default rule set: valid with no warnings, and every stored case passes."""

from __future__ import annotations

from iopscreen.ruleset import check_ruleset, default_ruleset_path
from iopscreen.ruleset import tests_path_for as cases_path
from iopscreen.ruletests import run_cases


def test_default_ruleset_validates_without_warnings() -> None:
    ruleset, problems = check_ruleset(default_ruleset_path())
    assert ruleset is not None
    assert [d.render() for d in problems.items] == []


def test_default_ruleset_cases_all_pass() -> None:
    ruleset, _ = check_ruleset(default_ruleset_path())
    assert ruleset is not None
    results = run_cases(ruleset, cases_path(default_ruleset_path()))
    assert len(results) >= 40
    failures = {r.name: r.failures for r in results if not r.passed}
    assert failures == {}


def test_cases_cover_every_rule_band_level_and_misconception() -> None:
    ruleset, _ = check_ruleset(default_ruleset_path())
    assert ruleset is not None
    results = run_cases(ruleset, cases_path(default_ruleset_path()))
    screenings = [r.screening for r in results if r.screening is not None]
    fired = {f.id for s in screenings for f in s.fired}
    assert fired == {r.id for r in ruleset.rules}
    assert {s.level for s in screenings} == {lv.id for lv in ruleset.levels}
    for inst in ruleset.instruments:
        seen = {s.score(inst.id).band for s in screenings}
        assert {b.id for b in inst.bands} <= seen, inst.id
    assert {m.id for s in screenings for m in s.misconceptions} == {
        m.id for m in ruleset.misconceptions}


def test_danger_to_others_shows_the_duty_to_protect_step_with_its_source() -> None:
    """Intent or a plan to harm someone: the crisis protocol shown with it names the agency's
    duty-to-warn/duty-to-protect policy and the supervisor, and the rule cites Tarasoff."""
    from iopscreen.answers import coerce_answers
    from iopscreen.engine import screen
    from iopscreen.reports import content

    ruleset, _ = check_ruleset(default_ruleset_path())
    assert ruleset is not None
    rule = next(r for r in ruleset.rules if r.id == "harm_others_intent_or_plan")
    assert "tarasoff-1976" in rule.sources
    assert "Tarasoff" in ruleset.sources["tarasoff-1976"].cite
    assert "duty-to-protect" in rule.reason and "not give legal advice" in rule.reason
    steps = [s for s in ruleset.crisis.protocol if "duty-to-protect" in s]
    assert len(steps) == 1 and "supervisor now" in steps[0] and "not legal advice" in steps[0]
    answers = coerce_answers(ruleset, {"harm_others": "yes", "harm_others_intent": "yes"})
    result = screen(ruleset, answers)
    record = {"id": 1, "version": 1, "client": "", "counselor": "", "created_utc": "",
              "source": "evaluate", "ruleset": result.to_json()["ruleset"],
              "result": result.to_json()}
    report = content.collect(record, ruleset)
    assert report.crisis is not None and steps[0] in report.crisis.protocol

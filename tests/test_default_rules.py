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

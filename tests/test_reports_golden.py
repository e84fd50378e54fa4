"""Reports as golden files: each tests/golden/NAME.record.json renders byte for byte as
NAME.md, NAME.html and NAME.fhir.json; each test rule set exports as a Questionnaire golden file.

To review a change on purpose: ``IOPSCREEN_UPDATE_GOLDEN=1 python -m pytest tests/test_reports_golden.py``
rewrites the golden files (and the records' results, from their answers); then read ``git diff``.
"""

from __future__ import annotations

import json

import pytest
from reportcases import GOLDEN, RULESET_FILES, load_record, rebuild, record_names, ruleset_for
from reportcases import check_golden

from iopscreen.reports import render_questionnaire, render_record

OUTPUTS = {"markdown": ".md", "html": ".html", "fhir": ".fhir.json"}
NAMES = record_names()


def test_the_golden_folder_has_the_cases_the_issue_asks_for() -> None:
    records = [load_record(n) for n in NAMES]
    results = [r["result"] for r in records]
    assert {r["ruleset"]["id"] for r in records} == set(RULESET_FILES)
    assert any(any(f["severity"] == "crisis" for f in res["flags"]) for res in results)
    assert any(res["provisional"] for res in results)
    assert any(res["misconceptions"] for res in results)
    assert any(r["amends"] is not None for r in records)
    assert any(a == "declined" for res in results for a in res["answers"].values())


@pytest.mark.parametrize("name", NAMES)
def test_golden_records_are_real_screenings(name: str) -> None:
    record = load_record(name)
    fresh = rebuild(record)
    assert record["ruleset"] == fresh["ruleset"], (
        f"{name}: the rule set changed since this record was made; rerun with "
        "IOPSCREEN_UPDATE_GOLDEN=1 and review the diff")
    assert record["result"] == fresh["result"]


@pytest.mark.parametrize("fmt", sorted(OUTPUTS))
@pytest.mark.parametrize("name", NAMES)
def test_report_matches_golden(name: str, fmt: str) -> None:
    record = load_record(name)
    ruleset = ruleset_for(record["ruleset"]["id"])
    check_golden(GOLDEN / f"{name}{OUTPUTS[fmt]}", render_record(fmt, record, ruleset))


@pytest.mark.parametrize("ruleset_id", sorted(RULESET_FILES))
def test_questionnaire_matches_golden(ruleset_id: str) -> None:
    check_golden(GOLDEN / f"questionnaire-{ruleset_id}.fhir.json",
                 render_questionnaire(ruleset_for(ruleset_id)))


def test_json_format_is_the_record_itself() -> None:
    record = load_record(NAMES[0])
    assert json.loads(render_record("json", record)) == record

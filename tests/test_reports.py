"""Reports and FHIR export: structure (validated with fhir.resources), skip logic as enableWhen,
escaping, errors, and the `rules export` command. Golden files: test_reports_golden.py."""

from __future__ import annotations

import ast
import itertools
import json
from pathlib import Path
from typing import Any, Iterator

import pytest
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from markdown_it import MarkdownIt
from reportcases import GOLDEN, RULESET_FILES, load_record, record_names, ruleset_for

from iopscreen.answers import coerce_answers
from iopscreen.cli import run
from iopscreen.engine import applicable, screen
from iopscreen.errors import UsageError
from iopscreen.expr import Name, walk
from iopscreen.reports import (ReportError, render_questionnaire, render_record,
                               ruleset_matches)
from iopscreen.reports import fhir
from iopscreen.ruleset import load_ruleset
from iopscreen.ruleset.model import Instrument, Ruleset

# fhir.resources 8 ships FHIR R5 at the top level and R4B (4.3) under fhir.resources.R4B; there is
# no 4.0.1 package for pydantic 2. Questionnaire and QuestionnaireResponse are the same in R4 and
# R4B for every element used here, so the R4B models check the R4 structure. They check elements,
# types and cardinality, not code values or invariants: check_questionnaire() below does those.
R4_ITEM_TYPES = {"group", "display", "boolean", "decimal", "integer", "date", "dateTime", "time",
                 "string", "text", "url", "choice", "open-choice", "attachment", "reference",
                 "quantity"}
ANSWER_KEY = {"boolean": "answerBoolean", "choice": "answerCoding", "integer": "answerInteger",
              "decimal": "answerDecimal", "string": "answerString"}
VALUE_KEY = {"boolean": "valueBoolean", "choice": "valueCoding", "integer": "valueInteger",
             "decimal": "valueDecimal", "string": "valueString"}
NAMES = record_names()
TESTS = Path(__file__).parent

# Skip-logic cases on top of the minimal rule set: id -> (condition, expected enableWhen as
# (question, operator, answer) triples, behaviour), or (condition, text in the not-expressed note).
EXPRESSIBLE = {
    "e_yes": ("danger", [("danger", "=", True)], None),
    "e_not": ("not danger", [("danger", "=", False)], None),
    "e_code": ("sex == 'female'", [("sex", "=", "female")], None),
    "e_not_code": ("sex != 'female'", [("sex", "=", "male")], None),
    "e_gt_choice": ("mood_1 > 0", [("mood_1", "=", "1"), ("mood_1", "=", "2")], "any"),
    "e_all_codes": ("mood_1 >= 0", [("mood_1", "exists", True)], None),
    "e_int": ("drinks > 14", [("drinks", ">", 14)], None),
    "e_int_mirror": ("14 >= drinks", [("drinks", "<=", 14)], None),
    "e_chain": ("1 <= drinks <= 6", [("drinks", ">=", 1), ("drinks", "<=", 6)], "all"),
    "e_in": ("mood_2 in [0, 2]", [("mood_2", "=", "0"), ("mood_2", "=", "2")], "any"),
    "e_int_in": ("drinks in [0, 7]", [("drinks", "=", 0), ("drinks", "=", 7)], "any"),
    "e_int_not_in": ("drinks not in [0, 7]", [("drinks", "!=", 0), ("drinks", "!=", 7)], "all"),
    "e_and": ("danger and trauma", [("danger", "=", True), ("trauma", "=", True)], "all"),
    "e_or": ("danger or trauma", [("danger", "=", True), ("trauma", "=", True)], "any"),
    "e_not_or": ("not (danger or trauma)", [("danger", "=", False), ("trauma", "=", False)],
                 "all"),
    "e_or_codes": ("danger or mood_1 > 1", [("danger", "=", True), ("mood_1", "=", "2")], "any"),
    "e_multi": ("'cost' in concerns", [("concerns", "=", "cost")], None),
    "e_answered": ("answered(comment)", [("comment", "exists", True)], None),
    "e_not_answered": ("not answered(drinks)", [("drinks", "exists", False)], None),
}
NOT_EXPRESSIBLE = {
    "n_score": ("mood >= 3", "the score 'mood'"),
    "n_band": ("mood_band == 'high'", "the band 'mood_band'"),
    "n_declined": ("declined(danger)", "declined()"),
    "n_count": ("count(concerns) >= 2", "count()"),
    "n_mixed": ("danger and (trauma or sex == 'male')", "mixes 'and' and 'or'"),
    "n_mixed_codes": ("danger and mood_1 > 0", "mixes 'and' and 'or'"),
    "n_not_ticked": ("'cost' not in concerns", "NOT ticked"),
    "n_derived": ("heavy_drinking", "two computed values"),
    "n_two_questions": ("mood_1 == mood_2", "two computed values"),
}


@pytest.fixture(scope="module")
def skip_rules(tmp_path_factory: pytest.TempPathFactory) -> Ruleset:
    """The minimal rule set with one extra question per skip-logic case."""
    lines = ["  - id: skip_cases", "    title: Skip-logic cases", "    questions:"]
    for qid, case in {**EXPRESSIBLE, **NOT_EXPRESSIBLE}.items():
        lines.append(f"      - {{id: {qid}, text: Case {qid}, type: yesno, required: false, "
                     f"ask_when: {json.dumps(case[0])}}}")
    text = (TESTS / "data" / "minimal.yaml").read_text(encoding="utf-8")
    text = text.replace("\ninstruments:", "\n" + "\n".join(lines) + "\n\ninstruments:", 1)
    path = tmp_path_factory.mktemp("rules") / "skip.yaml"
    path.write_text(text, encoding="utf-8")
    return load_ruleset(path)


# ------------------------------------------------------------------------ FHIR helpers


def iter_items(items: list[dict[str, Any]], parent: str = "") -> Iterator[tuple[str, dict]]:
    for item in items:
        yield parent, item
        yield from iter_items(item.get("item", []), item["linkId"])
        for answer in item.get("answer", []):
            yield from iter_items(answer.get("item", []), item["linkId"])


def check_questionnaire(q: dict[str, Any]) -> dict[str, tuple[str, dict]]:
    """R4 invariants the model library does not check; returns linkId -> (parent, item)."""
    Questionnaire.model_validate(q)
    by_link: dict[str, tuple[str, dict]] = {}
    for parent, item in iter_items(q["item"]):
        link, kind = item["linkId"], item["type"]
        assert link not in by_link, f"duplicate linkId {link}"
        by_link[link] = (parent, item)
        assert kind in R4_ITEM_TYPES, f"{link}: '{kind}' is not an R4 item type"
        assert (kind == "group") == bool(item.get("item") and kind == "group") or kind != "group", \
            f"{link}: a group needs items (que-1)"
        if kind == "group":
            assert item.get("item"), f"{link}: a group needs items (que-1)"
        if kind == "display":
            assert "item" not in item and "required" not in item and "repeats" not in item, link
        if "answerOption" in item:
            assert kind in ("choice", "open-choice"), f"{link}: answerOption on {kind} (que-5)"
        enable = item.get("enableWhen", [])
        assert ("enableBehavior" in item) == (len(enable) > 1), f"{link}: que-12"
    for link, (_, item) in by_link.items():
        for ew in item.get("enableWhen", []):
            assert ew["question"] in by_link, f"{link}: enableWhen on unknown {ew['question']}"
            target = by_link[ew["question"]][1]
            keys = [k for k in ew if k.startswith("answer")]
            assert len(keys) == 1
            if ew["operator"] == "exists":
                assert keys == ["answerBoolean"]
                continue
            assert keys == [ANSWER_KEY[target["type"]]], f"{link}: {keys} for {target['type']}"
            if keys == ["answerCoding"]:
                assert ew["answerCoding"]["code"] in {o["valueCoding"]["code"]
                                                       for o in target["answerOption"]}
    return by_link


def check_response(qr: dict[str, Any], q: dict[str, Any]) -> None:
    """The response validates, and every item sits where the Questionnaire puts it."""
    QuestionnaireResponse.model_validate(qr)
    assert qr["questionnaire"] == f"{q['url']}|{q['version']}"
    assert qr["status"] == "completed"
    by_link = check_questionnaire(q)
    for parent, item in iter_items(qr["item"]):
        link = item["linkId"]
        assert link in by_link, f"{link} is not in the Questionnaire"
        q_parent, q_item = by_link[link]
        assert parent == q_parent, f"{link}: under {parent!r}, the Questionnaire has {q_parent!r}"
        answers = item.get("answer", [])
        if q_item["type"] == "group":
            assert not answers and item.get("item")
            continue
        if not answers:
            assert item["extension"][0]["valueCode"] == "asked-declined", link
            continue
        assert len(answers) == 1 or q_item.get("repeats"), f"{link}: several answers"
        for answer in answers:
            assert list(answer) == [VALUE_KEY[q_item["type"]]], f"{link}: {list(answer)}"
            if "valueCoding" in answer:
                options = {(o["valueCoding"]["system"], o["valueCoding"]["code"])
                           for o in q_item["answerOption"]}
                coding = answer["valueCoding"]
                assert (coding["system"], coding["code"]) in options, f"{link}: {coding}"


def make_record(ruleset: Ruleset, raw: dict[str, Any]) -> dict[str, Any]:
    result = screen(ruleset, coerce_answers(ruleset, raw)).to_json()
    return {"id": 1, "version": 1, "amends": None, "client": "C-1", "counselor": "x",
            "created_utc": "2026-01-01T00:00:00Z", "source": "evaluate",
            "ruleset": result["ruleset"], "answers": raw, "result": result, "note": ""}


def fhir_enabled(item: dict[str, Any], answers: dict[str, list[dict[str, Any]]]) -> bool:
    """FHIR R4's enableWhen semantics (an item with no answer matches only 'exists false')."""
    results = []
    for ew in item["enableWhen"]:
        given = answers.get(ew["question"], [])
        key = next(k for k in ew if k.startswith("answer"))
        want, op = ew[key], ew["operator"]
        if op == "exists":
            results.append(bool(given) == want)
            continue
        values = [v for a in given for k, v in a.items() if k.startswith("value")]
        if key == "answerCoding":
            values = [(v["system"], v["code"]) for v in values]
            want = (want["system"], want["code"])
        compare = {"=": lambda v: v == want, "!=": lambda v: v != want, ">": lambda v: v > want,
                   ">=": lambda v: v >= want, "<": lambda v: v < want, "<=": lambda v: v <= want}
        results.append(any(compare[op](v) for v in values))
    return all(results) if item.get("enableBehavior", "all") == "all" else any(results)


def domain(ruleset: Ruleset, qid: str) -> list[Any]:
    """Answers worth trying for a question: every code or edge value, unanswered and declined."""
    q = ruleset.questions[qid]
    values: list[Any] = [None, "declined"]
    if q.type == "yesno":
        values += [True, False]
    elif q.type == "choice":
        values += [c.code for c in q.choices]
    elif q.type == "integer":
        values += sorted({q.min, 0, 1, 6, 7, 14, 15, q.max} & set(range(q.min, q.max + 1)))
    elif q.type == "multi":
        codes = [c.code for c in q.choices]
        values += [[]] + [[c] for c in codes] + [codes[:2]]
    else:
        values += ["some text"]
    return values


# ------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("ruleset_id", sorted(RULESET_FILES))
def test_questionnaire_is_valid_r4(ruleset_id: str) -> None:
    check_questionnaire(fhir.questionnaire(ruleset_for(ruleset_id)))


@pytest.mark.parametrize("with_ruleset", [True, False], ids=["typed", "untyped"])
@pytest.mark.parametrize("name", NAMES)
def test_response_is_valid_r4(name: str, with_ruleset: bool) -> None:
    record = load_record(name)
    ruleset = ruleset_for(record["ruleset"]["id"])
    qr = json.loads(render_record("fhir", record, ruleset if with_ruleset else None))
    if with_ruleset:
        check_response(qr, fhir.questionnaire(ruleset))
    else:
        QuestionnaireResponse.model_validate(qr)
    answered = {item["linkId"] for _, item in iter_items(qr["item"])}
    assert set(record["result"]["answers"]) <= answered


def test_response_content() -> None:
    record = load_record("minimal-provisional")
    qr = json.loads(render_record("fhir", record, ruleset_for("minimal-test")))
    items = {item["linkId"]: item for _, item in iter_items(qr["item"])}
    assert items["danger"]["extension"] == [
        {"url": fhir.EXT_DATA_ABSENT, "valueCode": "asked-declined"}]
    assert "answer" not in items["danger"]
    assert items["concerns"]["answer"] == [{"valueCoding": {
        "system": fhir.NONE_SYSTEM, "code": "none-of-these", "display": "None of these"}}]
    assert items["result.level"]["answer"][0]["valueCoding"]["code"] == "mid"
    assert items["result.provisional"]["answer"] == [{"valueBoolean": True}]
    assert items["result.possible-level"]["answer"][0]["valueCoding"]["display"] == "High"
    assert qr["extension"][1] == {"url": fhir.EXT_AMENDS, "valueIdentifier": {
        "system": f"{fhir.CANONICAL_BASE}/record", "value": "9"}}
    assert qr["subject"]["identifier"]["value"] == "C-<7>&co"
    assert qr["authored"] == "2026-03-05T09:30:00Z"


@pytest.mark.parametrize("qid", sorted(EXPRESSIBLE))
def test_skip_logic_becomes_enable_when(skip_rules: Ruleset, qid: str) -> None:
    _, expected, behavior = EXPRESSIBLE[qid]
    items = dict((i["linkId"], i) for _, i in iter_items(fhir.questionnaire(skip_rules)["item"]))
    item = items[qid]
    got = [(ew["question"], ew["operator"],
            ew.get("answerCoding", {}).get("code", next(
                (v for k, v in ew.items() if k.startswith("answer")), None)))
           for ew in item["enableWhen"]]
    assert got == expected
    assert item.get("enableBehavior") == behavior
    assert {"url": fhir.EXT_ASK_WHEN, "valueString": EXPRESSIBLE[qid][0]} in item["extension"]
    assert not any(e["url"] == fhir.EXT_ASK_WHEN_NOT_EXPRESSED for e in item["extension"])


@pytest.mark.parametrize("qid", sorted(NOT_EXPRESSIBLE))
def test_skip_logic_fhir_cannot_state_is_documented_not_dropped(skip_rules: Ruleset,
                                                                 qid: str) -> None:
    condition, why = NOT_EXPRESSIBLE[qid]
    items = dict((i["linkId"], i) for _, i in iter_items(fhir.questionnaire(skip_rules)["item"]))
    item = items[qid]
    assert "enableWhen" not in item and "enableBehavior" not in item
    notes = {e["url"]: e["valueString"] for e in item["extension"]}
    assert notes[fhir.EXT_ASK_WHEN] == condition
    assert why in notes[fhir.EXT_ASK_WHEN_NOT_EXPRESSED]
    assert notes[fhir.EXT_ASK_WHEN_NOT_EXPRESSED].startswith("always shown: ")


def test_skip_rules_questionnaire_is_valid(skip_rules: Ruleset) -> None:
    check_questionnaire(fhir.questionnaire(skip_rules))


@pytest.mark.parametrize("ruleset_id", ["skip", *sorted(RULESET_FILES)])
def test_enable_when_agrees_with_the_engine(ruleset_id: str, skip_rules: Ruleset) -> None:
    """For every answer combination of the questions a condition reads: with all of them
    answered, FHIR enables exactly the items iopscreen asks; with some unknown, FHIR never
    enables an item iopscreen skips (it may disable one iopscreen asks: see fhir.py)."""
    ruleset = skip_rules if ruleset_id == "skip" else ruleset_for(ruleset_id)
    items = {i["linkId"]: i for _, i in iter_items(fhir.questionnaire(ruleset)["item"])}
    checked = 0
    for qid, question in ruleset.questions.items():
        if question.ask_when is None or "enableWhen" not in items[qid]:
            continue
        node = fhir._inline(ruleset, question.ask_when.node)
        reads = sorted({n.id for n in walk(node) if isinstance(n, Name)})
        for combo in itertools.product(*(domain(ruleset, r) for r in reads)):
            raw = {r: v for r, v in zip(reads, combo) if v is not None}
            asked = applicable(ruleset, coerce_answers(ruleset, raw))[qid]
            qr = fhir.questionnaire_response(make_record(ruleset, raw), ruleset)
            given = {i["linkId"]: i.get("answer", []) for _, i in iter_items(qr["item"])}
            enabled = fhir_enabled(items[qid], given)
            if all(v not in (None, "declined") for v in combo):
                assert enabled == asked, f"{qid} with {raw}: FHIR {enabled}, iopscreen {asked}"
            else:
                assert asked or not enabled, f"{qid} with {raw}: FHIR asks, iopscreen skips"
            checked += 1
    assert checked >= 12  # every combination of every translated condition ran


def test_loinc_codes_only_for_the_published_shape() -> None:
    q = fhir.questionnaire(ruleset_for("iop-adult"))
    items = {i["linkId"]: i for _, i in iter_items(q["item"])}
    assert items["panel.phq9"]["code"] == [{"system": fhir.LOINC, "code": "44249-1"}]
    assert [i["linkId"] for i in items["panel.phq9"]["item"]] == [f"phq9_{n}" for n in range(1, 10)]
    assert items["score.phq9"]["code"] == [{"system": fhir.LOINC, "code": "44261-6"}]
    assert items["panel.gad7"]["code"][0]["code"] == "69737-5"
    assert items["score.gad7"]["code"][0]["code"] == "70274-6"
    assert items["panel.audit_c"]["code"][0]["code"] == "72109-2"
    assert "code" not in items["score.audit_c"] and "code" not in items["score.pcptsd5"]
    phq2 = Instrument("phq9", "PHQ-2", ("a", "b"), (), (), (3, 3))
    assert fhir.loinc_for(phq2) is None


def test_multi_without_a_none_choice_gets_an_exclusive_none_option() -> None:
    items = {i["linkId"]: i for _, i in
             iter_items(fhir.questionnaire(ruleset_for("minimal-test"))["item"])}
    last = items["concerns"]["answerOption"][-1]
    assert last["valueCoding"]["code"] == "none-of-these"
    assert last["extension"] == [{"url": fhir.EXT_OPTION_EXCLUSIVE, "valueBoolean": True}]
    default = {i["linkId"]: i for _, i in
               iter_items(fhir.questionnaire(ruleset_for("iop-adult"))["item"])}
    assert all("extension" not in o for o in default["concerns"]["answerOption"])


# ----------------------------------------------------------------------- Markdown and HTML


HOSTILE = '<script>alert("x")</script> [link](http://evil.example) # *bold* | a & b'


def hostile_record() -> dict[str, Any]:
    record = load_record("minimal-crisis")
    return {**record, "client": HOSTILE, "counselor": HOSTILE, "note": HOSTILE + "\n" + HOSTILE}


def test_html_escapes_everything_and_loads_nothing() -> None:
    page = render_record("html", hostile_record(), ruleset_for("minimal-test"))
    assert "<script" not in page and "alert(&quot;x&quot;)" in page
    assert "&lt;script&gt;" in page and "a &amp; b" in page
    for external in ("src=", "href=", "<link", "@import", "url(", "<img", "<iframe"):
        assert external not in page
    assert "Content-Security-Policy" in page and "@media print" in page


def test_markdown_escapes_everything() -> None:
    text = render_record("markdown", hostile_record(), ruleset_for("minimal-test"))
    page = MarkdownIt("commonmark").enable("table").render(text)
    assert "<script" not in page and "<a " not in page and "<em>bold" not in page
    assert page.count("<h1>") == 1
    assert "<table>" in page  # the scores table is a real table


@pytest.mark.parametrize("fmt", ["markdown", "html"])
def test_reports_say_what_the_result_says(fmt: str) -> None:
    record = load_record("default-crisis")
    result = record["result"]
    text = render_record(fmt, record, ruleset_for("iop-adult"))
    assert text.index("CRISIS - ACT NOW") < text.index("Recommendation" if fmt == "markdown"
                                                       else "Recommended level of care")
    # Engagement notes meant for IOP (their rule-set 'levels') are not shown for inpatient.
    iop_only = {r.id for r in ruleset_for("iop-adult").rules if r.levels == ("iop",)}
    assert result["level"] == "inpatient"
    # ... nor a flag that only they raised (the engagement flag)
    flags = [f for f in result["flags"] if not set(f["rules"]) <= iop_only]
    assert len(flags) < len(result["flags"])
    for needle in ("988", result["level_label"], result["ruleset"]["sha256"], "Screening aid",
                   *(f["label"] for f in flags),
                   *(r["title"] for r in result["fired_rules"] if r["id"] not in iop_only),
                   *(s["band_label"] for s in result["scores"] if s["band_label"])):
        assert needle.replace("&", "&amp;") in text or needle in text, needle
    hidden = [r["title"] for r in result["fired_rules"] if r["id"] in iop_only]
    hidden += [f["label"] for f in result["flags"] if f not in flags]
    assert hidden and not [t for t in hidden if t in text]
    assert "Final for the answers given" not in text and "Crisis: follow the crisis" in text
    severities = [f["severity"] for f in flags]
    positions = [text.index(f["label"]) for f in flags]
    assert severities[0] == "crisis" and positions == sorted(positions)


@pytest.mark.parametrize("fmt", ["markdown", "html", "fhir"])
def test_reports_without_the_rule_set_fall_back_to_ids(fmt: str) -> None:
    record = load_record("minimal-provisional")
    text = render_record(fmt, record)
    assert "high" in text and "danger" in text


def test_rule_set_must_be_the_one_that_made_the_record() -> None:
    record = load_record("default-iop")
    assert ruleset_matches(record, ruleset_for("iop-adult"))
    assert not ruleset_matches(record, ruleset_for("minimal-test"))
    with pytest.raises(ReportError, match="was made with rule set iop-adult"):
        render_record("html", record, ruleset_for("minimal-test"))
    changed = {**record, "ruleset": {**record["ruleset"], "sha256": "0" * 64}}
    with pytest.raises(ReportError) as err:
        render_record("fhir", changed, ruleset_for("iop-adult"))
    assert err.value.exit_code == 1 and "sha256 000000000000" in err.value.message


def test_malformed_records_and_formats_are_reported() -> None:
    record = load_record("default-iop")
    with pytest.raises(UsageError, match="unknown report format 'pdf'"):
        render_record("pdf", record)
    with pytest.raises(ReportError, match="lacks result"):
        render_record("markdown", {k: v for k, v in record.items() if k != "result"})
    with pytest.raises(ReportError, match="not an iopscreen screening result"):
        render_record("json", {**record, "result": None})
    with pytest.raises(ReportError, match="schema version 2"):
        render_record("fhir", {**record, "result": {**record["result"], "schema_version": 2}})


def test_reports_package_imports_no_terminal_code() -> None:
    package = Path(fhir.__file__).parent
    for path in package.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name.split(".")[0] not in ("typer", "rich", "questionary", "click"), \
                    f"{path.name} imports {name}"


# ------------------------------------------------------------------------------- CLI


def test_rules_export_prints_the_questionnaire(capsys: pytest.CaptureFixture[str]) -> None:
    code = run(["rules", "export", str(RULESET_FILES["minimal-test"]), "--format", "fhir"])
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    assert out == render_questionnaire(ruleset_for("minimal-test"))


def test_rules_export_writes_a_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "q.json"
    code = run(["rules", "export", str(RULESET_FILES["iop-adult"]), "-f", "fhir", "-o",
                str(target)])
    assert code == 0 and capsys.readouterr().out == ""
    assert target.read_text(encoding="utf-8") == (GOLDEN / "questionnaire-iop-adult.fhir.json"
                                                  ).read_text(encoding="utf-8")


def test_rules_export_refuses_an_unknown_format(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["rules", "export", "--format", "xml"]) == 2
    assert "xml" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["markdown", "html"])
def test_a_record_of_an_interview_finished_early_lists_what_was_not_asked(fmt: str) -> None:
    record = load_record("default-crisis")
    record = {**record, "result": {**record["result"], "not_asked": ["phq9_9", "gad7_1"]}}
    text = render_record(fmt, record, ruleset_for("iop-adult"))
    assert "Not asked" in text and "phq9_9" in text and "gad7_1" in text
    assert "finished early" in text
    assert "continue the interview" not in text.lower()

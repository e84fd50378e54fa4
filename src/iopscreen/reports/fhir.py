"""FHIR R4: a rule set as a ``Questionnaire``, a screening record as a ``QuestionnaireResponse``.

Both are plain dicts ready for ``json.dumps`` (deterministic: no clock, no random ids). Choices
made here, also stated in the README:

Layout
  One ``group`` item per rule-set section (linkId = section id), holding the section's questions
  (linkId = question id). An instrument whose items stand together in one section and that has a
  LOINC panel code below is wrapped in its own group (linkId ``panel.<instrument>``) carrying that
  code. Two read-only groups follow: ``scores`` (``score.<instrument>`` and
  ``score.<instrument>.band``) and ``result`` (level, provisional, possible level, deciding
  questions, flags, fired rules), so the recommendation travels with the answers.

Types
  yesno -> boolean; choice -> choice; multi -> choice with ``repeats``; integer -> integer (with
  the minValue/maxValue extensions); text -> string. ``open-choice`` is never used: the rule-set
  format has no "other, please say" answer. Codes live in one code system per question,
  ``<base>/CodeSystem/<rule set id>/q/<question id>`` (the codes 0-3 mean different things in
  different questions), versioned with the rule set. A multiple-choice question whose choices have
  no "none" gets an exclusive "None of these" option, because iopscreen tells "ticked nothing"
  apart from "not answered".

Declined answers
  A declined question is kept as an item with no answer and the core ``data-absent-reason``
  extension (``asked-declined``), so the chart can tell "declined" from "not asked". Answers that
  skip logic made not applicable are not in the result and not in the response.

Skip logic (``enableWhen``)
  Derived values are expanded into their expressions first, so ``any_substance_use`` becomes
  ``audit_c_1 > 0 or drug_use_times > 0``. Then a condition becomes ``enableWhen`` when it is one
  test of a question against a constant (``q``, ``not q``, ``q == code``, ``q > n``,
  ``q in [...]``, ``'code' in multi``, ``answered(q)``), or tests joined all by ``and``
  (``enableBehavior: all``) or all by ``or`` (``any``). A comparison of a choice question is
  turned into the list of codes it holds for, e.g. ``phq9_9 > 0`` into ``= 1``, ``= 2``, ``= 3``.
  Anything else (scores, ``declined()``, ``count()``, arithmetic, a mix of ``and`` and ``or``) is
  not translated: the item gets no ``enableWhen``, so it is always shown (asking too much is safer
  than hiding a safety question), and an ``ask-when-not-expressed`` extension says why. Every item
  with skip logic also carries the original condition in an ``ask-when`` extension.
  One difference remains by design of FHIR: iopscreen asks a question whose condition is unknown
  (because the question it depends on was declined); FHIR disables an item whose ``enableWhen``
  question has no answer.

The canonical base below is a placeholder under the reserved ``.example`` domain: a site sending
these resources to an EHR sets it to a base it owns (one constant, used everywhere).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Iterator, Mapping, Sequence

from ..answers import NONE_TOKENS
from ..expr import BoolOp, Call, Compare, Lit, Name, Node, Not, Seq
from ..ruleset.model import Instrument, Question, Ruleset
from .content import check_record

CANONICAL_BASE = "http://iopscreen.example/fhir"
LOINC = "http://loinc.org"
EXT_DATA_ABSENT = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
EXT_ITEM_CONTROL = "http://hl7.org/fhir/StructureDefinition/questionnaire-itemControl"
EXT_MIN_VALUE = "http://hl7.org/fhir/StructureDefinition/minValue"
EXT_MAX_VALUE = "http://hl7.org/fhir/StructureDefinition/maxValue"
EXT_OPTION_EXCLUSIVE = "http://hl7.org/fhir/StructureDefinition/questionnaire-optionExclusive"
EXT_ASK_WHEN = f"{CANONICAL_BASE}/StructureDefinition/ask-when"
EXT_ASK_WHEN_NOT_EXPRESSED = f"{CANONICAL_BASE}/StructureDefinition/ask-when-not-expressed"
EXT_RECORD_VERSION = f"{CANONICAL_BASE}/StructureDefinition/record-version"
EXT_AMENDS = f"{CANONICAL_BASE}/StructureDefinition/amends"
ITEM_CONTROL_SYSTEM = "http://hl7.org/fhir/questionnaire-item-control"
NONE_SYSTEM = f"{CANONICAL_BASE}/CodeSystem/answer"
NONE_CODE = "none-of-these"

QUESTION_TYPES = {"yesno": "boolean", "choice": "choice", "multi": "choice",
                  "integer": "integer", "text": "string"}


# LOINC codes by instrument id. The rule set has no code field, so the mapping lives here, and it
# applies only when the instrument has the published instrument's item count and maximum score
# (a rule set may use the id 'phq9' for something else, such as a PHQ-2). Our items are reworded
# with the same meaning and scoring, which LOINC's panel and total-score codes still describe.
#   44249-1  PHQ-9 quick depression assessment panel            (sure)
#   44261-6  PHQ-9 total score                                  (sure)
#   69737-5  GAD-7 panel                                        (sure)
#   70274-6  GAD-7 total score                                  (sure)
#   72109-2  AUDIT-C panel                                      (fairly sure)
# Left out until a clinical lead checks them against LOINC: the AUDIT-C total score (75626-2 to
# our knowledge), PC-PTSD-5, and the per-item codes of each panel.
@dataclasses.dataclass(frozen=True)
class Loinc:
    items: int
    max_score: int
    panel: str | None = None
    total: str | None = None


INSTRUMENT_LOINC = {
    "phq9": Loinc(items=9, max_score=27, panel="44249-1", total="44261-6"),
    "gad7": Loinc(items=7, max_score=21, panel="69737-5", total="70274-6"),
    "audit_c": Loinc(items=3, max_score=12, panel="72109-2"),
}


def loinc_for(instrument: Instrument) -> Loinc | None:
    """The LOINC codes of ``instrument``, or None when its shape is not the published one."""
    codes = INSTRUMENT_LOINC.get(instrument.id)
    if codes is None or len(instrument.items) != codes.items:
        return None
    return codes if instrument.max_score == codes.max_score else None


# ------------------------------------------------------------------------------ naming


def questionnaire_url(ruleset_id: str) -> str:
    return f"{CANONICAL_BASE}/Questionnaire/{ruleset_id}"


def code_system(ruleset_id: str, *parts: str) -> str:
    """The code system of one kind of code of a rule set (``q/<question>``, ``level`` ...)."""
    return "/".join([CANONICAL_BASE, "CodeSystem", ruleset_id, *parts])


def resource_id(text: str) -> str:
    """A FHIR id ([A-Za-z0-9-.]{1,64}) made from ``text``."""
    return re.sub(r"[^A-Za-z0-9.-]", "-", text)[:64] or "x"


def code_text(code: Any) -> str:
    """A choice code as a FHIR code string (True -> 'true', 2 -> '2')."""
    if isinstance(code, bool):
        return "true" if code else "false"
    return str(code)


def _coding(system: str, code: Any, display: str = "", version: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"system": system}
    if version:
        out["version"] = version
    out["code"] = code_text(code)
    if display:
        out["display"] = display
    return out


def _text(value: str) -> str:
    return " ".join(value.split())


# ------------------------------------------------------------------------------ layout


@dataclasses.dataclass(frozen=True)
class _Panel:
    instrument: Instrument
    code: str
    questions: tuple[str, ...]


def _layout(ruleset: Ruleset) -> Iterator[tuple[Any, list[str | _Panel]]]:
    """Each section with its entries: question ids, and LOINC panels wrapping an instrument."""
    panels: dict[str, _Panel] = {}
    for inst in ruleset.instruments:
        codes = loinc_for(inst)
        if codes is not None and codes.panel:
            panels[inst.items[0]] = _Panel(inst, codes.panel, inst.items)
    for section in ruleset.sections:
        entries: list[str | _Panel] = []
        qs = list(section.questions)
        i = 0
        while i < len(qs):
            panel = panels.get(qs[i])
            if panel is not None and tuple(qs[i:i + len(panel.questions)]) == panel.questions:
                entries.append(panel)
                i += len(panel.questions)
            else:
                entries.append(qs[i])
                i += 1
        yield section, entries


def _has_none_choice(question: Question) -> bool:
    return any(code_text(c.code).casefold() in NONE_TOKENS or c.label.strip().casefold()
               in NONE_TOKENS for c in question.choices)


def _none_coding() -> dict[str, Any]:
    return _coding(NONE_SYSTEM, NONE_CODE, "None of these")


def _score_type(instrument: Instrument, ruleset: Ruleset) -> str:
    codes = [c.code for q in instrument.items for c in ruleset.questions[q].choices]
    return "integer" if all(isinstance(c, int) for c in codes) else "decimal"


# ------------------------------------------------------------------------- Questionnaire


def questionnaire(ruleset: Ruleset) -> dict[str, Any]:
    """The rule set as a FHIR R4 Questionnaire (a dict)."""
    items: list[dict[str, Any]] = []
    for section, entries in _layout(ruleset):
        children = []
        for entry in entries:
            if isinstance(entry, _Panel):
                children.append({
                    "linkId": f"panel.{entry.instrument.id}",
                    "code": [_coding(LOINC, entry.code)],
                    "text": _text(entry.instrument.title),
                    "type": "group",
                    "item": [_question_item(ruleset, ruleset.questions[q]) for q in entry.questions],
                })
            else:
                children.append(_question_item(ruleset, ruleset.questions[entry]))
        items.append({"linkId": section.id, "text": _text(section.title), "type": "group",
                      "item": children})
    if ruleset.instruments:
        items.append(_scores_group(ruleset))
    items.append(_result_group(ruleset))
    licences = [f"{_text(i.title)}: {_text(i.license)}" for i in ruleset.instruments if i.license]
    out: dict[str, Any] = {
        "resourceType": "Questionnaire",
        "id": resource_id(ruleset.id),
        "url": questionnaire_url(ruleset.id),
        "version": ruleset.version,
        "name": _name(ruleset.id),
        "title": _text(ruleset.title),
        "status": "active",
        "subjectType": ["Patient"],
    }
    if ruleset.population:
        out["description"] = _text(ruleset.population)
    out["purpose"] = _text(ruleset.disclaimer)
    if licences:
        out["copyright"] = "\n\n".join(licences)
    if ruleset.effective:
        out["effectivePeriod"] = {"start": str(ruleset.effective)}
    out["item"] = items
    return out


def _name(ruleset_id: str) -> str:
    """A computer-friendly name (``iop-adult`` -> ``IopAdult``), as FHIR's que-0 asks."""
    words = re.split(r"[^A-Za-z0-9]+", ruleset_id)
    name = "".join(w[:1].upper() + w[1:] for w in words if w)
    return name if name[:1].isalpha() else "Q" + name


def _question_item(ruleset: Ruleset, q: Question) -> dict[str, Any]:
    item: dict[str, Any] = {}
    extensions: list[dict[str, Any]] = []
    if q.type == "integer":
        if q.min is not None:
            extensions.append({"url": EXT_MIN_VALUE, "valueInteger": q.min})
        if q.max is not None:
            extensions.append({"url": EXT_MAX_VALUE, "valueInteger": q.max})
    enable: list[dict[str, Any]] = []
    behavior = None
    if q.ask_when is not None:
        extensions.append({"url": EXT_ASK_WHEN, "valueString": q.ask_when.text})
        try:
            enable, behavior = enable_when(ruleset, q.ask_when.node)
        except NotExpressible as exc:
            extensions.append({"url": EXT_ASK_WHEN_NOT_EXPRESSED,
                               "valueString": f"always shown: {exc.reason}"})
    if extensions:
        item["extension"] = extensions
    item.update({"linkId": q.id, "text": _text(q.text), "type": QUESTION_TYPES[q.type]})
    if enable:
        item["enableWhen"] = enable
        if behavior:
            item["enableBehavior"] = behavior
    item["required"] = q.required
    if q.type == "multi":
        item["repeats"] = True
    if q.choices:
        system = code_system(ruleset.id, "q", q.id)
        item["answerOption"] = [{"valueCoding": _coding(system, c.code, _text(c.label),
                                                        ruleset.version)} for c in q.choices]
        if q.type == "multi" and not _has_none_choice(q):
            item["answerOption"].append({
                "extension": [{"url": EXT_OPTION_EXCLUSIVE, "valueBoolean": True}],
                "valueCoding": _none_coding()})
    if q.help.strip():
        item["item"] = [{
            "extension": [{"url": EXT_ITEM_CONTROL, "valueCodeableConcept": {
                "coding": [{"system": ITEM_CONTROL_SYSTEM, "code": "help", "display": "Help-Button"}]
            }}],
            "linkId": f"{q.id}.help", "text": _text(q.help), "type": "display"}]
    return item


def _options(system: str, version: str, pairs: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    return [{"valueCoding": _coding(system, code, _text(label), version)} for code, label in pairs]


def _scores_group(ruleset: Ruleset) -> dict[str, Any]:
    items: list[dict[str, Any]] = []
    for inst in ruleset.instruments:
        codes = loinc_for(inst)
        score: dict[str, Any] = {"linkId": f"score.{inst.id}"}
        if codes is not None and codes.total:
            score["code"] = [_coding(LOINC, codes.total)]
        score.update({"text": f"{_text(inst.title)}: score (0-{inst.max_score})",
                      "type": _score_type(inst, ruleset), "readOnly": True})
        items.append(score)
        items.append({"linkId": f"score.{inst.id}.band", "text": f"{_text(inst.title)}: band",
                      "type": "choice", "readOnly": True,
                      "answerOption": _options(code_system(ruleset.id, "band", inst.id),
                                               ruleset.version,
                                               [(b.id, b.label) for b in inst.bands])})
    return {"linkId": "scores", "text": "Scores (calculated by iopscreen)", "type": "group",
            "item": items}


def _result_group(ruleset: Ruleset) -> dict[str, Any]:
    rsid, version = ruleset.id, ruleset.version
    levels = _options(code_system(rsid, "level"), version,
                      [(lv.id, lv.label) for lv in ruleset.levels])
    items: list[dict[str, Any]] = [
        {"linkId": "result.level", "text": "Recommended level of care", "type": "choice",
         "readOnly": True, "answerOption": levels},
        {"linkId": "result.provisional",
         "text": "Provisional: unanswered or declined questions could change the result",
         "type": "boolean", "readOnly": True},
        {"linkId": "result.possible-level",
         "text": "Level the unanswered questions could raise it to", "type": "choice",
         "readOnly": True, "answerOption": levels},
        {"linkId": "result.deciding-questions",
         "text": "Questions that would decide a provisional result (question ids)",
         "type": "string", "repeats": True, "readOnly": True},
    ]
    if ruleset.flags:
        items.append({"linkId": "result.flags", "text": "Flags (most severe first)",
                      "type": "choice", "repeats": True, "readOnly": True,
                      "answerOption": _options(code_system(rsid, "flag"), version,
                                               [(f.id, f.label) for f in ruleset.flags.values()])})
    items.append({"linkId": "result.fired-rules", "text": "Criteria met", "type": "choice",
                  "repeats": True, "readOnly": True,
                  "answerOption": _options(code_system(rsid, "rule"), version,
                                           [(r.id, r.title) for r in ruleset.rules])})
    items.append({"linkId": "result.disclaimer", "text": _text(ruleset.disclaimer),
                  "type": "display"})
    return {"linkId": "result", "text": "Screening result (calculated by iopscreen)",
            "type": "group", "item": items}


# ------------------------------------------------------------------------------ enableWhen


class NotExpressible(Exception):
    """A skip-logic condition that FHIR ``enableWhen`` cannot state; ``reason`` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


_NEGATE = {"==": "!=", "!=": "==", "<": ">=", ">=": "<", ">": "<=", "<=": ">"}
_MIRROR = {"==": "==", "!=": "!=", "<": ">", ">": "<", "<=": ">=", ">=": "<="}
_FHIR_OP = {"==": "=", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


def enable_when(ruleset: Ruleset, node: Node) -> tuple[list[dict[str, Any]], str | None]:
    """Translate a checked condition into ``(enableWhen list, enableBehavior or None)``.

    Raises :class:`NotExpressible` when FHIR cannot state the condition exactly.
    """
    return _EnableWhen(ruleset).structure(_inline(ruleset, node), negated=False)


def _inline(ruleset: Ruleset, node: Node) -> Node:
    """Replace each derived value by its (checked) expression, recursively."""
    if isinstance(node, Name):
        derived = next((d for d in ruleset.derived if d.id == node.id), None)
        return node if derived is None else _inline(ruleset, derived.expr.node)
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        if isinstance(value, Node):
            changes[f.name] = _inline(ruleset, value)
        elif isinstance(value, tuple) and value and isinstance(value[0], Node):
            changes[f.name] = tuple(_inline(ruleset, v) for v in value)
    return dataclasses.replace(node, **changes) if changes else node


class _EnableWhen:
    def __init__(self, ruleset: Ruleset) -> None:
        self.rs = ruleset

    def structure(self, node: Node, negated: bool) -> tuple[list[dict[str, Any]], str | None]:
        if isinstance(node, Not):
            return self.structure(node.operand, not negated)
        if isinstance(node, BoolOp):
            op = node.op if not negated else {"and": "or", "or": "and"}[node.op]
            behavior = "all" if op == "and" else "any"
            entries: list[dict[str, Any]] = []
            for item in node.items:
                sub, sub_behavior = self.structure(item, negated)
                if sub_behavior is not None and sub_behavior != behavior:
                    raise NotExpressible("it mixes 'and' and 'or', and enableWhen has one "
                                         "behaviour (all or any) per item")
                entries.extend(sub)
            return entries, behavior if len(entries) > 1 else None
        return self.atom(node, negated)

    def atom(self, node: Node, negated: bool) -> tuple[list[dict[str, Any]], str | None]:
        if isinstance(node, Name):
            q = self.question(node)
            return [_entry(q.id, "=", "answerBoolean", not negated)], None
        if isinstance(node, Call) and node.func == "answered":
            q = self.question(node.args[0])
            return [_entry(q.id, "exists", "answerBoolean", not negated)], None
        if isinstance(node, Call) and node.func == "declined":
            raise NotExpressible("declined() has no FHIR equivalent: a declined item simply "
                                 "has no answer")
        if isinstance(node, Compare):
            return self.compare(node, negated)
        raise NotExpressible(f"FHIR enableWhen cannot state {_describe(node)}")

    def question(self, node: Node) -> Question:
        if not isinstance(node, Name):
            raise NotExpressible(f"FHIR enableWhen cannot state {_describe(node)}")
        sym = self.rs.symbols.get(node.id)
        if sym is None or sym.role != "question":
            role = sym.role if sym is not None else "value"
            raise NotExpressible(f"it reads the {role} '{node.id}', and enableWhen can only test "
                                 "the answer to a question")
        return self.rs.questions[node.id]

    def compare(self, node: Compare, negated: bool) -> tuple[list[dict[str, Any]], str | None]:
        op, left, right = node.op, node.left, node.right
        if op in ("in", "notin"):
            excluded = (op == "notin") != negated
            if isinstance(left, Lit) and isinstance(right, Name):  # 'code' in multi
                q = self.question(right)
                if excluded:
                    raise NotExpressible("FHIR cannot test that a choice was NOT ticked "
                                         "(enableWhen '!=' holds when any other choice is)")
                return [_entry(q.id, "=", "answerCoding", self.coding(q, left.value))], None
            if isinstance(left, Name) and isinstance(right, Seq):  # q in [a, b]
                q = self.question(left)
                values = [item.value for item in right.items if isinstance(item, Lit)]
                return self.one_of(q, values, excluded)
            raise NotExpressible(f"FHIR enableWhen cannot state {_describe(node)}")
        if isinstance(left, Lit) and isinstance(right, Name):
            left, right, op = right, left, _MIRROR[op]
        if not isinstance(right, Lit):
            raise NotExpressible("it compares two computed values; enableWhen compares one "
                                 "question with a constant")
        if not isinstance(left, Name):
            raise NotExpressible(f"FHIR enableWhen cannot state {_describe(left)}")
        q = self.question(left)
        if negated:
            op = _NEGATE[op]
        value = right.value
        if q.type == "yesno":
            return [_entry(q.id, "=", "answerBoolean", value if op == "==" else not value)], None
        if q.type == "choice":
            holds = [c.code for c in q.choices if _holds(c.code, op, value)]
            return self.codes(q, holds)
        if q.type == "integer":
            if isinstance(value, float) and not value.is_integer():
                raise NotExpressible("it compares a whole-number question with a fraction")
            return [_entry(q.id, _FHIR_OP[op], "answerInteger", int(value))], None
        raise NotExpressible(f"FHIR enableWhen cannot state {_describe(node)}")

    def one_of(self, q: Question, values: list[Any], excluded: bool
               ) -> tuple[list[dict[str, Any]], str | None]:
        if q.type == "choice":
            holds = [c.code for c in q.choices if (c.code in values) != excluded]
            return self.codes(q, holds)
        if q.type == "integer" and all(isinstance(v, int) for v in values):
            op = "!=" if excluded else "="
            entries = [_entry(q.id, op, "answerInteger", v) for v in values]
            return entries, (("all" if excluded else "any") if len(entries) > 1 else None)
        raise NotExpressible(f"FHIR enableWhen cannot test '{q.id}' against a list")

    def codes(self, q: Question, holds: list[Any]) -> tuple[list[dict[str, Any]], str | None]:
        if not holds:
            raise NotExpressible(f"no answer to '{q.id}' satisfies it")
        if len(holds) == len(q.choices):
            return [_entry(q.id, "exists", "answerBoolean", True)], None
        entries = [_entry(q.id, "=", "answerCoding", self.coding(q, c)) for c in holds]
        return entries, "any" if len(entries) > 1 else None

    def coding(self, q: Question, code: Any) -> dict[str, Any]:
        return _coding(code_system(self.rs.id, "q", q.id), code, "", self.rs.version)


def _entry(question: str, operator: str, key: str, value: Any) -> dict[str, Any]:
    return {"question": question, "operator": operator, key: value}


def _holds(code: Any, op: str, value: Any) -> bool:
    if op in ("==", "!="):
        same = code == value and isinstance(code, bool) == isinstance(value, bool)
        return same == (op == "==")
    if isinstance(code, bool) or not isinstance(code, (int, float)):
        return False
    return bool({"<": code < value, "<=": code <= value, ">": code > value,
                 ">=": code >= value}[op])


def _describe(node: Node) -> str:
    names = {"Call": "a function call", "Arith": "arithmetic", "IfElse": "an if-else value",
             "Lit": "a constant", "Compare": "this comparison", "Neg": "arithmetic",
             "Name": "this value", "Seq": "a list"}
    what = names.get(type(node).__name__, "this expression")
    if isinstance(node, Call):
        what = f"the function {node.func.replace('count_set', 'count')}()"
    return what


# --------------------------------------------------------------------- QuestionnaireResponse


def questionnaire_response(record: Mapping[str, Any],
                           ruleset: Ruleset | None = None) -> dict[str, Any]:
    """A screening record as a FHIR R4 QuestionnaireResponse (a dict).

    With ``ruleset`` (the one that made the record) the items mirror :func:`questionnaire`'s
    groups and answers are typed by question type. Without it, answers are flat items typed from
    their JSON values (true/false boolean, whole numbers integer, lists codings, other text
    string): a choice code may then show as an integer or a string.
    Raises :class:`iopscreen.reports.content.ReportError` for a malformed record.
    """
    check_record(record, ruleset)
    result = record["result"]
    made_by = record["ruleset"]
    rsid, version = str(made_by["id"]), str(made_by["version"])
    answers: Mapping[str, Any] = result.get("answers") or {}
    extensions: list[dict[str, Any]] = [{"url": EXT_RECORD_VERSION,
                                         "valueInteger": int(record["version"])}]
    if record.get("amends") is not None:
        extensions.append({"url": EXT_AMENDS, "valueIdentifier": _record_identifier(
            record["amends"])})
    out: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "id": resource_id(f"iopscreen-record-{record['id']}"),
        "meta": {"tag": [_coding(f"{CANONICAL_BASE}/CodeSystem/record-source",
                                 str(record["source"]))]},
        "extension": extensions,
        "identifier": _record_identifier(record["id"]),
        "questionnaire": f"{questionnaire_url(rsid)}|{version}",
        "status": "completed",
    }
    if record["client"]:
        out["subject"] = {"identifier": {"system": f"{CANONICAL_BASE}/client",
                                         "value": str(record["client"])}}
    out["authored"] = str(record["created_utc"])
    if record["counselor"]:
        out["author"] = {"display": str(record["counselor"])}
    if ruleset is not None:
        items = _answer_groups(ruleset, answers)
    else:
        items = [_answer_item_untyped(rsid, version, qid, value) for qid, value in answers.items()]
    items += _result_items(record, rsid, version, ruleset)
    out["item"] = items
    return out


def _record_identifier(record_id: Any) -> dict[str, Any]:
    return {"system": f"{CANONICAL_BASE}/record", "value": str(record_id)}


def _declined(qid: str, text: str) -> dict[str, Any]:
    item: dict[str, Any] = {"extension": [{"url": EXT_DATA_ABSENT, "valueCode": "asked-declined"}],
                            "linkId": qid}
    if text:
        item["text"] = text
    return item


def _answer_groups(ruleset: Ruleset, answers: Mapping[str, Any]) -> list[dict[str, Any]]:
    groups = []
    for section, entries in _layout(ruleset):
        children = []
        for entry in entries:
            if isinstance(entry, _Panel):
                inner = [_answer_item(ruleset, ruleset.questions[q], answers[q])
                         for q in entry.questions if q in answers]
                if inner:
                    children.append({"linkId": f"panel.{entry.instrument.id}",
                                     "text": _text(entry.instrument.title), "item": inner})
            elif entry in answers:
                children.append(_answer_item(ruleset, ruleset.questions[entry], answers[entry]))
        if children:
            groups.append({"linkId": section.id, "text": _text(section.title), "item": children})
    return groups


def _answer_item(ruleset: Ruleset, q: Question, value: Any) -> dict[str, Any]:
    text = _text(q.text)
    if value == "declined" or value is None:  # to_plain writes "declined" for every type
        return _declined(q.id, text)
    system = code_system(ruleset.id, "q", q.id)
    if q.type == "yesno":
        answer: list[dict[str, Any]] = [{"valueBoolean": bool(value)}]
    elif q.type == "choice":
        answer = [{"valueCoding": _coding(system, value, _text(q.label_of(value)),
                                          ruleset.version)}]
    elif q.type == "multi":
        codes = [c.code for c in q.choices if c.code in set(value)]
        answer = [{"valueCoding": _coding(system, c, _text(q.label_of(c)), ruleset.version)}
                  for c in codes]
        if not answer:
            none = [c for c in q.choices if code_text(c.code).casefold() in NONE_TOKENS
                    or c.label.strip().casefold() in NONE_TOKENS]
            answer = [{"valueCoding": (_coding(system, none[0].code, _text(none[0].label),
                                               ruleset.version) if none else _none_coding())}]
    elif q.type == "integer":
        answer = [{"valueInteger": int(value)}]
    else:
        answer = [{"valueString": str(value)}]
    return {"linkId": q.id, "text": text, "answer": answer}


def _answer_item_untyped(rsid: str, version: str, qid: str, value: Any) -> dict[str, Any]:
    if value == "declined" or value is None:
        return _declined(qid, "")
    if isinstance(value, bool):
        answer: list[dict[str, Any]] = [{"valueBoolean": value}]
    elif isinstance(value, int):
        answer = [{"valueInteger": value}]
    elif isinstance(value, float):
        answer = [{"valueDecimal": value}]
    elif isinstance(value, list):
        system = code_system(rsid, "q", qid)
        answer = [{"valueCoding": _coding(system, c, "", version)} for c in value] or [
            {"valueCoding": _none_coding()}]
    else:
        answer = [{"valueString": str(value)}]
    return {"linkId": qid, "answer": answer}


def _result_items(record: Mapping[str, Any], rsid: str, version: str,
                  ruleset: Ruleset | None) -> list[dict[str, Any]]:
    result = record["result"]
    levels = {result["level"]: result["level_label"]}
    if ruleset is not None:
        levels.update({lv.id: lv.label for lv in ruleset.levels})
    score_items: list[dict[str, Any]] = []
    for s in result["scores"]:
        if s["score"] is not None:
            value = s["score"]
            key = "valueInteger" if isinstance(value, int) else "valueDecimal"
            score_items.append({"linkId": f"score.{s['id']}", "text": f"{_text(s['title'])}: "
                                f"score (0-{s['max']})", "answer": [{key: value}]})
        if s["band"] is not None:
            score_items.append({"linkId": f"score.{s['id']}.band",
                                "text": f"{_text(s['title'])}: band",
                                "answer": [{"valueCoding": _coding(
                                    code_system(rsid, "band", s["id"]), s["band"],
                                    _text(s["band_label"] or ""), version)}]})
    level_system = code_system(rsid, "level")
    items: list[dict[str, Any]] = [
        {"linkId": "result.level", "text": "Recommended level of care",
         "answer": [{"valueCoding": _coding(level_system, result["level"],
                                            _text(result["level_label"]), version)}]},
        {"linkId": "result.provisional",
         "text": "Provisional: unanswered or declined questions could change the result",
         "answer": [{"valueBoolean": bool(result["provisional"])}]},
    ]
    possible = result["possible_level"]
    if possible:
        items.append({"linkId": "result.possible-level",
                      "text": "Level the unanswered questions could raise it to",
                      "answer": [{"valueCoding": _coding(level_system, possible,
                                                         _text(levels.get(possible, "")),
                                                         version)}]})
    if result["deciding_questions"]:
        items.append({"linkId": "result.deciding-questions",
                      "text": "Questions that would decide a provisional result (question ids)",
                      "answer": [{"valueString": q} for q in result["deciding_questions"]]})
    if result["flags"]:
        items.append({"linkId": "result.flags", "text": "Flags (most severe first)",
                      "answer": [{"valueCoding": _coding(code_system(rsid, "flag"), f["id"],
                                                         _text(f["label"]), version)}
                                 for f in result["flags"]]})
    if result["fired_rules"]:
        items.append({"linkId": "result.fired-rules", "text": "Criteria met",
                      "answer": [{"valueCoding": _coding(code_system(rsid, "rule"), r["id"],
                                                         _text(r["title"]), version)}
                                 for r in result["fired_rules"]]})
    out = []
    if score_items:
        out.append({"linkId": "scores", "text": "Scores (calculated by iopscreen)",
                    "item": score_items})
    out.append({"linkId": "result", "text": "Screening result (calculated by iopscreen)",
                "item": items})
    return out

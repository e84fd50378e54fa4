"""What a screening report says, decided once for every format.

:func:`collect` reads a screening record (see :func:`iopscreen.reports.render_record`) and returns
a :class:`Report`: plain strings in reading order, with no markup. The Markdown and HTML renderers
only lay it out, so both formats always say the same thing.

The record alone is enough for a report: ids stand in for the labels only the rule set knows (a
possible level's label, a pending rule's flags). With the rule set that made the record, the report
also shows the level's description, the crisis protocol and resources, and the text of the
questions that would decide a provisional result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ..engine import Evidence, flag_shown, hidden_advice  # as the engine puts them in a result
from ..errors import IopscreenError
from ..ruleset.model import SEVERITIES, Ruleset

RESULT_SCHEMA = "iopscreen.screening"
RESULT_SCHEMA_VERSION = 1
RECORD_KEYS = ("id", "version", "client", "counselor", "created_utc", "source", "ruleset",
               "result")
SOURCES = {"interview": "interview", "evaluate": "answers file (evaluate)",
           "batch": "batch file"}


class ReportError(IopscreenError):
    """A record cannot be reported: a key is missing, or the rule set given is not its own."""

    exit_code = 1


@dataclass(frozen=True)
class Crisis:
    title: str
    because: tuple[str, ...]
    protocol: tuple[str, ...]
    resources: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class FlagLine:
    severity: str
    label: str
    rules: tuple[str, ...]


@dataclass(frozen=True)
class Reason:
    """One fired rule: why it fired, from which values, on whose authority."""

    id: str
    title: str
    effect: str  # "Minimum level: IOP. Flags: Crisis." or ""
    reason: str
    evidence: tuple[Evidence, ...]
    sources: tuple[str, ...]


@dataclass(frozen=True)
class Pending:
    id: str
    title: str
    effect: str
    deciding: tuple[tuple[str, str], ...]  # (question id, question text or "")


@dataclass(frozen=True)
class ScoreLine:
    id: str
    title: str
    score: str  # "12 / 27" or "unknown"
    band: str
    missing: tuple[str, ...]


@dataclass(frozen=True)
class TalkingPoint:
    myth: str
    facts: str
    sources: tuple[str, ...]


@dataclass(frozen=True)
class Report:
    """Everything a report shows, in reading order, as plain text."""

    heading: str
    meta: tuple[tuple[str, str], ...]
    crisis: Crisis | None
    level_id: str
    level_label: str
    level_description: str
    level_sources: tuple[str, ...]  # short titles
    provisional: bool
    status: str  # the sentence under the level: final, or what a provisional result could become
    deciding: tuple[tuple[str, str], ...]
    flags: tuple[FlagLine, ...]
    reasons: tuple[Reason, ...]
    no_reason: str  # said under "Why" when no clinical rule fired
    pending: tuple[Pending, ...]
    scores: tuple[ScoreLine, ...]
    talking_points: tuple[TalkingPoint, ...]
    engagement: tuple[Reason, ...]
    note: str
    ignored: tuple[str, ...]
    not_asked: tuple[tuple[str, str], ...]  # an interview finished early: (id, question text)
    disclaimer: str
    ruleset_line: str
    ruleset_sha256: str


def check_record(record: Mapping[str, Any], ruleset: Ruleset | None = None) -> None:
    """Raise :class:`ReportError` unless ``record`` can be reported (with ``ruleset``, if given).

    The rule set, when given, must be the very one that made the record (same id and sha256):
    labels and codes from another version could misstate what was asked.
    """
    if not isinstance(record, Mapping):
        raise ReportError("a screening record must be a mapping")
    missing = [k for k in RECORD_KEYS if k not in record]
    if missing:
        raise ReportError(f"record {record.get('id', '?')} lacks {', '.join(missing)}",
                          hint="pass a record as the record store returns it")
    result = record["result"]
    if not isinstance(result, Mapping) or result.get("schema") != RESULT_SCHEMA:
        raise ReportError(f"record {record['id']}: 'result' is not an iopscreen screening result",
                          hint="it must be Screening.to_json() (schema 'iopscreen.screening')")
    if result.get("schema_version") != RESULT_SCHEMA_VERSION:
        raise ReportError(f"record {record['id']}: result schema version "
                          f"{result.get('schema_version')!r} is not supported "
                          f"(this iopscreen reads version {RESULT_SCHEMA_VERSION})")
    if ruleset is None:
        return
    made_by = record["ruleset"]
    if ruleset.id != made_by.get("id") or ruleset.content_hash != made_by.get("sha256"):
        raise ReportError(
            f"record {record['id']} was made with rule set {made_by.get('id')} "
            f"{made_by.get('version')} (sha256 {str(made_by.get('sha256'))[:12]}), not with "
            f"{ruleset.id} {ruleset.version} (sha256 {ruleset.content_hash[:12]})",
            hint="pass the rule-set file that made the record, or no rule set (the report then "
                 "shows ids where it would show labels)")


def ruleset_matches(record: Mapping[str, Any], ruleset: Ruleset) -> bool:
    """Whether ``ruleset`` is the one that made ``record`` (same id and sha256)."""
    made_by = record.get("ruleset") or {}
    return ruleset.id == made_by.get("id") and ruleset.content_hash == made_by.get("sha256")


def number(value: float | int) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


class _Labels:
    """Labels for ids, from the rule set when there is one, else from the result itself."""

    def __init__(self, result: Mapping[str, Any], ruleset: Ruleset | None) -> None:
        self.rs = ruleset
        self.flags: dict[str, str] = {f["id"]: f["label"] for f in result["flags"]}
        if ruleset is not None:
            for flag in ruleset.flags.values():
                self.flags.setdefault(flag.id, flag.label)
        self.levels: dict[str, str] = {result["level"]: result["level_label"]}
        if ruleset is not None:
            self.levels.update({lv.id: lv.label for lv in ruleset.levels})

    def level(self, level_id: str) -> str:
        return self.levels.get(level_id, level_id)

    def flag(self, flag_id: str) -> str:
        return self.flags.get(flag_id, flag_id)

    def question(self, qid: str) -> str:
        if self.rs is None or qid not in self.rs.questions:
            return ""
        return " ".join(self.rs.questions[qid].text.split())

    def effect(self, min_level: str | None, flags: Sequence[str], verb: str) -> str:
        parts = []
        if min_level:
            parts.append(f"{verb} level: {self.level(min_level)}.")
        if flags:
            parts.append(f"Flag{'s' if len(flags) > 1 else ''}: "
                         f"{', '.join(self.flag(f) for f in flags)}.")
        return " ".join(parts)


def collect(record: Mapping[str, Any], ruleset: Ruleset | None = None) -> Report:
    """Decide what the report of ``record`` says. Raises :class:`ReportError` (see check_record)."""
    check_record(record, ruleset)
    result = record["result"]
    labels = _Labels(result, ruleset)
    fired = [_reason(r, labels, ruleset) for r in result["fired_rules"]]
    clinical = tuple(r for r, raw in zip(fired, result["fired_rules"])
                     if raw["category"] != "engagement")
    level_id = result["level"]
    # Only the notes and talking points meant for this level: by the levels the result
    # carries, else (a record saved before results carried them) by the rule set's.
    rule_levels = {r.id: r.levels for r in ruleset.rules} if ruleset else {}
    misc_levels = {m.id: m.levels for m in ruleset.misconceptions} if ruleset else {}
    hidden_notes = hidden_advice(level_id, (
        (r["id"], r.get("levels") or rule_levels.get(r["id"], ()))
        for r in result["fired_rules"] if r["category"] == "engagement"))
    hidden_talk = hidden_advice(level_id, (
        (m["id"], m.get("levels") or misc_levels.get(m["id"], ()))
        for m in result["misconceptions"]))
    engagement = tuple(r for r, raw in zip(fired, result["fired_rules"])
                       if raw["category"] == "engagement" and raw["id"] not in hidden_notes)
    level = (ruleset.level(level_id) if ruleset is not None
             and any(lv.id == level_id for lv in ruleset.levels) else None)
    return Report(
        heading=f"Level-of-care screening: record {record['id']}",
        meta=_meta(record),
        crisis=_crisis(result, ruleset),
        level_id=level_id,
        level_label=result["level_label"],
        level_description=" ".join(level.description.split()) if level else "",
        level_sources=ruleset.source_titles(level.sources) if ruleset and level else (),
        provisional=bool(result["provisional"]),
        status=_status(result, labels),
        deciding=tuple((q, labels.question(q)) for q in result["deciding_questions"]),
        flags=tuple(FlagLine(f["severity"], f["label"], tuple(f["rules"]))
                    for f in sorted(result["flags"], key=lambda f: SEVERITIES.index(f["severity"]))
                    if flag_shown(f["rules"], hidden_notes)),
        reasons=clinical,
        no_reason=("" if clinical else "No criterion for a higher level was met, so the result "
                   f"is the lowest level ({result['level_label']})."),
        pending=tuple(
            Pending(p["id"], p["title"], labels.effect(p["min_level"], p["flags"], "Could mean"),
                    tuple((q, labels.question(q)) for q in p["deciding_questions"]))
            for p in result["pending_rules"]),
        scores=tuple(_score(s) for s in result["scores"]),
        talking_points=tuple(TalkingPoint(m["myth"], m["facts"], _titles(m, ruleset))
                             for m in result["misconceptions"] if m["id"] not in hidden_talk),
        engagement=engagement,
        note=str(record.get("note") or "").strip(),
        ignored=tuple(result["ignored_answers"]),
        not_asked=tuple((q, labels.question(q)) for q in result.get("not_asked", ())),
        disclaimer=" ".join(str(result["disclaimer"]).split()),
        ruleset_line=f"{result['ruleset']['id']} {result['ruleset']['version']}",
        ruleset_sha256=str(result["ruleset"]["sha256"]),
    )


def _meta(record: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    made = f"{record['id']}, version {record['version']}"
    if record.get("amends") is not None:
        made += f" (amends record {record['amends']})"
    source = str(record["source"])
    rs = record["ruleset"]
    return (
        ("Client", str(record["client"]) or "(not given)"),
        ("Counselor", str(record["counselor"]) or "(not given)"),
        ("Screened (UTC)", str(record["created_utc"])),
        ("Made by", SOURCES.get(source, source)),
        ("Record", made),
        ("Rule set", f"{rs['id']} {rs['version']}"),
    )


def _crisis(result: Mapping[str, Any], ruleset: Ruleset | None) -> Crisis | None:
    crisis_flags = {f["id"] for f in result["flags"] if f["severity"] == "crisis"}
    if not crisis_flags:
        return None
    because = tuple(r["title"] for r in result["fired_rules"] if crisis_flags & set(r["flags"]))
    if ruleset is None:
        return Crisis("Safety concern - act now", because,
                      ("Follow your service's crisis protocol now.",), ())
    return Crisis(ruleset.crisis.title, because, ruleset.crisis.protocol,
                  tuple((r.name, r.contact) for r in ruleset.crisis.resources))


CRISIS_STATUS = "Crisis: follow the crisis protocol now; a clinician decides the next step."


def _status(result: Mapping[str, Any], labels: _Labels) -> str:
    crisis = any(f["severity"] == "crisis" for f in result["flags"])
    if not result["provisional"]:
        # A crisis result is never called final: the protocol comes first.
        return CRISIS_STATUS if crisis else "Final for the answers given."
    possible = result["possible_level"]
    if possible and possible != result["level"]:
        return (f"Provisional: unanswered or declined questions could raise this to "
                f"{labels.level(possible)}.")
    return "Provisional: unanswered or declined questions could add flags that need attention."


def _reason(rule: Mapping[str, Any], labels: _Labels, ruleset: Ruleset | None) -> Reason:
    return Reason(
        rule["id"], rule["title"], labels.effect(rule["min_level"], rule["flags"], "Minimum"),
        " ".join(str(rule["reason"]).split()),
        tuple(Evidence(e["name"], e["kind"], e["value"]) for e in rule["evidence"]),
        _titles(rule, ruleset),
    )


def _titles(item: Mapping[str, Any], ruleset: Ruleset | None) -> tuple[str, ...]:
    """The short source titles a counselor reads: as the result carries them, else from the
    rule set that made it, else (an older record) its full citations."""
    if item.get("source_titles"):
        return tuple(item["source_titles"])
    if ruleset is not None and item.get("source_ids"):
        return ruleset.source_titles(tuple(item["source_ids"]))
    return tuple(item.get("sources", ()))


def _score(score: Mapping[str, Any]) -> ScoreLine:
    value = score["score"]
    shown = "unknown" if value is None else f"{number(value)} / {score['max']}"
    band = score["band_label"] or ("unknown" if value is None else "-")
    return ScoreLine(score["id"], score["title"], shown, band, tuple(score["missing_items"]))

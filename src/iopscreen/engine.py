"""``screen(ruleset, answers) -> Screening``: pure, deterministic, explainable.

The level is the highest ``min_level`` among the rules that fired, never an average; with no rule
fired it is the lowest level. Rules whose condition is unknown and that could raise the level or
add a flag that needs attention make the result *provisional*.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from .answers import Answer, display_value, to_plain
from .decision import ATTENTION_SEVERITIES, Decision
from .program import Program, compile_program
from .ruleset.model import Ruleset

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Evidence:
    """One value a fired rule read: a question's answer, a score, a band or a derived value."""

    name: str
    kind: str  # question | score | band | derived
    value: str


@dataclass(frozen=True)
class FiredRule:
    id: str
    title: str
    reason: str
    min_level: str | None
    flags: tuple[str, ...]
    category: str
    sources: tuple[str, ...]
    evidence: tuple[Evidence, ...]
    source_ids: tuple[str, ...] = ()
    source_titles: tuple[str, ...] = ()  # what a counselor sees (sources: full citations)
    levels: tuple[str, ...] = ()  # an engagement note: the levels it is meant for (() = all)


@dataclass(frozen=True)
class PendingRule:
    """A rule that is unknown because of missing answers and could change the result."""

    id: str
    title: str
    min_level: str | None
    flags: tuple[str, ...]
    deciding: tuple[str, ...]


@dataclass(frozen=True)
class FlagResult:
    id: str
    label: str
    severity: str
    rules: tuple[str, ...]


@dataclass(frozen=True)
class ScoreResult:
    id: str
    title: str
    score: float | None
    max_score: int
    band: str | None
    band_label: str | None
    missing_items: tuple[str, ...]


@dataclass(frozen=True)
class MisconceptionResult:
    id: str
    myth: str
    facts: str
    sources: tuple[str, ...]
    source_ids: tuple[str, ...] = ()
    source_titles: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()  # the levels this talking point is meant for (() = all)


@dataclass(frozen=True)
class Screening:
    """The full, explainable result of screening one set of answers."""

    ruleset_id: str
    ruleset_version: str
    ruleset_hash: str
    level: str
    level_label: str
    provisional: bool
    possible_level: str | None
    flags: tuple[FlagResult, ...]
    fired: tuple[FiredRule, ...]
    pending: tuple[PendingRule, ...]
    deciding: tuple[str, ...]
    scores: tuple[ScoreResult, ...]
    misconceptions: tuple[MisconceptionResult, ...]
    ignored: tuple[str, ...]
    answers: dict[str, Any] = field(default_factory=dict)
    disclaimer: str = ""
    # Questions an interview finished early never asked (set by the session, not by screen()).
    not_asked: tuple[str, ...] = ()

    @property
    def crisis(self) -> bool:
        return any(f.severity == "crisis" for f in self.flags)

    @property
    def flag_ids(self) -> tuple[str, ...]:
        return tuple(f.id for f in self.flags)

    def score(self, instrument_id: str) -> ScoreResult:
        return next(s for s in self.scores if s.id == instrument_id)

    def to_json(self) -> dict[str, Any]:
        """The documented, stable JSON form (see README, 'Result JSON')."""
        return {
            "schema": "iopscreen.screening",
            "schema_version": SCHEMA_VERSION,
            "ruleset": {"id": self.ruleset_id, "version": self.ruleset_version,
                        "sha256": self.ruleset_hash},
            "level": self.level,
            "level_label": self.level_label,
            "provisional": self.provisional,
            "possible_level": self.possible_level,
            "deciding_questions": list(self.deciding),
            "flags": [{"id": f.id, "label": f.label, "severity": f.severity,
                       "rules": list(f.rules)} for f in self.flags],
            "fired_rules": [{
                "id": r.id, "title": r.title, "reason": r.reason, "min_level": r.min_level,
                "flags": list(r.flags), "category": r.category, "sources": list(r.sources),
                "source_ids": list(r.source_ids), "source_titles": list(r.source_titles),
                "levels": list(r.levels),
                "evidence": [{"name": e.name, "kind": e.kind, "value": e.value}
                             for e in r.evidence],
            } for r in self.fired],
            "pending_rules": [{"id": p.id, "title": p.title, "min_level": p.min_level,
                               "flags": list(p.flags), "deciding_questions": list(p.deciding)}
                              for p in self.pending],
            "scores": [{"id": s.id, "title": s.title, "score": s.score, "max": s.max_score,
                        "band": s.band, "band_label": s.band_label,
                        "missing_items": list(s.missing_items)} for s in self.scores],
            "misconceptions": [{"id": m.id, "myth": m.myth, "facts": m.facts,
                                "sources": list(m.sources), "source_ids": list(m.source_ids),
                                "source_titles": list(m.source_titles),
                                "levels": list(m.levels)} for m in self.misconceptions],
            "ignored_answers": list(self.ignored),
            "answers": self.answers,
            "disclaimer": self.disclaimer,
            # Only in the result of an interview finished early: older readers are unaffected.
            **({"not_asked": list(self.not_asked)} if self.not_asked else {}),
        }


_PROGRAMS: dict[int, tuple[Ruleset, Program]] = {}


def program_for(ruleset: Ruleset) -> Program:
    """The compiled program of ``ruleset`` (compiled on first use, then reused)."""
    hit = _PROGRAMS.get(id(ruleset))
    if hit is None or hit[0] is not ruleset:
        hit = (ruleset, compile_program(ruleset))
        _PROGRAMS[id(ruleset)] = hit
    return hit[1]


_DECISIONS: dict[int, tuple[Ruleset, Decision]] = {}


def decision_for(ruleset: Ruleset) -> Decision:
    """The :class:`~iopscreen.decision.Decision` of ``ruleset`` (worked out once, then reused)."""
    hit = _DECISIONS.get(id(ruleset))
    if hit is None or hit[0] is not ruleset:
        hit = (ruleset, Decision.of(ruleset, program_for(ruleset).behind))
        _DECISIONS[id(ruleset)] = hit
    return hit[1]


@dataclass(frozen=True)
class Evaluation:
    """Raw outcome of running the program: every computed value and truth."""

    values: list[Any]
    declined: frozenset[str]
    rule_truths: tuple[Any, ...]
    misconception_truths: tuple[Any, ...]
    ask_truths: tuple[Any, ...]
    ignored: tuple[str, ...]


def evaluate(ruleset: Ruleset, answers: Mapping[str, Answer]) -> Evaluation:
    """Run the compiled rule set on typed answers."""
    program = program_for(ruleset)
    values: list[Any] = [None] * program.size
    declined: set[str] = set()
    slots = program.slots
    for qid, answer in answers.items():
        if answer.declined:
            declined.add(qid)
        else:
            values[slots[qid]] = answer.value
    rules, miscs, asks, ignored = program.run(values, declined)
    return Evaluation(values, frozenset(declined), rules, miscs, asks, tuple(ignored))


def applicable(ruleset: Ruleset, answers: Mapping[str, Answer]) -> dict[str, bool]:
    """For each question, whether it should be asked given ``answers`` (true or unknown -> ask)."""
    ev = evaluate(ruleset, answers)
    return {qid: truth is not False for qid, truth in zip(ruleset.questions, ev.ask_truths)}


def screen(ruleset: Ruleset, answers: Mapping[str, Answer]) -> Screening:
    """Screen typed ``answers`` (see :mod:`iopscreen.answers`) with ``ruleset``.

    Returns a :class:`Screening`. Pure: the same inputs always give the same result.
    """
    program = program_for(ruleset)
    ev = evaluate(ruleset, answers)
    values, slots = ev.values, program.slots
    not_applicable = {qid for qid, t in zip(ruleset.questions, ev.ask_truths) if t is False}
    decision = decision_for(ruleset)
    verdict = decision.decide(
        ev.rule_truths, lambda q: values[slots[q]] is None and q not in not_applicable)
    fired = []
    for i in verdict.fired:
        rule = ruleset.rules[i]
        fired.append(FiredRule(
            rule.id, rule.title, rule.reason, rule.min_level, rule.flags, rule.category,
            tuple(ruleset.sources[s].cite for s in rule.sources),
            tuple(_evidence(ruleset, name, values[slots[name]], answers, not_applicable)
                  for name in sorted(rule.when.names, key=slots.__getitem__)),
            rule.sources, ruleset.source_titles(rule.sources), rule.levels,
        ))
    deciding_set = set(verdict.deciding)
    pending = []
    for i in verdict.pending:
        rule = ruleset.rules[i]
        pending.append(PendingRule(rule.id, rule.title, rule.min_level, rule.flags, tuple(
            q for q in decision.rules[i].behind if q in deciding_set)))
    flags = [FlagResult(fid, ruleset.flags[fid].label, ruleset.flags[fid].severity, rules)
             for fid, rules in verdict.flags]
    scores = []
    for inst in ruleset.instruments:
        score = values[slots[inst.id]]
        band = inst.band_of(score)
        missing = tuple(q for q in inst.items if values[slots[q]] is None
                        and q not in not_applicable)
        scores.append(ScoreResult(inst.id, inst.title, score, inst.max_score,
                                  band.id if band else None, band.label if band else None,
                                  missing))
    miscs = tuple(
        MisconceptionResult(m.id, m.myth, m.facts, tuple(ruleset.sources[s].cite for s in m.sources),
                            m.sources, ruleset.source_titles(m.sources), m.levels)
        for m, truth in zip(ruleset.misconceptions, ev.misconception_truths) if truth is True
    )
    level = ruleset.levels[verdict.level]
    return Screening(
        ruleset_id=ruleset.id, ruleset_version=ruleset.version,
        ruleset_hash=ruleset.content_hash, level=level.id, level_label=level.label,
        provisional=verdict.provisional,
        possible_level=None if verdict.possible is None else ruleset.levels[verdict.possible].id,
        flags=tuple(flags), fired=tuple(fired), pending=tuple(pending),
        deciding=verdict.deciding, scores=tuple(scores), misconceptions=miscs,
        ignored=ev.ignored,
        answers={qid: to_plain(ruleset.questions[qid], a) for qid, a in answers.items()
                 if qid not in ev.ignored},
        disclaimer=ruleset.disclaimer,
    )


def shown_for(levels: Sequence[str], level: str) -> bool:
    """Whether advice meant for ``levels`` (empty: every level) shows beside a ``level``
    result. The result itself keeps all advice; screens and reports show only this."""
    return not levels or level in levels


def hidden_advice(level: str, notes: Iterable[tuple[str, Sequence[str]]]) -> frozenset[str]:
    """The ids among ``notes`` ((id, levels) of engagement notes or talking points) that are
    not meant for a ``level`` result."""
    return frozenset(ident for ident, levels in notes if not shown_for(levels, level))


def flag_shown(raised_by: Sequence[str], hidden_rules: frozenset[str]) -> bool:
    """A flag shows unless every rule that raised it is an engagement note hidden for the
    level (an outpatient result does not say "plan evening IOP sessions")."""
    return not raised_by or not set(raised_by) <= hidden_rules


def _evidence(ruleset: Ruleset, name: str, value: Any, answers: Mapping[str, Answer],
              not_applicable: set[str]) -> Evidence:
    sym = ruleset.symbols[name]
    if sym.role == "question":
        if name in not_applicable:
            return Evidence(name, "question", "not asked (skip logic)")
        q = ruleset.questions[name]
        return Evidence(name, "question", display_value(q, answers.get(name)))
    if value is None:
        shown = "unknown"
    elif isinstance(value, bool):
        shown = "yes" if value else "no"
    elif isinstance(value, float):
        shown = f"{value:g}"
    else:
        shown = str(value)
    return Evidence(name, sym.role, shown)

"""The one decision: how the rule truths become a level, flags and a provisional state.

:class:`Decision` describes it as data, worked out once per rule set: what each rule raises (a
level rank, flags), which of its flags make it worth a provisional result when it is unknown,
and which questions stand behind it. :meth:`Decision.decide` reads a result from it the way
:func:`iopscreen.engine.screen` reports it; the SQL compiler (:mod:`iopscreen.sql`) translates
the same description, step for step, into SQL. Change the decision here and both follow.

The decision, in words:
- a rule *fires* when its condition is true; the level is the highest ``min_level`` rank among
  the rules that fired (rank 0, the lowest level, when none did); the flags are those of the
  rules that fired, most severe first, then in rule-set order;
- a rule left unknown is *pending* when it could raise the level (its rank is above the level)
  or add a flag of an attention severity (crisis, urgent, review) not raised already;
- any pending rule makes the result provisional; the possible level is the highest of the level
  and the ranks of the pending rules; the deciding questions are the unanswered, applicable
  questions behind a pending rule, in question order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from .ruleset.model import Ruleset

# Flags of these severities make an unknown rule worth a provisional result; 'note' does not.
ATTENTION_SEVERITIES = ("crisis", "urgent", "review")


@dataclass(frozen=True)
class RuleEffect:
    """What one rule decides: its level rank (0 without ``min_level``), its flags, the flags
    that make it pending when unknown, and the questions behind it (in question order)."""

    id: str
    rank: int
    flags: tuple[str, ...]
    attention: tuple[str, ...]
    behind: tuple[str, ...]


@dataclass(frozen=True)
class Verdict:
    """A decided result: level rank, raised flags (in output order, with the rules that raised
    each), the fired and pending rule indexes, possible level rank (None unless provisional)
    and the deciding questions."""

    level: int
    flags: tuple[tuple[str, tuple[str, ...]], ...]
    fired: tuple[int, ...]
    pending: tuple[int, ...]
    possible: int | None
    deciding: tuple[str, ...]

    @property
    def provisional(self) -> bool:
        return bool(self.pending)


@dataclass(frozen=True)
class Decision:
    """The decision of one rule set as data (see the module docstring)."""

    levels: tuple[str, ...]
    flags: tuple[str, ...]  # in output order: severity rank, then rule-set order
    crisis_flags: tuple[str, ...]
    rules: tuple[RuleEffect, ...]
    questions: tuple[str, ...]

    @classmethod
    def of(cls, ruleset: Ruleset, behind: dict[str, frozenset[str]]) -> Decision:
        """The decision of ``ruleset``; ``behind`` maps each name to the questions it reads,
        transitively (the compiled program's ``behind``)."""
        rank = {lv.id: lv.rank for lv in ruleset.levels}
        order = list(ruleset.flags)
        flags = tuple(sorted(order, key=lambda f: (ruleset.flags[f].rank, order.index(f))))
        effects = []
        for rule in ruleset.rules:
            questions: set[str] = set()
            for name in rule.when.names:
                questions |= behind[name]
            effects.append(RuleEffect(
                rule.id, rank[rule.min_level] if rule.min_level else 0, rule.flags,
                tuple(f for f in rule.flags
                      if ruleset.flags[f].severity in ATTENTION_SEVERITIES),
                tuple(q for q in ruleset.questions if q in questions)))
        return cls(tuple(lv.id for lv in ruleset.levels), flags,
                   tuple(f for f in flags if ruleset.flags[f].severity == "crisis"),
                   tuple(effects), tuple(ruleset.questions))

    @property
    def safety_questions(self) -> frozenset[str]:
        """The questions behind a rule that raises a crisis flag: an answer to one of them
        that skip logic drops needs a person's review (``safety_review`` in batch results)."""
        crisis = set(self.crisis_flags)
        return frozenset(q for rule in self.rules if crisis.intersection(rule.flags)
                         for q in rule.behind)

    def decide(self, truths: Sequence[Any], unknown: Callable[[str], bool]) -> Verdict:
        """The verdict for the rule ``truths`` (True/False/None in rule order); ``unknown(q)``
        says whether question q is unanswered and applicable (a deciding question if behind a
        pending rule)."""
        fired = tuple(i for i, t in enumerate(truths) if t is True)
        level = max((self.rules[i].rank for i in fired), default=0)
        raised: dict[str, list[str]] = {}
        for i in fired:
            for flag in self.rules[i].flags:
                raised.setdefault(flag, []).append(self.rules[i].id)
        pending = tuple(i for i, t in enumerate(truths) if t is None and (
            self.rules[i].rank > level
            or any(f not in raised for f in self.rules[i].attention)))
        possible = max([level, *(self.rules[i].rank for i in pending)]) if pending else None
        behind = {q for i in pending for q in self.rules[i].behind}
        deciding = tuple(q for q in self.questions if q in behind and unknown(q))
        return Verdict(level, tuple((f, tuple(raised[f])) for f in self.flags if f in raised),
                       fired, pending, possible, deciding)

"""The rule-set model: plain frozen data, built only by the loader."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..expr import Condition, Symbol

QUESTION_TYPES = ("yesno", "choice", "multi", "integer", "text")
SEVERITIES = ("crisis", "urgent", "review", "note")
SOURCE_KINDS = ("seed", "paper", "guideline", "policy", "web")
MISSING_POLICIES = ("none", "prorate", "zero")
# Texts every question reads as "declined" (so no choice alias may be one of them).
DECLINED_TOKENS = frozenset({"declined", "decline", "refused"})


@dataclass(frozen=True)
class Source:
    id: str
    kind: str
    cite: str  # the full citation: reviewer document and JSON only
    title: str = ""  # the short title a counselor sees ("Kroenke 2001, PHQ-9")

    @property
    def short(self) -> str:
        """What a counselor sees for this source: its title, else its id."""
        return self.title or self.id


@dataclass(frozen=True)
class Level:
    id: str
    label: str
    description: str
    rank: int
    sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class Flag:
    id: str
    label: str
    severity: str

    @property
    def rank(self) -> int:
        return SEVERITIES.index(self.severity)


@dataclass(frozen=True)
class Choice:
    code: Any
    label: str
    aliases: tuple[str, ...] = ()  # other spellings read as this choice ("M" for male)

    @property
    def spellings(self) -> str:
        """How hints and the data dictionary list the choice: 'male=Male (also M, man)'."""
        also = f" (also {', '.join(self.aliases)})" if self.aliases else ""
        return f"{self.code}={self.label}{also}"


@dataclass(frozen=True)
class Question:
    id: str
    section: str
    text: str
    type: str
    help: str = ""
    choices: tuple[Choice, ...] = ()
    min: int | None = None
    max: int | None = None
    required: bool = True
    ask_when: Condition | None = None
    sources: tuple[str, ...] = ()

    def label_of(self, code: Any) -> str:
        for c in self.choices:
            if c.code == code:
                return c.label
        return str(code)


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    questions: tuple[str, ...]


@dataclass(frozen=True)
class Band:
    id: str
    min: int
    max: int
    label: str


@dataclass(frozen=True)
class Instrument:
    id: str
    title: str
    items: tuple[str, ...]
    bands: tuple[Band, ...]
    sources: tuple[str, ...]
    item_max: tuple[int, ...]
    reverse: frozenset[str] = frozenset()
    missing: str = "none"
    max_missing: int = 0
    gate: Condition | None = None
    gate_score: int = 0
    license: str = ""
    minimal_change: float | None = None
    description: str = ""

    @property
    def max_score(self) -> int:
        return sum(self.item_max)

    def band_of(self, score: float | None) -> Band | None:
        if score is None:
            return None
        for band in self.bands:
            if band.min <= score <= band.max:
                return band
        return None


@dataclass(frozen=True)
class Derived:
    id: str
    expr: Condition
    description: str = ""
    sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    when: Condition
    reason: str
    sources: tuple[str, ...]
    min_level: str | None = None
    flags: tuple[str, ...] = ()
    category: str = "clinical"
    levels: tuple[str, ...] = ()  # engagement notes only: shown for these levels (() = all)
    note: str = ""  # for the clinical reviewer only (rules doc), never shown with a result

    def shown_for(self, level_id: str) -> bool:
        return not self.levels or level_id in self.levels


@dataclass(frozen=True)
class Misconception:
    id: str
    myth: str
    facts: str
    when: Condition
    sources: tuple[str, ...]
    levels: tuple[str, ...] = ()  # shown for these levels only (() = every level)
    note: str = ""  # for the clinical reviewer only (rules doc), never shown with a result

    def shown_for(self, level_id: str) -> bool:
        return not self.levels or level_id in self.levels


@dataclass(frozen=True)
class Resource:
    name: str
    contact: str


@dataclass(frozen=True)
class Crisis:
    title: str = "Safety concern - act now"
    protocol: tuple[str, ...] = ()
    resources: tuple[Resource, ...] = ()


@dataclass(frozen=True)
class Ruleset:
    """A loaded, checked rule set. Build it with :func:`iopscreen.ruleset.load_ruleset`."""

    id: str
    title: str
    version: str
    effective: str
    disclaimer: str
    path: str
    content_hash: str
    population: str = ""
    sources: dict[str, Source] = field(default_factory=dict)
    levels: tuple[Level, ...] = ()
    flags: dict[str, Flag] = field(default_factory=dict)
    sections: tuple[Section, ...] = ()
    questions: dict[str, Question] = field(default_factory=dict)
    instruments: tuple[Instrument, ...] = ()
    derived: tuple[Derived, ...] = ()  # in evaluation order
    rules: tuple[Rule, ...] = ()
    misconceptions: tuple[Misconception, ...] = ()
    crisis: Crisis = Crisis()
    symbols: dict[str, Symbol] = field(default_factory=dict)

    def source_titles(self, source_ids: tuple[str, ...]) -> tuple[str, ...]:
        """The short titles a counselor sees for ``source_ids`` (unknown ids as they are)."""
        return tuple(self.sources[s].short if s in self.sources else s for s in source_ids)

    def level(self, level_id: str) -> Level:
        for lv in self.levels:
            if lv.id == level_id:
                return lv
        raise KeyError(level_id)

    @property
    def question_order(self) -> tuple[str, ...]:
        return tuple(self.questions)

    def section_of(self, question_id: str) -> Section:
        sid = self.questions[question_id].section
        return next(s for s in self.sections if s.id == sid)

    @property
    def crisis_flags(self) -> frozenset[str]:
        return frozenset(f.id for f in self.flags.values() if f.severity == "crisis")

"""Rule-set test cases (``NAME.tests.yaml``): given answers, the expected result."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .answers import coerce_answers
from .engine import Screening, hidden_advice, screen
from .errors import AnswerError, Diagnostic, Problems, RulesetError, did_you_mean
from .ruleset.model import Ruleset
from .ruleset.limits import Limits
from .ruleset.loader import read_source
from .ruleset.yamlsource import read_yaml

EXPECT_KEYS = (
    "level", "provisional", "possible_level", "flags", "flags_include", "rules",
    "rules_include", "rules_exclude", "scores", "bands", "misconceptions",
    "misconceptions_include", "deciding", "talking_points", "engagement_notes",
)
CASE_KEYS = ("name", "answers", "expect", "note")


@dataclass(frozen=True)
class CaseResult:
    name: str
    line: int
    failures: tuple[str, ...]
    screening: Screening | None

    @property
    def passed(self) -> bool:
        return not self.failures


def load_cases(path: Path, ruleset: Ruleset) -> list[tuple[str, int, dict[str, Any], dict[str, Any]]]:
    """Read and check a tests file. Returns (name, line, raw answers, expect) per case.

    Raises :class:`RulesetError` with every structural problem found.
    """
    problems = Problems(str(path))
    if not path.exists():
        raise RulesetError(f"no test cases at '{path}'",
                           hint=f"create {path.name} beside the rule set (see "
                                "docs/ruleset-format.md, 'Test cases')")
    limits = Limits.from_env()
    source = read_source(path, limits, problems)
    doc = read_yaml(source[1], problems, limits) if source is not None else None
    problems.raise_if_errors()
    assert doc is not None
    data = doc.data
    if not isinstance(data, dict) or not isinstance(data.get("cases"), list):
        problems.add("E501", "bad-tests", "a tests file needs a 'cases:' list", (1, 1),
                     "see docs/ruleset-format.md, 'Test cases'")
        problems.raise_if_errors()
    out = []
    names: set[str] = set()
    levels = [lv.id for lv in ruleset.levels]
    for i, case in enumerate(data["cases"]):
        at = ("cases", i)
        mark = doc.mark(at)
        if not isinstance(case, dict):
            problems.add("E501", "bad-tests", "each case must be a mapping", mark)
            continue
        for key in case:
            if key not in CASE_KEYS:
                problems.add("E302", "unknown-key", f"unknown key '{key}' in a case",
                             doc.key_mark(at + (key,)), did_you_mean(str(key), CASE_KEYS))
        name = case.get("name")
        if not isinstance(name, str) or not name.strip():
            problems.add("E304", "missing-key", "a case needs a 'name'", mark)
            continue
        if name in names:
            problems.add("E306", "duplicate-id", f"case name '{name}' is used twice", mark)
        names.add(name)
        answers = case.get("answers") or {}
        expect = case.get("expect")
        if not isinstance(answers, dict) or not isinstance(expect, dict) or not expect:
            problems.add("E501", "bad-tests", f"case '{name}' needs 'answers' and 'expect' "
                         "mappings", mark)
            continue
        for key in expect:
            if key not in EXPECT_KEYS:
                problems.add("E302", "unknown-key", f"unknown key '{key}' in expect",
                             doc.key_mark(at + ("expect", key)), did_you_mean(str(key), EXPECT_KEYS))
        for key in ("level", "possible_level"):
            if key in expect and expect[key] is not None and expect[key] not in levels:
                problems.add("E211", "unknown-level", f"level '{expect[key]}' is not defined",
                             doc.mark(at + ("expect", key)), did_you_mean(str(expect[key]), levels))
        for key, known in (("flags", ruleset.flags), ("flags_include", ruleset.flags),
                           ("rules", [r.id for r in ruleset.rules]),
                           ("rules_include", [r.id for r in ruleset.rules]),
                           ("rules_exclude", [r.id for r in ruleset.rules]),
                           ("misconceptions", [m.id for m in ruleset.misconceptions]),
                           ("misconceptions_include", [m.id for m in ruleset.misconceptions]),
                           ("talking_points", [m.id for m in ruleset.misconceptions]),
                           ("engagement_notes", [r.id for r in ruleset.rules
                                                 if r.category == "engagement"]),
                           ("deciding", ruleset.questions)):
            for j, item in enumerate(expect.get(key) or []):
                if item not in known:
                    problems.add("E201", "unknown-name", f"'{item}' in expect.{key} is not defined",
                                 doc.mark(at + ("expect", key, j)), did_you_mean(str(item), known))
        out.append((name, mark[0], answers, expect))
    problems.raise_if_errors()
    return out


def run_cases(ruleset: Ruleset, path: Path) -> list[CaseResult]:
    """Run every case in ``path`` against ``ruleset``; returns one result per case."""
    results = []
    for name, line, raw, expect in load_cases(path, ruleset):
        try:
            answers = coerce_answers(ruleset, raw, source=f"{path}:{line}", show_values=True)
        except AnswerError as exc:
            results.append(CaseResult(name, line, tuple(d.message for d in exc.diagnostics), None))
            continue
        result = screen(ruleset, answers)
        results.append(CaseResult(name, line, tuple(compare(result, expect)), result))
    return results


def compare(result: Screening, expect: dict[str, Any]) -> list[str]:
    """Differences between a screening and an ``expect`` mapping, as readable lines."""
    out: list[str] = []
    fired = {r.id for r in result.fired}
    flags = set(result.flag_ids)
    miscs = {m.id for m in result.misconceptions}

    def exact(what: str, want: Any, got: set[str]) -> None:
        want_set = set(want or [])
        if want_set != got:
            missing, extra = sorted(want_set - got), sorted(got - want_set)
            parts = []
            if missing:
                parts.append("missing " + ", ".join(missing))
            if extra:
                parts.append("unexpected " + ", ".join(extra))
            out.append(f"{what}: " + "; ".join(parts))

    def include(what: str, want: Any, got: set[str]) -> None:
        missing = sorted(set(want or []) - got)
        if missing:
            out.append(f"{what}: expected to include {', '.join(missing)}; got "
                       f"{', '.join(sorted(got)) or 'none'}")

    if "level" in expect and expect["level"] != result.level:
        out.append(f"level: expected {expect['level']}, got {result.level}")
    if "provisional" in expect and bool(expect["provisional"]) != result.provisional:
        why = f" (pending: {', '.join(p.id for p in result.pending)})" if result.pending else ""
        out.append(f"provisional: expected {expect['provisional']}, got {result.provisional}{why}")
    if "possible_level" in expect and expect["possible_level"] != result.possible_level:
        out.append(f"possible_level: expected {expect['possible_level']}, "
                   f"got {result.possible_level}")
    if "flags" in expect:
        exact("flags", expect["flags"], flags)
    include("flags", expect.get("flags_include"), flags)
    if "rules" in expect:
        exact("rules", expect["rules"], fired)
    include("rules", expect.get("rules_include"), fired)
    unwanted = sorted(set(expect.get("rules_exclude") or []) & fired)
    if unwanted:
        out.append(f"rules: expected not to fire: {', '.join(unwanted)}")
    if "misconceptions" in expect:
        exact("misconceptions", expect["misconceptions"], miscs)
    include("misconceptions", expect.get("misconceptions_include"), miscs)
    include("deciding", expect.get("deciding"), set(result.deciding))
    # what the screen and the reports show: only the advice meant for the recommended level
    notes = [r for r in result.fired if r.category == "engagement"]
    if "talking_points" in expect:
        hidden = hidden_advice(result.level, ((m.id, m.levels) for m in result.misconceptions))
        exact("talking_points", expect["talking_points"], miscs - hidden)
    if "engagement_notes" in expect:
        hidden = hidden_advice(result.level, ((r.id, r.levels) for r in notes))
        exact("engagement_notes", expect["engagement_notes"], {r.id for r in notes} - hidden)
    scores = {s.id: s for s in result.scores}
    for key, want in (expect.get("scores") or {}).items():
        got = scores[key].score if key in scores else "no such instrument"
        if got != want:
            out.append(f"scores.{key}: expected {want}, got {got}")
    for key, want in (expect.get("bands") or {}).items():
        got = scores[key].band if key in scores else "no such instrument"
        if got != want:
            out.append(f"bands.{key}: expected {want}, got {got}")
    return out


__all__ = ["CaseResult", "Diagnostic", "compare", "load_cases", "run_cases"]

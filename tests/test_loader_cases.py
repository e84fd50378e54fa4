"""Loader error cases: one YAML file per problem under tests/loader_cases/.

Each file is a small, otherwise valid rule set with one deliberate problem. Its first lines say
what the loader must report, one line per expected diagnostic::

    # expect: error E302 unknown-key at 12:7
    # expect: warning W101 yaml-bool-word at 73:33

``LINE:COL`` (1-based) is the place a person fixing the file would look at: the offending key or
value, or the exact token inside a condition. Optional words after the position:

- ``nohint``: this diagnostic may come without a hint (the message says it all);
- ``exact``: the file must produce no *errors* other than the expected ones (for cases where
  follow-on errors would be wrong, not merely redundant).

A file expecting at least one error must fail ``load_ruleset``; a file expecting only warnings
must load.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from iopscreen.errors import ERROR, Diagnostic, RulesetError
from iopscreen.ruleset import check_ruleset, load_ruleset

CASES_DIR = Path(__file__).parent / "loader_cases"
CASE_FILES = sorted(CASES_DIR.glob("*.yaml"))
FILE_NAME_RE = re.compile(r"^\d{2}_[a-z0-9_]+\.yaml$")
EXPECT_RE = re.compile(
    r"^# expect: (?P<level>error|warning) (?P<code>[EW]\d{3}) (?P<name>[a-z][a-z0-9-]*) "
    r"at (?P<line>\d+):(?P<col>\d+)(?P<flags>(?: (?:nohint|exact))*)\s*$"
)
TRACEBACK_MARKERS = ("Traceback", "most recent call last", 'File "', "Error(", "<module>")


@dataclass(frozen=True)
class Expect:
    level: str
    code: str
    name: str
    line: int
    col: int
    nohint: bool
    exact: bool

    def matches(self, d: Diagnostic) -> bool:
        return (d.level, d.code, d.name, d.line, d.col) == (
            self.level, self.code, self.name, self.line, self.col)

    def __str__(self) -> str:
        return f"{self.level} {self.code} {self.name} at {self.line}:{self.col}"


def parse_header(path: Path) -> list[Expect]:
    expects = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("# expect:"):
            break
        m = EXPECT_RE.match(line)
        assert m, f"{path.name}: malformed header line {line!r}"
        flags = m["flags"].split()
        expects.append(Expect(m["level"], m["code"], m["name"], int(m["line"]), int(m["col"]),
                              "nohint" in flags, "exact" in flags))
    assert expects, f"{path.name}: line 1 must be '# expect: LEVEL CODE name at LINE:COL'"
    return expects


@dataclass(frozen=True)
class Outcome:
    diagnostics: tuple[Diagnostic, ...]
    loaded: bool


@functools.lru_cache(maxsize=None)
def outcome(path: Path) -> Outcome:
    """check_ruleset on the file; a crash (anything but a clean report) fails the test."""
    try:
        ruleset, problems = check_ruleset(path)
    except RulesetError:
        raise
    except Exception as exc:  # noqa: BLE001 - a crash is exactly what we are looking for
        pytest.fail(f"the loader crashed on {path.name}: {type(exc).__name__}: {exc}",
                    pytrace=False)
    return Outcome(tuple(problems.items), ruleset is not None)


def show(diags: tuple[Diagnostic, ...] | list[Diagnostic]) -> str:
    if not diags:
        return "  (no diagnostics)"
    return "\n".join("  " + d.render().replace("\n", "\n  ") for d in diags)


def ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


cases = pytest.mark.parametrize("path", CASE_FILES, ids=ids(CASE_FILES))


def test_there_are_cases() -> None:
    assert len(CASE_FILES) >= 20
    for path in CASE_FILES:
        assert FILE_NAME_RE.match(path.name), f"name {path.name} is not NN_short_name.yaml"


def test_distinct_codes_covered() -> None:
    codes = {e.code for path in CASE_FILES for e in parse_header(path)}
    assert len(codes) >= 20, sorted(codes)


def test_each_case_is_a_different_problem() -> None:
    seen: dict[str, str] = {}
    for path in CASE_FILES:
        body = path.read_text(encoding="utf-8").split("\n", len(parse_header(path)) + 1)[-1]
        assert body not in seen, f"{path.name} is the same rule set as {seen.get(body)}"
        seen[body] = path.name


@cases
def test_reported_at_the_right_place(path: Path) -> None:
    got = outcome(path).diagnostics
    for exp in parse_header(path):
        assert any(exp.matches(d) for d in got), (
            f"{path.name}: expected {exp}; the loader reported:\n{show(sorted(got, key=Diagnostic.sort_key))}")


@cases
def test_errors_fail_to_load_and_warnings_load(path: Path) -> None:
    expects = parse_header(path)
    if any(e.level == ERROR for e in expects):
        with pytest.raises(RulesetError) as info:
            load_ruleset(path)
        assert info.value.diagnostics, "RulesetError carries no diagnostics"
        assert not outcome(path).loaded
    else:
        ruleset = load_ruleset(path)
        assert ruleset is not None
        errors = [d for d in outcome(path).diagnostics if d.level == ERROR]
        assert not errors, f"{path.name}: unexpected errors:\n{show(errors)}"


@cases
def test_errors_have_hints(path: Path) -> None:
    expects = parse_header(path)
    missing = [
        d for d in outcome(path).diagnostics
        if d.level == ERROR and not d.hint.strip()
        and not any(e.nohint and e.matches(d) for e in expects)
    ]
    assert not missing, f"{path.name}: errors without a hint:\n{show(missing)}"


@cases
def test_no_unexpected_errors_where_exact(path: Path) -> None:
    expects = parse_header(path)
    if not any(e.exact for e in expects):
        return
    extra = [d for d in outcome(path).diagnostics
             if d.level == ERROR and not any(e.matches(d) for e in expects)]
    assert not extra, f"{path.name}: follow-on errors that should not be there:\n{show(extra)}"


@cases
def test_diagnostics_sorted_by_position(path: Path) -> None:
    diags = outcome(path).diagnostics
    try:
        load_ruleset(path)
        shown = None
    except RulesetError as exc:
        shown = list(exc.diagnostics)
    if shown is None:  # warnings only: check_ruleset callers print problems.sorted()
        return
    keys = [(d.line, d.col) for d in shown]
    assert keys == sorted(keys), f"{path.name}: not sorted by position:\n{show(shown)}"
    # nothing is lost or invented between check_ruleset and the exception
    assert sorted(shown, key=repr) == sorted(diags, key=repr)


@cases
def test_no_traceback_in_messages(path: Path) -> None:
    for d in outcome(path).diagnostics:
        for text in (d.message, d.hint):
            for marker in TRACEBACK_MARKERS:
                assert marker not in text, f"{path.name}: {marker!r} in {d.render()!r}"
